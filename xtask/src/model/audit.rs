//! The audit of a wheelhouse against OSV advisories: the findings of each target, the ignores,
//! and what a report holds (its formats are `audit_render`'s).

use std::{
    collections::{BTreeMap, BTreeSet},
    str::FromStr,
};

use pep508_rs::pep440_rs::Version;
use serde::Serialize;

use crate::model::{
    manifest::Manifest,
    osv::{self, Advisory},
    untrusted::shown,
    wheel_name::normalize,
};

/// An advisory the project accepts: `--ignore ID` (no reason), or `[audit] ignore` with one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignore {
    pub id: String,
    pub reason: Option<String>,
}

/// One advisory affecting one package version on one target. Text from the record (id, aliases,
/// summary) is escaped here, once, so that no format can print a control character from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub target: String,
    pub package: String,
    pub version: String,
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    /// The first fix above `version` of each range that matched.
    pub fixed_versions: Vec<String>,
    /// The lowest version of the package the wheelhouse also holds for this target that is above
    /// `version` and that the advisory does not affect.
    pub fixed_in_wheelhouse: Option<String>,
    pub ignored: Option<Ignored>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// The id or alias the ignore named.
    pub by: String,
    /// `None` for `--ignore`, which takes no reason.
    pub reason: Option<String>,
}

/// The package versions of each target of the manifest (every target, even one with none).
pub fn packages_by_target(manifest: &Manifest) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut targets: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> =
        manifest.targets.iter().map(|target| (target.id.clone(), BTreeMap::new())).collect();
    for entry in &manifest.files {
        for target in &entry.targets {
            let packages = targets.entry(target.clone()).or_default();
            packages.entry(normalize(&entry.name)).or_default().insert(entry.version.clone());
        }
    }
    targets
}

/// Every advisory affecting a package version of a target, sorted by target, package, version
/// and id, each marked with the ignore that names its id or an alias (ids compare without case,
/// as `ghsa-` and `GHSA-` are the same advisory).
pub fn findings(manifest: &Manifest, advisories: &[Advisory], ignores: &[Ignore]) -> Vec<Finding> {
    let mut by_package: BTreeMap<&str, Vec<&Advisory>> = BTreeMap::new();
    for advisory in advisories {
        let names: BTreeSet<&str> = advisory.packages.iter().map(|package| package.name.as_str()).collect();
        for name in names {
            by_package.entry(name).or_default().push(advisory);
        }
    }
    let mut found = Vec::new();
    for (target, packages) in packages_by_target(manifest) {
        for (name, versions) in &packages {
            for advisory in by_package.get(name.as_str()).into_iter().flatten() {
                for version in versions {
                    let Some(matched) = advisory.matches(name, version) else { continue };
                    let fixed_in_wheelhouse = versions
                        .iter()
                        .filter_map(|other| Some((Version::from_str(other).ok()?, other)))
                        .filter(|(other, _)| Version::from_str(version).is_ok_and(|version| *other > version))
                        .filter(|(_, text)| advisory.matches(name, text).is_none())
                        .min()
                        .map(|(_, text)| text.clone());
                    found.push(Finding {
                        target: target.clone(),
                        package: name.clone(),
                        version: version.clone(),
                        id: shown(&advisory.id),
                        aliases: advisory.aliases.iter().map(|alias| shown(alias)).collect(),
                        summary: shown(&advisory.summary),
                        fixed_versions: matched.fixed,
                        fixed_in_wheelhouse,
                        ignored: ignored_by(advisory, ignores),
                    });
                }
            }
        }
    }
    found.sort_by(|left, right| {
        (&left.target, &left.package, &left.version, &left.id).cmp(&(
            &right.target,
            &right.package,
            &right.version,
            &right.id,
        ))
    });
    // A database may hold one record twice (a directory and a copy of it): one finding each.
    found.dedup_by(|left, right| {
        (&left.target, &left.package, &left.version, &left.id)
            == (&right.target, &right.package, &right.version, &right.id)
    });
    merge_aliases(found)
}

