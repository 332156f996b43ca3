//! Reads a `uv.lock` for one target: from the workspace root's dependencies (with the extras and
//! dependency groups asked for), the edges whose markers hold for the target, to the locked
//! packages; then, as for a PEP 751 lock, the wheel the target ranks first of each
//! ([`pylock::pins_of`]). No resolution.
//!
//! What is read: `version` (1), `requires-python`, and of each `[[package]]` its `name`,
//! `version`, `source`, `dependencies`, `optional-dependencies`, `dev-dependencies` (uv's name for
//! the PEP 735 groups), `sdist` and `wheels` (`url`, `hash`). The rest (`revision`,
//! `resolution-markers`, `metadata`, sizes, upload times) is not needed to pick the files.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use pep508_rs::{MarkerEnvironment, MarkerTree};
use serde::Deserialize;

use crate::model::{
    pylock::{check_requires_python, pins_of, LockedFile, Package, PylockError},
    pyproject::known,
    resolution::{marker_environment_of, Pin},
    target::Target,
    untrusted::shown,
    wheel_name::normalize,
};

/// The uv lock format this reads.
const UV_LOCK_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UvLockError {
    #[error("{origin} is not a valid uv.lock: {message}")]
    Toml { origin: String, message: String },
    #[error(
        "{origin} has version {version}, and this tool reads uv.lock version {UV_LOCK_VERSION}\nhint: export it as \
         a PEP 751 lock (`uv export --format pylock.toml -o pylock.toml`) and pass that"
    )]
    UnsupportedVersion { origin: String, version: u32 },
    #[error("{origin} has no workspace root (a package whose source is `virtual` or `editable` \".\")")]
    NoRoot { origin: String },
    #[error("{origin}: `{package}` depends on `{dependency}`, which the lock does not hold{detail}")]
    Missing { origin: String, package: String, dependency: String, detail: String },
    #[error("{origin} has no extra `{extra}` on its root `{root}`; it has: {known}")]
    UnknownExtra { origin: String, extra: String, root: String, known: String },
    #[error("{origin} has no dependency group `{group}` on its root `{root}`; it has: {known}")]
    UnknownGroup { origin: String, group: String, root: String, known: String },
    #[error("{origin}: a marker of `{package}` does not parse: {message}")]
    Marker { origin: String, package: String, message: String },
    #[error(
        "{origin} declares conflicting extras or groups (`conflicts`), and uv encodes the choice between them in \
         markers this tool does not read\nhint: export the lock for the extras and groups you want and pass that: `uv \
         export --format pylock.toml --extra NAME -o pylock.toml`"
    )]
    Conflicts { origin: String },
    #[error(transparent)]
    Lock(#[from] PylockError),
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvLock {
    version: u32,
    requires_python: Option<String>,
    /// The environments the lock was made for (`tool.uv.environments`); uv simplified every
    /// marker under them.
    supported_markers: Option<Vec<String>>,
    /// Extras or groups that cannot be installed together: uv then encodes the choice in markers
    /// this reader does not evaluate.
    #[serde(default)]
    conflicts: Vec<toml::Value>,
    #[serde(default, rename = "package")]
    packages: Vec<UvPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvPackage {
    name: String,
    version: Option<String>,
    #[serde(default)]
    source: BTreeMap<String, toml::Value>,
    #[serde(default)]
    dependencies: Vec<UvDependency>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, Vec<UvDependency>>,
    #[serde(default)]
    dev_dependencies: BTreeMap<String, Vec<UvDependency>>,
    sdist: Option<UvFile>,
    #[serde(default)]
    wheels: Vec<UvFile>,
}

#[derive(Deserialize)]
struct UvDependency {
    name: String,
    /// Present when the lock holds several versions of the name (a fork).
    version: Option<String>,
    source: Option<BTreeMap<String, toml::Value>>,
    marker: Option<String>,
    #[serde(default)]
    extra: Vec<String>,
}

#[derive(Deserialize)]
struct UvFile {
    url: Option<String>,
    filename: Option<String>,
    hash: Option<String>,
}

impl UvPackage {
    /// The project's own code: the workspace root or a member, never a file of the wheelhouse.
    fn is_local(&self) -> bool {
        ["virtual", "editable", "directory"].iter().any(|kind| self.source.contains_key(*kind))
    }

    fn is_root(&self) -> bool {
        ["virtual", "editable"].iter().any(|kind| self.source.get(*kind).and_then(toml::Value::as_str) == Some("."))
    }
}

/// The pins of `text` (a `uv.lock`) for `target`, with `extras` and `groups` of the workspace
/// root. `origin` names the lock in errors. `build_sdists` as for [`crate::model::pylock::parse_pylock`].
pub fn parse_uv_lock(
    text: &str,
    origin: &str,
    target: &Target,
    extras: &[String],
    groups: &[String],
    build_sdists: bool,
) -> Result<Vec<Pin>, UvLockError> {
    let lock: UvLock = toml::from_str(text)
        .map_err(|error| UvLockError::Toml { origin: origin.to_owned(), message: error.message().to_owned() })?;
    if lock.version != UV_LOCK_VERSION {
        return Err(UvLockError::UnsupportedVersion { origin: origin.to_owned(), version: lock.version });
    }
    check_requires_python(lock.requires_python.as_deref(), origin, target)?;
    if !lock.conflicts.is_empty() {
        return Err(UvLockError::Conflicts { origin: origin.to_owned() });
    }
    let environment = marker_environment_of(&target.marker_environment()).map_err(PylockError::Environment)?;
    if let Some(supported) = &lock.supported_markers {
        let mut holds = false;
        for text in supported {
            let marker: MarkerTree = text.parse().map_err(|error: pep508_rs::Pep508Error| UvLockError::Marker {
                origin: origin.to_owned(),
                package: "supported-markers".to_owned(),
                message: error.message.to_string(),
            })?;
            holds |= marker.evaluate(&environment, &[]);
        }
        if !holds {
            return Err(UvLockError::Lock(PylockError::NotForTarget {
                origin: origin.to_owned(),
                target: target.to_string(),
                why: format!("none of its supported-markers holds ({})", shown(&supported.join("; "))),
            }));
        }
    }
    let root = lock
        .packages
        .iter()
        .position(UvPackage::is_root)
        .ok_or_else(|| UvLockError::NoRoot { origin: origin.to_owned() })?;
    let walk = Walk { lock: &lock, origin, environment: &environment };

    // The root's edges: its dependencies, then those of the extras and groups asked for.
    let root_package = &lock.packages[root];
    let mut edges: Vec<&UvDependency> = root_package.dependencies.iter().collect();
    let optional = by_normalized_name(&root_package.optional_dependencies);
    for extra in extras {
        edges.extend(
            optional
                .get(&normalize(extra))
                .ok_or_else(|| UvLockError::UnknownExtra {
                    origin: origin.to_owned(),
                    extra: extra.clone(),
                    root: root_package.name.clone(),
                    known: known(optional.keys()),
                })?
                .iter(),
        );
    }
    let dev = by_normalized_name(&root_package.dev_dependencies);
    for group in groups {
        edges.extend(
            dev.get(&normalize(group))
                .ok_or_else(|| UvLockError::UnknownGroup {
                    origin: origin.to_owned(),
                    group: group.clone(),
                    root: root_package.name.clone(),
                    known: known(dev.keys()),
                })?
                .iter(),
        );
    }
    let mut requests: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut queue: VecDeque<(usize, Vec<String>)> = VecDeque::new();
    for edge in edges {
        if let Some(index) = walk.follow(root_package, edge)? {
            requests.entry(normalize(&edge.name)).or_default().extend(edge.extra.iter().map(|extra| normalize(extra)));
            queue.push_back((index, edge.extra.clone()));
        }
    }

    // Every package reached, with the extras it was reached with (each extra adds edges).
    let mut reached: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    while let Some((index, extras)) = queue.pop_front() {
        let first_visit = !reached.contains_key(&index);
        let seen = reached.entry(index).or_default();
        let new_extras: Vec<String> =
            extras.iter().map(|extra| normalize(extra)).filter(|extra| seen.insert(extra.clone())).collect();
        let package = &lock.packages[index];
        let optional = by_normalized_name(&package.optional_dependencies);
        let mut edges: Vec<&UvDependency> =
            if first_visit { package.dependencies.iter().collect() } else { Vec::new() };
        for extra in &new_extras {
            edges.extend(optional.get(extra).into_iter().flat_map(|list| list.iter()));
        }
        for edge in edges {
            if let Some(next) = walk.follow(package, edge)? {
                queue.push_back((next, edge.extra.clone()));
            }
        }
    }

    let packages: Vec<Package> = reached
        .keys()
        .map(|&index| &lock.packages[index])
        .filter(|package| !package.is_local())
        .map(as_locked_package)
        .collect();
    Ok(pins_of(&packages, origin, target, &environment, &requests, build_sdists)?)
}

struct Walk<'a> {
    lock: &'a UvLock,
    origin: &'a str,
    environment: &'a MarkerEnvironment,
}

impl Walk<'_> {
    /// The package an edge leads to, when its marker holds for the target.
    fn follow(&self, from: &UvPackage, edge: &UvDependency) -> Result<Option<usize>, UvLockError> {
        if let Some(marker) = &edge.marker {
            let tree: MarkerTree = marker.parse().map_err(|error: pep508_rs::Pep508Error| UvLockError::Marker {
                origin: self.origin.to_owned(),
                package: shown(&from.name),
                message: error.message.to_string(),
            })?;
            if !tree.evaluate(self.environment, &[]) {
                return Ok(None);
            }
        }
        let name = normalize(&edge.name);
        let candidates: Vec<usize> = (0..self.lock.packages.len())
            .filter(|&index| {
                let package = &self.lock.packages[index];
                normalize(&package.name) == name
                    && edge.version.as_ref().is_none_or(|version| package.version.as_ref() == Some(version))
                    && edge.source.as_ref().is_none_or(|source| *source == package.source)
            })
            .collect();
        match candidates.as_slice() {
            [index] => Ok(Some(*index)),
            [] => Err(self.missing(from, edge, "")),
            _ => Err(self.missing(from, edge, " as one package: several match, and the edge names no version")),
        }
    }

    fn missing(&self, from: &UvPackage, edge: &UvDependency, detail: &str) -> UvLockError {
        let version = edge.version.as_deref().map(|version| format!("=={version}")).unwrap_or_default();
        UvLockError::Missing {
            origin: self.origin.to_owned(),
            package: shown(&from.name),
            dependency: shown(&format!("{}{version}", edge.name)),
            detail: detail.to_owned(),
        }
    }
}

