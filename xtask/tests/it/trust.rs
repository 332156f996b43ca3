//! No input destroys data or makes the tool vouch for what it did not check: a wheelhouse path
//! that is the project, a file or someone's directory; an archive or output inside the
//! wheelhouse; a hostile manifest; a damaged wheelhouse called up to date; an include loop; and a
//! refresh that dropped a still-valid signature. Each test fails on the code before these fixes.

use std::path::Path;

use xtask::model::{digest::sha256_hex, manifest::Manifest};

use crate::support::{
    project::{stderr, stdout, Project, ONE_TARGET},
    run_fails, run_ok, tree,
};

fn create_flags(project: &Project, wheelhouse: &str) -> Vec<String> {
    let mut flags: Vec<String> =
        ["--index-url", &project.index.file_index_url(), "--no-build-tools", "--wheelhouse", wheelhouse]
            .map(str::to_owned)
            .to_vec();
    flags.extend(ONE_TARGET.map(str::to_owned));
    flags
}

#[test]
fn a_wheelhouse_path_that_is_not_a_wheelhouse_is_never_replaced() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    project.write("wheelhouse.toml", "");
    project.write("src/app.py", "print('mine')\n");
    project.write("docs/guide.md", "# mine\n");
    project.write("notes.txt", "not a directory\n");
    let before = tree(&project.root());

    for (wheelhouse, expected) in [
        (".", "is the project root or a directory above it"),
        ("..", "is the project root or a directory above it"),
        ("docs", "holds no manifest this tool wrote (it holds guide.md)"),
        ("notes.txt", "is a file, not a wheelhouse directory"),
    ] {
        let flags = create_flags(&project, wheelhouse);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let error = stderr(&project.create_fails(&flags));
        assert!(error.contains(expected), "--wheelhouse {wheelhouse}: {error}");
        assert!(error.contains("refused; nothing was changed"), "{error}");
        assert_eq!(tree(&project.root()), before, "--wheelhouse {wheelhouse} changed the project");
    }
    // Nothing was left beside them either, so the next run with a real wheelhouse works.
    let names: Vec<String> = fs_err::read_dir(project.root())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(names.iter().all(|name| !name.contains("staging")), "{names:?}");
    let flags = create_flags(&project, "wheelhouse");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    project.create(&flags);

    // A wheelhouse of this tool with a file of someone else's inside is refused too, for create
    // and for unpack.
    fs_err::write(project.wheelhouse().join("thesis.pdf"), "years of work").unwrap();
    let error = stderr(&project.create_fails(&[&flags[..], &["--refresh"]].concat()));
    assert!(error.contains("holds thesis.pdf, which its manifest does not account for"), "{error}");
    fs_err::remove_file(project.wheelhouse().join("thesis.pdf")).unwrap();
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    let error =
        stderr(&run_fails(&mut project.command(&["unpack-wheelhouse", "wheelhouse.tgz", "--wheelhouse", "docs"])));
    assert!(error.contains("holds no manifest this tool wrote (it holds guide.md)"), "{error}");
    assert_eq!(fs_err::read_to_string(project.root().join("docs/guide.md")).unwrap(), "# mine\n");
}

#[test]
fn an_archive_or_output_inside_the_wheelhouse_is_refused() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    let wheelhouse = project.wheelhouse();
    let before = tree(&wheelhouse);
    let error = stderr(&run_fails(&mut project.command(&["pack-wheelhouse", "--output", "wheelhouse/manifest.json"])));
    assert!(error.contains("is inside the wheelhouse"), "{error}");
    assert_eq!(tree(&wheelhouse), before, "pack changed the wheelhouse");

    // An archive carried into the wheelhouse directory would be deleted by the swap.
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    let inside = wheelhouse.join("incoming.tgz");
    fs_err::copy(project.root().join("wheelhouse.tgz"), &inside).unwrap();
    let error = stderr(&run_fails(&mut project.command(&["unpack-wheelhouse", "wheelhouse/incoming.tgz"])));
    assert!(error.contains("is inside the wheelhouse it would replace"), "{error}");
    assert!(inside.is_file(), "the archive was deleted");
}

#[test]
fn a_manifest_naming_files_outside_the_wheelhouse_is_refused() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    let wheelhouse = project.wheelhouse();
    // A manifest that lists /etc/hostname and ../secret, with sums that match, as a hostile
    // archive could carry it.
    project.write("secret", "key\n");
    let mut manifest = Manifest::from_json(&fs_err::read_to_string(wheelhouse.join("manifest.json")).unwrap()).unwrap();
    let template = manifest.files[0].clone();
    for (filename, bytes) in
        [("../secret", b"key\n".to_vec()), ("/etc/hostname", fs_err::read("/etc/hostname").unwrap())]
    {
        let mut entry = template.clone();
        entry.filename = filename.to_owned();
        entry.sha256 = sha256_hex(&bytes);
        entry.size = bytes.len() as u64;
        manifest.files.push(entry);
    }
    let text = manifest.to_json();
    fs_err::write(wheelhouse.join("manifest.json"), &text).unwrap();
    fs_err::write(wheelhouse.join("SHA256SUMS"), manifest.sha256sums(&sha256_hex(text.as_bytes()))).unwrap();

    for command in [&["verify-wheelhouse", "--no-install-check"][..], &["sbom"], &["pack-wheelhouse"]] {
        let error = stderr(&run_fails(&mut project.command(command)));
        assert!(error.contains("is not a plain distribution file name"), "{command:?}: {error}");
    }
    assert!(!wheelhouse.join("sbom.cdx.json").exists());
}

