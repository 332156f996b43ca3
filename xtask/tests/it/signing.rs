//! `sign` and `verify-wheelhouse --signature`: throwaway GnuPG and SSH keys, the real gpg, gpgv
//! and ssh-keygen, on a directory and on an archive.

use std::{path::Path, process::Command};

use crate::support::{
    project::{stderr, stdout, Project, ONE_TARGET},
    run_fails, run_ok,
};

/// A GnuPG home with one new key; returns its fingerprint and a keyring file of its public key.
fn gpg_key(home: &Path, name: &str) -> (String, std::path::PathBuf) {
    fs_err::create_dir_all(home).unwrap();
    run_ok(Command::new("chmod").arg("700").arg(home));
    let gpg = || {
        let mut command = Command::new("gpg");
        command.env("GNUPGHOME", home).arg("--batch");
        command
    };
    run_ok(gpg().args([
        "--passphrase",
        "",
        "--quick-gen-key",
        &format!("{name} <{name}@example.invalid>"),
        "ed25519",
        "sign",
        "never",
    ]));
    let listing = stdout(&run_ok(gpg().args(["--list-keys", "--with-colons"])));
    let fingerprint = listing.lines().find_map(|line| line.strip_prefix("fpr:")).unwrap().trim_matches(':').to_owned();
    let keyring = home.join("signers.gpg");
    let exported = run_ok(gpg().args(["--export", &fingerprint]));
    fs_err::write(&keyring, exported.stdout).unwrap();
    (fingerprint, keyring)
}

fn verify(project: &Project, extra: &[&str]) -> Command {
    project.command(&[&["verify-wheelhouse", "--no-install-check"][..], extra].concat())
}

#[test]
fn gpg_signatures_are_checked_on_the_directory_and_the_archive() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    let home = project.tmp.path().join("gnupg");
    let (fingerprint, keyring) = gpg_key(&home, "signer");
    let (_, other_keyring) = gpg_key(&project.tmp.path().join("other-gnupg"), "stranger");
    let keyring = keyring.display().to_string();
    let other_keyring = other_keyring.display().to_string();

    // Required but absent.
    let error = stderr(&run_fails(&mut verify(&project, &["--keyring", &keyring])));
    assert!(error.contains("no manifest.json.asc: the wheelhouse is not signed"), "{error}");
    let error = stderr(&run_fails(&mut verify(&project, &["--signature"])));
    assert!(error.contains("--signature needs a key to check against"), "{error}");

    let mut sign = project.xtask();
    run_ok(sign.env("GNUPGHOME", &home).args(["sign", "--gpg", &fingerprint]));
    assert!(project.wheelhouse().join("manifest.json.asc").is_file());
    let good = stderr(&run_ok(&mut verify(&project, &["--keyring", &keyring])));
    assert!(good.contains("manifest.json.asc: good signature"), "{good}");
    let error = stderr(&run_fails(&mut verify(&project, &["--keyring", &other_keyring])));
    assert!(error.contains("does not verify against the keys in"), "{error}");

    // Packed, the signature comes right after the manifest and is checked before any file.
    let archive = project.tmp.path().join("wheelhouse.tgz");
    let mut pack = project.xtask();
    run_ok(pack.args(["pack-wheelhouse", "--output"]).arg(&archive));
    let listing = stdout(&run_ok(Command::new("tar").arg("tzf").arg(&archive)));
    assert_eq!(listing.lines().nth(2), Some("wheelhouse/manifest.json.asc"), "{listing}");
    let archive = archive.display().to_string();
    run_ok(&mut verify(&project, &["--archive", &archive, "--keyring", &keyring]));
    let error = stderr(&run_fails(&mut verify(&project, &["--archive", &archive, "--keyring", &other_keyring])));
    assert!(error.contains("does not verify"), "{error}");

    // unpack checks it too, before it writes a distribution, and then changes nothing.
    let unpack = |keyring: &str| {
        let mut command = project.xtask();
        command.args(["unpack-wheelhouse", &archive, "--wheelhouse", "unpacked", "--keyring", keyring]);
        command
    };
    let error = stderr(&run_fails(&mut unpack(&other_keyring)));
    assert!(error.contains("does not verify"), "{error}");
    assert!(!project.root().join("unpacked").exists());
    run_ok(&mut unpack(&keyring));
    assert!(project.root().join("unpacked/manifest.json.asc").is_file());

    // A changed manifest no longer matches its signature: that is the first thing said.
    let manifest = project.wheelhouse().join("manifest.json");
    let text = fs_err::read_to_string(&manifest).unwrap();
    fs_err::write(&manifest, text.replace("\"version\": \"1.0\"", "\"version\": \"6.6\"")).unwrap();
    let error = stderr(&run_fails(&mut verify(&project, &["--keyring", &keyring])));
    assert!(error.contains("the manifest was changed or signed by another key"), "{error}");
}

#[test]
fn ssh_signatures_need_the_right_identity() {
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    let key = project.tmp.path().join("id_ed25519");
    run_ok(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "ci", "-f"]).arg(&key));
    let public = fs_err::read_to_string(key.with_extension("pub")).unwrap();
    let allowed = project.tmp.path().join("allowed_signers");
    fs_err::write(&allowed, format!("release@example.invalid {}", public.trim())).unwrap();
    let mut sign = project.xtask();
    run_ok(sign.args(["sign", "--ssh-key"]).arg(&key));
    let allowed = allowed.display().to_string();
    run_ok(&mut verify(&project, &["--allowed-signers", &allowed, "--identity", "release@example.invalid"]));
    let error = stderr(&run_fails(&mut verify(
        &project,
        &["--allowed-signers", &allowed, "--identity", "someone@example.invalid"],
    )));
    assert!(error.contains("does not verify against someone@example.invalid"), "{error}");
}
