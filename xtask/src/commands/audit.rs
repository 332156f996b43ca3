//! `audit`: the wheelhouse's packages matched against an OSV advisory database carried across
//! the air gap (a directory of records or the ecosystem's `.zip`), read with every size bounded;
//! the report printed or written, and the exit status: 0 clean, 1 findings, 2 trouble.

use std::{
    collections::BTreeSet,
    io::Read,
    path::Path,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};
use xtask::{
    model::{
        audit::{findings, packages_by_target, unused_ignores, DatabaseSummary, Report},
        audit_render::Format,
        manifest::MANIFEST_NAME,
        metrics::Sample,
        osv::{self, Advisory, Outcome},
        paths::display_path,
        untrusted::shown,
        wheel_name::normalize,
    },
    ui,
    wheelhouse::layout::{is_inside, read_manifest},
};

use crate::{
    commands::{wheelhouse_samples, write_metrics, write_or_check, Finished, Mode},
    flags::audit::Audit,
    settings::Project,
};

/// One record file or zip entry: the largest in the PyPI export is well under 1 MiB, so a
/// bigger one is a mistake or an attack, and reading it whole would let it pick our memory.
const MAX_RECORD_BYTES: u64 = 4 * 1024 * 1024;
/// All records together, as read (decompressed): the PyPI export is a few hundred MiB.
const MAX_TOTAL_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Files or zip entries looked at: the PyPI export has tens of thousands.
const MAX_ENTRIES: usize = 200_000;
/// Versions and range events kept of the advisories that name a package of the wheelhouse, all
/// together: some hundred bytes each, held until the report.
const MAX_KEPT_ITEMS: usize = 1_000_000;
/// A record modified more than this after now comes from a wrong clock, or wants to pass for new.
const MAX_FUTURE_SECONDS: i64 = 86_400;
/// Warnings printed one by one; the rest are counted, so that a broken export cannot flood.
const MAX_WARNINGS_SHOWN: usize = 20;

