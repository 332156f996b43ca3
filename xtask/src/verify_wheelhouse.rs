//! `verify-wheelhouse`: every byte against the manifest (a directory, or an archive in one pass),
//! then every requirements file proven installable offline for every target.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xshell::Shell;

use crate::{
    archive,
    create_wheelhouse::human_bytes,
    flags::VerifyWheelhouse,
    integrity::{self, Problem},
    manifest::{Manifest, BUILD_TOOLS_GROUP},
    metrics,
    pack_wheelhouse::read_manifest,
    parallel,
    pip::{IndexOptions, Inputs, PipFailure, Python},
    requirements::display_path,
    resolution::parse_report,
    settings::{self, Settings},
    sign,
    target::Target,
    ui,
};

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    /// `wheelhouse` or `archive`.
    source: &'static str,
    path: String,
    n_files: usize,
    n_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    archive: Option<ArchiveReport>,
    problems: Vec<Problem>,
    install_checks: Vec<InstallCheck>,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct ArchiveReport {
    #[serde(flatten)]
    digests: archive::Digests,
    /// `ok`, `missing` or `mismatch`.
    sidecar: &'static str,
}

#[derive(Debug, Serialize)]
struct InstallCheck {
    requirements: String,
    target: String,
    ok: bool,
    n_packages: usize,
}

pub fn run(sh: &Shell, root: &Path, args: &VerifyWheelhouse) -> Result<()> {
    let started = Instant::now();
    let settings = Settings::load(root)?;
    let jobs = args.jobs.or(settings.jobs).unwrap_or_else(parallel::default_jobs).max(1);
    let verifier = sign::Verifier::from_flags(&args.signature)?;
    // An archive's install check runs on a temporary extraction, made in the same pass.
    let extraction = tempfile::Builder::new().prefix("xtask-verify-").tempdir()?;
    let (mut report, manifest, wheelhouse_for_status) = match &args.archive {
        Some(archive_path) => {
            let archive_path = std::env::current_dir()?.join(archive_path);
            let extract_to = (!args.no_install_check).then(|| extraction.path());
            let mut check_signature = |manifest: &[u8], reserved: &integrity::ReservedFiles| match &verifier {
                Some(verifier) => sign::verify(sh, verifier, manifest, reserved),
                None => Ok(()),
            };
            let checked = integrity::check_archive(&archive_path, extract_to, &mut check_signature)
                .with_context(|| format!("cannot verify {}", archive_path.display()))?;
            let mut problems = checked.checked.problems;
            let (sidecar, problem) = integrity::check_sidecar(&archive_path, &checked.digests.archive_sha256);
            problems.extend(problem);
            let mut report = Report {
                ok: false,
                source: "archive",
                path: archive_path.display().to_string(),
                n_files: checked.checked.n_files,
                n_bytes: checked.checked.n_bytes,
                archive: Some(ArchiveReport { digests: checked.digests, sidecar }),
                problems,
                install_checks: Vec::new(),
                seconds: 0.0,
            };
            if !args.no_install_check {
                install_checks(sh, root, &settings, args, extraction.path(), &checked.manifest, jobs, &mut report)?;
            }
            (report, checked.manifest, settings::wheelhouse_dir(root, &settings, None)?)
        }
        None => {
            let wheelhouse = settings::wheelhouse_dir(root, &settings, args.wheelhouse.as_deref())?;
            let manifest = read_manifest(&wheelhouse)?;
            if let Some(verifier) = &verifier {
                let manifest_bytes = fs_err::read(wheelhouse.join(crate::manifest::MANIFEST_NAME))?;
                sign::verify(sh, verifier, &manifest_bytes, &sign::signatures_in(&wheelhouse)?)?;
            }
            let checked = integrity::check_directory(&wheelhouse, &manifest, jobs)?;
            let mut report = Report {
                ok: false,
                source: "wheelhouse",
                path: wheelhouse.display().to_string(),
                n_files: checked.n_files,
                n_bytes: checked.n_bytes,
                archive: None,
                problems: checked.problems,
                install_checks: Vec::new(),
                seconds: 0.0,
            };
            if !args.no_install_check {
                install_checks(sh, root, &settings, args, &wheelhouse, &manifest, jobs, &mut report)?;
            }
            (report, manifest, wheelhouse)
        }
    };
    report.ok = report.problems.is_empty();
    report.seconds = started.elapsed().as_secs_f64();
    for problem in &report.problems {
        ui::say(&format!("problem: {}", problem.message));
    }
    let installable = report.install_checks.iter().filter(|check| check.ok).count();
    let summary = format!(
        "checked {} files ({}) of {} in {}; {installable} of {} requirements x targets installable offline",
        report.n_files,
        human_bytes(report.n_bytes),
        report.path,
        ui::seconds(started.elapsed()),
        report.install_checks.len(),
    );
    ui::say(&summary);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    let failures =
        |kinds: &[&str]| report.problems.iter().filter(|problem| kinds.contains(&problem.kind)).count() as f64;
    let mut samples = metrics::wheelhouse_samples(root, &wheelhouse_for_status, &manifest);
    samples.extend([
        metrics::Sample::new("xtask_run_duration_seconds", "Seconds the command took.", report.seconds),
        metrics::Sample::new(
            "xtask_verify_ok",
            "1 when the verification found no problem.",
            f64::from(u8::from(report.ok)),
        ),
        metrics::Sample::new(
            "xtask_hash_verification_failures",
            "Files missing, of another size or sha256, or checksum files that do not match.",
            failures(&["missing", "size", "sha256", "sha256sums", "sidecar"]),
        ),
        metrics::Sample::new(
            "xtask_install_check_failures",
            "Requirements x targets not installable offline.",
            failures(&["install"]),
        ),
    ]);
    metrics::write(args.metrics_file.as_deref(), "verify-wheelhouse", &samples)?;
    record_last_verify(&wheelhouse_for_status, &report)?;
    if !report.ok {
        bail!("verification failed: {} problems (listed above)", report.problems.len());
    }
    Ok(())
}

