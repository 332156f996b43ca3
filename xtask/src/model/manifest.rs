//! The wheelhouse manifest (`manifest.json`, format documented in docs/manifest.md) and the
//! `SHA256SUMS` file beside it. Pure data: no process, no network.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{requirements::RequirementsRecord, target::TargetRecord};

pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_NAME: &str = "manifest.json";
/// The directory of the index pages `index` writes into a wheelhouse (`model::simple_index`).
pub const INDEX_DIR: &str = "simple";
pub const SHA256SUMS_NAME: &str = "SHA256SUMS";
/// `sign --gpg`: an armored detached signature of `manifest.json`.
pub const GPG_SIGNATURE_NAME: &str = "manifest.json.asc";
/// `sign --ssh-key`: an `ssh-keygen -Y sign` signature of `manifest.json`.
pub const SSH_SIGNATURE_NAME: &str = "manifest.json.sshsig";
/// `sbom`'s default output.
pub const SBOM_NAME: &str = "sbom.cdx.json";

/// Names a wheelhouse may hold besides distributions, each written by a command of this tool.
/// Signatures and the SBOM are written after create; a new wheelhouse drops them because they
/// describe the old manifest.
pub const RESERVED_NAMES: [&str; 5] =
    [MANIFEST_NAME, SHA256SUMS_NAME, GPG_SIGNATURE_NAME, SSH_SIGNATURE_NAME, SBOM_NAME];

/// The label of the resolution that fetches pip, setuptools and wheel (not a file on disk).
pub const BUILD_TOOLS_GROUP: &str = "<build-tools>";

/// pip, setuptools and wheel: what a `pip install` in the image (and a `pip wheel` of an sdist)
/// needs, resolved in their own pip call so that a hash-pinned requirements file stays apart.
pub const BUILD_TOOLS: [&str; 3] = ["pip", "setuptools", "wheel"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    pub tool: ToolInfo,
    /// Digest of every input (requirements bytes, targets, index settings, tool version): when it
    /// is unchanged, a re-run has nothing to do.
    pub inputs_digest: String,
    pub index: IndexSettings,
    pub targets: Vec<TargetRecord>,
    pub requirements: Vec<RequirementsRecord>,
    pub resolutions: Vec<Resolution>,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    pub pip_version: String,
    pub python_version: String,
}

/// Where pip looked, credentials redacted. pip's own configuration (pip.conf, `PIP_*`) applies
/// on top and is not recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSettings {
    #[serde(default)]
    pub no_index: bool,
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    pub find_links: Vec<String>,
    pub build_tools: bool,
    pub build_sdists: bool,
}

/// What pip resolved for one requirements file (or the build tools) on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// A requirements path as in `requirements`, or [`BUILD_TOOLS_GROUP`].
    pub requirements: String,
    pub target: String,
    /// Digest of this resolution's inputs; equal keys mean it can be reused as is.
    pub key: String,
    pub packages: Vec<ResolvedPackage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedPackage {
    /// PEP 503 normalized name.
    pub name: String,
    pub version: String,
    pub filename: String,
    /// Named in the requirements file itself, not only pulled in by another package.
    pub direct: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<String>,
    /// Normalized names of the packages in this resolution that this one depends on, as the
    /// target's markers select them.
    pub dependencies: Vec<String>,
    /// `Requires-Dist` from the distribution's metadata, as published.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_dist: Vec<String>,
    /// Where pip found the file, credentials redacted.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub filename: String,
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub size: u64,
    /// Requirements paths (or [`BUILD_TOOLS_GROUP`]) whose resolution includes this file.
    pub requirements: BTreeSet<String>,
    pub targets: BTreeSet<String>,
    /// `index` (fetched by pip) or `sdist-build` (built here by `pip wheel --build-sdists`).
    pub origin: String,
}

