//! Where everything is: the wheelhouse's own files, and every path derived from it or from a
//! requirements file (the archive and its sidecar, lock files, the run lock and the state files
//! in the state directory beside the wheelhouse). The one place these names are spelled.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use crate::model::manifest::{Manifest, GPG_SIGNATURE_NAME, MANIFEST_NAME, SSH_SIGNATURE_NAME};

/// The project's settings file: a directory holding one is a project, never a wheelhouse.
pub const SETTINGS_FILE_NAME: &str = "wheelhouse.toml";

/// The archive `pack-wheelhouse` writes when given no `--output`.
pub const DEFAULT_ARCHIVE_NAME: &str = "wheelhouse.tgz";

/// `wheelhouse.tgz` beside the wheelhouse directory.
pub fn default_archive(wheelhouse: &Path) -> PathBuf {
    wheelhouse.parent().unwrap_or(Path::new(".")).join(DEFAULT_ARCHIVE_NAME)
}

/// `wheelhouse.tgz` → `wheelhouse.tgz.sha256`.
pub fn sidecar_path(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// `requirements-api.txt` → `requirements-api.lock.txt`: requirements discovery skips `.lock`.
pub fn lock_path(requirements: &Path) -> PathBuf {
    let stem = requirements.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    requirements.with_file_name(format!("{stem}.lock.txt"))
}

/// The state directory: `.wheelgap/` in the directory holding the wheelhouse (or the archive).
/// It holds a run's files, named after what they belong to, so that none lies loose in the
/// project: `wheelhouse.lock`, `wheelhouse.last-verify.json`, `wheelhouse.staging-PID/`,
/// `wheelhouse.tgz.lock`. It sits beside the destination, on the same file system, so that a
/// staging directory can be renamed into place.
pub const STATE_DIR_NAME: &str = ".wheelgap";

/// What the state directory's own `.gitignore` says: ignore everything here, itself included, so
/// that no project needs a line for it.
const STATE_GITIGNORE: &str = "# Written by wheelgap: run locks, staging directories and the last verify.\n*\n";

/// `<parent>/.wheelgap/<name>.<suffix>` for `destination` `<parent>/<name>`: the run lock
/// (`lock`), staging directories (`staging-PID`), a directory moved aside (`old-PID`), the last
/// verify (`last-verify.json`). The directory is not created; [`create_state_dir`] does that.
pub fn state_path(destination: &Path, suffix: &str) -> Result<PathBuf> {
    let name = destination
        .file_name()
        .with_context(|| format!("{} has no file name", destination.display()))?
        .to_string_lossy();
    Ok(state_dir(destination).join(format!("{name}.{suffix}")))
}

/// The state directory of `destination` (see [`STATE_DIR_NAME`]).
pub fn state_dir(destination: &Path) -> PathBuf {
    destination.parent().unwrap_or(Path::new(".")).join(STATE_DIR_NAME)
}

/// Makes the state directory of `destination`, with its `.gitignore`, if it is missing.
pub fn create_state_dir(destination: &Path) -> Result<PathBuf> {
    let dir = state_dir(destination);
    fs_err::create_dir_all(&dir)?;
    let gitignore = dir.join(".gitignore");
    if !gitignore.exists() {
        fs_err::write(&gitignore, STATE_GITIGNORE)?;
    }
    Ok(dir)
}

/// Where the wheelhouse came from when an archive or delta was unpacked into it (`model::delta::Origin`),
/// in the state directory, for `status`.
pub fn origin_path(wheelhouse: &Path) -> PathBuf {
    state_path(wheelhouse, "origin.json").unwrap_or_else(|_| wheelhouse.with_extension("origin.json"))
}

/// The outcome of the last verify, in the state directory (not in the wheelhouse: the archive of
/// a wheelhouse must not change because it was verified), for `status`.
pub fn last_verify_path(wheelhouse: &Path) -> PathBuf {
    state_path(wheelhouse, "last-verify.json").unwrap_or_else(|_| wheelhouse.with_extension("last-verify.json"))
}

/// Whether `path` (which need not exist) is `directory` or lies inside it, links resolved: the
/// nearest existing ancestor of `path` is made canonical and the rest appended.
pub fn is_inside(path: &Path, directory: &Path) -> bool {
    let Ok(directory) = fs_err::canonicalize(directory) else { return false };
    let mut existing = path;
    let mut rest = Vec::new();
    while fs_err::symlink_metadata(existing).is_err() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return false,
        }
    }
    let Ok(mut resolved) = fs_err::canonicalize(existing) else { return false };
    for name in rest.iter().rev() {
        resolved.push(name);
    }
    resolved.starts_with(&directory)
}