/// The ignore that names the advisory's id or an alias; of several, the first with a reason, so
/// that a `--ignore` of an alias does not hide the reason the settings give.
fn ignored_by(advisory: &Advisory, ignores: &[Ignore]) -> Option<Ignored> {
    let names = || std::iter::once(&advisory.id).chain(&advisory.aliases);
    let matching: Vec<&Ignore> =
        ignores.iter().filter(|ignore| names().any(|name| name.eq_ignore_ascii_case(&ignore.id))).collect();
    let chosen = matching.iter().find(|ignore| ignore.reason.is_some()).or(matching.first())?;
    Some(Ignored { by: shown(&chosen.id), reason: chosen.reason.clone() })
}

/// The ignores that name no finding's id or alias: stale entries the settings should lose.
pub fn unused_ignores<'a>(findings: &[Finding], ignores: &'a [Ignore]) -> Vec<&'a Ignore> {
    ignores
        .iter()
        .filter(|ignore| {
            let id = shown(&ignore.id);
            !findings.iter().any(|finding| {
                std::iter::once(&finding.id).chain(&finding.aliases).any(|name| name.eq_ignore_ascii_case(&id))
            })
        })
        .collect()
}

/// Merges the findings of one package version on one target whose advisories name each other
/// (a PYSEC record and the GHSA it aliases): one vulnerability, one finding, as pip-audit
/// reports it. The first by id stays, with the other's id among its aliases.
fn merge_aliases(found: Vec<Finding>) -> Vec<Finding> {
    let mut merged: Vec<Finding> = Vec::new();
    for finding in found {
        let names = |finding: &Finding| -> BTreeSet<String> {
            std::iter::once(&finding.id).chain(&finding.aliases).map(|name| name.to_ascii_uppercase()).collect()
        };
        let same = merged.iter_mut().rev().take_while(|kept| {
            (&kept.target, &kept.package, &kept.version) == (&finding.target, &finding.package, &finding.version)
        });
        let new_names = names(&finding);
        let existing = same.into_iter().find(|kept| !names(kept).is_disjoint(&new_names));
        let Some(kept) = existing else {
            merged.push(finding);
            continue;
        };
        for alias in std::iter::once(finding.id).chain(finding.aliases) {
            if !alias.eq_ignore_ascii_case(&kept.id)
                && !kept.aliases.iter().any(|known| known.eq_ignore_ascii_case(&alias))
            {
                kept.aliases.push(alias);
            }
        }
        kept.fixed_versions.extend(finding.fixed_versions);
        kept.fixed_versions.sort();
        kept.fixed_versions.dedup();
        if kept.summary.is_empty() {
            kept.summary = finding.summary;
        }
        // Held and unaffected by both: the higher of the two, or none when either has none.
        kept.fixed_in_wheelhouse = match (kept.fixed_in_wheelhouse.take(), finding.fixed_in_wheelhouse) {
            (Some(left), Some(right)) => {
                let order = |text: &str| Version::from_str(text).ok();
                Some(if order(&right) > order(&left) { right } else { left })
            }
            _ => None,
        };
        kept.ignored = kept.ignored.take().or(finding.ignored);
    }
    merged
}

/// What was read of the database.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DatabaseSummary {
    /// Records read whole (withdrawn and irrelevant ones included).
    pub records: usize,
    /// Records that name a package version the wheelhouse might hold.
    pub relevant: usize,
    pub withdrawn: usize,
    /// `GIT` ranges, which cannot be evaluated offline.
    pub git_ranges: usize,
    /// Files, entries, records and ranges skipped, each with a warning.
    pub warnings: usize,
    /// The newest `modified` of the records read, in seconds since the Unix epoch.
    pub newest_modified: Option<i64>,
}

impl DatabaseSummary {
    /// Seconds from the newest record to `now`.
    pub fn age_seconds(&self, now: i64) -> Option<i64> {
        self.newest_modified.map(|newest| (now - newest).max(0))
    }

