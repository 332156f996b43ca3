//! What changed between two wheelhouse manifests (`diff`): packages per target, files, bytes,
//! requirements files, targets and settings, rendered as text, JSON or markdown.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    str::FromStr,
};

use pep508_rs::pep440_rs::Version;
use serde::Serialize;

use crate::model::{
    manifest::{FileEntry, Manifest},
    paths::human_bytes,
    untrusted::shown,
};

/// Everything that differs; empty when the two manifests describe the same wheelhouse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WheelhouseDiff {
    pub old: Side,
    pub new: Side,
    /// Target ids only one side has.
    pub targets_added: Vec<String>,
    pub targets_removed: Vec<String>,
    /// Targets both have, with another platform, Python or libc behind the same id.
    pub targets_changed: Vec<String>,
    pub requirements: Vec<RequirementsChange>,
    /// Tool, pip and index settings that differ, as `what: old -> new`.
    pub settings: Vec<String>,
    /// Per target (of either side) whose packages or files differ.
    pub per_target: Vec<TargetDiff>,
    pub files_added: Vec<String>,
    pub files_removed: Vec<String>,
    /// The same file name with other bytes (a wheel built again from an sdist).
    pub files_changed: Vec<String>,
}

/// One side as the diff names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Side {
    /// What the user gave: a manifest, a wheelhouse or an archive.
    pub source: String,
    pub manifest_sha256: String,
    pub n_files: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequirementsChange {
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_sha256: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetDiff {
    pub target: String,
    pub packages: Vec<PackageChange>,
    pub files_added: Vec<String>,
    pub files_removed: Vec<String>,
    pub old_bytes: u64,
    pub new_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    pub name: String,
    /// `added`, `removed`, `upgraded`, `downgraded`, or `changed` (more than one version on a side,
    /// or a version PEP 440 cannot order).
    pub change: &'static str,
    pub old: Vec<String>,
    pub new: Vec<String>,
}

impl WheelhouseDiff {
    pub fn is_empty(&self) -> bool {
        self.targets_added.is_empty()
            && self.targets_removed.is_empty()
            && self.targets_changed.is_empty()
            && self.requirements.is_empty()
            && self.settings.is_empty()
            && self.per_target.is_empty()
            && self.files_added.is_empty()
            && self.files_removed.is_empty()
            && self.files_changed.is_empty()
    }
}

/// Compares two manifests; `old` and `new` name them (what the user gave, and the manifests'
/// sha256) in the report.
pub fn compare(old_side: Side, old: &Manifest, new_side: Side, new: &Manifest) -> WheelhouseDiff {
    let mut diff = WheelhouseDiff { old: old_side, new: new_side, ..WheelhouseDiff::default() };
    let old_targets: BTreeMap<&str, _> = old.targets.iter().map(|target| (target.id.as_str(), target)).collect();
    let new_targets: BTreeMap<&str, _> = new.targets.iter().map(|target| (target.id.as_str(), target)).collect();
    for (id, target) in &new_targets {
        match old_targets.get(id) {
            None => diff.targets_added.push(id.to_string()),
            Some(old_target) if old_target != target => diff.targets_changed.push(id.to_string()),
            Some(_) => {}
        }
    }
    diff.targets_removed =
        old_targets.keys().filter(|id| !new_targets.contains_key(*id)).map(|id| id.to_string()).collect();

    let old_requirements: BTreeMap<&str, &str> =
        old.requirements.iter().map(|record| (record.path.as_str(), record.sha256.as_str())).collect();
    let new_requirements: BTreeMap<&str, &str> =
        new.requirements.iter().map(|record| (record.path.as_str(), record.sha256.as_str())).collect();
    let paths: BTreeSet<&str> = old_requirements.keys().chain(new_requirements.keys()).copied().collect();
    for path in paths {
        let (before, after) = (old_requirements.get(path), new_requirements.get(path));
        let change = match (before, after) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            (Some(before), Some(after)) if before != after => "changed",
            _ => continue,
        };
        diff.requirements.push(RequirementsChange {
            path: path.to_owned(),
            change,
            old_sha256: before.map(|sha256| sha256.to_string()),
            new_sha256: after.map(|sha256| sha256.to_string()),
        });
    }

    let mut setting = |what: &str, before: String, after: String| {
        if before != after {
            diff.settings.push(format!("{what}: {before} -> {after}"));
        }
    };
    setting(
        "tool",
        format!("{} {}", old.tool.name, old.tool.version),
        format!("{} {}", new.tool.name, new.tool.version),
    );
    setting("pip", old.tool.pip_version.clone(), new.tool.pip_version.clone());
    setting("python", old.tool.python_version.clone(), new.tool.python_version.clone());
    let index = |manifest: &Manifest| serde_json::to_string(&manifest.index).unwrap_or_default();
    setting("index settings", index(old), index(new));

    let of_files = |manifest: &'_ Manifest| -> BTreeSet<String> {
        manifest.files.iter().flat_map(|entry| entry.targets.iter().cloned()).collect()
    };
    let mut ids: BTreeSet<String> = old_targets.keys().chain(new_targets.keys()).map(|id| id.to_string()).collect();
    ids.extend(of_files(old));
    ids.extend(of_files(new));
    for id in &ids {
        let target = compare_target(id, old, new);
        if !target.packages.is_empty() || !target.files_added.is_empty() || !target.files_removed.is_empty() {
            diff.per_target.push(target);
        }
    }

    let old_files: BTreeMap<&str, &FileEntry> =
        old.files.iter().map(|entry| (entry.filename.as_str(), entry)).collect();
    for entry in &new.files {
        match old_files.get(entry.filename.as_str()) {
            None => diff.files_added.push(entry.filename.clone()),
            Some(before) if before.sha256 != entry.sha256 => diff.files_changed.push(entry.filename.clone()),
            Some(_) => {}
        }
    }
    let new_names: BTreeSet<&str> = new.files.iter().map(|entry| entry.filename.as_str()).collect();
    diff.files_removed = old
        .files
        .iter()
        .filter(|entry| !new_names.contains(entry.filename.as_str()))
        .map(|entry| entry.filename.clone())
        .collect();
    diff.files_added.sort();
    diff.files_removed.sort();
    diff.files_changed.sort();
    // Other bytes with nothing above to show (a resolution's details, a file's origin, the inputs
    // digest): still not the same wheelhouse manifest, so still a difference.
    if diff.is_empty() && diff.old.manifest_sha256 != diff.new.manifest_sha256 {
        diff.settings.push("manifest: other bytes (resolution details, file origins or the inputs digest)".to_owned());
    }
    diff
}