pub fn run(project: &Project, args: &Audit) -> Result<()> {
    let started = Instant::now();
    let options = project.audit(args)?;
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    // A report or metrics file never lands on the wheelhouse or the database it reads.
    for (flag, path) in [("--output", &args.output), ("--metrics-file", &args.metrics_file)] {
        let Some(path) = path.as_deref().map(|path| project.flag_path(path)) else { continue };
        if is_inside(&path, &wheelhouse) || is_inside(&path, &options.database) {
            bail!(
                "{flag} {} is in the wheelhouse or the advisory database the audit reads: refused; nothing was written\nhint: write it beside them",
                path.display()
            );
        }
    }
    let manifest = read_manifest(&wheelhouse)?;
    let wanted: BTreeSet<String> = manifest.files.iter().map(|entry| normalize(&entry.name)).collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).context("the clock is before 1970")?.as_secs() as i64;
    let mut database = Database {
        wanted: &wanted,
        now,
        summary: DatabaseSummary::default(),
        advisories: Vec::new(),
        warnings: Vec::new(),
        entries: 0,
        bytes: 0,
        kept_items: 0,
    };
    database.read(&options.database)?;

    for warning in &database.warnings {
        ui::say(&format!("warning: {warning}"));
    }
    if database.summary.warnings > database.warnings.len() {
        ui::say(&format!("warning: {} more warnings", database.summary.warnings - database.warnings.len()));
    }
    let max_age_seconds = i64::try_from(options.max_age_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
    if database.summary.newest_modified.is_none() {
        ui::say("warning: no record of the advisory database has a `modified` time now or earlier: its age is unknown");
    }
    if let Some(age) = database.summary.age_seconds(now).filter(|age| *age > max_age_seconds) {
        ui::say(&format!(
            "warning: the advisory database is {} days old, over the {} days allowed (--max-age-days)\nhint: bring a newer export of the OSV PyPI database across",
            age / 86_400,
            options.max_age_days
        ));
    }

    let found = findings(&manifest, &database.advisories, &options.ignores);
    for ignore in unused_ignores(&found, &options.ignores) {
        ui::say(&format!("warning: the ignore of {} matched no finding", shown(&ignore.id)));
    }
    let targets = packages_by_target(&manifest);
    let packages: BTreeSet<(&String, &String)> = targets
        .values()
        .flat_map(|packages| packages.iter().flat_map(|(name, versions)| versions.iter().map(move |v| (name, v))))
        .collect();
    let manifest_shown = display_path(&project.root, &wheelhouse.join(MANIFEST_NAME));
    let report = Report {
        findings: &found,
        database: &database.summary,
        now,
        packages: packages.len(),
        targets: targets.len(),
        manifest: &manifest_shown,
    };
    let format = if args.json { Format::Json } else { args.format };
    let text = report.render(format);
    match &args.output {
        Some(path) => {
            let path = project.flag_path(path);
            write_or_check(&path, &path.display().to_string(), &text, Mode::Write)?;
            ui::say(&format!("wrote {}", path.display()));
        }
        None => print!("{text}"),
    }
    if format != Format::Text || args.output.is_some() {
        // The text report carries this line itself; elsewhere stdout is data, so it goes here.
        ui::say(&database.summary.line(now));
    }

    let (counted, ignored) = report.counts();
    let mut samples = wheelhouse_samples(&project.root, &wheelhouse, &manifest);
    samples.extend([
        Sample::new("xtask_run_duration_seconds", "Seconds the command took.", started.elapsed().as_secs_f64()),
        Sample::new("xtask_audit_packages", "Distinct package versions audited.", packages.len() as f64),
        Sample::new(
            "xtask_audit_advisories_read",
            "OSV records read from the database.",
            database.summary.records as f64,
        ),
        Sample::new("xtask_audit_findings", "Findings not ignored.", counted as f64),
        Sample::new("xtask_audit_ignored", "Findings ignored by --ignore or [audit] ignore.", ignored as f64),
        Sample::new(
            "xtask_audit_database_age_seconds",
            "Seconds since the newest record of the advisory database was modified.",
            database.summary.age_seconds(now).unwrap_or(-1) as f64,
        ),
    ]);
    write_metrics(project, args.metrics_file.as_deref(), "audit", &samples)?;
    if counted > 0 {
        return Err(Finished(1).into());
    }
    Ok(())
}

/// The database as it is read: the advisories that name a package of the wheelhouse, and counts.
struct Database<'a> {
    wanted: &'a BTreeSet<String>,
    now: i64,
    summary: DatabaseSummary,
    advisories: Vec<Advisory>,
    /// The first [`MAX_WARNINGS_SHOWN`]; `summary.warnings` counts them all.
    warnings: Vec<String>,
    entries: usize,
    bytes: u64,
    kept_items: usize,
}

