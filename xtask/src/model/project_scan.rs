//! What a project holds that decides its settings: the base image of each Dockerfile and what it
//! implies (Python version, libc, platform), the commented `wheelhouse.toml` that follows, the
//! `.gitignore` lines for the tool's files, and empty marker blocks put into a Dockerfile.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{
    dockerfile::{begin_marker, end_marker, from_lines, INSTALL_BLOCK, STAGE_BLOCK},
    target::Platform,
};

/// The libc floor of an Alpine base (musllinux wheels).
pub const MUSL: &str = "musl_1_2";

/// One image the project builds: a compose service, or a Dockerfile found without compose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// The service's name, or the Dockerfile's path when there is no compose file.
    pub name: String,
    /// Relative to the project root.
    pub dockerfile: String,
    /// The final stage's base image, `None` when the Dockerfile has no `FROM`.
    pub base_image: Option<String>,
    pub python: Option<String>,
    pub libc: Option<String>,
    /// From compose's `platform:`, else a `FROM --platform=`.
    pub platform: Option<String>,
}

impl Image {
    /// What `dockerfile` (its text) and the service's `platform`/build `args` say.
    pub fn scan(
        name: &str,
        dockerfile: &str,
        text: &str,
        build_args: &BTreeMap<String, String>,
        platform: Option<&str>,
    ) -> Image {
        let base_image = final_base(text, build_args);
        let platform = platform.map(str::to_owned).or_else(|| final_from_platform(text));
        Image {
            name: name.to_owned(),
            dockerfile: dockerfile.to_owned(),
            python: base_image.as_deref().and_then(python_of),
            libc: base_image.as_deref().filter(|image| is_musl(image)).map(|_| MUSL.to_owned()),
            platform: platform.map(|platform| normalize_platform(&platform)),
            base_image,
        }
    }

    /// `from dockerfiles/api.Dockerfile: FROM python:3.12-slim`.
    fn source(&self) -> String {
        match &self.base_image {
            Some(image) => format!("from {}: FROM {image}", self.dockerfile),
            None => format!("from {}: no FROM", self.dockerfile),
        }
    }
}

/// The image of the final stage, following `FROM <earlier stage>` back to a real image.
pub fn final_base(text: &str, build_args: &BTreeMap<String, String>) -> Option<String> {
    let froms = from_lines(text, build_args);
    let mut image = froms.last()?.image.clone();
    for from in froms.iter().rev() {
        if from.stage.as_deref().is_some_and(|stage| stage.eq_ignore_ascii_case(&image)) {
            image = from.image.clone();
        }
    }
    Some(image)
}

/// `FROM --platform=linux/arm64 ...` on the last `FROM`; variables (`$BUILDPLATFORM`) say nothing.
fn final_from_platform(text: &str) -> Option<String> {
    let last = text.lines().rfind(|line| is_instruction(line, "FROM"))?;
    let flag = last.split_whitespace().find_map(|word| word.strip_prefix("--platform="))?;
    (!flag.contains('$')).then(|| flag.to_owned())
}

/// `linux/arm64/v8` and `aarch64` → `linux/arm64`; anything unknown is kept as written.
fn normalize_platform(platform: &str) -> String {
    platform.parse::<Platform>().map_or_else(|_| platform.to_owned(), |known| known.docker_name().to_owned())
}

/// Repository (last path component, lowercase) and tag of an image reference.
fn repository_and_tag(image: &str) -> (String, String) {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let (repository, tag) = last.split_once(':').unwrap_or((last, "latest"));
    (repository.to_ascii_lowercase(), tag.to_ascii_lowercase())
}

/// The Python `MAJOR.MINOR` of a base image: the official image's tag, else the `python3` of the
/// distribution release it names. `None` when the image does not say.
pub fn python_of(image: &str) -> Option<String> {
    let (repository, tag) = repository_and_tag(image);
    let release = tag.split('-').next().unwrap_or(&tag);
    match repository.as_str() {
        "python" => {
            let mut parts = release.split('.');
            let (major, minor) = (parts.next()?, parts.next()?);
            let numeric = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
            (major == "3" && numeric(minor)).then(|| format!("{major}.{minor}"))
        }
        "debian" => match release {
            "bullseye" | "11" => Some("3.9"),
            "bookworm" | "12" => Some("3.11"),
            "trixie" | "13" => Some("3.13"),
            _ if release.starts_with("11.") => Some("3.9"),
            _ if release.starts_with("12.") => Some("3.11"),
            _ if release.starts_with("13.") => Some("3.13"),
            _ => None,
        }
        .map(str::to_owned),
        "ubuntu" => match release {
            "20.04" | "focal" => Some("3.8"),
            "22.04" | "jammy" => Some("3.10"),
            "24.04" | "noble" => Some("3.12"),
            _ => None,
        }
        .map(str::to_owned),
        "alpine" => match release {
            "3.18" | "3.19" => Some("3.11"),
            "3.20" | "3.21" | "3.22" => Some("3.12"),
            _ => None,
        }
        .map(str::to_owned),
        _ => None,
    }
}

