//! `create-wheelhouse` end to end: the real binary, the real pip, a synthetic index.

use std::time::Duration;

use xtask::model::digest::sha256_hex;

use crate::support::{
    project::{distributions, resolved_names, stderr, stdout, Project, FOUR_TARGETS, ONE_TARGET},
    run_ok, Server, ServerOptions,
};

fn index_flags(project: &Project) -> Vec<String> {
    vec!["--index-url".to_owned(), project.index.file_index_url()]
}

fn args<'a>(owned: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    owned.iter().map(String::as_str).chain(more.iter().copied()).collect()
}

#[test]
fn four_targets_over_http_resolve_markers_for_the_target_not_the_host() {
    let project = Project::new();
    project.write("requirements-app.txt", "purelib\ncompiled\nwithextra[fast]\n");
    let server = Server::start(project.index.root(), ServerOptions::default());
    let output = project.create(&[&["--index-url", &server.url()][..], &FOUR_TARGETS].concat());
    let manifest = project.manifest();

    let app = "requirements-app.txt";
    // The dependency marked `platform_machine == "aarch64"` is in the arm64 wheelhouse only, the
    // one marked `python_version < "3.12"` in the 3.11 ones only: both markers, both directions.
    let common = ["compiled", "purelib", "speedup", "withextra"];
    let expect = |extra: &[&str]| {
        let mut names: Vec<String> = common.iter().chain(extra).map(|name| (*name).to_owned()).collect();
        names.sort();
        names
    };
    assert_eq!(resolved_names(&manifest, app, "linux-amd64-cp311"), expect(&["oldpy", "x86helper"]));
    assert_eq!(resolved_names(&manifest, app, "linux-amd64-cp312"), expect(&["newpy", "x86helper"]));
    assert_eq!(resolved_names(&manifest, app, "linux-arm64-cp311"), expect(&["armonly", "oldpy"]));
    assert_eq!(resolved_names(&manifest, app, "linux-arm64-cp312"), expect(&["armonly", "newpy"]));

    // PEP 600 tags: 3.12 on x86_64 only has a manylinux_2_28 wheel, which pip finds only because
    // the tool passes that tag; 2.1 (manylinux_2_34) is above the default glibc floor.
    let files = distributions(&project.wheelhouse());
    for wheel in [
        "compiled-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "compiled-2.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "compiled-2.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "compiled-2.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "pip-24.0-py3-none-any.whl",
        "setuptools-70.0-py3-none-any.whl",
        "wheel-0.43.0-py3-none-any.whl",
    ] {
        assert!(files.contains(&wheel.to_owned()), "{wheel} missing from {files:?}");
    }
    assert!(!files.iter().any(|file| file.starts_with("compiled-2.1")), "{files:?}");
    assert!(!files.iter().any(|file| file.contains("musllinux")), "{files:?}");
    assert_eq!(files.len(), 7 + 4 + 3, "{files:?}");

    // Every file is listed with the targets and requirements that need it, and its real sha256.
    let entries = manifest["files"].as_array().unwrap();
    assert_eq!(entries.len(), files.len());
    let armonly = entries.iter().find(|entry| entry["name"] == "armonly").unwrap();
    assert_eq!(armonly["targets"], serde_json::json!(["linux-arm64-cp311", "linux-arm64-cp312"]));
    assert_eq!(armonly["requirements"], serde_json::json!([app]));
    assert_eq!(armonly["sha256"], project.index.sha256_of("armonly-1.0-py3-none-any.whl"));
    let pip = entries.iter().find(|entry| entry["name"] == "pip").unwrap();
    assert_eq!(pip["requirements"], serde_json::json!(["<build-tools>"]));

    // Dependency edges follow the target's markers and the requested extras.
    let resolution = manifest["resolutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resolution| resolution["requirements"] == app && resolution["target"] == "linux-arm64-cp312")
        .unwrap();
    let package = |name: &str| resolution["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap();
    assert_eq!(package("purelib")["dependencies"], serde_json::json!(["armonly", "newpy"]));
    assert_eq!(package("purelib")["direct"], true);
    assert_eq!(package("armonly")["direct"], false);
    assert_eq!(package("withextra")["dependencies"], serde_json::json!(["speedup"]));
    assert_eq!(package("withextra")["extras"], serde_json::json!(["fast"]));

    // SHA256SUMS is what `sha256sum -c` reads, run inside the wheelhouse.
    let check = run_ok(
        std::process::Command::new("sha256sum")
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(project.wheelhouse()),
    );
    assert_eq!(stdout(&check).lines().count(), files.len() + 1);
    assert!(stderr(&output).contains("wrote wheelhouse: 14 files"), "{}", stderr(&output));
    assert!(server.request_count() > 0);
}

#[test]
fn warm_pip_workers_resolve_exactly_as_a_pip_process_per_resolution() {
    // The forked pips of `tools::pip_workers` against one process per resolution: the same
    // markers both ways, extras, Requires-Python, build tools, so the same manifest to the byte.
    let project = Project::new();
    project.write("requirements-app.txt", "purelib\ncompiled\nwithextra[fast]\n");
    project.write("requirements-old.txt", "oldpy\n");
    let index = index_flags(&project);
    let flags =
        args(&index, &[&["-r", "requirements-app.txt", "-r", "requirements-old.txt"][..], &FOUR_TARGETS].concat());
    let verbose = [&flags[..], &["-v"]].concat();
    let one_each = run_ok(project.create_command(&verbose).env("WHEELGAP_PIP_WORKERS", "0"));
    let by_processes = std::fs::read(project.wheelhouse().join("manifest.json")).unwrap();
    std::fs::remove_dir_all(project.wheelhouse()).unwrap();
    let warm = project.create(&verbose);
    let by_workers = std::fs::read(project.wheelhouse().join("manifest.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&by_workers), String::from_utf8_lossy(&by_processes));
    assert!(stderr(&warm).contains("(pip worker) pip install --dry-run"), "{}", stderr(&warm));
    assert!(!stderr(&one_each).contains("(pip worker)"), "{}", stderr(&one_each));
}

#[test]
fn the_libc_floor_decides_which_manylinux_and_musllinux_wheels_fit() {
    let project = Project::new();
    project.write("requirements.txt", "compiled\n");
    let index = index_flags(&project);
    let one_target = ["--no-build-tools", "--platform", "linux/amd64", "--python", "3.11"];
    project.create(&args(&index, &[&one_target[..], &["--libc", "glibc_2_34"]].concat()));
    assert_eq!(distributions(&project.wheelhouse()), ["compiled-2.1-cp311-cp311-manylinux_2_34_x86_64.whl"]);
    project.create(&args(&index, &[&one_target[..], &["--libc", "musl_1_2"]].concat()));
    assert_eq!(distributions(&project.wheelhouse()), ["compiled-2.0-cp311-cp311-musllinux_1_2_x86_64.whl"]);
    assert_eq!(project.manifest()["targets"][0]["id"], "linux-amd64-cp311-musl_1_2");
}

#[test]
fn an_unchanged_rerun_runs_no_pip_and_a_changed_input_downloads_only_what_is_missing() {
    let project = Project::new();
    project.write("requirements-a.txt", "purelib\n");
    project.write("requirements-b.txt", "compiled\n");
    let server = Server::start(project.index.root(), ServerOptions::default());
    let flags = ["--index-url", &server.url(), "--no-build-tools", "--json", "--platform", "linux/amd64"];
    let flags = [&flags[..], &["--python", "3.11", "--python", "3.12"]].concat();
    let first: serde_json::Value = serde_json::from_str(&stdout(&project.create(&flags))).unwrap();
    assert_eq!(first["status"], "updated");
    assert_eq!(first["resolved"], 4);

    // Unchanged: nothing asked of the index, no pip, "up to date".
    let requests_before = server.request_count();
    let output = project.create(&flags);
    let second: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(second["status"], "up-to-date");
    assert_eq!(server.request_count(), requests_before);
    assert!(stderr(&output).contains("is up to date: 6 files"), "{}", stderr(&output));
    assert!(!stderr(&output).contains("resolve"), "{}", stderr(&output));

    // One file changed: only its two resolutions run again, only the new file is downloaded,
    // and what is no longer needed is removed and listed.
    project.write("requirements-b.txt", "speedup\n");
    let third: serde_json::Value = serde_json::from_str(&stdout(&project.create(&flags))).unwrap();
    assert_eq!(third["resolved"], 2);
    assert_eq!(third["resolutions_reused"], 2);
    assert_eq!(third["downloaded"], serde_json::json!(["speedup-1.0-py3-none-any.whl"]));
    assert_eq!(
        third["removed"],
        serde_json::json!([
            "compiled-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "compiled-2.0-cp312-cp312-manylinux_2_28_x86_64.whl"
        ])
    );
    assert!(!distributions(&project.wheelhouse()).iter().any(|file| file.starts_with("compiled")));

    // --refresh resolves everything again but downloads nothing it already has.
    let refreshed: serde_json::Value =
        serde_json::from_str(&stdout(&project.create(&[&flags[..], &["--refresh"]].concat()))).unwrap();
    assert_eq!(refreshed["resolved"], 4);
    assert_eq!(refreshed["downloaded"], serde_json::json!([]));

    // A deleted file is put back; a file changed in place is caught by --full-check only.
    fs_err::remove_file(project.wheelhouse().join("oldpy-1.0-py3-none-any.whl")).unwrap();
    let repaired: serde_json::Value = serde_json::from_str(&stdout(&project.create(&flags))).unwrap();
    assert_eq!(repaired["downloaded"], serde_json::json!(["oldpy-1.0-py3-none-any.whl"]));
    let tampered = project.wheelhouse().join("newpy-1.0-py3-none-any.whl");
    let mut bytes = fs_err::read(&tampered).unwrap();
    bytes[10] ^= 0xff;
    fs_err::write(&tampered, &bytes).unwrap();
    let quick: serde_json::Value = serde_json::from_str(&stdout(&project.create(&flags))).unwrap();
    assert_eq!(quick["status"], "up-to-date");
    let full: serde_json::Value =
        serde_json::from_str(&stdout(&project.create(&[&flags[..], &["--full-check"]].concat()))).unwrap();
    assert_eq!(full["downloaded"], serde_json::json!(["newpy-1.0-py3-none-any.whl"]));
    assert_eq!(sha256_hex(&fs_err::read(&tampered).unwrap()), project.index.sha256_of("newpy-1.0-py3-none-any.whl"));

    // Any update checks every byte it keeps: a file changed in place is never carried over.
    let mut bytes = fs_err::read(&tampered).unwrap();
    bytes[10] ^= 0xff;
    fs_err::write(&tampered, &bytes).unwrap();
    project.write("requirements-a.txt", "purelib  # changed\n");
    // A file nobody listed is someone's: the update is refused, naming it, and nothing changes
    // (the Trust issue; the tool used to delete it and say so).
    project.write("wheelhouse/notes.txt", "mine\n");
    let refused = stderr(&project.create_fails(&flags));
    assert!(refused.contains("holds notes.txt, which its manifest does not account for"), "{refused}");
    assert_eq!(fs_err::read_to_string(project.wheelhouse().join("notes.txt")).unwrap(), "mine\n");
    fs_err::remove_file(project.wheelhouse().join("notes.txt")).unwrap();
    let updated: serde_json::Value = serde_json::from_str(&stdout(&project.create(&flags))).unwrap();
    assert_eq!(updated["downloaded"], serde_json::json!(["newpy-1.0-py3-none-any.whl"]));
    assert_eq!(updated["removed"], serde_json::json!([]));
    assert_eq!(sha256_hex(&fs_err::read(&tampered).unwrap()), project.index.sha256_of("newpy-1.0-py3-none-any.whl"));
}

#[test]
fn hash_pinned_requirements_work_and_a_wrong_hash_names_package_and_both_digests() {
    let project = Project::new();
    let sha = |file: &str| project.index.sha256_of(file);
    let pinned = format!(
        "purelib==1.0 --hash=sha256:{}\nx86helper==1.0 --hash=sha256:{}\noldpy==1.0 --hash=sha256:{}\n",
        sha("purelib-1.0-py3-none-any.whl"),
        sha("x86helper-1.0-py3-none-any.whl"),
        sha("oldpy-1.0-py3-none-any.whl")
    );
    project.write("requirements.txt", &pinned);
    let index = index_flags(&project);
    // The build tools are resolved in a pip call of their own, so hash mode does not reach them.
    let flags = args(&index, &ONE_TARGET);
    project.create(&flags);
    assert_eq!(project.manifest()["requirements"][0]["hash_pinned"], true);
    assert!(distributions(&project.wheelhouse()).contains(&"pip-24.0-py3-none-any.whl".to_owned()));
    let before = project.snapshot();

    let wrong = "0".repeat(64);
    project.write("requirements.txt", &pinned.replace(&sha("purelib-1.0-py3-none-any.whl"), &wrong));
    let error = stderr(&project.create_fails(&flags));
    assert!(error.contains("requirements.txt for linux/amd64 python 3.11"), "{error}");
    let expected_line = format!("purelib==1.0: expected sha256 {wrong}, got {}", sha("purelib-1.0-py3-none-any.whl"));
    assert!(error.contains(&expected_line), "{error}");
    assert!(error.contains("hint:"), "{error}");
    assert_eq!(project.snapshot(), before, "a failed run must leave the wheelhouse as it was");
}

#[test]
fn no_wheel_for_one_target_names_package_version_and_target() {
    let project = Project::new();
    project.write("requirements.txt", "x86only==1.0\n");
    let index = index_flags(&project);
    let output = project.create_fails(&args(&index, &FOUR_TARGETS));
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.contains("no wheel of `x86only==1.0` for linux/arm64 python 3.11"), "{error}");
    assert!(error.contains("no wheel of `x86only==1.0` for linux/arm64 python 3.12"), "{error}");
    assert!(!error.contains("no wheel of `x86only==1.0` for linux/amd64"), "{error}");
    assert!(error.contains("pass --build-sdists"), "{error}");
    assert!(!project.wheelhouse().exists());
    // The amd64 resolutions succeed and their downloads start at once; the failure cancels them
    // and leaves no staging directory behind.
    let leftovers: Vec<_> = walkdir::WalkDir::new(project.root())
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().contains("staging"))
        .map(|entry| entry.path().display().to_string())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn build_sdists_makes_pure_wheels_for_every_target_and_refuses_native_ones() {
    let project = Project::new();
    project.write("requirements.txt", "sdistonly==1.0\n");
    let index = index_flags(&project);
    let targets = ["--no-build-tools", "--platform", "linux/amd64", "--platform", "linux/arm64", "--python", "3.12"];
    let error = stderr(&project.create_fails(&args(&index, &targets)));
    assert!(error.contains("no wheel of `sdistonly==1.0`"), "{error}");
    assert!(error.contains("pass --build-sdists"), "{error}");

    project.create(&args(&index, &[&targets[..], &["--build-sdists"]].concat()));
    assert_eq!(distributions(&project.wheelhouse()), ["sdistonly-1.0-py3-none-any.whl"]);
    let entry = &project.manifest()["files"][0];
    assert_eq!(entry["origin"], "sdist-build");
    assert_eq!(entry["targets"], serde_json::json!(["linux-amd64-cp312", "linux-arm64-cp312"]));

    project.write("requirements.txt", "nativesdist==1.0\n");
    let error = stderr(&project.create_fails(&args(&index, &[&targets[..], &["--build-sdists"]].concat())));
    assert!(error.contains("nativesdist-1.0-cp311-cp311-linux_x86_64.whl"), "{error}");
    assert!(error.contains("not pure Python"), "{error}");
    // The previous wheelhouse survives the failure.
    assert_eq!(distributions(&project.wheelhouse()), ["sdistonly-1.0-py3-none-any.whl"]);
}

#[test]
fn credentials_in_index_urls_are_never_written() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    let secret = "s3cr3t-T0ken";
    let server = Server::start(
        project.index.root(),
        ServerOptions { basic_auth: Some(("deploy".to_owned(), secret.to_owned())), ..ServerOptions::default() },
    );
    let url = server.url_with_auth("deploy", secret);
    let flags = ["--index-url", &url, "--platform", "linux/amd64", "--python", "3.11", "--json"];
    let output = project.create(&flags);
    let manifest = fs_err::read_to_string(project.wheelhouse().join("manifest.json")).unwrap();
    assert!(manifest.contains("\"index_url\": \"http://****@127.0.0.1:"), "{manifest}");
    for (what, text) in [("stdout", stdout(&output)), ("stderr", stderr(&output)), ("manifest", manifest)] {
        assert!(!text.contains(secret), "{what} holds the secret:\n{text}");
    }
    let sums = fs_err::read_to_string(project.wheelhouse().join("SHA256SUMS")).unwrap();
    assert!(!sums.contains(secret));

    // pip's own words in an error are redacted too.
    project.write("requirements.txt", "purelib\ndoes-not-exist\n");
    let failed = project.create_fails(&flags);
    let text = format!("{}{}", stdout(&failed), stderr(&failed));
    assert!(text.contains("does-not-exist"), "{text}");
    assert!(!text.contains(secret), "the error holds the secret:\n{text}");
}

#[test]
fn a_killed_run_leaves_the_previous_wheelhouse_intact_and_the_next_run_cleans_up() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    let server = Server::start(
        project.index.root(),
        ServerOptions { stall_paths_containing: Some("bigpayload-1.0-py3".to_owned()), ..ServerOptions::default() },
    );
    let flags = ["--index-url", &server.url(), "--no-build-tools", "--platform", "linux/amd64", "--python", "3.11"];
    project.create(&flags);
    let before = project.snapshot();

    project.write("requirements.txt", "purelib\nbigpayload\n");
    let mut command = project.create_command(&flags);
    // Its own process group, so that the kill reaches the pip under the tool too, as a SIGKILL
    // of a CI job's process tree would.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.stderr(std::process::Stdio::null()).spawn().unwrap();
    let stalled = server.wait_for_request_containing("bigpayload-1.0-py3-none-any.whl", Duration::from_secs(60));
    // SAFETY: signalling the process group we just created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    assert!(stalled, "the run never reached the stalled download: {:?}", server.requests());
    assert_eq!(project.snapshot(), before, "the killed run changed the wheelhouse");
    let staging_dirs = || -> Vec<String> {
        fs_err::read_dir(project.root().join(".wheelgap"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("wheelhouse.staging-"))
            .collect()
    };
    assert_eq!(staging_dirs().len(), 1, "the kill should have caught the run mid-way");

    server.release_stall();
    let output = project.create(&flags);
    assert!(distributions(&project.wheelhouse()).contains(&"bigpayload-1.0-py3-none-any.whl".to_owned()));
    assert!(stderr(&output).contains("left by an interrupted run"), "{}", stderr(&output));
    assert_eq!(staging_dirs(), Vec::<String>::new());
}

#[test]
fn settings_come_from_wheelhouse_toml_found_above_the_current_directory() {
    let project = Project::new();
    project.write("requirements/api.txt", "oldpy\n");
    project.write("requirements-api.lock.txt", "this is a lock file, never an input\n");
    project.write(
        "wheelhouse.toml",
        &format!(
            "wheelhouse = \"out/wh\"\nbuild_tools = false\nindex_url = \"{}\"\n[targets]\nplatforms = [\"linux/arm64\"]\npython = [\"3.12\"]\n",
            project.index.file_index_url()
        ),
    );
    project.write("src/app/.keep", "");
    let mut command = project.create_command(&[]);
    command.current_dir(project.root().join("src/app"));
    run_ok(&mut command);
    let manifest: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(project.root().join("out/wh/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["targets"][0]["id"], "linux-arm64-cp312");
    assert_eq!(manifest["requirements"][0]["path"], "requirements/api.txt");
    assert_eq!(manifest["requirements"].as_array().unwrap().len(), 1);

    project.write("wheelhouse.toml", "[targets]\nplatfroms = [\"linux/arm64\"]\n");
    let error = stderr(&project.create_fails(&[]));
    assert!(error.contains("wheelhouse.toml"), "{error}");
    assert!(error.contains("unknown field `platfroms`"), "{error}");
}

#[test]
fn an_unsupported_pip_is_named_with_the_version_needed() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    // A real interpreter whose `import pip` finds an old version first.
    project.write("old-pip/pip/__init__.py", "__version__ = \"22.0.4\"\n");
    let mut command = project.create_command(&ONE_TARGET);
    command.env("PYTHONPATH", project.root().join("old-pip"));
    let output = crate::support::run_fails(&mut command);
    let error = stderr(&output);
    assert!(error.contains("pip 22.0.4 is not supported: xtask needs pip >= 23.0 and < 27"), "{error}");
}
