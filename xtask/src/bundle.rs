//! `bundle`: the packed wheelhouse as Kubernetes YAML: a ConfigMap or Secret, or a claim and a loader Pod.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

mod objects;

use objects::{claim_size, claim_yaml, configmap_yaml, secret_yaml};

use crate::{
    archive,
    create_wheelhouse::human_bytes,
    digest::{sha256_file, sha256_hex},
    flags::Bundle,
    install_script::shell_quote,
    integrity::sidecar_path,
    partial,
    settings::{self, Settings},
    ui,
};

/// The API server refuses a ConfigMap or Secret whose data is over 1 MiB, and etcd a request over
/// 1.5 MiB. Holding the object as written (base64 and all) under 1 MiB satisfies both however a
/// cluster counts, which leaves about 750 KiB for the archive.
pub const OBJECT_LIMIT: usize = 1 << 20;

/// Near the limit a few more wheels break the next bundle: say so while there is time to move.
const WARNING_PERCENT: usize = 90;

/// Client-side `kubectl apply` copies the whole object into the last-applied-configuration
/// annotation, and the annotations of an object are limited to 256 KiB.
const ANNOTATION_LIMIT: usize = 256 << 10;

/// A small image with `sh`, `sleep`, `tar` (which `kubectl cp` needs), `sha256sum` and gzip.
const LOADER_IMAGE: &str = "busybox:1.36";

/// Where the loader mounts the claim, and where the steps copy the archive.
const LOADER_MOUNT: &str = "/wheelhouse";

/// Long enough to copy a large archive by hand; short enough that a forgotten loader goes away.
const LOADER_SLEEP_SECONDS: &str = "3600";

/// `nobody`: the loader runs as a non-root user so that it is admitted under the `restricted` Pod
/// Security Standard; `fsGroup` makes the volume writable to it.
const LOADER_USER: u32 = 65534;

/// A claim a little over the archive is filled by the first unpack: room for the archive, the
/// wheelhouse extracted beside it, and a second archive copied in when it is replaced.
const CLAIM_FACTOR: u64 = 3;

/// Small volumes lose a good part of themselves to the file system (journal, inodes).
const CLAIM_MINIMUM: u64 = 64 << 20;