impl Database<'_> {
    fn read(&mut self, path: &Path) -> Result<()> {
        let shown_path = shown(&path.display().to_string());
        let metadata = fs_err::metadata(path).context(
            "cannot read the advisory database\nhint: pass --database PATH, a directory of OSV records or the PyPI .zip",
        )?;
        if metadata.is_dir() {
            self.read_directory(path)?;
        } else {
            self.read_zip(path)?;
        }
        if self.summary.records == 0 {
            bail!(
                "no OSV record in the advisory database {shown_path}\nhint: it should hold `*.json` records (the PyPI export of the OSV project)"
            );
        }
        Ok(())
    }

    /// Every `*.json` file under `directory`, in name order; links are not followed.
    fn read_directory(&mut self, directory: &Path) -> Result<()> {
        for entry in walkdir::WalkDir::new(directory).follow_links(false).sort_by_file_name() {
            let entry = entry.with_context(|| format!("cannot read the advisory database {}", directory.display()))?;
            let name = shown(&entry.path().display().to_string());
            if !entry.file_name().to_string_lossy().ends_with(".json") {
                continue;
            }
            if entry.path_is_symlink() {
                self.warn(format!("skipped {name}: a symbolic link, not followed"));
                continue;
            }
            if !entry.file_type().is_file() {
                continue;
            }
            self.count_entry(directory)?;
            let file = fs_err::File::open(entry.path())?;
            let mut bytes = Vec::new();
            file.take(MAX_RECORD_BYTES + 1)
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read {}", entry.path().display()))?;
            self.record(&name, &bytes)?;
        }
        Ok(())
    }

    /// Every `*.json` entry of the zip, each read through a bound whatever size it claims.
    fn read_zip(&mut self, path: &Path) -> Result<()> {
        let file = fs_err::File::open(path)?;
        let mut archive = zip::ZipArchive::new(file).with_context(|| {
            format!(
                "the advisory database {} is neither a directory nor a zip archive",
                shown(&path.display().to_string())
            )
        })?;
        for index in 0..archive.len() {
            self.count_entry(path)?;
            let mut entry = archive
                .by_index(index)
                .with_context(|| format!("cannot read entry {index} of {}", shown(&path.display().to_string())))?;
            let name = format!("{}:{}", shown(&path.display().to_string()), shown(entry.name()));
            if entry.is_dir() || !entry.name().ends_with(".json") {
                continue;
            }
            if entry.size() > MAX_RECORD_BYTES {
                self.warn(format!(
                    "skipped {name}: it holds {} bytes, over the {} a record may have",
                    entry.size(),
                    limit()
                ));
                continue;
            }
            let mut bytes = Vec::new();
            if let Err(error) = (&mut entry).take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes) {
                self.warn(format!("skipped {name}: cannot read it: {error}"));
                continue;
            }
            self.record(&name, &bytes)?;
        }
        Ok(())
    }

    fn count_entry(&mut self, database: &Path) -> Result<()> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            bail!(
                "the advisory database {} holds more than {MAX_ENTRIES} entries\nhint: it should be the PyPI export alone",
                shown(&database.display().to_string())
            );
        }
        Ok(())
    }

    /// One record's bytes, read as far as the bound let them come: past it, skipped.
    fn record(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        // Every byte inflated counts, an oversized record's too: the bound is on the work done.
        self.bytes += bytes.len() as u64;
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            self.warn(format!("skipped {name}: over the {} a record may have", limit()));
        }
        if self.bytes > MAX_TOTAL_BYTES {
            bail!(
                "the advisory database holds more than {} GiB of records (at {name})\nhint: it should be the PyPI export alone",
                MAX_TOTAL_BYTES >> 30
            );
        }
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            return Ok(());
        }
        let wanted = self.wanted;
        let record = match osv::read_record(bytes, &|package| wanted.contains(package)) {
            Ok(record) => record,
            Err(error) => {
                self.warn(format!("skipped {name}: {error}"));
                return Ok(());
            }
        };
        self.summary.records += 1;
        self.summary.git_ranges += record.git_ranges;
        for warning in record.warnings {
            self.warn(format!("{name}: {warning}"));
        }
        match record.modified {
            Some(modified) if modified > self.now + MAX_FUTURE_SECONDS => self.warn(format!(
                "{name}: modified {} is in the future: left out of the database's age",
                osv::date(modified)
            )),
            Some(modified) => {
                self.summary.newest_modified =
                    Some(self.summary.newest_modified.map_or(modified, |newest| newest.max(modified)))
            }
            None => {}
        }
        match record.outcome {
            Outcome::Relevant(advisory) => {
                self.kept_items += advisory.kept_items();
                if self.kept_items > MAX_KEPT_ITEMS {
                    bail!(
                        "the advisories for this wheelhouse's packages list more than {MAX_KEPT_ITEMS} versions and range events (at {name}): refused\nhint: it should be the PyPI export of the OSV project"
                    );
                }
                self.summary.relevant += 1;
                self.advisories.push(advisory);
            }
            Outcome::Withdrawn => self.summary.withdrawn += 1,
            Outcome::Irrelevant => {}
        }
        Ok(())
    }
}

impl Database<'_> {
    fn warn(&mut self, warning: String) {
        self.summary.warnings += 1;
        if self.warnings.len() < MAX_WARNINGS_SHOWN {
            self.warnings.push(warning);
        }
    }
}

fn limit() -> String {
    format!("{} MiB", MAX_RECORD_BYTES >> 20)
}
