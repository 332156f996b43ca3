//! The parallel resolution work of `create-wheelhouse`: resolving each (requirements, target) job
//! with pip or uv, and building pure-Python wheels from sdists when asked.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::Instant,
};

use anyhow::{anyhow, bail, Context, Result};
use xshell::Shell;

use xtask::{
    model::redact::redact_url,
    model::target::Target,
    model::{
        manifest::BUILD_TOOLS,
        pylock::{mark_roots_direct, parse_pylock},
        pyproject::requirement_lines,
        requirements::requested_lines,
        resolution::{link_under_target, parse_report, requires_dist_of_metadata, Pin, Resolver},
        uvlock::parse_uv_lock,
        wheel_name::{normalize, DistributionName},
    },
    parallel,
    tools::{
        pip::{connection_error, hash_mismatches, requires_python_skipped, IndexOptions, Inputs, PipFailure},
        pip_workers::{PipWorkers, WorkerStopped},
        uv::{Uv, UvFailure},
    },
    ui::{self, Step},
    wheelhouse::files::wheel_metadata,
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

    /// Whether a build of `requirement` was made (or tried) in this run.
    fn has_built(&self, requirement: &str) -> bool {
        self.built.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains_key(requirement)
    }

    /// Builds `requirement` with `pip wheel` (on the host) and keeps the wheel only if it is pure
    /// Python, the one kind every target can install.
    fn build(&self, sh: &Shell, plan: &Plan, requirement: &str) -> Result<String> {
        let mut built = self.built.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(result) = built.get(requirement) {
            return result.clone().map_err(|message| anyhow!(message));
        }
        let result = self.build_uncached(sh, plan, requirement).map_err(|error| format!("{error:#}"));
        built.insert(requirement.to_owned(), result.clone());
        result.map_err(|message| anyhow!(message))
    }

    fn build_uncached(&self, sh: &Shell, plan: &Plan, requirement: &str) -> Result<String> {
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
                "`{requirement}` has no wheel for this target, and its sdist builds `{filename}`, which is not pure \
                 Python: it would run only on this host, not on every target\nhint: build that wheel on each \
                 target platform (for example in a container of it) and pass the directory with --find-links"
            );
        }
        fs_err::rename(wheel, self.dir.join(&filename))?;
        ui::say(&format!("built {filename} from the sdist of `{requirement}` (pure Python: serves every target)"));
        Ok(filename)
    }
}

