//! The one place that runs pip: finding an interpreter, checking its pip, and the three pip calls
//! (resolve, download, build a wheel). Nothing else in the tool starts Python.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::model::{
    redact::redact_text,
    target::{major_minor, Target},
    untrusted::with_lines_kept,
};

/// The pip versions this tool has been tested with (the marker shim reaches into pip's vendored
/// `packaging`, which is not a public API): `>= MIN` and `< MAX` major.
pub const MIN_PIP: (u64, u64) = (23, 0);
pub const MAX_PIP_MAJOR: u64 = 27;

/// pip evaluates environment markers against the interpreter running it, even with `--platform`.
/// `use_target` swaps the marker environment of pip's vendored `packaging` for the target's, in
/// that module and in every pip module that bound `default_environment` when it was imported (pip
/// 23's installation report does), and for the modules imported later. The report's
/// `environment` then shows the target, which `resolution::parse_report` checks.
///
/// It also hands the target's Python version to the resolver's Requires-Python check. pip's
/// `install` passes `--python-version` to the resolver only from 24.2 on; before, the check used
/// the interpreter running pip, so a target newer than the host silently got older releases (or
/// none), and an older one got releases it cannot run. Filling `py_version_info` where pip left it
/// out makes every supported pip (23.0 to 26.x) judge Requires-Python for the target; where pip
/// already passes it, nothing changes.
pub(crate) const TARGET_SHIM: &str = r#"
import json, os, sys
from pip._vendor.packaging import markers
from pip._internal.cli import req_command
host_environment = markers.default_environment
pip_make_resolver = req_command.RequirementCommand.make_resolver.__func__
def use_target(target):
    def target_environment():
        environment = dict(host_environment())
        environment.update(target)
        return environment
    markers.default_environment = target_environment
    for name, module in list(sys.modules.items()):
        if name.startswith("pip.") and getattr(module, "default_environment", None) is host_environment:
            module.default_environment = target_environment
    version_info = tuple(int(part) for part in target["python_full_version"].split("."))
    def make_resolver(cls, *args, **kwargs):
        if kwargs.get("py_version_info") is None:
            kwargs["py_version_info"] = version_info
        return pip_make_resolver(cls, *args, **kwargs)
    req_command.RequirementCommand.make_resolver = classmethod(make_resolver)
"#;

/// One pip run under the target's markers: `python -c MARKER_SHIM MARKERS_JSON PIP_ARGS...`.
const MARKER_SHIM_MAIN: &str = r#"
use_target(json.loads(sys.argv[1]))
from pip._internal.cli.main import main
sys.argv = ["pip"] + sys.argv[2:]
sys.exit(main())
"#;

/// Prints the network options of a `pip download` with the given flags, as pip's option parser
/// merges them with pip.conf and `PIP_*` (`keyring_provider` exists from pip 23.1 on).
const HTTP_OPTIONS_PROBE: &str = r#"
import json, sys
from pip._internal.commands import create_command
options, _ = create_command("download", isolated="--isolated" in sys.argv).parse_args(sys.argv[1:])
print(json.dumps({
    "index_url": options.index_url,
    "extra_index_urls": options.extra_index_urls,
    "no_index": options.no_index,
    "cert": options.cert,
    "client_cert": options.client_cert,
    "trusted_hosts": options.trusted_hosts,
    "proxy": options.proxy or None,
    "timeout": options.timeout,
    "retries": options.retries,
    "keyring_provider": getattr(options, "keyring_provider", None),
}))
"#;

/// pip's effective network options (see [`Python::http_options`]).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct HttpOptions {
    pub index_url: Option<String>,
    #[serde(default)]
    pub extra_index_urls: Vec<String>,
    #[serde(default)]
    pub no_index: bool,
    /// `--cert`: a CA bundle.
    pub cert: Option<String>,
    /// `--client-cert`: one PEM file with the certificate and its key.
    pub client_cert: Option<String>,
    #[serde(default)]
    pub trusted_hosts: Vec<String>,
    pub proxy: Option<String>,
    pub timeout: Option<f64>,
    pub retries: Option<u32>,
    /// `auto`, `disabled`, `import` or `subprocess`.
    pub keyring_provider: Option<String>,
}

