//! Reads pip's installation report (`pip install --dry-run --report`) into the manifest's
//! resolved packages, with the dependency edges the target's markers select.

use std::collections::{BTreeMap, BTreeSet};

use pep508_rs::{ExtraName, MarkerEnvironment, MarkerEnvironmentBuilder, Requirement};
use serde::Deserialize;

use crate::model::{manifest::ResolvedPackage, redact::redact_url, wheel_name::normalize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("pip's report is not valid JSON: {0}")]
    Json(String),
    #[error("pip's report has no file name in the URL `{0}`")]
    NoFilename(String),
    #[error(
        "pip evaluated markers with {key} = `{actual}` instead of the target's `{expected}`: this pip \
         is not one the tool supports"
    )]
    WrongEnvironment { key: String, expected: String, actual: String },
    #[error("invalid marker environment: {0}")]
    Environment(String),
}

#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    install: Vec<InstallItem>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct InstallItem {
    download_info: DownloadInfo,
    #[serde(default)]
    requested: bool,
    #[serde(default)]
    is_direct: bool,
    #[serde(default)]
    requested_extras: Vec<String>,
    metadata: Metadata,
}

#[derive(Deserialize)]
struct DownloadInfo {
    url: String,
    #[serde(default)]
    archive_info: Option<ArchiveInfo>,
}

#[derive(Deserialize)]
struct ArchiveInfo {
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    version: String,
    #[serde(default)]
    requires_dist: Vec<String>,
}

/// Which tool resolves a requirements file for a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Resolver {
    /// `pip install --dry-run --report` with the target's tags and marker environment.
    #[default]
    Pip,
    /// `uv pip compile --python-platform --python-version --format pylock.toml`.
    Uv,
}

/// A resolved package plus what only the download step needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub package: ResolvedPackage,
    /// sha256 pip reported for the file, when it knew one.
    pub sha256: Option<String>,
    /// The file's URL as pip used it (credentials included: never written anywhere).
    pub source_url: String,
    /// Requested by URL (`name @ https://...`) rather than found on an index.
    pub is_direct: bool,
}

/// Parses a report and checks that pip saw the target's marker environment.
pub fn parse_report(report_json: &str, target_markers: &BTreeMap<&str, String>) -> Result<Vec<Pin>, ReportError> {
    let report: Report = serde_json::from_str(report_json).map_err(|error| ReportError::Json(error.to_string()))?;
    for (key, expected) in target_markers {
        if let Some(actual) = report.environment.get(*key) {
            if actual != expected {
                return Err(ReportError::WrongEnvironment {
                    key: (*key).to_owned(),
                    expected: expected.clone(),
                    actual: actual.clone(),
                });
            }
        }
    }
    let environment = marker_environment(target_markers, &report.environment)?;

    let mut pins: Vec<Pin> = Vec::with_capacity(report.install.len());
    for item in &report.install {
        let filename = filename_of(&item.download_info.url)?;
        let name = normalize(&item.metadata.name);
        let sha256 = item.download_info.archive_info.as_ref().and_then(|info| {
            info.hashes
                .get("sha256")
                .cloned()
                .or_else(|| info.hash.as_ref()?.strip_prefix("sha256=").map(str::to_owned))
        });
        let extras: BTreeSet<String> = if item.requested {
            item.requested_extras.iter().map(|extra| normalize(extra)).collect()
        } else {
            BTreeSet::new()
        };
        pins.push(Pin {
            package: ResolvedPackage {
                name,
                version: item.metadata.version.clone(),
                filename,
                direct: item.requested,
                extras: extras.into_iter().collect(),
                dependencies: Vec::new(),
                requires_dist: item.metadata.requires_dist.clone(),
                url: redact_url(&item.download_info.url),
            },
            sha256,
            source_url: item.download_info.url.clone(),
            is_direct: item.is_direct,
        });
    }
    link_dependencies(&mut pins, &environment);
    Ok(pins)
}

/// Adds the edges of a resolution whose `requires_dist` and requested `extras` are known, under
/// the target's markers; sorts the packages by name. Both resolvers end here, so they agree.
pub fn link_under_target(pins: &mut [Pin], target_markers: &BTreeMap<&str, String>) -> Result<(), ReportError> {
    let environment = marker_environment(target_markers, &BTreeMap::new())?;
    link_dependencies(pins, &environment);
    Ok(())
}

