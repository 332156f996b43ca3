//! The Kubernetes objects of a bundle, as serde structs in kubectl's field order, the base64 their
//! data fields hold, the limits a cluster sets on them, and the names it accepts.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::model::digest::sidecar_line;

/// The API server refuses a ConfigMap or Secret whose data is over 1 MiB, and etcd a request over
/// 1.5 MiB. Holding the object as written (base64 and all) under 1 MiB satisfies both however a
/// cluster counts, which leaves about 750 KiB for the archive.
pub const OBJECT_LIMIT: usize = 1 << 20;

/// Near the limit a few more wheels break the next bundle: say so while there is time to move.
pub const WARNING_PERCENT: usize = 90;

/// Client-side `kubectl apply` copies the whole object into the last-applied-configuration
/// annotation, and the annotations of an object are limited to 256 KiB.
pub const ANNOTATION_LIMIT: usize = 256 << 10;

/// A small image with `sh`, `sleep`, `tar` (which `kubectl cp` needs), `sha256sum` and gzip.
pub const LOADER_IMAGE: &str = "busybox:1.36";

/// Where the loader mounts the claim, and where the steps copy the archive.
pub const LOADER_MOUNT: &str = "/wheelhouse";

/// Long enough to copy a large archive by hand; short enough that a forgotten loader goes away.
pub const LOADER_SLEEP_SECONDS: &str = "3600";

/// `nobody`: the loader runs as a non-root user so that it is admitted under the `restricted` Pod
/// Security Standard; `fsGroup` makes the volume writable to it.
pub const LOADER_USER: u32 = 65534;

/// A claim a little over the archive is filled by the first unpack: room for the archive, the
/// wheelhouse extracted beside it, and a second archive copied in when it is replaced.
pub const CLAIM_FACTOR: u64 = 3;

/// Small volumes lose a good part of themselves to the file system (journal, inodes).
pub const CLAIM_MINIMUM: u64 = 64 << 20;

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
pub fn configmap_yaml(name: &str, namespace: Option<&str>, key: &str, bytes: &[u8], sha256: &str) -> Result<String> {
    let sidecar_key = format!("{key}.sha256");
    let object = ConfigMap {
        api_version: "v1",
        binary_data: BTreeMap::from([(key, base64(bytes))]),
        data: BTreeMap::from([(sidecar_key.as_str(), sidecar_line(sha256, key))]),
        kind: "ConfigMap",
        metadata: Metadata { name, namespace },
    };
    serde_yaml_ng::to_string(&object).context("cannot write the ConfigMap as YAML")
}

/// What `kubectl create secret generic NAME --from-file=ARCHIVE --from-file=ARCHIVE.sha256` makes,
/// with the type it defaults to written out.
pub fn secret_yaml(name: &str, namespace: Option<&str>, key: &str, bytes: &[u8], sha256: &str) -> Result<String> {
    let sidecar_key = format!("{key}.sha256");
    let object = Secret {
        api_version: "v1",
        data: BTreeMap::from([
            (key, base64(bytes)),
            (sidecar_key.as_str(), base64(sidecar_line(sha256, key).as_bytes())),
        ]),
        kind: "Secret",
        metadata: Metadata { name, namespace },
        secret_type: "Opaque",
    };
    serde_yaml_ng::to_string(&object).context("cannot write the Secret as YAML")
}

/// The claim and the Pod that mounts it, two YAML documents.
pub fn claim_yaml(name: &str, namespace: Option<&str>, pod_name: &str, storage: &str) -> Result<String> {
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
pub fn claim_size(archive_bytes: u64) -> String {
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
pub fn base64(bytes: &[u8]) -> String {
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

/// A DNS subdomain name (RFC 1123), as Kubernetes requires of ConfigMap, Secret, claim and Pod
/// names: refused here rather than by the API server after the YAML has been carried over.
pub fn check_subdomain(name: &str, what: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !valid {
        bail!("{what} {name:?} is not a valid Kubernetes name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters");
    }
    Ok(())
}

/// A DNS label (RFC 1123), as Kubernetes requires of namespaces.
pub fn check_label(name: &str, what: &str) -> Result<()> {
    let valid = name.len() <= 63 && !name.contains('.') && check_subdomain(name, what).is_ok();
    if !valid {
        bail!("{what} {name:?} is not a valid Kubernetes namespace: lowercase letters, digits and '-', at most 63 characters");
    }
    Ok(())
}

/// A ConfigMap or Secret key, which is the archive's file name here.
pub fn check_key(key: &str) -> Result<()> {
    let valid = key.len() + ".sha256".len() <= 253
        && key != "."
        && key != ".."
        && key.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._".contains(&byte));
    if !valid {
        bail!("the archive's file name {key:?} cannot be a ConfigMap or Secret key: letters, digits, '-', '_' and '.' only\nhint: rename the archive and its sidecar (and the name inside the sidecar)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        let check = |input: &str, expected: &str| assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        check("", "");
        check("f", "Zg==");
        check("fo", "Zm8=");
        check("foo", "Zm9v");
        check("foob", "Zm9vYg==");
        check("fooba", "Zm9vYmE=");
        check("foobar", "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0xfd, 0x00]), "//79AA==");
    }

    #[test]
    fn claim_size_leaves_room_to_unpack() {
        let check =
            |archive_bytes: u64, expected: &str| assert_eq!(claim_size(archive_bytes), expected, "{archive_bytes}");
        check(0, "64Mi");
        check(10 << 20, "64Mi");
        check(30 << 20, "90Mi");
        check((30 << 20) + 1, "91Mi");
        check(300 << 20, "900Mi");
        check(400 << 20, "2Gi");
        check(2 << 30, "6Gi");
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        let check = |name: &str, expected: bool| assert_eq!(check_subdomain(name, "name").is_ok(), expected, "{name}");
        check("wheelhouse", true);
        check("wheelhouse-2024.06", true);
        check("Wheelhouse", false);
        check("wheel_house", false);
        check("-wheelhouse", false);
        check("wheelhouse.", false);
        check("", false);
        check(&"a".repeat(254), false);
        assert!(check_label("team-a", "ns").is_ok());
        assert!(check_label("team.a", "ns").is_err());
        assert!(check_label("Team-a", "ns").is_err());
        assert!(check_label(&"a".repeat(64), "ns").is_err());
        assert!(check_key("wheelhouse.tgz").is_ok());
        assert!(check_key("my wheelhouse.tgz").is_err());
    }

    #[test]
    fn the_configmap_holds_the_archive_and_its_sidecar() {
        let yaml = configmap_yaml("bundle", Some("team-a"), "wheelhouse.tgz", b"\x1f\x8b", "ab12").unwrap();
        let expected = "apiVersion: v1
binaryData:
  wheelhouse.tgz: H4s=
data:
  wheelhouse.tgz.sha256: |
    ab12  wheelhouse.tgz
kind: ConfigMap
metadata:
  name: bundle
  namespace: team-a
";
        assert_eq!(yaml, expected);
    }
}
