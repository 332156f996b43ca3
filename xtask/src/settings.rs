//! `wheelhouse.toml`: the project's settings, every key optional, unknown keys refused. Also where
//! the project root is.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::target::{Libc, Platform, PythonVersion, Target};

pub const SETTINGS_NAME: &str = "wheelhouse.toml";

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Output directory, relative to the project root. Default `wheelhouse`.
    pub wheelhouse: Option<PathBuf>,
    /// Requirements files, relative to the root. Default: discovered.
    pub requirements: Option<Vec<PathBuf>>,
    /// The interpreter that runs pip. Default `python3` on PATH.
    pub python_interpreter: Option<String>,
    /// Fetch pip, setuptools and wheel too. Default true.
    pub build_tools: Option<bool>,
    /// Build pure-Python wheels from sdists. Default false.
    pub build_sdists: Option<bool>,
    /// Targets resolved at once. Default: the number of CPUs.
    pub jobs: Option<usize>,
    pub index_url: Option<String>,
    /// Use only `find_links`, no index. Default false.
    pub no_index: Option<bool>,
    pub extra_index_urls: Option<Vec<String>>,
    pub find_links: Option<Vec<String>>,
    #[serde(default)]
    pub targets: TargetSettings,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    /// Container platforms (`linux/amd64`). Default: the host's.
    pub platforms: Option<Vec<String>>,
    /// Python `MAJOR.MINOR` versions. Default: the version of the interpreter that runs pip.
    pub python: Option<Vec<String>>,
    /// `glibc_2_28` (default) or `musl_1_2`.
    pub libc: Option<String>,
    /// Full versions the markers see (`python_full_version`), by `MAJOR.MINOR`. Default `X.Y.0`.
    #[serde(default)]
    pub full_versions: BTreeMap<String, String>,
}

impl Settings {
    /// Reads `wheelhouse.toml` from the root, or the defaults when there is none.
    pub fn load(root: &Path) -> Result<Settings> {
        let path = root.join(SETTINGS_NAME);
        if !path.exists() {
            return Ok(Settings::default());
        }
        let text = fs_err::read_to_string(&path)?;
        Self::parse(&text).with_context(|| format!("invalid settings in {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Settings> {
        Ok(toml::from_str(text)?)
    }
}

/// The wheelhouse directory: the flag (relative to the current directory), else the setting
/// (relative to the root), else `wheelhouse` in the root.
pub fn wheelhouse_dir(root: &Path, settings: &Settings, flag: Option<&Path>) -> Result<PathBuf> {
    Ok(match (flag, &settings.wheelhouse) {
        (Some(path), _) => std::env::current_dir()?.join(path),
        (None, Some(path)) => root.join(path),
        (None, None) => root.join("wheelhouse"),
    })
}

/// The cross product of platforms and Python versions, with the libc floor and full versions.
pub fn targets(
    platforms: &[String],
    pythons: &[String],
    libc: Option<&str>,
    full_versions: &BTreeMap<String, String>,
) -> Result<Vec<Target>> {
    let libc = match libc {
        Some(text) => text.parse()?,
        None => Libc::DEFAULT,
    };
    let mut targets = Vec::new();
    for platform in platforms {
        let platform: Platform = platform.parse()?;
        for python in pythons {
            let mut version = PythonVersion::parse(python)?;
            if let Some(full) = full_versions.get(&version.short()) {
                version = version.with_full_version(full)?;
            }
            let target = Target { platform, python: version, libc };
            target.platform_tags()?;
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    if targets.is_empty() {
        bail!("no targets: give at least one --platform and one --python");
    }
    Ok(targets)
}

/// The project root: `--project-dir` if given, else the nearest ancestor of the current directory
/// holding `wheelhouse.toml`, else the cargo workspace root when run as `cargo xtask`, else the
/// current directory.
pub fn project_root(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(explicit) = explicit {
        return fs_err::canonicalize(explicit).context("cannot use the --project-dir");
    }
    let current = std::env::current_dir().context("cannot read the current directory")?;
    if let Some(found) = current.ancestors().find(|dir| dir.join(SETTINGS_NAME).is_file()) {
        return Ok(found.to_path_buf());
    }
    // `cargo run` sets CARGO for the program it runs: then the workspace is the project.
    if std::env::var_os("CARGO").is_some() {
        if let Ok(metadata) = cargo_metadata::MetadataCommand::new().no_deps().exec() {
            return Ok(metadata.workspace_root.into_std_path_buf());
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_optional() {
        assert_eq!(Settings::parse("").unwrap(), Settings::default());
    }

    #[test]
    fn a_full_file_parses() {
        let settings = Settings::parse(
            r#"
            wheelhouse = "out"
            requirements = ["requirements-api.txt"]
            build_tools = false
            jobs = 2
            extra_index_urls = ["https://mirror.test/simple"]
            [targets]
            platforms = ["linux/amd64", "linux/arm64"]
            python = ["3.11", "3.12"]
            libc = "glibc_2_17"
            full_versions = { "3.11" = "3.11.9" }
            "#,
        )
        .unwrap();
        assert_eq!(settings.jobs, Some(2));
        let targets = targets(
            settings.targets.platforms.as_deref().unwrap(),
            settings.targets.python.as_deref().unwrap(),
            settings.targets.libc.as_deref(),
            &settings.targets.full_versions,
        )
        .unwrap();
        let ids: Vec<String> = targets.iter().map(Target::id).collect();
        assert_eq!(
            ids,
            [
                "linux-amd64-cp311-glibc_2_17",
                "linux-amd64-cp312-glibc_2_17",
                "linux-arm64-cp311-glibc_2_17",
                "linux-arm64-cp312-glibc_2_17"
            ]
        );
        assert_eq!(targets[0].python.full(), "3.11.9");
        assert_eq!(targets[1].python.full(), "3.12.0");
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = format!("{:#}", Settings::parse("wheelhose = \"x\"").unwrap_err());
        assert!(error.contains("unknown field `wheelhose`"), "{error}");
        let error = format!("{:#}", Settings::parse("[targets]\nplatform = []").unwrap_err());
        assert!(error.contains("unknown field `platform`"), "{error}");
    }
}