/// Resolves every job, in parallel; all failures are reported together. `resolved` hears of each
/// job's pins (with the job's target) as soon as the job ends, so that its downloads can start.
pub fn resolve_all(
    plan: &Plan,
    jobs: &[&Job],
    builder: &SdistBuilder,
    resolved: &(dyn Fn(usize, &[Pin]) + Sync),
) -> Result<Vec<Vec<Pin>>> {
    let step = Step::start("resolve", jobs.len());
    let started = Instant::now();
    let by_uv = plan.resolver == Resolver::Uv && plan.uv.is_some();
    let by_pip = |job: &&Job| !(matches!(job.source, JobSource::Lock(_) | JobSource::UvLock(_)) || by_uv);
    let workers = if jobs.iter().any(by_pip) { PipWorkers::start(&plan.python)? } else { None };
    let results = parallel::map(jobs, plan.resolve_jobs, |sh, job| {
        let job_started = Instant::now();
        let result = match (&job.source, plan.resolver, &plan.uv) {
            (JobSource::Lock(path), _, _) => read_lock(sh, plan, job, path, builder),
            (JobSource::UvLock(path), _, _) => read_uv_lock(sh, plan, job, path, builder),
            (_, Resolver::Uv, Some(uv)) => resolve_with_uv(sh, plan, job, uv),
            _ => resolve_one(sh, plan, job, builder, workers.as_ref()),
        };
        if let Ok(pins) = &result {
            resolved(job.target, pins);
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

fn resolve_one(
    sh: &Shell,
    plan: &Plan,
    job: &Job,
    builder: &SdistBuilder,
    workers: Option<&PipWorkers>,
) -> Result<Vec<Pin>> {
    let target = &plan.targets[job.target];
    let context = || format!("{} for {target}", job.group);
    let declared = tempfile::Builder::new().prefix("declared-").tempdir().with_context(context)?;
    let declared_file = declared.path().join("requirements.txt");
    let inputs = match &job.source {
        // Locks are read, not resolved ([`resolve_all`]); were one here, pip would say what it is.
        JobSource::File(path) | JobSource::Lock(path) | JobSource::UvLock(path) => Inputs::RequirementsFile(path),
        JobSource::Pyproject(path) => match pyproject_requirements(plan, job, path, &declared_file)? {
            Some(_) => Inputs::RequirementsFile(&declared_file),
            None => return Ok(Vec::new()),
        },
        JobSource::BuildTools => Inputs::Packages(&BUILD_TOOLS),
    };
    let mut index = plan.index.clone();
    if plan.build_sdists {
        index.find_links.push(builder.dir.display().to_string());
    }
    let mut builds = 0;
    loop {
        let scratch = tempfile::Builder::new().prefix("resolve-").tempdir().with_context(context)?;
        let report = match workers.map(|workers| workers.resolve(target, &inputs, &index, scratch.path())) {
            Some(Err(error)) if error.is::<WorkerStopped>() => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| ui::say(&format!("warning: {error:#}\nresolving with a pip process each instead")));
                plan.python.resolve(sh, target, &inputs, &index, scratch.path())
            }
            Some(result) => result,
            None => plan.python.resolve(sh, target, &inputs, &index, scratch.path()),
        };
        let failure = match report {
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
                let unreachable = connection_error(output).is_some();
                if unreachable || !plan.build_sdists || builds >= MAX_SDIST_BUILDS_PER_JOB {
                    return Err(no_wheel_error(requirement, output, job, plan));
                }
                requirement.clone()
            }
            Some(PipFailure::ResolutionImpossible { dependencies, output }) => {
                // An sdist-only package inside a conflict: pip backtracked through every version
                // of its parent and reports the conflict, not the missing wheel. Find it.
                let without_wheel = if plan.build_sdists && builds < MAX_SDIST_BUILDS_PER_JOB {
                    first_without_wheel(sh, plan, target, dependencies, &index, builder)?
                } else {
                    None
                };
                match without_wheel {
                    Some(requirement) => requirement,
                    None => return Err(conflict_error(&context(), dependencies, output, plan, sh, target, &index)),
                }
            }
            Some(PipFailure::Other { output, .. }) if output.contains("DO NOT MATCH THE HASHES") => {
                return Err(hash_mismatch_error(&context(), &job.group, output));
            }
            _ => return Err(failure.context(context())),
        };
        builder.build(sh, plan, &requirement).with_context(context)?;
        builds += 1;
    }
}

/// `uv pip compile` of one job into pins. They lack `requires_dist` and the edges, which a lock
/// does not hold: [`complete_from_wheels`] adds both once the wheels are downloaded.
fn resolve_with_uv(sh: &Shell, plan: &Plan, job: &Job, uv: &Uv) -> Result<Vec<Pin>> {
    let target = &plan.targets[job.target];
    let context = || format!("{} for {target}", job.group);
    let declared = tempfile::Builder::new().prefix("declared-").tempdir().with_context(context)?;
    let declared_file = declared.path().join("requirements.txt");
    let (inputs, requested) = match &job.source {
        JobSource::File(path) | JobSource::Lock(path) | JobSource::UvLock(path) => (
            Inputs::RequirementsFile(path),
            requested_lines(path, &|path: &Path| fs_err::read(path)).with_context(context)?,
        ),
        JobSource::Pyproject(path) => match pyproject_requirements(plan, job, path, &declared_file)? {
            Some(lines) => (Inputs::RequirementsFile(&declared_file), lines),
            None => return Ok(Vec::new()),
        },
        JobSource::BuildTools => (Inputs::Packages(&BUILD_TOOLS), BUILD_TOOLS.map(str::to_owned).to_vec()),
    };
    let scratch = tempfile::Builder::new().prefix("resolve-").tempdir().with_context(context)?;
    let lock = match uv.compile(sh, &plan.python.path, target, &inputs, &plan.index, scratch.path()) {
        Ok(lock) => lock,
        Err(error) => {
            return Err(match error.downcast_ref::<UvFailure>() {
                Some(UvFailure::NoWheel { requirement, output }) => anyhow!(
                    "no wheel of `{requirement}` for {target} (needed by {})\n\nuv said:\n{}\nhint: check the name \
                     and the index; choose a version with wheels for this target, or drop the target",
                    job.group,
                    last_lines(output, 25)
                ),
                _ => error.context(context()),
            })
        }
    };
    let origin = format!("uv's lock of {} for {target}", job.group);
    Ok(parse_pylock(&lock, &origin, target, &requested, false)?)
}

/// The requirements a `pyproject.toml` declares (with the extras and groups asked for), written to
/// `file` as a requirements file for the resolver; `None` when it declares none.
fn pyproject_requirements(plan: &Plan, job: &Job, path: &Path, file: &Path) -> Result<Option<Vec<String>>> {
    let text = fs_err::read_to_string(path)?;
    let lines = requirement_lines(&text, &job.group, &plan.extras, &plan.groups)?;
    if lines.is_empty() {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            ui::say(&format!(
                "warning: {} declares no dependencies (with the extras and groups asked for): nothing to fetch for it",
                job.group
            ))
        });
        return Ok(None);
    }
    fs_err::write(file, lines.join("\n") + "\n")?;
    Ok(Some(lines))
}

