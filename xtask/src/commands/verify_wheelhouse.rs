//! `verify-wheelhouse`: every byte against the manifest (a directory, or an archive in one pass),
//! then every requirements file proven installable offline for every target.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xshell::Shell;
use xtask::{
    model::{
        digest::sha256_hex,
        manifest::{Manifest, BUILD_TOOLS, BUILD_TOOLS_GROUP},
        metrics::Sample,
        paths::display_path,
        paths::human_bytes,
        resolution::{parse_report, Pin},
        target::Target,
    },
    parallel,
    tools::{
        pip::{IndexOptions, Inputs, PipFailure},
        signing,
    },
    ui,
    wheelhouse::{
        archive,
        delta::{check_base, fill_from_base},
        integrity::{self, Depth, Problem},
        layout::{self, read_manifest_with_bytes},
        partial,
        simple_index::stale_index,
    },
};

use crate::{
    commands::{foreign_differences, wheelhouse_samples, write_metrics},
    flags::VerifyWheelhouse,
    settings::Project,
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

pub fn run(sh: &Shell, project: &Project, args: &VerifyWheelhouse) -> Result<()> {
    let started = Instant::now();
    let jobs = project.jobs(args.jobs);
    let verifier = project.verifier(&args.signature)?;
    // An archive's install check runs on a temporary extraction, made in the same pass.
    let extraction = tempfile::Builder::new().prefix("xtask-verify-").tempdir()?;
    let (mut report, manifest, wheelhouse_for_status) = match &args.archive {
        Some(archive_path) => {
            let archive_path = project.flag_path(archive_path);
            // Extracted even without the install check: an index the archive carries is checked
            // against the wheels' own METADATA, which takes the wheels on disk.
            let extract_to = Some(extraction.path());
            let mut check_signature = |manifest: &[u8], reserved: &integrity::ReservedFiles| {
                signing::verify_if_asked(sh, verifier.as_ref(), manifest, reserved)
            };
            let checked = integrity::check_archive(&archive_path, extract_to, &mut check_signature)
                .with_context(|| format!("cannot verify {}", archive_path.display()))?;
            let mut problems = checked.checked.problems;
            let (mut n_files, mut n_bytes) = (checked.checked.n_files, checked.checked.n_bytes);
            if let Some(delta) = &checked.delta {
                let Some(base) = &args.base else {
                    bail!(
                        "{} is a delta: it holds only what its base (manifest sha256 {}) lacks\nhint: give the wheelhouse it applies to with --base DIR",
                        archive_path.display(),
                        delta.base_manifest_sha256
                    );
                };
                // The delta is checked as it would be applied: the files it leaves out taken from
                // the base, then every byte of the whole against the new manifest.
                let base = project.flag_path(base);
                let (base_manifest, base_bytes) = read_manifest_with_bytes(&base)?;
                check_base(&base, &sha256_hex(&base_bytes), delta)?;
                if problems.is_empty() {
                    fill_from_base(extraction.path(), &base, &base_manifest, &checked.manifest, delta)?;
                    let whole =
                        integrity::check_directory(extraction.path(), &checked.manifest, Depth::Contents, jobs)?;
                    (n_files, n_bytes) = (whole.n_files, whole.n_bytes);
                    problems.extend(whole.problems);
                }
            } else if args.base.is_some() {
                bail!("{} is a full archive, not a delta: --base does not apply to it", archive_path.display());
            }
            if problems.is_empty() && checked.delta.is_none() {
                for path in stale_index(extraction.path(), &checked.manifest)? {
                    problems.push(Problem::file(
                        "index",
                        &path,
                        None,
                        None,
                        format!("{path} is not the index these files give"),
                    ));
                }
            }
            let (sidecar, problem) = integrity::check_sidecar(&archive_path, &checked.digests.archive_sha256);
            problems.extend(problem);
            let mut report = Report {
                ok: false,
                source: "archive",
                path: archive_path.display().to_string(),
                n_files,
                n_bytes,
                archive: Some(ArchiveReport { digests: checked.digests, sidecar }),
                problems,
                install_checks: Vec::new(),
                seconds: 0.0,
            };
            if !args.no_install_check {
                install_checks(sh, project, args, extraction.path(), &checked.manifest, jobs, &mut report)?;
            }
            (report, checked.manifest, project.wheelhouse(None))
        }
        None => {
            let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
            let (manifest, manifest_bytes) = read_manifest_with_bytes(&wheelhouse)?;
            signing::verify_if_asked(sh, verifier.as_ref(), &manifest_bytes, &layout::read_signatures(&wheelhouse)?)?;
            let checked = integrity::check_directory(&wheelhouse, &manifest, Depth::Contents, jobs)?;
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
                install_checks(sh, project, args, &wheelhouse, &manifest, jobs, &mut report)?;
            }
            (report, manifest, wheelhouse)
        }
    };
    if !args.accept_foreign {
        for difference in foreign_differences(project, &manifest)? {
            report.problems.push(Problem {
                kind: "foreign",
                file: None,
                expected: None,
                actual: None,
                requirements: difference.path().map(str::to_owned),
                target: None,
                package: None,
                message: format!("{difference} (pass --accept-foreign to accept a wheelhouse made for other inputs)"),
            });
        }
    }
    report.ok = report.problems.is_empty();
    report.seconds = started.elapsed().as_secs_f64();
    for problem in &report.problems {
        ui::say(&format!("problem: {}", problem.message));
    }
    let installable = report.install_checks.iter().filter(|check| check.ok).count();
    let installability = if args.no_install_check {
        "install check skipped (--no-install-check)".to_owned()
    } else {
        format!(
            "{installable} of {} installable offline",
            ui::count(report.install_checks.len(), "requirements x target")
        )
    };
    let summary = format!(
        "checked {} files ({}) of {} in {}; {installability}",
        report.n_files,
        human_bytes(report.n_bytes),
        report.path,
        ui::seconds(started.elapsed()),
    );
    ui::say(&summary);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    let failures =
        |kinds: &[&str]| report.problems.iter().filter(|problem| kinds.contains(&problem.kind)).count() as f64;
    let mut samples = wheelhouse_samples(&project.root, &wheelhouse_for_status, &manifest);
    samples.extend([
        Sample::new("xtask_run_duration_seconds", "Seconds the command took.", report.seconds),
        Sample::new("xtask_verify_ok", "1 when the verification found no problem.", f64::from(u8::from(report.ok))),
        Sample::new(
            "xtask_hash_verification_failures",
            "Files missing, of another size or sha256, or checksum files that do not match.",
            failures(&["missing", "size", "sha256", "sha256sums", "sidecar"]),
        ),
        Sample::new(
            "xtask_install_check_failures",
            "Requirements x targets not installable offline.",
            failures(&["install"]),
        ),
    ]);
    write_metrics(project, args.metrics_file.as_deref(), "verify-wheelhouse", &samples)?;
    if let Err(error) = record_last_verify(&wheelhouse_for_status, &report) {
        // The verdict stands whether or not `status` can see it later (a read-only medium).
        ui::say(&format!("warning: cannot record this verify for `status`: {error:#}"));
    }
    if !report.ok {
        bail!("verification failed: {} problems (listed above)", report.problems.len());
    }
    Ok(())
}

