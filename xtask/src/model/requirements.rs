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
    let path = lexical_normalize(path);
    check_inside(root, &path, None)?;
    let mut walk =
        Walk { root, read_file, includes: Vec::new(), visited: vec![path.clone()], chain: vec![path.clone()] };
    walk.includes_of(&path, &text)?;
    let hash_pinned = logical_lines(&text).any(|(_, line)| line.contains("--hash"));
    Ok(RequirementsRecord {
        path: display_path(root, &path),
        sha256: hex(&Sha256::digest(&bytes)),
        includes: walk.includes,
        hash_pinned,
    })
}

/// What a path given as requirements holds, told from its name and, for another `.toml`, from
/// its first keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// pip's requirements format.
    Requirements,
    /// A PEP 751 lock: `pylock.toml` or `pylock.NAME.toml`.
    Pylock,
    UvLock,
    Pyproject,
    /// A `.toml` file that is none of these.
    UnknownToml,
}

impl InputKind {
    pub fn of(path: &Path, text: &str) -> InputKind {
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        if name == "pylock.toml" || (name.starts_with("pylock.") && name.ends_with(".toml")) {
            return InputKind::Pylock;
        }
        match name.as_str() {
            "uv.lock" => return InputKind::UvLock,
            "pyproject.toml" => return InputKind::Pyproject,
            _ => {}
        }
        let keys = || text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#'));
        if name.ends_with(".toml") || name.ends_with(".lock") {
            if keys().any(|line| line.starts_with("lock-version")) {
                return InputKind::Pylock;
            }
            if keys().any(|line| line == "[project]" || line == "[build-system]") {
                return InputKind::Pyproject;
            }
            if keys().any(|line| line == "[[package]]") && keys().any(|line| line.starts_with("version =")) {
                return InputKind::UvLock;
            }
            if name.ends_with(".toml") {
                return InputKind::UnknownToml;
            }
        }
        InputKind::Requirements
    }
}

/// The manifest names requirements files relative to the project root, and refuses any other
/// name when it is read back (it may come from anywhere): a file outside the root is refused here,
/// before anything is written.
fn check_inside(root: &Path, path: &Path, included_by: Option<&str>) -> Result<()> {
    if path.starts_with(lexical_normalize(root)) {
        return Ok(());
    }
    let how = match included_by {
        Some(parent) => format!(" (included by {parent})"),
        None => String::new(),
    };
    anyhow::bail!(
        "the requirements file {}{how} is outside the project root {}: the manifest records requirements files relative to the root\nhint: copy it into the project, or run with -C DIR at a directory that holds both",
        path.display(),
        root.display()
    )
}

/// The requirement lines of a requirements file and of the files it includes with `-r` (not
/// `-c`: a constraint requests nothing), in pip's order, without options or `--hash` pins: what
/// pip's report marks `requested`. Only the uv resolver needs them; pip reads the file itself.
pub fn requested_lines(path: &Path, read_file: ReadFile<'_>) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut visited = Vec::new();
    requested_lines_of(&lexical_normalize(path), read_file, &mut visited, &mut lines)?;
    Ok(lines)
}

fn requested_lines_of(
    path: &Path,
    read_file: ReadFile<'_>,
    visited: &mut Vec<PathBuf>,
    lines: &mut Vec<String>,
) -> Result<()> {
    if visited.iter().any(|seen| seen == path) {
        return Ok(());
    }
    visited.push(path.to_path_buf());
    let bytes = read_file(path).with_context(|| format!("cannot read {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    for (_, line) in logical_lines(&String::from_utf8_lossy(&bytes)) {
        let is_constraint = line.starts_with("-c") || line.starts_with("--constraint");
        match include_target(&line) {
            Some(target) if !is_constraint && !target.contains("://") => {
                requested_lines_of(&lexical_normalize(&base.join(target)), read_file, visited, lines)?;
            }
            Some(_) => {}
            None if line.starts_with('-') => {}
            None => {
                let requirement = line.split(" --").next().unwrap_or(&line).trim();
                lines.push(requirement.to_owned());
            }
        }
    }
    Ok(())
}

/// The walk through `-r`/`-c` includes: each file read once, and the chain of includes that led
/// to the current one, to name a loop.
struct Walk<'a> {
    root: &'a Path,
    read_file: ReadFile<'a>,
    includes: Vec<IncludedFile>,
    visited: Vec<PathBuf>,
    chain: Vec<PathBuf>,
}