/// An Alpine image or an `-alpine` tag: musl, not glibc.
pub fn is_musl(image: &str) -> bool {
    let (repository, tag) = repository_and_tag(image);
    repository == "alpine" || tag.split('-').any(|part| part.starts_with("alpine"))
}

/// What the settings should say, with where each value came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inferred {
    /// `None`: leave the key out (the default applies).
    pub platforms: Option<Vec<String>>,
    pub python: Option<Vec<String>>,
    pub libc: Option<String>,
    /// One comment line per reason, by key.
    #[serde(skip)]
    pub reasons: BTreeMap<&'static str, Vec<String>>,
}

/// The targets the images need. `host` is this machine's platform, which a service without a
/// platform is built for; `compose_file` names the file `platform:` came from.
pub fn infer(images: &[Image], host: Option<&str>, compose_file: Option<&str>) -> Inferred {
    let mut inferred = Inferred::default();
    let mut reason = |key: &'static str, line: String| inferred.reasons.entry(key).or_default().push(line);
    let mut platforms: Vec<String> = Vec::new();
    let mut without_platform = Vec::new();
    for image in images {
        match &image.platform {
            Some(platform) => {
                let from = compose_file.map_or_else(|| image.dockerfile.clone(), str::to_owned);
                reason("platforms", format!("from {from}: `{}` is built for {platform}", image.name));
                push_unique(&mut platforms, platform);
            }
            None => without_platform.push(image.name.as_str()),
        }
    }
    if !platforms.is_empty() && !without_platform.is_empty() {
        let names = without_platform.join("`, `");
        match host {
            Some(host) => {
                reason("platforms", format!("`{names}` names no platform: built for the host's, {host} here"));
                push_unique(&mut platforms, host);
            }
            None => reason("platforms", format!("`{names}` names no platform, and this host's is unknown")),
        }
    }
    let mut pythons: Vec<String> = Vec::new();
    let mut unknown_python = Vec::new();
    for image in images {
        match &image.python {
            Some(python) => {
                reason("python", image.source());
                push_unique(&mut pythons, python);
            }
            None => unknown_python.push(image.source()),
        }
    }
    for source in unknown_python {
        reason("python", format!("{source}: no Python version known for this base"));
    }
    let musl: Vec<&Image> = images.iter().filter(|image| image.libc.is_some()).collect();
    if !musl.is_empty() && musl.len() == images.len() {
        for image in &musl {
            reason("libc", format!("{} (Alpine: musl)", image.source()));
        }
        inferred.libc = Some(MUSL.to_owned());
    } else if !musl.is_empty() {
        for image in &musl {
            reason("libc", format!("{} is Alpine (musl), the others glibc: one libc per wheelhouse", image.source()));
        }
    }
    if !platforms.is_empty() {
        platforms.sort();
        inferred.platforms = Some(platforms);
    }
    if !pythons.is_empty() {
        pythons
            .sort_by_key(|python| python.split('.').map(|part| part.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>());
        inferred.python = Some(pythons);
    }
    inferred
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|existing| existing == value) {
        list.push(value.to_owned());
    }
}

/// What `wheelhouse.toml` is written from.
pub struct Found<'a> {
    pub requirements: &'a [String],
    pub pyproject: bool,
    pub compose_file: Option<&'a str>,
    pub inferred: &'a Inferred,
    /// The command the user ran (`wheelgap`, `cargo xtask`), for the header.
    pub program: &'a str,
}

