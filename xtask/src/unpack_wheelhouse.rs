//! `unpack-wheelhouse`: an archive extracted safely into a staging directory, verified against its
//! manifest, and only then swapped in as the wheelhouse.

use std::{path::Path, time::Instant};

use anyhow::{bail, Context, Result};

use crate::{
    create_wheelhouse::human_bytes,
    flags::UnpackWheelhouse,
    integrity,
    settings::{self, Settings},
    sign,
    swap::{self, Staging},
    ui,
};

pub fn run(sh: &xshell::Shell, root: &Path, args: &UnpackWheelhouse) -> Result<()> {
    let started = Instant::now();
    let settings = Settings::load(root)?;
    let wheelhouse = settings::wheelhouse_dir(root, &settings, args.wheelhouse.as_deref())?;
    let archive_path = std::env::current_dir()?.join(&args.archive);
    let _lock = swap::lock(&wheelhouse)?;
    for leftover in swap::recover(&wheelhouse)? {
        ui::say(&format!("removed {} left by an interrupted run", leftover.display()));
    }
    let verifier = sign::Verifier::from_flags(&args.signature)?;
    let staging = Staging::create(&wheelhouse)?;
    // The signature, when one is required, is checked before a single distribution is written.
    let mut check_signature = |manifest: &[u8], reserved: &integrity::ReservedFiles| match &verifier {
        Some(verifier) => sign::verify(sh, verifier, manifest, reserved),
        None => Ok(()),
    };
    let checked = integrity::check_archive(&archive_path, Some(&staging.dir), &mut check_signature)
        .with_context(|| format!("refused {}; {} is unchanged", archive_path.display(), wheelhouse.display()))?;
    let mut problems: Vec<String> = checked.checked.problems.iter().map(|problem| problem.message.clone()).collect();
    let (_, sidecar_problem) = integrity::check_sidecar(&archive_path, &checked.digests.archive_sha256);
    problems.extend(sidecar_problem.map(|problem| problem.message));
    if !problems.is_empty() {
        bail!(
            "refused {}: it does not match its manifest; {} is unchanged\n  {}",
            archive_path.display(),
            wheelhouse.display(),
            problems.join("\n  ")
        );
    }
    staging.commit()?;
    ui::say(&format!(
        "unpacked {} files ({}) into {} in {}; every file matches the manifest",
        checked.checked.n_files,
        human_bytes(checked.checked.n_bytes),
        wheelhouse.display(),
        ui::seconds(started.elapsed())
    ));
    Ok(())
}
