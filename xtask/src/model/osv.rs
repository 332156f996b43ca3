//! OSV advisory records (the JSON the OSV project publishes per ecosystem) read for the PyPI
//! ecosystem, and the spec's evaluation of which versions a record affects, in PEP 440 order.

use std::{cmp::Ordering, str::FromStr};

use pep508_rs::pep440_rs::Version;
use serde::Deserialize;

use crate::model::{untrusted::shown, wheel_name::normalize};

/// The `affected[].package.ecosystem` of packages from the Python package index.
pub const ECOSYSTEM: &str = "PyPI";

/// A record as published. Every field the evaluation does not need is left out, and unknown
/// fields are allowed: the schema grows, and an audit must not break when it does.
#[derive(Deserialize)]
struct RawRecord {
    id: String,
    modified: String,
    withdrawn: Option<String>,
    aliases: Option<Vec<String>>,
    summary: Option<String>,
    affected: Option<Vec<RawAffected>>,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    ranges: Option<Vec<RawRange>>,
    versions: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("not an OSV record: {0}")]
pub struct NotARecord(#[from] serde_json::Error);

/// The most versions, ranges and range events one affected package of a record may list.
pub const MAX_VERSIONS: usize = 10_000;
pub const MAX_RANGES: usize = 1_000;
pub const MAX_EVENTS: usize = 10_000;

/// What one record file gave, after the packages nobody asked for were dropped.
#[derive(Debug)]
pub struct Record {
    pub id: String,
    /// `modified`, in seconds since the Unix epoch; `None` when it is not an RFC 3339 time.
    pub modified: Option<i64>,
    pub outcome: Outcome,
    /// Ranges that only a Git history can answer (`GIT`), not evaluated.
    pub git_ranges: usize,
    /// What was skipped inside the record and why, printable (untrusted text escaped).
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub enum Outcome {
    /// It names at least one wanted package of the ecosystem.
    Relevant(Advisory),
    /// `withdrawn` is set: the advisory no longer stands.
    Withdrawn,
    /// It names no wanted package of the ecosystem.
    Irrelevant,
}

/// An advisory reduced to what matching needs: the wanted packages with their parsed ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub packages: Vec<AffectedPackage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AffectedPackage {
    /// PEP 503 normalized.
    pub name: String,
    /// The explicit `versions` list, as written and, where it parses, as a version.
    pub versions: Vec<(String, Option<Version>)>,
    pub ranges: Vec<Range>,
}

/// One `ECOSYSTEM` (or `SEMVER`) range, its events sorted as the spec's evaluation sorts them.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// `None`: the special `"0"`, before every version.
    Introduced(Option<Version>),
    Fixed(Version),
    LastAffected(Version),
    /// `None`: a limit holding `*`, infinity.
    Limit(Option<Version>),
}

impl Event {
    /// The version the event sits at, `None` for `"0"` (the least) or `*` (the greatest).
    fn position(&self) -> (Ordering, Option<&Version>) {
        match self {
            Event::Introduced(version) => (Ordering::Less, version.as_ref()),
            Event::Fixed(version) | Event::LastAffected(version) => (Ordering::Equal, Some(version)),
            Event::Limit(version) => (Ordering::Greater, version.as_ref()),
        }
    }
}

/// Events in version order, `"0"` first and `*` last; at one version an introduction comes
/// before a fix, so that `introduced X, fixed X` stays the empty range it says.
fn event_order(left: &Event, right: &Event) -> Ordering {
    let key = |event: &Event| match event.position() {
        (Ordering::Less, None) => (0, None),
        (Ordering::Greater, None) => (2, None),
        (_, version) => (1, version.cloned()),
    };
    let rank = |event: &Event| u8::from(!matches!(event, Event::Introduced(_)));
    key(left).cmp(&key(right)).then(rank(left).cmp(&rank(right)))
}

impl Range {
    /// The spec's `IncludedInRanges` for one range: before a limit, and vulnerable after walking
    /// the sorted events.
    pub fn includes(&self, version: &Version) -> bool {
        let limits: Vec<&Option<Version>> = self
            .events
            .iter()
            .filter_map(|event| if let Event::Limit(limit) = event { Some(limit) } else { None })
            .collect();
        let before_limits =
            limits.is_empty() || limits.iter().any(|limit| limit.as_ref().is_none_or(|limit| version < limit));
        if !before_limits {
            return false;
        }
        let mut vulnerable = false;
        for event in &self.events {
            match event {
                Event::Introduced(introduced) if introduced.as_ref().is_none_or(|introduced| version >= introduced) => {
                    vulnerable = true
                }
                Event::Fixed(fixed) if version >= fixed => vulnerable = false,
                Event::LastAffected(last) if version > last => vulnerable = false,
                _ => {}
            }
        }
        vulnerable
    }

