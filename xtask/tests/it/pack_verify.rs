//! `pack-wheelhouse`, `verify-wheelhouse` and `unpack-wheelhouse` end to end, on wheelhouses made
//! by the real binary and archives made by it, by GNU tar and by hand.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use xtask::model::{
    digest::{sha256_hex, sidecar_line},
    manifest::Manifest,
};

use crate::support::{
    project::{stderr, stdout, Project, TWO_TARGETS},
    run_fails, run_ok,
};

fn pack(project: &Project, wheelhouse: &Path, output: &Path) -> Output {
    let mut command = project.xtask();
    command.arg("pack-wheelhouse").arg("--wheelhouse").arg(wheelhouse).arg("--output").arg(output);
    run_ok(&mut command)
}

fn unpack(project: &Project, archive: &Path) -> Command {
    let mut command = project.xtask();
    command.arg("unpack-wheelhouse").arg(archive);
    command
}

fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).unwrap();
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs_err::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output))
        .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", stdout(output)))
}

#[test]
fn packs_of_one_wheelhouse_are_the_same_bytes_anywhere_and_standard_tools_read_them() {
    let project = Project::with_wheelhouse("purelib\ncompiled\n", &TWO_TARGETS);
    let elsewhere = project.tmp.path().join("elsewhere/other-name");
    copy_dir(&project.wheelhouse(), &elsewhere);
    // Other mtimes and modes than the original's: the archive must not see them.
    run_ok(
        Command::new("touch")
            .args(["-d", "2001-02-03 04:05:06"])
            .args(crate::support::file_names(&elsewhere))
            .current_dir(&elsewhere),
    );
    run_ok(Command::new("chmod").args(["0600", "manifest.json"]).current_dir(&elsewhere));
    let first = project.tmp.path().join("one/wheelhouse.tgz");
    let second = project.tmp.path().join("two/wh.tgz");
    fs_err::create_dir_all(first.parent().unwrap()).unwrap();
    fs_err::create_dir_all(second.parent().unwrap()).unwrap();
    pack(&project, &project.wheelhouse(), &first);
    pack(&project, &elsewhere, &second);
    let bytes = fs_err::read(&first).unwrap();
    assert_eq!(bytes, fs_err::read(&second).unwrap(), "two packs of one wheelhouse differ");
    eprintln!("sha256 of both packs: {}", sha256_hex(&bytes));

    // sha256sum reads the sidecar; GNU tar lists manifest and SHA256SUMS first, owned by 0:0.
    run_ok(
        Command::new("sha256sum")
            .args(["--check", "--strict", "wheelhouse.tgz.sha256"])
            .current_dir(first.parent().unwrap()),
    );
    let listing = stdout(&run_ok(Command::new("tar").args(["--numeric-owner", "-tvzf"]).arg(&first)));
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].ends_with("wheelhouse/manifest.json") && lines[1].ends_with("wheelhouse/SHA256SUMS"), "{listing}");
    assert!(lines.iter().all(|line| line.starts_with("-rw-r--r-- 0/0 ") && line.contains("1970-01-01")), "{listing}");
    let extracted = project.tmp.path().join("extracted");
    fs_err::create_dir_all(&extracted).unwrap();
    run_ok(Command::new("tar").arg("xzf").arg(&first).current_dir(&extracted));
    run_ok(
        Command::new("sha256sum").args(["--check", "--strict", "SHA256SUMS"]).current_dir(extracted.join("wheelhouse")),
    );

    // SOURCE_DATE_EPOCH sets the entries' time; the tar stream's sha256 is reported.
    let mut dated = project.xtask();
    dated.env("SOURCE_DATE_EPOCH", "1700000000").args(["pack-wheelhouse", "--json", "--output"]).arg(&second);
    let report = json(&run_ok(&mut dated));
    assert_eq!(report["mtime"], 1_700_000_000);
    assert_eq!(report["tar_sha256"].as_str().unwrap().len(), 64);
    let listing = stdout(&run_ok(Command::new("tar").args(["-tvzf"]).arg(&second)));
    assert!(listing.contains("2023-11-14"), "{listing}");
}

