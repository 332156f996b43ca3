//! `create-wheelhouse`: every requirements file resolved by pip for every target, what is missing
//! downloaded, and a new wheelhouse with its manifest swapped in at once.

mod download;
mod fetch;
mod plan;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::Mutex,
    time::Instant,
};

use anyhow::{bail, Result};
use serde::Serialize;
use xshell::Shell;
use xtask::{
    model::{
        digest::sha256_hex,
        manifest::{
            FileEntry, Manifest, Resolution, ToolInfo, FORMAT_VERSION, GPG_SIGNATURE_NAME, MANIFEST_NAME,
            RESERVED_NAMES, SBOM_NAME, SHA256SUMS_NAME, SSH_SIGNATURE_NAME,
        },
        metrics::Sample,
        paths::display_path,
        paths::human_bytes,
        resolution::Pin,
        staleness::{self, Current},
        target::Target,
    },
    parallel::{self, CloseOnDrop, Queue},
    tools::{http::Fetched, pip::HttpOptions},
    ui,
    wheelhouse::{
        files::sha256_file,
        integrity::{self, Depth},
        swap::{self, Staging},
    },
};

use self::plan::{Job, Plan};
use crate::{
    commands::{python_mismatches, wheelhouse_samples, write_metrics},
    flags::CreateWheelhouse,
    settings::Project,
};

/// What a run did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub status: &'static str,
    pub wheelhouse: String,
    pub targets: Vec<String>,
    pub requirements: Vec<String>,
    pub n_files: usize,
    pub n_bytes: u64,
    pub resolved: usize,
    pub resolutions_reused: usize,
    pub downloaded: Vec<String>,
    /// Wheels built here from sdists (`--build-sdists`), not downloaded.
    pub built_from_sdists: Vec<String>,
    pub reused: usize,
    pub removed: Vec<String>,
    pub seconds: f64,
}

