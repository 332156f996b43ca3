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
    model::manifest::SBOM_NAME,
    model::paths::human_bytes,
    parallel,
    tools::signing,
    ui,
    wheelhouse::{
        integrity::{self, Checked, Depth},
        layout::{self, read_manifest_with_bytes},
    },
};

use crate::{flags::Serve, settings::Project};

pub fn run(sh: &Shell, project: &Project, args: &Serve) -> Result<()> {
    let verifier = project.verifier(&args.signature)?;
    // An archive is served from its extraction, which lives as long as the server. One left by a
    // server that was killed (a restarted container keeps its emptyDir) is removed first.
    if args.archive.is_some() {
        remove_stale_extractions(&std::env::temp_dir());
    }
    let extraction = tempfile::Builder::new().prefix(EXTRACTION_PREFIX).tempdir()?;
    fs_err::write(extraction.path().join(EXTRACTION_MARKER), format!("{}\n", std::process::id()))?;
    // What is served comes from what was verified: the manifest's bytes and the signatures are
    // kept from the check, never read again.
    let (directory, shown, manifest, manifest_bytes, signatures) = match &args.archive {
        Some(archive_path) => {
            let archive_path = project.flag_path(archive_path);
            let mut verified = (Vec::new(), std::collections::BTreeMap::new());
            let mut check_signature = |manifest: &[u8], reserved: &integrity::ReservedFiles| {
                signing::verify_if_asked(sh, verifier.as_ref(), manifest, reserved)?;
                verified = (manifest.to_vec(), reserved.clone());
                Ok(())
            };
            let checked = integrity::check_archive(&archive_path, Some(extraction.path()), &mut check_signature)
                .with_context(|| format!("cannot serve {}: it does not verify", archive_path.display()))?;
            if let Some(delta) = &checked.delta {
                bail!(
                    "{} is a delta over the wheelhouse whose manifest has sha256 {}: it cannot be served alone\nhint: unpack-wheelhouse it over that wheelhouse, then serve the wheelhouse",
                    archive_path.display(),
                    delta.base_manifest_sha256
                );
            }
            refuse_problems(&archive_path.display().to_string(), &checked.checked)?;
            let (manifest_bytes, reserved) = verified;
            let signatures = reserved.into_iter().filter(|(name, _)| name != SBOM_NAME).collect();
            let shown = archive_path.display().to_string();
            (extraction.path().to_path_buf(), shown, checked.manifest, manifest_bytes, signatures)
        }
        None => {
            let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
            let (manifest, manifest_bytes) = read_manifest_with_bytes(&wheelhouse)?;
            let signatures = layout::read_signatures(&wheelhouse)?;
            signing::verify_if_asked(sh, verifier.as_ref(), &manifest_bytes, &signatures)
                .with_context(|| format!("cannot serve {}", wheelhouse.display()))?;
            let checked =
                integrity::check_directory(&wheelhouse, &manifest, Depth::Contents, parallel::default_jobs())?;
            refuse_problems(&wheelhouse.display().to_string(), &checked)?;
            let shown = wheelhouse.display().to_string();
            (wheelhouse, shown, manifest, manifest_bytes, signatures)
        }
    };
    let memory = args.memory.saturating_mul(1 << 20);
    let catalog = catalog::load(&directory, &manifest, &manifest_bytes, &signatures, memory)?;
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

const EXTRACTION_PREFIX: &str = "wheelgap-serve-";
/// In an extraction: the pid of the server that made it.
const EXTRACTION_MARKER: &str = ".wheelgap-serve-pid";

/// Removes the extractions under `directory` that this tool made (its prefix and marker) for a
/// server that is gone: its pid is not running, or is this process's own (a container restarted
/// with the same pid, before this run made its own).
fn remove_stale_extractions(directory: &std::path::Path) {
    let Ok(entries) = fs_err::read_dir(directory) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with(EXTRACTION_PREFIX)
            || !entry.file_type().is_ok_and(|kind| kind.is_dir())
        {
            continue;
        }
        let Some(pid) =
            fs_err::read_to_string(path.join(EXTRACTION_MARKER)).ok().and_then(|text| text.trim().parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 sends nothing; it asks whether the pid exists.
        let running = pid > 0
            && (unsafe { libc::kill(pid, 0) } == 0
                || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM));
        let gone = !running || pid == std::process::id() as i32;
        if gone && fs_err::remove_dir_all(&path).is_ok() {
            ui::say(&format!("removed {}, the extraction of a server that is gone", path.display()));
        }
    }
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
