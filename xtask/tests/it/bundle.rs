//! `bundle` and `install-script` end to end: the real binary, kubectl where present, and the
//! generated script run by dash with the real pip.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use base64::Engine;
use xtask::model::digest::{sha256_hex, sidecar_line};

use crate::support::{
    project::{stderr, stdout, Project, FOUR_TARGETS},
    run_fails, run_ok, scrub_env,
};

/// A project with a wheelhouse for `purelib` on four targets, packed, and locked.
fn packed_project() -> Project {
    let project = Project::with_wheelhouse("purelib\n", &FOUR_TARGETS);
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    run_ok(&mut project.command(&["lock"]));
    project
}

fn archive(project: &Project) -> PathBuf {
    project.root().join("wheelhouse.tgz")
}

/// An archive of `size` bytes that no compressor shrinks, with its sidecar, in the project root.
fn fake_archive(project: &Project, name: &str, size: usize) -> PathBuf {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..size)
        .map(|_| {
            // xorshift64: cheap bytes that look random, the same on every run.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let path = project.root().join(name);
    fs_err::write(&path, &bytes).unwrap();
    fs_err::write(project.root().join(format!("{name}.sha256")), sidecar_line(&sha256_hex(&bytes), name)).unwrap();
    path
}

fn documents(yaml: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|document| serde_json::Value::deserialize(document).unwrap())
        .collect()
}

fn decode(text: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text.as_str().unwrap()).unwrap()
}

fn kubectl_available() -> bool {
    Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|output| output.status.success())
}

/// What kubectl makes of the same files, less the `creationTimestamp: null` it prints for an
/// object that has none, and with the `type: Opaque` a Secret defaults to (newer kubectl omits it).
fn kubectl_yaml(project: &Project, kind: &[&str], name: &str) -> String {
    let mut command = Command::new("kubectl");
    command
        .current_dir(project.root())
        .args(["create"])
        .args(kind)
        .args([name, "--namespace", "team-a", "--from-file=wheelhouse.tgz", "--from-file=wheelhouse.tgz.sha256"])
        .args(["--dry-run=client", "-o", "yaml"]);
    let text = stdout(&run_ok(&mut command)).replace("  creationTimestamp: null\n", "");
    if kind[0] == "secret" && !text.contains("\ntype: Opaque\n") {
        format!("{text}type: Opaque\n")
    } else {
        text
    }
}

#[test]
fn a_configmap_and_a_secret_hold_the_archive_and_its_sidecar_as_kubectl_would() {
    let project = packed_project();
    let archive_bytes = fs_err::read(archive(&project)).unwrap();
    let sidecar_text = fs_err::read_to_string(project.root().join("wheelhouse.tgz.sha256")).unwrap();

    let configmap_run = run_ok(&mut project.command(&["bundle", "--configmap", "wheelhouse", "--namespace", "team-a"]));
    let configmap = stdout(&configmap_run);
    let parsed = &documents(&configmap)[0];
    assert_eq!(parsed["kind"], "ConfigMap");
    assert_eq!(parsed["metadata"]["name"], "wheelhouse");
    assert_eq!(parsed["metadata"]["namespace"], "team-a");
    assert_eq!(decode(&parsed["binaryData"]["wheelhouse.tgz"]), archive_bytes);
    assert_eq!(parsed["data"]["wheelhouse.tgz.sha256"], sidecar_text.as_str());
    let summary = stderr(&configmap_run);
    assert!(summary.contains("wrote ConfigMap wheelhouse in namespace team-a to stdout"), "{summary}");
    assert!(summary.contains("kubectl create -f -"), "{summary}");
    assert!(!summary.contains("warning"), "{summary}");

    let secret = stdout(&run_ok(&mut project.command(&["bundle", "--secret", "wheelhouse", "--namespace", "team-a"])));
    let parsed = &documents(&secret)[0];
    assert_eq!(parsed["kind"], "Secret");
    assert_eq!(parsed["type"], "Opaque");
    assert_eq!(decode(&parsed["data"]["wheelhouse.tgz"]), archive_bytes);
    assert_eq!(decode(&parsed["data"]["wheelhouse.tgz.sha256"]), sidecar_text.as_bytes());

    // --output: the same bytes in a file, nothing on stdout.
    let written = run_ok(&mut project.command(&[
        "bundle",
        "--configmap",
        "wheelhouse",
        "--namespace",
        "team-a",
        "--output",
        "bundle.yaml",
    ]));
    assert_eq!(stdout(&written), "");
    assert_eq!(fs_err::read_to_string(project.root().join("bundle.yaml")).unwrap(), configmap);

    if !kubectl_available() {
        eprintln!("skipped the comparison with kubectl: kubectl is not on PATH");
        return;
    }
    assert_eq!(configmap, kubectl_yaml(&project, &["configmap"], "wheelhouse"));
    assert_eq!(secret, kubectl_yaml(&project, &["secret", "generic"], "wheelhouse"));
}

