//! Fetching the files the resolutions name into the staging directory: by the native downloader,
//! many at a time, each checked against the hash pip announced as its bytes arrive; by `pip
//! download` for what only pip can fetch (keyring credentials, VCS URLs).

use std::{
    collections::BTreeMap,
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use xtask::{
    model::paths::human_bytes,
    model::{redact::redact_url, resolution::Pin},
    parallel::{self, Queue},
    tools::{
        http::{Downloader, FetchError, Fetched, Progress},
        pip::HttpOptions,
    },
    ui::{self, Step},
};

use super::{
    fetch::{combine, split_results},
    plan::Plan,
};

/// A file to fetch, and the target whose resolution named it first.
pub struct Wanted {
    pub pin: Pin,
    pub target: usize,
}

struct Bar<'a> {
    bytes: ui::Bytes,
    queue: &'a Queue<Wanted>,
}

impl Progress for Bar<'_> {
    fn length(&self, bytes: u64) {
        self.bytes.add_to_total(bytes);
    }
    fn advance(&self, bytes: u64) {
        self.bytes.inc(bytes);
    }
    fn cancelled(&self) -> bool {
        self.queue.is_cancelled()
    }
}

/// What the native downloader did with the files of a queue.
#[derive(Default)]
pub struct Downloaded {
    /// The size and sha256 of each file fetched (measured as it arrived, so nobody reads it again).
    pub fetched: BTreeMap<String, Fetched>,
    /// The files only pip can fetch: the index wants credentials only pip has (keyring).
    for_pip: Vec<Wanted>,
    /// The time during which at least one transfer ran.
    busy: Duration,
}

/// Time during which at least one transfer ran: the download phase's own cost, without the waits
/// for resolutions that feed it.
#[derive(Default)]
struct Busy {
    active: usize,
    since: Option<Instant>,
    total: Duration,
}

