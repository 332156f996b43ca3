//! The preflight of `build-offline` and `build-online`: everything that would make a build fail
//! late, or not be offline, refused before any build starts.

use std::path::Path;

use anyhow::{bail, Result};
use xshell::Shell;
use xtask::{
    model::{
        compose::Service,
        dockerfile::{self, from_lines, syntax_directive},
        manifest::Manifest,
        paths::display_path,
        staleness::Stale,
        target::{major_minor, Platform},
        untrusted::shown,
    },
    parallel,
    tools::engine::{self, BuildSpec, Engine},
    ui,
    wheelhouse::{
        integrity::{self, Depth},
        layout::read_manifest,
    },
};

use super::Mode;
use crate::{
    commands::{expected_dockerfile, pylock_in_context, stale_reasons, Inputs},
    settings::Project,
};

/// Everything that would make a build fail late or not be offline, refused before any build.
/// With `from_index`, the manifest an index serves stands for the wheelhouse: its targets and
/// requirements are checked, and nothing is mounted.
pub(super) fn preflight(
    sh: &Shell,
    project: &Project,
    engine: Engine,
    mode: Mode,
    wheelhouse: &Path,
    builds: &[(&Service, String, BuildSpec)],
    from_index: Option<&Manifest>,
) -> Result<()> {
    // What the engine lacks comes first; without it, asking the engine about images would only
    // blame the base images.
    let mut refusals = engine::missing_pieces(sh, engine);
    let engine_ready = refusals.is_empty();
    let manifest = match (mode, from_index) {
        (_, Some(manifest)) => Some(Some(manifest.clone())),
        (Mode::Offline, None) => Some(wheelhouse_ready(wheelhouse, &mut refusals)),
        (Mode::Online, None) => None,
    };
    let mut fragments_checked: Vec<&str> = Vec::new();
    for (service, platform, spec) in builds {
        let name = &shown(&service.name);
        let text = fs_err::read_to_string(&service.dockerfile)?;
        if !fragments_checked.contains(&service.name.as_str()) {
            fragments_checked.push(&service.name);
            stale_fragments(project, service, &text, &mut refusals);
        }
        if let Some(frontend) = syntax_directive(&text) {
            refusals.push(format!(
                "service `{name}`: {} starts with `# syntax={}`, which pulls a frontend image\nhint: remove that line; the built-in frontend supports everything the fragment uses",
                shown(&service.dockerfile.display().to_string()),
                shown(&frontend)
            ));
        }
        let froms = from_lines(&text, &spec.build_args);
        let stages: Vec<&str> = froms.iter().filter_map(|from| from.stage.as_deref()).collect();
        for from in froms.iter().filter(|_| engine_ready) {
            if from.image == "scratch" || stages.contains(&from.image.as_str()) {
                continue;
            }
            let image = shown(&from.image);
            if !engine::image_exists(sh, engine, &from.image) {
                refusals.push(format!(
                    "service `{name}`: base image `{image}` is not on this machine\nhint: `{} pull {image}` on a connected machine and carry it in (`{} save` / `{} load`)",
                    engine.name(),
                    engine.name(),
                    engine.name()
                ));
            } else if !from.image.contains("@sha256:") {
                ui::say(&format!("warning: service `{name}`: base image `{image}` is not pinned by digest"));
            }
        }
        if engine_ready {
            python_of_base_image(
                sh,
                engine,
                &froms,
                manifest.as_ref().and_then(Option::as_ref),
                platform,
                name,
                &mut refusals,
            );
        }
        let requested: Platform = platform.parse()?;
        if Some(requested) != Platform::host() && !binfmt_available(requested) {
            refusals.push(format!(
                "service `{name}`: {platform} is foreign to this host and no binfmt emulation is registered for it, so its RUN steps cannot execute\nhint: apt-get install qemu-user-static binfmt-support, or build on a {platform} machine"
            ));
        }
        let Some(Some(manifest)) = &manifest else { continue };
        if !manifest.targets.iter().any(|target| target.platform == *platform) {
            let platforms: Vec<&str> = manifest.targets.iter().map(|target| target.platform.as_str()).collect();
            refusals.push(format!(
                "service `{name}`: the wheelhouse has no {platform} target (it has: {})\nhint: cargo xtask create-wheelhouse --platform {platform}",
                platforms.join(", ")
            ));
        }
        if let Some(path) = &service.requirements {
            stale_requirements(project, path, manifest, name, &mut refusals)?;
        }
        let pylock = from_index.is_none() && pylock_in_context(service).is_ok_and(|pylock| pylock.is_some());
        if pylock && !has_pylock_pip(manifest, platform) {
            refusals.push(format!(
                "service `{name}`: its install step installs from a pylock.toml, which needs pip 26.1 or later from the wheelhouse, and the wheelhouse has none for {platform}\nhint: cargo xtask create-wheelhouse with the build tools (without --no-build-tools), or remove the pylock and run cargo xtask dockerfiles"
            ));
        }
    }
    if !refusals.is_empty() {
        bail!("preflight refused the build:\n{}", refusals.join("\n"));
    }
    Ok(())
}

