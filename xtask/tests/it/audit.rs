//! `audit` end to end: a wheelhouse of two targets, a synthetic OSV database written here as a
//! directory and as a zip (every record checked against the OSV schema first), the real binary.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Output,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{json, Value};
use xtask::model::osv::timestamp;

use crate::support::project::{stderr, stdout, Project, ONE_TARGET, TWO_TARGETS};

fn days_ago(days: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    timestamp(now - days * 86_400)
}

/// A PyPI record of `id` on `package` with one ECOSYSTEM range of `events`, modified two days
/// ago; `extra` fields replace or add to it.
fn record(id: &str, package: &str, events: Value, extra: Value) -> Value {
    let mut record = json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": days_ago(2),
        "published": days_ago(30),
        "summary": format!("{package} is vulnerable"),
        "affected": [{
            "package": { "ecosystem": "PyPI", "name": package },
            "ranges": [{ "type": "ECOSYSTEM", "events": events }],
        }],
        "references": [{ "type": "ADVISORY", "url": format!("https://example.invalid/{id}") }],
    });
    for (key, value) in extra.as_object().unwrap() {
        record[key] = value.clone();
    }
    record
}

/// Every record must be one the OSV schema accepts: a synthetic database the real one could be.
fn check_schema(records: &[Value]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv-schema.json");
    let schema: Value = serde_json::from_str(&fs_err::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
    for record in records {
        let errors: Vec<String> = validator.iter_errors(record).map(|error| error.to_string()).collect();
        assert!(errors.is_empty(), "{} breaks the OSV schema: {errors:?}", record["id"]);
    }
    // The check can fail: a record without `modified` is refused.
    let mut broken = records[0].clone();
    broken.as_object_mut().unwrap().remove("modified");
    assert!(!validator.is_valid(&broken));
}

/// The records as `<id>.json` in `dir/db/` and as entries of `dir/db.zip`, with `raw` files
/// (deliberately broken ones) beside them in both.
fn write_database(dir: &Path, records: &[Value], raw: &[(&str, Vec<u8>)]) -> (PathBuf, PathBuf) {
    check_schema(records);
    let files: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|record| (format!("{}.json", record["id"].as_str().unwrap()), serde_json::to_vec_pretty(record).unwrap()))
        .chain(raw.iter().map(|(name, bytes)| ((*name).to_owned(), bytes.clone())))
        .collect();
    let directory = dir.join("db");
    fs_err::create_dir_all(&directory).unwrap();
    let zip_path = dir.join("db.zip");
    let mut zip = zip::ZipWriter::new(fs_err::File::create(&zip_path).unwrap().into_parts().0);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in &files {
        fs_err::write(directory.join(name), bytes).unwrap();
        zip.start_file(name.as_str(), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    (directory, zip_path)
}

fn audit(project: &Project, args: &[&str]) -> Output {
    project.command(&[&["audit"][..], args].concat()).output().unwrap()
}

fn target_id(project: &Project, platform: &str) -> String {
    let manifest = project.manifest();
    let ids: Vec<&str> = manifest["targets"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    ids.iter().find(|id| id.contains(platform)).unwrap_or_else(|| panic!("no {platform} in {ids:?}")).to_string()
}

#[test]
fn audit_reports_findings_per_target_in_every_format_and_exits_as_documented() {
    let project = Project::new();
    project.write("requirements-a.txt", "purelib\npackaging==24.2\n");
    project.write("requirements-b.txt", "packaging==25.0\n");
    project.create_from_file_index(&TWO_TARGETS);
    let (amd64, arm64) = (target_id(&project, "amd64"), target_id(&project, "arm64"));
    project.write(
        "wheelhouse.toml",
        "[audit]\nignore = [{ id = \"GHSA-x86h-x86h-x86h\", reason = \"x86helper is never imported\" }]\n",
    );
    let below = |fixed: &str| json!([{ "introduced": "0" }, { "fixed": fixed }]);
    let records = [
        // purelib pulls armonly in on arm64 only.
        record("GHSA-arm1-arm1-arm1", "ArmOnly", below("1.1"), json!({ "aliases": ["CVE-2099-0001"] })),
        // The wheelhouse holds 25.0 too, for the other requirements file.
        record("PYSEC-2099-2", "packaging", below("25.0"), json!({})),
        record("GHSA-wdrn-wdrn-wdrn", "purelib", below("9"), json!({ "withdrawn": days_ago(1) })),
        record("RUSTSEC-2099-0004", "purelib", below("9"), json!({})),
        record("GHSA-oldp-oldp-oldp", "oldpy", below("2.0"), json!({ "aliases": ["CVE-2099-0005"] })),
        record(
            "GHSA-x86h-x86h-x86h",
            "X86Helper",
            json!([{ "introduced": "1.0" }, { "last_affected": "1.0" }]),
            json!({}),
        ),
    ];
    let mut records = records.to_vec();
    records[3]["affected"][0]["package"]["ecosystem"] = json!("crates.io");
    let broken = [("broken.json", b"{\"id\": \"GHSA-brkn\", ".to_vec()), ("notes.txt", b"not a record".to_vec())];
    let (directory, zip) = write_database(project.tmp.path(), &records, &broken);
    let directory = directory.to_str().unwrap();

    let output = audit(&project, &["--database", directory, "--ignore", "CVE-2099-0005"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "advisory database: 6 records, newest modified ".to_owned(),
        "(2 days old), 1 withdrawn, 1 skipped with a warning\n".to_owned(),
        format!("{arm64}:\n  armonly 1.0: GHSA-arm1-arm1-arm1 (CVE-2099-0001): ArmOnly is vulnerable\n    fixed in 1.1\n"),
        "  packaging 24.2: PYSEC-2099-2: packaging is vulnerable\n    fixed in 25.0; the wheelhouse also holds packaging 25.0 for this target\n".to_owned(),
        "    ignored (CVE-2099-0005): --ignore\n".to_owned(),
        "    ignored (GHSA-x86h-x86h-x86h): x86helper is never imported\n".to_owned(),
        "3 findings (3 more ignored) in ".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
    let amd64_section = &text[text.find(&format!("{amd64}:")).unwrap()..text.find(&format!("{arm64}:")).unwrap()];
    assert!(!amd64_section.contains("armonly") && amd64_section.contains("x86helper"), "{text}");
    assert!(!text.contains("purelib"), "withdrawn or another ecosystem: {text}");
    let errors = stderr(&output);
    assert!(errors.contains("warning: skipped ") && errors.contains("broken.json: not an OSV record"), "{errors}");
    assert!(!errors.contains("notes.txt") && !errors.contains("days old, over"), "{errors}");

    // The same report from the zip; the JSON is the data, nothing else on stdout.
    let json_of = |database: &str, extra: &[&str]| -> (Option<i32>, Value) {
        let output =
            audit(&project, &[&["--database", database, "--json", "--ignore", "CVE-2099-0005"][..], extra].concat());
        (output.status.code(), serde_json::from_str(&stdout(&output)).unwrap())
    };
    let (code, report) = json_of(directory, &[]);
    assert_eq!((code, json_of(zip.to_str().unwrap(), &[])), (Some(1), (Some(1), report.clone())));
    assert_eq!(report["counts"], json!({ "findings": 3, "ignored": 3 }));
    assert_eq!(report["database"]["withdrawn"], 1);
    let arm_finding = &report["findings"].as_array().unwrap().iter().find(|f| f["package"] == "armonly").unwrap();
    assert_eq!(arm_finding["target"], arm64.as_str());
    assert_eq!(arm_finding["aliases"], json!(["CVE-2099-0001"]));
    let packaging: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["package"] == "packaging").collect();
    assert_eq!(packaging.len(), 2);
    assert!(packaging.iter().all(|f| f["version"] == "24.2" && f["fixed_in_wheelhouse"] == "25.0"), "{report:#}");

    // Ignoring what is left, by id, gives 0: ignored findings do not count.
    let (code, clean) = json_of(directory, &["--ignore", "GHSA-arm1-arm1-arm1", "--ignore", "pysec-2099-2"]);
    assert_eq!((code, &clean["counts"]), (Some(0), &json!({ "findings": 0, "ignored": 6 })));

    // SARIF and the VEX, written to files; stdout stays empty.
    for (format, file) in [("sarif", "audit.sarif"), ("cyclonedx-vex", "audit.vex.json")] {
        let output = audit(
            &project,
            &["--database", directory, "--format", format, "--output", file, "--ignore", "CVE-2099-0005"],
        );
        assert_eq!((output.status.code(), stdout(&output)), (Some(1), String::new()), "{}", stderr(&output));
        assert!(stderr(&output).contains("advisory database: 6 records"), "{}", stderr(&output));
    }
    let sarif: Value =
        serde_json::from_str(&fs_err::read_to_string(project.root().join("audit.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    assert_eq!(results.iter().filter(|result| result.get("suppressions").is_some()).count(), 3);
    let rules: Vec<&str> = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 4, "{rules:?}");
    assert!(results
        .iter()
        .all(|result| result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == "wheelhouse/manifest.json"));

    let vex_path = project.root().join("audit.vex.json");
    let vex: Value = serde_json::from_str(&fs_err::read_to_string(&vex_path).unwrap()).unwrap();
    assert_eq!((vex["bomFormat"].as_str(), vex["specVersion"].as_str()), (Some("CycloneDX"), Some("1.6")));
    let components: Vec<&str> =
        vex["components"].as_array().unwrap().iter().map(|c| c["purl"].as_str().unwrap()).collect();
    for vulnerability in vex["vulnerabilities"].as_array().unwrap() {
        for affected in vulnerability["affects"].as_array().unwrap() {
            assert!(components.contains(&affected["ref"].as_str().unwrap()), "{affected} is no component");
        }
    }
    let x86 = vex["vulnerabilities"].as_array().unwrap().iter().find(|v| v["id"] == "GHSA-x86h-x86h-x86h").unwrap();
    assert_eq!(x86["affects"], json!([{ "ref": "pkg:pypi/x86helper@1.0" }]));
    assert_eq!(x86["analysis"]["detail"], "ignored (GHSA-x86h-x86h-x86h): x86helper is never imported");
    if let Some(validator) = std::env::var_os("XTASK_CYCLONEDX_PYTHON") {
        // CycloneDX's own validator, as the SBOM test uses it.
        let script = "import sys\nfrom cyclonedx.schema import SchemaVersion\nfrom cyclonedx.validation.json import JsonStrictValidator\n\
                      errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
                      sys.exit(str(errors) if errors else 0)\n";
        crate::support::run_ok(std::process::Command::new(validator).arg("-c").arg(script).arg(&vex_path));
    } else {
        eprintln!("VEX schema validation skipped: set XTASK_CYCLONEDX_PYTHON to a python with cyclonedx-python-lib[json-validation]");
    }

    // Metrics, and the age warning past --max-age-days.
    let output =
        audit(&project, &["--database", directory, "--max-age-days", "1", "--metrics-file", "audit.prom", "-q"]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(errors.contains("warning: the advisory database is 2 days old, over the 1 days allowed"), "{errors}");
    let metrics = fs_err::read_to_string(project.root().join("audit.prom")).unwrap();
    for expected in [
        "xtask_audit_findings{command=\"audit\"} 5\n",
        "xtask_audit_ignored{command=\"audit\"} 1\n",
        "xtask_audit_advisories_read{command=\"audit\"} 6\n",
        "xtask_audit_packages{command=\"audit\"} 6\n",
    ] {
        assert!(metrics.contains(expected), "missing {expected:?} in\n{metrics}");
    }
    let age = metrics
        .lines()
        .find_map(|line| line.strip_prefix("xtask_audit_database_age_seconds{command=\"audit\"} "))
        .unwrap();
    assert!((2 * 86_400..2 * 86_400 + 600).contains(&age.parse::<i64>().unwrap()), "{age}");

    // Exit 2: no database, a missing one, one that is no zip.
    let output = audit(&project, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no advisory database given\nhint: pass --database PATH"), "{}", stderr(&output));
    let output = audit(&project, &["--database", "missing.zip"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("missing.zip"), "{}", stderr(&output));
    let output = audit(&project, &["--database", "requirements-a.txt"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("is neither a directory nor a zip archive"), "{}", stderr(&output));
}

#[test]
fn hostile_databases_are_read_within_bounds_and_their_text_escaped() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    let evil = record(
        "GHSA-evil-evil-evil",
        "purelib",
        json!([{ "introduced": "0" }]),
        json!({ "summary": "evil\u{1b}[2J\nERROR: fake line\u{202e}", "aliases": ["CVE-2099-\u{7}"] }),
    );
    // Over the 4 MiB a record may have, as a file and as a zip entry that says so.
    let huge = record(
        "GHSA-huge-huge-huge",
        "purelib",
        json!([{ "introduced": "0" }]),
        json!({ "details": "x".repeat(5 << 20) }),
    );
    let (directory, zip) = write_database(
        project.tmp.path(),
        &[evil, huge],
        &[("bad-version.json", bad_version_record().to_string().into_bytes())],
    );
    std::os::unix::fs::symlink(directory.join("GHSA-evil-evil-evil.json"), directory.join("link.json")).unwrap();

    for database in [&directory, &zip] {
        let output = audit(&project, &["--database", database.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let (text, errors) = (stdout(&output), stderr(&output));
        assert!(
            text.contains("GHSA-evil-evil-evil (CVE-2099-\\x07): evil\\x1b[2J\\nERROR: fake line\\u{202e}\n"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains("\nERROR"), "{text:?}");
        assert!(!text.contains("GHSA-huge"), "{text}");
        assert!(
            errors.contains("GHSA-huge-huge-huge.json") && errors.contains("over the 4 MiB a record may have"),
            "{errors}"
        );
        assert!(
            errors
                .contains("GHSA-badv-badv-badv: a range of purelib skipped: 1.0-not-pep440!! is not a PEP 440 version"),
            "{errors}"
        );
    }
    let errors = stderr(&audit(&project, &["--database", directory.to_str().unwrap()]));
    assert!(errors.contains("link.json: a symbolic link, not followed"), "{errors}");

    // A zip entry that claims 100 bytes and inflates to 8 MiB: the claim is not believed.
    let bomb = project.tmp.path().join("bomb.zip");
    let mut writer = zip::ZipWriter::new(fs_err::File::create(&bomb).unwrap().into_parts().0);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    writer.start_file("GHSA-bomb-bomb-bomb.json", options).unwrap();
    writer.write_all(&vec![b' '; 8 << 20]).unwrap();
    writer.start_file("GHSA-fine-fine-fine.json", options).unwrap();
    let fine = record("GHSA-fine-fine-fine", "purelib", json!([{ "introduced": "0" }, { "fixed": "0.5" }]), json!({}));
    check_schema(std::slice::from_ref(&fine));
    writer.write_all(fine.to_string().as_bytes()).unwrap();
    writer.finish().unwrap();
    lie_about_sizes(&bomb, 8 << 20, 100);
    let output = audit(&project, &["--database", bomb.to_str().unwrap()]);
    let errors = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{errors}");
    assert!(errors.contains("bomb.zip:GHSA-bomb-bomb-bomb.json: over the 4 MiB a record may have"), "{errors}");
    assert!(stdout(&output).contains("advisory database: 1 record,"), "{}", stdout(&output));
}

/// A record whose one range has a version PEP 440 cannot read (schema-valid: versions are strings).
fn bad_version_record() -> Value {
    let record = record(
        "GHSA-badv-badv-badv",
        "purelib",
        json!([{ "introduced": "0" }, { "fixed": "1.0-not-pep440!!" }]),
        json!({}),
    );
    check_schema(std::slice::from_ref(&record));
    record
}

/// Rewrites every uncompressed size of `real` bytes in the zip's headers to `claimed`.
fn lie_about_sizes(zip: &Path, real: u32, claimed: u32) {
    let mut bytes = fs_err::read(zip).unwrap();
    let (real, claimed) = (real.to_le_bytes(), claimed.to_le_bytes());
    let mut replaced = 0;
    for index in 0..bytes.len() - 4 {
        if bytes[index..index + 4] == real {
            bytes[index..index + 4].copy_from_slice(&claimed);
            replaced += 1;
        }
    }
    assert!(replaced >= 2, "the sizes were not found in {}", zip.display());
    fs_err::write(zip, bytes).unwrap();
}

#[test]
fn aliases_merge_future_records_do_not_hide_a_stale_database_and_reports_never_land_on_inputs() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    project
        .write("wheelhouse.toml", "[audit]\nignore = [{ id = \"GHSA-pure-pure-pure\", reason = \"not reachable\" }]\n");
    let range = json!([{ "introduced": "0" }, { "fixed": "2.0" }]);
    // One vulnerability under two ids that name each other; the newest record is 40 days old.
    let ghsa = record(
        "GHSA-pure-pure-pure",
        "purelib",
        range.clone(),
        json!({ "aliases": ["CVE-2099-0100"], "modified": days_ago(40) }),
    );
    let pysec = record(
        "PYSEC-2099-100",
        "purelib",
        range,
        json!({ "aliases": ["GHSA-pure-pure-pure", "CVE-2099-0100"], "modified": days_ago(45) }),
    );
    // Modified next year: it must not make the database look new.
    let future = record(
        "GHSA-futu-futu-futu",
        "x86helper",
        json!([{ "introduced": "9.0" }]),
        json!({ "modified": days_ago(-365) }),
    );
    let (directory, _) = write_database(project.tmp.path(), &[ghsa, pysec, future], &[]);
    let database = directory.to_str().unwrap();

    // A --ignore of the CVE and the settings' ignore of the GHSA id: the reason is the one shown,
    // and neither ignore is called unused.
    let output = audit(&project, &["--database", database, "--ignore", "cve-2099-0100", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "two records, one vulnerability: {report:#}");
    assert_eq!(findings[0]["id"], "GHSA-pure-pure-pure");
    assert_eq!(findings[0]["aliases"], json!(["CVE-2099-0100", "PYSEC-2099-100"]));
    assert_eq!(findings[0]["ignored"]["reason"], "not reachable");
    let errors = stderr(&output);
    assert!(!errors.contains("matched no finding"), "{errors}");
    assert!(errors.contains("is in the future: left out of the database's age"), "{errors}");
    assert!(errors.contains("the advisory database is 40 days old, over the 7 days allowed"), "{errors}");
    assert!(errors.contains("40 days old"), "{errors}");

    // --output or --metrics-file on the wheelhouse or the database: refused, nothing written.
    let manifest = fs_err::read(project.wheelhouse().join("manifest.json")).unwrap();
    for (flag, path) in [
        ("--output", project.wheelhouse().join("manifest.json")),
        ("--output", directory.join("GHSA-pure-pure-pure.json")),
        ("--metrics-file", project.wheelhouse().join("audit.prom")),
    ] {
        let refused = audit(&project, &["--database", database, flag, path.to_str().unwrap()]);
        assert_eq!(refused.status.code(), Some(2), "{flag} {}: {}", path.display(), stderr(&refused));
        assert!(stderr(&refused).contains("refused; nothing was written"), "{}", stderr(&refused));
    }
    assert_eq!(fs_err::read(project.wheelhouse().join("manifest.json")).unwrap(), manifest);
    assert!(!project.wheelhouse().join("audit.prom").exists());
    let overflow = audit(&project, &["--database", database, "--max-age-days", "200000000000000"]);
    assert_eq!(overflow.status.code(), Some(2), "{}", stderr(&overflow));
}