impl Busy {
    fn begin(state: &Mutex<Busy>) {
        let mut busy = lock(state);
        if busy.active == 0 {
            busy.since = Some(Instant::now());
        }
        busy.active += 1;
    }
    fn end(state: &Mutex<Busy>) {
        let mut busy = lock(state);
        busy.active -= 1;
        if busy.active == 0 {
            if let Some(since) = busy.since.take() {
                busy.total += since.elapsed();
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Fetches each file of `queue` into `staging` as it is queued, `plan.downloads` at a time, until
/// the queue closes; the first error cancels the queue. `options` (pip's network options) is
/// asked for when the first file comes.
pub fn fetch_queued(
    plan: &Plan,
    queue: &Queue<Wanted>,
    staging: &Path,
    options: &(dyn Fn() -> Result<HttpOptions> + Sync),
) -> Result<Downloaded> {
    let Some(first) = queue.pop() else { return Ok(Downloaded::default()) };
    // Whatever stops the downloads before they start cancels the queue too: nothing more is
    // queued, and the error is reported when the resolutions end.
    let prepared = options().and_then(|options| {
        let work_dir = staging.join(".download");
        fs_err::create_dir_all(&work_dir)?;
        let downloader = Downloader::new(&options, plan.downloads)?;
        Ok((options, work_dir, downloader))
    });
    let (options, work_dir, downloader) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            queue.cancel();
            return Err(error);
        }
    };
    // A keyring named in pip's configuration is where the index's credentials live: only pip can
    // reach it.
    let keyring = matches!(options.keyring_provider.as_deref(), Some("import" | "subprocess"));
    ui::say(&format!("download: as each resolution ends, {} at a time", plan.downloads));
    let bar = Bar { bytes: ui::Bytes::start("download", 0), queue };
    let busy = Mutex::new(Busy::default());
    let first = Mutex::new(Some(first));
    let done: Mutex<Downloaded> = Mutex::default();
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::default();
    std::thread::scope(|scope| {
        for _ in 0..plan.downloads.max(1) {
            scope.spawn(|| {
                loop {
                    // Bound apart from the `match`: the lock of `first` must not live through a transfer.
                    let next = lock(&first).take();
                    let Some(item) = next.or_else(|| queue.pop()) else { break };
                    if keyring || !is_native(&item.pin.source_url) {
                        lock(&done).for_pip.push(item);
                        continue;
                    }
                    Busy::begin(&busy);
                    let result = fetch_one(plan, &downloader, &item, &work_dir, staging, &bar);
                    Busy::end(&busy);
                    match result {
                        Ok(Some(file)) => {
                            lock(&done).fetched.insert(item.pin.package.filename.clone(), file);
                        }
                        Ok(None) => lock(&done).for_pip.push(item),
                        Err(_) if queue.is_cancelled() => {}
                        Err(error) => {
                            queue.cancel();
                            lock(&errors).push(error);
                        }
                    }
                }
            });
        }
    });
    drop(bar);
    fs_err::remove_dir_all(&work_dir).ok();
    let errors = errors.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !errors.is_empty() {
        return Err(combine(errors));
    }
    let mut done = done.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    done.busy = busy.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()).total;
    Ok(done)
}

/// Fetches every wanted file into `staging`, natively, and what only pip can fetch with pip.
/// Returns the size and sha256 of each file the native downloader fetched.
pub fn fetch_all(
    plan: &Plan,
    wanted: Vec<Wanted>,
    staging: &Path,
    options: &(dyn Fn() -> Result<HttpOptions> + Sync),
) -> Result<BTreeMap<String, Fetched>> {
    let queue = Queue::default();
    for item in wanted {
        queue.push(item);
    }
    queue.close();
    let started = Instant::now();
    let downloaded = fetch_queued(plan, &queue, staging, options)?;
    finish(plan, downloaded, staging, started)
}

/// Hands what only pip can fetch to pip, and says what was downloaded: in how much time, and how
/// much of it after `resolved` (when the last resolution ended).
pub fn finish(
    plan: &Plan,
    downloaded: Downloaded,
    staging: &Path,
    resolved: Instant,
) -> Result<BTreeMap<String, Fetched>> {
    let Downloaded { fetched, for_pip, busy } = downloaded;
    if fetched.is_empty() && for_pip.is_empty() {
        return Ok(fetched);
    }
    if !for_pip.is_empty() {
        ui::say(&format!(
            "{} for pip: the index wants credentials only pip has (keyring), or the URL is not http(s)",
            ui::count(for_pip.len(), "file")
        ));
        download_with_pip(plan, &for_pip, staging)?;
    }
    let n_bytes: u64 = fetched.values().map(|file| file.size).sum();
    ui::say(&format!(
        "downloaded {} ({}) in {}, {} of it after the last resolution",
        ui::count(fetched.len() + for_pip.len(), "file"),
        human_bytes(n_bytes),
        ui::seconds(busy),
        ui::seconds(resolved.elapsed())
    ));
    Ok(fetched)
}

fn is_native(url: &str) -> bool {
    ["http://", "https://", "file://"]
        .iter()
        .any(|scheme| url.get(..scheme.len()).is_some_and(|start| start.eq_ignore_ascii_case(scheme)))
}

/// One file into `<work_dir>/<name>.part`, then into the staging directory; `None` when the index
/// wants credentials only pip has.
fn fetch_one(
    plan: &Plan,
    downloader: &Downloader,
    item: &Wanted,
    work_dir: &Path,
    staging: &Path,
    bar: &Bar<'_>,
) -> Result<Option<Fetched>> {
    let package = &item.pin.package;
    let filename = &package.filename;
    let partial = work_dir.join(format!("{filename}.part"));
    let target = &plan.targets[item.target];
    match downloader.fetch(&item.pin.source_url, &partial, item.pin.sha256.as_deref(), bar) {
        Ok(file) => {
            fs_err::rename(&partial, staging.join(filename))?;
            Ok(Some(file))
        }
        Err(FetchError::AuthRequired { .. }) => Ok(None),
        Err(FetchError::HashMismatch { expected, actual }) => bail!(
            "sha256 mismatch for {} {} ({filename}), needed for {target}, from {}: expected {expected}, got {actual}\nhint: the index served other bytes than it announced; run again with --refresh, and if it persists, ask the index's owners",
            package.name,
            package.version,
            redact_url(&item.pin.source_url),
        ),
        Err(error) => Err(anyhow!(
            "cannot download {filename} ({} {}) for {target} from {}: {error}",
            package.name,
            package.version,
            redact_url(&item.pin.source_url)
        )),
    }
}

/// The files only pip can fetch, in `pip download` batches spread over `jobs` processes.
fn download_with_pip(plan: &Plan, wanted: &[Wanted], staging: &Path) -> Result<()> {
    let mut by_target: BTreeMap<usize, Vec<&Pin>> = BTreeMap::new();
    for item in wanted {
        by_target.entry(item.target).or_default().push(&item.pin);
    }
    let per_batch = wanted.len().div_ceil(plan.jobs.max(1)).max(1);
    let batches: Vec<DownloadBatch<'_>> = by_target
        .into_iter()
        .flat_map(|(target, pins)| batches_for_target(target, pins))
        .flat_map(|batch| {
            let target = batch.target;
            batch
                .pins
                .chunks(per_batch)
                .map(|pins| pins.to_vec())
                .collect::<Vec<_>>()
                .into_iter()
                .map(move |pins| (target, pins))
        })
        .enumerate()
        .map(|(part, (target, pins))| DownloadBatch { target, part, pins })
        .collect();
    download_all(plan, &batches, staging)
}

/// One `pip download` call: pins for one target, no two of one package.
pub struct DownloadBatch<'a> {
    pub target: usize,
    /// Tells the batch's work directory from the others'.
    pub part: usize,
    pub pins: Vec<&'a Pin>,
}

