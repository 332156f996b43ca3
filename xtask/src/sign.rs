//! `sign`, and checking signatures: a detached signature of `manifest.json` (which pins every
//! file's sha256, so it authenticates the whole wheelhouse and any archive of it) by GnuPG or SSH.
//! The one place that runs gpg, gpgv and ssh-keygen.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{
    flags::{Sign, SignatureFlags},
    manifest::MANIFEST_NAME,
    pack_wheelhouse::read_manifest,
    partial,
    settings::{self, Settings},
    ui,
};

pub const GPG_SIGNATURE: &str = "manifest.json.asc";
pub const SSH_SIGNATURE: &str = "manifest.json.sshsig";
/// `ssh-keygen -Y` signs for a namespace, so a signature made for another purpose (git commits,
/// files) cannot be passed off as one of a wheelhouse.
pub const SSH_NAMESPACE: &str = "xtask-wheelhouse-manifest";

/// How a signature is to be checked.
#[derive(Debug, Clone)]
pub enum Verifier {
    Gpg { keyring: PathBuf },
    Ssh { allowed_signers: PathBuf, identity: String },
}

impl Verifier {
    /// From the signature flags of verify and unpack: `None` when no signature is asked for.
    pub fn from_flags(flags: &SignatureFlags) -> Result<Option<Verifier>> {
        let current = std::env::current_dir()?;
        match (&flags.keyring, &flags.allowed_signers, &flags.identity) {
            (Some(keyring), None, _) => Ok(Some(Verifier::Gpg { keyring: current.join(keyring) })),
            (None, Some(allowed), Some(identity)) => {
                Ok(Some(Verifier::Ssh { allowed_signers: current.join(allowed), identity: identity.clone() }))
            }
            (Some(_), Some(_), _) => bail!("give --keyring (GnuPG) or --allowed-signers (SSH), not both"),
            (None, None, _) if flags.required => bail!(
                "--signature needs a key to check against\nhint: --keyring FILE (GnuPG public keys), or --allowed-signers FILE --identity ID (SSH)"
            ),
            _ => Ok(None),
        }
    }

    fn signature_name(&self) -> &'static str {
        match self {
            Verifier::Gpg { .. } => GPG_SIGNATURE,
            Verifier::Ssh { .. } => SSH_SIGNATURE,
        }
    }
}

pub fn run(sh: &Shell, root: &Path, args: &Sign) -> Result<()> {
    let settings = Settings::load(root)?;
    let wheelhouse = settings::wheelhouse_dir(root, &settings, args.wheelhouse.as_deref())?;
    read_manifest(&wheelhouse)?;
    let manifest_path = wheelhouse.join(MANIFEST_NAME);
    let manifest = fs_err::read(&manifest_path)?;
    let scratch = tempfile::Builder::new().prefix("xtask-sign-").tempdir()?;
    let copy = scratch.path().join(MANIFEST_NAME);
    fs_err::write(&copy, &manifest)?;
    let (name, produced) = match (&args.gpg, &args.ssh_key) {
        (Some(key), _) => {
            let output = scratch.path().join(GPG_SIGNATURE);
            cmd!(sh, "gpg --batch --yes --local-user {key} --armor --detach-sign --output {output} {copy}")
                .quiet()
                .run()
                .with_context(|| format!("gpg could not sign with key {key}\nhint: is it in the keyring of GNUPGHOME (gpg --list-secret-keys)?"))?;
            (GPG_SIGNATURE, output)
        }
        (None, Some(key)) => {
            cmd!(sh, "ssh-keygen -q -Y sign -f {key} -n {SSH_NAMESPACE} {copy}")
                .quiet()
                .run()
                .with_context(|| format!("ssh-keygen could not sign with {}", key.display()))?;
            (SSH_SIGNATURE, scratch.path().join(format!("{MANIFEST_NAME}.sig")))
        }
        (None, None) => bail!("give --gpg KEYID or --ssh-key FILE"),
    };
    // The manifest must not have changed while it was signed: the signature is of those bytes.
    if fs_err::read(&manifest_path)? != manifest {
        bail!("{} changed while it was being signed; sign again", manifest_path.display());
    }
    let signature = fs_err::read(&produced)?;
    partial::write_atomically(&wheelhouse, name, &signature)?;
    ui::say(&format!(
        "wrote {}: a signature of {} (pack-wheelhouse carries it; verify-wheelhouse checks it)",
        wheelhouse.join(name).display(),
        manifest_path.display()
    ));
    Ok(())
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
            cmd!(sh, "gpgv --keyring {keyring} {signature_path} {manifest_path}").quiet().ignore_status().output()?
        }
        Verifier::Ssh { allowed_signers, identity } => {
            cmd!(sh, "ssh-keygen -Y verify -f {allowed_signers} -I {identity} -n {SSH_NAMESPACE} -s {signature_path}")
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

/// The signatures present in a wheelhouse directory.
pub fn signatures_in(wheelhouse: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut signatures = BTreeMap::new();
    for name in [GPG_SIGNATURE, SSH_SIGNATURE] {
        if let Ok(bytes) = fs_err::read(wheelhouse.join(name)) {
            signatures.insert(name.to_owned(), bytes);
        }
    }
    Ok(signatures)
}