fn by_normalized_name<T>(map: &BTreeMap<String, T>) -> BTreeMap<String, &T> {
    map.iter().map(|(name, value)| (normalize(name), value)).collect()
}

/// A uv package as a PEP 751 one: its wheels and sdist with their URL and sha256; a `git` source
/// is told apart for the error.
fn as_locked_package(package: &UvPackage) -> Package {
    let file = |file: &UvFile| LockedFile {
        name: file.filename.clone(),
        // A direct-URL package names the URL once, on its source. A `path` (a wheel on the
        // locking machine's disk) has no URL: refused as a local path.
        url: file.url.clone().or_else(|| package.source.get("url").and_then(toml::Value::as_str).map(str::to_owned)),
        hashes: file
            .hash
            .as_deref()
            .and_then(|hash| hash.split_once(':'))
            .map(|(algorithm, digest)| BTreeMap::from([(algorithm.to_owned(), digest.to_owned())]))
            .unwrap_or_default(),
    };
    Package {
        name: package.name.clone(),
        version: package.version.clone(),
        marker: None,
        wheels: package.wheels.iter().map(file).collect(),
        sdist: package.sdist.as_ref().map(file),
        vcs: package.source.get("git").cloned(),
        ..Package::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::target::{Libc, Platform, PythonVersion};

    fn target(platform: Platform, minor: u32) -> Target {
        Target { platform, python: PythonVersion::parse(&format!("3.{minor}")).unwrap(), libc: Libc::DEFAULT }
    }

    const LOCK: &str = r#"
version = 1
revision = 2
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "purelib" },
    { name = "armonly", marker = "platform_machine == 'aarch64'" },
]