/// The commented `wheelhouse.toml`: every key says what it means and where its value came from; a
/// key left out says which default applies instead.
pub fn render_settings(found: &Found) -> String {
    let mut out = format!(
        "# Settings of `{program}`, written by `{program} init` from what this project holds.\n\
         # Every key is optional, and a command-line flag overrides its key.\n\n",
        program = found.program
    );
    out.push_str("# The requirements files to resolve, relative to this file.\n");
    if found.requirements.is_empty() {
        out.push_str(
            "# None found (requirements*.txt at the root, requirements/*.txt): each run looks again.\n# requirements = []\n",
        );
    } else {
        out.push_str("# Found: requirements*.txt at the root and requirements/*.txt, lock files excluded.\n");
        out.push_str(&format!("requirements = {}\n", toml_list(found.requirements)));
    }
    if found.pyproject {
        out.push_str("# pyproject.toml was found but is not an input: list its dependencies in a requirements file.\n");
    }
    let inferred = found.inferred;
    let reasons = |key: &str| -> String {
        inferred.reasons.get(key).into_iter().flatten().map(|line| format!("# {line}\n")).collect()
    };
    out.push_str("\n# The targets: every platform x every Python version, with one libc floor.\n");
    match found.compose_file {
        Some(compose_file) => out.push_str(&format!("# Read from the building services of {compose_file}.\n")),
        None => out.push_str("# No compose file: read from Dockerfile, *.Dockerfile and dockerfiles/*.Dockerfile.\n"),
    }
    out.push_str("[targets]\n");
    out.push_str("# Container platforms the wheels are for.\n");
    out.push_str(&reasons("platforms"));
    match &inferred.platforms {
        Some(platforms) => out.push_str(&format!("platforms = {}\n", toml_list(platforms))),
        None => out.push_str("# Left out: no service names a platform, so the default is the host's.\n"),
    }
    out.push_str("# Python MAJOR.MINOR versions the wheels are for.\n");
    out.push_str(&reasons("python"));
    match &inferred.python {
        Some(python) => out.push_str(&format!("python = {}\n", toml_list(python))),
        None => out.push_str(
            "# Left out: no base image names a Python version, so the default is the version of the\n# interpreter that runs pip.\n",
        ),
    }
    out.push_str("# The libc floor: glibc_2_28 (manylinux wheels) or musl_1_2 (Alpine, musllinux wheels).\n");
    out.push_str(&reasons("libc"));
    match &inferred.libc {
        Some(libc) => out.push_str(&format!("libc = {}\n", toml_string(libc))),
        None => out.push_str("# Left out: glibc_2_28, the default.\n"),
    }
    out
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn toml_list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|item| toml_string(item)).collect::<Vec<_>>().join(", "))
}

/// The tool's own files, beside the wheelhouse: the directory, the archive and its sidecar, and
/// the partial archive of a run under way (`.wheelhouse.tgz.*`). The state directory (`.wheelgap/`:
/// run locks, staging directories, the last-verify record) ignores itself with a `.gitignore`.
pub const GITIGNORE_LINES: [&str; 4] = ["wheelhouse/", "wheelhouse.tgz", "wheelhouse.tgz.sha256", ".wheelhouse.tgz.*"];

/// The lines of [`GITIGNORE_LINES`] that `gitignore` (its text) lacks; `/wheelhouse/` counts.
pub fn missing_gitignore_lines(gitignore: &str) -> Vec<&'static str> {
    let present: Vec<&str> = gitignore.lines().map(|line| line.trim().trim_start_matches('/')).collect();
    GITIGNORE_LINES.into_iter().filter(|line| !present.contains(line)).collect()
}

