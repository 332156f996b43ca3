//! `wheelhouse.toml` and the flags, merged: the one place a setting is looked up, a default
//! chosen, and a path resolved (flag paths against the current directory, settings paths against
//! the project root). Commands get the result, never the raw file.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use xshell::Shell;
use xtask::{
    model::{
        audit::Ignore,
        requirements::is_lock_file_name,
        resolution::Resolver,
        target::{cross_product, major_minor, Platform, Target},
    },
    parallel,
    tools::{
        self,
        pip::{IndexOptions, Python},
        signing::Verifier,
    },
    wheelhouse::layout,
};

use crate::flags::{audit::Audit, IndexFlags, SignatureFlags, TargetFlags};

pub const SETTINGS_NAME: &str = layout::SETTINGS_FILE_NAME;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Output directory, relative to the project root. Default `wheelhouse`.
    pub wheelhouse: Option<PathBuf>,
    /// Requirements files (or pyproject.toml, uv.lock, pylock.toml), relative to the root.
    /// Default: discovered.
    pub requirements: Option<Vec<PathBuf>>,
    /// Extras of the pyproject.toml and uv.lock inputs to include. Default: none.
    pub extras: Option<Vec<String>>,
    /// Dependency groups (PEP 735) of the pyproject.toml and uv.lock inputs. Default: none.
    pub groups: Option<Vec<String>>,
    /// The interpreter that runs pip. Default `python3` on PATH.
    pub python_interpreter: Option<String>,
    /// Fetch pip, setuptools and wheel too. Default true.
    pub build_tools: Option<bool>,
    /// Build pure-Python wheels from sdists. Default false.
    pub build_sdists: Option<bool>,
    /// CPU-bound work at once (hashing, sdist builds). Default: the number of CPUs.
    pub jobs: Option<usize>,
    /// Resolutions at once. Default: 8 x the number of CPUs, at most 16.
    pub resolve_jobs: Option<usize>,
    /// File transfers at once. Default: 16.
    pub downloads: Option<usize>,
    /// `pip` (default) or `uv`.
    pub resolver: Option<Resolver>,
    pub index_url: Option<String>,
    /// Use only `find_links`, no index. Default false.
    pub no_index: Option<bool>,
    pub extra_index_urls: Option<Vec<String>>,
    pub find_links: Option<Vec<String>>,
    #[serde(default)]
    pub targets: TargetSettings,
    #[serde(default)]
    pub audit: AuditSettings,
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

/// `[audit]`: the advisory database and the advisories the project accepts.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// The OSV database, a directory or `.zip`, relative to the root. Default: none (a flag then).
    pub database: Option<PathBuf>,
    /// Advisories accepted, each `{ id = "...", reason = "..." }`: a reason is required, so that
    /// the file says why. Default: none.
    #[serde(default)]
    pub ignore: Vec<AuditIgnore>,
    /// Days after which the database is reported old. Default 7.
    pub max_age_days: Option<u64>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditIgnore {
    pub id: String,
    pub reason: String,
}

/// The audit's inputs, merged.
pub struct AuditOptions {
    pub database: PathBuf,
    /// `--ignore` flags (no reason), then the settings' ignores (with theirs).
    pub ignores: Vec<Ignore>,
    pub max_age_days: u64,
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

/// The names `docker compose` itself looks for, in its order of preference.
pub const COMPOSE_FILE_NAMES: [&str; 4] = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];

/// The project a command works on: its root, its settings, and where the command was run from.
pub struct Project {
    pub root: PathBuf,
    /// Flag paths are relative to this directory, as a shell user expects.
    pub current_dir: PathBuf,
    pub settings: Settings,
}

