//! `status`: what the wheelhouse holds, and whether it, its locks, archive, signature and SBOM are
//! current, with the outcome of the last verify. Reads only; runs nothing.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufReader, Read},
    path::Path,
};

use anyhow::{bail, Result};
use serde::Serialize;
use xtask::{
    model::{
        delta::{Origin, DELTA_NAME},
        digest::{sha256_hex, Algorithm},
        manifest::{Manifest, GPG_SIGNATURE_NAME, MANIFEST_NAME, RESERVED_NAMES, SBOM_NAME, SHA256SUMS_NAME},
        paths::display_path,
        paths::human_bytes,
        sbom,
        untrusted::shown,
    },
    wheelhouse::{
        archive::{self, source_date_epoch_option, Limits},
        files::wheel_metadata,
        layout::{last_verify_path, lock_path, origin_path, signature_path},
    },
};

use crate::{
    commands::{lock_text, stale_reasons, Inputs},
    flags::Status,
    settings::Project,
};

#[derive(Debug, Serialize)]
struct Report {
    wheelhouse: String,
    present: bool,
    n_files: usize,
    n_bytes: u64,
    n_packages: usize,
    targets: Vec<String>,
    requirements: Vec<String>,
    /// True when the requirements files or settings changed since the wheelhouse was made.
    stale: bool,
    stale_reasons: Vec<String>,
    locks: Vec<Item>,
    archive: Item,
    signature: Item,
    sbom: Item,
    last_verify: Option<serde_json::Value>,
    /// sha256 of manifest.json: what a delta names as its base.
    manifest_sha256: Option<String>,
    /// When manifest.json was written here (by create or unpack), in Unix seconds, and how long ago.
    written_at: Option<u64>,
    age_seconds: Option<u64>,
    /// The archive or delta it was unpacked from, when the last unpack made this manifest.
    origin: Option<Origin>,
}

#[derive(Debug, Serialize)]
struct Item {
    path: String,
    /// `current`, `stale`, `missing`, or `present` when it cannot be judged here.
    state: &'static str,
}