#[test]
fn bundle_refuses_a_missing_archive_or_sidecar_and_a_mismatch() {
    let project = Project::new();
    let missing = run_fails(&mut project.command(&["bundle", "--configmap", "wheelhouse"]));
    let text = stderr(&missing);
    assert!(text.contains(&format!("{} is missing", archive(&project).display())), "{text}");
    assert!(text.contains("hint: run `wheelgap pack-wheelhouse` first"), "{text}");
    assert_eq!(missing.status.code(), Some(1));

    let path = fake_archive(&project, "wheelhouse.tgz", 1000);
    let sidecar = project.root().join("wheelhouse.tgz.sha256");
    let expected = sha256_hex(&fs_err::read(&path).unwrap());
    fs_err::rename(&sidecar, project.root().join("elsewhere")).unwrap();
    let text = stderr(&run_fails(&mut project.command(&["bundle", "--secret", "wheelhouse"])));
    assert!(text.contains(&format!("{} is missing, so wheelhouse.tgz cannot be checked", sidecar.display())), "{text}");
    fs_err::rename(project.root().join("elsewhere"), &sidecar).unwrap();

    let mut bytes = fs_err::read(&path).unwrap();
    bytes[500] ^= 1;
    fs_err::write(&path, &bytes).unwrap();
    let text = stderr(&run_fails(&mut project.command(&["bundle", "--pvc", "wheelhouse"])));
    let actual = sha256_hex(&bytes);
    assert!(
        text.contains(&format!("wheelhouse.tgz has sha256 {actual}, {} says {expected}", sidecar.display())),
        "{text}"
    );
}

#[test]
fn over_the_object_limit_the_bundle_points_to_pvc_and_near_it_warns() {
    let project = Project::new();
    fake_archive(&project, "big.tgz", 800 << 10);
    let refused = run_fails(&mut project.command(&["bundle", "--configmap", "wheelhouse", "--archive", "big.tgz"]));
    let text = stderr(&refused);
    assert!(text.contains("error: big.tgz is 819.2 kB (819200 bytes): as a ConfigMap it is"), "{text}");
    assert!(text.contains("over the 1048576 byte (1 MiB) limit"), "{text}");
    assert!(text.contains("hint: use --pvc NAME instead"), "{text}");
    assert_eq!(stdout(&refused), "");

    fake_archive(&project, "near.tgz", 720 << 10);
    let near = run_ok(&mut project.command(&["bundle", "--secret", "wheelhouse", "--archive", "near.tgz"]));
    let text = stderr(&near);
    assert!(text.contains("warning: the Secret is 93% of the 1 MiB object limit"), "{text}");
    assert!(text.contains("kubectl apply --server-side -f -"), "{text}");
    let parsed = &documents(&stdout(&near))[0];
    assert_eq!(decode(&parsed["data"]["near.tgz"]), fs_err::read(project.root().join("near.tgz")).unwrap());
}

