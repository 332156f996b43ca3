//! Opt-in: the example requirements against pip's configured default index, four targets.
//! Off by default (tests are hermetic); run with `XTASK_LIVE_INDEX=1 cargo test --workspace live`,
//! and with `XTASK_CONTAINER_TESTS=1` as well to build the example services' images offline.

use std::process::Command;

use crate::support::{project::stderr, run_ok, tempdir};

#[test]
fn live_example_requirements_for_four_targets() {
    if std::env::var_os("XTASK_LIVE_INDEX").is_none_or(|value| value != "1") {
        eprintln!("skipped: set XTASK_LIVE_INDEX=1 to run against the real default index");
        return;
    }
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let tmp = tempdir();
    for file in [
        "requirements-api.txt",
        "requirements-worker.txt",
        "wheelhouse.toml",
        "compose/docker-compose.yml",
        "dockerfiles/api.Dockerfile",
        "dockerfiles/worker.Dockerfile",
        "services/api/app.py",
        "services/worker/worker.py",
    ] {
        fs_err::create_dir_all(tmp.path().join(file).parent().unwrap()).unwrap();
        fs_err::copy(repo.join(file), tmp.path().join(file)).unwrap();
    }
    // The host's pip configuration is kept: it is how this machine reaches its index.
    let output =
        run_ok(Command::new(env!("CARGO_BIN_EXE_wheelgap")).arg("-C").arg(tmp.path()).arg("create-wheelhouse"));
    let wheelhouse = tmp.path().join("wheelhouse");
    let files = crate::support::file_names(&wheelhouse);
    for (arch, python) in [("x86_64", "cp311"), ("x86_64", "cp312"), ("aarch64", "cp311"), ("aarch64", "cp312")] {
        let compiled =
            files.iter().any(|file| file.starts_with("markupsafe-") && file.contains(python) && file.contains(arch));
        assert!(compiled, "no markupsafe wheel for {arch} {python} in {files:?}\n{}", stderr(&output));
    }
    run_ok(Command::new("sha256sum").args(["--check", "--quiet", "SHA256SUMS"]).current_dir(&wheelhouse));
    let again = run_ok(Command::new(env!("CARGO_BIN_EXE_wheelgap")).arg("-C").arg(tmp.path()).arg("create-wheelhouse"));
    assert!(stderr(&again).contains("is up to date"), "{}", stderr(&again));

    // With the container tests on too: the example services built offline, with no network.
    if std::env::var_os("XTASK_CONTAINER_TESTS").is_none_or(|value| value != "1") {
        eprintln!("images skipped: set XTASK_CONTAINER_TESTS=1 as well to build the example services");
        return;
    }
    let prefix = format!("localhost/xtask-live-{}", std::process::id());
    let build = run_ok(
        Command::new("unshare")
            .args(["--net", env!("CARGO_BIN_EXE_wheelgap"), "-C"])
            .arg(tmp.path())
            .args(["build-offline", "--engine", "podman", "--no-cache"])
            .env("IMAGE_PREFIX", &prefix)
            .env("BUILDAH_ISOLATION", "chroot"),
    );
    eprintln!("{}", stderr(&build));
    let container = run_ok(Command::new("buildah").args(["from", "--pull-never", &format!("{prefix}/worker:latest")]));
    let container = String::from_utf8_lossy(&container.stdout).trim().to_owned();
    let ran = run_ok(Command::new("buildah").args([
        "run",
        "--isolation",
        "chroot",
        &container,
        "--",
        "python",
        "/app/worker.py",
    ]));
    run_ok(Command::new("buildah").args(["rm", &container]));
    assert!(String::from_utf8_lossy(&ran.stdout).contains("worker ready: requests 2.32.5"));
    for service in ["api", "worker"] {
        let _ = Command::new("podman").args(["rmi", "--force", &format!("{prefix}/{service}:latest")]).output();
    }
}
