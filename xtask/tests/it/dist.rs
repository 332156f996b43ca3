//! `dist` end to end: two runs give the same bytes; in this workspace what they pack builds and
//! runs with no network and an empty cargo home (slow, a whole build of the tool:
//! `XTASK_SLOW_TESTS=1`); in a plain Python project the binary they carry unpacks the wheelhouse.

use std::{
    ffi::OsString,
    path::Path,
    process::{Command, Output},
};

use crate::support::{
    file_names,
    project::{stderr, stdout, Project, ONE_TARGET},
    run_ok, scrub_env, tempdir,
};

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ sits in the workspace root")
}

fn dist(project: &Path, output: &Path) -> Output {
    run_ok(Command::new(env!("CARGO_BIN_EXE_wheelgap")).arg("-C").arg(project).args(["dist", "--output"]).arg(output))
}

/// The files git lists in the workspace, copied to `copy` with every mtime set to 1970-01-01:
/// another directory, other mtimes, and no `.git`, so dist walks it instead of asking git.
fn copy_workspace(copy: &Path) {
    let listed = run_ok(
        Command::new("git")
            .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
            .current_dir(workspace_root()),
    );
    for relative in listed.stdout.split(|byte| *byte == 0).filter(|path| !path.is_empty()) {
        let relative = std::str::from_utf8(relative).unwrap();
        let source = workspace_root().join(relative);
        if fs_err::symlink_metadata(&source).is_ok_and(|metadata| metadata.is_file()) {
            let destination = copy.join(relative);
            fs_err::create_dir_all(destination.parent().unwrap()).unwrap();
            // fs::copy keeps the permission bits: the executable ones must survive.
            fs_err::copy(&source, &destination).unwrap();
        }
    }
    run_ok(Command::new("find").arg(copy).args(["-exec", "touch", "-m", "-d", "@1", "{}", "+"]));
}

/// `tar tvzf`: what differs between two archives, when they do.
fn listing(archive: &Path) -> Vec<String> {
    stdout(&run_ok(Command::new("tar").arg("tvzf").arg(archive))).lines().map(str::to_owned).collect()
}

/// A cargo that sees nothing of this machine's cargo setup: an empty home, no `CARGO_*` settings
/// inherited from the `cargo test` that runs us, and no network at all.
fn offline_cargo(cargo_home: &Path, target_dir: &Path, in_dir: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new("unshare");
    command.arg("--net").arg(cargo).current_dir(in_dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CARGO") {
            command.env_remove(&name);
        }
    }
    command.env("CARGO_HOME", cargo_home).env("CARGO_TARGET_DIR", target_dir);
    command
}

#[test]
fn dist_is_reproducible_and_builds_with_no_network_and_an_empty_cargo_home() {
    if std::env::var_os("XTASK_SLOW_TESTS").is_none_or(|value| value != "1") {
        eprintln!("skipped: set XTASK_SLOW_TESTS=1");
        return;
    }
    let tmp = tempdir();
    let copy = tmp.path().join("elsewhere").join("project-copy");
    copy_workspace(&copy);
    let (first, second) = (tmp.path().join("a.tgz"), tmp.path().join("b.tgz"));
    let summary = stderr(&dist(workspace_root(), &first));
    assert!(summary.contains("vendored crates") && summary.contains("sha256 "), "{summary}");
    assert!(summary.contains("cargo build --offline --frozen --release -p xtask"), "{summary}");
    // Another directory, other mtimes, a fresh staging directory for `cargo vendor`, files
    // found by walking instead of by git: the same bytes.
    dist(&copy, &second);
    if fs_err::read(&first).unwrap() != fs_err::read(&second).unwrap() {
        let (first_listing, second_listing) = (listing(&first), listing(&second));
        let differing: Vec<&String> = first_listing
            .iter()
            .filter(|line| !second_listing.contains(line))
            .chain(second_listing.iter().filter(|line| !first_listing.contains(line)))
            .collect();
        panic!("two dists of the same files differ (was the workspace edited meanwhile?): {differing:#?}");
    }
    run_ok(Command::new("sha256sum").args(["--check", "a.tgz.sha256", "b.tgz.sha256"]).current_dir(tmp.path()));

    let far_side = tmp.path().join("far-side");
    fs_err::create_dir(&far_side).unwrap();
    run_ok(Command::new("tar").arg("xzf").arg(&first).current_dir(&far_side));
    let extracted = far_side.join("wheelgap-dist");
    for expected in ["Cargo.toml", "Cargo.lock", "xtask/src/main.rs", ".cargo/config.toml", "vendor"] {
        assert!(extracted.join(expected).exists(), "{expected} is not in the archive");
    }
    for absent in ["target", "wheelhouse", "wheelgap-dist.tgz", ".git"] {
        assert!(!extracted.join(absent).exists(), "{absent} should not be in the archive");
    }

    match Command::new("unshare").args(["--net", "true"]).output() {
        Ok(probe) if probe.status.success() => {}
        Ok(probe) => {
            eprintln!("skipped the offline build: `unshare --net` needs root here ({})", stderr(&probe).trim());
            return;
        }
        Err(error) => {
            eprintln!("skipped the offline build: cannot run unshare ({error})");
            return;
        }
    }
    let cargo_home = tmp.path().join("empty-cargo-home");
    let target_dir = tmp.path().join("target");
    fs_err::create_dir(&cargo_home).unwrap();
    run_ok(offline_cargo(&cargo_home, &target_dir, &extracted).args(["build", "--offline", "--frozen", "-p", "xtask"]));

    let built = target_dir.join("debug").join("wheelgap");
    let help = stdout(&run_ok(Command::new(&built).arg("--help")));
    assert!(help.contains("Offline, reproducible Python wheelhouses") && help.contains("create-wheelhouse"), "{help}");
    let create_help = stdout(&run_ok(Command::new(&built).args(["create-wheelhouse", "--help"])));
    assert!(create_help.contains("Usage: cargo xtask create-wheelhouse"), "{create_help}");
    // The project's `[alias]` survived next to the source replacement.
    let via_alias =
        stdout(&run_ok(offline_cargo(&cargo_home, &target_dir, &extracted).args(["xtask", "dist", "--help"])));
    assert!(via_alias.contains("Usage: cargo xtask dist"), "{via_alias}");
}

