//! Fetching the files the resolutions name into the staging directory.

use std::{path::Path, time::Instant};

use anyhow::{bail, Context, Result};
use xtask::{
    model::resolution::Pin,
    parallel,
    ui::{self, Step},
};

use super::{
    fetch::{combine, split_results},
    plan::Plan,
};

/// One `pip download` call: pins for one target, no two of one package.
pub struct DownloadBatch<'a> {
    pub target: usize,
    /// Which of the target's batches this is (0 unless two jobs pin one package differently).
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

/// Downloads each batch with `pip download --no-deps` of exact pins into `<staging>/.download/`
/// and moves the files into the staging directory.
pub fn download_all(plan: &Plan, batches: &[DownloadBatch<'_>], staging: &Path) -> Result<()> {
    let n_files: usize = batches.iter().map(|batch| batch.pins.len()).sum();
    let step = Step::start("download", batches.len());
    let started = Instant::now();
    let results = parallel::map(batches, plan.jobs, |sh, batch| {
        let target = &plan.targets[batch.target];
        let work_dir = staging.join(".download").join(format!("{}-{}", target.id(), batch.part));
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