#[test]
fn a_pvc_bundle_is_a_claim_and_a_loader_pod_with_the_steps_to_fill_it() {
    let project = Project::new();
    let archive_path = fake_archive(&project, "wheelhouse.tgz", 30 << 20);
    let output = run_ok(&mut project.command(&["bundle", "--pvc", "wheelhouse", "--namespace", "team-a"]));
    let yaml = stdout(&output);
    assert!(yaml.contains("\n---\n"), "{yaml}");
    let [claim, pod] = &documents(&yaml)[..] else { panic!("two documents expected:\n{yaml}") };
    assert_eq!(claim["kind"], "PersistentVolumeClaim");
    assert_eq!(claim["metadata"]["namespace"], "team-a");
    assert_eq!(claim["spec"]["accessModes"][0], "ReadWriteOnce");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "90Mi");
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"]["name"], "wheelhouse-loader");
    assert_eq!(pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "wheelhouse");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["command"][0], "sleep");
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/wheelhouse");

    let steps = stderr(&output);
    for expected in [
        "wrote PersistentVolumeClaim wheelhouse (90Mi, ReadWriteOnce) and Pod wheelhouse-loader".to_owned(),
        "kubectl wait -n team-a --for=condition=Ready pod/wheelhouse-loader".to_owned(),
        format!("kubectl cp {} team-a/wheelhouse-loader:/wheelhouse/wheelhouse.tgz\n", archive_path.display()),
        format!(
            "kubectl cp {}.sha256 team-a/wheelhouse-loader:/wheelhouse/wheelhouse.tgz.sha256\n",
            archive_path.display()
        ),
        "sha256sum -c wheelhouse.tgz.sha256 && rm -rf wheelhouse && tar xzf wheelhouse.tgz".to_owned(),
        "kubectl delete -n team-a pod/wheelhouse-loader".to_owned(),
    ] {
        assert!(steps.contains(&expected), "missing {expected:?} in\n{steps}");
    }
}

#[test]
fn bundle_refuses_names_kubernetes_would_refuse() {
    let project = Project::new();
    fake_archive(&project, "wheelhouse.tgz", 100);
    let text = stderr(&run_fails(&mut project.command(&["bundle", "--configmap", "Wheel_House"])));
    assert!(text.contains("--configmap \"Wheel_House\" is not a valid Kubernetes name"), "{text}");
    let text = stderr(&run_fails(&mut project.command(&["bundle", "--pvc", "w", "--namespace", "a.b"])));
    assert!(text.contains("--namespace \"a.b\" is not a valid Kubernetes namespace"), "{text}");
    let text = stderr(&run_fails(&mut project.command(&["bundle"])));
    assert!(text.contains("--configmap NAME, --secret NAME, --pvc NAME or --serve NAME"), "{text}");
}

/// The generated script, written to a file for dash to run.
fn install_script(project: &Project, name: &str, args: &[&str]) -> PathBuf {
    let mut command = project.command(&["install-script"]);
    command.args(args);
    let path = project.tmp.path().join(name);
    fs_err::write(&path, stdout(&run_ok(&mut command))).unwrap();
    path
}

/// `dash SCRIPT [BUNDLE]` with the test interpreter and none of the host's pip configuration.
fn dash(script: &Path, bundle: Option<&Path>) -> Command {
    let mut command = Command::new("dash");
    scrub_env(&mut command);
    command
        .arg(script)
        .args(bundle)
        .env("PYTHON", crate::support::python())
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env_remove("WHEELHOUSE")
        .env_remove("REQUIREMENTS");
    command
}

fn installed(target: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(target)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".dist-info"))
        .collect();
    names.sort();
    names
}

fn failure(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    stderr(output)
}

