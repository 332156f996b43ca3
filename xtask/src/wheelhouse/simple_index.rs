//! The static simple index of a wheelhouse on disk (`model::simple_index` renders its pages):
//! written into a staging directory beside the output and swapped in whole; an output directory
//! is replaced only when it holds this tool's marker, or is empty.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{
    model::{
        digest::sha256_hex,
        manifest::{Manifest, MANIFEST_NAME},
        simple_index::{pages, FileMetadata},
    },
    parallel,
    wheelhouse::files::{sha256_file, wheel_metadata_bytes},
};

/// The file that says a directory is an index this tool wrote, and of which manifest.
pub const INDEX_MARKER: &str = ".wheelgap-index";

/// Everything an index holds, by path relative to its root, except the wheels themselves: the
/// pages, each wheel's `.metadata` and the marker.
pub struct Rendered {
    pub texts: BTreeMap<String, Vec<u8>>,
    pub n_projects: usize,
}

/// Renders the index of `wheelhouse`, whose files the caller has checked against `manifest`
/// (parsed from `manifest_bytes`, which the index serves as `manifest.json` at its root).
pub fn render(wheelhouse: &Path, manifest: &Manifest, manifest_bytes: &[u8]) -> Result<Rendered> {
    let wheels: Vec<&str> =
        manifest.files.iter().map(|entry| entry.filename.as_str()).filter(|name| name.ends_with(".whl")).collect();
    let read = parallel::map(&wheels, parallel::default_jobs(), |_, filename| {
        let path = wheelhouse.join(filename);
        wheel_metadata_bytes(&path)?.with_context(|| format!("{filename} has no .dist-info/METADATA"))
    });
    let mut texts = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    for (filename, bytes) in wheels.iter().zip(read) {
        let bytes = bytes?;
        metadata.insert((*filename).to_owned(), FileMetadata::of(&bytes));
        texts.insert(format!("files/{filename}.metadata"), bytes);
    }
    let rendered = pages(manifest, &metadata);
    let n_projects = rendered.keys().filter(|path| path.ends_with("/index.html")).count().saturating_sub(1);
    texts.extend(rendered.into_iter().map(|(path, text)| (path, text.into_bytes())));
    texts.insert(INDEX_MARKER.to_owned(), format!("{}\n", sha256_hex(manifest_bytes)).into_bytes());
    texts.insert(MANIFEST_NAME.to_owned(), manifest_bytes.to_vec());
    Ok(Rendered { texts, n_projects })
}

/// The paths of `rendered` that `output` lacks or holds with other bytes, and the wheels it lacks
/// or holds with bytes other than the manifest's (every byte hashed).
pub fn stale_paths(output: &Path, rendered: &Rendered, manifest: &Manifest) -> Vec<String> {
    let mut stale: Vec<String> = rendered
        .texts
        .iter()
        .filter(|(path, bytes)| std::fs::read(output.join(path)).ok().as_ref() != Some(*bytes))
        .map(|(path, _)| path.clone())
        .collect();
    let served = parallel::map(&manifest.files, parallel::default_jobs(), |_, entry| {
        let path = output.join("files").join(&entry.filename);
        let same = std::fs::metadata(&path).is_ok_and(|metadata| metadata.len() == entry.size)
            && sha256_file(&path).is_ok_and(|sha256| sha256 == entry.sha256);
        Ok(same)
    });
    for (entry, same) in manifest.files.iter().zip(served) {
        if !same.unwrap_or(false) {
            stale.push(format!("files/{}", entry.filename));
        }
    }
    stale
}

/// Writes the index into `output`: a staging directory beside it, every wheel copied from the
/// wheelhouse, then swapped in whole. Refuses an `output` this tool did not write.
pub fn write(wheelhouse: &Path, output: &Path, rendered: &Rendered, manifest: &Manifest) -> Result<()> {
    check_replaceable(output)?;
    let parent = output.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    let name = output.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = parent.join(format!(".{name}.staging-{}", std::process::id()));
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    let result = (|| -> Result<()> {
        fs_err::create_dir_all(staging.join("files"))?;
        for entry in &manifest.files {
            // Copied, not hard-linked: a wheel changed in place in the wheelhouse must not change
            // what the index serves (the copy is a reflink where the file system has them).
            fs_err::copy(wheelhouse.join(&entry.filename), staging.join("files").join(&entry.filename))?;
        }
        for (path, bytes) in &rendered.texts {
            let destination = staging.join(path);
            if let Some(directory) = destination.parent() {
                fs_err::create_dir_all(directory)?;
            }
            fs_err::write(&destination, bytes)?;
        }
        if output.exists() {
            fs_err::rename(output, &old)?;
        }
        fs_err::rename(&staging, output)?;
        Ok(())
    })();
    if staging.exists() {
        fs_err::remove_dir_all(&staging).ok();
    }
    if old.exists() {
        fs_err::remove_dir_all(&old).ok();
    }
    result
}

/// An existing `output` must be an index this tool wrote (its marker) or an empty directory.
fn check_replaceable(output: &Path) -> Result<()> {
    if !output.exists() {
        return Ok(());
    }
    if !output.is_dir() {
        bail!("{} exists and is not a directory: it is not replaced", output.display());
    }
    let ours = output.join(INDEX_MARKER).is_file();
    let empty = fs_err::read_dir(output)?.next().is_none();
    if !(ours || empty) {
        bail!(
            "{} holds files this tool did not write (no {INDEX_MARKER}): it is not replaced\nhint: pass --output with a new or empty directory",
            output.display()
        );
    }
    Ok(())
}

/// The default output: `<wheelhouse>-index` beside the wheelhouse.
pub fn default_output(wheelhouse: &Path) -> PathBuf {
    let name = wheelhouse.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    wheelhouse.with_file_name(format!("{name}-index"))
}
