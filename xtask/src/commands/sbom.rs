//! `sbom`: a CycloneDX 1.6 JSON document of the wheelhouse: one component per package version,
//! with its licence (from the wheel's METADATA), its files and their sha256, the targets that use
//! it, and the dependency edges pip resolved. The same wheelhouse gives the same bytes.

use anyhow::Result;
use xtask::{
    model::{
        manifest::SBOM_NAME,
        sbom::{manifest_components, render},
    },
    ui,
    wheelhouse::{archive::source_date_epoch_option, files::wheel_metadata, layout::read_manifest_with_bytes, swap},
};

use crate::{
    commands::{write_or_check, FileState, Mode},
    flags::Sbom,
    settings::Project,
};

pub fn run(project: &Project, args: &Sbom) -> Result<()> {
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    // The SBOM may join the live wheelhouse: no create or unpack may swap it meanwhile.
    let _lock = swap::lock(&wheelhouse)?;
    let (manifest, manifest_bytes) = read_manifest_with_bytes(&wheelhouse)?;
    let metadata = |filename: &str| wheel_metadata(&wheelhouse.join(filename));
    let text = render(&manifest, &manifest_bytes, source_date_epoch_option()?, &metadata)?;
    let output = match &args.output {
        Some(path) => project.flag_path(path),
        None => wheelhouse.join(SBOM_NAME),
    };
    let written = write_or_check(&output, &output.display().to_string(), &text, Mode::Write)? == FileState::Written;
    let components = manifest_components(&manifest).len();
    ui::say(&format!("wrote {} ({components} components)", output.display()));
    if args.json {
        let report =
            serde_json::json!({ "path": output.display().to_string(), "components": components, "changed": written });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
