//! Keeping a wheelhouse current across the gap: `diff` between two wheelhouses in its three forms
//! and exit statuses, and delta archives packed against a base, verified and applied over it.

use std::path::Path;

use crate::support::{
    index::BIG_PAYLOAD_BYTES,
    project::{stderr, stdout, Project, ONE_TARGET, TWO_TARGETS},
    raw_archives, run_fails, run_ok, tree,
};

/// The entries of an archive, in order, as `tar` lists them.
fn entries(archive: &Path) -> Vec<String> {
    let output = run_ok(std::process::Command::new("tar").arg("tzf").arg(archive));
    stdout(&output).lines().map(str::to_owned).collect()
}

#[test]
fn diff_reports_packages_per_target_requirements_and_bytes_in_three_forms() {
    let project = Project::with_wheelhouse("packaging==24.2\npurelib\n", &TWO_TARGETS);
    run_ok(&mut project.command(&["pack-wheelhouse", "--output", "old.tgz"]));
    fs_err::copy(project.wheelhouse().join("manifest.json"), project.root().join("old.json")).unwrap();
    project.write("requirements.txt", "packaging==25.0\npurelib\nbigpayload\n");
    project.create_from_file_index(&TWO_TARGETS);

    // Against the default NEW (the project's wheelhouse): exit 1, as `diff` does when files differ.
    let text = stdout(&run_fails(&mut project.command(&["diff", "old.tgz"])));
    for expected in [
        "archive old.tgz (manifest sha256 ",
        "requirements changed: requirements.txt",
        "\nlinux-amd64-cp311: +2.1 MB (3.8 kB -> 2.1 MB), files +2 -1\n",
        "\nlinux-arm64-cp311: +2.1 MB",
        "  upgraded   packaging 24.2 -> 25.0\n",
        "  added      bigpayload 1.0\n",
        "files: 2 added, 1 removed, 0 changed;",
        "  + bigpayload-1.0-py3-none-any.whl\n",
        "  - packaging-24.2-py3-none-any.whl\n",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    let backwards = stdout(&run_fails(&mut project.command(&["diff", "wheelhouse", "old.json"])));
    assert!(backwards.contains("  downgraded packaging 25.0 -> 24.2\n"), "{backwards}");
    assert!(backwards.contains("  removed    bigpayload 1.0\n"), "{backwards}");

    let json = run_fails(&mut project.command(&["diff", "old.json", "wheelhouse", "--json"]));
    assert_eq!(json.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let targets = json["per_target"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{json:#}");
    let packaging =
        targets[0]["packages"].as_array().unwrap().iter().find(|package| package["name"] == "packaging").unwrap();
    assert_eq!(packaging["change"], "upgraded");
    assert_eq!((packaging["old"][0].as_str(), packaging["new"][0].as_str()), (Some("24.2"), Some("25.0")));
    assert_eq!(json["old"]["manifest_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(json["files_added"].as_array().unwrap().len(), 2);
    let new_bytes = json["new"]["bytes"].as_u64().unwrap();
    assert!(new_bytes > json["old"]["bytes"].as_u64().unwrap() + BIG_PAYLOAD_BYTES as u64);

    let markdown = stdout(&run_fails(&mut project.command(&["diff", "old.tgz", "--format", "markdown"])));
    assert!(markdown.starts_with("### Wheelhouse changes\n"), "{markdown}");
    assert!(markdown.contains("| packaging | upgraded | 24.2 | 25.0 |"), "{markdown}");
    assert!(markdown.contains("#### `linux-arm64-cp311`"), "{markdown}");

    // The same wheelhouse three ways: no differences, exit 0.
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    let same = run_ok(&mut project.command(&["diff", "wheelhouse.tgz", "wheelhouse/manifest.json"]));
    assert!(stdout(&same).ends_with("no differences\n"), "{}", stdout(&same));
    // Trouble is 2, with an error that names the path; a file that is neither is refused.
    let missing = run_fails(&mut project.command(&["diff", "nowhere.tgz"]));
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("nowhere.tgz"), "{}", stderr(&missing));
    project.write("notes.txt", "not a manifest\n");
    let neither = run_fails(&mut project.command(&["diff", "notes.txt"]));
    assert_eq!(neither.status.code(), Some(2));
    assert!(stderr(&neither).contains("is neither a wheelhouse archive nor a valid manifest"), "{}", stderr(&neither));
}

#[test]
fn a_delta_carries_what_its_base_lacks_and_applies_only_over_that_base() {
    let project = Project::with_wheelhouse("packaging==24.2\npurelib\nbigpayload\n", &ONE_TARGET);
    run_ok(&mut project.command(&["index"]));
    run_ok(&mut project.command(&["pack-wheelhouse", "--output", "base.tgz"]));
    // The far side: the base unpacked where the deltas will be applied.
    run_ok(&mut project.command(&["unpack-wheelhouse", "base.tgz", "--wheelhouse", "far"]));
    let far = project.root().join("far");

    project.write("requirements.txt", "packaging==25.0\npurelib\nbigpayload\n");
    project.create_from_file_index(&ONE_TARGET);
    run_ok(&mut project.command(&["index"]));
    run_ok(&mut project.command(&["sbom"]));
    let packed = run_ok(&mut project.command(&["pack-wheelhouse", "--since", "base.tgz", "--json"]));
    let outcome: serde_json::Value = serde_json::from_slice(&packed.stdout).unwrap();
    let delta = project.root().join("wheelhouse.delta.tgz");
    assert_eq!(outcome["archive"].as_str().unwrap(), delta.display().to_string());
    assert_eq!(outcome["delta"]["kept_files"], 4, "{outcome:#}");
    let names = entries(&delta);
    assert_eq!(
        names[..4],
        ["wheelhouse/manifest.json", "wheelhouse/SHA256SUMS", "wheelhouse/delta.json", "wheelhouse/sbom.cdx.json"]
    );
    assert!(names.contains(&"wheelhouse/packaging-25.0-py3-none-any.whl".to_owned()), "{names:?}");
    assert!(names.contains(&"wheelhouse/packaging-25.0-py3-none-any.whl.metadata".to_owned()), "{names:?}");
    assert!(names.contains(&"wheelhouse/simple/packaging/index.html".to_owned()), "{names:?}");
    // What the base holds byte for byte stays out: its wheels, their metadata, unchanged pages.
    for kept in
        ["bigpayload-1.0-py3-none-any.whl", "purelib-1.0-py3-none-any.whl.metadata", "simple/purelib/index.json"]
    {
        assert!(!names.contains(&format!("wheelhouse/{kept}")), "{kept} in {names:?}");
    }
    let delta_bytes = fs_err::metadata(&delta).unwrap().len();
    run_ok(&mut project.command(&["pack-wheelhouse", "--output", "full.tgz"]));
    let full_bytes = fs_err::metadata(project.root().join("full.tgz")).unwrap().len();
    assert!(delta_bytes + BIG_PAYLOAD_BYTES as u64 <= full_bytes, "delta {delta_bytes}, full {full_bytes}");
    // Reproducible: the same inputs give the same bytes.
    let first = fs_err::read(&delta).unwrap();
    run_ok(&mut project.command(&["pack-wheelhouse", "--since", "base.tgz"]));
    assert_eq!(fs_err::read(&delta).unwrap(), first);
    // A manifest or a wheelhouse directory as BASE gives the same delta (no index to compare).
    run_ok(&mut project.command(&["pack-wheelhouse", "--since", "far/manifest.json", "--output", "from-manifest.tgz"]));
    assert!(entries(&project.root().join("from-manifest.tgz"))
        .contains(&"wheelhouse/purelib-1.0-py3-none-any.whl.metadata".to_owned()));
    run_ok(&mut project.command(&["pack-wheelhouse", "--since", "far", "--output", "from-dir.tgz"]));
    assert_eq!(entries(&project.root().join("from-dir.tgz")), names);

    // Verify: a delta alone is refused with a hint; over its base it passes; over another, both
    // digests are named.
    let alone = run_fails(&mut project.command(&[
        "verify-wheelhouse",
        "--archive",
        "wheelhouse.delta.tgz",
        "--no-install-check",
    ]));
    assert!(stderr(&alone).contains("is a delta") && stderr(&alone).contains("--base DIR"), "{}", stderr(&alone));
    run_ok(&mut project.command_with_test_python(&[
        "verify-wheelhouse",
        "--archive",
        "wheelhouse.delta.tgz",
        "--base",
        "far",
    ]));
    let base_sha = outcome["delta"]["base_manifest_sha256"].as_str().unwrap().to_owned();
    let other = run_fails(&mut project.command(&[
        "verify-wheelhouse",
        "--archive",
        "wheelhouse.delta.tgz",
        "--base",
        "wheelhouse",
        "--no-install-check",
    ]));
    assert!(stderr(&other).contains(&base_sha) && stderr(&other).contains("refused"), "{}", stderr(&other));

    // A kept file damaged on the far side: the whole is checked, the apply refused, nothing lost.
    let kept = far.join("purelib-1.0-py3-none-any.whl");
    let original = fs_err::read(&kept).unwrap();
    fs_err::write(&kept, b"damaged").unwrap();
    let before = tree(&far);
    let damaged =
        run_fails(&mut project.command(&["unpack-wheelhouse", "wheelhouse.delta.tgz", "--wheelhouse", "far"]));
    assert!(stderr(&damaged).contains("purelib-1.0-py3-none-any.whl is 7 bytes"), "{}", stderr(&damaged));
    assert_eq!(tree(&far), before);
    fs_err::write(&kept, &original).unwrap();

    // Applied: the far side is the new wheelhouse, byte for byte, index and SBOM included.
    let applied = run_ok(&mut project.command(&["unpack-wheelhouse", "wheelhouse.delta.tgz", "--wheelhouse", "far"]));
    assert!(stderr(&applied).contains(&format!("a delta over {base_sha}")), "{}", stderr(&applied));
    assert_eq!(tree(&far), tree(&project.wheelhouse()));
    run_ok(&mut project.command_with_test_python(&["verify-wheelhouse", "--wheelhouse", "far"]));
    let status: serde_json::Value =
        serde_json::from_slice(&run_ok(&mut project.command(&["status", "--wheelhouse", "far", "--json"])).stdout)
            .unwrap();
    assert_eq!(status["origin"]["base_manifest_sha256"], base_sha.as_str(), "{status:#}");
    assert!(status["age_seconds"].as_u64().unwrap() < 600);
    let human = stdout(&run_ok(&mut project.command(&["status", "--wheelhouse", "far"])));
    assert!(human.contains(&format!("over base {base_sha}")), "{human}");

    // Again, over what is now the new wheelhouse: refused, naming both digests.
    let new_sha = status["manifest_sha256"].as_str().unwrap();
    let again = run_fails(&mut project.command(&["unpack-wheelhouse", "wheelhouse.delta.tgz", "--wheelhouse", "far"]));
    assert!(stderr(&again).contains(&base_sha) && stderr(&again).contains(new_sha), "{}", stderr(&again));
    // Where there is no wheelhouse at all, and to serve: refused with what to do instead.
    let empty =
        run_fails(&mut project.command(&["unpack-wheelhouse", "wheelhouse.delta.tgz", "--wheelhouse", "empty"]));
    assert!(stderr(&empty).contains("holds no wheelhouse"), "{}", stderr(&empty));
    let bundle =
        run_fails(&mut project.command(&["bundle", "--configmap", "wheelhouse", "--archive", "wheelhouse.delta.tgz"]));
    assert!(stderr(&bundle).contains("a bundle carries a whole wheelhouse"), "{}", stderr(&bundle));
    let serve =
        run_fails(&mut project.command(&["serve", "--archive", "wheelhouse.delta.tgz", "--bind", "127.0.0.1:0"]));
    assert!(stderr(&serve).contains("it cannot be served alone"), "{}", stderr(&serve));
}

/// The entries of a `.tgz` with their bytes, in order.
fn read_entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(fs_err::File::open(archive).unwrap()));
    tar.entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

/// `entries` written as a `.tgz` in that order, with no sidecar.
fn write_entries(archive: &Path, entries: &[(String, Vec<u8>)]) {
    let mut tar = Vec::new();
    for (name, bytes) in entries {
        tar.extend(raw_archives::tar_entry(name.as_bytes(), b'0', bytes));
    }
    tar.extend(raw_archives::END_OF_ARCHIVE);
    fs_err::write(archive, raw_archives::gzip(&tar)).unwrap();
}

#[test]
fn a_delta_out_of_order_over_another_base_or_packed_into_its_base_is_refused_and_nothing_changes() {
    let project = Project::with_wheelhouse("packaging==24.2\npurelib\n", &ONE_TARGET);
    // The far side's base was packed before `index` ran; the connected side's after.
    run_ok(&mut project.command(&["pack-wheelhouse", "--output", "base-without-index.tgz"]));
    run_ok(&mut project.command(&["index"]));
    run_ok(&mut project.command(&["pack-wheelhouse", "--output", "base.tgz"]));
    run_ok(&mut project.command(&["unpack-wheelhouse", "base-without-index.tgz", "--wheelhouse", "far"]));
    let far = project.root().join("far");
    project.write("requirements.txt", "packaging==25.0\npurelib\n");
    project.create_from_file_index(&ONE_TARGET);
    run_ok(&mut project.command(&["index"]));

    // Packed into (or over) its own base: refused before anything is written.
    for output in ["far/update.tgz", "far/manifest.json", "base.tgz"] {
        let refused = run_fails(&mut project.command(&[
            "pack-wheelhouse",
            "--since",
            if output == "base.tgz" { "base.tgz" } else { "far" },
            "--output",
            output,
        ]));
        assert!(stderr(&refused).contains("the delta is made against"), "{output}: {}", stderr(&refused));
    }
    assert!(!far.join("update.tgz").exists());
    run_ok(&mut project.command(&[
        "verify-wheelhouse",
        "--wheelhouse",
        "far",
        "--no-install-check",
        "--accept-foreign",
    ]));

    // The same manifest, but no index: the pages the delta leaves out are nowhere.
    run_ok(&mut project.command(&["pack-wheelhouse", "--since", "base.tgz"]));
    let before = tree(&far);
    let no_index =
        run_fails(&mut project.command(&["unpack-wheelhouse", "wheelhouse.delta.tgz", "--wheelhouse", "far"]));
    assert!(stderr(&no_index).contains("are neither in the delta nor in the base's index"), "{}", stderr(&no_index));
    assert_eq!(tree(&far), before);

    // The record moved after a distribution, so that no base check would run before it: refused.
    let mut entries = read_entries(&project.root().join("wheelhouse.delta.tgz"));
    assert_eq!(entries[2].0, "wheelhouse/delta.json");
    let record = entries.remove(2);
    let wheel = entries.iter().position(|(name, _)| name.ends_with(".whl")).unwrap();
    entries.insert(wheel + 1, record);
    write_entries(&project.root().join("reordered.tgz"), &entries);
    let empty = project.root().join("empty");
    let reordered = run_fails(&mut project.command(&["unpack-wheelhouse", "reordered.tgz", "--wheelhouse", "empty"]));
    assert!(
        stderr(&reordered).contains("delta.json") && stderr(&reordered).contains("refused"),
        "{}",
        stderr(&reordered)
    );
    assert!(!empty.join("manifest.json").exists());
    let verified = run_fails(&mut project.command(&[
        "verify-wheelhouse",
        "--archive",
        "reordered.tgz",
        "--base",
        "far",
        "--no-install-check",
    ]));
    assert!(stderr(&verified).contains("is not the third entry"), "{}", stderr(&verified));

    // A path that is neither a wheelhouse, an archive nor a manifest file: trouble, exit 2.
    let device = run_fails(&mut project.command(&["diff", "/dev/zero"]));
    assert_eq!(device.status.code(), Some(2));
    assert!(stderr(&device).contains("is neither a directory nor a regular file"), "{}", stderr(&device));
}

#[test]
fn a_signed_delta_is_checked_before_its_base_and_applied_with_its_signature() {
    let project = Project::with_wheelhouse("packaging==24.2\npurelib\n", &ONE_TARGET);
    let key = project.tmp.path().join("id_ed25519");
    run_ok(
        std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f"]).arg(&key),
    );
    let public = fs_err::read_to_string(key.with_extension("pub")).unwrap();
    let allowed = project.tmp.path().join("allowed_signers");
    fs_err::write(&allowed, format!("release@example.invalid {}", public.trim())).unwrap();
    let allowed = allowed.display().to_string();
    let signature = ["--allowed-signers", allowed.as_str(), "--identity", "release@example.invalid"];
    run_ok(project.xtask().args(["sign", "--ssh-key"]).arg(&key));
    run_ok(&mut project.command(&["pack-wheelhouse", "--output", "base.tgz"]));
    run_ok(&mut project.command(&[&["unpack-wheelhouse", "base.tgz", "--wheelhouse", "far"][..], &signature].concat()));

    project.write("requirements.txt", "packaging==25.0\npurelib\n");
    project.create_from_file_index(&ONE_TARGET);
    // The new manifest unsigned: a delta of it is refused where a signature is required, before
    // the base is even looked at.
    run_ok(&mut project.command(&["pack-wheelhouse", "--since", "base.tgz", "--output", "unsigned.tgz"]));
    let unsigned = run_fails(
        &mut project.command(&[&["unpack-wheelhouse", "unsigned.tgz", "--wheelhouse", "far"][..], &signature].concat()),
    );
    assert!(stderr(&unsigned).contains("signature"), "{}", stderr(&unsigned));

    run_ok(project.xtask().args(["sign", "--ssh-key"]).arg(&key));
    run_ok(&mut project.command(&["pack-wheelhouse", "--since", "base.tgz"]));
    let names = entries(&project.root().join("wheelhouse.delta.tgz"));
    assert_eq!(names[2..4], ["wheelhouse/delta.json", "wheelhouse/manifest.json.sshsig"]);
    let check = [
        &["verify-wheelhouse", "--archive", "wheelhouse.delta.tgz", "--base", "far", "--no-install-check"][..],
        &signature,
    ]
    .concat();
    run_ok(&mut project.command(&check));
    run_ok(
        &mut project
            .command(&[&["unpack-wheelhouse", "wheelhouse.delta.tgz", "--wheelhouse", "far"][..], &signature].concat()),
    );
    assert_eq!(tree(&project.root().join("far")), tree(&project.wheelhouse()));
    run_ok(
        &mut project
            .command(&[&["verify-wheelhouse", "--wheelhouse", "far", "--no-install-check"][..], &signature].concat()),
    );
}