impl HttpOptions {
    /// Every index URL pip would use, with whatever credentials they carry.
    pub fn index_urls(&self) -> Vec<String> {
        self.index_url.iter().chain(&self.extra_index_urls).cloned().collect()
    }
}

const PIP_QUIET_FLAGS: [&str; 4] = ["--disable-pip-version-check", "--no-input", "--progress-bar", "off"];

/// An interpreter that can import a supported pip.
#[derive(Debug, Clone)]
pub struct Python {
    pub path: PathBuf,
    pub version: String,
    pub pip_version: String,
}

/// Where pip looks; pip's own configuration (pip.conf, `PIP_*`, netrc) applies on top.
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// `--isolated`: no pip.conf, no `PIP_*`; the offline install check must see only the
    /// wheelhouse, not a `PIP_FIND_LINKS` of the machine it runs on.
    pub isolated: bool,
    pub no_index: bool,
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    pub find_links: Vec<String>,
}

impl IndexOptions {
    /// The index URL travels in the environment, not on the command line, where every user of
    /// the machine could read its credentials in the process list.
    pub(crate) fn environment(&self) -> Vec<(&'static str, String)> {
        self.index_url.iter().map(|url| ("PIP_INDEX_URL", url.clone())).collect()
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.isolated {
            args.push("--isolated".to_owned());
        }
        if self.no_index {
            args.push("--no-index".to_owned());
        }
        for url in &self.extra_index_urls {
            args.extend(["--extra-index-url".to_owned(), url.clone()]);
        }
        for link in &self.find_links {
            args.extend(["--find-links".to_owned(), link.clone()]);
        }
        args
    }
}

/// What a resolve, download or build asks of pip.
pub enum Inputs<'a> {
    RequirementsFile(&'a Path),
    Packages(&'a [&'a str]),
}

impl Inputs<'_> {
    fn args(&self) -> Vec<String> {
        match self {
            Inputs::RequirementsFile(path) => vec!["-r".to_owned(), path.display().to_string()],
            Inputs::Packages(names) => names.iter().map(|name| (*name).to_owned()).collect(),
        }
    }
}

/// A pip call that failed, with what the user needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum PipFailure {
    /// pip found no distribution it may use: no wheel for the target, or no such version.
    /// `requirement` is plain (`name==1.0`), without the markers or origin pip prints after it.
    #[error("pip found no distribution of `{requirement}` it may use")]
    NoMatchingDistribution { requirement: String, output: String },
    /// No set of versions satisfies every requirement; `dependencies` are the requirements pip
    /// names as the cause (`depends on ...`), plain.
    #[error("pip found no set of versions that satisfies every requirement\n{output}")]
    ResolutionImpossible { dependencies: Vec<String>, output: String },
    #[error("pip failed (exit code {code})\n{output}")]
    Other { code: i32, output: String },
}

impl Python {
    /// Finds `name` on PATH (or uses it as a path) and checks that its pip is supported.
    pub fn find(sh: &Shell, name: &str) -> Result<Python> {
        let path = which::which(name).map_err(|error| {
            anyhow::anyhow!(
                "cannot find the Python interpreter `{name}`: {error}\nhint: install python3, or pass \
                 --python-interpreter PATH (or set `python_interpreter` in wheelhouse.toml)"
            )
        })?;
        let probe = "import json, platform, sys\ntry:\n    import pip\n    pip_version = pip.__version__\nexcept ImportError:\n    pip_version = None\nprint(json.dumps([platform.python_version(), pip_version]))";
        let output =
            cmd!(sh, "{path} -c {probe}").quiet().read().with_context(|| format!("cannot run {}", path.display()))?;
        let (version, pip_version): (String, Option<String>) = serde_json::from_str(output.trim())
            .with_context(|| format!("unexpected answer from {}: {output}", path.display()))?;
        let Some(pip_version) = pip_version else {
            bail!(
                "{} (Python {version}) cannot import pip\nhint: install pip for it (`{} -m ensurepip`), or pass --python-interpreter PATH",
                path.display(),
                path.display()
            );
        };
        check_pip_version(&pip_version).map_err(|error| {
            anyhow::anyhow!(
                "{error}\nhint: {} -m pip install 'pip>={}.{},<{MAX_PIP_MAJOR}'",
                path.display(),
                MIN_PIP.0,
                MIN_PIP.1
            )
        })?;
        Ok(Python { path, version, pip_version })
    }

