//! `diff OLD [NEW]`: what changed between two wheelhouses, each given as a manifest, a directory
//! or an archive; the exit status says whether anything did, as `diff`'s does.

use anyhow::{Context, Result};
use xtask::{
    model::wheelhouse_diff::{compare, render_markdown, render_text, Side},
    wheelhouse::delta::{read_source, ManifestSource},
};

use crate::{
    commands::Finished,
    flags::diff::{Diff, DiffFormat},
    settings::Project,
};

pub fn run(project: &Project, args: &Diff) -> Result<()> {
    let old_path = project.flag_path(&args.old);
    let new_path = match &args.new {
        Some(path) => project.flag_path(path),
        None => project.wheelhouse(None),
    };
    let old = read_source(&old_path).with_context(|| format!("cannot read the old side {}", old_path.display()))?;
    let new = read_source(&new_path).with_context(|| format!("cannot read the new side {}", new_path.display()))?;
    let diff = compare(side(project, &old), &old.manifest, side(project, &new), &new.manifest);
    let format = if args.json { DiffFormat::Json } else { args.format };
    match format {
        DiffFormat::Text => print!("{}", render_text(&diff)),
        DiffFormat::Markdown => print!("{}", render_markdown(&diff)),
        DiffFormat::Json => println!("{}", serde_json::to_string_pretty(&diff)?),
    }
    if diff.is_empty() {
        Ok(())
    } else {
        Err(Finished(1).into())
    }
}

fn side(project: &Project, source: &ManifestSource) -> Side {
    let shown = xtask::model::paths::display_path(&project.root, &source.path);
    Side {
        source: format!("{} {shown}", source.kind.name()),
        manifest_sha256: source.sha256.clone(),
        n_files: source.manifest.files.len(),
        bytes: source.manifest.files.iter().fold(0u64, |total, entry| total.saturating_add(entry.size)),
    }
}