#[test]
fn the_install_script_installs_from_a_mounted_bundle_under_dash_and_refuses_a_missing_or_tampered_one() {
    let project = packed_project();
    let target = project.tmp.path().join("site-packages");
    let lock = project.root().join("requirements.lock.txt");
    let script = install_script(
        &project,
        "install.sh",
        &["--lock", &lock.display().to_string(), "--target", &target.display().to_string()],
    );

    // The ConfigMap as a pod sees it mounted: one file per key.
    let configmap = stdout(&run_ok(&mut project.command(&["bundle", "--configmap", "wheelhouse"])));
    let parsed = &documents(&configmap)[0];
    let mount = project.tmp.path().join("mount");
    fs_err::create_dir_all(&mount).unwrap();
    fs_err::write(mount.join("wheelhouse.tgz"), decode(&parsed["binaryData"]["wheelhouse.tgz"])).unwrap();
    fs_err::write(mount.join("wheelhouse.tgz.sha256"), parsed["data"]["wheelhouse.tgz.sha256"].as_str().unwrap())
        .unwrap();

    let mut command = dash(&script, None);
    command.env("WHEELHOUSE", mount.join("wheelhouse.tgz"));
    let output = run_ok(&mut command);
    let names = installed(&target);
    assert!(names.contains(&"purelib-1.0.dist-info".to_owned()), "{names:?}\n{}", stderr(&output));
    // purelib's dependencies under this host's markers: one of each pair.
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(stderr(&output).contains("install-script: installing --require-hashes -r"), "{}", stderr(&output));
    // Run again, as a restarted pod does: it replaces what is there.
    run_ok(&mut command);

    // A directory, with a requirements file from the environment: no lock, no target baked in.
    let plain = install_script(&project, "plain.sh", &[]);
    let directory_target = project.tmp.path().join("from-directory");
    let plain_with_target =
        install_script(&project, "plain-target.sh", &["--target", &directory_target.display().to_string()]);
    let mut command = dash(&plain_with_target, Some(&project.wheelhouse()));
    command.env("REQUIREMENTS", project.root().join("requirements.txt"));
    run_ok(&mut command);
    assert_eq!(installed(&directory_target), names);
    let text = failure(&run_fails(&mut dash(&plain, Some(&project.wheelhouse()))));
    assert!(text.contains("install-script: nothing to install: set REQUIREMENTS"), "{text}");

    // The mount's directory instead of the archive in it.
    let text = failure(&run_fails(&mut dash(&script, Some(&mount))));
    assert!(
        text.contains(&format!("holds a bundle, not a wheelhouse: give {}/wheelhouse.tgz", mount.display())),
        "{text}"
    );

    // Missing: the bundle, then its sidecar.
    let absent = project.tmp.path().join("absent/wheelhouse.tgz");
    let text = failure(&run_fails(&mut dash(&script, Some(&absent))));
    assert!(text.contains(&format!("install-script: {} is missing", absent.display())), "{text}");
    let lonely = project.tmp.path().join("lonely");
    fs_err::create_dir_all(&lonely).unwrap();
    fs_err::copy(archive(&project), lonely.join("wheelhouse.tgz")).unwrap();
    let text = failure(&run_fails(&mut dash(&script, Some(&lonely.join("wheelhouse.tgz")))));
    assert!(text.contains(&format!("install-script: {}/wheelhouse.tgz.sha256 is missing", lonely.display())), "{text}");

    // Tampered: one bit of the archive flipped, then one wheel of a directory changed.
    let tampered = mount.join("wheelhouse.tgz");
    let mut bytes = fs_err::read(&tampered).unwrap();
    let expected = sha256_hex(&bytes);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs_err::write(&tampered, &bytes).unwrap();
    let untouched = project.tmp.path().join("untouched");
    let tampered_script = install_script(
        &project,
        "tampered.sh",
        &["--lock", &lock.display().to_string(), "--target", &untouched.display().to_string()],
    );
    let text = failure(&run_fails(&mut dash(&tampered_script, Some(&tampered))));
    assert!(
        text.contains(&format!(
            "install-script: {} sha256 mismatch: expected {expected}, got {}",
            tampered.display(),
            sha256_hex(&bytes)
        )),
        "{text}"
    );
    assert!(!untouched.exists());

    let copy = project.tmp.path().join("copy");
    fs_err::create_dir_all(&copy).unwrap();
    for name in crate::support::file_names(&project.wheelhouse()) {
        fs_err::copy(project.wheelhouse().join(&name), copy.join(&name)).unwrap();
    }
    let wheel = copy.join("purelib-1.0-py3-none-any.whl");
    let mut bytes = fs_err::read(&wheel).unwrap();
    bytes.extend_from_slice(b"tampered");
    fs_err::write(&wheel, &bytes).unwrap();
    let text = failure(&run_fails(&mut dash(&tampered_script, Some(&copy))));
    assert!(text.contains("purelib-1.0-py3-none-any.whl: FAILED"), "{text}");
    assert!(text.contains(&format!("install-script: {} does not match its SHA256SUMS", copy.display())), "{text}");
    assert!(!untouched.exists());
}

/// A `.tgz` of `entries` in the order given, each a regular file unless it has a link target,
/// with its sidecar beside it in `directory`: what a hostile packer could make, names and all.
fn hostile_archive(directory: &Path, entries: &[(String, Vec<u8>, Option<&str>)]) -> PathBuf {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gzip);
    for (name, bytes, link) in entries {
        let mut header = tar::Header::new_ustar();
        // Written into the header by hand: `set_path` refuses the absolute and `..` names wanted here.
        assert!(name.len() <= 100, "{name}");
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_mode(0o644);
        header.set_mtime(0);
        match link {
            Some(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                header.set_size(0);
            }
            None => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
            }
        }
        header.set_cksum();
        builder.append(&header, bytes.as_slice()).unwrap();
    }
    let bytes = builder.into_inner().unwrap().finish().unwrap();
    fs_err::create_dir_all(directory).unwrap();
    let path = directory.join("wheelhouse.tgz");
    fs_err::write(&path, &bytes).unwrap();
    fs_err::write(directory.join("wheelhouse.tgz.sha256"), sidecar_line(&sha256_hex(&bytes), "wheelhouse.tgz"))
        .unwrap();
    path
}