    /// `advisory database: N records, newest modified YYYY-MM-DD (D days old)`.
    pub fn line(&self, now: i64) -> String {
        let noun = if self.records == 1 { "record" } else { "records" };
        let mut line = format!("advisory database: {} {noun}", self.records);
        match (self.newest_modified, self.age_seconds(now)) {
            (Some(newest), Some(age)) => {
                line.push_str(&format!(", newest modified {} ({} days old)", osv::date(newest), age / 86_400))
            }
            _ => line.push_str(", none with a modified time"),
        }
        if self.withdrawn > 0 {
            line.push_str(&format!(", {} withdrawn", self.withdrawn));
        }
        if self.git_ranges > 0 {
            line.push_str(&format!(", {} GIT ranges not evaluated", self.git_ranges));
        }
        if self.warnings > 0 {
            line.push_str(&format!(", {} skipped with a warning", self.warnings));
        }
        line
    }
}

/// Everything a report shows.
pub struct Report<'a> {
    pub findings: &'a [Finding],
    pub database: &'a DatabaseSummary,
    /// Seconds since the Unix epoch, from the caller's clock.
    pub now: i64,
    /// Distinct package versions audited, over all targets.
    pub packages: usize,
    pub targets: usize,
    /// The manifest's path as the user would name it: where SARIF locates a result.
    pub manifest: &'a str,
}

