//! Requirements files: discovery in a project, and the bytes (with `-r`/`-c` includes) that decide
//! whether a resolution is still valid. pip parses them; this module only reads what it must.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::digest::hex;

/// A requirements file and everything it pulls in, as read now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementsRecord {
    /// Path relative to the project root, with `/` separators: the name users see.
    pub path: String,
    pub sha256: String,
    /// Files included with `-r` or `-c`, recursively, in the order pip reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<IncludedFile>,
    /// True when the file pins hashes (`--hash=`), which puts pip in hash-checking mode.
    #[serde(default)]
    pub hash_pinned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncludedFile {
    pub path: String,
    pub sha256: String,
}

impl RequirementsRecord {
    /// One digest over the file and its includes: the requirements part of a resolution's key.
    pub fn content_digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.sha256.as_bytes());
        for include in &self.includes {
            hasher.update(include.path.as_bytes());
            hasher.update(include.sha256.as_bytes());
        }
        hex(&hasher.finalize())
    }
}

/// Files a project's requirements live in when none are configured: `requirements*.txt` at the
/// root and `requirements/*.txt`, never lock files (which the `lock` command writes beside them).
pub fn discover(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for (directory, must_start_with_requirements) in [(root.to_path_buf(), true), (root.join("requirements"), false)] {
        if !directory.is_dir() {
            continue;
        }
        let mut in_directory = Vec::new();
        for entry in fs_err::read_dir(&directory)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else { continue };
            let is_candidate = name.ends_with(".txt")
                && (!must_start_with_requirements || name.starts_with("requirements"))
                && !is_lock_file_name(name);
            if is_candidate && path.is_file() {
                in_directory.push(path);
            }
        }
        in_directory.sort();
        found.extend(in_directory);
    }
    Ok(found)
}

/// Lock files are never inputs: `requirements-api.lock.txt`, `requirements.lock`, and the like.
pub fn is_lock_file_name(name: &str) -> bool {
    name.contains(".lock") || name.ends_with("-lock.txt")
}

/// Reads a requirements file and, recursively, what it includes.
pub fn read(root: &Path, path: &Path) -> Result<RequirementsRecord> {
    let bytes = fs_err::read(path).context("cannot read the requirements file")?;
    let text = String::from_utf8_lossy(&bytes);
    let mut includes = Vec::new();
    let mut visited = vec![path.to_path_buf()];
    collect_includes(root, path, &text, &mut includes, &mut visited)?;
    let hash_pinned = logical_lines(&text).any(|(_, line)| line.contains("--hash"));
    Ok(RequirementsRecord {
        path: display_path(root, path),
        sha256: hex(&Sha256::digest(&bytes)),
        includes,
        hash_pinned,
    })
}

fn collect_includes(
    root: &Path,
    path: &Path,
    text: &str,
    includes: &mut Vec<IncludedFile>,
    visited: &mut Vec<PathBuf>,
) -> Result<()> {
    let base = path.parent().unwrap_or(Path::new("."));
    for (line_number, line) in logical_lines(text) {
        let Some(target) = include_target(&line) else { continue };
        // pip also accepts URLs here; those are fetched by pip and not fingerprinted.
        if target.contains("://") {
            continue;
        }
        let included = lexical_normalize(&base.join(target));
        if visited.contains(&included) {
            continue;
        }
        let Ok(bytes) = fs_err::read(&included) else {
            bail!(
                "{}: line {}: included file `{}` cannot be read",
                display_path(root, path),
                line_number,
                included.display()
            );
        };
        visited.push(included.clone());
        includes.push(IncludedFile { path: display_path(root, &included), sha256: hex(&Sha256::digest(&bytes)) });
        collect_includes(root, &included, &String::from_utf8_lossy(&bytes), includes, visited)?;
    }
    Ok(())
}

/// Lines as pip sees them, with the 1-based number of their first physical line: comments
/// stripped, backslash continuations joined.
fn logical_lines(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    let mut pending = String::new();
    let mut first_line = None;
    text.lines().enumerate().filter_map(move |(index, raw)| {
        let first = *first_line.get_or_insert(index + 1);
        let without_comment = match raw.find(" #").or_else(|| raw.starts_with('#').then_some(0)) {
            Some(index) => &raw[..index],
            None => raw,
        };
        if let Some(continued) = without_comment.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            return None;
        }
        pending.push_str(without_comment);
        first_line = None;
        let line = std::mem::take(&mut pending).trim().to_owned();
        (!line.is_empty()).then_some((first, line))
    })
}

fn include_target(line: &str) -> Option<&str> {
    for option in ["--requirement", "--constraint", "-r", "-c"] {
        if let Some(rest) = line.strip_prefix(option) {
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            // `-rfile` is valid pip syntax; `--requirementX` is not an option we know.
            if option.starts_with("--") && !(line[option.len()..].starts_with([' ', '=', '\t'])) {
                continue;
            }
            let target = rest.trim();
            return (!target.is_empty()).then_some(target);
        }
    }
    None
}

/// Resolves `.` and `..` without touching the file system, so one file has one name.
pub fn lexical_normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if normalized.file_name().is_some() => {
                normalized.pop();
            }
            other => normalized.push(other),
        }
    }
    normalized
}

pub fn display_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative.components().map(|part| part.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, text).unwrap();
        path
    }

    #[test]
    fn discovery_finds_requirements_but_never_locks() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "requirements.txt",
            "requirements-api.txt",
            "requirements-api.lock.txt",
            "notes.txt",
            "requirements/dev.txt",
            "requirements/prod.lock.txt",
        ] {
            write(dir.path(), name, "x\n");
        }
        let found: Vec<String> =
            discover(dir.path()).unwrap().iter().map(|path| display_path(dir.path(), path)).collect();
        assert_eq!(found, ["requirements-api.txt", "requirements.txt", "requirements/dev.txt"]);
    }

    #[test]
    fn includes_change_the_digest_and_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(dir.path(), "requirements.txt", "-r base/common.txt\n--constraint=c.txt # pins\nflask\n");
        write(dir.path(), "base/common.txt", "-r ../c.txt\nrequests\n");
        write(dir.path(), "c.txt", "requests==2.0\n");
        let before = read(dir.path(), &main).unwrap();
        let paths: Vec<&str> = before.includes.iter().map(|include| include.path.as_str()).collect();
        assert_eq!(paths, ["base/common.txt", "c.txt"]);
        assert!(!before.hash_pinned);
        write(dir.path(), "c.txt", "requests==2.1\n");
        let after = read(dir.path(), &main).unwrap();
        assert_eq!(before.sha256, after.sha256);
        assert_ne!(before.content_digest(), after.content_digest());
    }

    #[test]
    fn a_missing_include_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(dir.path(), "requirements.txt", "flask\n\n-r missing.txt\n");
        let error = read(dir.path(), &main).unwrap_err().to_string();
        assert!(error.starts_with("requirements.txt: line 3: included file"), "{error}");
    }

    #[test]
    fn hash_pins_are_detected_across_continuations() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(dir.path(), "requirements.txt", "six==1.16.0 \\\n    --hash=sha256:abc\n");
        assert!(read(dir.path(), &main).unwrap().hash_pinned);
    }
}