/// The wheelhouse's files as pack-wheelhouse lays them out: `wheelhouse/manifest.json`, then
/// `wheelhouse/SHA256SUMS`, then the rest by name.
fn packed_entries(wheelhouse: &Path) -> Vec<(String, Vec<u8>, Option<&'static str>)> {
    let mut names = crate::support::file_names(wheelhouse);
    names.sort_by_key(|name| (name != "manifest.json", name != "SHA256SUMS", name.clone()));
    names
        .into_iter()
        .map(|name| (format!("wheelhouse/{name}"), fs_err::read(wheelhouse.join(&name)).unwrap(), None))
        .collect()
}

/// The wheel slipped into the bundles below: a purelib newer than the packed one, which pip would
/// pick for the unpinned `purelib` of `requirements.txt`.
const EXTRA_WHEEL: &str = "purelib-9.9-py3-none-any.whl";

fn extra_wheel() -> Vec<u8> {
    crate::support::archives::build_wheel(&crate::support::WheelSpec::pure("purelib", "9.9"))
}

/// A packed project, and a script that installs its `requirements.txt` into `untouched`.
fn unpinned_install_script() -> (Project, PathBuf) {
    let project = packed_project();
    let untouched = project.tmp.path().join("untouched");
    let script = install_script(&project, "install.sh", &["--target", &untouched.display().to_string()]);
    (project, script)
}

/// The script run on `bundle`, with `TMPDIR` a directory of its own: it must fail, install
/// nothing, and leave that directory empty. Its stderr.
fn refused(project: &Project, script: &Path, bundle: &Path) -> String {
    let scratch = project.tmp.path().join("scratch");
    fs_err::create_dir_all(&scratch).unwrap();
    let mut command = dash(script, Some(bundle));
    command.env("REQUIREMENTS", project.root().join("requirements.txt")).env("TMPDIR", &scratch);
    let text = failure(&run_fails(&mut command));
    assert!(!project.tmp.path().join("untouched").exists(), "{text}");
    assert_eq!(fs_err::read_dir(&scratch).unwrap().count(), 0, "{text}");
    text
}