#[test]
fn verify_names_tampered_missing_and_extra_files_with_expected_and_actual() {
    let project = Project::with_wheelhouse("purelib\n", &TWO_TARGETS);
    let verify =
        |extra: &[&str]| project.command_with_test_python(&[&["verify-wheelhouse", "--json"][..], extra].concat());
    let clean = json(&run_ok(&mut verify(&[])));
    assert_eq!(clean["ok"], true);
    assert_eq!(clean["install_checks"].as_array().unwrap().len(), 2);

    let wheelhouse = project.wheelhouse();
    let tampered = wheelhouse.join("oldpy-1.0-py3-none-any.whl");
    let expected = sha256_hex(&fs_err::read(&tampered).unwrap());
    let mut bytes = fs_err::read(&tampered).unwrap();
    bytes[20] ^= 1;
    fs_err::write(&tampered, &bytes).unwrap();
    fs_err::remove_file(wheelhouse.join("armonly-1.0-py3-none-any.whl")).unwrap();
    fs_err::write(wheelhouse.join("stray.whl"), "x").unwrap();
    let output = run_fails(&mut verify(&["--no-install-check"]));
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["ok"], false);
    let problems = report["problems"].as_array().unwrap();
    let find = |kind: &str| {
        problems.iter().find(|problem| problem["kind"] == kind).unwrap_or_else(|| panic!("no {kind}: {report}"))
    };
    assert_eq!(find("sha256")["file"], "oldpy-1.0-py3-none-any.whl");
    assert_eq!(find("sha256")["expected"], expected.as_str());
    assert_eq!(find("sha256")["actual"], sha256_hex(&bytes).as_str());
    assert_eq!(find("missing")["file"], "armonly-1.0-py3-none-any.whl");
    assert_eq!(find("unlisted")["file"], "stray.whl");
    assert!(stderr(&output).contains(&format!("oldpy-1.0-py3-none-any.whl has sha256 {}", sha256_hex(&bytes))));
}

