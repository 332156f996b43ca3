//! Deterministic wheel and sdist builders: the specs, their archive bytes and the sdists' in-tree PEP 517 backend.

// Every archive is built deterministically: fixed timestamps, fixed permissions, sorted entries and
// pseudo-random filler seeded from the file name. The same specs therefore always produce the same
// bytes and the same sha256, which is what lock-file and "unchanged input" tests rely on.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Cursor, Write as _};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use xtask::model::wheel_name::normalize;

/// The tag of a pure-Python wheel.
pub const PURE_TAG: &str = "py3-none-any";

/// Seconds since the epoch used for every tar member (1980-01-01, the earliest time a zip can hold,
/// so sdists and wheels agree on "the beginning of time").
const FIXED_MTIME: u64 = 315_532_800;

/// One wheel to generate. Build it with [`WheelSpec::pure`] or [`WheelSpec::new`] plus the
/// chainable setters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelSpec {
    /// Project name as it should appear in `Name:` (file names use the normalized form).
    pub name: String,
    pub version: String,
    /// Compressed tag set, e.g. `py3-none-any` or `cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64`.
    pub tag: String,
    /// PEP 508 strings written verbatim as `Requires-Dist:` lines.
    pub requires_dist: Vec<String>,
    pub provides_extra: Vec<String>,
    pub requires_python: Option<String>,
    /// Size of an extra incompressible filler file inside the wheel (0 = none).
    pub payload_bytes: usize,
    /// A `License-Expression:` (PEP 639) header, for SBOM tests.
    pub license_expression: Option<String>,
}

impl WheelSpec {
    pub fn new(name: &str, version: &str, tag: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            tag: tag.to_owned(),
            requires_dist: Vec::new(),
            provides_extra: Vec::new(),
            requires_python: None,
            payload_bytes: 0,
            license_expression: None,
        }
    }

    /// A `py3-none-any` wheel.
    pub fn pure(name: &str, version: &str) -> Self {
        Self::new(name, version, PURE_TAG)
    }

    pub fn requires(mut self, requirement: &str) -> Self {
        self.requires_dist.push(requirement.to_owned());
        self
    }

    pub fn extra(mut self, extra: &str) -> Self {
        self.provides_extra.push(extra.to_owned());
        self
    }

    pub fn requires_python(mut self, specifier: &str) -> Self {
        self.requires_python = Some(specifier.to_owned());
        self
    }

    pub fn payload(mut self, bytes: usize) -> Self {
        self.payload_bytes = bytes;
        self
    }

    /// `<name>-<version>-<tag>.whl`, with the name escaped as the wheel spec requires.
    pub fn filename(&self) -> String {
        format!("{}-{}-{}.whl", wheel_name(&self.name), self.version, self.tag)
    }

    pub fn license(mut self, expression: &str) -> Self {
        self.license_expression = Some(expression.to_owned());
        self
    }

    fn metadata(&self) -> String {
        let mut text =
            core_metadata(&self.name, &self.version, &self.requires_python, &self.provides_extra, &self.requires_dist);
        if let Some(expression) = &self.license_expression {
            let _ = writeln!(text, "License-Expression: {expression}");
        }
        text
    }
}

/// One sdist to generate. Its in-tree backend builds a wheel tagged `wheel_tag`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdistSpec {
    pub name: String,
    pub version: String,
    /// Tag of the wheel the backend builds; anything but `py3-none-any` makes it a non-pure build.
    pub wheel_tag: String,
    pub requires_dist: Vec<String>,
    pub provides_extra: Vec<String>,
    pub requires_python: Option<String>,
}

impl SdistSpec {
    /// An sdist whose backend builds a `py3-none-any` wheel.
    pub fn pure(name: &str, version: &str) -> Self {
        Self::with_wheel_tag(name, version, PURE_TAG)
    }

    /// An sdist whose backend builds a wheel with the given tag (e.g. `cp311-cp311-linux_x86_64`).
    pub fn with_wheel_tag(name: &str, version: &str, wheel_tag: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            wheel_tag: wheel_tag.to_owned(),
            requires_dist: Vec::new(),
            provides_extra: Vec::new(),
            requires_python: None,
        }
    }

    pub fn requires(mut self, requirement: &str) -> Self {
        self.requires_dist.push(requirement.to_owned());
        self
    }

    pub fn extra(mut self, extra: &str) -> Self {
        self.provides_extra.push(extra.to_owned());
        self
    }

    pub fn requires_python(mut self, specifier: &str) -> Self {
        self.requires_python = Some(specifier.to_owned());
        self
    }

    /// `<name>-<version>.tar.gz` (PEP 625 style name).
    pub fn filename(&self) -> String {
        format!("{}.tar.gz", self.top_dir())
    }

    /// The file name of the wheel the backend will build.
    pub fn built_wheel_filename(&self) -> String {
        format!("{}-{}-{}.whl", wheel_name(&self.name), self.version, self.wheel_tag)
    }

    fn top_dir(&self) -> String {
        format!("{}-{}", wheel_name(&self.name), self.version)
    }

    fn metadata(&self) -> String {
        core_metadata(&self.name, &self.version, &self.requires_python, &self.provides_extra, &self.requires_dist)
    }
}

