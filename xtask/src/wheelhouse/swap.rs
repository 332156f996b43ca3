//! Replacing a directory all at once: a staging directory in the state directory beside it
//! (`.wheelgap/`, on the same file system), filled and synced, then
//! exchanged with it in one system call (`renameat2(RENAME_EXCHANGE)` on Linux,
//! `renamex_np(RENAME_SWAP)` on macOS), or, where there is none, by moving the old one aside first.
//! A SIGKILL at any moment leaves either the old or the new directory complete at the real path,
//! or (the fallback only) the old one moved aside whole, which the next start puts back.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{
    model::{
        manifest::{Manifest, MANIFEST_NAME, RESERVED_NAMES},
        simple_index::INDEX_DIR,
        untrusted::shown,
    },
    wheelhouse::{
        layout::{create_state_dir, state_dir, state_path, SETTINGS_FILE_NAME},
        simple_index::{index_in_wheelhouse, index_names},
    },
};

/// A directory being prepared to replace `destination`.
pub struct Staging {
    pub dir: PathBuf,
    destination: PathBuf,
    /// Files hard-linked from another wheelhouse, which may never have been synced. A sync of each
    /// costs a flush of the disk's cache each (a full `fsync` of a linked inode a journal commit
    /// too): the commit syncs the file system once instead, or their data only where it cannot.
    durable: std::collections::BTreeSet<String>,
}

/// Holds an exclusive lock on `.wheelgap/<name>.lock` beside the destination while a run is under way,
/// so that two runs never share staging directories.
pub struct RunLock {
    _file: File,
}

/// Refuses, before anything is written, to replace what this tool cannot prove it wrote: a path
/// that is a file or a link, the project root or a directory above it, a project (it holds
/// `wheelhouse.toml` or `.git`), or a non-empty directory that is not a wheelhouse made here (no
/// manifest of this tool, or a file the manifest does not account for). The swap removes what it
/// replaces, so this is the one check between a mistyped `--wheelhouse` and lost work.
pub fn check_replaceable(destination: &Path, project_root: &Path) -> Result<()> {
    let shown_path = shown(&destination.display().to_string());
    let refused = "refused; nothing was changed";
    let metadata = match std::fs::symlink_metadata(destination) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).with_context(|| format!("cannot read {shown_path}")),
    };
    if metadata.file_type().is_symlink() {
        bail!("{shown_path} is a symbolic link, not a wheelhouse directory: {refused}\nhint: give the directory it points to");
    }
    if !metadata.is_dir() {
        bail!("{shown_path} is a file, not a wheelhouse directory: {refused}\nhint: choose another --wheelhouse, or move the file away");
    }
    let canonical = fs_err::canonicalize(destination)?;
    let root = fs_err::canonicalize(project_root).unwrap_or_else(|_| project_root.to_path_buf());
    if root.starts_with(&canonical) {
        bail!(
            "{shown_path} is the project root or a directory above it, not a wheelhouse: {refused}\nhint: the wheelhouse is a directory of its own, such as `wheelhouse` in the project"
        );
    }
    for marker in [SETTINGS_FILE_NAME, ".git"] {
        if std::fs::symlink_metadata(destination.join(marker)).is_ok() {
            bail!("{shown_path} holds {marker}: it is a project, not a wheelhouse: {refused}\nhint: choose another --wheelhouse");
        }
    }
    let mut entries = Vec::new();
    for entry in fs_err::read_dir(destination)? {
        let entry = entry?;
        entries.push((entry.file_name().to_string_lossy().into_owned(), entry.file_type()?.is_file()));
    }
    entries.sort();
    let Some((first, _)) = entries.first() else { return Ok(()) };
    let manifest =
        std::fs::read_to_string(destination.join(MANIFEST_NAME)).ok().and_then(|text| Manifest::from_json(&text).ok());
    let Some(manifest) = manifest else {
        bail!(
            "{shown_path} is not empty and holds no manifest this tool wrote (it holds {}): {refused}\nhint: choose another --wheelhouse, or empty the directory first",
            shown(first)
        );
    };
    let (_, index_strays) = index_in_wheelhouse(destination)?;
    let index_names = index_names(&manifest);
    for (name, is_file) in &entries {
        // The index `index` writes into the wheelhouse: its pages' directory, holding nothing else
        // and not a link, and the .metadata of each listed wheel.
        if name == INDEX_DIR
            && index_strays.is_empty()
            && destination.join(INDEX_DIR).symlink_metadata().is_ok_and(|m| m.is_dir())
        {
            continue;
        }
        if *is_file && index_names.contains(name) {
            continue;
        }
        let accounted =
            manifest.file(name).is_some() || RESERVED_NAMES.contains(&name.as_str()) || is_partial_of_reserved(name);
        if !accounted || !is_file {
            bail!(
                "{shown_path} holds {}, which its manifest does not account for: {refused}\nhint: move it out of the wheelhouse (or remove it), then run again",
                shown(name)
            );
        }
    }
    Ok(())
}

