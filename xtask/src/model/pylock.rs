//! Reads a PEP 751 lock (`pylock.toml`, as `uv pip compile --format pylock.toml` writes it) into
//! the same resolved packages pip's report gives: one wheel per package, the one the target's tags
//! rank first.
//!
//! A lock has no `Requires-Dist`: the caller fills `requires_dist` from each wheel's METADATA and
//! links the edges with `resolution::link_under_target`, as the pip path does.

use std::collections::{BTreeMap, BTreeSet};

use pep508_rs::{MarkerEnvironment, MarkerTree, Requirement};
use serde::Deserialize;

use crate::model::{
    manifest::{is_plain_file_name, ResolvedPackage},
    redact::redact_url,
    resolution::{filename_of, marker_environment_of, Pin},
    target::{Target, TargetError},
    untrusted::shown,
    wheel_name::{normalize, DistributionName},
};

/// The lock format this reads: PEP 751 `lock-version = "1.0"`; a later minor adds only what a
/// reader may ignore.
const LOCK_MAJOR: &str = "1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PylockError {
    #[error("{origin} is not a valid pylock.toml: {message}")]
    Toml { origin: String, message: String },
    #[error(
        "{origin} has lock-version {version}, and this tool reads lock-version {LOCK_MAJOR}.x\nhint: write the lock \
         with a tool that writes lock-version {LOCK_MAJOR} (uv does), or resolve the requirements instead"
    )]
    UnsupportedVersion { origin: String, version: String },
    #[error("{origin}: no wheel of `{package}` fits {target}; the lock offers: {offered}{hint}")]
    NoWheel { origin: String, package: String, target: String, offered: String, hint: String },
    #[error("{origin}: `{package}` comes from {source_kind}, which a wheelhouse cannot hold; only wheels can")]
    NotAWheel { origin: String, package: String, source_kind: String },
    #[error("{origin}: `{package}` has a marker that does not parse: {message}")]
    Marker { origin: String, package: String, message: String },
    /// A name, version or file name no index would serve, which the manifest could not hold.
    #[error("{origin}: {what} is not a valid {kind}")]
    Invalid { origin: String, what: String, kind: &'static str },
    #[error("{origin} is not for {target}: {why}")]
    NotForTarget { origin: String, target: String, why: String },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{0}")]
    Environment(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Lock {
    lock_version: String,
    /// Markers of the environments the lock is for; none of them true: not for this target.
    environments: Option<Vec<String>>,
    requires_python: Option<String>,
    #[serde(default)]
    packages: Vec<Package>,
}

/// A locked package, as PEP 751 has it; `uvlock` makes these too, from a uv lock.
#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct Package {
    pub name: String,
    pub version: Option<String>,
    pub marker: Option<String>,
    #[serde(default)]
    pub wheels: Vec<LockedFile>,
    pub archive: Option<LockedFile>,
    pub sdist: Option<LockedFile>,
    pub vcs: Option<toml::Value>,
    pub directory: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
pub(crate) struct LockedFile {
    pub name: Option<String>,
    pub url: Option<String>,
    #[serde(default)]
    pub hashes: BTreeMap<String, String>,
}

impl LockedFile {
    fn filename(&self) -> Option<String> {
        self.name.clone().or_else(|| filename_of(self.url.as_deref()?).ok())
    }
}

/// The packages of a lock that apply to `target`. `origin` names the lock in errors (which
/// requirements, which target). `requested` are the requirement lines of the requirements file
/// (and its `-r` includes): a package they name is `direct`, with their extras.
///
/// With `build_sdists`, a package with no wheel for the target but an sdist yields a pin of the
/// sdist (its file name does not end in `.whl`), for the caller to build into a pure wheel.
pub fn parse_pylock(
    text: &str,
    origin: &str,
    target: &Target,
    requested: &[String],
    build_sdists: bool,
) -> Result<Vec<Pin>, PylockError> {
    let lock: Lock = toml::from_str(text)
        .map_err(|error| PylockError::Toml { origin: origin.to_owned(), message: error.message().to_owned() })?;
    if lock.lock_version.split('.').next() != Some(LOCK_MAJOR) {
        return Err(PylockError::UnsupportedVersion { origin: origin.to_owned(), version: lock.lock_version });
    }
    let environment = marker_environment_of(&target.marker_environment()).map_err(PylockError::Environment)?;
    check_lock_applies(&lock, origin, target, &environment)?;
    let requests = requested_by_name(requested, &environment);
    pins_of(&lock.packages, origin, target, &environment, &requests, build_sdists)
}

/// The pins of the packages whose markers hold: for each, the file the target ranks first.
/// `requests` (normalized names, with their extras) are `direct`.
pub(crate) fn pins_of(
    packages: &[Package],
    origin: &str,
    target: &Target,
    environment: &MarkerEnvironment,
    requests: &BTreeMap<String, BTreeSet<String>>,
    build_sdists: bool,
) -> Result<Vec<Pin>, PylockError> {
    let ranks = tag_ranks(target)?;
    let mut pins = Vec::with_capacity(packages.len());
    let invalid =
        |what: &str, kind: &'static str| PylockError::Invalid { origin: origin.to_owned(), what: shown(what), kind };
    for package in packages {
        let name = normalize(&package.name);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(invalid(&package.name, "package name"));
        }
        if let Some(marker) = &package.marker {
            let tree: MarkerTree = marker.parse().map_err(|error: pep508_rs::Pep508Error| PylockError::Marker {
                origin: origin.to_owned(),
                package: name.clone(),
                message: error.message.to_string(),
            })?;
            if !tree.evaluate(environment, &[]) {
                continue;
            }
        }
        let (file, is_direct) = choose_file(package, &ranks, origin, target, build_sdists)?;
        let Some(url) = file.url.clone() else {
            return Err(PylockError::NotAWheel {
                origin: origin.to_owned(),
                package: name,
                source_kind: "a local path".to_owned(),
            });
        };
        let filename = file.filename().unwrap_or_default();
        if !is_plain_file_name(&filename) || DistributionName::parse(&filename).is_err() {
            return Err(invalid(&filename, "distribution file name"));
        }
        let version = match &package.version {
            Some(version) => version.clone(),
            None => DistributionName::parse(&filename).map(|parsed| parsed.version).unwrap_or_default(),
        };
        if version.is_empty() || !version.chars().all(|c| c.is_ascii_alphanumeric() || ".+!_-".contains(c)) {
            return Err(invalid(&version, "version"));
        }
        let extras = requests.get(&name).cloned();
        pins.push(Pin {
            package: ResolvedPackage {
                name: name.clone(),
                version,
                filename,
                direct: extras.is_some(),
                extras: extras.unwrap_or_default().into_iter().collect(),
                dependencies: Vec::new(),
                requires_dist: Vec::new(),
                url: redact_url(&url),
            },
            sha256: file.hashes.get("sha256").cloned(),
            source_url: url,
            is_direct,
        });
    }
    pins.sort_by(|left, right| left.package.name.cmp(&right.package.name));
    Ok(pins)
}

/// A lock names the environments and the Pythons it was made for; a target outside them would
/// get a set nobody resolved for it.
fn check_lock_applies(
    lock: &Lock,
    origin: &str,
    target: &Target,
    environment: &MarkerEnvironment,
) -> Result<(), PylockError> {
    let not_for =
        |why: String| PylockError::NotForTarget { origin: origin.to_owned(), target: target.to_string(), why };
    check_requires_python(lock.requires_python.as_deref(), origin, target)?;
    if let Some(environments) = &lock.environments {
        let mut holds = false;
        for text in environments {
            let marker: MarkerTree = text.parse().map_err(|error: pep508_rs::Pep508Error| {
                not_for(format!("its environment `{text}` does not parse: {}", error.message))
            })?;
            holds |= marker.evaluate(environment, &[]);
        }
        if !holds {
            return Err(not_for(format!("none of its environments holds ({})", environments.join("; "))));
        }
    }
    Ok(())
}

/// A lock's `requires-python` must hold for the target's Python.
pub(crate) fn check_requires_python(
    requires_python: Option<&str>,
    origin: &str,
    target: &Target,
) -> Result<(), PylockError> {
    let not_for =
        |why: String| PylockError::NotForTarget { origin: origin.to_owned(), target: target.to_string(), why };
    if let Some(specifiers) = requires_python {
        let parsed: pep508_rs::pep440_rs::VersionSpecifiers = specifiers
            .parse()
            .map_err(|error| not_for(format!("its requires-python `{specifiers}` does not parse: {error}")))?;
        let version: pep508_rs::pep440_rs::Version =
            target.python.full().parse().map_err(|error| not_for(format!("{error}")))?;
        if !parsed.contains(&version) {
            return Err(not_for(format!("its requires-python is `{specifiers}`, the target's Python is {version}")));
        }
    }
    Ok(())
}

/// A lock says nothing of which packages were asked for: those no other package of the target
/// depends on are its roots, and are marked `direct`. Runs after the edges are linked.
pub fn mark_roots_direct(pins: &mut [Pin]) {
    let depended_on: BTreeSet<String> = pins.iter().flat_map(|pin| pin.package.dependencies.iter().cloned()).collect();
    for pin in pins.iter_mut() {
        pin.package.direct = !depended_on.contains(&pin.package.name);
    }
}

/// The file to fetch: the wheel the target ranks first, or a direct URL to a wheel (`archive`).
fn choose_file<'a>(
    package: &'a Package,
    ranks: &BTreeMap<(String, String, String), usize>,
    origin: &str,
    target: &Target,
    build_sdists: bool,
) -> Result<(&'a LockedFile, bool), PylockError> {
    let not_a_wheel = |source_kind: &str| PylockError::NotAWheel {
        origin: origin.to_owned(),
        package: normalize(&package.name),
        source_kind: source_kind.to_owned(),
    };
    if package.vcs.is_some() {
        return Err(not_a_wheel("a version control system"));
    }
    if package.directory.is_some() {
        return Err(not_a_wheel("a local directory"));
    }
    if let Some(archive) = &package.archive {
        return match archive.filename() {
            Some(filename) if filename.ends_with(".whl") => Ok((archive, true)),
            _ => Err(not_a_wheel("a URL to an archive that is not a wheel")),
        };
    }
    let best = package
        .wheels
        .iter()
        .filter_map(|wheel| Some((wheel_rank(&wheel.filename()?, ranks)?, wheel)))
        .min_by_key(|(rank, _)| *rank);
    if let Some((_, wheel)) = best {
        return Ok((wheel, false));
    }
    let sdist = package.sdist.as_ref().filter(|sdist| sdist.url.is_some() && sdist.hashes.contains_key("sha256"));
    if let Some(sdist) = sdist.filter(|_| build_sdists) {
        return Ok((sdist, false));
    }
    let mut offered: Vec<String> = package.wheels.iter().filter_map(LockedFile::filename).collect();
    offered.extend(package.sdist.as_ref().and_then(LockedFile::filename).map(|name| format!("{name} (an sdist)")));
    let version = package.version.as_deref().map(|version| format!("=={version}")).unwrap_or_default();
    Err(PylockError::NoWheel {
        origin: origin.to_owned(),
        package: format!("{}{version}", normalize(&package.name)),
        target: target.to_string(),
        offered: if offered.is_empty() { "nothing".to_owned() } else { offered.join(", ") },
        hint: if sdist.is_some() {
            "\nhint: if the package is pure Python, pass --build-sdists to build its wheel from the locked sdist"
                .to_owned()
        } else {
            String::new()
        },
    })
}

