//! The Kubernetes objects of a bundle, as serde structs in kubectl's field order, and the base64
//! their data fields hold.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{CLAIM_FACTOR, CLAIM_MINIMUM, LOADER_IMAGE, LOADER_MOUNT, LOADER_SLEEP_SECONDS, LOADER_USER};
use crate::archive;

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

// Fields in alphabetical order, as kubectl prints them, so that the YAML reads like
// `kubectl create ... --dry-run=client -o yaml`.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigMap<'a> {
    api_version: &'static str,
    binary_data: BTreeMap<&'a str, String>,
    data: BTreeMap<&'a str, String>,
    kind: &'static str,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Secret<'a> {
    api_version: &'static str,
    data: BTreeMap<&'a str, String>,
    kind: &'static str,
    metadata: Metadata<'a>,
    #[serde(rename = "type")]
    secret_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PersistentVolumeClaim<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    spec: ClaimSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClaimSpec {
    access_modes: Vec<&'static str>,
    resources: ClaimResources,
}

#[derive(Serialize)]
struct ClaimResources {
    requests: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Pod<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    spec: PodSpec<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec<'a> {
    containers: Vec<Container>,
    restart_policy: &'static str,
    security_context: PodSecurityContext,
    volumes: Vec<Volume<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodSecurityContext {
    fs_group: u32,
    run_as_group: u32,
    run_as_non_root: bool,
    run_as_user: u32,
    seccomp_profile: SeccompProfile,
}

#[derive(Serialize)]
struct SeccompProfile {
    #[serde(rename = "type")]
    profile_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    command: Vec<&'static str>,
    image: &'static str,
    name: &'static str,
    security_context: ContainerSecurityContext,
    volume_mounts: Vec<VolumeMount>,
    working_dir: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerSecurityContext {
    allow_privilege_escalation: bool,
    capabilities: Capabilities,
}

#[derive(Serialize)]
struct Capabilities {
    drop: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    mount_path: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Volume<'a> {
    name: &'static str,
    persistent_volume_claim: ClaimSource<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClaimSource<'a> {
    claim_name: &'a str,
}

/// What `kubectl create configmap NAME --from-file=ARCHIVE --from-file=ARCHIVE.sha256` makes: a
/// gzip file is never valid UTF-8, so kubectl puts it under `binaryData`; the sidecar is text.
pub(super) fn configmap_yaml(
    name: &str,
    namespace: Option<&str>,
    key: &str,
    bytes: &[u8],
    sha256: &str,
) -> Result<String> {
    let sidecar_key = format!("{key}.sha256");
    let object = ConfigMap {
        api_version: "v1",
        binary_data: BTreeMap::from([(key, base64(bytes))]),
        data: BTreeMap::from([(sidecar_key.as_str(), archive::sidecar_line(sha256, key))]),
        kind: "ConfigMap",
        metadata: Metadata { name, namespace },
    };
    serde_yaml_ng::to_string(&object).context("cannot write the ConfigMap as YAML")
}

/// What `kubectl create secret generic NAME --from-file=ARCHIVE --from-file=ARCHIVE.sha256` makes,
/// with the type it defaults to written out.
pub(super) fn secret_yaml(
    name: &str,
    namespace: Option<&str>,
    key: &str,
    bytes: &[u8],
    sha256: &str,
) -> Result<String> {
    let sidecar_key = format!("{key}.sha256");
    let object = Secret {
        api_version: "v1",
        data: BTreeMap::from([
            (key, base64(bytes)),
            (sidecar_key.as_str(), base64(archive::sidecar_line(sha256, key).as_bytes())),
        ]),
        kind: "Secret",
        metadata: Metadata { name, namespace },
        secret_type: "Opaque",
    };
    serde_yaml_ng::to_string(&object).context("cannot write the Secret as YAML")
}

/// The claim and the Pod that mounts it, two YAML documents.
pub(super) fn claim_yaml(name: &str, namespace: Option<&str>, pod_name: &str, storage: &str) -> Result<String> {
    let claim = PersistentVolumeClaim {
        api_version: "v1",
        kind: "PersistentVolumeClaim",
        metadata: Metadata { name, namespace },
        spec: ClaimSpec {
            access_modes: vec!["ReadWriteOnce"],
            resources: ClaimResources { requests: BTreeMap::from([("storage", storage.to_owned())]) },
        },
    };
    let pod = Pod {
        api_version: "v1",
        kind: "Pod",
        metadata: Metadata { name: pod_name, namespace },
        spec: PodSpec {
            containers: vec![Container {
                command: vec!["sleep", LOADER_SLEEP_SECONDS],
                image: LOADER_IMAGE,
                name: "loader",
                security_context: ContainerSecurityContext {
                    allow_privilege_escalation: false,
                    capabilities: Capabilities { drop: vec!["ALL"] },
                },
                volume_mounts: vec![VolumeMount { mount_path: LOADER_MOUNT, name: "wheelhouse" }],
                working_dir: LOADER_MOUNT,
            }],
            // The loader's work is done by hand through `kubectl exec`; once it sleeps out, it stays down.
            restart_policy: "Never",
            security_context: PodSecurityContext {
                fs_group: LOADER_USER,
                run_as_group: LOADER_USER,
                run_as_non_root: true,
                run_as_user: LOADER_USER,
                seccomp_profile: SeccompProfile { profile_type: "RuntimeDefault" },
            },
            volumes: vec![Volume { name: "wheelhouse", persistent_volume_claim: ClaimSource { claim_name: name } }],
        },
    };
    let claim = serde_yaml_ng::to_string(&claim).context("cannot write the PersistentVolumeClaim as YAML")?;
    let pod = serde_yaml_ng::to_string(&pod).context("cannot write the Pod as YAML")?;
    Ok(format!("{claim}---\n{pod}"))
}

/// The archive's size times [`CLAIM_FACTOR`], at least [`CLAIM_MINIMUM`], rounded up to whole
/// mebibytes below a gibibyte and to whole gibibytes above.
pub(super) fn claim_size(archive_bytes: u64) -> String {
    const MEBIBYTE: u64 = 1 << 20;
    const GIBIBYTE: u64 = 1 << 30;
    let needed = archive_bytes.saturating_mul(CLAIM_FACTOR).max(CLAIM_MINIMUM);
    if needed <= GIBIBYTE {
        format!("{}Mi", needed.div_ceil(MEBIBYTE))
    } else {
        format!("{}Gi", needed.div_ceil(GIBIBYTE))
    }
}

/// Standard base64 with padding (RFC 4648), the form of `binaryData` and of a Secret's `data`.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte_at = |index: usize| u32::from(chunk.get(index).copied().unwrap_or(0));
        let group = (byte_at(0) << 16) | (byte_at(1) << 8) | byte_at(2);
        // n input bytes give n + 1 meaningful characters; the rest of the four are padding.
        for position in 0..4 {
            if position <= chunk.len() {
                text.push(char::from(ALPHABET[((group >> (18 - 6 * position)) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}
