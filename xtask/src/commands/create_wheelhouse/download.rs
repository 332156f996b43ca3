//! Fetching the files the resolutions name into the staging directory: by the native downloader,
//! many at a time, each checked against the hash pip announced as its bytes arrive; by `pip
//! download` for what only pip can fetch (keyring credentials, VCS URLs).

use std::{collections::BTreeMap, path::Path, time::Instant};

use anyhow::{anyhow, bail, Context, Result};
use xtask::{
    model::{redact::redact_url, resolution::Pin},
    parallel,
    tools::{
        http::{Downloader, FetchError, Fetched, Progress},
        pip::HttpOptions,
    },
    ui::{self, human_bytes, Step},
};

use super::{
    fetch::{combine, split_results},
    plan::Plan,
};

/// A file to fetch, and the target whose resolution named it first.
pub struct Wanted<'a> {
    pub pin: &'a Pin,
    pub target: usize,
}

struct Bar(ui::Bytes);

impl Progress for Bar {
    fn length(&self, bytes: u64) {
        self.0.add_to_total(bytes);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

/// Fetches every wanted file into `staging`. Returns the size and sha256 of each file the native
/// downloader fetched (measured as it arrived, so nobody reads it again).
pub fn fetch_all(
    plan: &Plan,
    wanted: &[Wanted<'_>],
    staging: &Path,
    options: HttpOptions,
) -> Result<BTreeMap<String, Fetched>> {
    let started = Instant::now();
    // A keyring named in pip's configuration is where the index's credentials live: only pip can
    // reach it.
    let keyring = matches!(options.keyring_provider.as_deref(), Some("import" | "subprocess"));
    let work_dir = staging.join(".download");
    fs_err::create_dir_all(&work_dir)?;
    let (native, mut for_pip): (Vec<&Wanted<'_>>, Vec<&Wanted<'_>>) =
        wanted.iter().partition(|item| !keyring && is_native(&item.pin.source_url));
    let mut fetched = BTreeMap::new();
    if !native.is_empty() {
        let downloader = Downloader::new(&options, plan.downloads)?;
        ui::say(&format!(
            "download: {}, {} at a time",
            ui::count(native.len(), "file"),
            plan.downloads.min(native.len())
        ));
        let bar = Bar(ui::Bytes::start("download", 0));
        let results = parallel::map(&native, plan.downloads, |_, item| {
            fetch_one(plan, &downloader, item, &work_dir, staging, &bar)
        });
        drop(bar);
        let mut errors = Vec::new();
        for (item, result) in native.iter().zip(results) {
            match result {
                Ok(Some(file)) => {
                    fetched.insert(item.pin.package.filename.clone(), file);
                }
                Ok(None) => for_pip.push(item),
                Err(error) => errors.push(error),
            }
        }
        if !errors.is_empty() {
            return Err(combine(errors));
        }
    }
    if !for_pip.is_empty() {
        ui::say(&format!(
            "{} for pip: the index wants credentials only pip has (keyring), or the URL is not http(s)",
            ui::count(for_pip.len(), "file")
        ));
        download_with_pip(plan, &for_pip, staging)?;
    }
    fs_err::remove_dir_all(&work_dir).ok();
    let n_bytes: u64 = fetched.values().map(|file| file.size).sum();
    ui::say(&format!(
        "downloaded {} ({}) in {}",
        ui::count(wanted.len(), "file"),
        human_bytes(n_bytes),
        ui::seconds(started.elapsed())
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
    item: &Wanted<'_>,
    work_dir: &Path,
    staging: &Path,
    bar: &Bar,
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
fn download_with_pip(plan: &Plan, wanted: &[&Wanted<'_>], staging: &Path) -> Result<()> {
    let mut by_target: BTreeMap<usize, Vec<&Pin>> = BTreeMap::new();
    for item in wanted {
        by_target.entry(item.target).or_default().push(item.pin);
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