/// The outcome of the last verify, beside the wheelhouse (not in it: the archive of a wheelhouse
/// must not change because it was verified), for `status`.
pub fn last_verify_path(wheelhouse: &Path) -> PathBuf {
    let name = wheelhouse.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    wheelhouse.parent().unwrap_or(Path::new(".")).join(format!(".{name}.last-verify.json"))
}

fn record_last_verify(wheelhouse: &Path, report: &Report) -> Result<()> {
    let path = last_verify_path(wheelhouse);
    let Some(directory) = path.parent().filter(|directory| directory.is_dir()) else { return Ok(()) };
    let seconds =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let record = serde_json::json!({
        "ok": report.ok,
        "source": report.source,
        "path": report.path,
        "n_problems": report.problems.len(),
        "unix_time": seconds,
    });
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    crate::partial::write_atomically(directory, &name, format!("{record:#}\n").as_bytes())
}

/// One offline resolve to prove.
struct Check {
    group: String,
    source: CheckSource,
    target: Target,
    target_id: String,
}

enum CheckSource {
    File(PathBuf),
    BuildTools,
    /// The requirements file is not here (an air-gapped host with only the archive): its direct
    /// requirements, pinned as the manifest recorded them.
    Pins(String),
}

/// pip with `--isolated --no-index --find-links <wheelhouse>`, the target's tags and markers,
/// `--dry-run --ignore-installed`: the network is never touched, and nothing is installed.
#[allow(clippy::too_many_arguments)]
fn install_checks(
    sh: &Shell,
    root: &Path,
    settings: &Settings,
    args: &VerifyWheelhouse,
    wheelhouse: &Path,
    manifest: &Manifest,
    jobs: usize,
    report: &mut Report,
) -> Result<()> {
    let interpreter =
        args.python.clone().or(settings.python_interpreter.clone()).unwrap_or_else(|| "python3".to_owned());
    let python = Python::find(sh, &interpreter)?;
    let index = IndexOptions {
        isolated: true,
        no_index: true,
        find_links: vec![wheelhouse.display().to_string()],
        ..IndexOptions::default()
    };
    let checks = plan_checks(root, args, manifest)?;
    let results = parallel::map(&checks, jobs, |sh, check| {
        let scratch = tempfile::Builder::new().prefix("xtask-install-check-").tempdir()?;
        let pins_path = scratch.path().join("pins.txt");
        let inputs = match &check.source {
            CheckSource::File(path) => Inputs::RequirementsFile(path),
            CheckSource::BuildTools => Inputs::Packages(&crate::create_wheelhouse::BUILD_TOOLS),
            CheckSource::Pins(text) => {
                fs_err::write(&pins_path, text)?;
                Inputs::RequirementsFile(&pins_path)
            }
        };
        match python.resolve(sh, &check.target, &inputs, &index, scratch.path()) {
            Ok(report) => Ok(Ok(parse_report(&report, &check.target.marker_environment())?)),
            Err(error) => Ok(Err(error)),
        }
    });
    for (check, result) in checks.iter().zip(results) {
        let outcome = result?;
        let problem = |package: Option<String>, message: String| Problem {
            kind: "install",
            file: None,
            expected: None,
            actual: None,
            requirements: Some(check.group.clone()),
            target: Some(check.target_id.clone()),
            package,
            message,
        };
        let n_packages = match outcome {
            Ok(pins) => {
                if let Some(difference) = differs_from_manifest(manifest, check, &pins) {
                    report.problems.push(problem(None, difference));
                }
                report.install_checks.push(InstallCheck {
                    requirements: check.group.clone(),
                    target: check.target_id.clone(),
                    ok: true,
                    n_packages: pins.len(),
                });
                continue;
            }
            Err(error) => match error.downcast_ref::<PipFailure>() {
                Some(PipFailure::NoMatchingDistribution { requirement, .. }) => {
                    report.problems.push(problem(
                        Some(requirement.clone()),
                        format!(
                            "{} for {}: `{requirement}` cannot be installed offline: the wheelhouse has no file of it for this target",
                            check.group, check.target
                        ),
                    ));
                    0
                }
                _ => {
                    report.problems.push(problem(None, format!("{} for {}: {error:#}", check.group, check.target)));
                    0
                }
            },
        };
        report.install_checks.push(InstallCheck {
            requirements: check.group.clone(),
            target: check.target_id.clone(),
            ok: false,
            n_packages,
        });
    }
    Ok(())
}