pub fn run(sh: &Shell, project: &Project, args: &CreateWheelhouse) -> Result<()> {
    let started = Instant::now();
    let plan = plan::plan(sh, project, args)?;
    let target_pythons = plan.targets.iter().map(|target| target.python.short()).collect();
    for warning in python_mismatches(project, &target_pythons) {
        ui::say(&warning);
    }
    swap::check_replaceable(&plan.wheelhouse, &project.root)?;
    let _lock = swap::lock(&plan.wheelhouse)?;
    for leftover in swap::recover(&plan.wheelhouse)? {
        ui::say(&format!("removed {} left by an interrupted run", leftover.display()));
    }
    let previous = read_previous_manifest(&plan.wheelhouse);
    let mut outcome = match &previous {
        Some(previous) if !args.refresh && previous.inputs_digest == plan.inputs_digest => {
            // The cheap check covers the listing, every size and SHA256SUMS; --full-check adds
            // every byte. Anything wrong is repaired rather than called up to date.
            let depth = if args.full_check { Depth::Contents } else { Depth::Sizes };
            let checked = integrity::check_directory(&plan.wheelhouse, previous, depth, parallel::default_jobs())?;
            if checked.problems.is_empty() {
                up_to_date(&plan, previous)
            } else {
                let problems: Vec<&str> = checked.problems.iter().map(|problem| problem.message.as_str()).collect();
                ui::say(&format!("{}: repairing", problems.join("; ")));
                update(&plan, Some(previous), false)?
            }
        }
        Some(previous) => {
            let current = Current {
                requirements: plan
                    .requirements
                    .iter()
                    .map(|record| (record.path.clone(), Some(record.clone())))
                    .collect(),
                targets: Some(plan.targets.iter().map(Target::id).collect()),
            };
            let reasons = staleness::stale(previous, &current);
            if !reasons.is_empty() && !args.refresh {
                let reasons: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                ui::say(&format!("resolving again: {}", reasons.join("; ")));
            }
            update(&plan, Some(previous), args.refresh)?
        }
        None => update(&plan, None, args.refresh)?,
    };
    outcome.seconds = started.elapsed().as_secs_f64();
    if args.metrics_file.is_some() {
        let manifest = xtask::wheelhouse::layout::read_manifest(&plan.wheelhouse)?;
        let mut samples = wheelhouse_samples(&project.root, &plan.wheelhouse, &manifest);
        samples.push(Sample::new("xtask_run_duration_seconds", "Seconds the command took.", outcome.seconds));
        samples.push(Sample::new(
            "xtask_downloaded_files",
            "Files this run downloaded.",
            outcome.downloaded.len() as f64,
        ));
        samples.push(Sample::new(
            "xtask_resolutions",
            "Resolutions this run made (not reused).",
            outcome.resolved as f64,
        ));
        write_metrics(project, args.metrics_file.as_deref(), "create-wheelhouse", &samples)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    Ok(())
}

fn read_previous_manifest(wheelhouse: &Path) -> Option<Manifest> {
    let path = wheelhouse.join(MANIFEST_NAME);
    let text = std::fs::read_to_string(&path).ok()?;
    match Manifest::from_json(&text) {
        Ok(manifest) => Some(manifest),
        Err(error) => {
            ui::say(&format!("warning: ignoring {}: {error}; everything is resolved anew", path.display()));
            None
        }
    }
}

/// Files of the manifest that are missing, of another size, or (with `full_check`) of other bytes.
fn damaged_files(wheelhouse: &Path, manifest: &Manifest, full_check: bool) -> Result<Vec<String>> {
    if !wheelhouse.join(MANIFEST_NAME).is_file() {
        return Ok(manifest.files.iter().map(|entry| entry.filename.clone()).collect());
    }
    let depth = if full_check { Depth::Contents } else { Depth::Sizes };
    Ok(integrity::check_directory(wheelhouse, manifest, depth, parallel::default_jobs())?.damaged_files())
}

fn up_to_date(plan: &Plan, manifest: &Manifest) -> Outcome {
    let outcome = Outcome {
        status: "up-to-date",
        wheelhouse: plan.wheelhouse.display().to_string(),
        targets: plan.targets.iter().map(Target::id).collect(),
        requirements: plan.requirements.iter().map(|record| record.path.clone()).collect(),
        n_files: manifest.files.len(),
        n_bytes: manifest.files.iter().map(|entry| entry.size).sum(),
        resolved: 0,
        resolutions_reused: manifest.resolutions.len(),
        downloaded: Vec::new(),
        built_from_sdists: Vec::new(),
        reused: manifest.files.len(),
        removed: Vec::new(),
        seconds: 0.0,
    };
    ui::say(&format!(
        "{} is up to date: {} files, {} for {}",
        display(plan, &plan.wheelhouse),
        outcome.n_files,
        human_bytes(outcome.n_bytes),
        ui::count(outcome.targets.len(), "target")
    ));
    outcome
}

/// Resolves what changed, downloads what is missing, and swaps in the new wheelhouse.
fn update(plan: &Plan, previous: Option<&Manifest>, refresh: bool) -> Result<Outcome> {
    // Every byte of a file kept from the previous wheelhouse is checked: a file changed in place
    // must not be carried into a new manifest under a new hash.
    let damaged: BTreeSet<String> = match previous {
        Some(previous) => damaged_files(&plan.wheelhouse, previous, true)?.into_iter().collect(),
        None => BTreeSet::new(),
    };
    // A previous resolution is reused when its inputs are the same and all its files are intact.
    let reusable = |job: &Job| -> Option<Vec<Pin>> {
        let previous = previous.filter(|_| !refresh)?;
        let resolution = previous.resolution(&job.group, &plan.targets[job.target].id())?;
        if resolution.key != job.key {
            return None;
        }
        resolution
            .packages
            .iter()
            .map(|package| {
                let entry = previous.file(&package.filename).filter(|_| !damaged.contains(&package.filename))?;
                Some(Pin {
                    package: package.clone(),
                    sha256: Some(entry.sha256.clone()),
                    source_url: package.url.clone(),
                    is_direct: false,
                })
            })
            .collect()
    };
    let mut resolutions: Vec<Option<Vec<Pin>>> = plan.jobs_to_run.iter().map(reusable).collect();
    let n_reused_resolutions = resolutions.iter().filter(|resolution| resolution.is_some()).count();

    // pip takes a second to say which network options it would use: asked now, the answer is
    // there when the downloads start.
    let http_options = {
        let (python, index) = (plan.python.clone(), plan.index.clone());
        parallel::Background::start(move || python.http_options(&Shell::new()?, &index))
    };
    let staging = Staging::create(&plan.wheelhouse)?;
    let builder = fetch::SdistBuilder::new(staging.dir.join(".sdist-builds"));
    if plan.build_sdists {
        fs_err::create_dir_all(&builder.dir)?;
    }
    let to_resolve: Vec<&Job> =
        plan.jobs_to_run.iter().zip(&resolutions).filter(|(_, reused)| reused.is_none()).map(|(job, _)| job).collect();
    let n_resolved = to_resolve.len();

    // A file of the previous wheelhouse serves again when every byte of it is intact and the
    // resolution announces the same hash.
    let keeps_old = |filename: &str, sha256: Option<&String>| {
        previous
            .and_then(|previous| previous.file(filename))
            .is_some_and(|entry| !damaged.contains(filename) && sha256.is_none_or(|sha256| *sha256 == entry.sha256))
            && plan.wheelhouse.join(filename).is_file()
    };
    // Each resolution's new files start downloading as soon as it ends, while the others run.
    let queue: Queue<download::Wanted> = Queue::default();
    let offered: Mutex<BTreeSet<String>> = Mutex::default();
    let offer = |target: usize, pins: &[Pin]| {
        for pin in pins {
            let filename = &pin.package.filename;
            if pin.package.url == fetch::BUILT_FROM_SDIST || keeps_old(filename, pin.sha256.as_ref()) {
                continue;
            }
            if offered.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(filename.clone()) {
                queue.push(download::Wanted { pin: pin.clone(), target });
            }
        }
    };
    for (job, pins) in plan.jobs_to_run.iter().zip(&resolutions) {
        if let Some(pins) = pins {
            offer(job.target, pins);
        }
    }
    let options: Mutex<Option<HttpOptions>> = Mutex::default();
    let options = || -> Result<HttpOptions> {
        let mut options = options.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if options.is_none() {
            *options = Some(http_options.take()?);
        }
        Ok(options.clone().unwrap_or_default())
    };
    let (fresh, downloaded, resolved_at) = std::thread::scope(|scope| {
        let downloads = scope.spawn(|| download::fetch_queued(plan, &queue, &staging.dir, &options));
        let fresh = {
            let _close = CloseOnDrop(&queue);
            if n_resolved > 0 {
                fetch::resolve_all(plan, &to_resolve, &builder, &offer)
            } else {
                ui::say(&format!("all {} resolutions reused", resolutions.len()));
                Ok(Vec::new())
            }
        };
        let resolved_at = Instant::now();
        if fresh.is_err() {
            queue.cancel();
        }
        let downloaded = downloads.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the download thread panicked")));
        (fresh, downloaded, resolved_at)
    });
    let mut fresh = fresh?.into_iter();
    let mut fetched = download::finish(plan, downloaded?, &staging.dir, resolved_at)?;
    for resolution in resolutions.iter_mut().filter(|resolution| resolution.is_none()) {
        *resolution = fresh.next();
    }
    let mut resolutions: Vec<Vec<Pin>> = resolutions.into_iter().map(Option::unwrap_or_default).collect();

    let needed = needed_files(plan, &resolutions)?;
    let offered = offered.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut wanted: Vec<download::Wanted> = Vec::new();
    let mut reused_files = 0;
    let mut downloaded = Vec::new();
    let mut built_from_sdists = Vec::new();
    for (filename, need) in &needed {
        let staged = staging.dir.join(filename);
        if offered.contains(filename) {
            downloaded.push(filename.clone());
        } else if keeps_old(filename, need.pin.sha256.as_ref()) {
            let old_path = plan.wheelhouse.join(filename);
            if fs_err::hard_link(&old_path, &staged).is_err() {
                fs_err::copy(&old_path, &staged)?;
            }
            reused_files += 1;
        } else if let Some(built) = Some(builder.dir.join(filename)).filter(|path| path.is_file()) {
            fs_err::rename(built, &staged)?;
            built_from_sdists.push(filename.clone());
        } else {
            wanted.push(download::Wanted { pin: need.pin.clone(), target: need.first_target });
            downloaded.push(filename.clone());
        }
    }
    if !wanted.is_empty() {
        fetched.extend(download::fetch_all(plan, wanted, &staging.dir, &options)?);
    }
    if builder.dir.exists() {
        fs_err::remove_dir_all(&builder.dir)?;
    }
    for (job, pins) in plan.jobs_to_run.iter().zip(&mut resolutions) {
        let fresh = to_resolve.iter().any(|resolved| std::ptr::eq(*resolved, job));
        if fresh && fetch::needs_metadata(plan, job) {
            fetch::complete_from_wheels(plan, job, pins, &staging.dir)?;
        }
    }

    let new_files: Vec<String> = downloaded.iter().chain(&built_from_sdists).cloned().collect();
    let files = file_entries(&staging.dir, &needed, &new_files, &fetched)?;
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        tool: ToolInfo {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pip_version: plan.python.pip_version.clone(),
            python_version: plan.python.version.clone(),
        },
        inputs_digest: plan.inputs_digest.clone(),
        index: plan.index_settings.clone(),
        targets: plan.target_records.clone(),
        requirements: plan.requirements.clone(),
        resolutions: plan
            .jobs_to_run
            .iter()
            .zip(&resolutions)
            .map(|(job, pins)| Resolution {
                requirements: job.group.clone(),
                target: plan.targets[job.target].id(),
                key: job.key.clone(),
                packages: pins.iter().map(|pin| pin.package.clone()).collect(),
            })
            .collect(),
        files,
    };
    let manifest_json = manifest.to_json();
    fs_err::write(staging.dir.join(MANIFEST_NAME), &manifest_json)?;
    let manifest_sha256 = sha256_hex(manifest_json.as_bytes());
    fs_err::write(staging.dir.join(SHA256SUMS_NAME), manifest.sha256sums(&manifest_sha256))?;
    // A signature or SBOM describes the manifest's bytes: when they come out the same (a
    // --refresh, a repair), they still hold, and are kept.
    let unchanged = std::fs::read(plan.wheelhouse.join(MANIFEST_NAME)).is_ok_and(|old| old == manifest_json.as_bytes());
    if unchanged {
        for name in [GPG_SIGNATURE_NAME, SSH_SIGNATURE_NAME, SBOM_NAME] {
            let old_path = plan.wheelhouse.join(name);
            if old_path.is_file() {
                fs_err::copy(&old_path, staging.dir.join(name))?;
            }
        }
    }
    let removed = removed_files(&plan.wheelhouse, previous, &needed, unchanged)?;
    staging.commit()?;
    // Made here now, not unpacked: `status` must not name the archive it last came from.
    let origin = xtask::wheelhouse::layout::origin_path(&plan.wheelhouse);
    match std::fs::remove_file(&origin) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            ui::say(&format!("warning: cannot remove {}: {error}", origin.display()))
        }
        _ => {}
    }

    for (filename, why) in &removed {
        ui::say(&format!("removed {filename} ({why})"));
    }
    let removed: Vec<String> = removed.into_iter().map(|(filename, _)| filename).collect();
    let outcome = Outcome {
        status: "updated",
        wheelhouse: plan.wheelhouse.display().to_string(),
        targets: plan.targets.iter().map(Target::id).collect(),
        requirements: plan.requirements.iter().map(|record| record.path.clone()).collect(),
        n_files: manifest.files.len(),
        n_bytes: manifest.files.iter().map(|entry| entry.size).sum(),
        resolved: n_resolved,
        resolutions_reused: n_reused_resolutions,
        downloaded,
        built_from_sdists,
        reused: reused_files,
        removed,
        seconds: 0.0,
    };
    ui::say(&format!(
        "wrote {}: {} files ({}), {} downloaded, {}{} reused, {} removed; {}",
        display(plan, &plan.wheelhouse),
        outcome.n_files,
        human_bytes(outcome.n_bytes),
        outcome.downloaded.len(),
        match outcome.built_from_sdists.len() {
            0 => String::new(),
            built => format!("{built} built from sdists, "),
        },
        outcome.reused,
        outcome.removed.len(),
        ui::count(outcome.targets.len(), "target")
    ));
    Ok(outcome)
}

