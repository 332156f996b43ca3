//! The plan of a `create-wheelhouse` run: settings and flags merged, the interpreter found, the
//! targets and requirements read, and one keyed job per (requirements file, target).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use xshell::Shell;

use super::fetch;
use crate::{
    digest::hex,
    flags::{CreateWheelhouse, IndexFlags, TargetFlags},
    manifest::{IndexSettings, BUILD_TOOLS_GROUP, FORMAT_VERSION},
    parallel,
    pip::{IndexOptions, Python},
    redact::redact_url,
    requirements::{self, RequirementsRecord},
    settings::{self, Settings},
    target::{Platform, Target, TargetRecord},
};

/// Everything decided before pip runs.
pub struct Plan {
    pub root: PathBuf,
    pub wheelhouse: PathBuf,
    pub python: Python,
    pub targets: Vec<Target>,
    pub target_records: Vec<TargetRecord>,
    pub requirements: Vec<RequirementsRecord>,
    pub index: IndexOptions,
    pub index_settings: IndexSettings,
    pub jobs_to_run: Vec<Job>,
    pub inputs_digest: String,
    pub jobs: usize,
    pub build_sdists: bool,
}

/// One resolution to make: a requirements file (or the build tools) on one target.
pub struct Job {
    pub group: String,
    pub source: JobSource,
    pub target: usize,
    pub key: String,
}

pub enum JobSource {
    File(PathBuf),
    BuildTools,
}

pub fn plan(sh: &Shell, root: &Path, settings: &Settings, args: &CreateWheelhouse) -> Result<Plan> {
    let current = std::env::current_dir()?;
    let from_flag = |path: &PathBuf| current.join(path);
    let from_settings = |path: &PathBuf| root.join(path);
    let wheelhouse = settings::wheelhouse_dir(root, settings, args.wheelhouse.as_deref())?;
    let requirement_paths: Vec<PathBuf> = if !args.requirements.is_empty() {
        args.requirements.iter().map(from_flag).collect()
    } else if let Some(paths) = &settings.requirements {
        paths.iter().map(from_settings).collect()
    } else {
        requirements::discover(root)?
    };
    let build_tools = !args.no_build_tools && settings.build_tools.unwrap_or(true);
    if requirement_paths.is_empty() && !build_tools {
        bail!(
            "no requirements files in {}\nhint: pass -r FILE, or list them under `requirements` in wheelhouse.toml",
            root.display()
        );
    }

    let python = find_python(sh, settings, &args.targets)?;
    let targets = targets(settings, &args.targets, &python)?;
    let target_records = targets.iter().map(Target::record).collect::<Result<Vec<_>, _>>()?;

    let mut requirements = Vec::new();
    for path in &requirement_paths {
        let record = requirements::read(root, path)
            .with_context(|| format!("cannot use requirements file {}", path.display()))?;
        requirements.push(record);
    }

    let index = index_options(root, settings, &args.index)?;
    let build_sdists = args.build_sdists || settings.build_sdists.unwrap_or(false);
    let index_settings = IndexSettings {
        no_index: index.no_index,
        index_url: index.index_url.as_deref().map(redact_url),
        extra_index_urls: index.extra_index_urls.iter().map(|url| redact_url(url)).collect(),
        find_links: index.find_links.iter().map(|link| redact_url(link)).collect(),
        build_tools,
        build_sdists,
    };

    let mut groups: Vec<(String, String, JobSource)> = requirements
        .iter()
        .zip(&requirement_paths)
        .map(|(record, path)| (record.path.clone(), record.content_digest(), JobSource::File(path.clone())))
        .collect();
    if build_tools {
        groups.push((BUILD_TOOLS_GROUP.to_owned(), fetch::BUILD_TOOLS.join(" "), JobSource::BuildTools));
    }
    let index_json = serde_json::to_string(&index_settings)?;
    let mut jobs_to_run = Vec::new();
    for (group, content_digest, source) in groups {
        for (target_index, record) in target_records.iter().enumerate() {
            let key = digest(&[
                &FORMAT_VERSION.to_string(),
                env!("CARGO_PKG_VERSION"),
                &group,
                &content_digest,
                &serde_json::to_string(record)?,
                &index_json,
                &find_links_listing(&index.find_links),
            ]);
            let source = match &source {
                JobSource::File(path) => JobSource::File(path.clone()),
                JobSource::BuildTools => JobSource::BuildTools,
            };
            jobs_to_run.push(Job { group: group.clone(), source, target: target_index, key });
        }
    }
    let keys: Vec<&str> = jobs_to_run.iter().map(|job| job.key.as_str()).collect();
    let inputs_digest = digest(&keys);
    let jobs = args.jobs.or(settings.jobs).unwrap_or_else(parallel::default_jobs).max(1);
    Ok(Plan {
        root: root.to_path_buf(),
        wheelhouse,
        python,
        targets,
        target_records,
        requirements,
        index,
        index_settings,
        jobs_to_run,
        inputs_digest,
        jobs,
        build_sdists,
    })
}