/// A target's pins in as few batches as can be downloaded together. A wheelhouse holds files, not
/// an environment: two requirements files may pin `packaging==24.2` and `packaging==25.0`, and
/// both files belong in it. pip refuses two versions of one package in one call (even with
/// `--no-deps`), so each version after the first of a package goes to a later batch.
pub fn batches_for_target(target: usize, pins: Vec<&Pin>) -> Vec<DownloadBatch<'_>> {
    let mut batches: Vec<DownloadBatch<'_>> = Vec::new();
    for pin in pins {
        let name = &pin.package.name;
        let free = batches.iter().position(|batch| batch.pins.iter().all(|other| &other.package.name != name));
        match free {
            Some(index) => batches[index].pins.push(pin),
            None => batches.push(DownloadBatch { target, part: batches.len(), pins: vec![pin] }),
        }
    }
    batches
}

/// Downloads each batch with `pip download --no-deps` of exact pins into `<staging>/.pip-download/`
/// and moves the files into the staging directory.
pub fn download_all(plan: &Plan, batches: &[DownloadBatch<'_>], staging: &Path) -> Result<()> {
    let step = Step::start("pip download", batches.len());
    let results = parallel::map(batches, plan.jobs, |sh, batch| {
        let target = &plan.targets[batch.target];
        let work_dir = staging.join(".pip-download").join(format!("{}-{}", target.id(), batch.part));
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
        step.finish("pip download failed");
        return Err(combine(errors));
    }
    fs_err::remove_dir_all(staging.join(".pip-download")).ok();
    step.finish(&format!("pip downloaded {} batches", batches.len()));
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

#[cfg(test)]
mod tests {
    use xtask::model::manifest::ResolvedPackage;

    use super::*;

    fn pin(name: &str, version: &str) -> Pin {
        Pin {
            package: ResolvedPackage {
                name: name.to_owned(),
                version: version.to_owned(),
                filename: format!("{name}-{version}-py3-none-any.whl"),
                direct: true,
                extras: vec![],
                dependencies: vec![],
                requires_dist: vec![],
                url: String::new(),
            },
            sha256: None,
            source_url: String::new(),
            is_direct: false,
        }
    }
    #[test]
    fn two_versions_of_one_package_go_to_separate_batches() {
        let pins = [pin("packaging", "24.2"), pin("six", "1.16"), pin("packaging", "25.0"), pin("packaging", "26.0")];
        let batches = batches_for_target(3, pins.iter().collect());
        let listed: Vec<Vec<String>> = batches
            .iter()
            .map(|batch| {
                batch.pins.iter().map(|pin| format!("{}=={}", pin.package.name, pin.package.version)).collect()
            })
            .collect();
        assert_eq!(listed, [vec!["packaging==24.2", "six==1.16"], vec!["packaging==25.0"], vec!["packaging==26.0"]]);
        assert!(batches.iter().enumerate().all(|(index, batch)| batch.part == index && batch.target == 3));
    }
}
