//! The one place that runs gpg, gpgv and ssh-keygen: a detached signature of `manifest.json`
//! (which pins every file's sha256, so it authenticates the whole wheelhouse and any archive of
//! it), made and checked.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{
    model::manifest::{GPG_SIGNATURE_NAME, MANIFEST_NAME, SSH_SIGNATURE_NAME},
    tools::find,
    ui,
};

const GNUPG_HINT: &str = "install GnuPG (apt-get install gnupg, brew install gnupg)";
const OPENSSH_HINT: &str = "install the OpenSSH client (apt-get install openssh-client)";

/// `ssh-keygen -Y` signs for a namespace, so a signature made for another purpose (git commits,
/// files) cannot be passed off as one of a wheelhouse.
pub const SSH_NAMESPACE: &str = "xtask-wheelhouse-manifest";

/// How a signature is made.
#[derive(Debug, Clone)]
pub enum Signer {
    Gpg { key: String },
    Ssh { key: PathBuf },
}

/// How a signature is checked.
#[derive(Debug, Clone)]
pub enum Verifier {
    Gpg { keyring: PathBuf },
    Ssh { allowed_signers: PathBuf, identity: String },
}

impl Verifier {
    fn signature_name(&self) -> &'static str {
        match self {
            Verifier::Gpg { .. } => GPG_SIGNATURE_NAME,
            Verifier::Ssh { .. } => SSH_SIGNATURE_NAME,
        }
    }
}

impl Signer {
    /// The name of the signature file this signer makes.
    pub fn signature_name(&self) -> &'static str {
        match self {
            Signer::Gpg { .. } => GPG_SIGNATURE_NAME,
            Signer::Ssh { .. } => SSH_SIGNATURE_NAME,
        }
    }
}

/// Signs `manifest` (the bytes of `manifest.json`) and returns the signature's bytes.
pub fn sign(sh: &Shell, signer: &Signer, manifest: &[u8]) -> Result<Vec<u8>> {
    let scratch = tempfile::Builder::new().prefix("xtask-sign-").tempdir()?;
    let copy = scratch.path().join(MANIFEST_NAME);
    fs_err::write(&copy, manifest)?;
    let produced = match signer {
        Signer::Gpg { key } => {
            let gpg = find("gpg", "signing with --gpg", GNUPG_HINT)?;
            let output = scratch.path().join(GPG_SIGNATURE_NAME);
            cmd!(sh, "{gpg} --batch --yes --local-user {key} --armor --detach-sign --output {output} {copy}")
                .quiet()
                .run()
                .with_context(|| format!("gpg could not sign with key {key}\nhint: is it in the keyring of GNUPGHOME (gpg --list-secret-keys)?"))?;
            output
        }
        Signer::Ssh { key } => {
            let ssh_keygen = find("ssh-keygen", "signing with --ssh-key", OPENSSH_HINT)?;
            cmd!(sh, "{ssh_keygen} -q -Y sign -f {key} -n {SSH_NAMESPACE} {copy}")
                .quiet()
                .run()
                .with_context(|| format!("ssh-keygen could not sign with {}", key.display()))?;
            scratch.path().join(format!("{MANIFEST_NAME}.sig"))
        }
    };
    Ok(fs_err::read(&produced)?)
}

/// Checks the signature of `manifest` among `signatures` (reserved files by name).
pub fn verify(sh: &Shell, verifier: &Verifier, manifest: &[u8], signatures: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let name = verifier.signature_name();
    let Some(signature) = signatures.get(name) else {
        bail!(
            "no {name}: the wheelhouse is not signed, and a signature is required\nhint: on the connected side, cargo xtask sign {} and pack again",
            if matches!(verifier, Verifier::Gpg { .. }) { "--gpg KEYID" } else { "--ssh-key FILE" }
        );
    };
    let scratch = tempfile::Builder::new().prefix("xtask-verify-signature-").tempdir()?;
    let manifest_path = scratch.path().join(MANIFEST_NAME);
    let signature_path = scratch.path().join(name);
    fs_err::write(&manifest_path, manifest)?;
    fs_err::write(&signature_path, signature)?;
    let output = match verifier {
        Verifier::Gpg { keyring } => {
            let gpgv = find("gpgv", "checking a GnuPG signature", GNUPG_HINT)?;
            cmd!(sh, "{gpgv} --keyring {keyring} {signature_path} {manifest_path}").quiet().ignore_status().output()?
        }
        Verifier::Ssh { allowed_signers, identity } => {
            let ssh_keygen = find("ssh-keygen", "checking an SSH signature", OPENSSH_HINT)?;
            cmd!(sh, "{ssh_keygen} -Y verify -f {allowed_signers} -I {identity} -n {SSH_NAMESPACE} -s {signature_path}")
                .quiet()
                .ignore_status()
                .stdin(manifest)
                .output()?
        }
    };
    if !output.status.success() {
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        let against = match verifier {
            Verifier::Gpg { keyring } => format!("the keys in {}", keyring.display()),
            Verifier::Ssh { allowed_signers, identity } => format!("{identity} in {}", allowed_signers.display()),
        };
        bail!(
            "the signature {name} does not verify against {against}: the manifest was changed or signed by another key\n{}",
            said.trim()
        );
    }
    ui::say(&format!("{name}: good signature of manifest.json"));
    Ok(())
}

/// A check of `manifest` against the signatures, when a verifier is given; nothing otherwise.
pub fn verify_if_asked(
    sh: &Shell,
    verifier: Option<&Verifier>,
    manifest: &[u8],
    signatures: &BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    match verifier {
        Some(verifier) => verify(sh, verifier, manifest, signatures),
        None => Ok(()),
    }
}