fn compare_target(id: &str, old: &Manifest, new: &Manifest) -> TargetDiff {
    let of_target = |manifest: &'_ Manifest| -> Vec<FileEntry> {
        manifest.files.iter().filter(|entry| entry.targets.contains(id)).cloned().collect()
    };
    let (old_files, new_files) = (of_target(old), of_target(new));
    let versions = |files: &[FileEntry]| {
        let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for entry in files {
            versions.entry(entry.name.clone()).or_default().insert(entry.version.clone());
        }
        versions
    };
    let (old_versions, new_versions) = (versions(&old_files), versions(&new_files));
    let names: BTreeSet<&String> = old_versions.keys().chain(new_versions.keys()).collect();
    let empty = BTreeSet::new();
    let mut packages = Vec::new();
    for name in names {
        let before = old_versions.get(name).unwrap_or(&empty);
        let after = new_versions.get(name).unwrap_or(&empty);
        if before == after {
            continue;
        }
        let change = match (before.len(), after.len()) {
            (0, _) => "added",
            (_, 0) => "removed",
            (1, 1) => {
                version_change(before.first().map_or("", String::as_str), after.first().map_or("", String::as_str))
            }
            _ => "changed",
        };
        packages.push(PackageChange {
            name: name.clone(),
            change,
            old: before.iter().cloned().collect(),
            new: after.iter().cloned().collect(),
        });
    }
    let names =
        |files: &[FileEntry]| -> BTreeSet<String> { files.iter().map(|entry| entry.filename.clone()).collect() };
    let (old_names, new_names) = (names(&old_files), names(&new_files));
    let bytes = |files: &[FileEntry]| files.iter().fold(0u64, |total, entry| total.saturating_add(entry.size));
    TargetDiff {
        target: id.to_owned(),
        packages,
        files_added: new_names.difference(&old_names).cloned().collect(),
        files_removed: old_names.difference(&new_names).cloned().collect(),
        old_bytes: bytes(&old_files),
        new_bytes: bytes(&new_files),
    }
}

