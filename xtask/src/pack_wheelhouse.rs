//! `pack-wheelhouse`: the wheelhouse as one reproducible `wheelhouse.tgz`, checked against its
//! manifest on the way in, written beside a `sha256sum -c` sidecar.

use std::{io::BufWriter, path::Path, time::Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{
    archive::{self, Digests, Hashing},
    create_wheelhouse::human_bytes,
    digest::sha256_hex,
    flags::PackWheelhouse,
    integrity::sidecar_path,
    manifest::{Manifest, MANIFEST_NAME, RESERVED_NAMES, SHA256SUMS_NAME},
    metrics, partial,
    settings::{self, Settings},
    swap, ui,
};

#[derive(Debug, Serialize)]
struct Outcome {
    archive: String,
    sidecar: String,
    n_files: usize,
    n_bytes: u64,
    level: u32,
    mtime: u64,
    #[serde(flatten)]
    digests: Digests,
    seconds: f64,
}

pub fn run(root: &Path, args: &PackWheelhouse) -> Result<()> {
    let started = Instant::now();
    let settings = Settings::load(root)?;
    let wheelhouse = settings::wheelhouse_dir(root, &settings, args.wheelhouse.as_deref())?;
    let manifest = read_manifest(&wheelhouse)?;
    let output = match &args.output {
        Some(path) => std::env::current_dir()?.join(path),
        None => wheelhouse.parent().unwrap_or(root).join("wheelhouse.tgz"),
    };
    let names = entry_order(&wheelhouse, &manifest)?;
    let mtime = archive::source_date_epoch()?;

    let _lock = swap::lock(&output)?;
    let directory = output.parent().unwrap_or(Path::new("."));
    let output_name = file_name(&output)?;
    let sidecar = sidecar_path(&output);
    let sidecar_name = file_name(&sidecar)?;
    partial::remove_partial_files(directory, &[&output_name, &sidecar_name])?;
    let partial = partial::partial_file(directory, &output_name)?;
    let mut writer = archive::Writer::new(BufWriter::with_capacity(1 << 20, partial), args.level, mtime);
    let mut n_bytes = 0;
    for name in &names {
        let path = wheelhouse.join(name);
        let file = fs_err::File::open(&path)?;
        let size = file.metadata()?.len();
        let expected = manifest.file(name);
        if let Some(entry) = expected {
            if entry.size != size {
                bail!(
                    "{} is {size} bytes, the manifest says {}\nhint: run create-wheelhouse to repair the wheelhouse",
                    path.display(),
                    entry.size
                );
            }
        }
        let mut hashing = Hashing::new(file);
        writer
            .append(&format!("{}/{name}", archive::ROOT), archive::FILE_MODE, size, &mut hashing)
            .with_context(|| format!("cannot pack {}", path.display()))?;
        let (_, actual, _) = hashing.finish();
        if let Some(entry) = expected {
            if entry.sha256 != actual {
                bail!(
                    "{}: sha256 {actual}, the manifest says {}\nhint: the file changed after create-wheelhouse; run it again to repair",
                    path.display(),
                    entry.sha256
                );
            }
        }
        n_bytes += size;
    }
    let (buffered, digests) = writer.finish().context("cannot finish the archive")?;
    let partial = buffered.into_inner().map_err(|error| error.into_error())?;
    // The archive first, then its sidecar: a kill in between leaves a sidecar that no longer
    // matches, which verify-wheelhouse reports, never a half-written archive.
    partial::persist(partial, &output)?;
    partial::write_atomically(
        directory,
        &sidecar_name,
        archive::sidecar_line(&digests.archive_sha256, &output_name).as_bytes(),
    )?;

    let outcome = Outcome {
        archive: output.display().to_string(),
        sidecar: sidecar.display().to_string(),
        n_files: names.len(),
        n_bytes,
        level: args.level,
        mtime,
        digests,
        seconds: started.elapsed().as_secs_f64(),
    };
    ui::say(&format!(
        "packed {} files ({}) into {} ({}) in {}\n  sha256 {}\n  tar stream sha256 {} (the same for any gzip level or implementation)",
        outcome.n_files,
        human_bytes(outcome.n_bytes),
        output.display(),
        human_bytes(outcome.digests.archive_bytes),
        ui::seconds(started.elapsed()),
        outcome.digests.archive_sha256,
        outcome.digests.tar_sha256
    ));
    let mut samples = metrics::wheelhouse_samples(root, &wheelhouse, &manifest);
    samples.push(metrics::Sample::new("xtask_run_duration_seconds", "Seconds the command took.", outcome.seconds));
    samples.push(metrics::Sample::new(
        "xtask_archive_bytes",
        "Bytes of the archive written.",
        outcome.digests.archive_bytes as f64,
    ));
    metrics::write(args.metrics_file.as_deref(), "pack-wheelhouse", &samples)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    Ok(())
}

pub fn read_manifest(wheelhouse: &Path) -> Result<Manifest> {
    let path = wheelhouse.join(MANIFEST_NAME);
    let text = fs_err::read_to_string(&path).map_err(|error| {
        anyhow::anyhow!("cannot read the manifest: {error}\nhint: run `cargo xtask create-wheelhouse` first")
    })?;
    Manifest::from_json(&text).with_context(|| format!("{} is not a valid manifest", path.display()))
}

/// `manifest.json` and `SHA256SUMS` first (a reader learns what to expect before it reads it),
/// then every other file by name. Refuses a wheelhouse that does not match its manifest.
fn entry_order(wheelhouse: &Path, manifest: &Manifest) -> Result<Vec<String>> {
    let sums = fs_err::read_to_string(wheelhouse.join(SHA256SUMS_NAME))?;
    let manifest_sha256 = sha256_hex(&fs_err::read(wheelhouse.join(MANIFEST_NAME))?);
    if sums != manifest.sha256sums(&manifest_sha256) {
        bail!(
            "{SHA256SUMS_NAME} does not match {MANIFEST_NAME} in {}\nhint: run create-wheelhouse to rewrite both",
            wheelhouse.display()
        );
    }
    let mut present: Vec<String> = Vec::new();
    for entry in fs_err::read_dir(wheelhouse)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_file() {
            bail!("{} is not a regular file: a wheelhouse holds files only", entry.path().display());
        }
        present.push(name);
    }
    let unlisted: Vec<&String> = present
        .iter()
        .filter(|name| manifest.file(name).is_none() && !RESERVED_NAMES.contains(&name.as_str()))
        .collect();
    if !unlisted.is_empty() {
        bail!(
            "{} holds files its manifest does not list: {}\nhint: remove them, or run create-wheelhouse, which drops them",
            wheelhouse.display(),
            unlisted.iter().map(|name| name.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let missing: Vec<&str> = manifest
        .files
        .iter()
        .filter(|entry| !present.contains(&entry.filename))
        .map(|entry| entry.filename.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks files its manifest lists: {}\nhint: run create-wheelhouse to repair it",
            wheelhouse.display(),
            missing.join(", ")
        );
    }
    present.retain(|name| name != MANIFEST_NAME && name != SHA256SUMS_NAME);
    // Reserved files (signatures, SBOM) next, so that a reader can check a signature before it
    // reads a single distribution; then the distributions.
    present.sort_by_key(|name| (!RESERVED_NAMES.contains(&name.as_str()), name.clone()));
    let mut order = vec![MANIFEST_NAME.to_owned(), SHA256SUMS_NAME.to_owned()];
    order.extend(present);
    Ok(order)
}

fn file_name(path: &Path) -> Result<String> {
    Ok(path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?
        .to_string_lossy()
        .into_owned())
}
