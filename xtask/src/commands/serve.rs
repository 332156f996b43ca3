//! `serve`: the wheelhouse as a read-only PEP 503/691 index over HTTP, with PEP 658 metadata. It
//! starts only when every byte matches the manifest (and the signature, when one is required);
//! it answers only with the index and the files the manifest lists, and writes nothing to the
//! wheelhouse. An archive is verified and extracted into a private temporary directory first.

mod catalog;
mod http;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use xshell::Shell;
use xtask::{
    parallel,
    tools::signing,
    ui::{self, human_bytes},
    wheelhouse::{
        integrity::{self, Checked, Depth},
        layout::{self, read_manifest_with_bytes},
    },
};

use crate::{flags::Serve, settings::Project};

pub fn run(sh: &Shell, project: &Project, args: &Serve) -> Result<()> {
    let verifier = project.verifier(&args.signature)?;
    // An archive is served from its extraction, which lives as long as the server.
    let extraction = tempfile::Builder::new().prefix("wheelgap-serve-").tempdir()?;
    let (directory, shown) = match &args.archive {
        Some(archive_path) => {
            let archive_path = project.flag_path(archive_path);
            let mut check_signature = |manifest: &[u8], reserved: &integrity::ReservedFiles| {
                signing::verify_if_asked(sh, verifier.as_ref(), manifest, reserved)
            };
            let checked = integrity::check_archive(&archive_path, Some(extraction.path()), &mut check_signature)
                .with_context(|| format!("cannot serve {}: it does not verify", archive_path.display()))?;
            refuse_problems(&archive_path.display().to_string(), &checked.checked)?;
            (extraction.path().to_path_buf(), archive_path.display().to_string())
        }
        None => {
            let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
            let (manifest, manifest_bytes) = read_manifest_with_bytes(&wheelhouse)?;
            signing::verify_if_asked(sh, verifier.as_ref(), &manifest_bytes, &layout::read_signatures(&wheelhouse)?)
                .with_context(|| format!("cannot serve {}", wheelhouse.display()))?;
            let checked =
                integrity::check_directory(&wheelhouse, &manifest, Depth::Contents, parallel::default_jobs())?;
            refuse_problems(&wheelhouse.display().to_string(), &checked)?;
            (wheelhouse, String::new())
        }
    };
    let (manifest, manifest_bytes) = read_manifest_with_bytes(&directory)?;
    let memory = args.memory.saturating_mul(1 << 20);
    let catalog = catalog::load(&directory, &manifest, &manifest_bytes, memory)?;
    let shown = if shown.is_empty() { directory.display().to_string() } else { shown };
    ui::say(&format!(
        "{shown}: {} files ({}) verified, {} held in memory; serving on {} until SIGTERM or SIGINT",
        catalog.files.len(),
        human_bytes(catalog.n_bytes),
        catalog.n_in_memory,
        args.bind
    ));
    http::serve(
        catalog,
        http::Options {
            bind: args.bind,
            max_connections: args.max_connections,
            header_timeout: Duration::from_secs(args.header_timeout.max(1)),
            connection_timeout: Duration::from_secs(args.connection_timeout.max(1)),
            grace: Duration::from_secs(args.grace),
            access_log: !args.no_access_log,
            threads: args.threads.unwrap_or_else(parallel::default_jobs),
        },
    )
}

fn refuse_problems(source: &str, checked: &Checked) -> Result<()> {
    if checked.problems.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = checked.problems.iter().take(20).map(|problem| format!("  {}", problem.message)).collect();
    bail!(
        "{source} does not match its manifest, so it is not served ({} problems):\n{}\nhint: cargo xtask verify-wheelhouse names them all",
        checked.problems.len(),
        shown.join("\n")
    )
}