/// `gitignore` with `missing` appended under a comment, ending with a newline.
pub fn append_gitignore(gitignore: &str, missing: &[&str], program: &str) -> String {
    let mut text = gitignore.to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("# {program}: the wheelhouse, its archive and their state files\n"));
    for line in missing {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Whether a line starts the instruction `name` (case-insensitive).
fn is_instruction(line: &str, name: &str) -> bool {
    line.split_whitespace().next().is_some_and(|word| word.eq_ignore_ascii_case(name))
}

/// The Dockerfile with the empty blocks it lacks: the stage block before the first `FROM`, the
/// install block after the final `FROM` and the `ARG`s right after it. `None` when it has both or
/// has no `FROM`.
pub fn insert_markers(text: &str, program: &str) -> Option<String> {
    let has = |block: &str| text.lines().any(|line| line.starts_with(&format!("# >>> xtask {block}:")));
    let (needs_stage, needs_install) = (!has(STAGE_BLOCK), !has(INSTALL_BLOCK));
    if !needs_stage && !needs_install {
        return None;
    }
    // Instruction lines, continuations folded into the line that starts them.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut starts = Vec::new();
    let mut continued = false;
    for (index, line) in lines.iter().enumerate() {
        if !continued {
            starts.push(index);
        }
        continued = !line.trim_start().starts_with('#') && line.trim_end().ends_with('\\');
    }
    let froms: Vec<usize> = starts.iter().copied().filter(|&index| is_instruction(lines[index], "FROM")).collect();
    let (first_from, last_from) = (*froms.first()?, *froms.last()?);
    let next_start = |after: usize| starts.iter().copied().find(|&start| start > after).unwrap_or(lines.len());
    let mut install_at = next_start(last_from);
    while install_at < lines.len() && is_instruction(lines[install_at], "ARG") {
        install_at = next_start(install_at);
    }
    let block = |name: &str| format!("{}\n{}\n", begin_marker(name, program), end_marker(name));
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        if index == first_from && needs_stage {
            out.push_str(&block(STAGE_BLOCK));
        }
        if index == install_at && needs_install {
            out.push_str(&block(INSTALL_BLOCK));
        }
        out.push_str(line);
    }
    if install_at == lines.len() && needs_install {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&block(INSTALL_BLOCK));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_python(image: &str, expected: Option<&str>) {
        assert_eq!(python_of(image).as_deref(), expected, "{image}");
    }

    #[test]
    fn python_comes_from_the_tag_or_the_distribution() {
        check_python("python:3.12-slim", Some("3.12"));
        check_python("python:3.12.4-bookworm", Some("3.12"));
        check_python("docker.io/library/python:3.13-alpine", Some("3.13"));
        check_python("registry.local:5000/python:3.11@sha256:abc", Some("3.11"));
        check_python("debian:bookworm", Some("3.11"));
        check_python("debian:bookworm-slim", Some("3.11"));
        check_python("debian:trixie", Some("3.13"));
        check_python("ubuntu:24.04", Some("3.12"));
        check_python("ubuntu:22.04", Some("3.10"));
        check_python("python:3-slim", None);
        check_python("python", None);
        check_python("node:20", None);
        check_python("scratch", None);
    }

    fn check_libc(image: &str, musl: bool) {
        assert_eq!(is_musl(image), musl, "{image}");
    }

    #[test]
    fn alpine_is_musl() {
        check_libc("python:3.12-alpine", true);
        check_libc("python:3.12-alpine3.20", true);
        check_libc("alpine:3.20", true);
        check_libc("python:3.12-slim", false);
        check_libc("debian:bookworm", false);
    }

    fn check_scan(dockerfile: &str, platform: Option<&str>, expected: (Option<&str>, Option<&str>, Option<&str>)) {
        let image = Image::scan("api", "api.Dockerfile", dockerfile, &BTreeMap::new(), platform);
        assert_eq!(
            (image.base_image.as_deref(), image.python.as_deref(), image.platform.as_deref()),
            expected,
            "{dockerfile}"
        );
    }

    #[test]
    fn the_final_stage_decides() {
        check_scan("FROM python:3.12-slim\n", None, (Some("python:3.12-slim"), Some("3.12"), None));
        check_scan(
            "ARG BASE=python:3.13-slim\nFROM golang AS build\nFROM $BASE AS app\nFROM app\n",
            None,
            (Some("python:3.13-slim"), Some("3.13"), None),
        );
        check_scan(
            "FROM --platform=linux/arm64 debian:trixie\n",
            None,
            (Some("debian:trixie"), Some("3.13"), Some("linux/arm64")),
        );
        check_scan("FROM --platform=$BUILDPLATFORM debian:trixie\n", None, (Some("debian:trixie"), Some("3.13"), None));
        check_scan(
            "FROM ubuntu:22.04\n",
            Some("linux/arm64/v8"),
            (Some("ubuntu:22.04"), Some("3.10"), Some("linux/arm64")),
        );
        check_scan("# nothing\n", None, (None, None, None));
    }

    fn image(name: &str, base: &str, platform: Option<&str>) -> Image {
        Image::scan(name, &format!("{name}.Dockerfile"), &format!("FROM {base}\n"), &BTreeMap::new(), platform)
    }

    fn check_infer(images: &[Image], expected: (Option<&[&str]>, Option<&[&str]>, Option<&str>)) {
        let inferred = infer(images, Some("linux/amd64"), Some("compose.yaml"));
        let owned = |list: Option<&[&str]>| list.map(|list| list.iter().map(|item| item.to_string()).collect());
        assert_eq!(
            (inferred.platforms, inferred.python, inferred.libc),
            (owned(expected.0), owned(expected.1), expected.2.map(str::to_owned))
        );
    }

    #[test]
    fn targets_cover_every_service() {
        check_infer(&[image("api", "python:3.12-slim", None)], (None, Some(&["3.12"]), None));
        check_infer(
            &[image("api", "python:3.12-slim", Some("linux/arm64")), image("worker", "debian:bookworm", None)],
            (Some(&["linux/amd64", "linux/arm64"]), Some(&["3.11", "3.12"]), None),
        );
        check_infer(
            &[image("api", "python:3.13-alpine", None), image("x", "alpine:3.20", None)],
            (None, Some(&["3.12", "3.13"]), Some(MUSL)),
        );
        check_infer(
            &[image("api", "python:3.12-alpine", None), image("w", "python:3.12-slim", None)],
            (None, Some(&["3.12"]), None),
        );
        check_infer(&[image("api", "node:20", None)], (None, None, None));
    }

    #[test]
    fn the_settings_text_says_where_each_value_came_from() {
        let images = [image("api", "python:3.12-slim", Some("linux/arm64")), image("worker", "node:20", None)];
        let inferred = infer(&images, Some("linux/amd64"), Some("compose.yaml"));
        let requirements = ["requirements.txt".to_owned()];
        let found = Found {
            requirements: &requirements,
            pyproject: true,
            compose_file: Some("compose.yaml"),
            inferred: &inferred,
            program: "wheelgap",
        };
        let text = render_settings(&found);
        assert!(text.contains("# from api.Dockerfile: FROM python:3.12-slim\n# from worker"), "{text}");
        assert!(text.contains("# from worker.Dockerfile: FROM node:20: no Python version known"), "{text}");
        assert!(text.contains("platforms = [\"linux/amd64\", \"linux/arm64\"]"), "{text}");
        assert!(text.contains("requirements = [\"requirements.txt\"]"), "{text}");
        assert!(text.contains("pyproject.toml was found"), "{text}");
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(value["targets"]["python"][0].as_str(), Some("3.12"));
        assert!(value["targets"].get("libc").is_none());
    }

    fn check_gitignore(existing: &str, expected: &[&str]) {
        assert_eq!(missing_gitignore_lines(existing), expected, "{existing:?}");
    }

    #[test]
    fn only_missing_gitignore_lines_are_added() {
        check_gitignore("", &GITIGNORE_LINES);
        check_gitignore(
            "/wheelhouse/\n.wheelhouse.*\n",
            &["wheelhouse.tgz", "wheelhouse.tgz.sha256", ".wheelhouse.tgz.*"],
        );
        check_gitignore(&GITIGNORE_LINES.join("\n"), &[]);
        let appended = append_gitignore("target", &["wheelhouse/"], "wheelgap");
        assert_eq!(appended, "target\n# wheelgap: the wheelhouse, its archive and their state files\nwheelhouse/\n");
    }

    fn check_markers(dockerfile: &str, expected: Option<&str>) {
        let stage = format!("{}\n{}\n", begin_marker(STAGE_BLOCK, "wheelgap"), end_marker(STAGE_BLOCK));
        let install = format!("{}\n{}\n", begin_marker(INSTALL_BLOCK, "wheelgap"), end_marker(INSTALL_BLOCK));
        let expected = expected.map(|text| text.replace("<stage>", &stage).replace("<install>", &install));
        assert_eq!(insert_markers(dockerfile, "wheelgap"), expected, "{dockerfile}");
    }

    #[test]
    fn markers_go_before_the_first_from_and_after_the_last() {
        check_markers(
            "FROM python:3.12-slim\nCOPY . /app\n",
            Some("<stage>FROM python:3.12-slim\n<install>COPY . /app\n"),
        );
        check_markers(
            "# syntax=x\nARG BASE=debian\nFROM golang AS build\nRUN make \\\n  all\nFROM $BASE\nARG A=1\nARG B\nRUN x\n",
            Some("# syntax=x\nARG BASE=debian\n<stage>FROM golang AS build\nRUN make \\\n  all\nFROM $BASE\nARG A=1\nARG B\n<install>RUN x\n"),
        );
        check_markers("FROM python:3.12-slim", Some("<stage>FROM python:3.12-slim\n<install>"));
        check_markers("RUN nothing\n", None);
        let done = insert_markers("FROM python:3.12\n", "wheelgap").unwrap();
        assert_eq!(insert_markers(&done, "cargo xtask"), None);
    }
}