/// `upgraded` or `downgraded` by PEP 440 order; `changed` when either does not parse or they are
/// equal as versions (`1.0` and `1.0.0`).
fn version_change(before: &str, after: &str) -> &'static str {
    match (Version::from_str(before), Version::from_str(after)) {
        (Ok(before), Ok(after)) => match before.cmp(&after) {
            Ordering::Less => "upgraded",
            Ordering::Greater => "downgraded",
            Ordering::Equal => "changed",
        },
        _ => "changed",
    }
}

/// `+1.2 MB` or `-300.0 kB`: the change from `old` to `new` bytes.
fn signed_bytes(old: u64, new: u64) -> String {
    if new >= old {
        format!("+{}", human_bytes(new - old))
    } else {
        format!("-{}", human_bytes(old - new))
    }
}

fn versions(package: &PackageChange) -> String {
    let side = |versions: &[String]| shown(&versions.join(", "));
    match package.change {
        "added" => side(&package.new),
        "removed" => side(&package.old),
        _ => format!("{} -> {}", side(&package.old), side(&package.new)),
    }
}

/// The report for a terminal or a log.
pub fn render_text(diff: &WheelhouseDiff) -> String {
    let mut out = String::new();
    let side = |side: &Side| format!("{} (manifest sha256 {})", shown(&side.source), short(&side.manifest_sha256));
    let _ = writeln!(out, "{} -> {}", side(&diff.old), side(&diff.new));
    if diff.is_empty() {
        out.push_str("no differences\n");
        return out;
    }
    for id in &diff.targets_added {
        let _ = writeln!(out, "target added: {}", shown(id));
    }
    for id in &diff.targets_removed {
        let _ = writeln!(out, "target removed: {}", shown(id));
    }
    for id in &diff.targets_changed {
        let _ = writeln!(out, "target changed: {} (platform, Python or libc)", shown(id));
    }
    for change in &diff.requirements {
        let _ = writeln!(out, "requirements {}: {}", change.change, shown(&change.path));
    }
    for setting in &diff.settings {
        let _ = writeln!(out, "{}", shown(setting));
    }
    for target in &diff.per_target {
        let _ = writeln!(
            out,
            "\n{}: {} ({} -> {}), files +{} -{}",
            shown(&target.target),
            signed_bytes(target.old_bytes, target.new_bytes),
            human_bytes(target.old_bytes),
            human_bytes(target.new_bytes),
            target.files_added.len(),
            target.files_removed.len()
        );
        for package in &target.packages {
            let _ = writeln!(out, "  {:<10} {} {}", package.change, shown(&package.name), versions(package));
        }
    }
    let _ = writeln!(
        out,
        "\nfiles: {} added, {} removed, {} changed; {} -> {} ({})",
        diff.files_added.len(),
        diff.files_removed.len(),
        diff.files_changed.len(),
        human_bytes(diff.old.bytes),
        human_bytes(diff.new.bytes),
        signed_bytes(diff.old.bytes, diff.new.bytes)
    );
    for (sign, files) in [("+", &diff.files_added), ("-", &diff.files_removed), ("~", &diff.files_changed)] {
        for file in files {
            let _ = writeln!(out, "  {sign} {}", shown(file));
        }
    }
    out
}