impl Manifest {
    /// Pretty, in struct order, lists sorted where built, newline-terminated: the same inputs give
    /// the same bytes.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a manifest always serializes");
        text.push('\n');
        text
    }

    pub fn from_json(text: &str) -> Result<Manifest, serde_json::Error> {
        #[derive(Deserialize)]
        struct Versioned {
            format_version: u32,
        }
        let versioned: Versioned = serde_json::from_str(text)?;
        if versioned.format_version != FORMAT_VERSION {
            return Err(serde::de::Error::custom(format!(
                "manifest format_version {} is not supported (this tool reads {FORMAT_VERSION})",
                versioned.format_version
            )));
        }
        let manifest: Manifest = serde_json::from_str(text)?;
        manifest.check_names().map_err(serde::de::Error::custom)?;
        Ok(manifest)
    }

    /// Every name a manifest gives that the tool joins to a path or prints: distribution file
    /// names are plain file names (the rule archive entries follow), requirements paths stay
    /// inside the project, and package names, versions and target ids hold no control
    /// characters. A manifest may come from anywhere (an archive carried in): a name like
    /// `../../x` or `/etc/hostname` must never reach the file system.
    fn check_names(&self) -> Result<(), String> {
        let entries = self.files.iter().map(|entry| &entry.filename);
        let resolved = self.resolutions.iter().flat_map(|resolution| resolution.packages.iter());
        for filename in entries.chain(resolved.clone().map(|package| &package.filename)) {
            // `simple` and `*.metadata` are the index's (`index` writes them into the wheelhouse).
            let of_index = filename == INDEX_DIR || filename.ends_with(".metadata");
            if !is_plain_file_name(filename) || RESERVED_NAMES.contains(&filename.as_str()) || of_index {
                return Err(format!("the file name {} is not a plain distribution file name", quoted(filename)));
            }
        }
        let packages = self.files.iter().map(|entry| (&entry.name, &entry.version));
        for (name, version) in packages.chain(resolved.map(|package| (&package.name, &package.version))) {
            // PEP 508: letters and digits, with `.`, `_` and `-` inside; at most 100 characters,
            // as the index pages of a project are named by it.
            let name_ok = !name.is_empty()
                && name.len() <= 100
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.ends_with(|c: char| c.is_ascii_alphanumeric());
            let version_ok =
                !version.is_empty() && version.chars().all(|c| c.is_ascii_alphanumeric() || ".+!_-".contains(c));
            if !name_ok || !version_ok {
                return Err(format!(
                    "the package {} {} is not a valid name and version",
                    quoted(name),
                    quoted(version)
                ));
            }
        }
        let includes = self.requirements.iter().flat_map(|record| record.includes.iter().map(|include| &include.path));
        let groups = self
            .resolutions
            .iter()
            .map(|resolution| &resolution.requirements)
            .filter(|group| *group != BUILD_TOOLS_GROUP);
        for path in self.requirements.iter().map(|record| &record.path).chain(includes).chain(groups) {
            if !is_project_path(path) {
                return Err(format!(
                    "the requirements path {} is not a relative path inside the project",
                    quoted(path)
                ));
            }
        }
        for id in self
            .targets
            .iter()
            .map(|target| &target.id)
            .chain(self.resolutions.iter().map(|resolution| &resolution.target))
        {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return Err(format!("the target id {} is not valid", quoted(id)));
            }
        }
        Ok(())
    }

    pub fn file(&self, filename: &str) -> Option<&FileEntry> {
        self.files.iter().find(|entry| entry.filename == filename)
    }

    pub fn resolution(&self, requirements: &str, target: &str) -> Option<&Resolution> {
        self.resolutions
            .iter()
            .find(|resolution| resolution.requirements == requirements && resolution.target == target)
    }

    /// `SHA256SUMS` in the format `sha256sum --check` reads: `<hex><space><space><name>`, binary
    /// mode not marked, sorted by name. Covers every distribution and the manifest itself.
    pub fn sha256sums(&self, manifest_sha256: &str) -> String {
        let mut lines: Vec<(String, String)> =
            self.files.iter().map(|entry| (entry.filename.clone(), entry.sha256.clone())).collect();
        lines.push((MANIFEST_NAME.to_owned(), manifest_sha256.to_owned()));
        lines.sort();
        lines.iter().map(|(name, sha256)| format!("{sha256}  {name}\n")).collect()
    }
}

