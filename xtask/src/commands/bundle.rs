//! `bundle`: the packed wheelhouse as Kubernetes YAML: a ConfigMap or Secret, or a claim and a loader Pod.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use xtask::{
    model::{
        digest::sha256_hex,
        kubernetes::{
            check_key, check_label, check_subdomain, claim_size, claim_yaml, configmap_yaml, secret_yaml,
            ANNOTATION_LIMIT, LOADER_IMAGE, LOADER_MOUNT, OBJECT_LIMIT, WARNING_PERCENT,
        },
        kubernetes_serve::{index_url, serve_yaml, ServeObjects, DEFAULT_CLIENT_LABEL},
        paths::human_bytes,
        shell::shell_quote,
        untrusted::shown,
    },
    ui,
    wheelhouse::{
        delta::read_source,
        files::sha256_file,
        integrity::{read_sidecar, Sidecar},
        layout::sidecar_path,
    },
};

use crate::{
    commands::{write_or_check, Mode},
    flags::Bundle,
    settings::Project,
};

#[derive(Clone, Copy)]
enum Kind<'a> {
    ConfigMap(&'a str),
    Secret(&'a str),
    Pvc(&'a str),
    Serve(&'a str),
}

/// The archive, checked against its sidecar.
struct CheckedArchive {
    path: PathBuf,
    name: String,
    sha256: String,
    size: u64,
}

pub fn run(project: &Project, args: &Bundle) -> Result<()> {
    let kind = match (&args.configmap, &args.secret, &args.pvc, &args.serve) {
        (Some(name), _, _, _) => Kind::ConfigMap(name),
        (_, Some(name), _, _) => Kind::Secret(name),
        (_, _, Some(name), _) => Kind::Pvc(name),
        (_, _, _, Some(name)) => Kind::Serve(name),
        _ => bail!("give one of --configmap NAME, --secret NAME, --pvc NAME or --serve NAME"),
    };
    let namespace = args.namespace.as_deref();
    if let Some(namespace) = namespace {
        check_label(namespace, "--namespace")?;
    }
    let archive_path = project.archive(args.archive.as_deref(), &project.wheelhouse(None));
    let archive = check_archive(&archive_path)?;
    // A bundle carries the bytes pack wrote without reading them; only a delta's record, which pack
    // puts third, is looked for.
    if let Some(delta) = read_source(&archive_path).ok().and_then(|source| source.delta) {
        bail!(
            "{} is a delta over the wheelhouse whose manifest has sha256 {}: a bundle carries a whole wheelhouse\nhint: bundle the full archive (pack-wheelhouse without --since)",
            archive_path.display(),
            delta.base_manifest_sha256
        );
    }
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
        Kind::Serve(name) => serve_objects(&archive, name, namespace, args)?,
    };
    match &args.output {
        Some(path) => {
            let output = project.flag_path(path);
            write_or_check(&output, &output.display().to_string(), &yaml, Mode::Write)?;
            if args.json {
                let (kind, name) = match kind {
                    Kind::ConfigMap(name) => ("ConfigMap", name),
                    Kind::Secret(name) => ("Secret", name),
                    Kind::Pvc(name) => ("PersistentVolumeClaim", name),
                    Kind::Serve(name) => ("Deployment", name),
                };
                let report = serde_json::json!({
                    "kind": kind,
                    "name": name,
                    "namespace": namespace,
                    "archive": archive.path.display().to_string(),
                    "archive_sha256": archive.sha256,
                    "archive_bytes": archive.size,
                    "output": output.display().to_string(),
                    "yaml_bytes": yaml.len(),
                });
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
        }
        None => std::io::stdout().lock().write_all(yaml.as_bytes()).context("cannot write the YAML to stdout")?,
    }
    Ok(())
}

/// The Deployment, Service and NetworkPolicy that serve the archive from its claim.
fn serve_objects(archive: &CheckedArchive, name: &str, namespace: Option<&str>, args: &Bundle) -> Result<String> {
    check_label(name, "--serve (a Service's name)")?;
    if !name.starts_with(|first: char| first.is_ascii_lowercase()) {
        bail!("--serve {name:?} is not a valid Kubernetes Service name: it must start with a lowercase letter");
    }
    let claim = args.claim.as_deref().unwrap_or(name);
    check_subdomain(claim, "--claim")?;
    let image = args.image.as_deref().context("--serve needs --image IMAGE: an image with the tool")?;
    let client_label = match &args.allow {
        Some(pair) => {
            let (key, value) =
                pair.split_once('=').with_context(|| format!("--allow `{}` is not KEY=VALUE", shown(pair)))?;
            check_label_pair(key, value)?;
            (key, value)
        }
        None => DEFAULT_CLIENT_LABEL,
    };
    let scratch = claim_size(archive.size);
    let yaml = serve_yaml(&ServeObjects {
        name,
        namespace,
        image,
        claim,
        archive_name: &archive.name,
        scratch: &scratch,
        client_label,
        extra_args: &args.serve_args,
    })?;
    let destination = args.output.as_ref().map_or_else(|| "stdout".to_owned(), |path| path.display().to_string());
    ui::say(&format!(
        "wrote Deployment, Service and NetworkPolicy {name} to {destination}: `serve` of {} (sha256 {}) from claim {claim}\n\
         Pods labelled {}={} install from {}\n\
         hint: fill the claim first (`bundle --pvc {claim}`); `install-script --index-url URL` and `build-offline --from-index URL` use the index",
        archive.name,
        archive.sha256,
        client_label.0,
        client_label.1,
        index_url(name, namespace)
    ));
    Ok(yaml)
}

/// A label key (an optional DNS subdomain prefix and `/`, then a name of at most 63 characters)
/// and value (at most 63 characters), as Kubernetes accepts them.
fn check_label_pair(key: &str, value: &str) -> Result<()> {
    let name_ok = |text: &str, empty_ok: bool| {
        (empty_ok || !text.is_empty())
            && text.len() <= 63
            && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte))
            && text.bytes().next().is_none_or(|byte| byte.is_ascii_alphanumeric())
            && text.bytes().last().is_none_or(|byte| byte.is_ascii_alphanumeric())
    };
    let (prefix, name) = key.rsplit_once('/').map_or((None, key), |(prefix, name)| (Some(prefix), name));
    let prefix_ok = prefix.is_none_or(|prefix| check_subdomain(prefix, "the label prefix").is_ok());
    if !(prefix_ok && name_ok(name, false) && name_ok(value, true)) {
        bail!("--allow `{}={}` is not a valid Kubernetes label", shown(key), shown(value));
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
    let actual = sha256_file(path)?;
    match read_sidecar(path, &actual)? {
        Sidecar::Matches => {}
        Sidecar::Mismatch { expected: Some(expected) } => bail!(
            "{name} has sha256 {actual}, {} says {expected}\nhint: the archive or its sidecar changed in transit, or a pack was killed between the two; copy both again, or pack again",
            sidecar.display()
        ),
        Sidecar::Mismatch { expected: None } | Sidecar::Missing => {
            bail!("{} says nothing about {name}\nhint: pack again to rewrite both", sidecar.display())
        }
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
        "{} is {} ({} bytes): as a {kind_name} it is {} bytes of YAML (base64 makes it 4/3 its size), over the {} byte (1 MiB) limit of a Kubernetes object\nhint: use --pvc NAME instead: a PersistentVolumeClaim and a loader Pod to copy the archive into (`cargo xtask bundle --help`)",
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
            "warning: the {kind_name} is {percent}% of the 1 MiB object limit: a few more wheels and the next one will not fit\nhint: move to --pvc NAME before it does (`cargo xtask bundle --help`)"
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
         Pods then mount claim {name} read-only and install from {LOADER_MOUNT}/wheelhouse (see `cargo xtask install-script --help`)",
        archive.name,
        human_bytes(archive.size),
        archive.sha256,
    ));
}
