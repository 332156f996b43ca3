//! The one place that runs the container engine: choosing docker (buildx) or podman, the exact
//! command line of a build for each, and asking an engine about its images.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

use crate::model::untrusted::shown;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }
}

/// One image to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    pub dockerfile: PathBuf,
    pub context: PathBuf,
    pub tag: String,
    pub platform: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub build_contexts: BTreeMap<String, String>,
    /// `id=...,src=...` as both engines take them.
    pub secrets: Vec<String>,
    pub target: Option<String>,
    pub offline: bool,
    pub push: bool,
    pub builder: Option<String>,
    pub no_cache: bool,
}

/// How podman isolates `RUN` steps: under chroot isolation (`BUILDAH_ISOLATION=chroot`) podman
/// 4.3 accepts no network but the host's, so an offline build runs in a network namespace of its
/// own instead of with `--network=none`.
pub fn chroot_isolation() -> bool {
    std::env::var("BUILDAH_ISOLATION").is_ok_and(|value| value == "chroot")
}

/// The commands that make the image, in order: one build, and for podman a separate push.
pub fn build_commands(engine: Engine, spec: &BuildSpec, chroot_isolation: bool) -> Vec<Vec<String>> {
    let mut build: Vec<String> = match engine {
        Engine::Docker => vec!["docker".into(), "buildx".into(), "build".into()],
        Engine::Podman if spec.offline && chroot_isolation => {
            vec!["unshare".into(), "--net".into(), "podman".into(), "build".into()]
        }
        Engine::Podman => vec!["podman".into(), "build".into()],
    };
    let mut flag = |name: &str, value: &str| build.extend([name.to_owned(), value.to_owned()]);
    flag("--file", &spec.dockerfile.display().to_string());
    flag("--tag", &spec.tag);
    if let Some(platform) = &spec.platform {
        flag("--platform", platform);
    }
    for (key, value) in &spec.build_args {
        flag("--build-arg", &format!("{key}={value}"));
    }
    for (name, location) in &spec.build_contexts {
        flag("--build-context", &format!("{name}={location}"));
    }
    for secret in &spec.secrets {
        flag("--secret", secret);
    }
    if let Some(target) = &spec.target {
        flag("--target", target);
    }
    if engine == Engine::Docker {
        if let Some(builder) = &spec.builder {
            flag("--builder", builder);
        }
    }
    if spec.no_cache {
        build.push("--no-cache".to_owned());
    }
    if spec.offline && !(engine == Engine::Podman && chroot_isolation) {
        build.push("--network=none".to_owned());
    }
    if engine == Engine::Docker {
        // buildx keeps a result in its builder unless told to load it or push it.
        build.push(if spec.push { "--push" } else { "--load" }.to_owned());
    }
    build.push(spec.context.display().to_string());
    let mut commands = vec![build];
    if engine == Engine::Podman && spec.push {
        commands.push(vec!["podman".into(), "push".into(), spec.tag.clone()]);
    }
    commands
}

/// The same builds as a `docker buildx bake` file (bake reads JSON as well as HCL): one target per
/// build, all in the `default` group.
pub fn bake_file(builds: &[(String, BuildSpec)]) -> serde_json::Value {
    let mut targets = serde_json::Map::new();
    for (name, spec) in builds {
        let mut target = serde_json::json!({
            "context": spec.context.display().to_string(),
            "dockerfile": spec.dockerfile.display().to_string(),
            "tags": [spec.tag],
            "args": spec.build_args,
            "contexts": spec.build_contexts,
            "platforms": spec.platform.iter().collect::<Vec<_>>(),
            "secret": spec.secrets,
            "no-cache": spec.no_cache,
            "output": [if spec.push { "type=registry" } else { "type=docker" }],
        });
        if spec.offline {
            target["network"] = "none".into();
        }
        if let Some(stage) = &spec.target {
            target["target"] = stage.clone().into();
        }
        targets.insert(name.clone(), target);
    }
    let names: Vec<&String> = targets.keys().collect();
    serde_json::json!({ "group": { "default": { "targets": names } }, "target": targets })
}

