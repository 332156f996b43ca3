//! The plan of a `create-wheelhouse` run: settings and flags merged, the interpreter found, the
//! targets and requirements read, and one keyed job per (requirements file, target).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use xshell::Shell;
use xtask::{
    model::{
        digest::hex,
        manifest::{IndexSettings, BUILD_TOOLS, BUILD_TOOLS_GROUP, FORMAT_VERSION},
        redact::redact_url,
        requirements::{self, InputKind, RequirementsRecord},
        resolution::Resolver,
        target::{Target, TargetRecord},
    },
    tools::{
        pip::{IndexOptions, Python},
        uv::Uv,
    },
};

use crate::{flags::CreateWheelhouse, settings::Project};

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
    /// CPU-bound work at once (hashing, sdist builds, the pip download fallback).
    pub jobs: usize,
    /// Resolutions at once.
    pub resolve_jobs: usize,
    /// File transfers at once.
    pub downloads: usize,
    pub resolver: Resolver,
    /// The uv that resolves, found once, when the resolver is uv.
    pub uv: Option<Uv>,
    pub build_sdists: bool,
    /// The extras and dependency groups of pyproject.toml and uv.lock inputs.
    pub extras: Vec<String>,
    pub groups: Vec<String>,
}

/// One resolution to make: a requirements file (or the build tools) on one target.
pub struct Job {
    pub group: String,
    pub source: JobSource,
    pub target: usize,
    pub key: String,
}

#[derive(Clone)]
pub enum JobSource {
    /// A PEP 751 lock: read for the target, no resolution.
    Lock(PathBuf),
    File(PathBuf),
    /// A `pyproject.toml`: its declared dependencies (with the extras and groups asked for),
    /// resolved like a requirements file.
    Pyproject(PathBuf),
    /// A `uv.lock`: the workspace root's locked dependencies (with the extras and groups asked
    /// for) that hold for the target, no resolution.
    UvLock(PathBuf),
    BuildTools,
}

pub fn plan(sh: &Shell, project: &Project, args: &CreateWheelhouse) -> Result<Plan> {
    let root = project.root.as_path();
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    let requirement_paths = project.requirement_paths(&args.requirements)?;
    let build_tools = project.build_tools(args.no_build_tools);
    if requirement_paths.is_empty() && !build_tools {
        bail!(
            "no requirements files in {}\nhint: pass -r FILE, or list them under `requirements` in wheelhouse.toml",
            root.display()
        );
    }

    let python = project.find_python(sh, args.targets.python.as_deref())?;
    let targets = project.targets(&args.targets, &python)?;
    let target_records = targets.iter().map(Target::record).collect::<Result<Vec<_>, _>>()?;

    let mut requirements = Vec::new();
    let mut kinds = Vec::new();
    for path in &requirement_paths {
        kinds.push(input_kind(path)?);
        let record = requirements::read(root, path, &|path: &Path| std::fs::read(path))
            .with_context(|| format!("cannot use requirements file {}", path.display()))?;
        requirements.push(record);
    }

    let index = project.index_options(&args.index);
    let (extras, groups) = (project.extras(&args.extras), project.groups(&args.groups));
    let selects = |kind: &InputKind| matches!(kind, InputKind::Pyproject | InputKind::UvLock);
    let selected = !(extras.is_empty() && groups.is_empty());
    if selected && !kinds.iter().any(selects) {
        bail!(
            "--extra and --group select from a pyproject.toml or a uv.lock, and no input is one\nhint: pass -r \
             pyproject.toml or -r uv.lock, or drop --extra/--group (and `extras`/`groups` in wheelhouse.toml)"
        );
    }
    let build_sdists = project.build_sdists(args.build_sdists);
    let resolver = project.resolver(args.resolver);
    let uv = match resolver {
        Resolver::Pip => None,
        Resolver::Uv if build_sdists => bail!(
            "--build-sdists works with the pip resolver only: it reads pip's words for a missing wheel\nhint: drop \
             --build-sdists, or use --resolver pip"
        ),
        Resolver::Uv => Some(Uv::find(sh)?),
    };
    let index_settings = IndexSettings {
        no_index: index.no_index,
        index_url: index.index_url.as_deref().map(redact_url),
        extra_index_urls: index.extra_index_urls.iter().map(|url| redact_url(url)).collect(),
        find_links: index.find_links.iter().map(|link| redact_url(link)).collect(),
        build_tools,
        build_sdists,
    };

    let mut inputs: Vec<(String, String, JobSource)> = requirements
        .iter()
        .zip(&requirement_paths)
        .zip(&kinds)
        .map(|((record, path), kind)| {
            let (source, selection) = match kind {
                InputKind::Pylock => (JobSource::Lock(path.clone()), String::new()),
                InputKind::Pyproject => (JobSource::Pyproject(path.clone()), format!("{extras:?} {groups:?}")),
                InputKind::UvLock => (JobSource::UvLock(path.clone()), format!("{extras:?} {groups:?}")),
                _ => (JobSource::File(path.clone()), String::new()),
            };
            (record.path.clone(), format!("{}{selection}", record.content_digest()), source)
        })
        .collect();
    if build_tools {
        inputs.push((BUILD_TOOLS_GROUP.to_owned(), BUILD_TOOLS.join(" "), JobSource::BuildTools));
    }
    let index_json = serde_json::to_string(&index_settings)?;
    let mut jobs_to_run = Vec::new();
    for (group, content_digest, source) in inputs {
        for (target_index, record) in target_records.iter().enumerate() {
            let format_version = FORMAT_VERSION.to_string();
            let record_json = serde_json::to_string(record)?;
            let listing = find_links_listing(&index.find_links);
            let parts: Vec<&str> = vec![
                &format_version,
                env!("CARGO_PKG_VERSION"),
                &group,
                &content_digest,
                &record_json,
                &index_json,
                &listing,
            ];
            // The resolver is not part of the key: both give the same resolution (the tests hold
            // them to it), so a switch of resolver alone resolves nothing again.
            let key = digest(&parts);
            jobs_to_run.push(Job { group: group.clone(), source: source.clone(), target: target_index, key });
        }
    }
    let keys: Vec<&str> = jobs_to_run.iter().map(|job| job.key.as_str()).collect();
    let inputs_digest = digest(&keys);
    let jobs = project.jobs(args.jobs);
    Ok(Plan {
        resolve_jobs: project.resolve_jobs(args.resolve_jobs),
        downloads: project.downloads(args.downloads),
        resolver,
        uv,
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
        extras,
        groups,
    })
}

/// What the input holds: a requirements file, a pyproject.toml, a PEP 751 lock or a uv lock; any
/// other TOML file is refused by name, never handed to pip (which would say `Invalid requirement:
/// 'version = 1'`).
fn input_kind(path: &Path) -> Result<InputKind> {
    let text =
        fs_err::read_to_string(path).with_context(|| format!("cannot use requirements file {}", path.display()))?;
    let kind = InputKind::of(path, &text);
    let shown = path.display();
    match kind {
        InputKind::Requirements | InputKind::Pylock | InputKind::Pyproject | InputKind::UvLock => Ok(kind),
        InputKind::UnknownToml => bail!(
            "{shown} is a TOML file but neither a pylock.toml (no `lock-version`), a uv.lock nor a pyproject.toml\nhint: \
             pass a requirements file or a PEP 751 lock (pylock.toml, pylock.NAME.toml)"
        ),
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