/// A plain Python project (no `Cargo.toml`): the archive carries its files and the running binary,
/// and that binary unpacks the wheelhouse into the extracted project on the far side.
#[test]
fn a_python_project_travels_with_the_binary_and_unpacks_on_the_far_side() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    project.write("Dockerfile", "FROM python:3.11-slim\n");
    assert!(project.root().join(".wheelgap/.gitignore").is_file(), "the run made no state directory");
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    let media = project.tmp.path().join("media");
    fs_err::create_dir(&media).unwrap();
    let summary = stderr(&run_ok(project.command(&["dist", "--output"]).arg(media.join("wheelgap-dist.tgz"))));
    let platform = format!("bin/wheelgap for {} {}", std::env::consts::OS, std::env::consts::ARCH);
    assert!(
        summary.contains(&platform) && summary.contains("bin/wheelgap unpack-wheelhouse ../wheelhouse.tgz"),
        "{summary}"
    );
    assert!(!summary.contains("cargo"), "a project without cargo is told to use cargo: {summary}");
    let first = fs_err::read(media.join("wheelgap-dist.tgz")).unwrap();
    run_ok(project.command(&["dist", "--output"]).arg(media.join("wheelgap-dist.tgz")));
    assert!(first == fs_err::read(media.join("wheelgap-dist.tgz")).unwrap(), "two dists of the same project differ");
    for name in ["wheelhouse.tgz", "wheelhouse.tgz.sha256"] {
        fs_err::copy(project.root().join(name), media.join(name)).unwrap();
    }

    run_ok(
        Command::new("sha256sum")
            .args(["--check", "wheelhouse.tgz.sha256", "wheelgap-dist.tgz.sha256"])
            .current_dir(&media),
    );
    run_ok(Command::new("tar").args(["xzf", "wheelgap-dist.tgz"]).current_dir(&media));
    let extracted = media.join("wheelgap-dist");
    assert_eq!(file_names(&extracted), ["Dockerfile", "requirements.txt"], "the project's files");
    for absent in ["wheelhouse", ".wheelgap", "wheelhouse.tgz"] {
        assert!(!extracted.join(absent).exists(), "{absent} should not be in the archive");
    }
    let mut unpack = Command::new(extracted.join("bin/wheelgap"));
    scrub_env(&mut unpack);
    unpack.current_dir(&extracted).env("PIP_CONFIG_FILE", "/dev/null").args(["unpack-wheelhouse", "../wheelhouse.tgz"]);
    let unpacked = stderr(&run_ok(&mut unpack));
    assert!(unpacked.contains("wheelgap"), "{unpacked}");
    assert_eq!(
        fs_err::read(extracted.join("wheelhouse/manifest.json")).unwrap(),
        fs_err::read(project.wheelhouse().join("manifest.json")).unwrap(),
        "the far side's wheelhouse is not the one packed"
    );
}