/// The best rank among the tags a wheel's file name expands to, if the target accepts any.
fn wheel_rank(filename: &str, ranks: &BTreeMap<(String, String, String), usize>) -> Option<usize> {
    let tags = DistributionName::parse(filename).ok()?.tags?;
    let mut best = None;
    for python in tags.python.split('.') {
        for abi in tags.abi.split('.') {
            for platform in tags.platform.split('.') {
                if let Some(rank) = ranks.get(&(python.to_owned(), abi.to_owned(), platform.to_owned())) {
                    best = Some(best.map_or(*rank, |best: usize| best.min(*rank)));
                }
            }
        }
    }
    best
}

/// Every (python, abi, platform) tag a CPython of the target installs, most preferred first, in
/// the order of `packaging.tags.sys_tags`, which is how pip ranks the wheels of one version.
fn tag_ranks(target: &Target) -> Result<BTreeMap<(String, String, String), usize>, TargetError> {
    let platforms = target.platform_tags()?;
    let cpython = target.python.cpython_tag();
    let major = target.python.major;
    let mut ordered: Vec<(String, String, String)> = Vec::new();
    for abi in [cpython.as_str(), "abi3", "none"] {
        ordered.extend(platforms.iter().map(|platform| (cpython.clone(), abi.to_owned(), platform.clone())));
    }
    for minor in (2..target.python.minor).rev() {
        let older = format!("cp{major}{minor}");
        ordered.extend(platforms.iter().map(|platform| (older.clone(), "abi3".to_owned(), platform.clone())));
    }
    let mut pythons = vec![format!("py{major}{}", target.python.minor), format!("py{major}")];
    pythons.extend((0..target.python.minor).rev().map(|minor| format!("py{major}{minor}")));
    for python in &pythons {
        ordered.extend(platforms.iter().map(|platform| (python.clone(), "none".to_owned(), platform.clone())));
    }
    ordered.push((cpython.clone(), "none".to_owned(), "any".to_owned()));
    ordered.extend(pythons.iter().map(|python| (python.clone(), "none".to_owned(), "any".to_owned())));
    let mut ranks = BTreeMap::new();
    for (rank, tag) in ordered.into_iter().enumerate() {
        ranks.entry(tag).or_insert(rank);
    }
    Ok(ranks)
}