/// The interpreter that runs pip: the flag, else `python_interpreter`, else `python3`.
pub fn find_python(sh: &Shell, settings: &Settings, flags: &TargetFlags) -> Result<Python> {
    let name = flags.python.clone().or(settings.python_interpreter.clone()).unwrap_or_else(|| "python3".to_owned());
    Python::find(sh, &name)
}

/// The targets: flags, else `[targets]` in wheelhouse.toml, else this host's platform and the
/// interpreter's Python.
pub fn targets(settings: &Settings, flags: &TargetFlags, python: &Python) -> Result<Vec<Target>> {
    let platforms: Vec<String> = if !flags.platforms.is_empty() {
        flags.platforms.clone()
    } else if let Some(platforms) = &settings.targets.platforms {
        platforms.clone()
    } else {
        let host = Platform::host().context("cannot tell this host's platform: pass --platform")?;
        vec![host.docker_name().to_owned()]
    };
    let pythons: Vec<String> = if !flags.pythons.is_empty() {
        flags.pythons.clone()
    } else {
        settings.targets.python.clone().unwrap_or_else(|| vec![python.major_minor()])
    };
    let mut full_versions = settings.targets.full_versions.clone();
    for full in &flags.python_full_versions {
        let short = full.split('.').take(2).collect::<Vec<_>>().join(".");
        full_versions.insert(short, full.clone());
    }
    if let Some(orphan) = full_versions.keys().find(|short| !pythons.contains(short)) {
        bail!(
            "a full version is given for Python {orphan}, which is not a target (targets: {})\nhint: add --python {orphan}, or drop its full version",
            pythons.join(", ")
        );
    }
    let libc = flags.libc.as_deref().or(settings.targets.libc.as_deref());
    settings::targets(&platforms, &pythons, libc, &full_versions)
}

/// Where pip looks: flags, else wheelhouse.toml; pip's own configuration applies on top.
pub fn index_options(root: &Path, settings: &Settings, flags: &IndexFlags) -> Result<IndexOptions> {
    let current = std::env::current_dir()?;
    Ok(IndexOptions {
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
            links.iter().map(|link| absolute_link(root, link)).collect()
        } else {
            flags.find_links.iter().map(|link| absolute_link(&current, link)).collect()
        },
    })
}

/// A local `--find-links` directory, made absolute; URLs are left alone.
fn absolute_link(current: &Path, link: &str) -> String {
    if link.contains("://") {
        link.to_owned()
    } else {
        current.join(link).display().to_string()
    }
}

/// The names and sizes in local find-links directories: new files there can change a resolution.
fn find_links_listing(find_links: &[String]) -> String {
    let mut listing = Vec::new();
    for link in find_links {
        let path = Path::new(link.strip_prefix("file://").unwrap_or(link));
        let Ok(entries) = std::fs::read_dir(path) else { continue };
        for entry in entries.flatten() {
            let size = entry.metadata().map(|metadata| metadata.len()).unwrap_or(0);
            listing.push(format!("{}:{size}", entry.file_name().to_string_lossy()));
        }
    }
    listing.sort();
    listing.join("\n")
}

fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize())
}
