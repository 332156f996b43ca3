//! Files written whole: a `.<name>.partial-*` file beside the target is filled, synced and
//! renamed over it, so a killed run leaves the previous file; the next run removes the partial.

use std::{io::Write, os::unix::fs::PermissionsExt, path::Path};

use anyhow::{Context, Result};

use crate::ui;

/// The mode of a file written when there is none to replace: readable by all (tempfile creates
/// 0600; an archive is for copying to media and other accounts, a Dockerfile for committing).
const NEW_FILE_MODE: u32 = 0o644;

/// Writes `bytes` to `path` atomically, keeping the mode of the file it replaces.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let (directory, name) = split(path)?;
    let mut partial = partial_file(directory, &name)?;
    partial.write_all(bytes).with_context(|| format!("cannot write {}", partial.path().display()))?;
    persist(partial, path)
}

/// `.<name>.partial-*` beside `name`: on the same file system, so the rename is atomic, and
/// named so that the next run, and the archive's exclusions, recognise it.
pub fn partial_file(directory: &Path, name: &str) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempfile_in(directory)
        .with_context(|| format!("cannot create a temporary file in {}", directory.display()))
}

/// Syncs the partial file and renames it over `path`, with the mode of the file it replaces
/// (else 0644).
pub fn persist(partial: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    let mode = match std::fs::metadata(path) {
        Ok(existing) if existing.is_file() => existing.permissions().mode() & 0o7777,
        _ => NEW_FILE_MODE,
    };
    fs_err::set_permissions(partial.path(), std::fs::Permissions::from_mode(mode))?;
    partial.as_file().sync_all().with_context(|| format!("cannot sync {}", partial.path().display()))?;
    partial.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The directory and file name of a path to write, the directory `.` when it has none.
pub fn split(path: &Path) -> Result<(&Path, String)> {
    let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Ok((directory, name.to_string_lossy().into_owned()))
}

/// Partial files and staging directories of a run that was killed.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_keeps_its_mode_and_a_new_one_is_0644() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.txt");
        write_file(&new, b"one").unwrap();
        assert_eq!(fs_err::metadata(&new).unwrap().permissions().mode() & 0o777, 0o644);
        let script = dir.path().join("run.sh");
        fs_err::write(&script, "old").unwrap();
        fs_err::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        write_file(&script, b"new").unwrap();
        assert_eq!(fs_err::read_to_string(&script).unwrap(), "new");
        assert_eq!(fs_err::metadata(&script).unwrap().permissions().mode() & 0o777, 0o755);
        let leftovers: Vec<_> = fs_err::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "no partial file is left");
    }
}
