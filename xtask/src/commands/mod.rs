//! One module per command, each with the same entry point: `run(sh, project, args)`. A command
//! never imports a sibling; what two commands share lives here.

pub mod audit;
pub mod build_images;
pub mod bundle;
pub mod create_wheelhouse;
pub mod diff;
pub mod dist;
pub mod dockerfiles;
pub mod hashes;
pub mod index;
pub mod init;
pub mod install_script;
pub mod lock;
pub mod pack_wheelhouse;
pub mod sbom;
pub mod serve;
pub mod sign;
pub mod status;
pub mod unpack_wheelhouse;
pub mod verify_wheelhouse;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use xtask::{
    model::{
        compose::{self, Service},
        diff::unified,
        digest::Algorithm,
        lockfile,
        manifest::Manifest,
        metrics::{self, Sample},
        paths::display_path,
        requirements,
        staleness::{self, Current, Stale},
        untrusted,
    },
    wheelhouse::{files, layout, partial},
};

use crate::settings::Project;

/// A command that has said all it has to say and ends with an exit status of its own, like
/// `diff`'s 1 for "they differ": `main` exits with it and prints no `error:` line.
#[derive(Debug)]
pub struct Finished(pub u8);

impl std::fmt::Display for Finished {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "finished with exit status {}", self.0)
    }
}

impl std::error::Error for Finished {}

/// What a generator does with a file that differs from what it would write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Write,
    /// Change nothing; report the difference.
    Check,
}

impl Mode {
    pub fn check_if(check: bool) -> Mode {
        if check {
            Mode::Check
        } else {
            Mode::Write
        }
    }
}

/// What [`write_or_check`] found, or did.
#[derive(Debug, PartialEq, Eq)]
pub enum FileState {
    UpToDate,
    Written,
    /// Check mode: the file is missing (`current` empty) or differs; a unified diff to what it
    /// should be.
    Stale {
        missing: bool,
        diff: String,
    },
}

/// The one writer of generated files (Dockerfile fragments, lock files, the SBOM, bundle YAML,
/// metrics): equal contents are left alone, check mode reports a minimal unified diff, and a write
/// is atomic and keeps the mode of the file it replaces. `shown` names the file in the diff.
pub fn write_or_check(path: &Path, shown: &str, contents: &str, mode: Mode) -> Result<FileState> {
    let current = match fs_err::read_to_string(path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error.into()),
    };
    if current.as_deref() == Some(contents) {
        return Ok(FileState::UpToDate);
    }
    match mode {
        Mode::Check => Ok(FileState::Stale {
            missing: current.is_none(),
            diff: unified(current.as_deref().unwrap_or(""), contents, shown, &format!("{shown} (expected)")),
        }),
        Mode::Write => {
            partial::write_file(path, contents.as_bytes()).with_context(|| format!("cannot write {shown}"))?;
            Ok(FileState::Written)
        }
    }
}

/// The compose file (the flag, else the first `docker compose` would find) and its building
/// services, interpolated from the process environment as compose does.
pub fn load_compose(project: &Project, flag: Option<&Path>) -> Result<(PathBuf, Vec<Service>)> {
    let Some(path) = project.compose_file(flag) else {
        anyhow::bail!(
            "no compose file in {}: looked for {} at the root and in compose/\nhint: pass --compose FILE",
            project.root.display(),
            crate::settings::COMPOSE_FILE_NAMES.join(", ")
        );
    };
    let text = fs_err::read_to_string(&path).context("cannot read the compose file\nhint: pass --compose FILE")?;
    let environment = |name: &str| std::env::var(name).ok();
    let services = compose::parse(&text, &path, &environment)
        .with_context(|| format!("invalid compose file {}", path.display()))?;
    Ok((path, services))
}

/// Which inputs a staleness check reads.
pub enum Inputs<'a> {
    /// These requirements files (paths as the manifest records them), and nothing else.
    Requirements(&'a [String]),
    /// Every requirements file of the manifest and of the settings (or discovered), and the
    /// targets of the settings.
    Everything,
}