/// Whether the wheelhouse holds a pip of 26.1 or later (the first to install a pylock.toml) for
/// a target of `platform`.
fn has_pylock_pip(manifest: &Manifest, platform: &str) -> bool {
    let ids: Vec<&str> =
        manifest.targets.iter().filter(|target| target.platform == platform).map(|target| target.id.as_str()).collect();
    manifest.files.iter().any(|entry| {
        let mut parts = entry.version.split('.').map(|part| part.parse::<u64>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        entry.name == "pip" && version >= (26, 1) && entry.targets.iter().any(|id| ids.contains(&id.as_str()))
    })
}

/// An image that says which Python it has (`PYTHON_VERSION` in its `ENV`, as the official Python
/// images do) must find that version among the wheelhouse's targets. Images that do not say
/// (Debian's own Python) are not checked: reading it would mean running the image.
fn python_of_base_image(
    sh: &Shell,
    engine: Engine,
    froms: &[dockerfile::From],
    manifest: Option<&Manifest>,
    platform: &str,
    service: &str,
    refusals: &mut Vec<String>,
) {
    let (Some(manifest), Some(last)) = (manifest, froms.last()) else { return };
    let environment = engine::image_environment(sh, engine, &last.image);
    let Some(version) = environment.iter().find_map(|entry| entry.strip_prefix("PYTHON_VERSION=")) else { return };
    let short = major_minor(version);
    let covered = manifest.targets.iter().any(|target| target.platform == platform && target.python_version == short);
    if !covered {
        refusals.push(format!(
            "service `{service}`: base image `{}` has Python {}, and the wheelhouse has no {platform} python {} target\nhint: cargo xtask create-wheelhouse --platform {platform} --python {}",
            shown(&last.image),
            shown(version),
            shown(&short),
            shown(&short)
        ));
    }
}

/// The same comparison as `cargo xtask dockerfiles --check`: a missing, empty or stale install
/// step would build an image without the service's packages, and nothing would say so until an
/// import failed at run time.
fn stale_fragments(project: &Project, service: &Service, current: &str, refusals: &mut Vec<String>) {
    let name = shown(&service.name);
    let path = shown(&display_path(&project.root, &service.dockerfile));
    match expected_dockerfile(service, ui::program()) {
        Ok(expected) if expected == current => {}
        Ok(_) => refusals.push(format!(
            "service `{name}`: the generated fragments of {path} are stale or empty, so the image would lack its packages\nhint: run `cargo xtask dockerfiles` (`cargo xtask dockerfiles --check` shows the difference)"
        )),
        Err(error) => refusals.push(format!("service `{name}`: {error:#}")),
    }
}

/// The manifest, when the wheelhouse is there and every file has its size.
fn wheelhouse_ready(wheelhouse: &Path, refusals: &mut Vec<String>) -> Option<Manifest> {
    let manifest = match read_manifest(wheelhouse) {
        Ok(manifest) => manifest,
        Err(error) => {
            refusals.push(format!("no usable wheelhouse at {}: {error:#}", wheelhouse.display()));
            return None;
        }
    };
    let damaged =
        integrity::check_directory(wheelhouse, &manifest, Depth::Sizes, parallel::default_jobs()).map(|checked| {
            checked.problems.into_iter().find(|problem| ["missing", "size", "not-a-file"].contains(&problem.kind))
        });
    match damaged {
        Ok(None) => {}
        Ok(Some(problem)) => refusals.push(format!(
            "the wheelhouse does not match its manifest: {}\nhint: cargo xtask create-wheelhouse (or verify-wheelhouse to see everything)",
            problem.message
        )),
        Err(error) => refusals.push(format!("cannot read the wheelhouse at {}: {error:#}", wheelhouse.display())),
    }
    Some(manifest)
}

/// The one staleness check, for the service's requirements file.
fn stale_requirements(
    project: &Project,
    path: &Path,
    manifest: &Manifest,
    service: &str,
    refusals: &mut Vec<String>,
) -> Result<()> {
    let shown = display_path(&project.root, path);
    for reason in stale_reasons(project, manifest, Inputs::Requirements(std::slice::from_ref(&shown)))? {
        refusals.push(match reason {
            Stale::Gone { .. } => format!("service `{service}`: cannot read {}", path.display()),
            Stale::NotInWheelhouse { .. } => format!(
                "service `{service}`: the wheelhouse was not made for {}\nhint: cargo xtask create-wheelhouse -r {shown}",
                path.display()
            ),
            other => format!("service `{service}`: {other}\nhint: cargo xtask create-wheelhouse"),
        });
    }
    Ok(())
}

fn binfmt_available(platform: Platform) -> bool {
    Path::new(&format!("/proc/sys/fs/binfmt_misc/qemu-{}", platform.machine())).exists()
}
