//! `index`: a static simple repository of the wheelhouse (PEP 503 and PEP 691 pages, PEP 658
//! metadata files, the wheels hard-linked), for any static web server inside the air gap. Every
//! byte of the wheelhouse is checked against its manifest first; the same wheelhouse gives the
//! same pages.

use anyhow::{bail, Result};
use xtask::{
    parallel, ui,
    wheelhouse::{
        integrity::{self, Depth},
        layout::read_manifest_with_bytes,
        simple_index::{default_output, render, stale_paths, write},
        swap,
    },
};

use crate::{flags::Index, settings::Project};

pub fn run(project: &Project, args: &Index) -> Result<()> {
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    // The wheels are linked from the live wheelhouse: no create or unpack may swap it meanwhile.
    let _lock = swap::lock(&wheelhouse)?;
    let (manifest, manifest_bytes) = read_manifest_with_bytes(&wheelhouse)?;
    let checked = integrity::check_directory(&wheelhouse, &manifest, Depth::Contents, parallel::default_jobs())?;
    if !checked.problems.is_empty() {
        let problems: Vec<String> = checked.problems.iter().map(|problem| problem.message.clone()).collect();
        bail!(
            "the wheelhouse does not match its manifest, so no index is made of it:\n{}\nhint: cargo xtask verify-wheelhouse; cargo xtask create-wheelhouse repairs it",
            problems.join("\n")
        );
    }
    let output = match &args.output {
        Some(path) => project.flag_path(path),
        None => default_output(&wheelhouse),
    };
    let rendered = render(&wheelhouse, &manifest, &manifest_bytes)?;
    let stale = stale_paths(&output, &rendered, &manifest);
    let state = if stale.is_empty() {
        ui::say(&format!("{}: up to date", output.display()));
        "up-to-date"
    } else if args.check {
        let shown: Vec<String> = stale.iter().take(20).map(|path| format!("  {path}")).collect();
        bail!(
            "{} is stale: {} of its files differ from the wheelhouse's index:\n{}\nhint: cargo xtask index",
            output.display(),
            stale.len(),
            shown.join("\n")
        );
    } else {
        write(&wheelhouse, &output, &rendered, &manifest)?;
        ui::say(&format!(
            "wrote {}: {} projects, {} files; serve it with any static web server (simple/ is the index URL)",
            output.display(),
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