/// The report as a pull-request comment: a table per target. Names are escaped for tables.
pub fn render_markdown(diff: &WheelhouseDiff) -> String {
    let cell = |text: &str| shown(text).replace('|', "\\|").replace('`', "'");
    let mut out = String::from("### Wheelhouse changes\n\n");
    let _ = writeln!(
        out,
        "`{}` → `{}` · {} → {} ({})\n",
        short(&diff.old.manifest_sha256),
        short(&diff.new.manifest_sha256),
        human_bytes(diff.old.bytes),
        human_bytes(diff.new.bytes),
        signed_bytes(diff.old.bytes, diff.new.bytes)
    );
    if diff.is_empty() {
        out.push_str("No differences.\n");
        return out;
    }
    let mut notes = Vec::new();
    notes.extend(diff.targets_added.iter().map(|id| format!("target added: `{}`", cell(id))));
    notes.extend(diff.targets_removed.iter().map(|id| format!("target removed: `{}`", cell(id))));
    notes.extend(diff.targets_changed.iter().map(|id| format!("target changed: `{}`", cell(id))));
    notes.extend(
        diff.requirements.iter().map(|change| format!("requirements {}: `{}`", change.change, cell(&change.path))),
    );
    notes.extend(diff.settings.iter().map(|setting| format!("`{}`", cell(setting))));
    for note in &notes {
        let _ = writeln!(out, "- {note}");
    }
    if !notes.is_empty() {
        out.push('\n');
    }
    for target in &diff.per_target {
        let _ = writeln!(
            out,
            "#### `{}` ({}, files +{} −{})\n",
            cell(&target.target),
            signed_bytes(target.old_bytes, target.new_bytes),
            target.files_added.len(),
            target.files_removed.len()
        );
        if target.packages.is_empty() {
            out.push_str("Same packages; other files.\n\n");
            continue;
        }
        out.push_str("| package | change | old | new |\n|---|---|---|---|\n");
        for package in &target.packages {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&package.name),
                package.change,
                cell(&package.old.join(", ")),
                cell(&package.new.join(", "))
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Files: {} added, {} removed, {} changed.",
        diff.files_added.len(),
        diff.files_removed.len(),
        diff.files_changed.len()
    );
    out
}

