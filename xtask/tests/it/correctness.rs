//! What real requirements files need of create-wheelhouse: two jobs pinning one package
//! differently, Requires-Python judged for the target rather than the host, and sdist-only
//! packages reached through an extra, a dependency's dependency, or a conflict. `.ci/run` runs
//! these with the oldest and the newest pip the tool supports.

use crate::support::{
    project::{resolved_names, resolved_pins, stderr, stdout, Project},
    python, run_ok,
};

/// A target's MAJOR.MINOR from the host's minor: `3.{host + offset}`.
fn python_near_host(offset: i32) -> String {
    let output = run_ok(std::process::Command::new(python()).args(["-c", "import sys; print(sys.version_info[1])"]));
    let host: i32 = stdout(&output).trim().parse().unwrap();
    format!("3.{}", host + offset)
}

fn create_json(project: &Project, extra: &[&str]) -> serde_json::Value {
    create_with_summary(project, extra).0
}

/// The `--json` outcome of a create, and what it printed on stderr.
fn create_with_summary(project: &Project, extra: &[&str]) -> (serde_json::Value, String) {
    let url = project.index.file_index_url();
    let output = project.create(&[&["--index-url", url.as_str(), "--json"][..], extra].concat());
    (serde_json::from_str(&stdout(&output)).unwrap(), stderr(&output))
}

#[test]
fn two_jobs_pinning_one_package_differently_both_get_their_file() {
    let project = Project::new();
    project.write("requirements-a.txt", "packaging==24.2\n");
    project.write("requirements-b.txt", "packaging==25.0\n");
    // A build tool pinned below what the build-tools job resolves: the same conflict, on one file.
    project.write("requirements-c.txt", "setuptools==69.0\n");
    let outcome = create_json(&project, &["--platform", "linux/amd64", "--python", "3.12"]);
    let mut downloaded: Vec<&str> =
        outcome["downloaded"].as_array().unwrap().iter().map(|name| name.as_str().unwrap()).collect();
    downloaded.sort();
    assert_eq!(
        downloaded,
        [
            "packaging-24.2-py3-none-any.whl",
            "packaging-25.0-py3-none-any.whl",
            "pip-24.0-py3-none-any.whl",
            "setuptools-69.0-py3-none-any.whl",
            "setuptools-70.0-py3-none-any.whl",
            "wheel-0.43.0-py3-none-any.whl",
        ]
    );
    let manifest = project.manifest();
    let target = "linux-amd64-cp312";
    assert_eq!(resolved_pins(&manifest, "requirements-a.txt", target), ["packaging==24.2"]);
    assert_eq!(resolved_pins(&manifest, "requirements-b.txt", target), ["packaging==25.0"]);
    assert_eq!(resolved_pins(&manifest, "requirements-c.txt", target), ["setuptools==69.0"]);
    let files = manifest["files"].as_array().unwrap();
    let listed_under = |filename: &str| -> serde_json::Value {
        files.iter().find(|entry| entry["filename"] == filename).unwrap()["requirements"].clone()
    };
    assert_eq!(listed_under("packaging-24.2-py3-none-any.whl"), serde_json::json!(["requirements-a.txt"]));
    assert_eq!(listed_under("setuptools-70.0-py3-none-any.whl"), serde_json::json!(["<build-tools>"]));
    // Both versions are installable offline for the files that pin them.
    run_ok(project.xtask().args(["verify-wheelhouse", "--python-interpreter"]).arg(python()));
}