/// A distribution the new wheelhouse needs, with who needs it.
struct Needed {
    pin: Pin,
    requirements: BTreeSet<String>,
    targets: BTreeSet<String>,
    first_target: usize,
}

fn needed_files(plan: &Plan, resolutions: &[Vec<Pin>]) -> Result<BTreeMap<String, Needed>> {
    let mut needed: BTreeMap<String, Needed> = BTreeMap::new();
    for (job, pins) in plan.jobs_to_run.iter().zip(resolutions) {
        for pin in pins {
            let need = needed.entry(pin.package.filename.clone()).or_insert_with(|| Needed {
                pin: pin.clone(),
                requirements: BTreeSet::new(),
                targets: BTreeSet::new(),
                first_target: job.target,
            });
            if let (Some(known), Some(other)) = (&need.pin.sha256, &pin.sha256) {
                if known != other {
                    bail!(
                        "two resolutions disagree on the sha256 of {}: {known} and {other} (index served different bytes under one name)",
                        pin.package.filename
                    );
                }
            }
            need.requirements.insert(job.group.clone());
            need.targets.insert(plan.targets[job.target].id());
        }
    }
    Ok(needed)
}

/// Hashes the staged files in parallel (but for those hashed as they were fetched) and checks
/// each against what pip announced.
fn file_entries(
    staging: &Path,
    needed: &BTreeMap<String, Needed>,
    downloaded: &[String],
    fetched: &BTreeMap<String, Fetched>,
) -> Result<Vec<FileEntry>> {
    let needs: Vec<(&String, &Needed)> = needed.iter().collect();
    let downloaded: BTreeSet<&String> = downloaded.iter().collect();
    let results = parallel::map(&needs, parallel::default_jobs(), |_, (filename, need)| {
        let path = staging.join(filename);
        let (actual, size) = match fetched.get(*filename) {
            Some(file) => (file.sha256.clone(), file.size),
            None => (sha256_file(&path)?, fs_err::metadata(&path)?.len()),
        };
        if let Some(expected) = &need.pin.sha256 {
            if *expected != actual && downloaded.contains(filename) {
                bail!(
                    "sha256 mismatch for {} {} ({filename}), needed by {} for {}: expected {expected}, got {actual}\nhint: the index served other bytes than it announced; run again with --refresh, and if it persists, ask the index's owners",
                    need.pin.package.name,
                    need.pin.package.version,
                    need.requirements.iter().cloned().collect::<Vec<_>>().join(", "),
                    need.targets.iter().cloned().collect::<Vec<_>>().join(", "),
                );
            }
        }
        let origin = if need.pin.package.url == fetch::BUILT_FROM_SDIST { "sdist-build" } else { "index" };
        Ok(FileEntry {
            filename: (*filename).clone(),
            name: need.pin.package.name.clone(),
            version: need.pin.package.version.clone(),
            sha256: actual,
            size,
            requirements: need.requirements.clone(),
            targets: need.targets.clone(),
            origin: origin.to_owned(),
        })
    });
    results.into_iter().collect()
}