    /// The first fix above `version`: where the stretch of the range holding it ends. Later fixes
    /// end other stretches (other branches of the package), so they are not named.
    fn next_fix(&self, version: &Version) -> Option<&Version> {
        self.events.iter().find_map(|event| match event {
            Event::Fixed(fixed) if fixed > version => Some(fixed),
            _ => None,
        })
    }
}

/// How an advisory affects one version of one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// For each range that matched (each range, when only the `versions` list did), its first
    /// fixed version above the affected one; lowest first.
    pub fixed: Vec<String>,
}

impl Advisory {
    /// The versions and range events kept of it: what it holds in memory, in items.
    pub fn kept_items(&self) -> usize {
        self.packages
            .iter()
            .map(|package| {
                package.versions.len() + package.ranges.iter().map(|range| range.events.len()).sum::<usize>()
            })
            .sum()
    }

    /// The spec's `IsVulnerable`: `Some` when `version` of `name` is in a `versions` list or a
    /// range of an entry for that package. A version that is not PEP 440 can still match a list.
    pub fn matches(&self, name: &str, version: &str) -> Option<Match> {
        let name = normalize(name);
        let parsed = Version::from_str(version).ok();
        let mut fixed: Vec<&Version> = Vec::new();
        let mut affected = false;
        for package in self.packages.iter().filter(|package| package.name == name) {
            let listed = package.versions.iter().any(|(text, listed)| match (listed, &parsed) {
                (Some(listed), Some(parsed)) => listed == parsed,
                _ => text == version,
            });
            let Some(parsed) = &parsed else {
                affected |= listed;
                continue;
            };
            let matching: Vec<&Range> = package.ranges.iter().filter(|range| range.includes(parsed)).collect();
            if !listed && matching.is_empty() {
                continue;
            }
            affected = true;
            let ranges = if matching.is_empty() { package.ranges.iter().collect() } else { matching };
            fixed.extend(ranges.into_iter().filter_map(|range| range.next_fix(parsed)));
        }
        fixed.sort();
        fixed.dedup();
        affected.then(|| Match { fixed: fixed.into_iter().map(ToString::to_string).collect() })
    }
}

/// Reads one record. `wanted` says, of a PEP 503 normalized name, whether the wheelhouse holds
/// that package: entries for any other package are dropped here, so that memory holds only the
/// advisories that matter. A range whose versions do not parse is skipped with a warning rather
/// than read in part: a dropped `fixed` would widen it, a dropped `introduced` narrow it.
pub fn read_record(bytes: &[u8], wanted: &dyn Fn(&str) -> bool) -> Result<Record, NotARecord> {
    let raw: RawRecord = serde_json::from_slice(bytes)?;
    let id = raw.id;
    let mut warnings = Vec::new();
    let modified = parse_timestamp(&raw.modified);
    if modified.is_none() {
        warnings.push(format!("{}: `modified` {} is not an RFC 3339 time", shown(&id), shown(&raw.modified)));
    }
    let mut record = Record { id: id.clone(), modified, outcome: Outcome::Irrelevant, git_ranges: 0, warnings };
    if raw.withdrawn.is_some() {
        record.outcome = Outcome::Withdrawn;
        return Ok(record);
    }
    let mut packages = Vec::new();
    for affected in raw.affected.into_iter().flatten() {
        let Some(package) = affected.package else { continue };
        let name = normalize(&package.name);
        if package.ecosystem != ECOSYSTEM || !wanted(&name) {
            continue;
        }
        // What is kept of a record lives until the report: bounded per package, so that memory
        // follows the wheelhouse, not what a hostile record lists. Real records list hundreds.
        let n_versions = affected.versions.as_ref().map_or(0, Vec::len);
        let n_ranges = affected.ranges.as_ref().map_or(0, Vec::len);
        let n_events: usize = affected.ranges.iter().flatten().map(|range| range.events.len()).sum();
        if n_versions > MAX_VERSIONS || n_ranges > MAX_RANGES || n_events > MAX_EVENTS {
            record.warnings.push(format!(
                "{}: the entry of {} skipped: {n_versions} versions, {n_ranges} ranges and {n_events} events, over the {MAX_VERSIONS}, {MAX_RANGES} and {MAX_EVENTS} an entry may have",
                shown(&id),
                shown(&name)
            ));
            continue;
        }
        let versions = affected
            .versions
            .into_iter()
            .flatten()
            .map(|text| {
                let parsed = Version::from_str(&text).ok();
                (text, parsed)
            })
            .collect();
        let mut ranges = Vec::new();
        for range in affected.ranges.into_iter().flatten() {
            match range.kind.as_str() {
                // SEMVER and PEP 440 agree on every version both can spell; one that PEP 440
                // cannot read is skipped below like any other.
                "ECOSYSTEM" | "SEMVER" => match parse_range(&range.events) {
                    Ok(parsed) => ranges.push(parsed),
                    Err(problem) => {
                        record.warnings.push(format!("{}: a range of {} skipped: {problem}", shown(&id), shown(&name)))
                    }
                },
                "GIT" => record.git_ranges += 1,
                other => record.warnings.push(format!(
                    "{}: a range of {} skipped: unknown type {}",
                    shown(&id),
                    shown(&name),
                    shown(other)
                )),
            }
        }
        packages.push(AffectedPackage { name, versions, ranges });
    }
    if !packages.is_empty() {
        record.outcome = Outcome::Relevant(Advisory {
            id,
            aliases: raw.aliases.unwrap_or_default(),
            summary: raw.summary.unwrap_or_default(),
            packages,
        });
    }
    Ok(record)
}