#[test]
fn the_install_script_refuses_an_archive_whose_files_are_not_exactly_those_of_its_sha256sums() {
    let (project, script) = unpinned_install_script();
    let packed = packed_entries(&project.wheelhouse());
    let hostile = |name: &str, entries: &[(String, Vec<u8>, Option<&str>)]| {
        hostile_archive(&project.tmp.path().join(name), entries)
    };

    // A wheel SHA256SUMS does not list, in an archive whose sidecar matches.
    let mut entries = packed.clone();
    entries.push((format!("wheelhouse/{EXTRA_WHEEL}"), extra_wheel(), None));
    let bundle = hostile("extra", &entries);
    let text = refused(&project, &script, &bundle);
    assert!(text.lines().any(|line| line == format!("{EXTRA_WHEEL}: not listed in SHA256SUMS")), "{text}");
    assert!(
        text.contains(&format!(
            "install-script: {} does not hold exactly the files its SHA256SUMS lists",
            bundle.display()
        )),
        "{text}"
    );

    // Its name is printed without the control characters in it.
    let mut entries = packed.clone();
    entries.push((format!("wheelhouse/\u{1b}[2J{EXTRA_WHEEL}"), extra_wheel(), None));
    let text = refused(&project, &script, &hostile("control", &entries));
    assert!(text.contains(&format!("?[2J{EXTRA_WHEEL}: not listed in SHA256SUMS")), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");

    // A listed wheel missing, or a link in its place.
    let wheel = "wheelhouse/purelib-1.0-py3-none-any.whl";
    let mut entries: Vec<_> = packed.iter().filter(|(name, _, _)| name != wheel).cloned().collect();
    let text = refused(&project, &script, &hostile("missing", &entries));
    assert!(text.contains("purelib-1.0-py3-none-any.whl: listed in SHA256SUMS, missing"), "{text}");
    entries.push((wheel.to_owned(), Vec::new(), Some("/etc/hostname")));
    let text = refused(&project, &script, &hostile("link", &entries));
    assert!(text.contains("purelib-1.0-py3-none-any.whl: not a regular file"), "{text}");

    // No SHA256SUMS at all.
    let entries: Vec<_> = packed.iter().filter(|(name, _, _)| name != "wheelhouse/SHA256SUMS").cloned().collect();
    let bundle = hostile("unsummed", &entries);
    let text = refused(&project, &script, &bundle);
    assert!(text.contains(&format!("install-script: {} has no wheelhouse/SHA256SUMS", bundle.display())), "{text}");

    // The packed layout itself, through the same helper, installs.
    let bundle = hostile("faithful", &packed);
    let mut command = dash(&script, Some(&bundle));
    command.env("REQUIREMENTS", project.root().join("requirements.txt"));
    run_ok(&mut command);
    assert!(installed(&project.tmp.path().join("untouched")).contains(&"purelib-1.0.dist-info".to_owned()));
}

#[test]
fn the_install_script_refuses_archive_entries_outside_wheelhouse_before_extracting_anything() {
    let (project, script) = unpinned_install_script();
    let packed = packed_entries(&project.wheelhouse());
    let outside = project.tmp.path().join("outside");
    let escapes = [
        format!("{}/absolute.whl", outside.display()),
        "wheelhouse/../../escaped.whl".to_owned(),
        "../escaped.whl".to_owned(),
        format!("wheelhouse/nested/{EXTRA_WHEEL}"),
        format!("elsewhere/{EXTRA_WHEEL}"),
        format!("wheelhouse/x\nwheelhouse/{EXTRA_WHEEL}"),
    ];
    for (index, name) in escapes.iter().enumerate() {
        let mut entries = packed.clone();
        // First, so that an extraction would write it before any check of the extracted files.
        entries.insert(0, (name.clone(), extra_wheel(), None));
        let bundle = hostile_archive(&project.tmp.path().join(format!("escape-{index}")), &entries);
        let text = refused(&project, &script, &bundle);
        assert!(
            text.contains(&format!(
                "install-script: {} has entries outside wheelhouse/: nothing is extracted",
                bundle.display()
            )),
            "{name:?}: {text}"
        );
        assert!(!outside.exists(), "{name:?}: {text}");
    }
    let text = refused(&project, &script, &project.tmp.path().join("escape-0/wheelhouse.tgz"));
    assert!(text.contains(&format!("{}/absolute.whl: outside wheelhouse/", outside.display())), "{text}");
}

#[test]
fn the_install_script_refuses_a_wheelhouse_directory_with_files_its_sha256sums_does_not_list() {
    let (project, script) = unpinned_install_script();
    let copy = project.tmp.path().join("copy");
    fs_err::create_dir_all(&copy).unwrap();
    for name in crate::support::file_names(&project.wheelhouse()) {
        fs_err::copy(project.wheelhouse().join(&name), copy.join(&name)).unwrap();
    }
    fs_err::write(copy.join(EXTRA_WHEEL), extra_wheel()).unwrap();
    let text = refused(&project, &script, &copy);
    assert!(text.lines().any(|line| line == format!("{EXTRA_WHEEL}: not listed in SHA256SUMS")), "{text}");
    assert!(
        text.contains(&format!(
            "install-script: {} does not hold exactly the files its SHA256SUMS lists",
            copy.display()
        )),
        "{text}"
    );
    // A directory in it is refused as well; without either, the same directory installs.
    fs_err::remove_file(copy.join(EXTRA_WHEEL)).unwrap();
    fs_err::create_dir_all(copy.join("nested")).unwrap();
    let text = refused(&project, &script, &copy);
    assert!(text.contains("nested: not a regular file"), "{text}");
    fs_err::remove_dir(copy.join("nested")).unwrap();
    let mut command = dash(&script, Some(&copy));
    command.env("REQUIREMENTS", project.root().join("requirements.txt"));
    run_ok(&mut command);
    assert!(installed(&project.tmp.path().join("untouched")).contains(&"purelib-1.0.dist-info".to_owned()));
}