fn record_last_verify(wheelhouse: &Path, report: &Report) -> Result<()> {
    if !wheelhouse.parent().is_some_and(Path::is_dir) {
        return Ok(());
    }
    layout::create_state_dir(wheelhouse)?;
    let path = layout::last_verify_path(wheelhouse);
    let seconds =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let record = serde_json::json!({
        "ok": report.ok,
        "source": report.source,
        "path": report.path,
        "n_problems": report.problems.len(),
        "unix_time": seconds,
    });
    partial::write_file(&path, format!("{record:#}\n").as_bytes())
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
fn install_checks(
    sh: &Shell,
    project: &Project,
    args: &VerifyWheelhouse,
    wheelhouse: &Path,
    manifest: &Manifest,
    jobs: usize,
    report: &mut Report,
) -> Result<()> {
    let python = project.find_python(sh, args.python.as_deref())?;
    let index = IndexOptions {
        isolated: true,
        no_index: true,
        find_links: vec![wheelhouse.display().to_string()],
        ..IndexOptions::default()
    };
    let checks = plan_checks(project, args, manifest)?;
    let results = parallel::map(&checks, jobs, |sh, check| {
        let scratch = tempfile::Builder::new().prefix("xtask-install-check-").tempdir()?;
        let pins_path = scratch.path().join("pins.txt");
        let inputs = match &check.source {
            CheckSource::File(path) => Inputs::RequirementsFile(path),
            CheckSource::BuildTools => Inputs::Packages(&BUILD_TOOLS),
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

fn plan_checks(project: &Project, args: &VerifyWheelhouse, manifest: &Manifest) -> Result<Vec<Check>> {
    let root = project.root.as_path();
    let mut checks = Vec::new();
    for record in &manifest.targets {
        let target = record.target().with_context(|| format!("the manifest's target {} is not valid", record.id))?;
        let mut add = |group: String, source: CheckSource| {
            checks.push(Check { group, source, target: target.clone(), target_id: record.id.clone() })
        };
        if !args.requirements.is_empty() {
            for path in &args.requirements {
                let path = project.flag_path(path);
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
fn differs_from_manifest(manifest: &Manifest, check: &Check, pins: &[Pin]) -> Option<String> {
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