#[cfg(test)]
impl FileEntry {
    /// A file of package `x` 1, one byte, of no requirements or target, for the model's tests.
    pub fn for_tests(filename: &str, sha256: &str) -> FileEntry {
        FileEntry {
            filename: filename.to_owned(),
            name: "x".to_owned(),
            version: "1".to_owned(),
            sha256: sha256.to_owned(),
            size: 1,
            requirements: BTreeSet::new(),
            targets: BTreeSet::new(),
            origin: "index".to_owned(),
        }
    }
}

#[cfg(test)]
impl Manifest {
    /// A manifest that holds nothing, for the model's tests to fill with struct update syntax.
    pub fn empty_for_tests() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            tool: ToolInfo {
                name: "xtask".to_owned(),
                version: "0".to_owned(),
                pip_version: "23.2.1".to_owned(),
                python_version: "3.11.7".to_owned(),
            },
            inputs_digest: "d".to_owned(),
            index: IndexSettings::default(),
            targets: vec![],
            requirements: vec![],
            resolutions: vec![],
            files: vec![],
        }
    }
}

/// A name that is one file in one directory: not empty, not `.` or `..`, no separator, no
/// control character, at most 255 bytes (the usual file-name limit).
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

/// A `/`-separated path relative to the project root that stays inside it.
fn is_project_path(path: &str) -> bool {
    !path.is_empty() && path.len() <= 4096 && !path.starts_with('/') && path.split('/').all(is_plain_file_name)
}

/// An untrusted name in backquotes, control characters escaped.
fn quoted(text: &str) -> String {
    format!("`{}`", crate::model::untrusted::shown(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(filename: &str, sha256: &str) -> FileEntry {
        FileEntry::for_tests(filename, sha256)
    }

    fn manifest(files: Vec<FileEntry>) -> Manifest {
        Manifest { files, ..Manifest::empty_for_tests() }
    }

    #[test]
    fn sha256sums_is_sorted_and_covers_the_manifest() {
        let sums = manifest(vec![entry("b-1-py3-none-any.whl", "bb"), entry("a-1.tar.gz", "aa")]).sha256sums("mm");
        assert_eq!(sums, "aa  a-1.tar.gz\nbb  b-1-py3-none-any.whl\nmm  manifest.json\n");
    }

    #[test]
    fn names_that_would_leave_the_wheelhouse_are_refused_when_parsed() {
        let check = |filename: &str, expected: &str| {
            let text = manifest(vec![entry(filename, "aa")]).to_json();
            let error = Manifest::from_json(&text).unwrap_err().to_string();
            assert!(error.contains(expected), "{filename:?}: {error}");
        };
        check("../../x", "the file name `../../x` is not a plain distribution file name");
        check("/etc/hostname", "`/etc/hostname` is not a plain");
        check("a\u{1b}[2J.whl", "the file name `a\\x1b[2J.whl`");
        check("..", "is not a plain");
        check("manifest.json", "is not a plain");
        let mut hostile = manifest(vec![entry("a-1.tar.gz", "aa")]);
        hostile.requirements.push(crate::model::requirements::RequirementsRecord {
            path: "../outside/requirements.txt".to_owned(),
            sha256: "s".to_owned(),
            includes: vec![],
            hash_pinned: false,
        });
        let error = Manifest::from_json(&hostile.to_json()).unwrap_err().to_string();
        assert!(
            error.contains(
                "the requirements path `../outside/requirements.txt` is not a relative path inside the project"
            ),
            "{error}"
        );
    }

    #[test]
    fn round_trips_and_refuses_other_format_versions() {
        let original = manifest(vec![entry("a-1.tar.gz", "aa")]);
        assert_eq!(Manifest::from_json(&original.to_json()).unwrap(), original);
        let future = original.to_json().replace("\"format_version\": 1", "\"format_version\": 99");
        let error = Manifest::from_json(&future).unwrap_err().to_string();
        assert!(error.contains("format_version 99 is not supported"), "{error}");
        let unknown_key = original.to_json().replacen('{', "{\"surprise\": 1,", 1);
        assert!(Manifest::from_json(&unknown_key).unwrap_err().to_string().contains("surprise"));
    }
}
