//! `build-offline` and `build-online`: each service of the compose file built by docker buildx or
//! podman, offline from the wheelhouse after a preflight that refuses what cannot work.

mod preflight;

use std::{path::Path, time::Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xshell::Shell;
use xtask::{
    model::{
        compose::Service,
        digest::sha256_hex,
        dockerfile::{INDEX_URL_ARG, MANIFEST_SHA256_ARG},
        manifest::{Manifest, MANIFEST_NAME},
        metrics::Sample,
        paths::human_bytes,
        shell::{shell_command, shell_quote},
        target::Platform,
        untrusted::shown,
    },
    parallel,
    tools::{
        engine::{self, BuildSpec, Engine},
        http::{Downloader, Progress},
        pip::HttpOptions,
    },
    ui,
    wheelhouse::files::sha256_file,
};

use crate::{
    commands::{load_compose, write_metrics},
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
    // The install step's cache key: the engines key a `RUN --mount=type=bind` step on its command
    // and build arguments, never on the mounted files, so without this another wheelhouse would
    // get this one's layer. Absent only when there is no manifest, which the preflight refuses.
    let from_index = match (&args.from_index, mode) {
        (Some(url), Mode::Offline) => Some(served_manifest(url)?),
        (Some(_), Mode::Online) => {
            bail!("--from-index is for build-offline: build-online installs from the package index")
        }
        (None, _) => None,
    };
    let manifest_sha256 = match (mode, &from_index) {
        (Mode::Offline, Some((_, digest))) => Some(digest.clone()),
        (Mode::Offline, None) => sha256_file(&wheelhouse.join(MANIFEST_NAME)).ok(),
        (Mode::Online, _) => None,
    };
    if mode == Mode::Offline && manifest_sha256.is_none() && (args.dry_run || args.emit_bake.is_some()) {
        ui::say(&format!(
            "warning: no readable {MANIFEST_NAME} in {}: these builds lack --build-arg {MANIFEST_SHA256_ARG}, and a real one would be refused",
            shown(&wheelhouse.display().to_string())
        ));
    }
    let mut builds = Vec::new();
    for service in &services {
        let platforms = match (&args.platforms[..], &service.platform) {
            ([], Some(platform)) => vec![platform.clone()],
            ([], None) => vec![Platform::host()
                .context("cannot tell this host's platform: pass --platform")?
                .docker_name()
                .to_owned()],
            (platforms, _) => platforms.iter().fold(Vec::new(), |mut unique, platform| {
                if !unique.contains(platform) {
                    unique.push(platform.clone());
                }
                unique
            }),
        };
        // Several platforms loaded under one tag would overwrite each other: each gets its own.
        let per_platform_tags = platforms.len() > 1;
        for platform in &platforms {
            let tag = image_tag(&service.image, args.tag.as_deref(), per_platform_tags.then_some(platform.as_str()));
            let spec = spec(service, platform, tag, args, mode, &wheelhouse, manifest_sha256.as_deref())?;
            builds.push((service, platform.clone(), spec));
        }
    }
    if let Some(path) = &args.emit_bake {
        if mode == Mode::Offline {
            check_bake_buildx(sh)?;
        }
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
    let served = from_index.as_ref().map(|(manifest, _)| manifest);
    if let Err(refused) = preflight::preflight(sh, project, engine, mode, &wheelhouse, &builds, served) {
        // The hints must name the wheelhouse this build reads, when it is not the default one.
        let Some(flag) = &args.wheelhouse else { return Err(refused) };
        let create = format!("cargo xtask create-wheelhouse --wheelhouse {}", shell_quote(&flag.display().to_string()));
        bail!("{}", format!("{refused:#}").replace("cargo xtask create-wheelhouse", &create));
    }

    let step = ui::Step::start(if mode == Mode::Offline { "build-offline" } else { "build-online" }, builds.len());
    let results = parallel::map(&builds, args.jobs.unwrap_or(2).max(1), |sh, (service, platform, spec)| {
        let started = Instant::now();
        let mut failure = None;
        for command in engine::build_commands(engine, spec, chroot) {
            let (ok, output) = engine::run(sh, &command)?;
            if !ok {
                let lines: Vec<&str> = output.lines().collect();
                let last: Vec<String> =
                    lines[lines.len().saturating_sub(15)..].iter().map(|line| shown(line)).collect();
                failure =
                    Some(format!("`{}` failed; its last lines:\n{}", shown(&shell_command(&command)), last.join("\n")));
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
        step.item_done(&format!(
            "{} ({}): {}",
            shown(&service.name),
            shown(platform),
            if result.ok { "built" } else { "FAILED" }
        ));
        Ok(result)
    });
    let results: Vec<BuildResult> = results.into_iter().collect::<Result<_>>()?;
    let n_failed = results.iter().filter(|result| !result.ok).count();
    step.finish(&summary_table(&results));
    for result in results.iter().filter(|result| !result.ok) {
        ui::say(&format!(
            "service `{}` ({}): {}",
            shown(&result.service),
            shown(&result.platform),
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
            let known: Vec<String> = all.iter().map(|service| shown(&service.name)).collect();
            format!(
                "no service `{}` with a `build` in {} (there are: {})",
                shown(name),
                compose_path.display(),
                known.join(", ")
            )
        })?;
        selected.push(service.clone());
    }
    Ok(selected)
}

fn spec(
    service: &Service,
    platform: &str,
    tag: String,
    args: &BuildImages,
    mode: Mode,
    wheelhouse: &Path,
    manifest_sha256: Option<&str>,
) -> Result<BuildSpec> {
    let mut build_args = service.args.clone();
    for pair in &args.build_args {
        let (key, value) =
            pair.split_once('=').with_context(|| format!("--build-arg `{}` is not KEY=VALUE", shown(pair)))?;
        build_args.insert(key.to_owned(), value.to_owned());
    }
    build_args.insert("OFFLINE".to_owned(), if mode == Mode::Offline { "1" } else { "0" }.to_owned());
    // Set by the command alone. Online it stays unset, so the fragment's empty default is the
    // key: stable, and online builds keep their cache as before (`--no-cache` refreshes them).
    build_args.remove(MANIFEST_SHA256_ARG);
    if let (Mode::Offline, Some(digest)) = (mode, manifest_sha256) {
        build_args.insert(MANIFEST_SHA256_ARG.to_owned(), digest.to_owned());
    }
    build_args.remove(INDEX_URL_ARG);
    let mut build_contexts = service.additional_contexts.clone();
    if let Some(url) = &args.from_index {
        // Nothing is mounted: the index is the wheelhouse, reached over the builder's network.
        build_args.insert(INDEX_URL_ARG.to_owned(), url.clone());
        build_contexts.remove("wheelhouse");
    } else if mode == Mode::Offline {
        build_contexts.insert("wheelhouse".to_owned(), wheelhouse.display().to_string());
    } else {
        // Online, the Dockerfile's empty `wheelhouse` stage stands in: nothing is mounted.
        build_contexts.remove("wheelhouse");
    }
    Ok(BuildSpec {
        dockerfile: service.dockerfile.clone(),
        context: service.context.clone(),
        tag,
        platform: Some(platform.to_owned()),
        build_args,
        build_contexts,
        secrets: args.secrets.clone(),
        target: service.target.clone(),
        offline: mode == Mode::Offline && args.from_index.is_none(),
        push: args.push,
        builder: args.builder.clone(),
        no_cache: args.no_cache,
    })
}

/// The tag a build gets: the compose file's image, with its tag replaced by `--tag`; when a
/// service is built for several platforms, the tag (else `latest`) gets the platform as a suffix
/// (`example/api:1.0-linux-arm64`), since one tag holds one local image and the last build would
/// replace the others.
fn image_tag(image: &str, tag: Option<&str>, platform: Option<&str>) -> String {
    let tag = tag.or_else(|| tag_of(image));
    match (tag, platform) {
        (None, None) => image.to_owned(),
        (Some(tag), None) => format!("{}:{tag}", image_name(image)),
        (tag, Some(platform)) => {
            format!("{}:{}-{}", image_name(image), tag.unwrap_or("latest"), platform.replace('/', "-"))
        }
    }
}

/// `registry:5000/example/api:1.0` → `1.0`; none for `registry:5000/example/api`.
fn tag_of(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let name = image_name(image);
    without_digest.strip_prefix(name)?.strip_prefix(':')
}

/// An offline bake file sets `network: none`, which buildx reads only from 0.17 on: an older one
/// here is refused. With no buildx here the file is written for another machine, with a note.
fn check_bake_buildx(sh: &Shell) -> Result<()> {
    let (major, minor) = engine::BAKE_NETWORK_BUILDX;
    match engine::buildx_version(sh) {
        Some(version) if !engine::reads_bake_network(version) => bail!(
            "docker buildx here is {}.{}.{}, and the offline bake file needs {major}.{minor} or later: older buildx does not know its `network` field, so its builds would not be offline\nhint: upgrade the buildx plugin, or run `cargo xtask build-offline` without --emit-bake",
            version.0,
            version.1,
            version.2
        ),
        Some(_) => {}
        None => ui::say(&format!(
            "note: no docker buildx here; the offline bake file needs buildx {major}.{minor} or later where it runs"
        )),
    }
    Ok(())
}

/// `registry:5000/example/api:1.0` → `registry:5000/example/api` (a digest is dropped too).
fn image_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rfind(':') {
        Some(colon) if !without_digest[colon..].contains('/') => &without_digest[..colon],
        _ => without_digest,
    }
}

/// The manifest that the index at `url` (a `serve`, or `index`'s tree on a web server) serves
/// beside its `simple/`, and its sha256: what the build checks and keys its cache on.
fn served_manifest(url: &str) -> Result<(Manifest, String)> {
    struct Quiet;
    impl Progress for Quiet {
        fn length(&self, _: u64) {}
        fn advance(&self, _: u64) {}
    }
    // The same as the install step's `${URL%/}` then `${base%/simple}`: one of each, no more.
    let base = url.strip_suffix('/').unwrap_or(url);
    let base = base.strip_suffix("/simple").unwrap_or(base);
    let manifest_url = format!("{base}/{MANIFEST_NAME}");
    let scratch = tempfile::Builder::new().prefix("wheelgap-index-").tempdir()?;
    let path = scratch.path().join(MANIFEST_NAME);
    let options = HttpOptions { index_url: Some(url.to_owned()), ..HttpOptions::default() };
    Downloader::new(&options, 1)?
        .fetch(&manifest_url, &path, None, &Quiet)
        .with_context(|| format!("cannot read {manifest_url}: is `serve` running there?"))?;
    let bytes = fs_err::read(&path)?;
    if bytes.len() > 256 << 20 {
        bail!("{manifest_url} is {} bytes: not a manifest", bytes.len());
    }
    let manifest = Manifest::from_json(&String::from_utf8_lossy(&bytes))
        .with_context(|| format!("{manifest_url} is not a wheelhouse manifest"))?;
    Ok((manifest, sha256_hex(&bytes)))
}

fn summary_table(results: &[BuildResult]) -> String {
    let mut table =
        format!("{:<12} {:<40} {:<12} {:>8} {:>10}  result\n", "service", "image", "platform", "seconds", "size");
    for result in results {
        table.push_str(&format!(
            "{:<12} {:<40} {:<12} {:>8.1} {:>10}  {}\n",
            shown(&result.service),
            shown(&result.image),
            shown(&result.platform),
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

    #[test]
    fn a_service_built_for_several_platforms_gets_a_tag_for_each() {
        let check = |image: &str, tag: Option<&str>, platform: Option<&str>, expected: &str| {
            assert_eq!(image_tag(image, tag, platform), expected, "{image} {tag:?} {platform:?}");
        };
        check("example/api:latest", None, None, "example/api:latest");
        check("example/api:latest", Some("1.0"), None, "example/api:1.0");
        check("example/api", None, None, "example/api");
        check("example/api:latest", None, Some("linux/arm64"), "example/api:latest-linux-arm64");
        check("example/api:1.0", Some("2.0"), Some("linux/amd64"), "example/api:2.0-linux-amd64");
        check("example/api", None, Some("linux/arm/v7"), "example/api:latest-linux-arm-v7");
        check("registry:5000/example/api", None, Some("linux/amd64"), "registry:5000/example/api:latest-linux-amd64");
        check(
            "registry:5000/example/api:1.0@sha256:abc",
            None,
            Some("linux/amd64"),
            "registry:5000/example/api:1.0-linux-amd64",
        );
    }
}