fn parse_range(raw: &[RawEvent]) -> Result<Range, String> {
    let version = |text: &str| Version::from_str(text).map_err(|_| format!("{} is not a PEP 440 version", shown(text)));
    let mut events = Vec::new();
    for event in raw {
        let parsed = match (&event.introduced, &event.fixed, &event.last_affected, &event.limit) {
            (Some(introduced), None, None, None) if introduced == "0" => Event::Introduced(None),
            (Some(introduced), None, None, None) => Event::Introduced(Some(version(introduced)?)),
            (None, Some(fixed), None, None) => Event::Fixed(version(fixed)?),
            (None, None, Some(last), None) => Event::LastAffected(version(last)?),
            (None, None, None, Some(limit)) if limit.contains('*') => Event::Limit(None),
            (None, None, None, Some(limit)) => Event::Limit(Some(version(limit)?)),
            _ => return Err("an event must hold exactly one of introduced, fixed, last_affected, limit".to_owned()),
        };
        events.push(parsed);
    }
    if !events.iter().any(|event| matches!(event, Event::Introduced(_))) {
        return Err("it has no introduced event".to_owned());
    }
    events.sort_by(event_order);
    Ok(Range { events })
}

/// Seconds since the Unix epoch of an RFC 3339 date-time (`2024-05-01T12:00:00Z`, fractions and
/// offsets allowed), or `None`. Written here because one field does not warrant a date crate.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        digits.bytes().all(|byte| byte.is_ascii_digit()).then(|| digits.parse().ok()).flatten()
    };
    let bytes = text.as_bytes();
    let separators_ok = bytes.get(4) == Some(&b'-')
        && bytes.get(7) == Some(&b'-')
        && matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        && bytes.get(13) == Some(&b':')
        && bytes.get(16) == Some(&b':');
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 {
        return None;
    }
    // A leap second is read as the last second of its minute.
    let second = match second {
        0..=59 => second,
        60 => 59,
        _ => return None,
    };
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let (hours, minutes) = rest[1..].split_once(':')?;
            if hours.len() != 2 || minutes.len() != 2 {
                return None;
            }
            let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// `YYYY-MM-DD` of a time in seconds since the Unix epoch (UTC).