fn plan_checks(root: &Path, args: &VerifyWheelhouse, manifest: &Manifest) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    for record in &manifest.targets {
        let target = record.target().with_context(|| format!("the manifest's target {} is not valid", record.id))?;
        let mut add = |group: String, source: CheckSource| {
            checks.push(Check { group, source, target: target.clone(), target_id: record.id.clone() })
        };
        if !args.requirements.is_empty() {
            let current = std::env::current_dir()?;
            for path in &args.requirements {
                let path = current.join(path);
                add(display_path(root, &path), CheckSource::File(path));
            }
            continue;
        }
        for resolution in manifest.resolutions.iter().filter(|resolution| resolution.target == record.id) {
            let group = resolution.requirements.clone();
            let source = if group == BUILD_TOOLS_GROUP {
                CheckSource::BuildTools
            } else if root.join(&group).is_file() {
                CheckSource::File(root.join(&group))
            } else {
                let pins: String = resolution
                    .packages
                    .iter()
                    .filter(|package| package.direct)
                    .map(|package| match package.extras.as_slice() {
                        [] => format!("{}=={}\n", package.name, package.version),
                        extras => format!("{}[{}]=={}\n", package.name, extras.join(","), package.version),
                    })
                    .collect();
                CheckSource::Pins(pins)
            };
            add(group, source);
        }
    }
    Ok(checks)
}

/// An offline resolve that picks other packages than the manifest recorded means the wheelhouse
/// and the requirements file have drifted apart.
fn differs_from_manifest(manifest: &Manifest, check: &Check, pins: &[crate::resolution::Pin]) -> Option<String> {
    let recorded = manifest.resolution(&check.group, &check.target_id)?;
    let mut expected: Vec<String> =
        recorded.packages.iter().map(|package| format!("{}=={}", package.name, package.version)).collect();
    let mut actual: Vec<String> =
        pins.iter().map(|pin| format!("{}=={}", pin.package.name, pin.package.version)).collect();
    expected.sort();
    actual.sort();
    (expected != actual).then(|| {
        format!(
            "{} for {}: offline, pip resolves [{}], the manifest recorded [{}]\nhint: the requirements changed since create-wheelhouse; run it again",
            check.group,
            check.target,
            actual.join(", "),
            expected.join(", ")
        )
    })
}