enum Kind<'a> {
    ConfigMap(&'a str),
    Secret(&'a str),
    Pvc(&'a str),
}

/// The archive, checked against its sidecar.
struct CheckedArchive {
    path: PathBuf,
    name: String,
    sha256: String,
    size: u64,
}

pub fn run(_sh: &xshell::Shell, root: &Path, args: &Bundle) -> Result<()> {
    let kind = match (&args.configmap, &args.secret, &args.pvc) {
        (Some(name), _, _) => Kind::ConfigMap(name),
        (_, Some(name), _) => Kind::Secret(name),
        (_, _, Some(name)) => Kind::Pvc(name),
        _ => bail!("give one of --configmap NAME, --secret NAME or --pvc NAME"),
    };
    let namespace = args.namespace.as_deref();
    if let Some(namespace) = namespace {
        check_label(namespace, "--namespace")?;
    }
    let archive_path = match &args.archive {
        Some(path) => std::env::current_dir()?.join(path),
        None => {
            let settings = Settings::load(root)?;
            let wheelhouse = settings::wheelhouse_dir(root, &settings, None)?;
            wheelhouse.parent().unwrap_or(root).join("wheelhouse.tgz")
        }
    };
    let archive = check_archive(&archive_path)?;
    let yaml = match kind {
        Kind::ConfigMap(name) | Kind::Secret(name) => {
            let is_secret = matches!(kind, Kind::Secret(_));
            let (flag, kind_name) = if is_secret { ("--secret", "Secret") } else { ("--configmap", "ConfigMap") };
            check_subdomain(name, flag)?;
            check_key(&archive.name)?;
            // Refused on its size before it is read: a multi-gigabyte archive is never loaded.
            let yaml_estimate = (archive.size as usize).div_ceil(3) * 4;
            if yaml_estimate > OBJECT_LIMIT {
                bail!("{}", over_limit(&archive, kind_name, yaml_estimate));
            }
            let bytes = read_checked(&archive)?;
            let yaml = if is_secret {
                secret_yaml(name, namespace, &archive.name, &bytes, &archive.sha256)?
            } else {
                configmap_yaml(name, namespace, &archive.name, &bytes, &archive.sha256)?
            };
            if yaml.len() > OBJECT_LIMIT {
                bail!("{}", over_limit(&archive, kind_name, yaml.len()));
            }
            report_object(&archive, kind_name, name, namespace, yaml.len(), args.output.as_deref());
            yaml
        }
        Kind::Pvc(name) => {
            check_subdomain(name, "--pvc")?;
            let pod_name = format!("{name}-loader");
            check_subdomain(&pod_name, "the loader Pod's name (--pvc NAME with -loader)")?;
            let storage = claim_size(archive.size);
            let yaml = claim_yaml(name, namespace, &pod_name, &storage)?;
            report_claim(&archive, name, namespace, &pod_name, &storage, args.output.as_deref());
            yaml
        }
    };
    match &args.output {
        Some(path) => {
            let output = std::env::current_dir()?.join(path);
            let directory = output.parent().unwrap_or(Path::new("."));
            let name = output
                .file_name()
                .with_context(|| format!("{} is not a file path", output.display()))?
                .to_string_lossy()
                .into_owned();
            partial::write_atomically(directory, &name, yaml.as_bytes())?;
        }
        None => std::io::stdout().lock().write_all(yaml.as_bytes()).context("cannot write the YAML to stdout")?,
    }
    Ok(())
}

/// Refuses an archive that is missing, has no sidecar, or does not match it: a bundle carries
/// the bytes pack wrote, or nothing.
fn check_archive(path: &Path) -> Result<CheckedArchive> {
    if !path.is_file() {
        bail!(
            "{} is missing\nhint: run `cargo xtask pack-wheelhouse` first, or give the archive with --archive FILE",
            path.display()
        );
    }
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?
        .to_string_lossy()
        .into_owned();
    let sidecar = sidecar_path(path);
    if !sidecar.is_file() {
        bail!(
            "{} is missing, so {name} cannot be checked\nhint: pack-wheelhouse writes both; copy them together, or pack again",
            sidecar.display()
        );
    }
    let sidecar_text = fs_err::read_to_string(&sidecar)?;
    let actual = sha256_file(path)?;
    match archive::parse_sidecar(&sidecar_text, &name) {
        Some(expected) if expected == actual => {}
        Some(expected) => bail!(
            "{name} has sha256 {actual}, {} says {expected}\nhint: the archive or its sidecar changed in transit, or a pack was killed between the two; copy both again, or pack again",
            sidecar.display()
        ),
        None => bail!("{} says nothing about {name}\nhint: pack again to rewrite both", sidecar.display()),
    }
    let size = fs_err::metadata(path)?.len();
    Ok(CheckedArchive { path: path.to_path_buf(), name, sha256: actual, size })
}

/// The archive's bytes, proven to be the ones whose sha256 matched the sidecar.
fn read_checked(archive: &CheckedArchive) -> Result<Vec<u8>> {
    let bytes = fs_err::read(&archive.path)?;
    let sha256 = sha256_hex(&bytes);
    if sha256 != archive.sha256 {
        bail!("{} changed while it was read (sha256 {sha256}, then {})", archive.path.display(), archive.sha256);
    }
    Ok(bytes)
}

fn over_limit(archive: &CheckedArchive, kind_name: &str, yaml_bytes: usize) -> String {
    format!(
        "{} is {} ({} bytes): as a {kind_name} it is {} bytes of YAML (base64 makes it 4/3 its size), over the {} byte (1 MiB) limit of a Kubernetes object\nhint: use --pvc NAME instead: a PersistentVolumeClaim and a loader Pod to copy the archive into (docs/kubernetes.md)",
        archive.name,
        human_bytes(archive.size),
        archive.size,
        yaml_bytes,
        OBJECT_LIMIT
    )
}

fn report_object(
    archive: &CheckedArchive,
    kind_name: &str,
    name: &str,
    namespace: Option<&str>,
    yaml_bytes: usize,
    output: Option<&Path>,
) {
    let percent = yaml_bytes * 100 / OBJECT_LIMIT;
    let destination = output.map_or_else(|| "stdout".to_owned(), |path| path.display().to_string());
    ui::say(&format!(
        "wrote {kind_name} {name}{} to {destination}: {} ({}, sha256 {}) and {}.sha256, {} bytes of YAML, {percent}% of the 1 MiB object limit",
        namespace.map(|namespace| format!(" in namespace {namespace}")).unwrap_or_default(),
        archive.name,
        human_bytes(archive.size),
        archive.sha256,
        archive.name,
        yaml_bytes
    ));
    if yaml_bytes * 100 > OBJECT_LIMIT * WARNING_PERCENT {
        ui::say(&format!(
            "warning: the {kind_name} is {percent}% of the 1 MiB object limit: a few more wheels and the next one will not fit\nhint: move to --pvc NAME before it does (docs/kubernetes.md)"
        ));
    }
    let file = output.map_or_else(|| "-".to_owned(), |path| shell_quote(&path.display().to_string()));
    ui::say(&format!("hint: create it with `kubectl create -f {file}` (`kubectl replace -f {file}` to update it)"));
    if yaml_bytes > ANNOTATION_LIMIT {
        ui::say(&format!(
            "hint: over 256 KiB, client-side `kubectl apply` fails (it copies the object into an annotation); use `kubectl apply --server-side -f {file}` instead"
        ));
    }
}

/// The steps that fill the claim through the loader, printed for a person to run.
fn report_claim(
    archive: &CheckedArchive,
    name: &str,
    namespace: Option<&str>,
    pod_name: &str,
    storage: &str,
    output: Option<&Path>,
) {
    let destination = output.map_or_else(|| "stdout".to_owned(), |path| path.display().to_string());
    let file = output.map_or_else(|| "-".to_owned(), |path| shell_quote(&path.display().to_string()));
    let namespace_flag = namespace.map(|namespace| format!(" -n {namespace}")).unwrap_or_default();
    let pod_reference = match namespace {
        Some(namespace) => format!("{namespace}/{pod_name}"),
        None => pod_name.to_owned(),
    };
    let archive_local = shell_quote(&archive.path.display().to_string());
    let sidecar_local = shell_quote(&sidecar_path(&archive.path).display().to_string());
    let archive_remote = shell_quote(&format!("{pod_reference}:{LOADER_MOUNT}/{}", archive.name));
    let sidecar_remote = shell_quote(&format!("{pod_reference}:{LOADER_MOUNT}/{}.sha256", archive.name));
    let archive_name = shell_quote(&archive.name);
    let sidecar_name = shell_quote(&format!("{}.sha256", archive.name));
    // One argument for `sh -c`, so its own words are quoted inside it.
    let unpack = shell_quote(&format!(
        "cd {LOADER_MOUNT} && sha256sum -c {sidecar_name} && rm -rf wheelhouse && tar xzf {archive_name} && cd wheelhouse && sha256sum -c SHA256SUMS"
    ));
    ui::say(&format!(
        "wrote PersistentVolumeClaim {name} ({storage}, ReadWriteOnce) and Pod {pod_name} ({LOADER_IMAGE}) to {destination}\n\
         {} is {}, sha256 {}\n\
         Then:\n\
         \x20 kubectl create -f {file}\n\
         \x20 kubectl wait{namespace_flag} --for=condition=Ready pod/{pod_name} --timeout=10m\n\
         \x20 kubectl cp {archive_local} {archive_remote}\n\
         \x20 kubectl cp {sidecar_local} {sidecar_remote}\n\
         \x20 kubectl exec{namespace_flag} {pod_name} -- sh -c {unpack}\n\
         \x20 kubectl delete{namespace_flag} pod/{pod_name}\n\
         The check and unpack run busybox's sha256sum and tar in the loader (it has no xtask): the archive against its sidecar, then every file against SHA256SUMS.\n\
         Pods then mount claim {name} read-only and install from {LOADER_MOUNT}/wheelhouse (see `cargo xtask install-script` and docs/kubernetes.md)",
        archive.name,
        human_bytes(archive.size),
        archive.sha256,
    ));
}

/// A DNS subdomain name (RFC 1123), as Kubernetes requires of ConfigMap, Secret, claim and Pod
/// names: refused here rather than by the API server after the YAML has been carried over.
fn check_subdomain(name: &str, what: &str) -> Result<()> {
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
fn check_label(name: &str, what: &str) -> Result<()> {
    let valid = name.len() <= 63 && !name.contains('.') && check_subdomain(name, what).is_ok();
    if !valid {
        bail!("{what} {name:?} is not a valid Kubernetes namespace: lowercase letters, digits and '-', at most 63 characters");
    }
    Ok(())
}

/// A ConfigMap or Secret key, which is the archive's file name here.
fn check_key(key: &str) -> Result<()> {
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
    use super::objects::base64;
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