/// Adds the edges: a package depends on each resolved package its `Requires-Dist` names under
/// the target's markers and the extras requested of it (its `extras` on entry: those the
/// requirements file asked for). Extras requested by a dependent activate more edges, so this
/// runs to a fixed point. Sorts the packages by name.
fn link_dependencies(pins: &mut [Pin], environment: &MarkerEnvironment) {
    pins.sort_by(|left, right| left.package.name.cmp(&right.package.name));
    let mut active_extras: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pin in pins.iter() {
        active_extras.entry(pin.package.name.clone()).or_default().extend(pin.package.extras.iter().cloned());
    }
    let resolved: BTreeSet<String> = pins.iter().map(|pin| pin.package.name.clone()).collect();
    let requirements: Vec<Vec<Requirement>> = pins
        .iter()
        .map(|pin| pin.package.requires_dist.iter().filter_map(|text| text.parse().ok()).collect())
        .collect();
    loop {
        let mut changed = false;
        for (pin, requirements) in pins.iter_mut().zip(&requirements) {
            let extras: Vec<ExtraName> = active_extras
                .get(&pin.package.name)
                .into_iter()
                .flatten()
                .filter_map(|extra| extra.parse().ok())
                .collect();
            let mut dependencies = BTreeSet::new();
            for requirement in requirements {
                let dependency = requirement.name.to_string();
                if !resolved.contains(&dependency) || !requirement.evaluate_markers(environment, &extras) {
                    continue;
                }
                dependencies.insert(dependency.clone());
                let wanted = active_extras.entry(dependency).or_default();
                for extra in &requirement.extras {
                    changed |= wanted.insert(extra.to_string());
                }
            }
            pin.package.dependencies = dependencies.into_iter().collect();
        }
        if !changed {
            break;
        }
    }
    for pin in pins.iter_mut() {
        pin.package.extras = active_extras.get(&pin.package.name).into_iter().flatten().cloned().collect();
    }
}

/// The `Requires-Dist` values of a distribution's `METADATA` (RFC 822 headers, up to the first
/// blank line), in the order published: what pip's report calls `requires_dist`.
pub fn requires_dist_of_metadata(metadata: &str) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    let mut in_requires_dist = false;
    for line in metadata.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // A folded header continues the previous one.
            if let (true, Some(last)) = (in_requires_dist, values.last_mut()) {
                last.push(' ');
                last.push_str(line.trim());
            }
            continue;
        }
        let (key, value) = line.split_once(':').unwrap_or((line, ""));
        in_requires_dist = key.trim().eq_ignore_ascii_case("requires-dist");
        if in_requires_dist {
            values.push(value.trim().to_owned());
        }
    }
    values
}

/// The target's PEP 508 environment, for evaluating markers.
pub fn marker_environment_of(target_markers: &BTreeMap<&str, String>) -> Result<MarkerEnvironment, String> {
    marker_environment(target_markers, &BTreeMap::new()).map_err(|error| error.to_string())
}

fn marker_environment(
    target_markers: &BTreeMap<&str, String>,
    reported: &BTreeMap<String, String>,
) -> Result<MarkerEnvironment, ReportError> {
    let value = |key: &str| -> &str {
        target_markers.get(key).map(String::as_str).or(reported.get(key).map(String::as_str)).unwrap_or("")
    };
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: value("implementation_name"),
        implementation_version: value("implementation_version"),
        os_name: value("os_name"),
        platform_machine: value("platform_machine"),
        platform_python_implementation: value("platform_python_implementation"),
        platform_release: value("platform_release"),
        platform_system: value("platform_system"),
        platform_version: value("platform_version"),
        python_full_version: value("python_full_version"),
        python_version: value("python_version"),
        sys_platform: value("sys_platform"),
    })
    .map_err(|error| ReportError::Environment(error.to_string()))
}

/// The file name at the end of a URL, percent-decoded (local versions arrive as `%2B`).
pub fn filename_of(url: &str) -> Result<String, ReportError> {
    let without_fragment = url.split(['#', '?']).next().unwrap_or(url);
    let last = without_fragment.rsplit('/').next().unwrap_or("");
    if last.is_empty() {
        return Err(ReportError::NoFilename(redact_url(url)));
    }
    Ok(percent_decode(last))
}