/// A PEP 751 lock for the target: its packages whose markers hold, the wheel the target ranks
/// first of each, no resolution.
fn read_lock(sh: &Shell, plan: &Plan, job: &Job, path: &Path, builder: &SdistBuilder) -> Result<Vec<Pin>> {
    let target = &plan.targets[job.target];
    let text = fs_err::read_to_string(path)?;
    let pins = parse_pylock(&text, &job.group, target, &[], plan.build_sdists)?;
    build_locked_sdists(sh, plan, job, pins, builder)
}

/// A uv lock for the target: the packages the workspace root reaches by edges whose markers
/// hold, the wheel the target ranks first of each, no resolution.
fn read_uv_lock(sh: &Shell, plan: &Plan, job: &Job, path: &Path, builder: &SdistBuilder) -> Result<Vec<Pin>> {
    let target = &plan.targets[job.target];
    let text = fs_err::read_to_string(path)?;
    let pins = parse_uv_lock(&text, &job.group, target, &plan.extras, &plan.groups, plan.build_sdists)?;
    build_locked_sdists(sh, plan, job, pins, builder)
}

/// With `--build-sdists`, a lock's package that has no wheel for the target comes as its sdist:
/// pip builds it from the locked URL, checking the locked sha256 first (`#sha256=`), and the
/// wheel is kept if it is pure Python and is the locked name and version.
fn build_locked_sdists(
    sh: &Shell,
    plan: &Plan,
    job: &Job,
    mut pins: Vec<Pin>,
    builder: &SdistBuilder,
) -> Result<Vec<Pin>> {
    for pin in pins.iter_mut().filter(|pin| !pin.package.filename.ends_with(".whl")) {
        let target = &plan.targets[job.target];
        let context = || format!("{} for {target}: {} {}", job.group, pin.package.name, pin.package.version);
        let sha256 = pin.sha256.clone().with_context(|| format!("{}: the locked sdist has no sha256", context()))?;
        let url = pin.source_url.split('#').next().unwrap_or_default();
        let requirement = format!("{} @ {url}#sha256={sha256}", pin.package.name);
        let filename = builder.build(sh, plan, &requirement).with_context(context)?;
        let built = DistributionName::parse(&filename)?;
        if normalize(&built.name) != pin.package.name || built.version != pin.package.version {
            bail!("{}: the locked sdist built {filename}, another name or version", context());
        }
        pin.package.filename = filename;
        pin.package.url = BUILT_FROM_SDIST.to_owned();
        pin.sha256 = None;
        pin.source_url = String::new();
    }
    Ok(pins)
}

/// Whether the pins of `job` come without `Requires-Dist` (uv's lock, a lock given as input),
/// to be filled in by [`complete_from_wheels`] once the wheels are here.
pub fn needs_metadata(plan: &Plan, job: &Job) -> bool {
    matches!(job.source, JobSource::Lock(_) | JobSource::UvLock(_)) || plan.resolver == Resolver::Uv
}

