//! `--resolver uv` against `--resolver pip` on the fixture index: the same manifest, markers per
//! target, and a missing uv named with a hint.
//!
//! The tests that run uv need `XTASK_UV` (a uv of at least 0.7; `.ci/run` installs one into a
//! virtual environment); without it they return at once, saying so.

use std::{path::PathBuf, time::Instant};

use crate::support::{
    project::{resolved_names, stderr, Project, FOUR_TARGETS, TWO_TARGETS},
    run_fails, uv_under_test, Server, ServerOptions,
};

/// Markers both ways (`purelib`, `x86only`), a compiled package with wheels per tag, an extra, a
/// Requires-Python per version, two files, and the build tools.
const REQUIREMENTS: &str =
    "purelib\ncompiled\nwithextra[fast]\npythonpinned\nx86only; platform_machine == \"x86_64\"\n";

/// What the two backends may differ in: nothing but the tool block, which names pip either way.
fn without_backend_fields(mut manifest: serde_json::Value) -> serde_json::Value {
    manifest["tool"] = serde_json::Value::Null;
    manifest
}

fn create_with(project: &Project, uv: &PathBuf, resolver: &str, wheelhouse: &str) -> serde_json::Value {
    let url = project.index.file_index_url();
    create_from(project, uv, &url, &FOUR_TARGETS, resolver, wheelhouse)
}

fn create_from(
    project: &Project,
    uv: &PathBuf,
    url: &str,
    targets: &[&str],
    resolver: &str,
    wheelhouse: &str,
) -> serde_json::Value {
    let mut command = project.create_command(
        &[&["--index-url", url, "--resolver", resolver, "--wheelhouse", wheelhouse][..], targets].concat(),
    );
    command.arg("--verbose").env("XTASK_UV", uv);
    let started = Instant::now();
    let output = crate::support::run_ok(&mut command);
    let uv_ran = stderr(&output).contains(" pip compile ");
    assert_eq!(uv_ran, resolver == "uv", "{}", stderr(&output));
    eprintln!("--resolver {resolver}: {:.1}s", started.elapsed().as_secs_f64());
    let text = fs_err::read_to_string(project.root().join(wheelhouse).join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn pip_and_uv_give_the_same_manifest_on_four_targets() {
    let Some(uv) = uv_under_test() else { return };
    let project = Project::new();
    project.write("requirements.txt", REQUIREMENTS);
    project.write("requirements-old.txt", "packaging==24.2\nsetuptools==69.0\n");
    let by_pip = create_with(&project, &uv, "pip", "wheelhouse-pip");
    let by_uv = create_with(&project, &uv, "uv", "wheelhouse-uv");
    assert_eq!(by_uv["tool"], by_pip["tool"], "the tool block names pip either way");
    assert_eq!(without_backend_fields(by_uv.clone()), without_backend_fields(by_pip));
    // The comparison covers what a lock has not: extras, edges, Requires-Dist.
    let withextra = by_uv["resolutions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|resolution| resolution["requirements"] == "requirements.txt")
        .flat_map(|resolution| resolution["packages"].as_array().unwrap())
        .find(|package| package["name"] == "withextra")
        .unwrap()
        .clone();
    assert_eq!(withextra["extras"], serde_json::json!(["fast"]));
    assert_eq!(withextra["dependencies"], serde_json::json!(["speedup"]));
    assert_eq!(withextra["requires_dist"], serde_json::json!(["speedup>=1; extra == \"fast\""]));
}

#[test]
fn over_http_with_credentials_both_give_the_same_manifest_and_no_secret() {
    let Some(uv) = uv_under_test() else { return };
    let project = Project::new();
    project.write("requirements.txt", "purelib\nwithextra[fast]\n");
    let options =
        ServerOptions { basic_auth: Some(("user".to_owned(), "s3cret".to_owned())), ..ServerOptions::default() };
    let server = Server::start(project.index.root(), options);
    let url = server.url_with_auth("user", "s3cret");
    let by_pip = create_from(&project, &uv, &url, &TWO_TARGETS, "pip", "wheelhouse-pip");
    let by_uv = create_from(&project, &uv, &url, &TWO_TARGETS, "uv", "wheelhouse-uv");
    assert!(!by_uv.to_string().contains("s3cret"), "{by_uv}");
    assert_eq!(without_backend_fields(by_uv), without_backend_fields(by_pip));
}

#[test]
fn uv_puts_a_package_with_a_marker_only_on_its_targets() {
    let Some(uv) = uv_under_test() else { return };
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    let manifest = create_with(&project, &uv, "uv", "wheelhouse");
    let expected = [
        ("linux-amd64-cp311", ["oldpy", "purelib", "x86helper"]),
        ("linux-amd64-cp312", ["newpy", "purelib", "x86helper"]),
        ("linux-arm64-cp311", ["armonly", "oldpy", "purelib"]),
        ("linux-arm64-cp312", ["armonly", "newpy", "purelib"]),
    ];
    for (target, names) in expected {
        assert_eq!(resolved_names(&manifest, "requirements.txt", target), names, "{target}");
    }
    let purelib = manifest["resolutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resolution| {
            resolution["requirements"] == "requirements.txt" && resolution["target"] == "linux-arm64-cp312"
        })
        .and_then(|resolution| {
            resolution["packages"].as_array().unwrap().iter().find(|package| package["name"] == "purelib")
        })
        .unwrap()
        .clone();
    assert_eq!(purelib["direct"], true);
    assert_eq!(purelib["dependencies"], serde_json::json!(["armonly", "newpy"]));
    assert_eq!(purelib["requires_dist"].as_array().unwrap().len(), 4);
}

#[test]
fn a_missing_uv_is_named_with_what_to_install() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    let url = project.index.file_index_url();
    let mut command = project.create_command(&[
        "--index-url",
        url.as_str(),
        "--resolver",
        "uv",
        "--platform",
        "linux/amd64",
        "--python",
        "3.11",
    ]);
    command.env("XTASK_UV", project.tmp.path().join("no-uv-here"));
    let output = run_fails(&mut command);
    let stderr = stderr(&output);
    assert!(stderr.contains("no-uv-here (XTASK_UV)` is not on PATH, and --resolver uv needs it"), "{stderr}");
    assert!(stderr.contains("hint: pipx install uv (or python3 -m pip install uv)"), "{stderr}");
    assert!(!project.wheelhouse().exists());
}