/// `.sbom.cdx.json.partial-x1y2` and the like: what a killed `sign` or `sbom` left in the wheelhouse.
fn is_partial_of_reserved(name: &str) -> bool {
    RESERVED_NAMES.iter().any(|reserved| name.starts_with(&format!(".{reserved}.partial-")))
}

pub fn lock(destination: &Path) -> Result<RunLock> {
    if let Some(parent) = destination.parent() {
        fs_err::create_dir_all(parent)?;
    }
    create_state_dir(destination)?;
    let path = state_path(destination, "lock")?;
    let file = fs_err::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?.into_parts().0;
    // SAFETY: flock on a descriptor we own; it is released when the file is closed.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        bail!(
            "another run is using {} (lock {} is held)\nhint: wait for it to finish",
            destination.display(),
            path.display()
        );
    }
    Ok(RunLock { _file: file })
}

/// Cleans what an interrupted run left: staging directories are removed; a wheelhouse moved aside
/// by the fallback swap is put back when the real path is missing. Looks in the state directory
/// and, for what a version before it left, beside the destination. Returns what it removed.
pub fn recover(destination: &Path) -> Result<Vec<PathBuf>> {
    let Some(name) = destination.file_name().map(|name| name.to_string_lossy().into_owned()) else {
        return Ok(Vec::new());
    };
    let parent = destination.parent().unwrap_or(Path::new("."));
    let mut removed = Vec::new();
    for (dir, prefix) in [(state_dir(destination), format!("{name}.")), (parent.to_path_buf(), format!(".{name}."))] {
        if !dir.is_dir() {
            continue;
        }
        let mut entries: Vec<PathBuf> = fs_err::read_dir(&dir)?.filter_map(|entry| Some(entry.ok()?.path())).collect();
        entries.sort();
        for path in entries {
            let Some(entry_name) = path.file_name().map(|name| name.to_string_lossy().into_owned()) else { continue };
            let Some(kind) = entry_name.strip_prefix(&prefix) else { continue };
            if kind.starts_with("old-") && !destination.exists() {
                fs_err::rename(&path, destination)?;
            } else if kind.starts_with("staging-") || kind.starts_with("old-") {
                fs_err::remove_dir_all(&path)?;
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

impl Staging {
    pub fn create(destination: &Path) -> Result<Staging> {
        create_state_dir(destination)?;
        let dir = state_path(destination, &format!("staging-{}", std::process::id()))?;
        if dir.exists() {
            fs_err::remove_dir_all(&dir)?;
        }
        fs_err::create_dir_all(&dir)?;
        Ok(Staging { dir, destination: destination.to_path_buf(), durable: Default::default() })
    }

    /// Names files of the staging directory that are hard links to another wheelhouse's files.
    pub fn linked_from_synced(&mut self, names: impl IntoIterator<Item = String>) {
        self.durable.extend(names);
    }

    /// Syncs every file and the directory, then puts the staging directory at the destination.
    pub fn commit(self) -> Result<()> {
        self.commit_with(Strategy::from_environment())
    }

    fn commit_with(self, strategy: Strategy) -> Result<()> {
        // Files linked from another wheelhouse may never have been synced, and a sync of each, even
        // of clean data, flushes the disk's cache once per file: with links, the whole file system
        // is synced once instead (Linux), which covers the new files too.
        let synced_whole = !self.durable.is_empty() && sync_file_system(&self.dir)?;
        for entry in fs_err::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            if synced_whole || !path.is_file() {
                continue;
            }
            let linked = self.durable.contains(&*entry.file_name().to_string_lossy());
            File::open(&path)
                .and_then(|file| if linked { file.sync_data() } else { file.sync_all() })
                .with_context(|| format!("cannot sync {}", path.display()))?;
        }
        sync_dir(&self.dir)?;
        if self.destination.exists() {
            let exchanged = match strategy {
                Strategy::Exchange => match exchange(&self.dir, &self.destination) {
                    Ok(()) => true,
                    Err(error) if exchange_unsupported(&error) => false,
                    Err(error) => {
                        return Err(error).with_context(|| {
                            format!("cannot exchange {} with {}", self.dir.display(), self.destination.display())
                        })
                    }
                },
                Strategy::MoveAside => false,
            };
            if !exchanged {
                // A kill between two of these renames is repaired by `recover` at the next start.
                for (from, to) in move_aside_renames(&self.dir, &self.destination)? {
                    fs_err::rename(from, to)?;
                }
            }
            // The staging path now holds the previous directory.
            fs_err::remove_dir_all(&self.dir)?;
        } else {
            fs_err::rename(&self.dir, &self.destination)?;
        }
        sync_dir(self.destination.parent().unwrap_or(Path::new(".")))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // A failed run leaves nothing behind; after a commit the path no longer exists.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How the staging directory takes the destination's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    /// One system call exchanges the two; where the file system or the system has none, the
    /// move-aside fallback runs instead.
    Exchange,
    /// The fallback only: the old directory is renamed aside, the staging directory renamed in.
    MoveAside,
}

impl Strategy {
    /// `XTASK_SWAP_FALLBACK=1` forces the move-aside fallback. It is a test hook, so that the path
    /// macOS file systems without `RENAME_SWAP` and other unixes take is exercised on Linux too;
    /// this is the one place it is read.
    fn from_environment() -> Strategy {
        if std::env::var_os("XTASK_SWAP_FALLBACK").is_some_and(|value| value == "1") {
            Strategy::MoveAside
        } else {
            Strategy::Exchange
        }
    }
}

/// The fallback's three renames, in order: the old directory aside to `.wheelgap/<name>.old-<pid>`, the
/// staging directory in, the old one to the staging path (where the caller removes it). Listed
/// rather than done so that a test can stop between two of them, as a kill would.
fn move_aside_renames(staging: &Path, destination: &Path) -> Result<[(PathBuf, PathBuf); 3]> {
    let aside = state_path(destination, &format!("old-{}", std::process::id()))?;
    Ok([
        (destination.to_path_buf(), aside.clone()),
        (staging.to_path_buf(), destination.to_path_buf()),
        (aside, staging.to_path_buf()),
    ])
}

/// What the exchange returns when the file system or the system cannot do it: Linux gives EINVAL
/// (or ENOSYS before 3.15), macOS ENOTSUP (or EINVAL); the stub for other systems gives ENOSYS.
fn exchange_unsupported(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP))
}

#[cfg(target_os = "linux")]
fn exchange(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::{ffi::CString, os::unix::ffi::OsStrExt};
    let from = CString::new(from.as_os_str().as_bytes())?;
    let to = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: two valid NUL-terminated paths; renameat2 reads them and returns a status.
    let status = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(target_os = "macos")]
fn exchange(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::{ffi::CString, os::unix::ffi::OsStrExt};
    let from = CString::new(from.as_os_str().as_bytes())?;
    let to = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: two valid NUL-terminated paths; renamex_np reads them and returns a status.
    let status = unsafe { libc::renamex_np(from.as_ptr(), to.as_ptr(), libc::RENAME_SWAP) };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// No exchange call is known here: the caller falls back to moving the old directory aside.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn exchange(_from: &Path, _to: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
}

/// `syncfs` of the file system `dir` is on: true when done, false where there is none.
#[cfg(target_os = "linux")]
fn sync_file_system(dir: &Path) -> Result<bool> {
    let file = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    // SAFETY: syncfs on a descriptor we own and keep open for the call.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&file)) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot sync the file system of {}", dir.display()));
    }
    Ok(true)
}

#[cfg(not(target_os = "linux"))]
fn sync_file_system(_dir: &Path) -> Result<bool> {
    Ok(false)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|file| file.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_exchanges_and_recover_cleans_leftovers() {
        let root = tempfile::tempdir().unwrap();
        let destination = root.path().join("wheelhouse");
        fs_err::create_dir(&destination).unwrap();
        fs_err::write(destination.join("old.txt"), "old").unwrap();

        let staging = Staging::create(&destination).unwrap();
        fs_err::write(staging.dir.join("new.txt"), "new").unwrap();
        staging.commit().unwrap();
        assert!(destination.join("new.txt").exists());
        assert!(!destination.join("old.txt").exists());

        assert_eq!(leftovers_beside(&destination), Vec::<String>::new());
        let leftover = root.path().join(".wheelgap/wheelhouse.staging-1");
        // What a version before the state directory left beside the wheelhouse goes too.
        let legacy = root.path().join(".wheelhouse.staging-2");
        for dir in [&leftover, &legacy] {
            fs_err::create_dir(dir).unwrap();
        }
        assert_eq!(recover(&destination).unwrap(), [leftover.clone(), legacy.clone()]);
        assert!(!leftover.exists() && !legacy.exists());
    }

    #[test]
    fn recover_puts_back_a_wheelhouse_moved_aside() {
        for aside in [".wheelgap/wheelhouse.old-7", ".wheelhouse.old-7"] {
            let root = tempfile::tempdir().unwrap();
            let destination = root.path().join("wheelhouse");
            let aside = root.path().join(aside);
            fs_err::create_dir_all(&aside).unwrap();
            fs_err::write(aside.join("manifest.json"), "{}").unwrap();
            recover(&destination).unwrap();
            assert!(destination.join("manifest.json").exists(), "{}", aside.display());
        }
    }

    /// A wheelhouse's files with their contents, in name order.
    fn files_of(dir: &Path) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = fs_err::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                (path.file_name().unwrap().to_string_lossy().into_owned(), fs_err::read_to_string(&path).unwrap())
            })
            .collect();
        files.sort();
        files
    }

    /// The names beside the wheelhouse and in the state directory, other than the wheelhouse, the
    /// state directory and its `.gitignore`.
    fn leftovers_beside(destination: &Path) -> Vec<String> {
        let parent = destination.parent().unwrap();
        let mut names: Vec<String> = [parent.to_path_buf(), state_dir(destination)]
            .iter()
            .filter(|dir| dir.is_dir())
            .flat_map(|dir| fs_err::read_dir(dir).unwrap())
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !["wheelhouse", ".wheelgap", ".gitignore"].contains(&name.as_str()))
            .collect();
        names.sort();
        names
    }

    fn old_files() -> Vec<(String, String)> {
        vec![("a-1.0-py3-none-any.whl".into(), "old wheel".into()), ("manifest.json".into(), "old".into())]
    }

    fn new_files() -> Vec<(String, String)> {
        vec![("b-2.0-py3-none-any.whl".into(), "new wheel".into()), ("manifest.json".into(), "new".into())]
    }

    /// An old wheelhouse and a filled staging directory for a new one.
    fn old_wheelhouse_and_new_staging(root: &Path) -> (PathBuf, Staging) {
        let destination = root.join("wheelhouse");
        fs_err::create_dir(&destination).unwrap();
        for (name, text) in old_files() {
            fs_err::write(destination.join(name), text).unwrap();
        }
        let staging = Staging::create(&destination).unwrap();
        for (name, text) in new_files() {
            fs_err::write(staging.dir.join(name), text).unwrap();
        }
        (destination, staging)
    }

    #[test]
    fn the_fallback_commit_puts_the_new_wheelhouse_in_place() {
        let root = tempfile::tempdir().unwrap();
        let (destination, staging) = old_wheelhouse_and_new_staging(root.path());
        staging.commit_with(Strategy::MoveAside).unwrap();
        assert_eq!(files_of(&destination), new_files());
        assert_eq!(leftovers_beside(&destination), Vec::<String>::new());
    }

    /// Does the first `renames` of the fallback's three renames, then dies as a SIGKILL would (no
    /// destructor runs), then runs `recover` as the next start does. Returns what the wheelhouse
    /// holds afterwards and what is left beside it.
    fn killed_after_renames_then_recovered(renames: usize) -> (Vec<(String, String)>, Vec<String>) {
        let root = tempfile::tempdir().unwrap();
        let (destination, staging) = old_wheelhouse_and_new_staging(root.path());
        for (from, to) in move_aside_renames(&staging.dir, &destination).unwrap().into_iter().take(renames) {
            fs_err::rename(from, to).unwrap();
        }
        std::mem::forget(staging);
        assert_eq!(destination.exists(), renames != 1, "the real path is missing only between the two renames");
        let removed = recover(&destination).unwrap();
        assert!(!removed.is_empty(), "after {renames} renames something is left to remove");
        (files_of(&destination), leftovers_beside(&destination))
    }

    #[test]
    fn recover_repairs_a_kill_at_any_point_of_the_fallback() {
        let nothing_left = Vec::<String>::new();
        // Before the first rename: the staging directory is removed, the old wheelhouse untouched.
        assert_eq!(killed_after_renames_then_recovered(0), (old_files(), nothing_left.clone()));
        // Between the two renames: the old wheelhouse, moved aside, is put back whole.
        assert_eq!(killed_after_renames_then_recovered(1), (old_files(), nothing_left.clone()));
        // After the staging rename: the new wheelhouse stays, the one moved aside is removed.
        assert_eq!(killed_after_renames_then_recovered(2), (new_files(), nothing_left.clone()));
        // After the last rename: the old content, now at the staging path, is removed.
        assert_eq!(killed_after_renames_then_recovered(3), (new_files(), nothing_left));
    }

    #[test]
    fn only_an_empty_directory_or_a_wheelhouse_of_this_tool_may_be_replaced() {
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("project");
        fs_err::create_dir_all(project.join("docs")).unwrap();
        let check = |path: &Path| check_replaceable(path, &project).map_err(|error| error.to_string());
        assert!(check(&project.join("wheelhouse")).is_ok(), "a new directory");
        fs_err::create_dir(project.join("empty")).unwrap();
        assert!(check(&project.join("empty")).is_ok());
        let error = check(&project).unwrap_err();
        assert!(error.contains("is the project root or a directory above it"), "{error}");
        assert!(check(root.path()).unwrap_err().contains("a directory above it"));
        fs_err::write(project.join("docs/guide.md"), "mine").unwrap();
        let error = check(&project.join("docs")).unwrap_err();
        assert!(error.contains("holds no manifest this tool wrote (it holds guide.md)"), "{error}");
        fs_err::write(project.join("file"), "x").unwrap();
        assert!(check(&project.join("file")).unwrap_err().contains("is a file, not a wheelhouse directory"));
        fs_err::create_dir_all(project.join("other/.git")).unwrap();
        assert!(check(&project.join("other")).unwrap_err().contains("holds .git: it is a project"));
    }

    #[test]
    fn a_second_run_is_refused_while_the_lock_is_held() {
        let root = tempfile::tempdir().unwrap();
        let destination = root.path().join("wheelhouse");
        let _held = lock(&destination).unwrap();
        let error = lock(&destination).err().unwrap().to_string();
        assert!(error.starts_with("another run is using"), "{error}");
    }
}
