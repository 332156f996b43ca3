//! The parallel pip work of `create-wheelhouse`: resolving each (requirements, target) job,
//! building pure-Python wheels from sdists when asked, and downloading exact pins per target.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::Instant,
};

use anyhow::{anyhow, bail, Context, Result};
use xshell::Shell;

use xtask::{
    model::{
        manifest::BUILD_TOOLS,
        resolution::{parse_report, Pin},
        wheel_name::DistributionName,
    },
    parallel,
    tools::pip::{hash_mismatches, Inputs, PipFailure},
    ui::{self, Step},
};

use super::plan::{Job, JobSource, Plan};

/// The `url` the manifest records for a wheel built here: its build directory is gone after the
/// run, and its path would make the manifest depend on the process id.
pub const BUILT_FROM_SDIST: &str = "built-from-sdist";

/// How many sdists one resolution may build before giving up (each build is followed by a new
/// resolve, which may stop at the next sdist-only dependency).
const MAX_SDIST_BUILDS_PER_JOB: usize = 25;

/// Wheels built from sdists, shared by every job: each sdist is built once per run.
pub struct SdistBuilder {
    pub dir: PathBuf,
    built: Mutex<BTreeMap<String, Result<String, String>>>,
}

impl SdistBuilder {
    pub fn new(dir: PathBuf) -> SdistBuilder {
        SdistBuilder { dir, built: Mutex::new(BTreeMap::new()) }
    }

    /// Builds `requirement` with `pip wheel` (on the host) and keeps the wheel only if it is pure
    /// Python, the one kind every target can install.
    fn build(&self, sh: &Shell, plan: &Plan, requirement: &str, job: &Job) -> Result<String> {
        let mut built = self.built.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(result) = built.get(requirement) {
            return result.clone().map_err(|message| anyhow!(message));
        }
        let result = self.build_uncached(sh, plan, requirement, job).map_err(|error| format!("{error:#}"));
        built.insert(requirement.to_owned(), result.clone());
        result.map_err(|message| anyhow!(message))
    }

    fn build_uncached(&self, sh: &Shell, plan: &Plan, requirement: &str, job: &Job) -> Result<String> {
        let scratch = tempfile::Builder::new().prefix("sdist-build-").tempdir_in(&self.dir)?;
        plan.python
            .build_wheel(sh, requirement, &plan.index, scratch.path())
            .with_context(|| format!("cannot build a wheel of `{requirement}` from its sdist"))?;
        let mut wheels = Vec::new();
        for entry in fs_err::read_dir(scratch.path())? {
            let path = entry?.path();
            if path.extension().is_some_and(|extension| extension == "whl") {
                wheels.push(path);
            }
        }
        let [wheel] = wheels.as_slice() else {
            bail!("`pip wheel {requirement}` made {} wheels, expected one", wheels.len());
        };
        let filename = wheel.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let parsed = DistributionName::parse(&filename)?;
        if !parsed.tags.as_ref().is_some_and(|tags| tags.is_pure()) {
            bail!(
                "`{requirement}` has no wheel for {target}, and its sdist builds `{filename}`, which is not pure \
                 Python: it would run only on this host, not on every target\nhint: build that wheel on each \
                 target platform (for example in a container of it) and pass the directory with --find-links",
                target = plan.targets[job.target]
            );
        }
        fs_err::rename(wheel, self.dir.join(&filename))?;
        ui::say(&format!("built {filename} from the sdist of `{requirement}` (pure Python: serves every target)"));
        Ok(filename)
    }
}

/// Resolves every job, in parallel; all failures are reported together.
pub fn resolve_all(plan: &Plan, jobs: &[&Job], builder: &SdistBuilder) -> Result<Vec<Vec<Pin>>> {
    let step = Step::start("resolve", jobs.len());
    let started = Instant::now();
    let results = parallel::map(jobs, plan.jobs, |sh, job| {
        let job_started = Instant::now();
        let result = resolve_one(sh, plan, job, builder);
        if let Ok(pins) = &result {
            step.item_done(&format!(
                "{} for {}: {} packages ({})",
                job.group,
                plan.targets[job.target],
                pins.len(),
                ui::seconds(job_started.elapsed())
            ));
        }
        result
    });
    let (resolved, errors) = split_results(results);
    if !errors.is_empty() {
        step.finish(&format!("resolve: {} of {} failed", errors.len(), jobs.len()));
        return Err(combine(errors));
    }
    step.finish(&format!("resolved {} requirements x targets in {}", jobs.len(), ui::seconds(started.elapsed())));
    Ok(resolved)
}

fn resolve_one(sh: &Shell, plan: &Plan, job: &Job, builder: &SdistBuilder) -> Result<Vec<Pin>> {
    let target = &plan.targets[job.target];
    let context = || format!("{} for {target}", job.group);
    let inputs = match &job.source {
        JobSource::File(path) => Inputs::RequirementsFile(path),
        JobSource::BuildTools => Inputs::Packages(&BUILD_TOOLS),
    };
    let mut index = plan.index.clone();
    if plan.build_sdists {
        index.find_links.push(builder.dir.display().to_string());
    }
    let mut builds = 0;
    loop {
        let scratch = tempfile::Builder::new().prefix("resolve-").tempdir().with_context(context)?;
        let failure = match plan.python.resolve(sh, target, &inputs, &index, scratch.path()) {
            Ok(report) => {
                let markers = target.marker_environment();
                let mut pins = parse_report(&report, &markers).map_err(anyhow::Error::from).with_context(context)?;
                for pin in &mut pins {
                    if builder.dir.join(&pin.package.filename).is_file() && pin.source_url.starts_with("file:") {
                        pin.package.url = BUILT_FROM_SDIST.to_owned();
                    }
                }
                return Ok(pins);
            }
            Err(error) => error,
        };
        let requirement = match failure.downcast_ref::<PipFailure>() {
            Some(PipFailure::NoMatchingDistribution { requirement, output }) => {
                if !plan.build_sdists || builds >= MAX_SDIST_BUILDS_PER_JOB {
                    return Err(no_wheel_error(requirement, output, job, plan));
                }
                requirement.clone()
            }
            Some(PipFailure::Other { output, .. }) if output.contains("DO NOT MATCH THE HASHES") => {
                return Err(hash_mismatch_error(&context(), &job.group, output));
            }
            _ => return Err(failure.context(context())),
        };
        builder.build(sh, plan, &requirement, job).with_context(context)?;
        builds += 1;
    }
}