pub fn date(epoch_seconds: i64) -> String {
    let (year, month, day) = civil_from_days(epoch_seconds.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a time in seconds since the Unix epoch.
pub fn timestamp(epoch_seconds: i64) -> String {
    let seconds = epoch_seconds.rem_euclid(86_400);
    format!("{}T{:02}:{:02}:{:02}Z", date(epoch_seconds), seconds / 3600, seconds / 60 % 60, seconds % 60)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`] (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of one PyPI package with `affected` written by the test.
    fn record(affected: &str) -> String {
        format!(
            r#"{{"id": "GHSA-test", "modified": "2024-05-01T00:00:00Z", "aliases": ["CVE-2024-1"], "affected": [{affected}]}}"#
        )
    }

    fn advisory(affected: &str) -> Advisory {
        match read_record(record(affected).as_bytes(), &|_| true).unwrap().outcome {
            Outcome::Relevant(advisory) => advisory,
            other => panic!("{other:?}"),
        }
    }

    /// `events` (a JSON list) of one ECOSYSTEM range of `pkg`, and `version` of it: affected, and
    /// with these fixes, or not (`None`).
    fn check(events: &str, version: &str, expected: Option<&[&str]>) {
        let advisory = advisory(&format!(
            r#"{{"package": {{"ecosystem": "PyPI", "name": "pkg"}}, "ranges": [{{"type": "ECOSYSTEM", "events": {events}}}]}}"#
        ));
        let found = advisory.matches("pkg", version);
        let expected = expected.map(|fixed| Match { fixed: fixed.iter().map(|fix| (*fix).to_owned()).collect() });
        assert_eq!(found, expected, "{version} in {events}");
    }

    #[test]
    fn ranges_follow_the_spec_in_pep_440_order() {
        let zero_fixed = r#"[{"introduced": "0"}, {"fixed": "1.0.2"}]"#;
        check(zero_fixed, "0.0.1", Some(&["1.0.2"]));
        check(zero_fixed, "1.0.1", Some(&["1.0.2"]));
        check(zero_fixed, "1.0.2", None);
        check(zero_fixed, "1.0.2rc1", Some(&["1.0.2"]));
        check(zero_fixed, "1.0.2.post1", None);
        check(zero_fixed, "0.dev0", Some(&["1.0.2"]));
        check(r#"[{"introduced": "0"}]"#, "99", Some(&[]));
        let pairs = r#"[{"introduced": "1.0.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0.0"}, {"fixed": "3.2.5"}]"#;
        check(pairs, "0.9", None);
        check(pairs, "1.0", Some(&["1.0.2"]));
        check(pairs, "2.0", None);
        check(pairs, "3.1", Some(&["3.2.5"]));
        check(pairs, "3.2.5", None);
        let unsorted = r#"[{"fixed": "3.2.5"}, {"introduced": "3.0.0"}, {"fixed": "1.0.2"}, {"introduced": "1.0.0"}]"#;
        check(unsorted, "1.0.1", Some(&["1.0.2"]));
        check(unsorted, "3.0", Some(&["3.2.5"]));
        check(unsorted, "2.0", None);
        let last = r#"[{"introduced": "0"}, {"last_affected": "2.1.214"}]"#;
        check(last, "2.1.214", Some(&[]));
        check(last, "2.1.215.dev0", None);
        check(r#"[{"introduced": "1.0"}, {"fixed": "1.0"}]"#, "1.0", None);
        check(r#"[{"introduced": "1.0rc1"}, {"fixed": "1.0"}]"#, "1.0b2", None);
        check(r#"[{"introduced": "1.0rc1"}, {"fixed": "1.0"}]"#, "1.0rc2", Some(&["1.0"]));
        check(r#"[{"introduced": "1.0"}, {"fixed": "1.0.post1"}]"#, "1.0+local", Some(&["1.0.post1"]));
        check(r#"[{"introduced": "0"}, {"fixed": "2.0"}]"#, "1!0.5", None);
        check(r#"[{"introduced": "1!0"}, {"fixed": "1!1.0"}]"#, "1!0.5", Some(&["1!1.0"]));
        check(r#"[{"introduced": "1.0"}, {"limit": "2.0"}]"#, "1.5", Some(&[]));
        check(r#"[{"introduced": "1.0"}, {"limit": "2.0"}]"#, "2.0", None);
        check(r#"[{"introduced": "1.0"}, {"limit": "*"}]"#, "9.0", Some(&[]));
        check(r#"[{"introduced": "0"}, {"fixed": "1.0"}]"#, "not a version", None);
    }

    #[test]
    fn versions_lists_and_names_match_as_pep_440_and_pep_503_say() {
        let listed = advisory(
            r#"{"package": {"ecosystem": "PyPI", "name": "Zope.Interface_X"}, "versions": ["1.0", "2.0-legacy"],
               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "3.0"}, {"fixed": "3.1"}]}]}"#,
        );
        assert_eq!(listed.packages[0].name, "zope-interface-x");
        let fixes = |fixed: &[&str]| Some(Match { fixed: fixed.iter().map(|fix| (*fix).to_owned()).collect() });
        assert_eq!(listed.matches("zope-interface-x", "1.0.0"), fixes(&["3.1"]));
        assert_eq!(listed.matches("ZOPE_interface.x", "1.0"), fixes(&["3.1"]));
        assert_eq!(listed.matches("zope-interface-x", "2.0-legacy"), fixes(&[]));
        assert_eq!(listed.matches("zope-interface-x", "3.0.1"), fixes(&["3.1"]));
        assert_eq!(listed.matches("zope-interface-x", "1.1"), None);
        assert_eq!(listed.matches("zope-interface", "1.0"), None);
    }

    #[test]
    fn records_are_filtered_and_bad_parts_skipped_with_warnings() {
        let read = |text: &str, wanted: &[&str]| read_record(text.as_bytes(), &|name| wanted.contains(&name)).unwrap();
        let other_ecosystem = r#"{"id": "RUSTSEC-1", "modified": "2024-05-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "crates.io", "name": "pkg"}, "versions": ["1.0"]}]}"#;
        assert!(matches!(read(other_ecosystem, &["pkg"]).outcome, Outcome::Irrelevant));
        assert!(matches!(
            read(&record(r#"{"package": {"ecosystem": "PyPI", "name": "pkg"}}"#), &["other"]).outcome,
            Outcome::Irrelevant
        ));
        let withdrawn = r#"{"id": "GHSA-w", "modified": "2024-05-01T00:00:00Z", "withdrawn": "2024-05-02T00:00:00Z"}"#;
        assert!(matches!(read(withdrawn, &["pkg"]).outcome, Outcome::Withdrawn));

        let mixed = read(
            &record(
                r#"{"package": {"ecosystem": "PyPI", "name": "pkg"}, "ranges": [
                    {"type": "GIT", "repo": "https://example.invalid/r", "events": [{"introduced": "0"}]},
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not\u001b[2J a version"}]},
                    {"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]},
                    {"type": "ECOSYSTEM", "events": [{"introduced": "1.0", "fixed": "2.0"}]},
                    {"type": "ECOSYSTEM", "events": [{"introduced": "5.0"}]}]}"#,
            ),
            &["pkg"],
        );
        assert_eq!(mixed.git_ranges, 1);
        assert_eq!(
            mixed.warnings,
            [
                "GHSA-test: a range of pkg skipped: not\\x1b[2J a version is not a PEP 440 version",
                "GHSA-test: a range of pkg skipped: it has no introduced event",
                "GHSA-test: a range of pkg skipped: an event must hold exactly one of introduced, fixed, last_affected, limit",
            ]
        );
        let Outcome::Relevant(advisory) = mixed.outcome else { panic!("not relevant") };
        assert_eq!(advisory.aliases, ["CVE-2024-1"]);
        assert_eq!(advisory.matches("pkg", "0.5"), None, "the skipped range is not read in part");
        assert!(advisory.matches("pkg", "5.0").is_some());

        let bad_time = read(r#"{"id": "PYSEC-1", "modified": "yesterday"}"#, &[]);
        assert_eq!((bad_time.modified, bad_time.warnings.len()), (None, 1));
        for broken in ["", "[]", "{\"id\": 1, \"modified\": \"x\"}", "{\"modified\": \"2024-05-01T00:00:00Z\"}"] {
            assert!(read_record(broken.as_bytes(), &|_| true).is_err(), "{broken}");
        }
    }

    #[test]
    fn timestamps_are_rfc_3339() {
        let check = |text: &str, expected: Option<i64>| assert_eq!(parse_timestamp(text), expected, "{text}");
        check("1970-01-01T00:00:00Z", Some(0));
        check("2023-11-14T22:13:20Z", Some(1_700_000_000));
        check("2023-11-14T22:13:20.123456Z", Some(1_700_000_000));
        check("2023-11-15T00:13:20+02:00", Some(1_700_000_000));
        check("2023-11-14t20:13:20-02:00", Some(1_700_000_000));
        check("2024-02-29T00:00:00Z", Some(1_709_164_800));
        check("2023-02-29T00:00:00Z", None);
        check("2023-13-01T00:00:00Z", None);
        check("2023-11-14T22:13:20", None);
        check("2023-11-14T22:13:20.Z", None);
        check("2023-11-14", None);
        check("２023-11-14T22:13:20Z", None);
        assert_eq!(timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(date(1_709_164_800), "2024-02-29");
        assert_eq!(date(-1), "1969-12-31");
    }
}
