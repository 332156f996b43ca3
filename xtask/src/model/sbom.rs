//! The CycloneDX 1.6 JSON document of a wheelhouse: one component per package version, with its
//! licence (from the wheel's METADATA), its files and their sha256, the targets that use it, and
//! the dependency edges pip resolved. The same wheelhouse gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::Serialize;

use crate::model::{digest::sha256_hex, manifest::Manifest};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Debug, Serialize)]
struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    tools: Tools,
    component: MetadataComponent,
}

#[derive(Debug, Serialize)]
struct Tools {
    components: Vec<ToolComponent>,
}

#[derive(Debug, Serialize)]
struct ToolComponent {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct MetadataComponent {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: &'static str,
    name: &'static str,
}

#[derive(Debug, Serialize)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: String,
    version: String,
    purl: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<serde_json::Value>,
    #[serde(rename = "externalReferences")]
    external_references: Vec<ExternalReference>,
    properties: Vec<Property>,
}

#[derive(Debug, Serialize)]
struct ExternalReference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
    comment: String,
    hashes: Vec<HashValue>,
}

#[derive(Debug, Serialize)]
struct HashValue {
    alg: &'static str,
    content: String,
}

#[derive(Debug, Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Debug, Serialize)]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(rename = "dependsOn")]
    depends_on: Vec<String>,
}

/// The package URL of a package version, the `bom-ref` of its component (the audit's VEX refers to it).
pub fn purl(name: &str, version: &str) -> String {
    format!("pkg:pypi/{name}@{version}")
}

/// (name, version) of every package, sorted.
pub fn manifest_components(manifest: &Manifest) -> BTreeSet<(String, String)> {
    manifest.files.iter().map(|entry| (entry.name.clone(), entry.version.clone())).collect()
}

/// The document's text. `wheel_metadata` gives the METADATA of a wheel of the wheelhouse by file
/// name (`None` when it has none), for the licences.
pub fn render(
    manifest: &Manifest,
    manifest_bytes: &[u8],
    epoch: Option<u64>,
    wheel_metadata: &dyn Fn(&str) -> Result<Option<String>>,
) -> Result<String> {
    let mut components = Vec::new();
    for (name, version) in manifest_components(manifest) {
        let files: Vec<_> =
            manifest.files.iter().filter(|entry| entry.name == name && entry.version == version).collect();
        let mut targets = BTreeSet::new();
        let mut requirements = BTreeSet::new();
        for entry in &files {
            targets.extend(entry.targets.iter().cloned());
            requirements.extend(entry.requirements.iter().cloned());
        }
        let urls: BTreeMap<&str, &str> = manifest
            .resolutions
            .iter()
            .flat_map(|resolution| resolution.packages.iter())
            .map(|package| (package.filename.as_str(), package.url.as_str()))
            .collect();
        let licenses = files
            .iter()
            .find(|entry| entry.filename.ends_with(".whl"))
            .map(|entry| wheel_metadata(&entry.filename))
            .transpose()?
            .flatten()
            .map(|metadata| licenses_from_metadata(&metadata))
            .unwrap_or_default();
        let mut properties: Vec<Property> =
            targets.into_iter().map(|value| Property { name: "xtask:target", value }).collect();
        properties.extend(requirements.into_iter().map(|value| Property { name: "xtask:requirements", value }));
        components.push(Component {
            kind: "library",
            bom_ref: purl(&name, &version),
            purl: purl(&name, &version),
            name,
            version,
            licenses,
            external_references: files
                .iter()
                .map(|entry| {
                    let url = urls.get(entry.filename.as_str()).copied().unwrap_or("");
                    ExternalReference {
                        kind: "distribution",
                        // An absolute URL where pip found it; a file built here has only its name.
                        url: if url.contains("://") { url.to_owned() } else { entry.filename.clone() },
                        comment: entry.filename.clone(),
                        hashes: vec![HashValue { alg: "SHA-256", content: entry.sha256.clone() }],
                    }
                })
                .collect(),
            properties,
        });
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> =
        components.iter().map(|component| (component.bom_ref.clone(), BTreeSet::new())).collect();
    for resolution in &manifest.resolutions {
        let versions: BTreeMap<&str, &str> =
            resolution.packages.iter().map(|package| (package.name.as_str(), package.version.as_str())).collect();
        for package in &resolution.packages {
            let from = purl(&package.name, &package.version);
            for dependency in &package.dependencies {
                if let Some(version) = versions.get(dependency.as_str()) {
                    let to = purl(dependency, version);
                    if edges.contains_key(&to) {
                        edges.entry(from.clone()).or_default().insert(to);
                    }
                }
            }
        }
    }
    let bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: format!("urn:uuid:{}", uuid_from(&sha256_hex(manifest_bytes))),
        version: 1,
        metadata: Metadata {
            timestamp: epoch.map(rfc3339),
            tools: Tools {
                components: vec![ToolComponent {
                    kind: "application",
                    name: "xtask",
                    version: env!("CARGO_PKG_VERSION"),
                }],
            },
            component: MetadataComponent { kind: "application", bom_ref: "wheelhouse", name: "wheelhouse" },
        },
        components,
        dependencies: edges
            .into_iter()
            .map(|(reference, depends_on)| Dependency { reference, depends_on: depends_on.into_iter().collect() })
            .collect(),
    };
    Ok(format!("{}\n", serde_json::to_string_pretty(&bom)?))
}