/// What the previous wheelhouse held that the new one will not, and why: distributions no longer
/// needed, files nobody listed, and signatures or SBOMs, which describe the previous manifest.
fn removed_files(
    wheelhouse: &Path,
    previous: Option<&Manifest>,
    needed: &BTreeMap<String, Needed>,
    manifest_unchanged: bool,
) -> Result<Vec<(String, &'static str)>> {
    if !wheelhouse.is_dir() {
        return Ok(Vec::new());
    }
    let mut removed = Vec::new();
    for entry in fs_err::read_dir(wheelhouse)? {
        let filename = entry?.file_name().to_string_lossy().into_owned();
        let kept = needed.contains_key(&filename)
            || filename == MANIFEST_NAME
            || filename == SHA256SUMS_NAME
            || (manifest_unchanged && RESERVED_NAMES.contains(&filename.as_str()));
        if kept {
            continue;
        }
        let why = if RESERVED_NAMES.contains(&filename.as_str()) {
            "it describes the previous manifest"
        } else if previous.is_some_and(|previous| previous.file(&filename).is_some()) {
            "no longer needed"
        } else {
            "not in the manifest"
        };
        removed.push((filename, why));
    }
    removed.sort();
    Ok(removed)
}

fn display(plan: &Plan, path: &Path) -> String {
    display_path(&plan.root, path)
}
