//! `unpack-wheelhouse`: an archive extracted safely into a staging directory, verified against its
//! manifest, and only then swapped in as the wheelhouse.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::Shell;
use xtask::{
    tools::signing,
    ui::{self, human_bytes},
    wheelhouse::{
        integrity, layout,
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
    let staging = Staging::create(&wheelhouse)?;
    // The signature, when one is required, is checked before a single distribution is written.
    let mut check_signature = |manifest: &[u8], reserved: &integrity::ReservedFiles| {
        signing::verify_if_asked(sh, verifier.as_ref(), manifest, reserved)
    };
    let checked = integrity::check_archive(&archive_path, Some(&staging.dir), &mut check_signature)
        .with_context(|| format!("refused {}; {} is unchanged", archive_path.display(), wheelhouse.display()))?;
    let mut problems: Vec<String> = checked.checked.problems.iter().map(|problem| problem.message.clone()).collect();
    let (_, sidecar_problem) = integrity::check_sidecar(&archive_path, &checked.digests.archive_sha256);
    problems.extend(sidecar_problem.map(|problem| problem.message));
    // An index it carries must be the one its files give.
    if problems.is_empty() {
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