    pub fn major_minor(&self) -> String {
        major_minor(&self.version)
    }

    /// `pip install --dry-run --report` under the target's markers: the whole resolution, with
    /// nothing installed. Returns the report's JSON.
    pub fn resolve(
        &self,
        sh: &Shell,
        target: &Target,
        inputs: &Inputs<'_>,
        index: &IndexOptions,
        scratch: &Path,
    ) -> Result<String> {
        self.dry_run(sh, target, inputs, index, scratch, &[])
    }

    /// Whether pip finds a distribution of `requirement` alone (no dependencies) that the target
    /// can install: `false` when it finds none, which for `--only-binary=:all:` means no wheel.
    pub fn has_wheel(
        &self,
        sh: &Shell,
        target: &Target,
        requirement: &str,
        index: &IndexOptions,
        scratch: &Path,
    ) -> Result<bool> {
        match self.dry_run(sh, target, &Inputs::Packages(&[requirement]), index, scratch, &["--no-deps"]) {
            Ok(_) => Ok(true),
            Err(error) if matches!(error.downcast_ref(), Some(PipFailure::NoMatchingDistribution { .. })) => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn dry_run(
        &self,
        sh: &Shell,
        target: &Target,
        inputs: &Inputs<'_>,
        index: &IndexOptions,
        scratch: &Path,
        extra_args: &[&str],
    ) -> Result<String> {
        let DryRun { markers, args, report } = dry_run_args(target, inputs, index, scratch, extra_args)?;
        let python = &self.path;
        let shim = format!("{TARGET_SHIM}{MARKER_SHIM_MAIN}");
        let command = cmd!(sh, "{python} -c {shim} {markers} {args...}");
        run_pip(command.envs(index.environment()))?;
        fs_err::read_to_string(&report).context("pip wrote no report")
    }

    /// `pip download --no-deps` of exact pins (`name==version --hash=...` lines) into `destination`.
    pub fn download(
        &self,
        sh: &Shell,
        target: &Target,
        pins_file: &Path,
        index: &IndexOptions,
        destination: &Path,
    ) -> Result<()> {
        let python = &self.path;
        let platform_args = platform_args(target)?;
        let index_args = index.args();
        let quiet = PIP_QUIET_FLAGS;
        let command = cmd!(
            sh,
            "{python} -m pip download --no-deps --dest {destination} {platform_args...} {quiet...}
                {index_args...} -r {pins_file}"
        );
        run_pip(command.envs(index.environment()))?;
        Ok(())
    }

    /// The network options pip would use for a download with `index`: pip.conf, `PIP_*` and the
    /// flags merged by pip's own option parser, so that the native downloader talks to the index
    /// exactly as pip would.
    pub fn http_options(&self, sh: &Shell, index: &IndexOptions) -> Result<HttpOptions> {
        let python = &self.path;
        let index_args = index.args();
        let command = cmd!(sh, "{python} -c {HTTP_OPTIONS_PROBE} {index_args...}");
        crate::ui::verbose(&format!("+ {}", redact_text(&command.to_string())));
        // The answer holds the index URLs with their credentials: it is parsed, never shown.
        let output = command
            .envs(index.environment())
            .quiet()
            .ignore_stderr()
            .read()
            .context("cannot ask pip for its network options")?;
        serde_json::from_str(output.trim()).context("pip's network options are not the JSON the probe prints")
    }

    /// `pip wheel --no-deps` of one requirement from its sdist, on the host, into `destination`.
    pub fn build_wheel(&self, sh: &Shell, requirement: &str, index: &IndexOptions, destination: &Path) -> Result<()> {
        let python = &self.path;
        let index_args = index.args();
        let quiet = PIP_QUIET_FLAGS;
        // Only this package from source: `:all:` would reach into the isolated build environment
        // and force its build backend (setuptools, hatchling) to be built from source too.
        let no_binary = format!("--no-binary={}", requirement_name(requirement));
        let command = cmd!(
            sh,
            "{python} -m pip wheel --no-deps {no_binary} --wheel-dir {destination} {quiet...}
                {index_args...} {requirement}"
        );
        run_pip(command.envs(index.environment()))?;
        Ok(())
    }
}

/// The project name at the start of a PEP 508 requirement (`foo[bar]>=1; ...` → `foo`).
fn requirement_name(requirement: &str) -> &str {
    let end = requirement
        .find(|character: char| !(character.is_ascii_alphanumeric() || "._-".contains(character)))
        .unwrap_or(requirement.len());
    &requirement[..end]
}

/// The options that make pip choose files for the target rather than the host.
fn platform_args(target: &Target) -> Result<Vec<String>> {
    let mut args = vec!["--only-binary=:all:".to_owned()];
    for tag in target.platform_tags()? {
        args.extend(["--platform".to_owned(), tag]);
    }
    args.extend([
        "--python-version".to_owned(),
        target.python.full(),
        "--implementation".to_owned(),
        "cp".to_owned(),
        "--abi".to_owned(),
        target.python.cpython_tag(),
    ]);
    Ok(args)
}

/// A `pip install --dry-run --report` for the target: the markers (JSON) for [`TARGET_SHIM`], pip's
/// arguments, and where the report will be.
pub(crate) struct DryRun {
    pub markers: String,
    pub args: Vec<String>,
    pub report: PathBuf,
}

pub(crate) fn dry_run_args(
    target: &Target,
    inputs: &Inputs<'_>,
    index: &IndexOptions,
    scratch: &Path,
    extra_args: &[&str],
) -> Result<DryRun> {
    let report = scratch.join("report.json");
    let markers: BTreeMap<_, _> = target.marker_environment();
    let mut args: Vec<String> = ["install", "--dry-run", "--ignore-installed", "--report"].map(str::to_owned).to_vec();
    args.push(report.display().to_string());
    args.extend(["--target".to_owned(), scratch.join("target").display().to_string()]);
    args.extend(platform_args(target)?);
    args.extend(PIP_QUIET_FLAGS.map(str::to_owned));
    args.extend(index.args());
    args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
    args.extend(inputs.args());
    Ok(DryRun { markers: serde_json::to_string(&markers)?, args, report })
}

fn run_pip(command: xshell::Cmd<'_>) -> std::result::Result<(), PipFailure> {
    crate::ui::verbose(&format!("+ {}", redact_text(&command.to_string())));
    let output = match command.quiet().ignore_status().output() {
        Ok(output) => output,
        Err(error) => return Err(PipFailure::Other { code: -1, output: error.to_string() }),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    classify(output.status.code().unwrap_or(-1), &text)
}

/// A pip run's exit code and output, as the failure the user can act on.
pub(crate) fn classify(code: i32, output: &str) -> std::result::Result<(), PipFailure> {
    if code == 0 {
        return Ok(());
    }
    // pip quotes what an index served (names, versions, URLs): never let it reach a terminal raw.
    let text = with_lines_kept(&redact_text(output));
    if let Some(requirement) = no_matching_distribution(&text) {
        return Err(PipFailure::NoMatchingDistribution { requirement, output: text });
    }
    if text.contains("ResolutionImpossible") {
        return Err(PipFailure::ResolutionImpossible { dependencies: conflict_causes(&text), output: text });
    }
    Err(PipFailure::Other { code, output: last_lines(&text, 40) })
}

/// pip's words (stable since pip 10): `ERROR: No matching distribution found for NAME SPEC`.
fn no_matching_distribution(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let requirement = line.split("No matching distribution found for ").nth(1)?;
        Some(plain_requirement(requirement))
    })
}

/// pip's text for a requirement as a requirement pip accepts again: `psycopg-c==3.3.4` from
/// `psycopg-c==3.3.4; implementation_name != "pypy" and extra == "c"` (pip 23) or
/// `psycopg-c==3.3.4 (from psycopg[c])` (pip 26).
pub fn plain_requirement(text: &str) -> String {
    let without_origin = text.split(" (from ").next().unwrap_or(text);
    without_origin.split(';').next().unwrap_or(without_origin).trim().to_owned()
}

/// The requirements under pip's `The conflict is caused by:` (`parent 1.0 depends on REQ`), plain
/// and without repeats.
fn conflict_causes(output: &str) -> Vec<String> {
    let mut causes: Vec<String> = Vec::new();
    for line in output.lines() {
        let Some(requirement) = line.split(" depends on ").nth(1) else { continue };
        let requirement = plain_requirement(requirement);
        if !requirement.is_empty() && !causes.contains(&requirement) {
            causes.push(requirement);
        }
    }
    causes
}

/// pip's own words when it could not reach an index or a file (refused connection, unknown host,
/// TLS failure, proxy, timeout), the last line of them: a dead index is otherwise reported as a
/// package with no versions.
pub fn connection_error(output: &str) -> Option<String> {
    const SIGNS: [&str; 9] = [
        "connection broken by",
        "Could not fetch URL",
        "Failed to establish a new connection",
        "Max retries exceeded",
        "NameResolutionError",
        "Temporary failure in name resolution",
        "SSLError",
        "ProxyError",
        "Read timed out",
    ];
    output.lines().rev().find(|line| SIGNS.iter().any(|sign| line.contains(sign))).map(|line| line.trim().to_owned())
}

/// The versions pip skipped because their Requires-Python excludes the target, as pip logs them
/// (`6.0 Requires-Python >=3.12`).
pub fn requires_python_skipped(output: &str) -> Vec<String> {
    output
        .lines()
        .find_map(|line| line.split("Ignored the following versions that require a different python version: ").nth(1))
        .map(|list| list.split("; ").map(|entry| entry.trim().to_owned()).filter(|entry| !entry.is_empty()).collect())
        .unwrap_or_default()
}

/// A file whose bytes did not match a `--hash` pin, as pip reports it.
#[derive(Debug, PartialEq, Eq)]
pub struct HashMismatch {
    pub requirement: String,
    pub expected: String,
    pub actual: String,
}

/// pip's block after `THESE PACKAGES DO NOT MATCH THE HASHES`: a `name==version from URL:` line,
/// then `Expected sha256 X` (one per pinned hash) and `Got Y`.
pub fn hash_mismatches(output: &str) -> Vec<HashMismatch> {
    let mut mismatches = Vec::new();
    let mut requirement = None;
    let mut expected = Vec::new();
    for line in output.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Expected ") {
            expected.push(rest.split_whitespace().last().unwrap_or_default().to_owned());
        } else if let Some(rest) = line.strip_prefix("Got ") {
            if let Some(requirement) = requirement.take() {
                mismatches.push(HashMismatch {
                    requirement,
                    expected: expected.join(" or "),
                    actual: rest.trim().to_owned(),
                });
            }
            expected.clear();
        } else if line.ends_with(':') && !line.starts_with("ERROR") {
            requirement = line.split_whitespace().next().map(str::to_owned);
            expected.clear();
        }
    }
    mismatches
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

