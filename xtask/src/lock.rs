//! `lock`: a hash-locked requirements file beside each requirements file, from the wheelhouse:
//! every package any target resolved, pinned, with a hash of each of its files there and a
//! marker that selects exactly the targets that need it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use sha2::Digest;

use crate::{
    digest::hex,
    dockerfiles::diff,
    flags::Lock,
    manifest::Manifest,
    pack_wheelhouse::read_manifest,
    partial,
    requirements::display_path,
    settings::{self, Settings},
    target::TargetRecord,
    ui,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    pub fn digest_file(self, path: &Path) -> Result<String> {
        let bytes = fs_err::read(path)?;
        Ok(match self {
            Algorithm::Sha256 => hex(&sha2::Sha256::digest(&bytes)),
            Algorithm::Sha384 => hex(&sha2::Sha384::digest(&bytes)),
            Algorithm::Sha512 => hex(&sha2::Sha512::digest(&bytes)),
        })
    }
}

/// `requirements-api.txt` → `requirements-api.lock.txt`: requirements discovery skips `.lock`.
pub fn lock_path(requirements: &Path) -> PathBuf {
    let stem = requirements.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    requirements.with_file_name(format!("{stem}.lock.txt"))
}

pub fn run(root: &Path, args: &Lock) -> Result<()> {
    let settings = Settings::load(root)?;
    let wheelhouse = settings::wheelhouse_dir(root, &settings, args.wheelhouse.as_deref())?;
    let manifest = read_manifest(&wheelhouse)?;
    let current = std::env::current_dir()?;
    let groups: Vec<String> = if args.requirements.is_empty() {
        manifest.requirements.iter().map(|record| record.path.clone()).collect()
    } else {
        args.requirements.iter().map(|path| display_path(root, &current.join(path))).collect()
    };
    let mut stale = Vec::new();
    for group in &groups {
        let record = manifest.requirements.iter().find(|record| &record.path == group).with_context(|| {
            format!("the wheelhouse was not made for {group}\nhint: cargo xtask create-wheelhouse -r {group}")
        })?;
        let requirements_path = root.join(&record.path);
        if let Ok(bytes) = fs_err::read(&requirements_path) {
            if crate::digest::sha256_hex(&bytes) != record.sha256 {
                bail!("{group} changed since the wheelhouse was made\nhint: cargo xtask create-wheelhouse, then cargo xtask lock");
            }
        }
        let hashes = |filename: &str| -> Result<String> {
            match args.algorithm {
                Algorithm::Sha256 => Ok(manifest.file(filename).map(|entry| entry.sha256.clone()).unwrap_or_default()),
                other => other.digest_file(&wheelhouse.join(filename)),
            }
        };
        let text = render(&manifest, group, args.algorithm, &hashes)?;
        let path = lock_path(&requirements_path);
        let shown = display_path(root, &path);
        let existing = fs_err::read_to_string(&path).ok();
        if existing.as_deref() == Some(text.as_str()) {
            ui::say(&format!("{shown}: up to date"));
        } else if args.check {
            let diff = diff(existing.as_deref().unwrap_or(""), &text);
            stale.push(format!("{shown} is {}:\n{diff}", if existing.is_some() { "stale" } else { "missing" }));
        } else {
            let directory = path.parent().unwrap_or(Path::new("."));
            let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            partial::write_atomically(directory, &name, text.as_bytes())?;
            ui::say(&format!("wrote {shown}"));
        }
    }
    if !stale.is_empty() {
        bail!("{}\nhint: cargo xtask lock", stale.join("\n"));
    }
    Ok(())
}

