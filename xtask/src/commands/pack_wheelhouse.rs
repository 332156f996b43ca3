//! `pack-wheelhouse`: the wheelhouse as one reproducible `wheelhouse.tgz`, checked against its
//! manifest on the way in, written beside a `sha256sum -c` sidecar.

use std::{io::BufWriter, path::Path, time::Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xtask::{
    model::{
        delta::{split, DeltaRecord, DELTA_FORMAT_VERSION, DELTA_NAME},
        digest::sidecar_line,
        manifest::{Manifest, MANIFEST_NAME, RESERVED_NAMES, SHA256SUMS_NAME},
        metrics::Sample,
        paths::human_bytes,
        simple_index::{is_index_file, INDEX_DIR},
    },
    parallel, ui,
    wheelhouse::{
        archive::{self, Digests, Hashing},
        delta::{read_source, BaseIndex, ManifestSource},
        integrity::{self, Depth},
        layout::{is_inside, read_manifest, sidecar_path},
        partial,
        simple_index::{index_in_wheelhouse, stale_index},
        swap,
    },
};

use crate::{
    commands::{wheelhouse_samples, write_metrics},
    flags::PackWheelhouse,
    settings::Project,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<DeltaRecord>,
    seconds: f64,
}

pub fn run(project: &Project, args: &PackWheelhouse) -> Result<()> {
    let started = Instant::now();
    let level = args.level.unwrap_or(archive::DEFAULT_LEVEL);
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    let manifest = read_manifest(&wheelhouse)?;
    let base = match &args.since {
        Some(path) => {
            let path = project.flag_path(path);
            Some(read_source(&path).with_context(|| format!("cannot read the base {}", path.display()))?)
        }
        None => None,
    };
    let output = match (&args.output, &base) {
        (None, Some(_)) => {
            let full = project.archive(None, &wheelhouse);
            full.with_file_name(format!("{}.delta.tgz", wheelhouse_stem(&full)))
        }
        (output, _) => project.archive(output.as_deref(), &wheelhouse),
    };
    let over_base = |base: &ManifestSource| {
        let sidecar = sidecar_path(&output);
        [&output, &sidecar].iter().any(|path| **path == base.path || is_inside(path, &base.path))
    };
    if let Some(base) = base.as_ref().filter(|base| over_base(base)) {
        bail!(
            "{} (or its sidecar) is, or is inside, the base {} the delta is made against: it would be overwritten; nothing was changed",
            output.display(),
            base.path.display()
        );
    }
    if is_inside(&output, &wheelhouse) {
        bail!(
            "{} is inside the wheelhouse {}: the archive would overwrite or join what it packs; nothing was changed\nhint: write it beside the wheelhouse (the default) or anywhere outside it",
            output.display(),
            wheelhouse.display()
        );
    }
    // A create or unpack swapping the wheelhouse out under the pack would fail it halfway with
    // "No such file"; holding the wheelhouse's run lock names the other run instead.
    let _wheelhouse_lock = swap::lock(&wheelhouse)?;
    let mut names = entry_order(&wheelhouse, &manifest)?;
    // A delta leaves out the files the base holds byte for byte, and the index files a base
    // directory holds with the same bytes; its record goes third, after SHA256SUMS.
    let base_index = base.as_ref().map(BaseIndex::of).transpose()?;
    let delta = base.as_ref().zip(base_index.as_ref()).map(|(base, base_index)| {
        let (_, kept) = split(&base.manifest, &manifest);
        let kept_names: std::collections::BTreeSet<&str> = kept.iter().map(|entry| entry.filename.as_str()).collect();
        let has_index = names.iter().any(|name| name.starts_with(&format!("{INDEX_DIR}/")));
        names.retain(|name| {
            let in_base =
                kept_names.contains(name.as_str()) || (is_index_file(name) && base_index.holds_same(&wheelhouse, name));
            !in_base
        });
        DeltaRecord {
            format_version: DELTA_FORMAT_VERSION,
            base_manifest_sha256: base.sha256.clone(),
            kept_files: kept.len(),
            kept_bytes: kept.iter().fold(0u64, |total, entry| total.saturating_add(entry.size)),
            index: has_index,
        }
    });
    let mtime = archive::source_date_epoch()?;

    let _lock = swap::lock(&output)?;
    let directory = output.parent().unwrap_or(Path::new("."));
    let output_name = file_name(&output)?;
    let sidecar = sidecar_path(&output);
    let sidecar_name = file_name(&sidecar)?;
    partial::remove_partial_files(directory, &[&output_name, &sidecar_name])?;
    let partial = partial::partial_file(directory, &output_name)?;
    let mut writer = archive::Writer::new(BufWriter::with_capacity(1 << 20, partial), level, mtime);
    let mut n_bytes = 0;
    let total = manifest
        .files
        .iter()
        .filter(|entry| names.contains(&entry.filename))
        .fold(0u64, |total, entry| total.saturating_add(entry.size));
    let progress = ui::Bytes::start("pack", total);
    for name in &names {
        let path = wheelhouse.join(name);
        let file = fs_err::File::open(&path)?;
        let size = file.metadata()?.len();
        progress.advance(size, name);
        let expected = manifest.file(name);
        if let Some(entry) = expected {
            if entry.size != size {
                bail!(
                    "{} is {size} bytes, the manifest says {}\nhint: cargo xtask create-wheelhouse repairs it",
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
                    "{}: sha256 {actual}, the manifest says {}\nhint: the file changed after create-wheelhouse; `cargo xtask create-wheelhouse --full-check` repairs it (a plain re-run compares sizes only)",
                    path.display(),
                    entry.sha256
                );
            }
        }
        n_bytes += size;
        if let (SHA256SUMS_NAME, Some(record)) = (name.as_str(), &delta) {
            let text = record.to_json();
            writer
                .append(
                    &format!("{}/{DELTA_NAME}", archive::ROOT),
                    archive::FILE_MODE,
                    text.len() as u64,
                    &mut text.as_bytes(),
                )
                .context("cannot write the delta record")?;
        }
    }
    let (buffered, digests) = writer.finish().context("cannot finish the archive")?;
    let partial = buffered.into_inner().map_err(|error| error.into_error())?;
    // The old sidecar goes first, then the archive is renamed into place, then the new sidecar
    // is written: a kill at any moment leaves an archive whose sidecar matches it or is missing
    // (a warning), never one that vouches for the previous archive, and never a half-written one.
    match std::fs::remove_file(&sidecar) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(anyhow::Error::new(error).context(format!("cannot replace {}", sidecar.display())));
        }
        _ => {}
    }
    partial::persist(partial, &output)?;
    partial::write_file(&sidecar, sidecar_line(&digests.archive_sha256, &output_name).as_bytes())?;

    let outcome = Outcome {
        archive: output.display().to_string(),
        sidecar: sidecar.display().to_string(),
        n_files: names.len(),
        n_bytes,
        level,
        mtime,
        digests,
        delta,
        seconds: started.elapsed().as_secs_f64(),
    };
    if let (Some(record), Some(base)) = (&outcome.delta, &base) {
        ui::say(&format!(
            "a delta against {} {} (manifest sha256 {}): {} files ({}) kept from it are left out",
            base.kind.name(),
            base.path.display(),
            record.base_manifest_sha256,
            record.kept_files,
            human_bytes(record.kept_bytes)
        ));
    }
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
    let mut samples = wheelhouse_samples(&project.root, &wheelhouse, &manifest);
    samples.push(Sample::new("xtask_run_duration_seconds", "Seconds the command took.", outcome.seconds));
    samples.push(Sample::new(
        "xtask_archive_bytes",
        "Bytes of the archive written.",
        outcome.digests.archive_bytes as f64,
    ));
    write_metrics(project, args.metrics_file.as_deref(), "pack-wheelhouse", &samples)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    Ok(())
}