/// Normalized names the requirement lines ask for under the target's markers, with their extras.
/// Lines that are not PEP 508 requirements (paths, options) name nothing here.
pub(crate) fn requested_by_name(
    requested: &[String],
    environment: &MarkerEnvironment,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_name: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in requested {
        let Ok(requirement) = line.parse::<Requirement>() else { continue };
        if !requirement.evaluate_markers(environment, &[]) {
            continue;
        }
        by_name
            .entry(requirement.name.to_string())
            .or_default()
            .extend(requirement.extras.iter().map(|extra| normalize(extra.as_ref())));
    }
    by_name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::target::{Libc, Platform, PythonVersion};

    fn target(platform: Platform, python: &str) -> Target {
        Target { platform, python: PythonVersion::parse(python).unwrap(), libc: Libc::DEFAULT }
    }

    fn lock(packages: &str) -> String {
        format!("lock-version = \"1.0\"\ncreated-by = \"uv\"\n{packages}")
    }

    fn package(name: &str, wheels: &[&str]) -> String {
        let wheels: Vec<String> = wheels
            .iter()
            .map(|wheel| {
                format!("{{ url = \"https://index.test/files/{wheel}\", hashes = {{ sha256 = \"h-{wheel}\" }} }}")
            })
            .collect();
        format!("[[packages]]\nname = \"{name}\"\nversion = \"2.0\"\nwheels = [{}]\n", wheels.join(", "))
    }

    /// The file chosen for each package of `text` on `target`.
    fn check(text: &str, target: Target, expected: &[&str]) {
        let pins = parse_pylock(text, "the lock", &target, &[], false).unwrap();
        let chosen: Vec<&str> = pins.iter().map(|pin| pin.package.filename.as_str()).collect();
        assert_eq!(chosen, expected);
    }

    #[test]
    fn a_lock_for_other_environments_or_pythons_is_refused_for_the_target() {
        let amd64 = || target(Platform::Amd64, "3.11");
        let only_arm = "lock-version = \"1.0\"\nenvironments = [\"platform_machine == 'aarch64'\"]\n";
        let error = parse_pylock(only_arm, "pylock.toml", &amd64(), &[], false).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("pylock.toml is not for linux/amd64 python 3.11: none of its environments holds"),
            "{error}"
        );
        let newer = "lock-version = \"1.0\"\nrequires-python = \">=3.12\"\n";
        let error = parse_pylock(newer, "pylock.toml", &amd64(), &[], false).unwrap_err();
        assert!(error.to_string().contains("its requires-python is `>=3.12`, the target's Python is 3.11"), "{error}");
        let both = "lock-version = \"1.0\"\nrequires-python = \">=3.10\"\nenvironments = [\"platform_machine == 'aarch64'\", \"platform_machine == 'x86_64'\"]\n";
        assert!(parse_pylock(both, "pylock.toml", &amd64(), &[], false).unwrap().is_empty());
    }

    #[test]
    fn roots_of_a_lock_are_the_packages_nothing_depends_on() {
        let mut pins = parse_pylock(
            &lock(
                &[package("app", &["app-2.0-py3-none-any.whl"]), package("lib", &["lib-2.0-py3-none-any.whl"])]
                    .concat(),
            ),
            "the lock",
            &target(Platform::Amd64, "3.11"),
            &[],
            false,
        )
        .unwrap();
        pins[0].package.dependencies = vec!["lib".to_owned()];
        mark_roots_direct(&mut pins);
        let direct: Vec<(&str, bool)> =
            pins.iter().map(|pin| (pin.package.name.as_str(), pin.package.direct)).collect();
        assert_eq!(direct, [("app", true), ("lib", false)]);
    }

    const COMPILED: [&str; 5] = [
        "compiled-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "compiled-2.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "compiled-2.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "compiled-2.0-cp312-abi3-manylinux_2_34_aarch64.whl",
        "compiled-2.0-py3-none-any.whl",
    ];

    #[test]
    fn the_wheel_chosen_is_the_one_the_target_ranks_first() {
        let text = lock(&package("Compiled", &COMPILED));
        check(&text, target(Platform::Amd64, "3.11"), &[COMPILED[0]]);
        check(&text, target(Platform::Amd64, "3.12"), &[COMPILED[1]]);
        check(&text, target(Platform::Arm64, "3.11"), &[COMPILED[2]]);
        // The abi3 wheel needs glibc 2.34, above the default floor: the pure wheel it is.
        check(&text, target(Platform::Arm64, "3.12"), &[COMPILED[4]]);
        let abi3 = lock(&package("x", &["x-1-cp39-abi3-manylinux_2_17_aarch64.whl", "x-1-py3-none-any.whl"]));
        check(&abi3, target(Platform::Arm64, "3.12"), &["x-1-cp39-abi3-manylinux_2_17_aarch64.whl"]);
    }

    #[test]
    fn a_package_without_a_wheel_for_the_target_is_named_with_the_target_and_what_is_offered() {
        let text = lock(&format!(
            "{}sdist = {{ url = \"https://index.test/files/compiled-2.0.tar.gz\", hashes = {{}} }}\n",
            package("compiled", &COMPILED[..2])
        ));
        let error = parse_pylock(&text, "uv's lock of requirements.txt", &target(Platform::Arm64, "3.12"), &[], false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "uv's lock of requirements.txt: no wheel of `compiled==2.0` fits linux/arm64 python 3.12; the lock \
                 offers: {}, {}, compiled-2.0.tar.gz (an sdist)",
                COMPILED[0], COMPILED[1]
            )
        );
    }

    #[test]
    fn markers_requests_hashes_and_urls_are_kept() {
        let text = lock(&format!(
            "{}marker = \"platform_machine == 'aarch64'\"\n{}{}",
            package("armonly", &["armonly-2.0-py3-none-any.whl"]),
            package("With_Extra", &["with_extra-2.0-py3-none-any.whl"]),
            package("speedup", &["speedup-2.0-py3-none-any.whl"]),
        ));
        let requested = ["with-extra[Fast]>=1 --hash=sha256:00".replace(" --hash=sha256:00", ""), "-e .".to_owned()];
        let pins = parse_pylock(&text, "the lock", &target(Platform::Amd64, "3.11"), &requested, false).unwrap();
        let names: Vec<(&str, bool, Vec<String>)> = pins
            .iter()
            .map(|pin| (pin.package.name.as_str(), pin.package.direct, pin.package.extras.clone()))
            .collect();
        assert_eq!(names, [("speedup", false, vec![]), ("with-extra", true, vec!["fast".to_owned()])]);
        assert_eq!(pins[0].sha256.as_deref(), Some("h-speedup-2.0-py3-none-any.whl"));
        assert_eq!(pins[0].source_url, "https://index.test/files/speedup-2.0-py3-none-any.whl");
        assert!(!pins[0].is_direct);
    }

    #[test]
    fn an_unknown_lock_version_or_a_source_tree_is_refused_by_name() {
        let error = parse_pylock(
            "lock-version = \"2.0\"\n",
            "uv's lock of a.txt",
            &target(Platform::Amd64, "3.11"),
            &[],
            false,
        )
        .unwrap_err();
        assert!(error
            .to_string()
            .starts_with("uv's lock of a.txt has lock-version 2.0, and this tool reads lock-version 1.x"));
        let text = lock("[[packages]]\nname = \"mine\"\ndirectory = { path = \"./mine\" }\n");
        let error = parse_pylock(&text, "the lock", &target(Platform::Amd64, "3.11"), &[], false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the lock: `mine` comes from a local directory, which a wheelhouse cannot hold; only wheels can"
        );
    }

    #[test]
    fn names_versions_and_file_names_no_index_would_serve_are_refused_and_shown_escaped() {
        let amd64 = target(Platform::Amd64, "3.11");
        let bad_version = lock(&package("lib", &["lib-2.0-py3-none-any.whl"]))
            .replace("version = \"2.0\"", "version = \"2.0\\u001b]0;x\"");
        let error = parse_pylock(&bad_version, "pylock.toml", &amd64, &[], false).unwrap_err();
        assert!(matches!(error, PylockError::Invalid { kind: "version", .. }), "{error}");
        assert!(!error.to_string().contains('\u{1b}'), "{error:?}");
        let bad_file =
            lock(&package("lib", &["lib-2.0-py3-none-any.whl"])).replace("files/lib-2.0", "files/%0Alib-2.0");
        let error = parse_pylock(&bad_file, "pylock.toml", &amd64, &[], false).unwrap_err();
        assert!(matches!(error, PylockError::Invalid { .. }), "{error}");
    }
}