[package.optional-dependencies]
fast = [{ name = "withextra", extra = ["fast"] }]

[package.dev-dependencies]
test = [{ name = "oldpy", marker = "python_version < '3.12'" }]

[[package]]
name = "purelib"
version = "1.0"
source = { registry = "http://127.0.0.1/simple" }
sdist = { url = "http://127.0.0.1/files/purelib-1.0.tar.gz", hash = "sha256:aa", size = 1 }
wheels = [{ url = "http://127.0.0.1/files/purelib-1.0-py3-none-any.whl", hash = "sha256:bb", size = 1 }]

[[package]]
name = "armonly"
version = "1.0"
source = { registry = "http://127.0.0.1/simple" }
wheels = [{ url = "http://127.0.0.1/files/armonly-1.0-py3-none-any.whl", hash = "sha256:cc", size = 1 }]

[[package]]
name = "withextra"
version = "1.0"
source = { registry = "http://127.0.0.1/simple" }
wheels = [{ url = "http://127.0.0.1/files/withextra-1.0-py3-none-any.whl", hash = "sha256:dd", size = 1 }]

[package.optional-dependencies]
fast = [{ name = "speedup" }]

[[package]]
name = "speedup"
version = "1.0"
source = { registry = "http://127.0.0.1/simple" }
wheels = [
    { url = "http://127.0.0.1/files/speedup-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "sha256:e1", size = 1 },
    { url = "http://127.0.0.1/files/speedup-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", hash = "sha256:e2", size = 1 },
]

[[package]]
name = "oldpy"
version = "1.0"
source = { registry = "http://127.0.0.1/simple" }
wheels = [{ url = "http://127.0.0.1/files/oldpy-1.0-py3-none-any.whl", hash = "sha256:ff", size = 1 }]
"#;

    fn names(pins: &[Pin]) -> Vec<String> {
        pins.iter().map(|pin| format!("{}:{}", pin.package.filename, pin.sha256.as_deref().unwrap_or("-"))).collect()
    }

    fn owned(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn follows_the_edges_whose_markers_hold_with_extras_and_groups() {
        let amd64 = parse_uv_lock(LOCK, "uv.lock", &target(Platform::Amd64, 11), &[], &[], false).unwrap();
        assert_eq!(names(&amd64), ["purelib-1.0-py3-none-any.whl:bb"]);
        assert!(amd64[0].package.direct);

        let arm =
            parse_uv_lock(LOCK, "uv.lock", &target(Platform::Arm64, 12), &owned(&["fast"]), &owned(&["test"]), false);
        assert_eq!(
            names(&arm.unwrap()),
            [
                "armonly-1.0-py3-none-any.whl:cc",
                "purelib-1.0-py3-none-any.whl:bb",
                "speedup-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl:e2",
                "withextra-1.0-py3-none-any.whl:dd",
            ]
        );
        let amd311 =
            parse_uv_lock(LOCK, "uv.lock", &target(Platform::Amd64, 11), &owned(&["fast"]), &owned(&["test"]), false);
        let amd311 = amd311.unwrap();
        assert!(names(&amd311).contains(&"oldpy-1.0-py3-none-any.whl:ff".to_owned()), "{:?}", names(&amd311));
        let withextra = amd311.iter().find(|pin| pin.package.name == "withextra").unwrap();
        assert_eq!(withextra.package.extras, ["fast"]);
    }

    #[test]
    fn a_target_outside_the_lock_or_without_a_wheel_is_named() {
        let old = parse_uv_lock(LOCK, "uv.lock", &target(Platform::Amd64, 10), &[], &[], false).unwrap_err();
        assert!(old.to_string().contains("requires-python is `>=3.11`"), "{old}");
        let no_wheel =
            parse_uv_lock(LOCK, "uv.lock", &target(Platform::Amd64, 12), &owned(&["fast"]), &[], false).unwrap_err();
        assert!(no_wheel.to_string().contains("no wheel of `speedup==1.0` fits linux/amd64 python 3.12"), "{no_wheel}");
        let unknown =
            parse_uv_lock(LOCK, "uv.lock", &target(Platform::Amd64, 11), &owned(&["slow"]), &[], false).unwrap_err();
        assert_eq!(unknown.to_string(), "uv.lock has no extra `slow` on its root `app`; it has: fast");
        let version =
            parse_uv_lock("version = 2\n", "uv.lock", &target(Platform::Amd64, 11), &[], &[], false).unwrap_err();
        assert!(matches!(version, UvLockError::UnsupportedVersion { version: 2, .. }));
    }
}