impl Project {
    /// The project root: `--project-dir` if given, else the nearest ancestor of the current
    /// directory holding `wheelhouse.toml`, else the cargo workspace root when run as
    /// `cargo xtask`, else the current directory. Then its settings.
    pub fn load(explicit: Option<&Path>) -> Result<Project> {
        let current_dir = std::env::current_dir().context("cannot read the current directory")?;
        let root = match explicit {
            Some(explicit) => {
                fs_err::canonicalize(current_dir.join(explicit)).context("cannot use the --project-dir")?
            }
            None => match current_dir.ancestors().find(|dir| dir.join(SETTINGS_NAME).is_file()) {
                Some(found) => found.to_path_buf(),
                // `cargo run` sets CARGO for the program it runs: then the workspace is the project.
                None if std::env::var_os("CARGO").is_some() => {
                    tools::cargo::workspace_root().unwrap_or_else(|| current_dir.clone())
                }
                None => current_dir.clone(),
            },
        };
        let settings = Settings::load(&root)?;
        Ok(Project { root, current_dir, settings })
    }

    /// A path given on the command line.
    pub fn flag_path(&self, path: &Path) -> PathBuf {
        self.current_dir.join(path)
    }

    /// The wheelhouse directory: the flag, else the setting, else `wheelhouse` in the root.
    pub fn wheelhouse(&self, flag: Option<&Path>) -> PathBuf {
        match (flag, &self.settings.wheelhouse) {
            (Some(path), _) => self.flag_path(path),
            (None, Some(path)) => self.root.join(path),
            (None, None) => self.root.join("wheelhouse"),
        }
    }

    /// The archive: the flag, else `wheelhouse.tgz` beside `wheelhouse`.
    pub fn archive(&self, flag: Option<&Path>, wheelhouse: &Path) -> PathBuf {
        match flag {
            Some(path) => self.flag_path(path),
            None => layout::default_archive(wheelhouse),
        }
    }

    /// The compose file: the flag, else the first of [`COMPOSE_FILE_NAMES`] at the root, then in
    /// `compose/`; `None` when there is none.
    pub fn compose_file(&self, flag: Option<&Path>) -> Option<PathBuf> {
        if let Some(path) = flag {
            return Some(self.flag_path(path));
        }
        [self.root.clone(), self.root.join("compose")]
            .iter()
            .flat_map(|directory| COMPOSE_FILE_NAMES.iter().map(move |name| directory.join(name)))
            .find(|path| path.is_file())
    }

    /// The requirements files: the flags, else the setting, else those discovered.
    pub fn requirement_paths(&self, flags: &[PathBuf]) -> Result<Vec<PathBuf>> {
        if !flags.is_empty() {
            return Ok(flags.iter().map(|path| self.flag_path(path)).collect());
        }
        match &self.settings.requirements {
            Some(paths) => Ok(paths.iter().map(|path| self.root.join(path)).collect()),
            None => discover_requirements(&self.root),
        }
    }

    /// The interpreter that runs pip: the flag, else `python_interpreter`, else `python3`.
    pub fn find_python(&self, sh: &Shell, flag: Option<&str>) -> Result<Python> {
        let name = flag.or(self.settings.python_interpreter.as_deref()).unwrap_or("python3");
        Python::find(sh, name)
    }

    /// The targets: flags, else `[targets]` in wheelhouse.toml, else this host's platform and the
    /// interpreter's Python.
    pub fn targets(&self, flags: &TargetFlags, python: &Python) -> Result<Vec<Target>> {
        let settings = &self.settings.targets;
        let platforms: Vec<String> = if !flags.platforms.is_empty() {
            flags.platforms.clone()
        } else if let Some(platforms) = &settings.platforms {
            platforms.clone()
        } else {
            let host = Platform::host().context("cannot tell this host's platform: pass --platform")?;
            vec![host.docker_name().to_owned()]
        };
        let pythons: Vec<String> = if !flags.pythons.is_empty() {
            flags.pythons.clone()
        } else {
            settings.python.clone().unwrap_or_else(|| vec![python.major_minor()])
        };
        let mut full_versions = settings.full_versions.clone();
        for full in &flags.python_full_versions {
            full_versions.insert(major_minor(full), full.clone());
        }
        if let Some(orphan) = full_versions.keys().find(|short| !pythons.contains(short)) {
            bail!(
                "a full version is given for Python {orphan}, which is not a target (targets: {})\nhint: add --python {orphan}, or drop its full version",
                pythons.join(", ")
            );
        }
        let libc = flags.libc.as_deref().or(settings.libc.as_deref());
        Ok(cross_product(&platforms, &pythons, libc, &full_versions)?)
    }

