//! Paths and sizes as the tool shows and compares them: `.` and `..` resolved without touching the file
//! system, and `/`-separated names relative to the project root.

use std::path::{Component, Path, PathBuf};

/// Resolves `.` and `..` without touching the file system, so one file has one name.
pub fn lexical_normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if normalized.file_name().is_some() => {
                normalized.pop();
            }
            other => normalized.push(other),
        }
    }
    normalized
}

/// `path` as users see it: relative to `root` and `/`-separated when it is under it, else whole.
pub fn display_path(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(relative) => {
            relative.components().map(|part| part.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
        }
        Err(_) => path.display().to_string(),
    }
}

/// A size for people, in SI units as `ls -h --si` and download tools show them.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_has_one_name() {
        assert_eq!(lexical_normalize(Path::new("/p/a/./b/../c.txt")), Path::new("/p/a/c.txt"));
        assert_eq!(lexical_normalize(Path::new("../x")), Path::new("../x"));
        assert_eq!(display_path(Path::new("/p"), Path::new("/p/a/b.txt")), "a/b.txt");
        assert_eq!(display_path(Path::new("/p"), Path::new("/q/b.txt")), "/q/b.txt");
    }
}