/// Name as it appears in wheel/sdist file names and `.dist-info`: PEP 503 normalized by the
/// tool's own [`normalize`], then `-` → `_`.
pub fn wheel_name(name: &str) -> String {
    normalize(name).replace('-', "_")
}

/// Core metadata 2.1, shared by wheel METADATA and sdist PKG-INFO.
fn core_metadata(
    name: &str,
    version: &str,
    requires_python: &Option<String>,
    provides_extra: &[String],
    requires_dist: &[String],
) -> String {
    let mut out =
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: Synthetic test package {name}\n");
    if let Some(spec) = requires_python {
        let _ = writeln!(out, "Requires-Python: {spec}");
    }
    for extra in provides_extra {
        let _ = writeln!(out, "Provides-Extra: {extra}");
    }
    for requirement in requires_dist {
        let _ = writeln!(out, "Requires-Dist: {requirement}");
    }
    out
}

/// Expands a compressed tag set (`cp311-cp311-a.b`) into every `py-abi-plat` triple.
pub fn expand_tags(tag: &str) -> Vec<String> {
    let parts: Vec<&str> = tag.split('-').collect();
    let [pythons, abis, platforms] = parts.as_slice() else {
        panic!("wheel tag {tag:?} must be python-abi-platform");
    };
    let mut tags = Vec::new();
    for python in pythons.split('.') {
        for abi in abis.split('.') {
            for platform in platforms.split('.') {
                tags.push(format!("{python}-{abi}-{platform}"));
            }
        }
    }
    tags
}

fn wheel_file(tag: &str, generator: &str) -> String {
    let mut out = format!(
        "Wheel-Version: 1.0\nGenerator: {generator}\nRoot-Is-Purelib: {}\n",
        if tag == PURE_TAG { "true" } else { "false" }
    );
    for expanded in expand_tags(tag) {
        let _ = writeln!(out, "Tag: {expanded}");
    }
    out
}

fn init_py(version: &str) -> String {
    format!("__version__ = \"{version}\"\n")
}

/// Deterministic, incompressible filler: splitmix64 seeded from the wheel's file name, so two
/// builds of the same spec match but different wheels carry different bytes.
fn filler(seed_text: &str, len: usize) -> Vec<u8> {
    let mut state = seed_text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// RECORD hash format: `sha256=` + urlsafe base64 without padding.
fn record_hash(bytes: &[u8]) -> String {
    format!("sha256={}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes)))
}

/// Builds the wheel's bytes; the zip has sorted entries, fixed timestamps and permissions.
pub fn build_wheel(spec: &WheelSpec) -> Vec<u8> {
    let package = wheel_name(&spec.name);
    let dist_info = format!("{package}-{}.dist-info", spec.version);
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    members.insert(format!("{package}/__init__.py"), init_py(&spec.version).into_bytes());
    if spec.payload_bytes > 0 {
        members.insert(format!("{package}/payload.bin"), filler(&spec.filename(), spec.payload_bytes));
    }
    members.insert(format!("{dist_info}/METADATA"), spec.metadata().into_bytes());
    members.insert(format!("{dist_info}/WHEEL"), wheel_file(&spec.tag, "xtask-test-index").into_bytes());

    let record_path = format!("{dist_info}/RECORD");
    let mut record = String::new();
    for (path, bytes) in &members {
        let _ = writeln!(record, "{path},{},{}", record_hash(bytes), bytes.len());
    }
    let _ = writeln!(record, "{record_path},,");
    members.insert(record_path, record.into_bytes());

    let result = (|| -> zip::result::ZipResult<Vec<u8>> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let base = zip::write::SimpleFileOptions::default()
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        for (path, bytes) in &members {
            // Deflating random filler gains nothing and is slow in debug builds; store it.
            let method = if path.ends_with("payload.bin") {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            };
            zip.start_file(path.as_str(), base.compression_method(method))?;
            zip.write_all(bytes)?;
        }
        Ok(zip.finish()?.into_inner())
    })();
    match result {
        Ok(bytes) => bytes,
        Err(err) => panic!("building {}: {err}", spec.filename()),
    }
}

/// Builds the sdist's bytes: a gzipped ustar archive with fixed metadata and sorted members.
pub fn build_sdist(spec: &SdistSpec) -> Vec<u8> {
    let top = spec.top_dir();
    let package = wheel_name(&spec.name);
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    members.insert("PKG-INFO".into(), spec.metadata().into_bytes());
    members.insert("pyproject.toml".into(), PYPROJECT_TOML.as_bytes().to_vec());
    members.insert("backend.py".into(), backend_py(spec).into_bytes());
    members.insert(format!("{package}/__init__.py"), init_py(&spec.version).into_bytes());

    let result = (|| -> std::io::Result<Vec<u8>> {
        // GzEncoder writes mtime 0 and no file name into the gzip header: deterministic.
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mut dirs: Vec<String> = vec![top.clone()];
        for path in members.keys() {
            if let Some((dir, _)) = path.rsplit_once('/') {
                dirs.push(format!("{top}/{dir}"));
            }
        }
        dirs.sort();
        dirs.dedup();
        let mut entries: Vec<(String, Option<&Vec<u8>>)> = dirs.into_iter().map(|d| (format!("{d}/"), None)).collect();
        entries.extend(members.iter().map(|(path, bytes)| (format!("{top}/{path}"), Some(bytes))));
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, bytes) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(FIXED_MTIME);
            header.set_uid(0);
            header.set_gid(0);
            header.set_username("")?;
            header.set_groupname("")?;
            match bytes {
                Some(bytes) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    header.set_size(bytes.len() as u64);
                    tar.append_data(&mut header, &path, bytes.as_slice())?;
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    tar.append_data(&mut header, &path, std::io::empty())?;
                }
            }
        }
        tar.into_inner()?.finish()
    })();
    match result {
        Ok(bytes) => bytes,
        Err(err) => panic!("building {}: {err}", spec.filename()),
    }
}