impl Report<'_> {
    /// Findings that count (not ignored), and ignored ones.
    pub fn counts(&self) -> (usize, usize) {
        let ignored = self.findings.iter().filter(|finding| finding.ignored.is_some()).count();
        (self.findings.len() - ignored, ignored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::FileEntry;

    /// A manifest of `(name, version, targets)` files.
    fn manifest(files: &[(&str, &str, &[&str])]) -> Manifest {
        let files = files
            .iter()
            .map(|(name, version, targets)| FileEntry {
                filename: format!("{name}-{version}-py3-none-any.whl"),
                name: (*name).to_owned(),
                version: (*version).to_owned(),
                sha256: String::new(),
                size: 1,
                requirements: BTreeSet::new(),
                targets: targets.iter().map(|target| (*target).to_owned()).collect(),
                origin: "index".to_owned(),
            })
            .collect();
        Manifest { files, ..Manifest::empty_for_tests() }
    }

    /// An advisory `id` (alias `CVE-<id>`) on `package` with one ECOSYSTEM range of `events`.
    fn advisory(id: &str, package: &str, events: &str) -> Advisory {
        let text = format!(
            r#"{{"id": "{id}", "modified": "2024-05-01T00:00:00Z", "aliases": ["CVE-{id}"], "summary": "bad {package}",
                "affected": [{{"package": {{"ecosystem": "PyPI", "name": "{package}"}},
                "ranges": [{{"type": "ECOSYSTEM", "events": {events}}}]}}]}}"#
        );
        match osv::read_record(text.as_bytes(), &|_| true).unwrap().outcome {
            Outcome::Relevant(advisory) => advisory,
            other => panic!("{other:?}"),
        }
    }
    use crate::model::osv::Outcome;

    /// The findings, one line each: `target package version id fixed held ignored`.
    fn check(
        files: &[(&str, &str, &[&str])],
        advisories: &[Advisory],
        ignores: &[(&str, Option<&str>)],
        expected: &[&str],
    ) {
        let ignores: Vec<Ignore> = ignores
            .iter()
            .map(|(id, reason)| Ignore { id: (*id).to_owned(), reason: reason.map(str::to_owned) })
            .collect();
        let lines: Vec<String> = findings(&manifest(files), advisories, &ignores)
            .iter()
            .map(|finding| {
                format!(
                    "{} {} {} {} fixed={} held={} ignored={}",
                    finding.target,
                    finding.package,
                    finding.version,
                    finding.id,
                    finding.fixed_versions.join(","),
                    finding.fixed_in_wheelhouse.as_deref().unwrap_or("-"),
                    finding.ignored.as_ref().map_or("-".to_owned(), |ignored| format!(
                        "{}:{}",
                        ignored.by,
                        ignored.reason.as_deref().unwrap_or("")
                    ))
                )
            })
            .collect();
        assert_eq!(lines, expected);
    }

    const BELOW_2: &str = r#"[{"introduced": "0"}, {"fixed": "2.0"}]"#;

    #[test]
    fn findings_are_per_target_with_the_fix_the_wheelhouse_holds() {
        let below_2 = advisory("GHSA-1", "Demo_Pkg", BELOW_2);
        check(
            &[("demo-pkg", "1.0", &["amd64", "arm64"])],
            std::slice::from_ref(&below_2),
            &[],
            &[
                "amd64 demo-pkg 1.0 GHSA-1 fixed=2.0 held=- ignored=-",
                "arm64 demo-pkg 1.0 GHSA-1 fixed=2.0 held=- ignored=-",
            ],
        );
        check(
            &[("demo-pkg", "1.0", &["arm64"]), ("demo-pkg", "2.1", &["amd64", "arm64"])],
            std::slice::from_ref(&below_2),
            &[],
            &["arm64 demo-pkg 1.0 GHSA-1 fixed=2.0 held=2.1 ignored=-"],
        );
        // The lowest unaffected version above, never an affected or a lower one.
        let window =
            advisory("GHSA-2", "demo-pkg", r#"[{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "3.0"}]"#);
        check(
            &[
                ("demo-pkg", "0.9", &["t"]),
                ("demo-pkg", "1.2", &["t"]),
                ("demo-pkg", "3.1", &["t"]),
                ("demo-pkg", "2.0", &["t"]),
                ("demo-pkg", "1.6", &["t"]),
            ],
            &[window],
            &[],
            &["t demo-pkg 1.2 GHSA-2 fixed=1.5 held=1.6 ignored=-", "t demo-pkg 3.1 GHSA-2 fixed= held=- ignored=-"],
        );
        let mut evil = advisory("GHSA-3", "demo-pkg", BELOW_2);
        evil.summary = "line\u{1b}[2J\nfake".to_owned();
        evil.aliases = vec!["CVE-\u{202e}1".to_owned()];
        let found = findings(&manifest(&[("demo-pkg", "1.0", &["t"])]), &[evil], &[]);
        assert_eq!(
            (found[0].summary.as_str(), found[0].aliases[0].as_str()),
            ("line\\x1b[2J\\nfake", "CVE-\\u{202e}1")
        );
        check(&[("other", "1.0", &["t"])], std::slice::from_ref(&below_2), &[], &[]);
        check(
            &[("demo-pkg", "1.0", &["t"])],
            &[below_2.clone(), below_2],
            &[],
            &["t demo-pkg 1.0 GHSA-1 fixed=2.0 held=- ignored=-"],
        );
    }

    #[test]
    fn ignores_match_the_id_or_an_alias_without_case() {
        let files: &[(&str, &str, &[&str])] = &[("demo-pkg", "1.0", &["t"])];
        let below_2 = || vec![advisory("GHSA-1", "demo-pkg", BELOW_2)];
        check(files, &below_2(), &[("ghsa-1", None)], &["t demo-pkg 1.0 GHSA-1 fixed=2.0 held=- ignored=ghsa-1:"]);
        check(
            files,
            &below_2(),
            &[("CVE-GHSA-1", Some("not reachable"))],
            &["t demo-pkg 1.0 GHSA-1 fixed=2.0 held=- ignored=CVE-GHSA-1:not reachable"],
        );
        check(files, &below_2(), &[("GHSA-9", Some("other"))], &["t demo-pkg 1.0 GHSA-1 fixed=2.0 held=- ignored=-"]);
        let ignores =
            [Ignore { id: "GHSA-1".to_owned(), reason: None }, Ignore { id: "GHSA-9".to_owned(), reason: None }];
        let found = findings(&manifest(files), &below_2(), &ignores);
        assert_eq!(unused_ignores(&found, &ignores), [&ignores[1]]);
    }
}