pub fn run(project: &Project, args: &Status) -> Result<()> {
    let root = project.root.as_path();
    let wheelhouse = project.wheelhouse(args.wheelhouse.as_deref());
    let shown = |path: &Path| display_path(root, path);
    let manifest_bytes = fs_err::read(wheelhouse.join(MANIFEST_NAME)).ok();
    let manifest = manifest_bytes.as_ref().and_then(|bytes| Manifest::from_json(&String::from_utf8_lossy(bytes)).ok());
    let archive_path = project.archive(None, &wheelhouse);
    let mut report = Report {
        wheelhouse: shown(&wheelhouse),
        present: manifest.is_some(),
        n_files: 0,
        n_bytes: 0,
        n_packages: 0,
        targets: Vec::new(),
        requirements: Vec::new(),
        stale: false,
        stale_reasons: Vec::new(),
        locks: Vec::new(),
        archive: Item { path: shown(&archive_path), state: "missing" },
        signature: Item { path: shown(&wheelhouse.join(GPG_SIGNATURE_NAME)), state: "missing" },
        sbom: Item { path: shown(&wheelhouse.join(SBOM_NAME)), state: "missing" },
        last_verify: fs_err::read_to_string(last_verify_path(&wheelhouse))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok()),
        manifest_sha256: None,
        written_at: None,
        age_seconds: None,
        origin: None,
    };
    if let (Some(manifest), Some(manifest_bytes)) = (&manifest, &manifest_bytes) {
        report.n_files = manifest.files.len();
        // Sizes come from a manifest that may have been carried in: they must not wrap.
        report.n_bytes = manifest.files.iter().fold(0u64, |total, entry| total.saturating_add(entry.size));
        report.n_packages = manifest.files.iter().map(|entry| &entry.name).collect::<BTreeSet<_>>().len();
        report.targets = manifest.targets.iter().map(|target| target.id.clone()).collect();
        report.requirements = manifest.requirements.iter().map(|record| record.path.clone()).collect();
        let sha256 = sha256_hex(manifest_bytes);
        report.origin = fs_err::read_to_string(origin_path(&wheelhouse))
            .ok()
            .and_then(|text| serde_json::from_str::<Origin>(&text).ok())
            .filter(|origin| origin.manifest_sha256 == sha256);
        report.manifest_sha256 = Some(sha256);
        let since_epoch =
            |time: std::time::SystemTime| time.duration_since(std::time::UNIX_EPOCH).ok().map(|since| since.as_secs());
        report.written_at = fs_err::metadata(wheelhouse.join(MANIFEST_NAME))
            .ok()
            .and_then(|metadata| since_epoch(metadata.modified().ok()?));
        report.age_seconds = report
            .written_at
            .and_then(|written| since_epoch(std::time::SystemTime::now()).map(|now| now.saturating_sub(written)));
        report.stale_reasons =
            stale_reasons(project, manifest, Inputs::Everything)?.iter().map(ToString::to_string).collect();
        report.stale = !report.stale_reasons.is_empty();
        for record in &manifest.requirements {
            let path = lock_path(&root.join(&record.path));
            report
                .locks
                .push(Item { path: shown(&path), state: lock_state(&path, manifest, &record.path, &wheelhouse) });
        }
        report.archive.state = archive_state(&archive_path, manifest_bytes, &wheelhouse);
        if let Some(path) = signature_path(&wheelhouse) {
            report.signature = Item { path: shown(&path), state: "present" };
        }
        let sbom_path = wheelhouse.join(SBOM_NAME);
        if let Ok(existing) = fs_err::read_to_string(&sbom_path) {
            let epoch = source_date_epoch_option().ok().flatten();
            let metadata = |filename: &str| wheel_metadata(&wheelhouse.join(filename));
            let expected = sbom::render(manifest, manifest_bytes, epoch, &metadata).ok();
            report.sbom.state = if expected.as_deref() == Some(existing.as_str()) { "current" } else { "stale" };
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report));
    }
    if args.check {
        let failures = check_failures(&report);
        if !failures.is_empty() {
            bail!(
                "{} stale or missing:\n  {}\nhint: cargo xtask create-wheelhouse, then lock, pack or sbom again as needed",
                failures.len(),
                failures.join("\n  ")
            );
        }
    }
    Ok(())
}

fn lock_state(path: &Path, manifest: &Manifest, group: &str, wheelhouse: &Path) -> &'static str {
    let Ok(existing) = fs_err::read_to_string(path) else { return "missing" };
    match lock_text(wheelhouse, manifest, group, Algorithm::of_lock_text(&existing)) {
        Ok(expected) if expected == existing => "current",
        _ => "stale",
    }
}

/// The most of a reserved file (signature, SBOM) or manifest read from an archive here.
const MAX_METADATA_BYTES: u64 = 8 << 20;

/// Current when the archive holds what the wheelhouse holds: its manifest is this manifest, and
/// its signatures and SBOM are exactly the wheelhouse's (a signature or SBOM made after packing
/// makes the archive stale). Reads up to the first distribution, not the archive.
fn archive_state(path: &Path, manifest_bytes: &[u8], wheelhouse: &Path) -> &'static str {
    #[derive(Debug, thiserror::Error)]
    #[error("read far enough")]
    struct Enough;
    let Ok(file) = fs_err::File::open(path) else { return "missing" };
    let mut position = 0;
    let mut manifest_matches = false;
    let mut in_archive: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut delta = false;
    let read = archive::read(BufReader::new(file), Limits::default(), |name, size, content| {
        position += 1;
        // A delta holds only part of the wheelhouse: it is not its archive.
        if name == DELTA_NAME {
            delta = true;
            return Err(Enough.into());
        }
        let wanted = (position == 1 && name == MANIFEST_NAME) || RESERVED_NAMES.contains(&name);
        if !wanted || size > MAX_METADATA_BYTES {
            return Err(Enough.into());
        }
        let mut bytes = Vec::new();
        content.take(MAX_METADATA_BYTES).read_to_end(&mut bytes)?;
        if position == 1 {
            manifest_matches = bytes == manifest_bytes;
            if !manifest_matches {
                return Err(Enough.into());
            }
        } else if name != SHA256SUMS_NAME {
            in_archive.insert(name.to_owned(), bytes);
        }
        Ok(())
    });
    if read.is_err_and(|error| error.downcast_ref::<Enough>().is_none()) || !manifest_matches || delta {
        return "stale";
    }
    let in_wheelhouse: BTreeMap<String, Vec<u8>> = RESERVED_NAMES
        .iter()
        .filter(|name| **name != MANIFEST_NAME && **name != SHA256SUMS_NAME)
        .filter_map(|name| Some(((*name).to_owned(), std::fs::read(wheelhouse.join(name)).ok()?)))
        .collect();
    if in_archive == in_wheelhouse {
        "current"
    } else {
        "stale"
    }
}