/// A UUID (version 5 layout) from a hex digest: the same manifest, the same serial number.
fn uuid_from(digest: &str) -> String {
    let mut hex: Vec<char> = digest.chars().take(32).collect();
    hex[12] = '5';
    let variant = u8::from_str_radix(&hex[16].to_string(), 16).unwrap_or(0);
    hex[16] = char::from_digit(u32::from((variant & 0x3) | 0x8), 16).unwrap_or('8');
    let hex: String = hex.into_iter().collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// `YYYY-MM-DDTHH:MM:SSZ` of `SOURCE_DATE_EPOCH` (the one civil-date conversion is `osv`'s).
fn rfc3339(epoch: u64) -> String {
    crate::model::osv::timestamp(i64::try_from(epoch).unwrap_or(i64::MAX))
}

/// The licence a wheel's METADATA declares: `License-Expression` (PEP 639) as an expression, else
/// the `License` field, else the `License ::` classifiers, as names.
fn licenses_from_metadata(text: &str) -> Vec<serde_json::Value> {
    // Headers end at the first blank line; the description follows.
    let headers: Vec<(&str, &str)> = text
        .lines()
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(": ").or_else(|| line.strip_suffix(':').map(|key| (key, ""))))
        .collect();
    let field =
        |key: &str| headers.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)).map(|(_, value)| value.trim());
    if let Some(expression) = field("License-Expression").filter(|value| !value.is_empty()) {
        return vec![serde_json::json!({ "expression": expression })];
    }
    if let Some(license) =
        field("License").filter(|value| !value.is_empty() && value.len() <= 100 && *value != "UNKNOWN")
    {
        return vec![serde_json::json!({ "license": { "name": license } })];
    }
    let classifiers: BTreeSet<&str> = headers
        .iter()
        .filter(|(name, value)| name.eq_ignore_ascii_case("Classifier") && value.starts_with("License ::"))
        .filter_map(|(_, value)| value.rsplit(" :: ").next())
        .collect();
    classifiers.into_iter().map(|name| serde_json::json!({ "license": { "name": name } })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licences_come_from_the_most_precise_field() {
        let json = |text: &str| serde_json::to_string(&licenses_from_metadata(text)).unwrap();
        assert_eq!(
            json("Name: a\nLicense-Expression: MIT OR Apache-2.0\nLicense: BSD\n\nbody"),
            r#"[{"expression":"MIT OR Apache-2.0"}]"#
        );
        assert_eq!(json("Name: a\nLicense: BSD-3-Clause\n"), r#"[{"license":{"name":"BSD-3-Clause"}}]"#);
        assert_eq!(
            json("Name: a\nClassifier: License :: OSI Approved :: MIT License\nClassifier: Topic :: X\n"),
            r#"[{"license":{"name":"MIT License"}}]"#
        );
        assert_eq!(json("Name: a\n\nLicense: in the body\n"), "[]");
    }

    #[test]
    fn serial_numbers_and_timestamps_are_derived_not_drawn() {
        let uuid = uuid_from(&"ab".repeat(32));
        assert_eq!(uuid, "abababab-abab-5bab-abab-abababababab");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
