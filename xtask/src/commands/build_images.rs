//! `build-offline` and `build-online`: each service of the compose file built by docker buildx or
//! podman, offline from the wheelhouse after a preflight that refuses what cannot work.

use std::{path::Path, time::Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xshell::Shell;
use xtask::{
    model::{
        compose::Service,
        dockerfile::{self, from_lines, syntax_directive},
        manifest::Manifest,
        metrics::Sample,
        paths::display_path,
        shell::shell_command,
        staleness::Stale,
        target::{major_minor, Platform},
    },
    parallel,
    tools::engine::{self, BuildSpec, Engine},
    ui::{self, human_bytes},
    wheelhouse::{
        integrity::{self, Depth},
        layout::read_manifest,
    },
};

use crate::{
    commands::{load_compose, stale_reasons, write_metrics, Inputs},
    flags::BuildImages,
    settings::Project,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Offline,
    Online,
}

#[derive(Debug, Serialize)]
struct BuildResult {
    service: String,
    image: String,
    platform: String,
    ok: bool,
    seconds: f64,
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    engine: Engine,
    builds: Vec<BuildResult>,
}

pub fn run(sh: &Shell, project: &Project, args: &BuildImages, mode: Mode) -> Result<()> {
    let (compose_path, services) = load_compose(project, args.compose.as_deref())?;
    let services = select(services, &args.services, &compose_path)?;
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    let engine = engine::choose(sh, args.engine.as_deref())?;
    let chroot = engine::chroot_isolation();
    let mut builds = Vec::new();
    for service in &services {
        let platforms = match (&args.platforms[..], &service.platform) {
            ([], Some(platform)) => vec![platform.clone()],
            ([], None) => vec![Platform::host()
                .context("cannot tell this host's platform: pass --platform")?
                .docker_name()
                .to_owned()],
            (platforms, _) => platforms.to_vec(),
        };
        for platform in platforms {
            builds.push((service, platform.clone(), spec(service, &platform, args, mode, &wheelhouse)?));
        }
    }
    if let Some(path) = &args.emit_bake {
        let named: Vec<(String, BuildSpec)> = builds
            .iter()
            .map(|(service, platform, spec)| {
                let name = if builds.iter().filter(|(other, _, _)| other.name == service.name).count() > 1 {
                    format!("{}-{}", service.name, platform.replace('/', "-"))
                } else {
                    service.name.clone()
                };
                (name, spec.clone())
            })
            .collect();
        let text = format!("{}\n", serde_json::to_string_pretty(&engine::bake_file(&named))?);
        let path = project.flag_path(path);
        xtask::wheelhouse::partial::write_file(&path, text.as_bytes())?;
        ui::say(&format!(
            "wrote {}: `docker buildx bake --file {} [--builder NAME]` runs the same builds",
            path.display(),
            path.display()
        ));
        return Ok(());
    }
    if args.dry_run {
        for (_, _, spec) in &builds {
            for command in engine::build_commands(engine, spec, chroot) {
                println!("{}", shell_command(&command));
            }
        }
        return Ok(());
    }
    preflight(sh, project, engine, mode, &wheelhouse, &builds)?;

    let step = ui::Step::start(if mode == Mode::Offline { "build-offline" } else { "build-online" }, builds.len());
    let results = parallel::map(&builds, args.jobs.unwrap_or(2).max(1), |sh, (service, platform, spec)| {
        let started = Instant::now();
        let mut failure = None;
        for command in engine::build_commands(engine, spec, chroot) {
            let (ok, output) = engine::run(sh, &command)?;
            if !ok {
                let lines: Vec<&str> = output.lines().collect();
                failure = Some(format!(
                    "`{}` failed; its last lines:\n{}",
                    shell_command(&command),
                    lines[lines.len().saturating_sub(15)..].join("\n")
                ));
                break;
            }
        }
        let result = BuildResult {
            service: service.name.clone(),
            image: spec.tag.clone(),
            platform: platform.clone(),
            ok: failure.is_none(),
            seconds: started.elapsed().as_secs_f64(),
            size: if failure.is_none() { engine::image_size(sh, engine, &spec.tag) } else { None },
            error: failure,
        };
        step.item_done(&format!("{} ({platform}): {}", service.name, if result.ok { "built" } else { "FAILED" }));
        Ok(result)
    });
    let results: Vec<BuildResult> = results.into_iter().collect::<Result<_>>()?;
    let n_failed = results.iter().filter(|result| !result.ok).count();
    step.finish(&summary_table(&results));
    for result in results.iter().filter(|result| !result.ok) {
        ui::say(&format!(
            "service `{}` ({}): {}",
            result.service,
            result.platform,
            result.error.as_deref().unwrap_or("")
        ));
    }
    let command = if mode == Mode::Offline { "build-offline" } else { "build-online" };
    let mut samples = vec![Sample::new(
        "xtask_offline",
        "1 when the images were built from the wheelhouse with no network.",
        f64::from(u8::from(mode == Mode::Offline)),
    )];
    for result in &results {
        let labels = vec![("service", result.service.clone()), ("platform", result.platform.clone())];
        samples.push(Sample {
            labels: labels.clone(),
            ..Sample::new("xtask_build_success", "1 when the image was built.", f64::from(u8::from(result.ok)))
        });
        samples.push(Sample {
            labels: labels.clone(),
            ..Sample::new("xtask_build_duration_seconds", "Seconds the build took.", result.seconds)
        });
        if let Some(size) = result.size {
            samples
                .push(Sample { labels, ..Sample::new("xtask_image_bytes", "Size of the built image.", size as f64) });
        }
    }
    // One family's samples must stand together in the text format.
    samples.sort_by_key(|sample| sample.name);
    write_metrics(project, args.metrics_file.as_deref(), command, &samples)?;
    if args.json {
        let report = Report { mode: if mode == Mode::Offline { "offline" } else { "online" }, engine, builds: results };
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if n_failed > 0 {
        bail!("{n_failed} of {} builds failed", builds.len());
    }
    Ok(())
}

fn select(all: Vec<Service>, names: &[String], compose_path: &Path) -> Result<Vec<Service>> {
    if names.is_empty() {
        if all.is_empty() {
            bail!("{} has no service with a `build`", compose_path.display());
        }
        return Ok(all);
    }
    let mut selected = Vec::new();
    for name in names {
        let service = all.iter().find(|service| &service.name == name).with_context(|| {
            let known: Vec<&str> = all.iter().map(|service| service.name.as_str()).collect();
            format!(
                "no service `{name}` with a `build` in {} (there are: {})",
                compose_path.display(),
                known.join(", ")
            )
        })?;
        selected.push(service.clone());
    }
    Ok(selected)
}

fn spec(service: &Service, platform: &str, args: &BuildImages, mode: Mode, wheelhouse: &Path) -> Result<BuildSpec> {
    let mut build_args = service.args.clone();
    for pair in &args.build_args {
        let (key, value) = pair.split_once('=').with_context(|| format!("--build-arg `{pair}` is not KEY=VALUE"))?;
        build_args.insert(key.to_owned(), value.to_owned());
    }
    build_args.insert("OFFLINE".to_owned(), if mode == Mode::Offline { "1" } else { "0" }.to_owned());
    let mut build_contexts = service.additional_contexts.clone();
    if mode == Mode::Offline {
        build_contexts.insert("wheelhouse".to_owned(), wheelhouse.display().to_string());
    } else {
        // Online, the Dockerfile's empty `wheelhouse` stage stands in: nothing is mounted.
        build_contexts.remove("wheelhouse");
    }
    let tag = match &args.tag {
        Some(tag) => format!("{}:{tag}", image_name(&service.image)),
        None => service.image.clone(),
    };
    Ok(BuildSpec {
        dockerfile: service.dockerfile.clone(),
        context: service.context.clone(),
        tag,
        platform: Some(platform.to_owned()),
        build_args,
        build_contexts,
        secrets: args.secrets.clone(),
        target: service.target.clone(),
        offline: mode == Mode::Offline,
        push: args.push,
        builder: args.builder.clone(),
        no_cache: args.no_cache,
    })
}

/// `registry:5000/example/api:1.0` → `registry:5000/example/api` (a digest is dropped too).
fn image_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rfind(':') {
        Some(colon) if !without_digest[colon..].contains('/') => &without_digest[..colon],
        _ => without_digest,
    }
}

/// Everything that would make a build fail late or not be offline, refused before any build.
fn preflight(
    sh: &Shell,
    project: &Project,
    engine: Engine,
    mode: Mode,
    wheelhouse: &Path,
    builds: &[(&Service, String, BuildSpec)],
) -> Result<()> {
    let mut refusals = Vec::new();
    let manifest = if mode == Mode::Offline { Some(wheelhouse_ready(wheelhouse, &mut refusals)) } else { None };
    for (service, platform, spec) in builds {
        let name = &service.name;
        let text = fs_err::read_to_string(&service.dockerfile)?;
        if let Some(frontend) = syntax_directive(&text) {
            refusals.push(format!(
                "service `{name}`: {} starts with `# syntax={frontend}`, which pulls a frontend image\nhint: remove that line; the built-in frontend supports everything the fragment uses",
                service.dockerfile.display()
            ));
        }
        let froms = from_lines(&text, &spec.build_args);
        let stages: Vec<&str> = froms.iter().filter_map(|from| from.stage.as_deref()).collect();
        for from in &froms {
            if from.image == "scratch" || stages.contains(&from.image.as_str()) {
                continue;
            }
            if !engine::image_exists(sh, engine, &from.image) {
                refusals.push(format!(
                    "service `{name}`: base image `{}` is not on this machine\nhint: `{} pull {}` on a connected machine and carry it in (`{} save` / `{} load`)",
                    from.image,
                    engine.name(),
                    from.image,
                    engine.name(),
                    engine.name()
                ));
            } else if !from.image.contains("@sha256:") {
                ui::say(&format!("warning: service `{name}`: base image `{}` is not pinned by digest", from.image));
            }
        }
        python_of_base_image(
            sh,
            engine,
            &froms,
            manifest.as_ref().and_then(Option::as_ref),
            platform,
            name,
            &mut refusals,
        );
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
    }
    if !refusals.is_empty() {
        bail!("preflight refused the build:\n{}", refusals.join("\n"));
    }
    Ok(())
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
            "service `{service}`: base image `{}` has Python {version}, and the wheelhouse has no {platform} python {short} target\nhint: cargo xtask create-wheelhouse --platform {platform} --python {short}",
            last.image
        ));
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

fn summary_table(results: &[BuildResult]) -> String {
    let mut table =
        format!("{:<12} {:<40} {:<12} {:>8} {:>10}  result\n", "service", "image", "platform", "seconds", "size");
    for result in results {
        table.push_str(&format!(
            "{:<12} {:<40} {:<12} {:>8.1} {:>10}  {}\n",
            result.service,
            result.image,
            result.platform,
            result.seconds,
            result.size.map_or("-".to_owned(), human_bytes),
            if result.ok { "ok" } else { "FAILED" }
        ));
    }
    table.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_lose_their_tag_but_keep_a_registry_port() {
        assert_eq!(image_name("example/api:latest"), "example/api");
        assert_eq!(image_name("registry:5000/example/api:1.0"), "registry:5000/example/api");
        assert_eq!(image_name("registry:5000/example/api"), "registry:5000/example/api");
        assert_eq!(image_name("api@sha256:abc"), "api");
    }
}
