//! `lock --format pylock`: a PEP 751 lock per requirements file, for every target, whose wheels
//! point into the wheelhouse; the same bytes on a re-run, `--check`; read back by the reference
//! parser (`packaging.pylock`, vendored by pip 26), installed offline by pip 26.1+ and by uv.
//!
//! The pip and uv checks need a pip of at least 26.1 as the test interpreter's
//! (`XTASK_TEST_PYTHON`; `.ci/run` runs this file with pip 26.3) and `XTASK_UV`; without them
//! those parts are skipped, saying so.

use std::process::Command;

use crate::support::{
    project::{stderr, stdout, Project, FOUR_TARGETS},
    python, run_fails, run_ok, scrub_env, uv_under_test,
};

const REQUIREMENTS: &str = "purelib\ncompiled\nx86only; platform_machine == \"x86_64\"\nwithextra[fast]\n";

/// The packages a dry run says it would install, as `name==version`, sorted.
fn would_install(report: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = report["install"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            format!("{}=={}", item["metadata"]["name"].as_str().unwrap(), item["metadata"]["version"].as_str().unwrap())
        })
        .collect();
    names.sort();
    names
}

/// The manifest's resolution of `requirements.txt` for `target`, as `name==version`, sorted.
fn resolved(manifest: &serde_json::Value, target: &str) -> Vec<String> {
    let resolution = manifest["resolutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resolution| resolution["requirements"] == "requirements.txt" && resolution["target"] == target)
        .unwrap();
    let mut names: Vec<String> = resolution["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| format!("{}=={}", package["name"].as_str().unwrap(), package["version"].as_str().unwrap()))
        .collect();
    names.sort();
    names
}

fn pip_version(python: &std::ffi::OsStr) -> (u64, u64) {
    let output = run_ok(Command::new(python).args(["-c", "import pip; print(pip.__version__)"]));
    let text = stdout(&output);
    let mut parts = text.trim().split('.').map(|part| part.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn an_exported_pylock_is_stable_checked_and_installs_offline_with_pip_and_uv() {
    let project = Project::new();
    project.write("requirements.txt", REQUIREMENTS);
    project.create_from_file_index(&FOUR_TARGETS);
    let manifest = project.manifest();

    run_ok(&mut project.command(&["lock", "--format", "pylock"]));
    let path = project.root().join("pylock.requirements.toml");
    let text = fs_err::read_to_string(&path).unwrap();
    let lock: toml::Table = text.parse().unwrap();
    assert_eq!(lock["lock-version"].as_str(), Some("1.0"));
    assert_eq!(lock["environments"].as_array().unwrap().len(), 4, "{text}");
    let packages = lock["packages"].as_array().unwrap();
    let package = |name: &str| packages.iter().find(|package| package["name"].as_str() == Some(name)).unwrap();
    assert_eq!(package("x86only")["marker"].as_str(), Some("platform_machine == \"x86_64\""), "{text}");
    assert!(package("purelib").get("marker").is_none(), "{text}");
    // Every wheel of the wheelhouse this file needs, with its path from the lock, size and sha256.
    let compiled = package("compiled")["wheels"].as_array().unwrap();
    assert_eq!(compiled.len(), 4, "{text}");
    for wheel in compiled {
        let filename = wheel["name"].as_str().unwrap();
        let entry = manifest["files"].as_array().unwrap().iter().find(|entry| entry["filename"] == filename).unwrap();
        assert_eq!(wheel["path"].as_str().unwrap(), format!("wheelhouse/{filename}"));
        assert_eq!(wheel["size"].as_integer().unwrap() as u64, entry["size"].as_u64().unwrap());
        assert_eq!(wheel["hashes"]["sha256"].as_str(), entry["sha256"].as_str());
    }

    // The same bytes again; --check passes, and fails once the file is changed.
    run_ok(&mut project.command(&["lock", "--format", "pylock"]));
    assert_eq!(fs_err::read_to_string(&path).unwrap(), text);
    run_ok(&mut project.command(&["lock", "--format", "pylock", "--check"]));
    fs_err::write(&path, text.replace("lock-version", "# lock-version")).unwrap();
    let stale = run_fails(&mut project.command(&["lock", "--format", "pylock", "--check"]));
    assert!(stderr(&stale).contains("pylock.requirements.toml is stale"), "{}", stderr(&stale));
    run_ok(&mut project.command(&["lock", "--format", "pylock"]));
    // A file of that name the tool did not write is never replaced.
    fs_err::write(&path, "lock-version = \"1.0\"\ncreated-by = \"hand\"\n").unwrap();
    let refused = run_fails(&mut project.command(&["lock", "--format", "pylock"]));
    assert!(stderr(&refused).contains("was not written by `lock --format pylock`"), "{}", stderr(&refused));
    assert!(fs_err::read_to_string(&path).unwrap().contains("created-by = \"hand\""));
    fs_err::remove_file(&path).unwrap();
    run_ok(&mut project.command(&["lock", "--format", "pylock"]));
    assert_eq!(fs_err::read_to_string(&path).unwrap(), text);

    let python = python();
    if pip_version(&python) < (26, 1) {
        eprintln!("pip install -r pylock.toml skipped: the test interpreter's pip is older than 26.1");
    } else {
        // The reference parser, as pip vendors it.
        let validate = "import sys, tomllib\nfrom pip._vendor.packaging.pylock import Pylock\n\
                        Pylock.from_dict(tomllib.load(open(sys.argv[1], 'rb'))).validate()";
        run_ok(Command::new(&python).args(["-c", validate]).arg(&path));
        // The host's target (linux/amd64 and the test interpreter's Python, one of the four),
        // with no index and, where it can be had, no network at all.
        let report = project.tmp.path().join("pip-report.json");
        let mut pip = if Command::new("unshare").args(["--net", "true"]).status().is_ok_and(|status| status.success()) {
            let mut command = Command::new("unshare");
            command.arg("--net").arg(&python);
            command
        } else {
            Command::new(&python)
        };
        scrub_env(&mut pip);
        run_ok(
            pip.args([
                "-m",
                "pip",
                "install",
                "--isolated",
                "--no-index",
                "--dry-run",
                "--ignore-installed",
                "--report",
            ])
            .arg(&report)
            .arg("-r")
            .arg(&path)
            .current_dir(project.root()),
        );
        let report: serde_json::Value = serde_json::from_str(&fs_err::read_to_string(&report).unwrap()).unwrap();
        let host = format!(
            "linux-amd64-cp3{}",
            report["environment"]["python_version"].as_str().unwrap().trim_start_matches("3.")
        );
        assert_eq!(would_install(&report), resolved(&manifest, &host));
    }

    let Some(uv) = uv_under_test() else { return };
    for (platform, target_platform, python_version) in [
        ("x86_64-manylinux_2_28", "linux-amd64", "3.11"),
        ("x86_64-manylinux_2_28", "linux-amd64", "3.12"),
        ("aarch64-manylinux_2_28", "linux-arm64", "3.11"),
        ("aarch64-manylinux_2_28", "linux-arm64", "3.12"),
    ] {
        let mut install = Command::new(&uv);
        scrub_env(&mut install);
        let output = run_ok(
            install
                .args(["pip", "install", "--dry-run", "--offline", "--no-index", "--python"])
                .arg(&python)
                .args(["--target"])
                .arg(project.tmp.path().join("uv-target"))
                .args(["--python-platform", platform, "--python-version", python_version, "-r"])
                .arg(&path)
                .arg("--cache-dir")
                .arg(project.tmp.path().join("uv-cache"))
                .current_dir(project.root()),
        );
        let said = stderr(&output);
        let mut installed: Vec<String> = said
            .lines()
            .filter_map(|line| line.trim().strip_prefix("+ "))
            .map(|package| package.trim().to_owned())
            .collect();
        installed.sort();
        let target = format!("{target_platform}-cp3{}", python_version.trim_start_matches("3."));
        assert_eq!(installed, resolved(&manifest, &target), "{target}:\n{said}");
    }
}
