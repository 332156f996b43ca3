//! The tool as a user outside this repository gets it: the maturin wheel installed into a fresh
//! virtual environment, then `wheelgap init`, create, pack, verify and `status --check` in a plain
//! Python project with no Cargo.toml, on the hermetic index. Every message names `wheelgap`.
//! Run with `XTASK_WHEEL_TESTS=1` (and `XTASK_MATURIN=/path/to/maturin` when it is not on PATH);
//! `.ci/run` sets both. `--nocapture` shows what a user sees.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::support::{
    project::{stderr, stdout, Project},
    python, run_fails, run_ok, scrub_env,
};

/// Builds the wheel with maturin, in the dev profile and a target directory of its own: maturin's
/// cargo would otherwise relink `target/debug/wheelgap` while other tests run it.
fn build_wheel(out: &Path) -> PathBuf {
    let maturin = std::env::var_os("XTASK_MATURIN").unwrap_or_else(|| "maturin".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let target_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/maturin");
    let mut command = Command::new(maturin);
    command.arg("build").arg("-m").arg(&manifest).arg("--out").arg(out).env("CARGO_TARGET_DIR", target_dir);
    run_ok(&mut command);
    let wheels: Vec<PathBuf> = fs_err::read_dir(out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    wheels[0].clone()
}

/// Runs the installed `wheelgap` in the project, as a user would, and shows what it printed.
fn wheelgap(project: &Project, binary: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    scrub_env(&mut command);
    command
        .args(args)
        .current_dir(project.root())
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_CACHE_DIR", project.tmp.path().join("pip-cache"))
        .env_remove("CARGO");
    command
}

fn shown(args: &[&str], output: &Output) -> String {
    let text = format!("$ wheelgap {}\n{}{}", args.join(" "), stderr(output), stdout(output));
    eprintln!("{text}");
    text
}

const COMPOSE: &str = "\
services:
  api:
    build:
      context: .
      dockerfile: Dockerfile
    image: example/api:latest
    platform: linux/arm64
    x-requirements: requirements.txt
";

const DOCKERFILE: &str = "FROM python:3.12-slim\nCOPY . /app\n";

#[test]
fn the_installed_wheel_works_in_a_plain_python_project() {
    if std::env::var_os("XTASK_WHEEL_TESTS").is_none() {
        return;
    }
    let project = Project::new();
    let wheel = build_wheel(&project.tmp.path().join("dist"));
    let venv = project.tmp.path().join("venv");
    run_ok(Command::new(python()).args(["-m", "venv"]).arg(&venv));
    run_ok(Command::new(venv.join("bin/python")).args(["-m", "pip", "install", "--no-index", "--quiet"]).arg(&wheel));
    let binary = venv.join("bin/wheelgap");
    assert!(binary.is_file(), "the wheel installed no wheelgap script");

    let version = stdout(&run_ok(&mut wheelgap(&project, &binary, &["--version"])));
    assert_eq!(version.trim(), format!("wheelgap {}", env!("CARGO_PKG_VERSION")));

    project.write("requirements.txt", "purelib\n");
    project.write("compose.yaml", COMPOSE);
    project.write("Dockerfile", DOCKERFILE);
    assert!(!project.root().join("Cargo.toml").exists());

    // Before anything exists, the hint names the installed binary.
    let args = ["pack-wheelhouse"];
    let text = shown(&args, &run_fails(&mut wheelgap(&project, &binary, &args)));
    assert!(text.contains("hint: run `wheelgap create-wheelhouse` first"), "{text}");

    let args = ["init"];
    shown(&args, &run_ok(&mut wheelgap(&project, &binary, &args)));
    let settings: toml::Table =
        toml::from_str(&fs_err::read_to_string(project.root().join("wheelhouse.toml")).unwrap()).unwrap();
    assert_eq!(settings["targets"]["python"].as_array().unwrap()[0].as_str(), Some("3.12"), "{settings:#?}");
    assert_eq!(settings["targets"]["platforms"].as_array().unwrap()[0].as_str(), Some("linux/arm64"), "{settings:#?}");

    let url = project.index.file_index_url();
    let interpreter = python().to_string_lossy().into_owned();
    let create = ["create-wheelhouse", "--index-url", &url, "--no-build-tools", "--python-interpreter", &interpreter];
    let text = shown(&create, &run_ok(&mut wheelgap(&project, &binary, &create)));
    assert!(text.contains("wrote wheelhouse:"), "{text}");
    let manifest: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(project.wheelhouse().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["targets"][0]["id"], "linux-arm64-cp312");

    for args in [
        &["pack-wheelhouse"][..],
        &["verify-wheelhouse", "--archive", "wheelhouse.tgz", "--python-interpreter", &interpreter],
        &["lock"],
        &["status", "--check"],
    ] {
        shown(args, &run_ok(&mut wheelgap(&project, &binary, args)));
    }
    // A stale input: status --check fails and says what to run, by this binary's name.
    project.write("requirements.txt", "purelib\nspeedup\n");
    let args = ["status", "--check"];
    let text = shown(&args, &run_fails(&mut wheelgap(&project, &binary, &args)));
    assert!(text.contains("hint: wheelgap create-wheelhouse"), "{text}");
    assert!(!text.contains("cargo xtask"), "{text}");
}
