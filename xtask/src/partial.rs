//! Files written whole: a `.<name>.partial-*` file beside the target is filled, synced and
//! renamed over it, so a killed run leaves the previous file; the next run removes the partial.

use std::{io::Write, os::unix::fs::PermissionsExt, path::Path};

use anyhow::{Context, Result};

use crate::ui;

pub fn write_atomically(directory: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let mut partial = partial_file(directory, name)?;
    partial.write_all(bytes).with_context(|| format!("cannot write {}", partial.path().display()))?;
    persist(partial, &directory.join(name))
}

/// `.<name>.partial-*` beside `name`: on the same file system, so the rename is atomic, and
/// named so that the next run, and the archive's exclusions, recognise it.
pub fn partial_file(directory: &Path, name: &str) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempfile_in(directory)
        .with_context(|| format!("cannot create a temporary file in {}", directory.display()))
}

pub fn persist(partial: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    // tempfile creates 0600; the archive is for copying to media and other accounts.
    fs_err::set_permissions(partial.path(), std::fs::Permissions::from_mode(0o644))?;
    partial.as_file().sync_all().with_context(|| format!("cannot sync {}", partial.path().display()))?;
    partial.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Partial files and staging directories of a dist that was killed.
pub fn remove_partial_files(directory: &Path, names: &[&str]) -> Result<()> {
    let prefixes: Vec<String> = names.iter().map(|name| format!(".{name}.partial-")).collect();
    for entry in fs_err::read_dir(directory)?.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|prefix| file_name.starts_with(prefix)) {
            if entry.file_type().is_ok_and(|file_type| file_type.is_dir()) {
                fs_err::remove_dir_all(entry.path())?;
            } else {
                fs_err::remove_file(entry.path())?;
            }
            ui::say(&format!("removed {} left by an interrupted run", entry.path().display()));
        }
    }
    Ok(())
}
