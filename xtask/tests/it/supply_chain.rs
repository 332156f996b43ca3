//! `lock`, `hashes` and `sbom` end to end: the real binary, the real pip, the synthetic index.

use std::process::Command;

use xtask::model::digest::sha256_hex;

use crate::support::{
    project::{stderr, stdout, Project, FOUR_TARGETS},
    run_fails, run_ok, Server, ServerOptions,
};

#[test]
fn the_lock_installs_with_require_hashes_on_every_target_and_a_tampered_wheel_is_refused() {
    let project = Project::with_wheelhouse("purelib\ncompiled\nwithextra[fast]\n", &FOUR_TARGETS);
    run_ok(&mut project.command(&["lock"]));
    let lock = fs_err::read_to_string(project.root().join("requirements.lock.txt")).unwrap();
    let sha = |file: &str| project.index.sha256_of(file);
    for expected in [
        "armonly==1.0 ; platform_machine == \"aarch64\" \\\n".to_owned(),
        "oldpy==1.0 ; python_version == \"3.11\" \\\n".to_owned(),
        "newpy==1.0 ; python_version == \"3.12\" \\\n".to_owned(),
        "x86helper==1.0 ; platform_machine == \"x86_64\" \\\n".to_owned(),
        format!("purelib==1.0 \\\n    --hash=sha256:{}\n", sha("purelib-1.0-py3-none-any.whl")),
        format!("    --hash=sha256:{}", sha("compiled-2.0-cp312-cp312-manylinux_2_28_x86_64.whl")),
        "# Regenerate: wheelgap create-wheelhouse && wheelgap lock\n".to_owned(),
    ] {
        assert!(lock.contains(&expected), "missing {expected:?} in\n{lock}");
    }
    run_ok(&mut project.command(&["lock", "--check"]));

    // Offline, for every target, pip in hash-checking mode accepts the lock.
    let mut verify = project.command_with_test_python(&["verify-wheelhouse", "--json", "-r", "requirements.lock.txt"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&run_ok(&mut verify))).unwrap();
    let checks = report["install_checks"].as_array().unwrap();
    assert_eq!(checks.len(), 4);
    assert!(checks.iter().all(|check| check["ok"] == true), "{report}");

    // A real install on this host, then one from a wheelhouse with a tampered wheel.
    let venv = project.tmp.path().join("venv");
    run_ok(Command::new(crate::support::python()).args(["-m", "venv"]).arg(&venv));
    let install = |wheelhouse: &std::path::Path, target: &str| {
        let mut command = Command::new(venv.join("bin/python"));
        crate::support::scrub_env(&mut command);
        command
            .args(["-m", "pip", "install", "--isolated", "--require-hashes", "--no-index", "--find-links"])
            .arg(wheelhouse)
            .args(["--target", target, "-r"])
            .arg(project.root().join("requirements.lock.txt"));
        command
    };
    run_ok(&mut install(&project.wheelhouse(), &project.tmp.path().join("installed").display().to_string()));
    let tampered = project.tmp.path().join("tampered");
    fs_err::create_dir_all(&tampered).unwrap();
    for name in crate::support::file_names(&project.wheelhouse()) {
        fs_err::copy(project.wheelhouse().join(&name), tampered.join(&name)).unwrap();
    }
    let victim = tampered.join("purelib-1.0-py3-none-any.whl");
    let mut bytes = fs_err::read(&victim).unwrap();
    bytes.extend_from_slice(b"tampered");
    fs_err::write(&victim, &bytes).unwrap();
    let refused = run_fails(&mut install(&tampered, &project.tmp.path().join("installed2").display().to_string()));
    let text = format!("{}{}", stdout(&refused), stderr(&refused));
    assert!(text.contains("DO NOT MATCH THE HASHES"), "{text}");
    assert!(text.contains(&sha("purelib-1.0-py3-none-any.whl")), "{text}");
    assert!(text.contains(&sha256_hex(&bytes)), "{text}");

    // sha512 works too; a stale lock fails the check with a diff and the command to run.
    run_ok(&mut project.command(&["lock", "--algorithm", "sha512"]));
    let lock512 = fs_err::read_to_string(project.root().join("requirements.lock.txt")).unwrap();
    assert!(lock512.contains("--hash=sha512:") && !lock512.contains("--hash=sha256:"), "{lock512}");
    let stale = stderr(&run_fails(&mut project.command(&["lock", "--check"])));
    assert!(stale.contains("requirements.lock.txt is stale"), "{stale}");
    assert!(stale.contains("-    --hash=sha512:") && stale.contains("hint: wheelgap lock"), "{stale}");
}

#[test]
fn hashes_prints_every_file_of_exact_pins_for_the_targets() {
    let project = Project::new();
    let server = Server::start(project.index.root(), ServerOptions::default());
    let targets =
        ["--index-url", &server.url(), "--platform", "linux/amd64", "--platform", "linux/arm64", "--python", "3.11"];
    let hashes = |extra: &[&str]| project.command_with_test_python(&[&["hashes"][..], extra, &targets].concat());
    let sha = |file: &str| project.index.sha256_of(file);
    let text = stdout(&run_ok(&mut hashes(&["compiled==2.0", "purelib==1.0"])));
    let mut compiled = [
        sha("compiled-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        sha("compiled-2.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"),
    ];
    compiled.sort();
    assert_eq!(
        text,
        format!(
            "compiled==2.0 \\\n    --hash=sha256:{} \\\n    --hash=sha256:{}\npurelib==1.0 \\\n    --hash=sha256:{}\n",
            compiled[0],
            compiled[1],
            sha("purelib-1.0-py3-none-any.whl")
        )
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&run_ok(&mut hashes(&["--format", "json", "purelib==1.0"])))).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"packagesWithHashes": [{"name": "purelib", "version": "1.0", "hashes": [{"algorithm": "sha256", "digest": sha("purelib-1.0-py3-none-any.whl")}]}]})
    );
    let yaml = stdout(&run_ok(&mut hashes(&["--format", "yaml", "purelib==1.0"])));
    assert!(yaml.starts_with("packagesWithHashes:\n- name: purelib\n  version: '1.0'\n"), "{yaml}");

    let error = stderr(&run_fails(&mut hashes(&["purelib>=1"])));
    assert!(error.contains("`purelib>=1` is not an exact pin"), "{error}");
    let error = stderr(&run_fails(&mut hashes(&["x86only==1.0"])));
    assert!(error.contains("no file of `x86only==1.0` for linux/arm64 python 3.11"), "{error}");
    assert!(!error.contains("for linux/amd64"), "{error}");
}

