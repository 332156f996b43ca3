//! Whether a wheelhouse still answers its inputs: the one comparison that create, `lock`, the
//! build preflight and `status` make, over the requirements files with their `-r`/`-c` includes
//! and the targets the settings ask for.

use std::{collections::BTreeSet, fmt};

use crate::model::{manifest::Manifest, requirements::RequirementsRecord};

/// The inputs as they are now, read by the caller.
#[derive(Debug, Default)]
pub struct Current {
    /// Requirements files to judge, by the path the manifest uses, as read now (`None` when the
    /// file cannot be read).
    pub requirements: Vec<(String, Option<RequirementsRecord>)>,
    /// The target ids the settings ask for, when they say.
    pub targets: Option<Vec<String>>,
}

/// One way the wheelhouse no longer matches its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// The file, or a file it includes (`changed_includes`), has other bytes than when the
    /// wheelhouse was made.
    Changed {
        path: String,
        changed_includes: Vec<String>,
    },
    /// The wheelhouse was made for it and it cannot be read now.
    Gone {
        path: String,
    },
    /// It is an input now, and the wheelhouse was not made for it.
    NotInWheelhouse {
        path: String,
    },
    Targets {
        wanted: Vec<String>,
        have: Vec<String>,
    },
}

impl Stale {
    /// The requirements file this is about, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Stale::Changed { path, .. } | Stale::Gone { path } | Stale::NotInWheelhouse { path } => Some(path),
            Stale::Targets { .. } => None,
        }
    }
}

impl fmt::Display for Stale {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stale::Changed { path, changed_includes } if changed_includes.is_empty() => {
                write!(formatter, "{path} changed since the wheelhouse was made")
            }
            Stale::Changed { path, changed_includes } => write!(
                formatter,
                "{path} changed since the wheelhouse was made (through {})",
                changed_includes.join(", ")
            ),
            Stale::Gone { path } => write!(formatter, "{path} is gone"),
            Stale::NotInWheelhouse { path } => write!(formatter, "{path} is not in the wheelhouse"),
            Stale::Targets { wanted, have } => write!(
                formatter,
                "the targets asked for are {}, but the wheelhouse has {}",
                wanted.join(", "),
                have.join(", ")
            ),
        }
    }
}

/// Every way `manifest` no longer answers `current`, in the order of `current`; empty when it is
/// current.
pub fn stale(manifest: &Manifest, current: &Current) -> Vec<Stale> {
    let mut reasons = Vec::new();
    for (path, now) in &current.requirements {
        let recorded = manifest.requirements.iter().find(|record| &record.path == path);
        match (recorded, now) {
            (None, _) => reasons.push(Stale::NotInWheelhouse { path: path.clone() }),
            (Some(_), None) => reasons.push(Stale::Gone { path: path.clone() }),
            (Some(recorded), Some(now)) if recorded.content_digest() != now.content_digest() => {
                reasons.push(Stale::Changed { path: path.clone(), changed_includes: changed_includes(recorded, now) })
            }
            (Some(_), Some(_)) => {}
        }
    }
    if let Some(wanted) = &current.targets {
        let wanted: BTreeSet<&String> = wanted.iter().collect();
        let have: BTreeSet<&String> = manifest.targets.iter().map(|target| &target.id).collect();
        if wanted != have {
            reasons.push(Stale::Targets {
                wanted: wanted.into_iter().cloned().collect(),
                have: have.into_iter().cloned().collect(),
            });
        }
    }
    reasons
}

/// The includes whose bytes changed, or that came or went; empty when the file itself changed.
fn changed_includes(recorded: &RequirementsRecord, now: &RequirementsRecord) -> Vec<String> {
    if recorded.sha256 != now.sha256 {
        return Vec::new();
    }
    let before: BTreeSet<(&str, &str)> =
        recorded.includes.iter().map(|include| (include.path.as_str(), include.sha256.as_str())).collect();
    let after: BTreeSet<(&str, &str)> =
        now.includes.iter().map(|include| (include.path.as_str(), include.sha256.as_str())).collect();
    let changed: BTreeSet<&str> = before.symmetric_difference(&after).map(|(path, _)| *path).collect();
    changed.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::requirements::IncludedFile;

    fn record(path: &str, sha256: &str, includes: &[(&str, &str)]) -> RequirementsRecord {
        RequirementsRecord {
            path: path.to_owned(),
            sha256: sha256.to_owned(),
            includes: includes
                .iter()
                .map(|(path, sha256)| IncludedFile { path: (*path).to_owned(), sha256: (*sha256).to_owned() })
                .collect(),
            hash_pinned: false,
        }
    }

    fn manifest(requirements: Vec<RequirementsRecord>) -> Manifest {
        Manifest { requirements, ..Manifest::empty_for_tests() }
    }

    fn check(now: Vec<(&str, Option<RequirementsRecord>)>, expected: &[&str]) {
        let made = manifest(vec![
            record("requirements.txt", "a", &[("base.txt", "b")]),
            record("requirements-old.txt", "o", &[]),
        ]);
        let current = Current {
            requirements: now.into_iter().map(|(path, record)| (path.to_owned(), record)).collect(),
            targets: None,
        };
        let reasons: Vec<String> = stale(&made, &current).iter().map(ToString::to_string).collect();
        assert_eq!(reasons, expected);
    }

    #[test]
    fn a_changed_include_makes_its_requirements_stale() {
        check(vec![("requirements.txt", Some(record("requirements.txt", "a", &[("base.txt", "b")])))], &[]);
        check(
            vec![("requirements.txt", Some(record("requirements.txt", "a", &[("base.txt", "B")])))],
            &["requirements.txt changed since the wheelhouse was made (through base.txt)"],
        );
        check(
            vec![("requirements.txt", Some(record("requirements.txt", "A", &[("base.txt", "b")])))],
            &["requirements.txt changed since the wheelhouse was made"],
        );
    }

    #[test]
    fn gone_and_new_files_are_named() {
        check(
            vec![
                ("requirements-old.txt", None),
                ("requirements-new.txt", Some(record("requirements-new.txt", "n", &[]))),
            ],
            &["requirements-old.txt is gone", "requirements-new.txt is not in the wheelhouse"],
        );
    }

    #[test]
    fn other_targets_are_named_both_ways() {
        let current = Current { requirements: vec![], targets: Some(vec!["linux-amd64-cp312-glibc_2_28".to_owned()]) };
        let reasons: Vec<String> = stale(&manifest(vec![]), &current).iter().map(ToString::to_string).collect();
        assert_eq!(reasons, ["the targets asked for are linux-amd64-cp312-glibc_2_28, but the wheelhouse has "]);
    }
}