/// What `--check` fails on: no wheelhouse, stale inputs, a stale archive or SBOM, and a missing or
/// stale lock file when the project locks (any lock file of the wheelhouse's requirements exists,
/// so that `status --check` and `lock --check` agree). Archives, SBOMs and signatures that were
/// never made are not failures: not every project makes them.
fn check_failures(report: &Report) -> Vec<String> {
    if !report.present {
        return vec![format!("{}: no wheelhouse", report.wheelhouse)];
    }
    let mut failures: Vec<String> = report.stale_reasons.clone();
    let locks_used = report.locks.iter().any(|lock| lock.state != "missing");
    for lock in &report.locks {
        if locks_used && lock.state != "current" {
            failures.push(format!("{}: {}", lock.path, lock.state));
        }
    }
    for item in [&report.archive, &report.sbom] {
        if item.state == "stale" {
            failures.push(format!("{}: stale", item.path));
        }
    }
    failures
}

fn human(report: &Report) -> String {
    if !report.present {
        return format!("{}: no wheelhouse (run cargo xtask create-wheelhouse)\n", report.wheelhouse);
    }
    let mut text = format!(
        "wheelhouse  {}: {} files, {}, {} packages, targets {}\n",
        report.wheelhouse,
        report.n_files,
        human_bytes(report.n_bytes),
        report.n_packages,
        report.targets.join(", ")
    );
    if let (Some(sha256), Some(age), Some(written)) = (&report.manifest_sha256, report.age_seconds, report.written_at) {
        text.push_str(&format!(
            "            manifest sha256 {sha256}, written {} ago (unix time {written})\n",
            human_age(age)
        ));
    }
    if let Some(origin) = &report.origin {
        let base = match &origin.base_manifest_sha256 {
            Some(base) => format!("the delta {} over base {}", shown(&origin.archive), shown(base)),
            None => format!("the archive {}", shown(&origin.archive)),
        };
        text.push_str(&format!("            unpacked from {base} (sha256 {})\n", origin.archive_sha256));
    }
    if report.stale {
        text.push_str(&format!("            stale: {}\n", report.stale_reasons.join("; ")));
    } else {
        text.push_str("            current with its requirements and settings\n");
    }
    for item in report.locks.iter().chain([&report.archive, &report.signature, &report.sbom]) {
        text.push_str(&format!("{:<11} {}: {}\n", kind_of(&item.path), item.path, item.state));
    }
    match &report.last_verify {
        Some(last) => text.push_str(&format!(
            "last verify {}: {} ({} problems) at unix time {}\n",
            last["path"].as_str().unwrap_or(""),
            if last["ok"] == true { "ok" } else { "FAILED" },
            last["n_problems"],
            last["unix_time"]
        )),
        None => text.push_str("last verify none recorded\n"),
    }
    text
}

/// `40 s`, `12 min`, `5 h`, `3 days`: how old, to the unit that matters.
fn human_age(seconds: u64) -> String {
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} min", seconds / 60),
        7200..172_800 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

fn kind_of(path: &str) -> &'static str {
    if path.ends_with(".lock.txt") {
        "lock"
    } else if path.ends_with(".tgz") {
        "archive"
    } else if path.ends_with(".asc") || path.ends_with(".sshsig") {
        "signature"
    } else {
        "sbom"
    }
}
