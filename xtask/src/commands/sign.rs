//! `sign`: a detached signature of `manifest.json` (GnuPG or SSH) in the wheelhouse, which pack
//! carries and verify and unpack check.

use anyhow::{bail, Result};
use xshell::Shell;
use xtask::{
    model::manifest::MANIFEST_NAME,
    tools::signing::{self, Signer},
    ui,
    wheelhouse::{layout::read_manifest_with_bytes, partial, swap},
};

use crate::{flags::Sign, settings::Project};

pub fn run(sh: &Shell, project: &Project, args: &Sign) -> Result<()> {
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    // The signature joins a live wheelhouse: no create or unpack may swap it meanwhile.
    let _lock = swap::lock(&wheelhouse)?;
    let (_, manifest) = read_manifest_with_bytes(&wheelhouse)?;
    let manifest_path = wheelhouse.join(MANIFEST_NAME);
    let signer = match (&args.gpg, &args.ssh_key) {
        (Some(key), _) => Signer::Gpg { key: key.clone() },
        (None, Some(key)) => Signer::Ssh { key: project.flag_path(key) },
        (None, None) => bail!("give --gpg KEYID or --ssh-key FILE"),
    };
    let signature = signing::sign(sh, &signer, &manifest)?;
    // The manifest must not have changed while it was signed: the signature is of those bytes.
    if fs_err::read(&manifest_path)? != manifest {
        bail!("{} changed while it was being signed; sign again", manifest_path.display());
    }
    let name = signer.signature_name();
    partial::write_file(&wheelhouse.join(name), &signature)?;
    ui::say(&format!(
        "wrote {}: a signature of {} (pack-wheelhouse carries it; verify-wheelhouse checks it)",
        wheelhouse.join(name).display(),
        manifest_path.display()
    ));
    Ok(())
}