/// The inputs as they are now, read from the project, for [`staleness::stale`].
pub fn current_inputs(project: &Project, manifest: &Manifest, inputs: Inputs<'_>) -> Result<Current> {
    let mut paths: Vec<String> = Vec::new();
    let mut targets = None;
    match inputs {
        Inputs::Requirements(wanted) => paths.extend(wanted.iter().cloned()),
        Inputs::Everything => {
            paths.extend(manifest.requirements.iter().map(|record| record.path.clone()));
            for path in project.requirement_paths(&[])? {
                let shown = display_path(&project.root, &path);
                if !paths.contains(&shown) {
                    paths.push(shown);
                }
            }
            targets = project.configured_target_ids();
        }
    }
    let read_file = |path: &Path| std::fs::read(path);
    let requirements = paths
        .into_iter()
        .map(|path| {
            let now = requirements::read(&project.root, &project.root.join(&path), &read_file).ok();
            (path, now)
        })
        .collect();
    Ok(Current { requirements, targets })
}

/// Why the wheelhouse no longer answers the inputs read by [`current_inputs`].
pub fn stale_reasons(project: &Project, manifest: &Manifest, inputs: Inputs<'_>) -> Result<Vec<Stale>> {
    Ok(staleness::stale(manifest, &current_inputs(project, manifest, inputs)?))
}

/// How a wheelhouse (say, one just unpacked) differs from what this project asks for: its
/// requirements files and their bytes, and the targets of the settings. Empty when the project
/// asks for nothing (no requirements file here, no targets in wheelhouse.toml: the air-gapped
/// side may hold only the archive), and then nothing can be compared.
pub fn foreign_differences(project: &Project, manifest: &Manifest) -> Result<Vec<Stale>> {
    if project.requirement_paths(&[])?.is_empty() && project.configured_target_ids().is_none() {
        return Ok(Vec::new());
    }
    stale_reasons(project, manifest, Inputs::Everything)
}

/// What every command reports of the wheelhouse it worked on.
pub fn wheelhouse_samples(root: &Path, wheelhouse: &Path, manifest: &Manifest) -> Vec<Sample> {
    let packages: BTreeSet<&str> = manifest.files.iter().map(|entry| entry.name.as_str()).collect();
    let locked = manifest.requirements.iter().all(|record| layout::lock_path(&root.join(&record.path)).is_file());
    let signed = layout::signature_path(wheelhouse).is_some();
    vec![
        Sample::new("xtask_wheelhouse_files", "Distribution files in the wheelhouse.", manifest.files.len() as f64),
        Sample::new(
            "xtask_wheelhouse_bytes",
            "Bytes of the distribution files in the wheelhouse.",
            manifest.files.iter().map(|entry| entry.size).sum::<u64>() as f64,
        ),
        Sample::new("xtask_wheelhouse_packages", "Distinct packages in the wheelhouse.", packages.len() as f64),
        Sample::new(
            "xtask_wheelhouse_targets",
            "Targets (platform x Python) the wheelhouse serves.",
            manifest.targets.len() as f64,
        ),
        Sample::new(
            "xtask_hash_locked",
            "1 when every requirements file has a lock file beside it.",
            f64::from(u8::from(locked && !manifest.requirements.is_empty())),
        ),
        Sample::new(
            "xtask_manifest_signed",
            "1 when the wheelhouse holds a signature of its manifest.",
            f64::from(u8::from(signed)),
        ),
    ]
}

/// `--metrics-file`: the samples written whole, so that the collector never reads half of them.
pub fn write_metrics(project: &Project, flag: Option<&Path>, command: &str, samples: &[Sample]) -> Result<()> {
    let Some(path) = flag else { return Ok(()) };
    let path = project.flag_path(path);
    write_or_check(&path, &path.display().to_string(), &metrics::render(command, samples), Mode::Write)?;
    Ok(())
}

/// The lock file of one requirements file (`group`, as the manifest names it): sha256 from the
/// manifest, other algorithms read from the wheelhouse's files.
pub fn lock_text(wheelhouse: &Path, manifest: &Manifest, group: &str, algorithm: Algorithm) -> Result<String> {
    let hash_of = |filename: &str| -> Result<String> {
        match algorithm {
            Algorithm::Sha256 => Ok(manifest.file(filename).map(|entry| entry.sha256.clone()).unwrap_or_default()),
            other => files::digest_file(other, &wheelhouse.join(filename)),
        }
    };
    lockfile::render(manifest, group, algorithm, &hash_of, xtask::ui::program())
}