impl Walk<'_> {
    fn includes_of(&mut self, path: &Path, text: &str) -> Result<()> {
        let base = path.parent().unwrap_or(Path::new("."));
        for (line_number, line) in logical_lines(text) {
            let Some(target) = include_target(&line) else { continue };
            // pip also accepts URLs here; those are fetched by pip and not fingerprinted.
            if target.contains("://") {
                continue;
            }
            let included = lexical_normalize(&base.join(target));
            if self.chain.contains(&included) {
                // pip would follow it until Python's recursion limit.
                let mut names: Vec<String> = self.chain.iter().map(|file| display_path(self.root, file)).collect();
                let start = self.chain.iter().position(|file| *file == included).unwrap_or(0);
                names.drain(..start);
                names.push(display_path(self.root, &included));
                bail!(
                    "{}: line {line_number}: an include loop: {}\nhint: remove one of these -r/-c lines",
                    display_path(self.root, path),
                    names.join(" -> ")
                );
            }
            if self.visited.contains(&included) {
                continue;
            }
            check_inside(self.root, &included, Some(&format!("{} line {line_number}", display_path(self.root, path))))?;
            let Ok(bytes) = (self.read_file)(&included) else {
                bail!(
                    "{}: line {}: included file `{}` cannot be read",
                    display_path(self.root, path),
                    line_number,
                    included.display()
                );
            };
            self.visited.push(included.clone());
            self.includes
                .push(IncludedFile { path: display_path(self.root, &included), sha256: hex(&Sha256::digest(&bytes)) });
            self.chain.push(included.clone());
            self.includes_of(&included, &String::from_utf8_lossy(&bytes))?;
            self.chain.pop();
        }
        Ok(())
    }
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
    #[test]
    fn the_kind_of_an_input_comes_from_its_name_then_its_keys() {
        use super::InputKind::{self, *};
        let check = |name: &str, text: &str, expected: InputKind| {
            assert_eq!(InputKind::of(std::path::Path::new(name), text), expected, "{name}");
        };
        check("requirements.txt", "flask\n", Requirements);
        check("app/pylock.toml", "", Pylock);
        check("pylock.api.toml", "", Pylock);
        check("uv.lock", "", UvLock);
        check("pyproject.toml", "", Pyproject);
        check("locks/api.toml", "# made by hand\nlock-version = \"1.0\"\n", Pylock);
        check("deps.toml", "[project]\nname = \"x\"\n", Pyproject);
        check("other.lock", "version = 1\n\n[[package]]\nname = \"x\"\n", UvLock);
        check("requirements.lock", "flask==3.0\n", Requirements);
        check("settings.toml", "[tool]\nx = 1\n", UnknownToml);
    }

    #[test]
    fn a_file_outside_the_root_is_refused_before_anything_is_written() {
        let read = |_: &std::path::Path| -> std::io::Result<Vec<u8>> { Ok(b"-r ../../shared/base.txt\n".to_vec()) };
        let root = std::path::Path::new("/work/project");
        let error = super::read(root, std::path::Path::new("/elsewhere/requirements.txt"), &read).unwrap_err();
        assert!(
            format!("{error:#}").contains("/elsewhere/requirements.txt is outside the project root /work/project"),
            "{error:#}"
        );
        let error = super::read(root, std::path::Path::new("/work/project/app/requirements.txt"), &read).unwrap_err();
        assert!(
            format!("{error:#}").contains("/shared/base.txt (included by app/requirements.txt line 1) is outside"),
            "{error:#}"
        );
    }

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
    fn requested_lines_follow_requirement_includes_but_not_constraints() {
        let files = Files::new(&[
            (
                "requirements.txt",
                "--index-url x\n-r base/common.txt\n-c c.txt\nflask[async]>=3 \\\n    --hash=sha256:00\n",
            ),
            ("base/common.txt", "requests; python_version > '3'  # web\n-r ../requirements.txt\n"),
            ("c.txt", "requests==2.0\n"),
        ]);
        let reader = |path: &Path| {
            files
                .0
                .borrow()
                .get(path)
                .map(|text| text.as_bytes().to_vec())
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        };
        let lines = requested_lines(&Path::new("/p").join("requirements.txt"), &reader).unwrap();
        assert_eq!(lines, ["requests; python_version > '3'", "flask[async]>=3"]);
    }

    #[test]
    fn a_missing_include_names_file_and_line() {
        let files = Files::new(&[("requirements.txt", "flask\n\n-r missing.txt\n")]);
        let error = files.read("requirements.txt").unwrap_err().to_string();
        assert!(error.starts_with("requirements.txt: line 3: included file"), "{error}");
    }

    #[test]
    fn an_include_loop_is_named_and_a_diamond_is_not_a_loop() {
        let files = Files::new(&[
            ("requirements.txt", "-r a.txt\n"),
            ("a.txt", "flask\n-r sub/b.txt\n"),
            ("sub/b.txt", "-c ../c.txt\n-r ../a.txt\n"),
            ("c.txt", "flask<4\n"),
        ]);
        let error = files.read("requirements.txt").unwrap_err().to_string();
        assert_eq!(
            error,
            "sub/b.txt: line 2: an include loop: a.txt -> sub/b.txt -> a.txt\nhint: remove one of these -r/-c lines"
        );
        let diamond = Files::new(&[
            ("requirements.txt", "-r a.txt\n-r b.txt\n"),
            ("a.txt", "-c c.txt\n"),
            ("b.txt", "-c c.txt\n"),
            ("c.txt", "flask<4\n"),
        ]);
        let paths: Vec<String> =
            diamond.read("requirements.txt").unwrap().includes.iter().map(|include| include.path.clone()).collect();
        assert_eq!(paths, ["a.txt", "c.txt", "b.txt"]);
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