/// The lock file's text for one requirements file: sorted, stable, with the command that
/// regenerates it in a header.
pub fn render(
    manifest: &Manifest,
    group: &str,
    algorithm: Algorithm,
    hash_of: &dyn Fn(&str) -> Result<String>,
) -> Result<String> {
    let resolutions: Vec<_> =
        manifest.resolutions.iter().filter(|resolution| resolution.requirements == group).collect();
    if resolutions.is_empty() {
        bail!("the manifest has no resolution of {group}");
    }
    let all_targets: BTreeSet<&str> = resolutions.iter().map(|resolution| resolution.target.as_str()).collect();
    let records: BTreeMap<&str, &TargetRecord> =
        manifest.targets.iter().map(|record| (record.id.as_str(), record)).collect();
    // (name, version) → the targets whose resolution has it.
    let mut pins: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    for resolution in &resolutions {
        for package in &resolution.packages {
            pins.entry((package.name.clone(), package.version.clone())).or_default().insert(&resolution.target);
        }
    }
    let mut text = format!(
        "# Hash-locked requirements for {group}, for every target of the wheelhouse.\n\
         # Generated by `cargo xtask lock` from the wheelhouse manifest: do not edit.\n\
         # Regenerate: cargo xtask create-wheelhouse && cargo xtask lock\n\
         # Install: pip install --require-hashes --no-index --find-links WHEELHOUSE -r THIS_FILE\n"
    );
    for ((name, version), targets) in &pins {
        let marker = marker_for(targets, &all_targets, &records)?;
        let mut files: Vec<&str> = manifest
            .files
            .iter()
            .filter(|entry| &entry.name == name && &entry.version == version)
            .map(|entry| entry.filename.as_str())
            .collect();
        files.sort();
        let mut hashes = files.iter().map(|filename| hash_of(filename)).collect::<Result<Vec<_>>>()?;
        hashes.sort();
        hashes.dedup();
        if hashes.is_empty() {
            bail!("{name}=={version} has no file in the wheelhouse\nhint: cargo xtask create-wheelhouse");
        }
        text.push_str(&format!("{name}=={version}"));
        if let Some(marker) = marker {
            text.push_str(&format!(" ; {marker}"));
        }
        for hash in hashes {
            text.push_str(&format!(" \\\n    --hash={}:{hash}", algorithm.name()));
        }
        text.push('\n');
    }
    Ok(text)
}

/// A PEP 508 marker true on exactly `subset` of `all` targets, or `None` when that is all of
/// them. Targets are told apart by `platform_machine` and `python_version`.
fn marker_for(
    subset: &BTreeSet<&str>,
    all: &BTreeSet<&str>,
    records: &BTreeMap<&str, &TargetRecord>,
) -> Result<Option<String>> {
    if subset == all {
        return Ok(None);
    }
    let key = |id: &str| -> Result<(String, String)> {
        let record = records.get(id).with_context(|| format!("the manifest has no target {id}"))?;
        Ok((record.machine().to_owned(), record.python_version.clone()))
    };
    let mut by_key: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for id in all {
        by_key.entry(key(id)?).or_default().push(id);
    }
    for ids in by_key.values() {
        let inside = ids.iter().filter(|id| subset.contains(**id)).count();
        if inside != 0 && inside != ids.len() {
            bail!(
                "targets {} share platform and Python but resolved differently: no marker tells them apart\nhint: lock them from separate wheelhouses",
                ids.join(" and ")
            );
        }
    }
    let machines: BTreeSet<String> = by_key.keys().map(|(machine, _)| machine.clone()).collect();
    let pythons_of = |machine: &str, only_subset: bool| -> BTreeSet<String> {
        by_key
            .iter()
            .filter(|((candidate, _), ids)| {
                candidate == machine && (!only_subset || ids.iter().any(|id| subset.contains(id)))
            })
            .map(|((_, python), _)| python.clone())
            .collect()
    };
    let python_clause = |pythons: &BTreeSet<String>| -> String {
        let parts: Vec<String> = pythons.iter().map(|python| format!("python_version == \"{python}\"")).collect();
        if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("({})", parts.join(" or "))
        }
    };
    // The same Python versions on every machine: the machine does not matter.
    let subset_pythons: Vec<BTreeSet<String>> = machines.iter().map(|machine| pythons_of(machine, true)).collect();
    if subset_pythons.iter().all(|pythons| pythons == &subset_pythons[0]) && !subset_pythons[0].is_empty() {
        let all_pythons: BTreeSet<String> = by_key.keys().map(|(_, python)| python.clone()).collect();
        if subset_pythons[0] != all_pythons {
            return Ok(Some(without_outer_parentheses(&python_clause(&subset_pythons[0]))));
        }
    }
    let mut clauses = Vec::new();
    for machine in &machines {
        let inside = pythons_of(machine, true);
        if inside.is_empty() {
            continue;
        }
        let machine_clause = format!("platform_machine == \"{machine}\"");
        if inside == pythons_of(machine, false) {
            clauses.push(machine_clause);
        } else {
            clauses.push(format!("({machine_clause} and {})", python_clause(&inside)));
        }
    }
    Ok(Some(if clauses.len() == 1 { without_outer_parentheses(&clauses[0]) } else { clauses.join(" or ") }))
}