#[test]
fn requires_python_is_judged_for_the_target_in_both_directions() {
    // `pythonpinned` 2.K requires Python 3.K exactly; 1.0 accepts any. A resolver that judges by
    // the host picks 1.0 for every target but the host's.
    let older = python_near_host(-1);
    let host = python_near_host(0);
    let newer = python_near_host(1);
    let project = Project::new();
    project.write("requirements.txt", "pythonpinned\n");
    let flags =
        ["--no-build-tools", "--platform", "linux/amd64", "--python", &older, "--python", &host, "--python", &newer];
    create_json(&project, &flags);
    let manifest = project.manifest();
    for python in [&older, &host, &newer] {
        let target = format!("linux-amd64-cp{}", python.replace('.', ""));
        let minor = python.split('.').nth(1).unwrap();
        assert_eq!(
            resolved_pins(&manifest, "requirements.txt", &target),
            [format!("pythonpinned==2.{minor}")],
            "for Python {python}"
        );
    }
    // The offline install check resolves the same way.
    run_ok(project.xtask().args(["verify-wheelhouse", "--python-interpreter"]).arg(python()));

    // A pin that no version admits names Requires-Python, not a missing wheel.
    project.write("requirements.txt", &format!("pythonpinned==2.{}\n", newer.split('.').nth(1).unwrap()));
    let error = stderr(&project.create_fails(&[
        "--index-url",
        &project.index.file_index_url(),
        "--no-build-tools",
        "--platform",
        "linux/amd64",
        "--python",
        &host,
    ]));
    assert!(error.contains("excluded by Requires-Python (the target has Python"), "{error}");
    assert!(error.contains(&format!("Requires-Python =={newer}.*")), "{error}");
    assert!(error.contains("hint: choose a version whose Requires-Python admits the target's Python"), "{error}");
}

#[test]
fn build_sdists_reaches_sdist_only_packages_through_extras_dependencies_and_conflicts() {
    let project = Project::new();
    // Through an extra, through a dependency of a dependency, and inside a conflict (both
    // versions of `viaconflict` need it, so pip backtracks and reports a conflict).
    project.write("requirements.txt", "extrasdist[build]==1.0\nchaintop==1.0\nviaconflict\n");
    let flags = ["--no-build-tools", "--platform", "linux/amd64", "--platform", "linux/arm64", "--python", "3.12"];

    // Without --build-sdists, the conflict says which package lacks a wheel.
    let url = project.index.file_index_url();
    project.write("requirements.txt", "viaconflict\n");
    let error = stderr(&project.create_fails(&[&["--index-url", url.as_str()][..], &flags[..]].concat()));
    assert!(error.contains("pip found no set of versions that satisfies every requirement"), "{error}");
    assert!(error.contains("hint: `sdistconflict>=1.0` has no wheel for"), "{error}");
    assert!(error.contains("--build-sdists builds one from its sdist"), "{error}");

    project.write("requirements.txt", "extrasdist[build]==1.0\nchaintop==1.0\nviaconflict\n");
    let (outcome, summary) = create_with_summary(&project, &[&["--build-sdists"][..], &flags[..]].concat());
    assert!(summary.contains(" downloaded, 3 built from sdists, 0 reused"), "{summary}");
    let mut built: Vec<&str> =
        outcome["built_from_sdists"].as_array().unwrap().iter().map(|name| name.as_str().unwrap()).collect();
    built.sort();
    assert_eq!(
        built,
        ["sdistconflict-1.0-py3-none-any.whl", "sdistdeep-1.0-py3-none-any.whl", "sdistextra-1.0-py3-none-any.whl"]
    );
    let manifest = project.manifest();
    for target in ["linux-amd64-cp312", "linux-arm64-cp312"] {
        let names = resolved_names(&manifest, "requirements.txt", target);
        for name in ["chainmid", "chaintop", "extrasdist", "sdistconflict", "sdistdeep", "sdistextra", "viaconflict"] {
            assert!(names.contains(&name.to_owned()), "{name} for {target}: {names:?}");
        }
    }

    // A native sdist reached through an extra gets the documented refusal, not pip's text back.
    project.write("requirements.txt", "extranative[c]==1.0\n");
    let error =
        stderr(&project.create_fails(&[&["--index-url", url.as_str(), "--build-sdists"][..], &flags[..]].concat()));
    assert!(error.contains("has no wheel for"), "{error}");
    assert!(error.contains("which is not pure Python"), "{error}");
    assert!(!error.contains("(from "), "{error}");
    assert!(!error.contains("extra =="), "{error}");
}