/// `requires = []` keeps pip's isolated build environment empty: nothing is ever downloaded.
const PYPROJECT_TOML: &str = "\
[build-system]
requires = []
build-backend = \"backend\"
backend-path = [\".\"]
";

/// The in-tree PEP 517 backend: stdlib only, builds the wheel from PKG-INFO and the package dir.
fn backend_py(spec: &SdistSpec) -> String {
    let header = format!(
        "NAME = {:?}\nVERSION = {:?}\nTAG = {:?}\nPACKAGE = {:?}\nGENERATOR = \"xtask-test-backend\"\n",
        wheel_name(&spec.name),
        spec.version,
        spec.wheel_tag,
        wheel_name(&spec.name),
    );
    format!("{BACKEND_PREAMBLE}{header}{BACKEND_BODY}")
}

const BACKEND_PREAMBLE: &str = r#""""In-tree PEP 517 backend of a synthetic test sdist (stdlib only, never touches the network)."""
import base64
import hashlib
import io
import os
import tarfile
import zipfile

"#;

const BACKEND_BODY: &str = r#"
HERE = os.path.dirname(os.path.abspath(__file__))
DIST_INFO = NAME + "-" + VERSION + ".dist-info"
# 1980-01-01, the earliest zip timestamp: the same sdist always builds the same wheel bytes.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FIXED_MTIME = 315532800
SDIST_FILES = ("PKG-INFO", "backend.py", "pyproject.toml", PACKAGE + "/__init__.py")


def _read(relative):
    with open(os.path.join(HERE, relative), "rb") as handle:
        return handle.read()


def _wheel_metadata():
    purelib = "true" if TAG == "py3-none-any" else "false"
    lines = ["Wheel-Version: 1.0", "Generator: " + GENERATOR, "Root-Is-Purelib: " + purelib]
    pythons, abis, platforms = TAG.split("-")
    for python in pythons.split("."):
        for abi in abis.split("."):
            for platform in platforms.split("."):
                lines.append("Tag: %s-%s-%s" % (python, abi, platform))
    return ("\n".join(lines) + "\n").encode()


def _package_members():
    members = {}
    root = os.path.join(HERE, PACKAGE)
    for directory, subdirs, files in os.walk(root):
        # Importing the backend may leave bytecode behind; it must not leak into the wheel.
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for name in files:
            if name.endswith(".pyc"):
                continue
            path = os.path.join(directory, name)
            arcname = os.path.relpath(path, HERE).replace(os.sep, "/")
            members[arcname] = _read(os.path.relpath(path, HERE))
    return members


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = os.path.join(metadata_directory, DIST_INFO)
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "METADATA"), "wb") as handle:
        handle.write(_read("PKG-INFO"))
    with open(os.path.join(target, "WHEEL"), "wb") as handle:
        handle.write(_wheel_metadata())
    return DIST_INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    members = _package_members()
    members[DIST_INFO + "/METADATA"] = _read("PKG-INFO")
    members[DIST_INFO + "/WHEEL"] = _wheel_metadata()
    record_path = DIST_INFO + "/RECORD"
    record = "".join(
        "%s,%s,%d\n" % (path, _record_hash(data), len(data)) for path, data in sorted(members.items())
    )
    members[record_path] = (record + record_path + ",,\n").encode()
    filename = "%s-%s-%s.whl" % (NAME, VERSION, TAG)
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
        for path in sorted(members):
            info = zipfile.ZipInfo(path, date_time=FIXED_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, members[path])
    return filename


def build_sdist(sdist_directory, config_settings=None):
    top = NAME + "-" + VERSION
    filename = top + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as archive:
        for relative in sorted(SDIST_FILES):
            data = _read(relative)
            info = tarfile.TarInfo(top + "/" + relative)
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return filename
"#;