/// The `ENV` of an image, to read what it says of itself (`PYTHON_VERSION` in the official
/// Python images).
pub fn image_environment(sh: &Shell, engine: Engine, image: &str) -> Vec<String> {
    let program = engine.name();
    let format = "{{json .Config.Env}}";
    cmd!(sh, "{program} image inspect --format {format} {image}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// `--engine`, else `CONTAINER_ENGINE`, else docker when both `docker buildx version` and
/// `docker info` answer, else podman when it answers.
pub fn choose(sh: &Shell, requested: Option<&str>) -> Result<Engine> {
    let requested = requested.map(str::to_owned).or_else(|| std::env::var("CONTAINER_ENGINE").ok());
    match requested.as_deref() {
        Some("docker") => return Ok(Engine::Docker),
        Some("podman") => return Ok(Engine::Podman),
        Some(other) => bail!("unknown container engine `{other}`: expected docker or podman"),
        None => {}
    }
    let answers = |command: xshell::Cmd<'_>| command.quiet().ignore_stdout().ignore_stderr().run().is_ok();
    let has_buildx = answers(cmd!(sh, "docker buildx version"));
    if has_buildx && answers(cmd!(sh, "docker info")) {
        return Ok(Engine::Docker);
    }
    if answers(cmd!(sh, "podman --version")) {
        return Ok(Engine::Podman);
    }
    let docker_state = match (which::which("docker").is_ok(), has_buildx) {
        (false, _) => "no docker",
        (true, false) => "a docker client without buildx",
        (true, true) => "docker buildx without a reachable engine",
    };
    bail!("no container engine that can build: found {docker_state}, and no podman\nhint: install podman (apt-get install podman buildah), or docker with buildx and a running engine, then pass --engine")
}

/// What the engine lacks to build at all, one problem a line with its hint: the preflight says
/// this first, so that a missing plugin or daemon is not reported as a missing base image.
pub fn missing_pieces(sh: &Shell, engine: Engine) -> Vec<String> {
    let install_hint = match engine {
        Engine::Docker => "install docker with the buildx plugin, or pass --engine podman",
        Engine::Podman => "apt-get install podman buildah, or pass --engine docker",
    };
    if let Err(missing) = super::find(engine.name(), &format!("`--engine {}`", engine.name()), install_hint) {
        return vec![missing.to_string()];
    }
    if engine == Engine::Podman {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if cmd!(sh, "docker buildx version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        missing.push(
            "docker has no buildx plugin (`docker buildx version` fails), and every build goes through buildx\nhint: install the plugin (Debian: apt-get install docker-buildx; Docker's own packages: docker-buildx-plugin), or pass --engine podman"
                .to_owned(),
        );
    }
    let said = match cmd!(sh, "docker info").quiet().ignore_stdout().ignore_status().output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(last_line(&String::from_utf8_lossy(&output.stderr)).unwrap_or("nothing").to_owned()),
        Err(error) => Some(error.to_string()),
    };
    if let Some(said) = said {
        missing.push(format!(
            "docker reaches no daemon: `docker info` says: {}\nhint: start one (systemctl start docker), or point DOCKER_HOST (or `docker context use`) at a reachable one, or pass --engine podman",
            shown(&said)
        ));
    }
    missing
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|line| !line.is_empty())
}

/// The oldest buildx that reads `network` in a bake file, which the offline bake file sets to
/// `none` (buildx 0.17.0 added it).
pub const BAKE_NETWORK_BUILDX: (u32, u32) = (0, 17);

/// Whether this buildx version reads `network` in a bake file.
pub fn reads_bake_network((major, minor, _): (u32, u32, u32)) -> bool {
    (major, minor) >= BAKE_NETWORK_BUILDX
}

/// The version of docker's buildx plugin, when there is one.
pub fn buildx_version(sh: &Shell) -> Option<(u32, u32, u32)> {
    let text = cmd!(sh, "docker buildx version").quiet().ignore_stderr().read().ok()?;
    parse_buildx_version(&text)
}

/// `github.com/docker/buildx v0.17.1 257815a` → (0, 17, 1). Distribution builds print the version
/// without the `v` (`0.13.1+ds1-3`), Docker Desktop with a suffix (`v0.19.2-desktop.1`).
pub fn parse_buildx_version(text: &str) -> Option<(u32, u32, u32)> {
    text.split_whitespace().find_map(|word| {
        let word = word.strip_prefix('v').unwrap_or(word);
        let mut numbers = word.split(['.', '-', '+']).map(|part| part.parse::<u32>().ok());
        let (Some(Some(major)), Some(Some(minor))) = (numbers.next(), numbers.next()) else { return None };
        Some((major, minor, numbers.next().flatten().unwrap_or(0)))
    })
}

pub fn image_exists(sh: &Shell, engine: Engine, image: &str) -> bool {
    let program = engine.name();
    let command = match engine {
        Engine::Docker => cmd!(sh, "{program} image inspect {image}"),
        Engine::Podman => cmd!(sh, "{program} image exists {image}"),
    };
    command.quiet().ignore_stdout().ignore_stderr().run().is_ok()
}

pub fn image_size(sh: &Shell, engine: Engine, image: &str) -> Option<u64> {
    let program = engine.name();
    let format = "{{.Size}}";
    let text = cmd!(sh, "{program} image inspect --format {format} {image}").quiet().ignore_stderr().read().ok()?;
    text.trim().parse().ok()
}

