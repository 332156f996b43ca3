//! `status` and `--metrics-file`: what a person and a monitoring system read of a wheelhouse.

use crate::support::{
    project::{stdout, Project, ONE_TARGET},
    run_fails, run_ok,
};

/// Parses the file with a real parser of the text format, and checks what it cannot: one HELP
/// and TYPE per family before its samples, and no timestamps.
fn metrics(path: &std::path::Path) -> std::collections::BTreeMap<String, f64> {
    let text = fs_err::read_to_string(path).unwrap();
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    assert!(scrape.samples.iter().all(|sample| sample.labels.get("command").is_some()), "{text}");
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        assert_eq!(
            line.rsplit_once('}').unwrap().1.split_whitespace().count(),
            1,
            "a timestamp or garbage in `{line}`"
        );
    }
    let mut families = std::collections::BTreeSet::new();
    for line in text.lines().filter(|line| line.starts_with("# TYPE ")) {
        assert!(families.insert(line.to_owned()), "{line} twice in\n{text}");
    }
    scrape
        .samples
        .iter()
        .map(|sample| {
            let value = match sample.value {
                prometheus_parse::Value::Gauge(value) | prometheus_parse::Value::Untyped(value) => value,
                ref other => panic!("{other:?}"),
            };
            (sample.metric.clone(), value)
        })
        .collect()
}

fn status(project: &Project) -> serde_json::Value {
    serde_json::from_str(&stdout(&run_ok(&mut project.command(&["status", "--json"])))).unwrap()
}

#[test]
fn status_follows_locks_archive_sbom_and_staleness_and_metrics_parse() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    let metrics_path = project.tmp.path().join("create.prom");
    let metrics_flag = metrics_path.display().to_string();
    project.create_from_file_index(&[&ONE_TARGET[..], &["--metrics-file", &metrics_flag]].concat());
    let created = metrics(&metrics_path);
    assert_eq!(created["xtask_wheelhouse_files"], 3.0);
    assert_eq!(created["xtask_downloaded_files"], 3.0);
    assert_eq!(created["xtask_hash_locked"], 0.0);

    let before = status(&project);
    assert_eq!(before["present"], true);
    assert_eq!(before["n_files"], 3);
    assert_eq!(before["stale"], false);
    assert_eq!(before["locks"][0]["state"], "missing");
    assert_eq!(before["archive"]["state"], "missing");
    assert_eq!(before["sbom"]["state"], "missing");
    assert!(before["last_verify"].is_null());

    // The SBOM before the pack: an archive is current only if it holds what the wheelhouse holds
    // (the Trust issue; an SBOM made after packing now makes the archive stale).
    for args in [&["lock"][..], &["sbom"], &["pack-wheelhouse"], &["verify-wheelhouse", "--no-install-check"]] {
        run_ok(project.xtask().args(args));
    }
    let after = status(&project);
    assert_eq!(after["locks"][0]["state"], "current");
    assert_eq!(after["archive"]["state"], "current");
    assert_eq!(after["sbom"]["state"], "current");
    assert_eq!(after["last_verify"]["ok"], true);

    // The requirements change: the wheelhouse is stale; once made again, lock and archive are.
    project.write("requirements.txt", "purelib\nspeedup\n");
    let changed = status(&project);
    assert_eq!(changed["stale"], true);
    assert_eq!(changed["stale_reasons"][0], "requirements.txt changed since the wheelhouse was made");
    project.create_from_file_index(&ONE_TARGET);
    let remade = status(&project);
    assert_eq!(remade["stale"], false);
    assert_eq!(remade["locks"][0]["state"], "stale");
    assert_eq!(remade["archive"]["state"], "stale");

    // A failed verify still writes its metrics, with the failures counted.
    let victim = project.wheelhouse().join("speedup-1.0-py3-none-any.whl");
    let mut bytes = fs_err::read(&victim).unwrap();
    bytes[5] ^= 1;
    fs_err::write(&victim, bytes).unwrap();
    let verify_path = project.tmp.path().join("verify.prom");
    let mut verify = project.xtask();
    run_fails(verify.args(["verify-wheelhouse", "--no-install-check", "--metrics-file"]).arg(&verify_path));
    let verified = metrics(&verify_path);
    assert_eq!(verified["xtask_verify_ok"], 0.0);
    assert_eq!(verified["xtask_hash_verification_failures"], 1.0);
    assert_eq!(status(&project)["last_verify"]["ok"], false);

    let human = stdout(&run_ok(project.xtask().arg("status")));
    assert!(human.contains("archive     wheelhouse.tgz: stale"), "{human}");
}
