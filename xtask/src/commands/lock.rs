//! `lock`: a hash-locked requirements file beside each requirements file, from the wheelhouse:
//! every package any target resolved, pinned, with a hash of each of its files there and a
//! marker that selects exactly the targets that need it.

use anyhow::{bail, Context, Result};
use xtask::{
    model::{paths::display_path, staleness::Stale},
    ui,
    wheelhouse::layout::{lock_path, read_manifest},
};

use crate::{
    commands::{lock_text, stale_reasons, write_or_check, FileState, Inputs, Mode},
    flags::Lock,
    settings::Project,
};

pub fn run(project: &Project, args: &Lock) -> Result<()> {
    let root = project.root.as_path();
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    let manifest = read_manifest(&wheelhouse)?;
    let groups: Vec<String> = if args.requirements.is_empty() {
        manifest.requirements.iter().map(|record| record.path.clone()).collect()
    } else {
        args.requirements.iter().map(|path| display_path(root, &project.flag_path(path))).collect()
    };
    for reason in stale_reasons(project, &manifest, Inputs::Requirements(&groups))? {
        match reason {
            Stale::NotInWheelhouse { path } => {
                bail!("the wheelhouse was not made for {path}\nhint: cargo xtask create-wheelhouse -r {path}")
            }
            Stale::Changed { .. } => {
                bail!("{reason}\nhint: cargo xtask create-wheelhouse, then cargo xtask lock")
            }
            // A lock of a file that is gone is still the lock of what the wheelhouse holds.
            Stale::Gone { .. } | Stale::Targets { .. } => {}
        }
    }
    let mode = Mode::check_if(args.check);
    let mut stale = Vec::new();
    let mut report = Vec::new();
    for group in &groups {
        let record = manifest.requirements.iter().find(|record| &record.path == group).with_context(|| {
            format!("the wheelhouse was not made for {group}\nhint: cargo xtask create-wheelhouse -r {group}")
        })?;
        let text = lock_text(&wheelhouse, &manifest, &record.path, args.algorithm)?;
        let path = lock_path(&root.join(&record.path));
        let shown = display_path(root, &path);
        let state = match write_or_check(&path, &shown, &text, mode)? {
            FileState::UpToDate => {
                ui::say(&format!("{shown}: up to date"));
                "up-to-date"
            }
            FileState::Written => {
                ui::say(&format!("wrote {shown}"));
                "written"
            }
            FileState::Stale { missing, diff } => {
                let state = if missing { "missing" } else { "stale" };
                stale.push(format!("{shown} is {state}:\n{diff}"));
                state
            }
        };
        report.push(serde_json::json!({ "requirements": group, "lock": shown, "state": state }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "locks": report }))?);
    }
    if !stale.is_empty() {
        bail!("{}\nhint: cargo xtask lock", stale.join("\n"));
    }
    Ok(())
}
