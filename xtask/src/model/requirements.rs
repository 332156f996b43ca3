//! Requirements files: the bytes (with `-r`/`-c` includes) that decide whether a resolution is
//! still valid. pip parses them; this module only reads what it must, through the reader it is
//! given.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{
    digest::hex,
    paths::{display_path, lexical_normalize},
};

/// Reads a file's bytes: the file system in the tool, a map in tests.
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>;

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

/// Lock files are never inputs: `requirements-api.lock.txt`, `requirements.lock`, and the like.
pub fn is_lock_file_name(name: &str) -> bool {
    name.contains(".lock") || name.ends_with("-lock.txt")
}

/// Reads a requirements file and, recursively, what it includes.
pub fn read(root: &Path, path: &Path, read_file: ReadFile<'_>) -> Result<RequirementsRecord> {
    let bytes = read_file(path).context("cannot read the requirements file")?;
    let text = String::from_utf8_lossy(&bytes);
    let mut includes = Vec::new();
    let mut visited = vec![path.to_path_buf()];
    collect_includes(root, path, &text, &mut includes, &mut visited, read_file)?;
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
    read_file: ReadFile<'_>,
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
        let Ok(bytes) = read_file(&included) else {
            bail!(
                "{}: line {}: included file `{}` cannot be read",
                display_path(root, path),
                line_number,
                included.display()
            );
        };
        visited.push(included.clone());
        includes.push(IncludedFile { path: display_path(root, &included), sha256: hex(&Sha256::digest(&bytes)) });
        collect_includes(root, &included, &String::from_utf8_lossy(&bytes), includes, visited, read_file)?;
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

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, collections::BTreeMap};

    use super::*;

    /// A project in memory, under `/p`.
    struct Files(RefCell<BTreeMap<PathBuf, String>>);

    impl Files {
        fn new(contents: &[(&str, &str)]) -> Files {
            let files = Files(RefCell::new(BTreeMap::new()));
            for (name, text) in contents {
                files.write(name, text);
            }
            files
        }

        fn write(&self, name: &str, text: &str) {
            self.0.borrow_mut().insert(Path::new("/p").join(name), text.to_owned());
        }

        fn read(&self, name: &str) -> Result<RequirementsRecord> {
            let reader = |path: &Path| {
                self.0
                    .borrow()
                    .get(path)
                    .map(|text| text.as_bytes().to_vec())
                    .ok_or_else(|| std::io::ErrorKind::NotFound.into())
            };
            read(Path::new("/p"), &Path::new("/p").join(name), &reader)
        }
    }

    #[test]
    fn includes_change_the_digest_and_are_listed() {
        let files = Files::new(&[
            ("requirements.txt", "-r base/common.txt\n--constraint=c.txt # pins\nflask\n"),
            ("base/common.txt", "-r ../c.txt\nrequests\n"),
            ("c.txt", "requests==2.0\n"),
        ]);
        let before = files.read("requirements.txt").unwrap();
        let paths: Vec<&str> = before.includes.iter().map(|include| include.path.as_str()).collect();
        assert_eq!(paths, ["base/common.txt", "c.txt"]);
        assert!(!before.hash_pinned);
        files.write("c.txt", "requests==2.1\n");
        let after = files.read("requirements.txt").unwrap();
        assert_eq!(before.sha256, after.sha256);
        assert_ne!(before.content_digest(), after.content_digest());
    }

    #[test]
    fn a_missing_include_names_file_and_line() {
        let files = Files::new(&[("requirements.txt", "flask\n\n-r missing.txt\n")]);
        let error = files.read("requirements.txt").unwrap_err().to_string();
        assert!(error.starts_with("requirements.txt: line 3: included file"), "{error}");
    }

    #[test]
    fn hash_pins_are_detected_across_continuations() {
        let files = Files::new(&[("requirements.txt", "six==1.16.0 \\\n    --hash=sha256:abc\n")]);
        assert!(files.read("requirements.txt").unwrap().hash_pinned);
    }

    #[test]
    fn lock_files_are_never_inputs() {
        for name in ["requirements-api.lock.txt", "requirements.lock", "requirements-lock.txt"] {
            assert!(is_lock_file_name(name), "{name}");
        }
        assert!(!is_lock_file_name("requirements-api.txt"));
    }
}