#[test]
fn the_sbom_is_valid_cyclonedx_and_the_same_bytes_twice() {
    let project = Project::with_wheelhouse("purelib\nwithextra[fast]\n", &FOUR_TARGETS);
    run_ok(&mut project.command(&["sbom"]));
    let path = project.wheelhouse().join("sbom.cdx.json");
    let first = fs_err::read(&path).unwrap();
    run_ok(&mut project.command(&["sbom"]));
    assert_eq!(first, fs_err::read(&path).unwrap(), "two SBOMs of one wheelhouse differ");
    let bom: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(bom["specVersion"], "1.6");
    assert!(bom["metadata"].get("timestamp").is_none());
    let components = bom["components"].as_array().unwrap();
    let purelib = components.iter().find(|component| component["name"] == "purelib").unwrap();
    assert_eq!(purelib["purl"], "pkg:pypi/purelib@1.0");
    assert_eq!(purelib["licenses"], serde_json::json!([{"expression": "MIT OR Apache-2.0"}]));
    assert_eq!(
        purelib["externalReferences"][0]["hashes"][0]["content"],
        project.index.sha256_of("purelib-1.0-py3-none-any.whl")
    );
    let targets: Vec<&str> = purelib["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|property| property["name"] == "xtask:target")
        .map(|property| property["value"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["linux-amd64-cp311", "linux-amd64-cp312", "linux-arm64-cp311", "linux-arm64-cp312"]);
    let edges = bom["dependencies"].as_array().unwrap();
    let purelib_edges = edges.iter().find(|edge| edge["ref"] == "pkg:pypi/purelib@1.0").unwrap();
    assert_eq!(
        purelib_edges["dependsOn"],
        serde_json::json!([
            "pkg:pypi/armonly@1.0",
            "pkg:pypi/newpy@1.0",
            "pkg:pypi/oldpy@1.0",
            "pkg:pypi/x86helper@1.0"
        ])
    );
    // SOURCE_DATE_EPOCH gives a timestamp; the SBOM is a reserved name, so the wheelhouse still verifies.
    let mut dated = project.command(&["sbom", "--output", "dated.cdx.json"]);
    run_ok(dated.env("SOURCE_DATE_EPOCH", "1700000000"));
    let dated: serde_json::Value =
        serde_json::from_slice(&fs_err::read(project.root().join("dated.cdx.json")).unwrap()).unwrap();
    assert_eq!(dated["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    run_ok(&mut project.command(&["verify-wheelhouse", "--no-install-check"]));

    // CycloneDX's own validator, against the official 1.6 schema (.ci/run provides it).
    let Some(validator) = std::env::var_os("XTASK_CYCLONEDX_PYTHON") else {
        eprintln!("schema validation skipped: set XTASK_CYCLONEDX_PYTHON to a python with cyclonedx-python-lib[json-validation]");
        return;
    };
    let script = "import sys\nfrom cyclonedx.schema import SchemaVersion\nfrom cyclonedx.validation.json import JsonStrictValidator\n\
                  errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
                  sys.exit(str(errors) if errors else 0)\n";
    for bom in [path, project.root().join("dated.cdx.json")] {
        run_ok(Command::new(&validator).arg("-c").arg(script).arg(&bom));
    }
}

#[test]
fn lock_sbom_and_bundle_report_as_json() {
    let project = Project::with_wheelhouse("purelib\n", &FOUR_TARGETS);
    let lock: serde_json::Value =
        serde_json::from_str(&stdout(&run_ok(&mut project.command(&["lock", "--json"])))).unwrap();
    assert_eq!(
        lock,
        serde_json::json!({ "locks": [{ "requirements": "requirements.txt", "lock": "requirements.lock.txt", "state": "written" }] })
    );
    let checked: serde_json::Value =
        serde_json::from_str(&stdout(&run_ok(&mut project.command(&["lock", "--check", "--json"])))).unwrap();
    assert_eq!(checked["locks"][0]["state"], "up-to-date");

    let sbom: serde_json::Value =
        serde_json::from_str(&stdout(&run_ok(&mut project.command(&["sbom", "--json"])))).unwrap();
    assert_eq!(sbom["components"], 5, "{sbom:#}");
    assert_eq!(sbom["changed"], true);

    run_ok(&mut project.command(&["pack-wheelhouse"]));
    let bundle: serde_json::Value = serde_json::from_str(&stdout(&run_ok(&mut project.command(&[
        "bundle",
        "--configmap",
        "wheelhouse",
        "--output",
        "bundle.yaml",
        "--json",
    ]))))
    .unwrap();
    assert_eq!(bundle["kind"], "ConfigMap");
    assert_eq!(bundle["yaml_bytes"], fs_err::metadata(project.root().join("bundle.yaml")).unwrap().len());
    // Without --output, stdout carries the YAML: --json alone is a usage error.
    run_fails(&mut project.command(&["bundle", "--configmap", "wheelhouse", "--json"]));
}
