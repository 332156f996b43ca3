//! The static simple index of a wheelhouse on disk (`model::simple_index` renders its pages):
//! inside the wheelhouse itself (pages under `simple/`, each wheel's `.metadata` beside it), where
//! pack carries it; or as a tree of its own, written into a staging directory beside the output
//! and swapped in whole (an output directory is replaced only when it holds this tool's marker,
//! or is empty).

use std::{collections::BTreeMap, path::Path};

use anyhow::{bail, Context, Result};

use crate::{
    model::{
        digest::sha256_hex,
        manifest::{Manifest, MANIFEST_NAME},
        simple_index::{is_index_dir, is_index_file, pages, FileMetadata, Layout, INDEX_DIR},
    },
    parallel,
    wheelhouse::{
        files::{sha256_file, wheel_metadata_bytes},
        partial,
    },
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
/// (parsed from `manifest_bytes`, which a tree serves as `manifest.json` at its root).
pub fn render(wheelhouse: &Path, manifest: &Manifest, manifest_bytes: &[u8], layout: Layout) -> Result<Rendered> {
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
        let path = match layout {
            Layout::Tree => format!("files/{filename}.metadata"),
            Layout::Wheelhouse => format!("{filename}.metadata"),
        };
        texts.insert(path, bytes);
    }
    let rendered = pages(manifest, &metadata, layout);
    let n_projects = rendered.keys().filter(|path| path.ends_with("/index.html")).count().saturating_sub(1);
    texts.extend(rendered.into_iter().map(|(path, text)| (path, text.into_bytes())));
    if layout == Layout::Tree {
        texts.insert(INDEX_MARKER.to_owned(), format!("{}\n", sha256_hex(manifest_bytes)).into_bytes());
        texts.insert(MANIFEST_NAME.to_owned(), manifest_bytes.to_vec());
    }
    Ok(Rendered { texts, n_projects })
}

/// Every name a wheelhouse index of `manifest` can have: the root pages, the pages of its projects
/// and the `.metadata` of its wheels. What an archive may carry below `wheelhouse/`.
pub fn index_names(manifest: &Manifest) -> std::collections::BTreeSet<String> {
    let mut names: std::collections::BTreeSet<String> =
        ["index.html", "index.json"].iter().map(|page| format!("{INDEX_DIR}/{page}")).collect();
    for entry in &manifest.files {
        let project = crate::model::wheel_name::normalize(&entry.name);
        for page in ["index.html", "index.json"] {
            names.insert(format!("{INDEX_DIR}/{project}/{page}"));
        }
        if entry.filename.ends_with(".whl") {
            names.insert(format!("{}.metadata", entry.filename));
        }
    }
    names.retain(|name| is_index_file(name));
    names
}

/// Removes what a killed `index` left in the wheelhouse: `.<name>.partial-*` files of index
/// names, at the top and in `simple/` (never through a symbolic link).
pub fn remove_partials(wheelhouse: &Path) -> Result<()> {
    let mut directories = vec![(wheelhouse.to_path_buf(), String::new())];
    let root = wheelhouse.join(INDEX_DIR);
    if std::fs::symlink_metadata(&root).is_ok_and(|metadata| metadata.is_dir()) {
        directories.push((root.clone(), format!("{INDEX_DIR}/")));
        for entry in fs_err::read_dir(&root)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                let name = entry.file_name().to_string_lossy().into_owned();
                directories.push((entry.path(), format!("{INDEX_DIR}/{name}/")));
            }
        }
    }
    for (directory, prefix) in directories {
        for entry in fs_err::read_dir(&directory)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name
                .strip_prefix('.')
                .and_then(|rest| rest.split_once(".partial-"))
                .is_some_and(|(target, _)| is_index_file(&format!("{prefix}{target}")));
            if ours && entry.file_type()?.is_file() {
                fs_err::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}

/// The index files a wheelhouse holds (relative paths, `/`-separated), and what else is under its
/// `simple/`: anything that is not a page or directory of the index, symbolic links included.
pub fn index_in_wheelhouse(wheelhouse: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let mut files = Vec::new();
    let mut strays = Vec::new();
    for entry in fs_err::read_dir(wheelhouse)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".whl.metadata") && is_index_file(&name) && entry.file_type()?.is_file() {
            files.push(name);
        }
    }
    let root = wheelhouse.join(INDEX_DIR);
    if std::fs::symlink_metadata(&root).is_ok_and(|metadata| metadata.is_dir()) {
        for entry in walkdir::WalkDir::new(&root).min_depth(1).sort_by_file_name() {
            let entry = entry?;
            let relative = entry.path().strip_prefix(wheelhouse).unwrap_or(entry.path());
            let relative = relative.to_string_lossy().replace('\\', "/");
            let kind = entry.file_type();
            if (kind.is_dir() && is_index_dir(&relative)) || (kind.is_file() && is_index_file(&relative)) {
                if kind.is_file() {
                    files.push(relative);
                }
            } else {
                strays.push(relative);
            }
        }
    } else if std::fs::symlink_metadata(&root).is_ok() {
        strays.push(INDEX_DIR.to_owned());
    }
    files.sort();
    Ok((files, strays))
}