    /// The target ids wheelhouse.toml asks for, when it names both platforms and Python versions
    /// (otherwise they depend on the host and the interpreter, which a check does not run).
    pub fn configured_target_ids(&self) -> Option<Vec<String>> {
        let settings = &self.settings.targets;
        let (Some(platforms), Some(pythons)) = (&settings.platforms, &settings.python) else { return None };
        let targets = cross_product(platforms, pythons, settings.libc.as_deref(), &settings.full_versions).ok()?;
        Some(targets.iter().map(Target::id).collect())
    }

    /// Where pip looks: flags, else wheelhouse.toml; pip's own configuration applies on top.
    pub fn index_options(&self, flags: &IndexFlags) -> IndexOptions {
        let settings = &self.settings;
        IndexOptions {
            isolated: false,
            no_index: flags.no_index || settings.no_index.unwrap_or(false),
            index_url: flags.index_url.clone().or(settings.index_url.clone()),
            extra_index_urls: if flags.extra_index_urls.is_empty() {
                settings.extra_index_urls.clone().unwrap_or_default()
            } else {
                flags.extra_index_urls.clone()
            },
            find_links: if flags.find_links.is_empty() {
                let links = settings.find_links.clone().unwrap_or_default();
                links.iter().map(|link| absolute_link(&self.root, link)).collect()
            } else {
                flags.find_links.iter().map(|link| absolute_link(&self.current_dir, link)).collect()
            },
        }
    }

    /// pip calls (or hashes) run at once: the flag, else `jobs`, else the number of CPUs.
    pub fn jobs(&self, flag: Option<usize>) -> usize {
        flag.or(self.settings.jobs).unwrap_or_else(parallel::default_jobs).max(1)
    }

    /// Resolutions at once: the flag, else `resolve_jobs`, else 8 per CPU up to 16. A resolution
    /// (a warm pip, see `tools::pip_workers`) spends most of its time waiting on the index.
    pub fn resolve_jobs(&self, flag: Option<usize>) -> usize {
        flag.or(self.settings.resolve_jobs).unwrap_or_else(|| (8 * parallel::default_jobs()).min(16)).max(1)
    }

    /// File transfers at once: the flag, else `downloads`, else 16 (the transfers wait on the network, not on the CPU; uv opens 50).
    pub fn downloads(&self, flag: Option<usize>) -> usize {
        flag.or(self.settings.downloads).unwrap_or(16).max(1)
    }

    /// What resolves: the flag, else `resolver`, else pip.
    pub fn resolver(&self, flag: Option<Resolver>) -> Resolver {
        flag.or(self.settings.resolver).unwrap_or_default()
    }

    pub fn build_tools(&self, no_build_tools_flag: bool) -> bool {
        !no_build_tools_flag && self.settings.build_tools.unwrap_or(true)
    }

    /// The extras of pyproject.toml and uv.lock inputs: the flags, else the settings.
    pub fn extras(&self, flags: &[String]) -> Vec<String> {
        if flags.is_empty() {
            self.settings.extras.clone().unwrap_or_default()
        } else {
            flags.to_vec()
        }
    }

    /// The dependency groups of pyproject.toml and uv.lock inputs: the flags, else the settings.
    pub fn groups(&self, flags: &[String]) -> Vec<String> {
        if flags.is_empty() {
            self.settings.groups.clone().unwrap_or_default()
        } else {
            flags.to_vec()
        }
    }

    pub fn build_sdists(&self, flag: bool) -> bool {
        flag || self.settings.build_sdists.unwrap_or(false)
    }