/// The manifest of a wheelhouse directory, with the bytes it was parsed from (what a signature
/// covers and an SBOM names).
pub fn read_manifest_with_bytes(wheelhouse: &Path) -> Result<(Manifest, Vec<u8>)> {
    let path = wheelhouse.join(MANIFEST_NAME);
    let bytes = fs_err::read(&path).map_err(|error| {
        anyhow::anyhow!("cannot read the manifest: {error}\nhint: run `cargo xtask create-wheelhouse` first")
    })?;
    let manifest = Manifest::from_json(&String::from_utf8_lossy(&bytes))
        .with_context(|| format!("{} is not a valid manifest", path.display()))?;
    Ok((manifest, bytes))
}

pub fn read_manifest(wheelhouse: &Path) -> Result<Manifest> {
    Ok(read_manifest_with_bytes(wheelhouse)?.0)
}

/// The signatures of the manifest present in a wheelhouse directory, by name.
pub fn read_signatures(wheelhouse: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut signatures = BTreeMap::new();
    for name in [GPG_SIGNATURE_NAME, SSH_SIGNATURE_NAME] {
        match fs_err::read(wheelhouse.join(name)) {
            Ok(bytes) => {
                signatures.insert(name.to_owned(), bytes);
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(signatures)
}

/// The signature file a wheelhouse holds, if any.
pub fn signature_path(wheelhouse: &Path) -> Option<PathBuf> {
    [GPG_SIGNATURE_NAME, SSH_SIGNATURE_NAME].iter().map(|name| wheelhouse.join(name)).find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_follows_links_and_paths_that_do_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let wheelhouse = dir.path().join("wheelhouse");
        fs_err::create_dir(&wheelhouse).unwrap();
        std::os::unix::fs::symlink(&wheelhouse, dir.path().join("link")).unwrap();
        assert!(is_inside(&wheelhouse.join("manifest.json"), &wheelhouse));
        assert!(is_inside(&dir.path().join("link/new/out.tgz"), &wheelhouse));
        assert!(is_inside(&wheelhouse, &wheelhouse));
        assert!(!is_inside(&dir.path().join("wheelhouse.tgz"), &wheelhouse));
        assert!(!is_inside(&dir.path().join("wheelhouse2/x"), &wheelhouse));
    }

    #[test]
    fn derived_paths_sit_beside_what_they_derive_from() {
        assert_eq!(lock_path(Path::new("/r/requirements-api.txt")), PathBuf::from("/r/requirements-api.lock.txt"));
        assert_eq!(default_archive(Path::new("/p/wheelhouse")), Path::new("/p/wheelhouse.tgz"));
        assert_eq!(sidecar_path(Path::new("/p/out.tgz")), Path::new("/p/out.tgz.sha256"));
        assert_eq!(state_path(Path::new("/p/wheelhouse"), "lock").unwrap(), Path::new("/p/.wheelgap/wheelhouse.lock"));
        assert_eq!(last_verify_path(Path::new("/p/wh")), Path::new("/p/.wheelgap/wh.last-verify.json"));
        assert_eq!(
            state_path(Path::new("/p/wheelhouse.tgz"), "lock").unwrap(),
            Path::new("/p/.wheelgap/wheelhouse.tgz.lock")
        );
    }
}