/// `(a and (b or c))` → `a and (b or c)`: one layer, only when it wraps the whole clause (not
/// `(a) or (b)`).
fn without_outer_parentheses(clause: &str) -> String {
    let Some(inner) = clause.strip_prefix('(').and_then(|inner| inner.strip_suffix(')')) else {
        return clause.to_owned();
    };
    let mut depth = 0i32;
    for character in inner.chars() {
        depth += match character {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth < 0 {
            return clause.to_owned();
        }
    }
    inner.to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{
        manifest::{FileEntry, IndexSettings, Resolution, ResolvedPackage, ToolInfo, FORMAT_VERSION},
        target::{Libc, Platform, PythonVersion, Target},
    };

    const TARGETS: [(Platform, &str); 4] =
        [(Platform::Amd64, "3.11"), (Platform::Amd64, "3.12"), (Platform::Arm64, "3.11"), (Platform::Arm64, "3.12")];

    /// A manifest where target `i` resolved the packages listed with `i` in their target list.
    fn manifest(packages: &[(&str, &str, &[usize])]) -> Manifest {
        let targets: Vec<TargetRecord> = TARGETS
            .iter()
            .map(|(platform, python)| {
                Target { platform: *platform, python: PythonVersion::parse(python).unwrap(), libc: Libc::DEFAULT }
                    .record()
                    .unwrap()
            })
            .collect();
        let resolutions = targets
            .iter()
            .enumerate()
            .map(|(index, record)| Resolution {
                requirements: "requirements.txt".to_owned(),
                target: record.id.clone(),
                key: String::new(),
                packages: packages
                    .iter()
                    .filter(|(_, _, on)| on.contains(&index))
                    .map(|(name, version, _)| ResolvedPackage {
                        name: (*name).to_owned(),
                        version: (*version).to_owned(),
                        filename: format!("{name}-{version}-py3-none-any.whl"),
                        direct: false,
                        extras: vec![],
                        dependencies: vec![],
                        requires_dist: vec![],
                        url: String::new(),
                    })
                    .collect(),
            })
            .collect();
        let files = packages
            .iter()
            .map(|(name, version, _)| FileEntry {
                filename: format!("{name}-{version}-py3-none-any.whl"),
                name: (*name).to_owned(),
                version: (*version).to_owned(),
                sha256: format!("{name}{version}"),
                size: 1,
                requirements: BTreeSet::new(),
                targets: BTreeSet::new(),
                origin: "index".to_owned(),
            })
            .collect();
        Manifest {
            format_version: FORMAT_VERSION,
            tool: ToolInfo {
                name: "xtask".into(),
                version: "0".into(),
                pip_version: "23".into(),
                python_version: "3".into(),
            },
            inputs_digest: String::new(),
            index: IndexSettings::default(),
            targets,
            requirements: vec![],
            resolutions,
            files,
        }
    }

    fn check(packages: &[(&str, &str, &[usize])], expected_lines: &[&str]) {
        let manifest = manifest(packages);
        let hash_of = |filename: &str| Ok(manifest.file(filename).unwrap().sha256.clone());
        let text = render(&manifest, "requirements.txt", Algorithm::Sha256, &hash_of).unwrap();
        let requirements: Vec<&str> =
            text.lines().filter(|line| !line.starts_with('#') && !line.starts_with(' ')).collect();
        assert_eq!(requirements, expected_lines, "{text}");
    }

    #[test]
    fn markers_select_exactly_the_targets_that_need_a_package() {
        check(
            &[
                ("purelib", "1.0", &[0, 1, 2, 3]),
                ("armonly", "1.0", &[2, 3]),
                ("oldpy", "1.0", &[0, 2]),
                ("compiled", "2.0", &[0, 2]),
                ("compiled", "2.1", &[1, 3]),
                ("rare", "1.0", &[1]),
                ("three", "1.0", &[0, 1, 2]),
            ],
            &[
                "armonly==1.0 ; platform_machine == \"aarch64\" \\",
                "compiled==2.0 ; python_version == \"3.11\" \\",
                "compiled==2.1 ; python_version == \"3.12\" \\",
                "oldpy==1.0 ; python_version == \"3.11\" \\",
                "purelib==1.0 \\",
                "rare==1.0 ; platform_machine == \"x86_64\" and python_version == \"3.12\" \\",
                "three==1.0 ; (platform_machine == \"aarch64\" and python_version == \"3.11\") or platform_machine == \"x86_64\" \\",
            ],
        );
    }

    #[test]
    fn every_file_of_a_pin_gets_its_hash_and_the_header_says_how_to_regenerate() {
        let manifest = manifest(&[("purelib", "1.0", &[0, 1, 2, 3])]);
        let text = render(&manifest, "requirements.txt", Algorithm::Sha256, &|_| Ok("abc".to_owned())).unwrap();
        assert!(text.contains("# Regenerate: cargo xtask create-wheelhouse && cargo xtask lock\n"), "{text}");
        assert!(text.ends_with("purelib==1.0 \\\n    --hash=sha256:abc\n"), "{text}");
        assert_eq!(lock_path(Path::new("/r/requirements-api.txt")), PathBuf::from("/r/requirements-api.lock.txt"));
    }
}