#[test]
fn the_offline_install_check_names_requirements_target_and_package() {
    let project = Project::with_wheelhouse("purelib\n", &TWO_TARGETS);
    project.write("requirements.txt", "purelib\nspeedup\n");
    let mut command = project.command_with_test_python(&["verify-wheelhouse", "--json"]);
    // No network at all where this machine allows it: the check must not need any.
    if Command::new("unshare").args(["--net", "true"]).status().is_ok_and(|status| status.success()) {
        command = crate::support::in_no_network(&command);
    }
    let output = run_fails(&mut command);
    let report = json(&output);
    let install: Vec<&serde_json::Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|problem| problem["kind"] == "install" && problem["package"].is_string())
        .collect();
    let targets: Vec<&str> = install.iter().map(|problem| problem["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["linux-amd64-cp311", "linux-arm64-cp311"], "{report}");
    for problem in install {
        assert_eq!(problem["requirements"], "requirements.txt");
        assert_eq!(problem["package"], "speedup");
    }
    assert!(
        stderr(&output).contains("requirements.txt for linux/arm64 python 3.11: `speedup` cannot be installed offline"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn verify_archive_checks_content_and_sidecar_in_one_pass_and_refuses_broken_files() {
    let project = Project::with_wheelhouse("purelib\n", &TWO_TARGETS);
    let archive = project.tmp.path().join("wheelhouse.tgz");
    pack(&project, &project.wheelhouse(), &archive);
    let verify = |path: &Path, extra: &[&str]| {
        let mut command = project.command_with_test_python(&[&["verify-wheelhouse", "--json"][..], extra].concat());
        command.arg("--archive").arg(path);
        command
    };
    let report = json(&run_ok(&mut verify(&archive, &[])));
    assert_eq!(report["archive"]["sidecar"], "ok");
    assert_eq!(report["install_checks"].as_array().unwrap().len(), 2);
    assert_eq!(report["archive"]["archive_sha256"], sha256_hex(&fs_err::read(&archive).unwrap()).as_str());

    let sidecar = project.tmp.path().join("wheelhouse.tgz.sha256");
    fs_err::write(&sidecar, sidecar_line(&"0".repeat(64), "wheelhouse.tgz")).unwrap();
    let report = json(&run_fails(&mut verify(&archive, &["--no-install-check"])));
    assert_eq!(report["archive"]["sidecar"], "mismatch");
    assert_eq!(report["problems"][0]["expected"], "0".repeat(64));

    let bytes = fs_err::read(&archive).unwrap();
    for (name, content, expected) in [
        ("truncated.tgz", bytes[..bytes.len() / 2].to_vec(), "ends early (truncated?)"),
        ("empty.tgz", Vec::new(), "the archive is empty (0 bytes)"),
        ("plain.tgz", b"this is not a gzip file, only text".to_vec(), "it is not a gzip file"),
    ] {
        let path = project.tmp.path().join(name);
        fs_err::write(&path, content).unwrap();
        let error = stderr(&run_fails(&mut verify(&path, &["--no-install-check"])));
        assert!(error.contains(expected), "{name}: {error}");
    }
}

/// Writes an archive with Python's tarfile: the wheelhouse's manifest and SHA256SUMS first, then
/// one entry of the given kind, the way an attacker or a broken tool would.
fn malicious_archive(project: &Project, kind: &str) -> PathBuf {
    let script = r#"
import io, sys, tarfile
out, kind, wheelhouse = sys.argv[1], sys.argv[2], sys.argv[3]
def add(tar, name, data=b"x", **fields):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
    for name in ("manifest.json", "SHA256SUMS"):
        add(tar, "wheelhouse/" + name, open(wheelhouse + "/" + name, "rb").read())
    if kind == "dotdot": add(tar, "wheelhouse/../escape.txt")
    if kind == "absolute": add(tar, "/tmp/escape.txt")
    if kind == "symlink": add(tar, "wheelhouse/link.whl", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    if kind == "hardlink": add(tar, "wheelhouse/hard.whl", type=tarfile.LNKTYPE, linkname="wheelhouse/manifest.json")
    if kind == "device": add(tar, "wheelhouse/null.whl", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
    if kind == "duplicate":
        add(tar, "wheelhouse/SHA256SUMS", open(wheelhouse + "/SHA256SUMS", "rb").read())
    if kind == "oversize": add(tar, "wheelhouse/big.whl", b"y" * 4000)
data = bytearray(buffer.getvalue())
if kind == "oversize":
    # The last entry's header says 10 bytes; the 4000 that follow are read as headers.
    start = data.index(b"wheelhouse/big.whl")
    data[start + 124:start + 136] = b"%011o\0" % 10
    data[start + 148:start + 156] = b"        "
    data[start + 148:start + 156] = b"%06o\0 " % sum(data[start:start + 512])
import gzip
open(out, "wb").write(gzip.compress(bytes(data)))
"#;
    let path = project.tmp.path().join(format!("{kind}.tgz"));
    run_ok(Command::new(crate::support::python()).arg("-c").arg(script).arg(&path).arg(kind).arg(project.wheelhouse()));
    path
}

#[test]
fn unpack_refuses_malicious_archives_naming_the_entry_and_changes_nothing() {
    let project = Project::with_wheelhouse("purelib\n", &TWO_TARGETS);
    let before = project.snapshot();
    for (kind, expected) in [
        ("dotdot", "`wheelhouse/../escape.txt` has a `..` component"),
        ("absolute", "`/tmp/escape.txt` has an absolute path"),
        ("symlink", "`wheelhouse/link.whl` is a symbolic link"),
        ("hardlink", "`wheelhouse/hard.whl` is a hard link"),
        ("device", "`wheelhouse/null.whl` is a character device"),
        ("duplicate", "`wheelhouse/SHA256SUMS` appears twice"),
        ("oversize", "malformed after entry wheelhouse/big.whl"),
    ] {
        let archive = malicious_archive(&project, kind);
        let error = stderr(&run_fails(&mut unpack(&project, &archive)));
        assert!(error.contains(expected), "{kind}: {error}");
        assert!(error.contains("is unchanged"), "{kind}: {error}");
        assert_eq!(project.snapshot(), before, "{kind} changed the wheelhouse");
        assert!(!project.tmp.path().join("escape.txt").exists() && !Path::new("/tmp/escape.txt").exists());
    }
    let leftovers: Vec<String> =
        crate::support::file_names(&project.root()).into_iter().filter(|name| name.contains("staging")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn unpack_swaps_in_a_verified_wheelhouse_and_a_killed_unpack_changes_nothing() {
    let source = Project::with_wheelhouse("purelib\ncompiled\nbigpayload\n", &TWO_TARGETS);
    let archive = source.tmp.path().join("wheelhouse.tgz");
    pack(&source, &source.wheelhouse(), &archive);

    let target = Project::with_wheelhouse("speedup\n", &TWO_TARGETS);
    // The project moved on to the source's requirements, and the archive carries that wheelhouse:
    // an archive made for other inputs is refused (the Trust issue's foreign-archive case).
    target.write("requirements.txt", "purelib\ncompiled\nbigpayload\n");
    let before = target.snapshot();
    // Feed the archive through a FIFO and stop half way: the unpack is then mid-extraction.
    let fifo = target.tmp.path().join("incoming.tgz");
    run_ok(Command::new("mkfifo").arg(&fifo));
    let mut command = unpack(&target, &fifo);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.stderr(Stdio::null()).spawn().unwrap();
    let bytes = fs_err::read(&archive).unwrap();
    let mut writer = fs_err::OpenOptions::new().write(true).open(&fifo).unwrap();
    std::io::Write::write_all(&mut writer, &bytes[..bytes.len() / 2]).unwrap();
    let staging_files = || -> usize {
        let state = target.root().join(".wheelgap");
        if !state.is_dir() {
            return 0;
        }
        fs_err::read_dir(state)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("wheelhouse.staging-"))
            .map(|path| fs_err::read_dir(path).unwrap().count())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while staging_files() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(staging_files() >= 2, "the unpack never started extracting");
    // SAFETY: signalling the process group just created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    drop(writer);
    assert_eq!(target.snapshot(), before, "a killed unpack changed the wheelhouse");

    let output = run_ok(&mut unpack(&target, &archive));
    assert!(stderr(&output).contains("left by an interrupted run"), "{}", stderr(&output));
    assert_eq!(target.snapshot(), source.snapshot());
}

#[test]
fn a_killed_pack_leaves_the_previous_archive_intact() {
    let project = Project::with_wheelhouse("purelib\n", &TWO_TARGETS);
    let archive = project.root().join("wheelhouse.tgz");
    pack(&project, &project.wheelhouse(), &archive);
    let before = (fs_err::read(&archive).unwrap(), fs_err::read(project.root().join("wheelhouse.tgz.sha256")).unwrap());

    // A large file (sparse: no disk) listed in the manifest keeps the pack busy long enough.
    let huge = "huge-1.0-py3-none-any.whl";
    let file = fs_err::File::create(project.wheelhouse().join(huge)).unwrap();
    file.set_len(4 << 30).unwrap();
    let manifest_path = project.wheelhouse().join("manifest.json");
    let mut manifest = project.manifest();
    manifest["files"].as_array_mut().unwrap().push(serde_json::json!({
        "filename": huge, "name": "huge", "version": "1.0", "sha256": "0".repeat(64), "size": 4u64 << 30,
        "requirements": [], "targets": [], "origin": "index"
    }));
    let text = format!("{}\n", serde_json::to_string_pretty(&manifest).unwrap());
    fs_err::write(&manifest_path, &text).unwrap();
    let sums = Manifest::from_json(&text).unwrap().sha256sums(&sha256_hex(text.as_bytes()));
    fs_err::write(project.wheelhouse().join("SHA256SUMS"), sums).unwrap();

    let mut command = project.xtask();
    command.args(["pack-wheelhouse", "--output"]).arg(&archive);
    let mut child = command.stderr(Stdio::null()).spawn().unwrap();
    let partial_size = || -> u64 {
        fs_err::read_dir(project.root())
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(".wheelhouse.tgz.partial-"))
            .map(|entry| entry.metadata().unwrap().len())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while partial_size() < (8 << 20) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let was_writing = partial_size() >= (8 << 20);
    let _ = child.kill();
    let _ = child.wait();
    assert!(was_writing, "the pack never got under way");
    let after = (fs_err::read(&archive).unwrap(), fs_err::read(project.root().join("wheelhouse.tgz.sha256")).unwrap());
    assert!(after == before, "a killed pack changed the previous archive or its sidecar");
}
