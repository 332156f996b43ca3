//! `lock`: a hash-locked requirements file beside each requirements file, from the wheelhouse:
//! every package any target resolved, pinned, with a hash of each of its files there and a
//! marker that selects exactly the targets that need it.

use anyhow::{bail, Context, Result};
use xtask::{
    model::{
        digest::Algorithm,
        paths::display_path,
        pylock_render::{pylock_file_name, render_pylock},
        requirements::InputKind,
        staleness::Stale,
    },
    ui,
    wheelhouse::layout::{lock_path, read_manifest},
};

use crate::{
    commands::{lock_text, stale_reasons, write_or_check, FileState, Inputs, Mode},
    flags::{Lock, LockFormat},
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
    let mut written: Vec<(std::path::PathBuf, String)> = Vec::new();
    for group in &groups {
        let record = manifest.requirements.iter().find(|record| &record.path == group).with_context(|| {
            format!("the wheelhouse was not made for {group}\nhint: cargo xtask create-wheelhouse -r {group}")
        })?;
        let input = root.join(&record.path);
        let (path, text) = match args.format {
            LockFormat::Requirements => {
                (lock_path(&input), lock_text(&wheelhouse, &manifest, &record.path, args.algorithm)?)
            }
            LockFormat::Pylock => {
                if args.algorithm != Algorithm::Sha256 {
                    bail!("a pylock lists sha256 hashes (PEP 751 needs no other)\nhint: drop --algorithm");
                }
                let is_lock =
                    std::fs::read_to_string(&input).is_ok_and(|text| InputKind::of(&input, &text) == InputKind::Pylock);
                if is_lock {
                    ui::say(&format!("{group}: a PEP 751 lock already, nothing to write"));
                    continue;
                }
                let path = input.with_file_name(pylock_file_name(&record.path));
                if let Some((_, other)) = written.iter().find(|(written, _)| *written == path) {
                    bail!(
                        "{group} and {other} would both be locked into {}\nhint: rename one of them",
                        display_path(root, &path)
                    );
                }
                written.push((path.clone(), group.clone()));
                // Never over a file this tool did not write: a hand-written lock of that name, or
                // one that is itself an input.
                if let Ok(existing) = std::fs::read_to_string(&path) {
                    if !existing
                        .lines()
                        .nth(1)
                        .is_some_and(|line| line.contains("lock --format pylock` from the wheelhouse manifest"))
                    {
                        bail!(
                            "{} exists and was not written by `lock --format pylock`: it is not replaced\nhint: move it away, or lock into another name",
                            display_path(root, &path)
                        );
                    }
                }
                let directory = path.parent().unwrap_or(root);
                let relative = relative_path(directory, &wheelhouse)?;
                (path, render_pylock(&manifest, &record.path, &relative, xtask::ui::program())?)
            }
        };
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

/// `to` as seen from `from`, with `/` separators: the wheelhouse from the lock's directory. Both
/// are made absolute first; a wheelhouse on another root has no relative path.
fn relative_path(from: &std::path::Path, to: &std::path::Path) -> Result<String> {
    let absolute = |path: &std::path::Path| -> Result<std::path::PathBuf> {
        Ok(xtask::model::paths::lexical_normalize(&std::path::absolute(path)?))
    };
    let (from, to) = (absolute(from)?, absolute(to)?);
    let common = from.components().zip(to.components()).take_while(|(left, right)| left == right).count();
    if common == 0 {
        bail!("the wheelhouse {} has no path relative to {}", to.display(), from.display());
    }
    let mut parts: Vec<String> = from.components().skip(common).map(|_| "..".to_owned()).collect();
    parts.extend(to.components().skip(common).map(|part| part.as_os_str().to_string_lossy().into_owned()));
    Ok(if parts.is_empty() { ".".to_owned() } else { parts.join("/") })
}
