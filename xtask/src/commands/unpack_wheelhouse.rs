//! `unpack-wheelhouse`: an archive extracted safely into a staging directory, verified against its
//! manifest, and only then swapped in as the wheelhouse.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::Shell;
use xtask::{
    model::{
        delta::{DeltaRecord, Origin, DELTA_NAME},
        digest::sha256_hex,
        manifest::{Manifest, MANIFEST_NAME},
        paths::human_bytes,
    },
    parallel,
    tools::signing,
    ui,
    wheelhouse::{
        delta::{check_base, fill_from_base, Taken},
        integrity::{self, Depth},
        layout, partial,
        simple_index::stale_index,
        swap::{self, Staging},
    },
};

use crate::{commands::foreign_differences, flags::UnpackWheelhouse, settings::Project};

pub fn run(sh: &Shell, project: &Project, args: &UnpackWheelhouse) -> Result<()> {
    let started = Instant::now();
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    let archive_path = project.flag_path(&args.archive);
    if layout::is_inside(&archive_path, &wheelhouse) {
        bail!(
            "{} is inside the wheelhouse it would replace ({}): unpacking would delete it; nothing was changed\nhint: move the archive out of the wheelhouse first",
            archive_path.display(),
            wheelhouse.display()
        );
    }
    swap::check_replaceable(&wheelhouse, &project.root)?;
    let _lock = swap::lock(&wheelhouse)?;
    for leftover in swap::recover(&wheelhouse)? {
        ui::say(&format!("removed {} left by an interrupted run", leftover.display()));
    }
    let verifier = project.verifier(&args.signature)?;
    let mut staging = Staging::create(&wheelhouse)?;
    // The signature, when one is required, is checked before a single distribution is written,
    // and so is a delta's base: the wheelhouse here must be the one it was made against.
    let mut base: Option<(Manifest, String)> = None;
    let mut check_signature = |manifest: &[u8], reserved: &integrity::ReservedFiles| {
        signing::verify_if_asked(sh, verifier.as_ref(), manifest, reserved)?;
        if let Some(bytes) = reserved.get(DELTA_NAME) {
            let delta = DeltaRecord::from_json(bytes).map_err(anyhow::Error::msg)?;
            base = Some(read_base(&wheelhouse, &delta)?);
        }
        Ok(())
    };
    let checked = integrity::check_archive(&archive_path, Some(&staging.dir), &mut check_signature)
        .with_context(|| format!("refused {}; {} is unchanged", archive_path.display(), wheelhouse.display()))?;
    let mut problems: Vec<String> = checked.checked.problems.iter().map(|problem| problem.message.clone()).collect();
    let (_, sidecar_problem) = integrity::check_sidecar(&archive_path, &checked.digests.archive_sha256);
    problems.extend(sidecar_problem.map(|problem| problem.message));
    // A delta: the files it leaves out come from the base, then every byte of the whole is checked
    // against the new manifest, as a full archive's are as they stream by.
    let mut taken = Taken::default();
    if let Some(delta) = &checked.delta {
        // The record came before any distribution, so the base was read and proven there.
        let Some((base_manifest, _)) = &base else {
            bail!(
                "refused {}: a delta whose base was not checked; {} is unchanged",
                archive_path.display(),
                wheelhouse.display()
            );
        };
        // When its own entries do not check out, nothing is linked: the refusal below names them.
        if problems.is_empty() {
            taken = fill_from_base(&staging.dir, &wheelhouse, base_manifest, &checked.manifest, delta).with_context(
                || format!("refused {}; {} is unchanged", archive_path.display(), wheelhouse.display()),
            )?;
            let whole =
                integrity::check_directory(&staging.dir, &checked.manifest, Depth::Contents, parallel::default_jobs())?;
            problems.extend(whole.problems.iter().map(|problem| problem.message.clone()));
            staging.linked_from_synced(taken.linked.clone());
        }
    }
    // An index it carries must be the one its files give (for a delta, the whole was checked above).
    if problems.is_empty() && checked.delta.is_none() {
        let stale = stale_index(&staging.dir, &checked.manifest)?;
        problems.extend(stale.iter().map(|path| format!("{path} is not the index these files give")));
    }
    if !problems.is_empty() {
        bail!(
            "refused {}: it does not match its manifest; {} is unchanged\n  {}",
            archive_path.display(),
            wheelhouse.display(),
            problems.join("\n  ")
        );
    }
    if !args.accept_foreign {
        let differences = foreign_differences(project, &checked.manifest)?;
        if !differences.is_empty() {
            let differences: Vec<String> = differences.iter().map(ToString::to_string).collect();
            bail!(
                "refused {}: it was made for other inputs than this project's; {} is unchanged\n  {}\nhint: unpack it where its project is, or pass --accept-foreign if it is meant for this one as it is",
                archive_path.display(),
                wheelhouse.display(),
                differences.join("\n  ")
            );
        }
    }
    let manifest_sha256 = sha256_hex(&fs_err::read(staging.dir.join(MANIFEST_NAME))?);
    staging.commit()?;
    let origin = Origin {
        manifest_sha256,
        archive: archive_path.display().to_string(),
        archive_sha256: checked.digests.archive_sha256.clone(),
        base_manifest_sha256: checked.delta.as_ref().map(|delta| delta.base_manifest_sha256.clone()),
        unpacked_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
    };
    // What status shows; the wheelhouse is in place whether or not this is written.
    if let Err(error) =
        partial::write_file(&layout::origin_path(&wheelhouse), serde_json::to_string_pretty(&origin)?.as_bytes())
    {
        ui::say(&format!("warning: cannot record where the wheelhouse came from: {error:#}"));
    }
    let applied = match &checked.delta {
        Some(delta) => format!(
            " (a delta over {}: {} files, {} kept from it)",
            delta.base_manifest_sha256,
            taken.files,
            human_bytes(taken.bytes)
        ),
        None => String::new(),
    };
    ui::say(&format!(
        "unpacked {} files ({}) into {} in {}{applied}; every file matches the manifest",
        checked.checked.n_files,
        human_bytes(checked.checked.n_bytes),
        wheelhouse.display(),
        ui::seconds(started.elapsed())
    ));
    Ok(())
}

/// The manifest of the wheelhouse a delta is applied over, and its sha256, once proven to be the
/// delta's base.
fn read_base(wheelhouse: &std::path::Path, delta: &DeltaRecord) -> Result<(Manifest, String)> {
    if !wheelhouse.join(MANIFEST_NAME).is_file() {
        bail!(
            "the archive is a delta: it applies over the wheelhouse whose manifest has sha256 {}, and {} holds no wheelhouse\nhint: unpack the full archive first, then the deltas made since, in order",
            delta.base_manifest_sha256,
            wheelhouse.display()
        );
    }
    let (manifest, bytes) = layout::read_manifest_with_bytes(wheelhouse)?;
    let sha256 = sha256_hex(&bytes);
    check_base(wheelhouse, &sha256, delta)?;
    Ok((manifest, sha256))
}
