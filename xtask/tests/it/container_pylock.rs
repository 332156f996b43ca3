//! An image installed offline from the PEP 751 lock that `lock --format pylock` wrote: no
//! resolution in the build, pip 26.1+ taken from the wheelhouse itself, the same packages as the
//! manifest's resolution. Needs what the other container tests need and a real pip wheel of 26.1
//! or later in `XTASK_PIP_WHEEL_DIR` (`.ci/run` downloads one): the fixture index's pip is a
//! stand-in.

use crate::{
    containers::{container_tests_enabled, dockerfile, in_image},
    support::{
        in_no_network,
        project::{stderr, Project},
        run_fails, run_ok,
    },
};

const COMPOSE: &str = r#"
services:
  api:
    build:
      context: ..
      dockerfile: dockerfiles/api.Dockerfile
      args:
        OFFLINE: ${OFFLINE:-0}
        BASE_IMAGE: ${BASE_IMAGE}
      additional_contexts:
        wheelhouse: ../wheelhouse
    image: ${IMAGE_PREFIX}/api:latest
    x-requirements: ../requirements-api.txt
"#;

#[test]
fn an_offline_build_installs_from_the_pylock_with_a_pip_from_the_wheelhouse() {
    if !container_tests_enabled() {
        return;
    }
    let Some(pip_wheels) = std::env::var_os("XTASK_PIP_WHEEL_DIR") else {
        eprintln!("skipped: set XTASK_PIP_WHEEL_DIR to a directory holding a pip wheel of 26.1 or later");
        return;
    };
    let base_image =
        std::env::var("XTASK_BASE_IMAGE").unwrap_or_else(|_| "localhost/wheelhouse-base:bookworm".to_owned());
    let project = Project::new();
    let prefix = format!("localhost/xtask-pylock-{}", std::process::id());
    project.write("compose/docker-compose.yml", COMPOSE);
    project.write("dockerfiles/api.Dockerfile", &dockerfile("api.py"));
    project.write("api.py", "import purelib, compiled, withextra, speedup\n");
    project.write("requirements-api.txt", "purelib\ncompiled\nwithextra[fast]\n");
    let xtask = |args: &[&str]| {
        let mut command = project.command(args);
        command.env("BASE_IMAGE", &base_image).env("IMAGE_PREFIX", &prefix).env("BUILDAH_ISOLATION", "chroot");
        command
    };

    // With the build tools: the wheelhouse's pip is the one that installs the lock.
    let index_url = project.index.file_index_url();
    let find_links = pip_wheels.to_string_lossy().into_owned();
    let targets = ["--platform", "linux/amd64", "--python", "3.11", "--libc", "glibc_2_36"];
    project.create(&[&["--index-url", index_url.as_str(), "--find-links", find_links.as_str()][..], &targets].concat());
    run_ok(&mut xtask(&["lock", "--format", "pylock"]));
    run_ok(&mut xtask(&["dockerfiles"]));
    let generated = fs_err::read_to_string(project.root().join("dockerfiles/api.Dockerfile")).unwrap();
    assert!(generated.contains("COPY pylock.requirements-api.toml /tmp/wheelgap/pylock.toml"), "{generated}");
    assert!(generated.contains("target=/tmp/wheelgap/wheelhouse,readonly"), "{generated}");

    run_ok(&mut in_no_network(&xtask(&["build-offline", "--engine", "podman", "--no-cache", "--tag", "pylock"])));
    let image = format!("{prefix}/api:pylock");
    in_image(&image, &["/opt/venv/bin/python", "/app/api.py"]);
    let pip = in_image(&image, &["/opt/venv/bin/pip", "--version"]);
    assert!(pip.starts_with("pip 26."), "{pip}");
    let mut frozen: Vec<String> = in_image(&image, &["/opt/venv/bin/pip", "freeze", "--exclude", "pip"])
        .lines()
        .map(|line| line.trim().to_ascii_lowercase())
        .collect();
    frozen.sort();
    let manifest = project.manifest();
    let resolution = manifest["resolutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resolution| resolution["requirements"] == "requirements-api.txt")
        .unwrap();
    let mut expected: Vec<String> = resolution["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| format!("{}=={}", package["name"].as_str().unwrap(), package["version"].as_str().unwrap()))
        .collect();
    expected.sort();
    assert_eq!(frozen, expected);
    let _ = std::process::Command::new("podman").args(["rmi", "--force", &image]).output();

    // A wheelhouse without a pip that can install the lock is refused before any build.
    project.create(&[&["--index-url", index_url.as_str(), "--no-build-tools"][..], &targets].concat());
    let refused = stderr(&run_fails(&mut xtask(&["build-offline", "--engine", "podman", "--tag", "nopip"])));
    assert!(refused.contains("needs pip 26.1 or later from the wheelhouse"), "{refused}");
}