/// Runs one command line, returning whether it succeeded and everything it printed.
pub fn run(sh: &Shell, argv: &[String]) -> Result<(bool, String)> {
    let Some((program, args)) = argv.split_first() else { bail!("empty command") };
    crate::ui::verbose(&format!("+ {}", crate::model::shell::shell_command(argv)));
    let output = cmd!(sh, "{program} {args...}").quiet().ignore_status().output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::shell::shell_command;

    fn spec(offline: bool, push: bool) -> BuildSpec {
        BuildSpec {
            dockerfile: PathBuf::from("/repo/dockerfiles/api.Dockerfile"),
            context: PathBuf::from("/repo"),
            tag: "example/api:1.0".to_owned(),
            platform: Some("linux/amd64".to_owned()),
            build_args: BTreeMap::from([("OFFLINE".to_owned(), if offline { "1" } else { "0" }.to_owned())]),
            build_contexts: BTreeMap::from([("wheelhouse".to_owned(), "/repo/wheelhouse".to_owned())]),
            secrets: vec![],
            target: None,
            offline,
            push,
            builder: Some("remote".to_owned()),
            no_cache: false,
        }
    }

    fn check(engine: Engine, spec: &BuildSpec, chroot: bool, expected: &[&str]) {
        let actual: Vec<String> = build_commands(engine, spec, chroot).iter().map(|argv| shell_command(argv)).collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn docker_gets_buildx_with_no_network_offline() {
        check(
            Engine::Docker,
            &spec(true, false),
            false,
            &["docker buildx build --file /repo/dockerfiles/api.Dockerfile --tag example/api:1.0 --platform linux/amd64 --build-arg OFFLINE=1 --build-context wheelhouse=/repo/wheelhouse --builder remote --network=none --load /repo"],
        );
        check(
            Engine::Docker,
            &spec(false, true),
            false,
            &["docker buildx build --file /repo/dockerfiles/api.Dockerfile --tag example/api:1.0 --platform linux/amd64 --build-arg OFFLINE=0 --build-context wheelhouse=/repo/wheelhouse --builder remote --push /repo"],
        );
    }

    #[test]
    fn podman_gets_no_builder_a_separate_push_and_a_namespace_under_chroot() {
        check(
            Engine::Podman,
            &spec(true, true),
            false,
            &[
                "podman build --file /repo/dockerfiles/api.Dockerfile --tag example/api:1.0 --platform linux/amd64 --build-arg OFFLINE=1 --build-context wheelhouse=/repo/wheelhouse --network=none /repo",
                "podman push example/api:1.0",
            ],
        );
        check(
            Engine::Podman,
            &spec(true, false),
            true,
            &["unshare --net podman build --file /repo/dockerfiles/api.Dockerfile --tag example/api:1.0 --platform linux/amd64 --build-arg OFFLINE=1 --build-context wheelhouse=/repo/wheelhouse /repo"],
        );
        check(
            Engine::Podman,
            &spec(false, false),
            true,
            &["podman build --file /repo/dockerfiles/api.Dockerfile --tag example/api:1.0 --platform linux/amd64 --build-arg OFFLINE=0 --build-context wheelhouse=/repo/wheelhouse /repo"],
        );
    }

    #[test]
    fn buildx_versions_are_read_as_each_build_prints_them() {
        let check = |text: &str, expected: Option<(u32, u32, u32)>| {
            assert_eq!(parse_buildx_version(text), expected, "{text}");
        };
        check("github.com/docker/buildx v0.17.1 257815a6fb4d7f5b7d9c1bd6dd8fb8d1a22ff2b3\n", Some((0, 17, 1)));
        check("github.com/docker/buildx v0.16.2 3f4e2a4", Some((0, 16, 2)));
        check("github.com/docker/buildx 0.13.1+ds1-3 0.13.1+ds1-3", Some((0, 13, 1)));
        check("github.com/docker/buildx v0.19.2-desktop.1 a7f9cd3", Some((0, 19, 2)));
        check("github.com/docker/buildx v1.0 abc", Some((1, 0, 0)));
        check("docker: unknown command: docker buildx", None);
        check("", None);
        assert!(!reads_bake_network((0, 16, 9)));
        assert!(!reads_bake_network((0, 9, 1)));
        assert!(reads_bake_network((0, 17, 0)));
        assert!(reads_bake_network((0, 20, 1)));
        assert!(reads_bake_network((1, 0, 0)));
    }

    #[test]
    fn bake_files_carry_the_same_builds() {
        let bake = bake_file(&[("api".to_owned(), spec(true, false))]);
        assert_eq!(bake["group"]["default"]["targets"], serde_json::json!(["api"]));
        let target = &bake["target"]["api"];
        assert_eq!(target["network"], "none");
        assert_eq!(target["contexts"]["wheelhouse"], "/repo/wheelhouse");
        assert_eq!(target["args"]["OFFLINE"], "1");
        assert_eq!(target["output"], serde_json::json!(["type=docker"]));
        assert!(bake_file(&[("api".to_owned(), spec(false, true))])["target"]["api"].get("network").is_none());
    }
}