/// `manifest.json` and `SHA256SUMS` first (a reader learns what to expect before it reads it),
/// then every other file by name. Refuses a wheelhouse that does not match its manifest.
fn entry_order(wheelhouse: &Path, manifest: &Manifest) -> Result<Vec<String>> {
    let checked = integrity::check_directory(wheelhouse, manifest, Depth::Sizes, parallel::default_jobs())?;
    if !checked.problems.is_empty() {
        let problems: Vec<&str> = checked.problems.iter().map(|problem| problem.message.as_str()).collect();
        bail!(
            "{} does not match its manifest:\n  {}\nhint: move files the manifest does not list out of the wheelhouse; then `cargo xtask create-wheelhouse --full-check` repairs the rest",
            wheelhouse.display(),
            problems.join("\n  ")
        );
    }
    // The index `index` wrote into the wheelhouse goes last, and only as these files give it.
    let (index_files, _) = index_in_wheelhouse(wheelhouse)?;
    if !index_files.is_empty() {
        let stale = stale_index(wheelhouse, manifest)?;
        if !stale.is_empty() {
            bail!(
                "the index in {} is stale ({}): it is not packed as it is\nhint: cargo xtask index",
                wheelhouse.display(),
                stale.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut present: Vec<String> = Vec::new();
    for entry in fs_err::read_dir(wheelhouse)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != MANIFEST_NAME && name != SHA256SUMS_NAME && name != INDEX_DIR && !index_files.contains(&name) {
            present.push(name);
        }
    }
    // Reserved files (signatures, SBOM) next, so that a reader can check a signature before it
    // reads a single distribution; then the distributions; then the index.
    present.sort_by_key(|name| (!RESERVED_NAMES.contains(&name.as_str()), name.clone()));
    let mut order = vec![MANIFEST_NAME.to_owned(), SHA256SUMS_NAME.to_owned()];
    order.extend(present);
    order.extend(index_files);
    Ok(order)
}

/// `wheelhouse` of `wheelhouse.tgz`: the name a delta's default file name starts with.
fn wheelhouse_stem(archive: &Path) -> String {
    let name = archive.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    name.strip_suffix(".tgz").or_else(|| name.strip_suffix(".tar.gz")).unwrap_or(&name).to_owned()
}

fn file_name(path: &Path) -> Result<String> {
    Ok(path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?
        .to_string_lossy()
        .into_owned())
}