#[test]
fn a_damaged_wheelhouse_is_repaired_not_called_up_to_date() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    let wheelhouse = project.wheelhouse();
    let flags = create_flags(&project, "wheelhouse");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    // SHA256SUMS edited: the cheap check sees it.
    let sums = fs_err::read_to_string(wheelhouse.join("SHA256SUMS")).unwrap();
    fs_err::write(wheelhouse.join("SHA256SUMS"), sums.replacen('0', "1", 1)).unwrap();
    let output = project.create(&flags);
    assert!(stderr(&output).contains("SHA256SUMS does not match manifest.json"), "{}", stderr(&output));
    assert!(stderr(&output).contains("repairing"), "{}", stderr(&output));
    assert_eq!(fs_err::read_to_string(wheelhouse.join("SHA256SUMS")).unwrap(), sums);

    // A wheel's bytes changed, its size kept: only --full-check sees it, and pack's hint says so.
    let wheel = wheelhouse.join("purelib-1.0-py3-none-any.whl");
    let mut bytes = fs_err::read(&wheel).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs_err::write(&wheel, &bytes).unwrap();
    let error = stderr(&run_fails(&mut project.command(&["pack-wheelhouse"])));
    assert!(error.contains("`wheelgap create-wheelhouse --full-check` repairs it"), "{error}");
    let output = project.create(&[&flags[..], &["--full-check"]].concat());
    assert!(stderr(&output).contains("repairing"), "{}", stderr(&output));
    run_ok(&mut project.command(&["verify-wheelhouse", "--no-install-check"]));
}

#[test]
fn an_include_loop_is_named() {
    let project = Project::new();
    project.write("requirements.txt", "-r a.txt\n");
    project.write("a.txt", "purelib\n-r b.txt\n");
    project.write("b.txt", "-r a.txt\n");
    let flags = create_flags(&project, "wheelhouse");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let error = stderr(&project.create_fails(&flags));
    assert!(error.contains("an include loop: a.txt -> b.txt -> a.txt"), "{error}");
    assert!(!error.contains("RecursionError"), "{error}");
}

#[test]
fn a_refresh_that_changes_nothing_keeps_the_signature_and_the_sbom() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    let wheelhouse = project.wheelhouse();
    run_ok(&mut project.command(&["sbom"]));
    // Any bytes stand in for a signature here: what matters is whether create keeps the file.
    fs_err::write(wheelhouse.join("manifest.json.asc"), "signature of these manifest bytes").unwrap();
    let manifest = fs_err::read(wheelhouse.join("manifest.json")).unwrap();
    let flags = create_flags(&project, "wheelhouse");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let output = project.create(&[&flags[..], &["--refresh", "--json"]].concat());
    assert_eq!(fs_err::read(wheelhouse.join("manifest.json")).unwrap(), manifest, "the manifest changed");
    assert!(wheelhouse.join("manifest.json.asc").is_file(), "{}", stderr(&output));
    assert!(wheelhouse.join("sbom.cdx.json").is_file(), "{}", stderr(&output));
    let outcome: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(outcome["removed"], serde_json::json!([]));
    run_ok(&mut project.command(&["verify-wheelhouse", "--no-install-check"]));

    // A manifest with other bytes drops them: they describe the old one.
    project.write("requirements.txt", "purelib\nspeedup\n");
    let output = project.create(&flags);
    assert!(stderr(&output).contains("removed manifest.json.asc (it describes the previous manifest)"));
    assert!(!wheelhouse.join("sbom.cdx.json").exists());
}

#[test]
fn status_calls_an_archive_current_only_if_it_holds_what_the_wheelhouse_holds_and_check_fails_ci() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    let status = |project: &Project| -> serde_json::Value {
        serde_json::from_str(&stdout(&run_ok(&mut project.command(&["status", "--json"])))).unwrap()
    };
    run_ok(&mut project.command(&["lock"]));
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    assert_eq!(status(&project)["archive"]["state"], "current");
    run_ok(&mut project.command(&["status", "--check"]));

    // An SBOM made after packing: the archive no longer holds what the wheelhouse holds.
    run_ok(&mut project.command(&["sbom"]));
    assert_eq!(status(&project)["archive"]["state"], "stale");
    let error = stderr(&run_fails(&mut project.command(&["status", "--check"])));
    assert!(error.contains("wheelhouse.tgz: stale"), "{error}");
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    assert_eq!(status(&project)["archive"]["state"], "current");
    run_ok(&mut project.command(&["status", "--check"]));

    // A stale lock fails both checks alike, and so does a changed requirements file.
    let lock = project.root().join("requirements.lock.txt");
    fs_err::write(&lock, fs_err::read_to_string(&lock).unwrap().replace("purelib==1.0", "purelib==0.9")).unwrap();
    let error = stderr(&run_fails(&mut project.command(&["status", "--check"])));
    assert!(error.contains("requirements.lock.txt: stale"), "{error}");
    run_fails(&mut project.command(&["lock", "--check"]));
    run_ok(&mut project.command(&["lock"]));
    project.write("requirements.txt", "purelib\nspeedup\n");
    let error = stderr(&run_fails(&mut project.command(&["status", "--check"])));
    assert!(error.contains("requirements.txt changed since the wheelhouse was made"), "{error}");
}