/// Fills `requires_dist` of a uv resolution from the METADATA of each wheel, now in `staging`,
/// and adds the edges with the code the pip path uses: both resolvers give the same manifest.
/// The wheel is read rather than the index's PEP 658 `.metadata` file, because the tool has no
/// HTTP client, and a `--find-links` directory has no such files.
pub fn complete_from_wheels(plan: &Plan, job: &Job, pins: &mut [Pin], staging: &Path) -> Result<()> {
    let target = &plan.targets[job.target];
    for pin in pins.iter_mut() {
        let path = staging.join(&pin.package.filename);
        let metadata = wheel_metadata(&path)?.with_context(|| {
            format!("{} has no METADATA (needed by {} for {target})", pin.package.filename, job.group)
        })?;
        pin.package.requires_dist = requires_dist_of_metadata(&metadata);
    }
    link_under_target(pins, &target.marker_environment())
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{} for {target}", job.group))?;
    if matches!(job.source, JobSource::Lock(_)) {
        mark_roots_direct(pins);
    }
    Ok(())
}

/// The first of the conflict's requirements that the target has no wheel of (and that has not
/// been built already), probed one by one.
fn first_without_wheel(
    sh: &Shell,
    plan: &Plan,
    target: &Target,
    dependencies: &[String],
    index: &IndexOptions,
    builder: &SdistBuilder,
) -> Result<Option<String>> {
    for requirement in dependencies {
        if builder.has_built(requirement) {
            continue;
        }
        let scratch = tempfile::Builder::new().prefix("probe-").tempdir()?;
        if !plan.python.has_wheel(sh, target, requirement, index, scratch.path())? {
            return Ok(Some(requirement.clone()));
        }
    }
    Ok(None)
}

fn conflict_error(
    context: &str,
    dependencies: &[String],
    output: &str,
    plan: &Plan,
    sh: &Shell,
    target: &Target,
    index: &IndexOptions,
) -> anyhow::Error {
    let mut message = format!(
        "{context}: pip found no set of versions that satisfies every requirement (the conflict: {})\n\npip said:\n{}",
        if dependencies.is_empty() { "see below".to_owned() } else { dependencies.join(", ") },
        last_lines(output, 25)
    );
    if plan.build_sdists {
        message.push_str("\nhint: every package of the conflict has a wheel for this target, or was built from its sdist already: loosen or align the pins named above");
    } else {
        // Only worth saying when it is true: probe the causes for one without a wheel.
        let scratch = tempfile::Builder::new().prefix("probe-").tempdir().ok();
        let sdist_only = scratch.and_then(|scratch| {
            dependencies.iter().find(|requirement| {
                matches!(plan.python.has_wheel(sh, target, requirement, index, scratch.path()), Ok(false))
            })
        });
        match sdist_only {
            Some(requirement) => message.push_str(&format!(
                "\nhint: `{requirement}` has no wheel for {target}; if it is pure Python, --build-sdists builds one from its sdist"
            )),
            None => message.push_str("\nhint: loosen or align the pins named above"),
        }
    }
    anyhow!(message)
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
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
    if let Some(said) = connection_error(output) {
        let index = match &plan.index.index_url {
            Some(url) => redact_url(url),
            None if plan.index.no_index => "no index (--no-index)".to_owned(),
            None => "the index of pip's configuration".to_owned(),
        };
        return anyhow!(
            "pip could not reach the index for `{requirement}` ({target}, needed by {}): {said}\n  index: {index}\nhint: check the index URL, the network and any proxy; pip retried before giving up",
            job.group
        );
    }
    // pip's line before says which versions it could use: `(from versions: none)`.
    let versions: Vec<&str> = output
        .lines()
        .find_map(|line| line.split("(from versions: ").nth(1))
        .map(|list| list.trim_end().trim_end_matches(')').split(", ").filter(|version| *version != "none").collect())
        .unwrap_or_default();
    let skipped = requires_python_skipped(output);
    let mut message =
        format!("no wheel of `{requirement}` for {target} (needed by {}); {}", job.group, describe_versions(&versions));
    if !skipped.is_empty() {
        message.push_str(&format!(
            "\n  excluded by Requires-Python (the target has Python {}): {}",
            target.python.full(),
            relevant_skips(requirement, &skipped).join(", ")
        ));
    }
    if plan.build_sdists {
        message.push_str("\nhint: --build-sdists was given, but building did not help: see above");
    } else if !skipped.is_empty() {
        message.push_str(
            "\nhint: choose a version whose Requires-Python admits the target's Python, or target another Python \
             (--python X.Y)",
        );
    } else {
        message.push_str(
            "\nhint: check the name and the index; if the package is pure Python and published only as an sdist, \
             pass --build-sdists; otherwise choose a version with wheels for this target, or drop the target",
        );
    }
    anyhow!(message)
}