/// The first 12 hex digits: enough to tell manifests apart in a report.
fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::FileEntry;

    fn file(name: &str, version: &str, targets: &[&str], size: u64) -> FileEntry {
        FileEntry {
            filename: format!("{name}-{version}-py3-none-any.whl"),
            name: name.to_owned(),
            version: version.to_owned(),
            sha256: format!("{name}{version}"),
            size,
            requirements: BTreeSet::from(["requirements.txt".to_owned()]),
            targets: targets.iter().map(|target| target.to_string()).collect(),
            origin: "index".to_owned(),
        }
    }

    fn side(name: &str, manifest: &Manifest) -> Side {
        Side {
            source: name.to_owned(),
            manifest_sha256: format!("{name}0123456789abcdef"),
            n_files: manifest.files.len(),
            bytes: manifest.files.iter().map(|entry| entry.size).sum(),
        }
    }

    /// One line per package change of `target`, as `change name old -> new`.
    fn check(old: Vec<FileEntry>, new: Vec<FileEntry>, target: &str, expected: &[&str]) {
        let old = Manifest { files: old, ..Manifest::empty_for_tests() };
        let new = Manifest { files: new, ..Manifest::empty_for_tests() };
        let diff = compare(side("old", &old), &old, side("new", &new), &new);
        let lines: Vec<String> = diff
            .per_target
            .iter()
            .filter(|diff| diff.target == target)
            .flat_map(|diff| {
                diff.packages.iter().map(|package| format!("{} {} {}", package.change, package.name, versions(package)))
            })
            .collect();
        assert_eq!(lines, expected);
    }

    const X86: &str = "linux-x86_64-cp311";
    const ARM: &str = "linux-aarch64-cp311";

    #[test]
    fn packages_are_compared_per_target_in_pep440_order() {
        check(vec![file("a", "1.9", &[X86], 1)], vec![file("a", "1.10", &[X86], 1)], X86, &["upgraded a 1.9 -> 1.10"]);
        check(
            vec![file("a", "2.0rc1", &[X86], 1)],
            vec![file("a", "1.9", &[X86], 1)],
            X86,
            &["downgraded a 2.0rc1 -> 1.9"],
        );
        check(vec![], vec![file("b", "1", &[X86], 1)], X86, &["added b 1"]);
        check(vec![file("b", "1", &[X86], 1)], vec![], X86, &["removed b 1"]);
        check(
            vec![file("c", "1", &[X86], 1)],
            vec![file("c", "1", &[X86], 1), file("c", "2", &[X86], 1)],
            X86,
            &["changed c 1 -> 1, 2"],
        );
        check(vec![file("d", "1.0", &[X86, ARM], 1)], vec![file("d", "1.0", &[X86], 1)], ARM, &["removed d 1.0"]);
        check(vec![file("d", "1.0", &[X86, ARM], 1)], vec![file("d", "1.0", &[X86], 1)], X86, &[]);
        check(vec![file("e", "1.0", &[X86], 1)], vec![file("e", "1.0.0", &[X86], 1)], X86, &["changed e 1.0 -> 1.0.0"]);
    }

    #[test]
    fn files_bytes_targets_and_requirements_are_reported() {
        let mut old = Manifest {
            files: vec![file("a", "1", &[X86], 100), file("b", "1", &[X86], 50)],
            ..Manifest::empty_for_tests()
        };
        old.requirements.push(crate::model::requirements::RequirementsRecord {
            path: "requirements.txt".to_owned(),
            sha256: "r1".to_owned(),
            includes: vec![],
            hash_pinned: false,
        });
        let mut new = old.clone();
        new.files = vec![file("a", "2", &[X86], 300), file("b", "1", &[X86], 50)];
        new.requirements[0].sha256 = "r2".to_owned();
        new.tool.pip_version = "26.3".to_owned();
        let diff = compare(side("old", &old), &old, side("new", &new), &new);
        assert_eq!(diff.files_added, ["a-2-py3-none-any.whl"]);
        assert_eq!(diff.files_removed, ["a-1-py3-none-any.whl"]);
        assert_eq!(diff.requirements[0].change, "changed");
        assert_eq!(diff.settings, ["pip: 23.2.1 -> 26.3"]);
        assert_eq!((diff.per_target[0].old_bytes, diff.per_target[0].new_bytes), (150, 350));
        let text = render_text(&diff);
        assert!(text.contains("linux-x86_64-cp311: +0.2 kB (0.1 kB -> 0.3 kB), files +1 -1"), "{text}");
        assert!(text.contains("  upgraded   a 1 -> 2\n"), "{text}");
        assert!(text.contains("requirements changed: requirements.txt"), "{text}");
        let markdown = render_markdown(&diff);
        assert!(markdown.contains("| a | upgraded | 1 | 2 |"), "{markdown}");
        assert!(!diff.is_empty());
        let same = compare(side("old", &old), &old, side("old", &old), &old);
        assert!(same.is_empty());
        assert!(render_text(&same).ends_with("no differences\n"));
        // Other manifest bytes that list the same things are still a difference.
        let other_bytes = compare(side("old", &old), &old, side("new", &old), &old);
        assert_eq!(
            other_bytes.settings,
            ["manifest: other bytes (resolution details, file origins or the inputs digest)"]
        );
    }

    #[test]
    fn hostile_names_are_escaped_in_both_renderings() {
        let old = Manifest::empty_for_tests();
        let mut new = Manifest { files: vec![file("a", "1", &[X86], 1)], ..Manifest::empty_for_tests() };
        new.files[0].name = "a|b\u{1b}[2J".to_owned();
        let diff = compare(side("old", &old), &old, side("new", &new), &new);
        assert!(render_text(&diff).contains("a|b\\x1b[2J"));
        assert!(render_markdown(&diff).contains("| a\\|b\\x1b[2J | added |"));
    }
}