fn check_pip_version(version: &str) -> Result<()> {
    let mut parts = version.split('.').map(|part| part.parse::<u64>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let (min_major, min_minor) = MIN_PIP;
    if (major, minor) < MIN_PIP || major >= MAX_PIP_MAJOR {
        bail!("pip {version} is not supported: xtask needs pip >= {min_major}.{min_minor} and < {MAX_PIP_MAJOR}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_versions_outside_the_tested_range_are_named() {
        assert!(check_pip_version("23.2.1").is_ok());
        assert!(check_pip_version("25.3").is_ok());
        let error = check_pip_version("22.3.1").unwrap_err().to_string();
        assert!(error.starts_with("pip 22.3.1 is not supported: xtask needs pip >= 23.0 and < 27"), "{error}");
        assert!(check_pip_version("27.0").is_err());
    }

    #[test]
    fn requirement_names_stop_at_the_first_operator() {
        assert_eq!(requirement_name("sdistonly==1.0"), "sdistonly");
        assert_eq!(requirement_name("zope.interface[test]>=6; python_version > '3'"), "zope.interface");
    }

    #[test]
    fn reads_pip_hash_mismatch_blocks() {
        let output = "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have...\n    purelib==1.0 from file:///i/purelib-1.0-py3-none-any.whl#sha256=7b (from -r r.txt (line 1)):\n        Expected sha256 0000\n             Got        7bc5\n\n";
        assert_eq!(
            hash_mismatches(output),
            [HashMismatch {
                requirement: "purelib==1.0".to_owned(),
                expected: "0000".to_owned(),
                actual: "7bc5".to_owned()
            }]
        );
    }

    #[test]
    fn a_dead_index_is_told_apart_from_a_missing_package() {
        let output = "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError(\"Failed to establish a new connection: [Errno 111] Connection refused\")': /simple/purelib/\nERROR: Could not find a version that satisfies the requirement purelib (from versions: none)\n";
        assert!(connection_error(output).unwrap().contains("Connection refused"));
        assert_eq!(connection_error("ERROR: No matching distribution found for x\n"), None);
    }

    #[test]
    fn requirements_pip_prints_come_back_plain() {
        assert_eq!(
            plain_requirement("psycopg-c==3.3.4; implementation_name != \"pypy\" and extra == \"c\""),
            "psycopg-c==3.3.4"
        );
        assert_eq!(plain_requirement("psycopg-c==3.3.4 (from psycopg[c])"), "psycopg-c==3.3.4");
        let output = "ERROR: No matching distribution found for psycopg-c==3.3.4 (from psycopg[c])\n";
        assert_eq!(no_matching_distribution(output).as_deref(), Some("psycopg-c==3.3.4"));
    }

    #[test]
    fn reads_the_causes_of_a_conflict_and_the_versions_skipped_for_requires_python() {
        let output = "ERROR: Cannot install viaconflict==1.0 and viaconflict==1.1 because these package versions have conflicting dependencies.\n\nThe conflict is caused by:\n    viaconflict 1.1 depends on sdistdep>=1.0\n    viaconflict 1.0 depends on sdistdep>=1.0; python_version >= \"3\"\n    The user requested six\n\nTo fix this you could try to:\nERROR: ResolutionImpossible: for help visit the docs\n";
        assert_eq!(conflict_causes(output), ["sdistdep>=1.0"]);
        let skipped = "INFO: pip is looking...\nERROR: Ignored the following versions that require a different python version: 2.0 Requires-Python >=3.12; 2.1 Requires-Python >=3.12\nERROR: Could not find\n";
        assert_eq!(requires_python_skipped(skipped), ["2.0 Requires-Python >=3.12", "2.1 Requires-Python >=3.12"]);
        assert!(requires_python_skipped("nothing").is_empty());
    }

    #[test]
    fn finds_the_requirement_pip_could_not_satisfy() {
        let output = "ERROR: Could not find a version that satisfies the requirement x86only (from versions: none)\nERROR: No matching distribution found for x86only==1.0\n";
        assert_eq!(no_matching_distribution(output).as_deref(), Some("x86only==1.0"));
        assert_eq!(no_matching_distribution("ERROR: something else"), None);
    }
}