/// The service's Dockerfile as `cargo xtask dockerfiles` would leave it: its text with the
/// generated fragments filled in. `dockerfiles --check` and the build preflight compare against
/// this, so the two can never disagree about what is stale.
pub fn expected_dockerfile(service: &Service, program: &str) -> Result<String> {
    use xtask::model::dockerfile::{fragments, render};

    let current = fs_err::read_to_string(&service.dockerfile)?;
    let (requirements, hash_locked) = requirements_in_context(service)?;
    let pylock = pylock_in_context(service)?;
    render(&service.dockerfile, &current, &fragments(&requirements, hash_locked, pylock.as_ref(), program), program)
}

/// The requirements path a service's fragment copies, relative to its build context: its lock
/// file when `cargo xtask lock` has written one (and then `true`), else the requirements file.
/// Errors do not name the service: callers say which one.
pub fn requirements_in_context(service: &Service) -> Result<(String, bool)> {
    use xtask::model::untrusted::shown;

    let name = shown(&service.name);
    let requirements = service.requirements.as_ref().with_context(|| {
        format!("no requirements file: the service has no `x-requirements`\nhint: add `x-requirements: ../requirements-{name}.txt` to it in the compose file")
    })?;
    if !requirements.starts_with(&service.context) {
        anyhow::bail!(
            "{} is outside the service's build context {}",
            shown(&requirements.display().to_string()),
            shown(&service.context.display().to_string())
        );
    }
    let lock = layout::lock_path(requirements);
    if lock.is_file() {
        return Ok((display_path(&service.context, &lock), true));
    }
    Ok((display_path(&service.context, requirements), false))
}

/// The PEP 751 lock `lock --format pylock` wrote for the service's requirements file, when there
/// is one: the offline install step installs from it. Its wheel paths say where the wheelhouse
/// must be mounted for them to resolve.
pub fn pylock_in_context(service: &Service) -> Result<Option<xtask::model::dockerfile::PylockStep>> {
    use xtask::model::{dockerfile::pylock_dirs, pylock_render::pylock_file_name, untrusted::shown};

    let Some(requirements) = service.requirements.as_ref() else { return Ok(None) };
    let name = requirements.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let path = requirements.with_file_name(pylock_file_name(&name));
    let Ok(text) = fs_err::read_to_string(&path) else { return Ok(None) };
    let shown_path = shown(&display_path(&service.context, &path));
    let lock: toml::Table = text.parse().with_context(|| format!("{shown_path} is not valid TOML"))?;
    let paths: Vec<&str> = lock
        .get("packages")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|package| package.get("wheels").and_then(toml::Value::as_array))
        .flatten()
        .filter_map(|wheel| wheel.get("path").and_then(toml::Value::as_str))
        .collect();
    let (lock_dir, mount) = pylock_dirs(&paths).with_context(|| format!("{shown_path} cannot be installed from"))?;
    Ok(Some(xtask::model::dockerfile::PylockStep { file: display_path(&service.context, &path), lock_dir, mount }))
}

/// What the Dockerfiles say of Python against the targets: a Dockerfile whose base image has a
/// Python no target has (its image would find no wheels), and a target Python no Dockerfile uses.
/// Best effort: no compose file, or an image that does not say its Python, gives nothing.
pub fn python_mismatches(project: &Project, target_pythons: &BTreeSet<String>) -> Vec<String> {
    use xtask::model::project_scan::{final_base, python_of};

    if project.compose_file(None).is_none() {
        return Vec::new();
    }
    let Ok((_, services)) = load_compose(project, None) else { return Vec::new() };
    let mut warnings = Vec::new();
    let mut used = BTreeSet::new();
    let mut all_known = true;
    for service in &services {
        let Ok(text) = fs_err::read_to_string(&service.dockerfile) else { continue };
        let image = final_base(&text, &service.args);
        let Some(python) = image.as_deref().and_then(python_of) else {
            all_known = false;
            continue;
        };
        if !target_pythons.contains(&python) {
            warnings.push(format!(
                "warning: service `{}` builds on {} (Python {python}), and no target has Python {python} (targets: {})\nhint: set `python` under [targets] in wheelhouse.toml, or pass --python {python} (cargo xtask init writes the settings from the Dockerfiles)",
                untrusted::shown(&service.name),
                untrusted::shown(image.as_deref().unwrap_or_default()),
                target_pythons.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        used.insert(python);
    }
    if all_known && !used.is_empty() {
        for python in target_pythons.difference(&used) {
            warnings.push(format!("warning: the targets have Python {python}, which no service's Dockerfile uses"));
        }
    }
    warnings
}