/// What differs between the index a wheelhouse holds and `rendered` (its index as it should be):
/// files stale, missing or extra, and strays. Empty when the wheelhouse holds no index at all.
pub fn stale_in_wheelhouse(wheelhouse: &Path, rendered: &Rendered) -> Result<Vec<String>> {
    let (files, mut stale) = index_in_wheelhouse(wheelhouse)?;
    if files.is_empty() && stale.is_empty() {
        return Ok(Vec::new());
    }
    for (path, bytes) in &rendered.texts {
        if std::fs::read(wheelhouse.join(path)).ok().as_ref() != Some(bytes) {
            stale.push(path.clone());
        }
    }
    stale.extend(files.into_iter().filter(|path| !rendered.texts.contains_key(path)));
    stale.sort();
    Ok(stale)
}

/// The files of the index a wheelhouse holds that are not what its files give (see
/// [`stale_in_wheelhouse`]); nothing when it holds no index.
pub fn stale_index(wheelhouse: &Path, manifest: &Manifest) -> Result<Vec<String>> {
    let (files, strays) = index_in_wheelhouse(wheelhouse)?;
    if files.is_empty() && strays.is_empty() {
        return Ok(Vec::new());
    }
    let manifest_bytes = fs_err::read(wheelhouse.join(MANIFEST_NAME))?;
    let rendered = render(wheelhouse, manifest, &manifest_bytes, Layout::Wheelhouse)?;
    stale_in_wheelhouse(wheelhouse, &rendered)
}

/// Writes `rendered` (of [`Layout::Wheelhouse`]) into the wheelhouse, each file renamed into
/// place whole, and removes the index files and strays under `simple/` it no longer has. The
/// caller holds the wheelhouse's lock.
pub fn write_into_wheelhouse(wheelhouse: &Path, rendered: &Rendered) -> Result<()> {
    let (files, strays) = index_in_wheelhouse(wheelhouse)?;
    for stray in &strays {
        // What a killed run of this command left: `.index.html.partial-x1y2` beside a page.
        let (directory, name) = stray.rsplit_once('/').unwrap_or(("", stray));
        let ours = name
            .strip_prefix('.')
            .and_then(|rest| rest.split_once(".partial-"))
            .is_some_and(|(page, _)| is_index_file(&format!("{directory}/{page}")));
        if !ours {
            bail!(
                "{} holds {stray}, which is not a file of its index: nothing is written\nhint: move it out of the wheelhouse",
                wheelhouse.display()
            );
        }
        fs_err::remove_file(wheelhouse.join(stray))?;
    }
    for (path, bytes) in &rendered.texts {
        let destination = wheelhouse.join(path);
        if let Some(directory) = destination.parent() {
            fs_err::create_dir_all(directory)?;
        }
        if std::fs::read(&destination).ok().as_ref() != Some(bytes) {
            partial::write_file(&destination, bytes)?;
        }
    }
    for path in files.iter().filter(|path| !rendered.texts.contains_key(*path)) {
        fs_err::remove_file(wheelhouse.join(path))?;
    }
    // Project directories left empty by a package that went away.
    let root = wheelhouse.join(INDEX_DIR);
    for entry in fs_err::read_dir(&root)? {
        let path = entry?.path();
        if path.is_dir() && fs_err::read_dir(&path)?.next().is_none() {
            fs_err::remove_dir(&path)?;
        }
    }
    Ok(())
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