#[test]
fn a_dead_index_is_named_not_reported_as_a_package_without_versions() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://user:secret@127.0.0.1:{port}/simple/");
    let mut command = project.create_command(&[
        "--index-url",
        &url,
        "--no-build-tools",
        "--platform",
        "linux/amd64",
        "--python",
        "3.11",
    ]);
    // One retry (pip says why it retries), refused at once: the test stays fast.
    command.env("PIP_RETRIES", "1").env("PIP_TIMEOUT", "5");
    let error = stderr(&run_fails(&mut command));
    assert!(error.contains("pip could not reach the index for `purelib`"), "{error}");
    assert!(error.contains(&format!("index: http://****@127.0.0.1:{port}/simple/")), "{error}");
    assert!(error.contains("Connection refused"), "{error}");
    assert!(!error.contains("secret"), "{error}");
    assert!(!error.contains("versions pip could use"), "{error}");
}

#[test]
fn pack_sign_and_sbom_name_a_run_that_holds_the_wheelhouse() {
    use std::os::fd::AsRawFd;
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    // What a create or unpack under way holds.
    let lock = fs_err::File::open(project.root().join(".wheelgap/wheelhouse.lock")).unwrap();
    // SAFETY: flock on a descriptor this test owns; released when it is dropped.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    for command in [&["pack-wheelhouse"][..], &["sbom"], &["sign", "--gpg", "nobody"]] {
        let error = stderr(&run_fails(&mut project.command(command)));
        assert!(error.contains("another run is using"), "{command:?}: {error}");
    }
    drop(lock);
    run_ok(&mut project.command(&["pack-wheelhouse"]));
}

#[test]
fn another_projects_archive_is_refused_unless_accepted_on_purpose() {
    let theirs = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    run_ok(&mut theirs.command(&["pack-wheelhouse"]));
    let archive = theirs.root().join("wheelhouse.tgz").display().to_string();

    let ours = Project::new();
    ours.write("requirements-api.txt", "speedup\n");
    let error = stderr(&run_fails(&mut ours.command(&["unpack-wheelhouse", &archive])));
    assert!(error.contains("it was made for other inputs than this project's"), "{error}");
    assert!(error.contains("requirements.txt is gone"), "{error}");
    assert!(error.contains("requirements-api.txt is not in the wheelhouse"), "{error}");
    assert!(!ours.wheelhouse().exists(), "unpack wrote a wheelhouse");

    let output = run_fails(&mut ours.command_with_test_python(&["verify-wheelhouse", "--archive", &archive, "--json"]));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let foreign: Vec<&serde_json::Value> =
        report["problems"].as_array().unwrap().iter().filter(|problem| problem["kind"] == "foreign").collect();
    assert_eq!(foreign.len(), 2, "{report:#}");

    run_ok(&mut ours.command_with_test_python(&["verify-wheelhouse", "--archive", &archive, "--accept-foreign"]));
    run_ok(&mut ours.command(&["unpack-wheelhouse", &archive, "--accept-foreign"]));
    assert!(ours.wheelhouse().join("manifest.json").is_file());
}

#[test]
fn an_unreadable_sidecar_is_a_problem_and_a_signature_refusal_names_no_unrelated_entry() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    let sidecar = project.root().join("wheelhouse.tgz.sha256");
    for (what, make) in [
        ("not UTF-8", &(|path: &Path| fs_err::write(path, b"\xff\xfe not text\n").unwrap()) as &dyn Fn(&Path)),
        ("a directory", &|path: &Path| fs_err::create_dir(path).unwrap()),
    ] {
        fs_err::remove_file(&sidecar).ok();
        make(&sidecar);
        let output = run_fails(&mut project.command(&[
            "verify-wheelhouse",
            "--no-install-check",
            "--archive",
            "wheelhouse.tgz",
        ]));
        let error = stderr(&output);
        assert!(error.contains("cannot be read as a sha256sum line"), "{what}: {error}");
        fs_err::remove_dir(&sidecar).ok();
    }
    // No signature where one is required: the refusal is about the manifest, not about the
    // distribution that happened to come next in the archive.
    let keyring = project.write("keys.gpg", "not read: there is no signature to check\n").display().to_string();
    let error = stderr(&run_fails(&mut project.command(&[
        "verify-wheelhouse",
        "--no-install-check",
        "--archive",
        "wheelhouse.tgz",
        "--keyring",
        &keyring,
    ])));
    assert!(error.contains("no manifest.json.asc: the wheelhouse is not signed"), "{error}");
    assert!(!error.contains("archive entry"), "{error}");
}