/// `%XX` escapes decoded, anything else kept as written (as Python's `unquote` does).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex_pair = bytes.get(index + 1..index + 3).and_then(|pair| std::str::from_utf8(pair).ok());
        match (bytes[index], hex_pair.and_then(|pair| u8::from_str_radix(pair, 16).ok())) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::target::{Libc, Platform, PythonVersion, Target};

    fn markers(platform: Platform, python: &str) -> BTreeMap<&'static str, String> {
        Target { platform, python: PythonVersion::parse(python).unwrap(), libc: Libc::DEFAULT }.marker_environment()
    }

    fn item(name: &str, requested: bool, extras: &[&str], requires: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "download_info": {
                "url": format!("https://u:secret@index.test/files/{name}-1.0-py3-none-any.whl"),
                "archive_info": {"hash": format!("sha256={name}hash"), "hashes": {"sha256": format!("{name}hash")}}
            },
            "requested": requested,
            "requested_extras": extras,
            "metadata": {"name": name, "version": "1.0", "requires_dist": requires}
        })
    }

    fn check(report: serde_json::Value, platform: Platform, python: &str, expected: &[(&str, &[&str])]) {
        let pins = parse_report(&report.to_string(), &markers(platform, python)).unwrap();
        let actual: Vec<(&str, Vec<&str>)> = pins
            .iter()
            .map(|pin| (pin.package.name.as_str(), pin.package.dependencies.iter().map(String::as_str).collect()))
            .collect();
        let expected: Vec<(&str, Vec<&str>)> = expected.iter().map(|(name, deps)| (*name, deps.to_vec())).collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn edges_follow_the_target_markers_and_extras() {
        let report = serde_json::json!({
            "environment": {"platform_machine": "aarch64", "python_version": "3.12"},
            "install": [
                item("App", true, &["fast"], &[
                    "armonly; platform_machine == \"aarch64\"",
                    "oldpy; python_version < \"3.12\"",
                    "Speed_Up[turbo]>=1; extra == \"fast\"",
                    "unresolved",
                ]),
                item("armonly", false, &[], &[]),
                item("speed-up", false, &[], &["turbo-lib; extra == 'turbo'"]),
                item("turbo-lib", false, &[], &[]),
            ]
        });
        check(
            report,
            Platform::Arm64,
            "3.12",
            &[("app", &["armonly", "speed-up"]), ("armonly", &[]), ("speed-up", &["turbo-lib"]), ("turbo-lib", &[])],
        );
    }

    #[test]
    fn records_direct_requests_hashes_and_redacted_urls() {
        let report = serde_json::json!({"install": [item("six", true, &[], &[])]});
        let pins = parse_report(&report.to_string(), &markers(Platform::Amd64, "3.11")).unwrap();
        assert_eq!(pins[0].sha256.as_deref(), Some("sixhash"));
        assert!(pins[0].package.direct);
        assert_eq!(pins[0].package.filename, "six-1.0-py3-none-any.whl");
        assert_eq!(pins[0].package.url, "https://****@index.test/files/six-1.0-py3-none-any.whl");
    }

    #[test]
    fn a_report_made_with_host_markers_is_refused() {
        let report = serde_json::json!({"environment": {"platform_machine": "x86_64"}, "install": []});
        let error = parse_report(&report.to_string(), &markers(Platform::Arm64, "3.11")).unwrap_err();
        assert!(matches!(error, ReportError::WrongEnvironment { ref key, .. } if key == "platform_machine"));
    }

    #[test]
    fn requires_dist_is_read_from_the_metadata_headers_only() {
        let metadata = "Metadata-Version: 2.1\nName: app\nRequires-Dist: a>=1; extra == 'x'\nrequires-dist: b\n  ; python_version < '3.12'\nSummary: s\n\nRequires-Dist: in-the-description\n";
        assert_eq!(requires_dist_of_metadata(metadata), ["a>=1; extra == 'x'", "b ; python_version < '3.12'"]);
    }

    #[test]
    fn filenames_are_percent_decoded() {
        assert_eq!(
            filename_of("file:///w/x-1.0%2Blocal-py3-none-any.whl#sha256=1").unwrap(),
            "x-1.0+local-py3-none-any.whl"
        );
        assert!(filename_of("https://index.test/files/").is_err());
    }
}
