//! `index`: a static simple repository of the wheelhouse (PEP 503 and PEP 691 pages, PEP 658
//! metadata files), for any static web server inside the air gap: inside the wheelhouse itself by
//! default (pack carries it), or with `--output` a tree of its own with the files copied. Every
//! byte of the wheelhouse is checked against its manifest first; the same wheelhouse gives the
//! same pages.

use anyhow::{bail, Result};
use xtask::{
    model::simple_index::Layout,
    parallel, ui,
    wheelhouse::{
        integrity::{self, Depth},
        layout::read_manifest_with_bytes,
        simple_index::{
            index_in_wheelhouse, remove_partials, render, stale_in_wheelhouse, stale_paths, write,
            write_into_wheelhouse,
        },
        swap,
    },
};

use crate::{flags::Index, settings::Project};

pub fn run(project: &Project, args: &Index) -> Result<()> {
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    // The wheels are linked from the live wheelhouse: no create or unpack may swap it meanwhile.
    let _lock = swap::lock(&wheelhouse)?;
    // What a killed run left is ours to remove, and would otherwise count as unlisted.
    remove_partials(&wheelhouse)?;
    let (manifest, manifest_bytes) = read_manifest_with_bytes(&wheelhouse)?;
    let checked = integrity::check_directory(&wheelhouse, &manifest, Depth::Contents, parallel::default_jobs())?;
    // A stale index inside the wheelhouse is what this command is here to rewrite.
    let problems: Vec<String> = checked
        .problems
        .iter()
        .filter(|problem| problem.kind != "index")
        .map(|problem| problem.message.clone())
        .collect();
    if !problems.is_empty() {
        bail!(
            "the wheelhouse does not match its manifest, so no index is made of it:\n{}\nhint: cargo xtask verify-wheelhouse; cargo xtask create-wheelhouse repairs it",
            problems.join("\n")
        );
    }
    let (output, layout) = match &args.output {
        Some(path) => (project.flag_path(path), Layout::Tree),
        None => (wheelhouse.clone(), Layout::Wheelhouse),
    };
    let rendered = render(&wheelhouse, &manifest, &manifest_bytes, layout)?;
    let stale = match layout {
        Layout::Tree => stale_paths(&output, &rendered, &manifest),
        Layout::Wheelhouse => {
            let stale = stale_in_wheelhouse(&wheelhouse, &rendered)?;
            let (files, _) = index_in_wheelhouse(&wheelhouse)?;
            if files.is_empty() {
                rendered.texts.keys().cloned().collect()
            } else {
                stale
            }
        }
    };
    let state = if stale.is_empty() {
        ui::say(&format!("{}: up to date", output.display()));
        "up-to-date"
    } else if args.check {
        let shown: Vec<String> = stale.iter().take(20).map(|path| format!("  {path}")).collect();
        bail!(
            "the index in {} is stale: {} of its files differ from the wheelhouse's index:\n{}\nhint: cargo xtask index",
            output.display(),
            stale.len(),
            shown.join("\n")
        );
    } else {
        match layout {
            Layout::Tree => write(&wheelhouse, &output, &rendered, &manifest)?,
            Layout::Wheelhouse => write_into_wheelhouse(&wheelhouse, &rendered)?,
        }
        let served = match layout {
            Layout::Tree => format!("serve {} with any static web server", output.display()),
            Layout::Wheelhouse => format!("serve {} with any static web server, or pack it", wheelhouse.display()),
        };
        ui::say(&format!(
            "wrote the index of {}: {} projects, {} files; {served} (simple/ is the index URL)",
            wheelhouse.display(),
            rendered.n_projects,
            manifest.files.len()
        ));
        "written"
    };
    if args.json {
        let report = serde_json::json!({
            "path": output.display().to_string(),
            "projects": rendered.n_projects,
            "files": manifest.files.len(),
            "state": state,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