    /// The audit's database (the flag, else `[audit] database`), its ignores (the flags and the
    /// settings both apply, as pip-audit's do) and the age past which it is old (the flag, else
    /// `max_age_days`, else 7).
    pub fn audit(&self, flags: &Audit) -> Result<AuditOptions> {
        let settings = &self.settings.audit;
        let database = match (&flags.database, &settings.database) {
            (Some(path), _) => self.flag_path(path),
            (None, Some(path)) => self.root.join(path),
            (None, None) => bail!(
                "no advisory database given\nhint: pass --database PATH (a directory of OSV records, or the PyPI .zip of the OSV project), or set `database` under [audit] in {SETTINGS_NAME}"
            ),
        };
        let mut ignores: Vec<Ignore> = flags.ignores.iter().map(|id| Ignore { id: id.clone(), reason: None }).collect();
        for entry in &settings.ignore {
            if entry.id.trim().is_empty() || entry.reason.trim().is_empty() {
                bail!(
                    "an [audit] ignore in {SETTINGS_NAME} has an empty id or reason (id `{}`)\nhint: write `{{ id = \"GHSA-...\", reason = \"why it is accepted\" }}`",
                    xtask::model::untrusted::shown(&entry.id)
                );
            }
            ignores.push(Ignore { id: entry.id.clone(), reason: Some(entry.reason.clone()) });
        }
        Ok(AuditOptions { database, ignores, max_age_days: flags.max_age_days.or(settings.max_age_days).unwrap_or(7) })
    }

    /// How verify and unpack check a signature: `None` when none is asked for.
    pub fn verifier(&self, flags: &SignatureFlags) -> Result<Option<Verifier>> {
        match (&flags.keyring, &flags.allowed_signers, &flags.identity) {
            (Some(keyring), None, _) => Ok(Some(Verifier::Gpg { keyring: self.flag_path(keyring) })),
            (None, Some(allowed), Some(identity)) => {
                Ok(Some(Verifier::Ssh { allowed_signers: self.flag_path(allowed), identity: identity.clone() }))
            }
            (Some(_), Some(_), _) => bail!("give --keyring (GnuPG) or --allowed-signers (SSH), not both"),
            (None, None, _) if flags.required => bail!(
                "--signature needs a key to check against\nhint: --keyring FILE (GnuPG public keys), or --allowed-signers FILE --identity ID (SSH)"
            ),
            _ => Ok(None),
        }
    }
}

/// Files a project's requirements live in when none are configured: `requirements*.txt` at the
/// root and `requirements/*.txt`, never lock files (which the `lock` command writes beside them).
pub fn discover_requirements(root: &Path) -> Result<Vec<PathBuf>> {
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

/// A local `--find-links` directory, made absolute; URLs are left alone.
fn absolute_link(base: &Path, link: &str) -> String {
    if link.contains("://") {
        link.to_owned()
    } else {
        base.join(link).display().to_string()
    }
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
            [audit]
            database = "advisories/osv-pypi.zip"
            max_age_days = 14
            ignore = [{ id = "GHSA-aaaa-bbbb-cccc", reason = "not reachable: we never parse untrusted input" }]
            "#,
        )
        .unwrap();
        assert_eq!(settings.jobs, Some(2));
        let targets = cross_product(
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
        assert_eq!(settings.audit.max_age_days, Some(14));
        assert_eq!(settings.audit.ignore[0].reason, "not reachable: we never parse untrusted input");
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = format!("{:#}", Settings::parse("wheelhose = \"x\"").unwrap_err());
        assert!(error.contains("unknown field `wheelhose`"), "{error}");
        let error = format!("{:#}", Settings::parse("[targets]\nplatform = []").unwrap_err());
        assert!(error.contains("unknown field `platform`"), "{error}");
        let error = format!("{:#}", Settings::parse("[audit]\nignore = [{ id = \"GHSA-x\" }]").unwrap_err());
        assert!(error.contains("missing field `reason`"), "{error}");
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
            let path = dir.path().join(name);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(&path, "x\n").unwrap();
        }
        let found: Vec<String> = discover_requirements(dir.path())
            .unwrap()
            .iter()
            .map(|path| xtask::model::paths::display_path(dir.path(), path))
            .collect();
        assert_eq!(found, ["requirements-api.txt", "requirements.txt", "requirements/dev.txt"]);
    }
}