fn hash_mismatch_error(context: &str, group: &str, output: &str) -> anyhow::Error {
    let mut message = format!("{context}: a file does not match its --hash pin");
    for mismatch in hash_mismatches(output) {
        message.push_str(&format!(
            "\n  {}: expected sha256 {}, got {}",
            mismatch.requirement, mismatch.expected, mismatch.actual
        ));
    }
    message.push_str(&format!(
        "\n\npip said:\n{output}\nhint: if the new file is the one you trust, update the --hash pin in {group}; \
         otherwise the index serves other bytes than were pinned: find out why before going on"
    ));
    anyhow!(message)
}

fn no_wheel_error(requirement: &str, output: &str, job: &Job, plan: &Plan) -> anyhow::Error {
    let target = &plan.targets[job.target];
    // pip's line before says which versions it could use: `(from versions: none)`.
    let versions = output
        .lines()
        .find_map(|line| Some(line.split("(from versions: ").nth(1)?.trim_end_matches(')').to_owned()))
        .unwrap_or_else(|| "unknown".to_owned());
    let mut message = format!(
        "no wheel of `{requirement}` for {target} (needed by {}); versions pip could use for this target: {versions}",
        job.group
    );
    if plan.build_sdists {
        message.push_str("\nhint: --build-sdists was given, but building did not help: see above");
    } else {
        message.push_str(
            "\nhint: check the name and the index; if the package is pure Python and published only as an sdist, \
             pass --build-sdists; otherwise choose a version with wheels for this target, or drop the target",
        );
    }
    anyhow!(message)
}

/// One target's share of the downloads.
pub struct DownloadBatch<'a> {
    pub target: usize,
    pub pins: Vec<&'a Pin>,
}

/// Downloads each batch with `pip download --no-deps` of exact pins into `<staging>/.download/`
/// and moves the files into the staging directory.
pub fn download_all(plan: &Plan, batches: &[DownloadBatch<'_>], staging: &Path) -> Result<()> {
    let n_files: usize = batches.iter().map(|batch| batch.pins.len()).sum();
    let step = Step::start("download", batches.len());
    let started = Instant::now();
    let results = parallel::map(batches, plan.jobs, |sh, batch| {
        let target = &plan.targets[batch.target];
        let work_dir = staging.join(".download").join(target.id());
        fs_err::create_dir_all(&work_dir)?;
        let pins_file = work_dir.with_extension("pins.txt");
        fs_err::write(&pins_file, pins_text(&batch.pins))?;
        plan.python
            .download(sh, target, &pins_file, &plan.index, &work_dir)
            .with_context(|| format!("cannot download {} files for {target}", batch.pins.len()))?;
        for pin in &batch.pins {
            let downloaded = work_dir.join(&pin.package.filename);
            if !downloaded.is_file() {
                bail!(
                    "pip download for {target} did not produce {} (pinned {}=={})",
                    pin.package.filename,
                    pin.package.name,
                    pin.package.version
                );
            }
            fs_err::rename(&downloaded, staging.join(&pin.package.filename))?;
        }
        step.item_done(&format!("{target}: {} files", batch.pins.len()));
        Ok(())
    });
    let (_, errors) = split_results(results);
    if !errors.is_empty() {
        step.finish("download failed");
        return Err(combine(errors));
    }
    fs_err::remove_dir_all(staging.join(".download")).ok();
    step.finish(&format!("downloaded {n_files} files in {}", ui::seconds(started.elapsed())));
    Ok(())
}

/// `name==version` lines; with `--hash` on every line when every pin has a known hash (pip's
/// hash mode is all or nothing), so pip fetches exactly the file the resolve chose.
fn pins_text(pins: &[&Pin]) -> String {
    let all_hashed = pins.iter().all(|pin| pin.sha256.is_some());
    let mut text = String::new();
    for pin in pins {
        if pin.is_direct {
            text.push_str(&format!("{} @ {}", pin.package.name, pin.source_url));
        } else {
            text.push_str(&format!("{}=={}", pin.package.name, pin.package.version));
        }
        if let (true, Some(sha256)) = (all_hashed, &pin.sha256) {
            text.push_str(&format!(" --hash=sha256:{sha256}"));
        }
        text.push('\n');
    }
    text
}

fn split_results<R>(results: Vec<Result<R>>) -> (Vec<R>, Vec<anyhow::Error>) {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(value) => values.push(value),
            Err(error) => errors.push(error),
        }
    }
    (values, errors)
}

fn combine(mut errors: Vec<anyhow::Error>) -> anyhow::Error {
    if errors.len() == 1 {
        return errors.remove(0);
    }
    let count = errors.len();
    let text: Vec<String> = errors.iter().map(|error| format!("{error:#}")).collect();
    anyhow!("{count} failures:\n\n{}", text.join("\n\n"))
}