/// `versions pip could use for this target: none`, or the count and the newest few final releases
/// (pip lists every version, pre-releases included, oldest first: hundreds for a long-lived
/// project).
fn describe_versions(versions: &[&str]) -> String {
    if versions.is_empty() {
        return "versions pip could use for this target: none".to_owned();
    }
    let is_final = |version: &&str| !version.chars().any(|character| character.is_ascii_alphabetic());
    let finals: Vec<&str> = versions.iter().copied().filter(is_final).collect();
    let shown = if finals.is_empty() { nearest(versions, 5) } else { nearest(&finals, 5) };
    if shown.len() == versions.len() {
        format!("versions pip could use for this target: {}", shown.join(", "))
    } else {
        format!("pip could use {} versions for this target, the newest releases: {}", versions.len(), shown.join(", "))
    }
}

/// Of pip's `VERSION Requires-Python SPEC` entries (sorted as text), the one of the pinned version
/// when the requirement pins one, else the newest five by version.
fn relevant_skips(requirement: &str, skipped: &[String]) -> Vec<String> {
    let version_of = |entry: &String| entry.split_whitespace().next().unwrap_or_default().to_owned();
    if let Some((_, pinned)) = requirement.split_once("==") {
        let pinned = pinned.trim();
        if let Some(entry) = skipped.iter().find(|entry| version_of(entry) == pinned) {
            return vec![entry.clone()];
        }
    }
    let mut by_version: Vec<&String> = skipped.iter().collect();
    by_version.sort_by_key(|entry| version_key(&version_of(entry)));
    nearest(&by_version, 5)
}

/// A sort key that orders release numbers as numbers (`2.9` before `2.10`).
fn version_key(version: &str) -> Vec<(u64, String)> {
    version
        .split('.')
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            (digits.parse().unwrap_or(0), part[digits.len()..].to_owned())
        })
        .collect()
}

/// The last `count` of a list pip orders oldest first.
fn nearest<T: AsRef<str>>(items: &[T], count: usize) -> Vec<String> {
    items[items.len().saturating_sub(count)..].iter().map(|item| item.as_ref().to_owned()).collect()
}

pub fn split_results<R>(results: Vec<Result<R>>) -> (Vec<R>, Vec<anyhow::Error>) {
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

pub fn combine(mut errors: Vec<anyhow::Error>) -> anyhow::Error {
    if errors.len() == 1 {
        return errors.remove(0);
    }
    let count = errors.len();
    let text: Vec<String> = errors.iter().map(|error| format!("{error:#}")).collect();
    anyhow!("{count} failures:\n\n{}", text.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_version_lists_are_cut_to_the_newest_releases_and_counted() {
        assert_eq!(describe_versions(&[]), "versions pip could use for this target: none");
        assert_eq!(describe_versions(&["1.0", "1.1"]), "versions pip could use for this target: 1.0, 1.1");
        let many: Vec<String> = (0..300).map(|minor| format!("1.{minor}")).chain(["2.0rc1".to_owned()]).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            describe_versions(&many),
            "pip could use 301 versions for this target, the newest releases: 1.295, 1.296, 1.297, 1.298, 1.299"
        );
    }

    #[test]
    fn requires_python_skips_name_the_pinned_version_or_the_newest() {
        let skipped: Vec<String> =
            ["2.10 Requires-Python ==3.10.*", "2.12 Requires-Python ==3.12.*", "2.9 Requires-Python ==3.9.*"]
                .map(str::to_owned)
                .to_vec();
        assert_eq!(relevant_skips("pythonpinned==2.12", &skipped), ["2.12 Requires-Python ==3.12.*"]);
        assert_eq!(
            relevant_skips("pythonpinned>=2", &skipped),
            ["2.9 Requires-Python ==3.9.*", "2.10 Requires-Python ==3.10.*", "2.12 Requires-Python ==3.12.*"]
        );
    }
}
