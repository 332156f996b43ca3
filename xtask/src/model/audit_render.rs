//! The audit report as text, JSON, SARIF 2.1.0 and a CycloneDX 1.6 VEX document.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::model::{
    audit::{Finding, Report},
    osv,
    sbom::purl,
    untrusted::shown,
};

/// What `audit` prints or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
    CyclonedxVex,
}

impl Report<'_> {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.text(),
            Format::Json => pretty(&self.json()),
            Format::Sarif => pretty(&self.sarif()),
            Format::CyclonedxVex => pretty(&self.cyclonedx_vex()),
        }
    }

    fn text(&self) -> String {
        let mut text = format!("{}\n", self.database.line(self.now));
        let mut last_target = None;
        for finding in self.findings {
            if last_target != Some(&finding.target) {
                text.push_str(&format!("{}:\n", finding.target));
                last_target = Some(&finding.target);
            }
            let aliases =
                if finding.aliases.is_empty() { String::new() } else { format!(" ({})", finding.aliases.join(", ")) };
            text.push_str(&format!("  {} {}: {}{aliases}", finding.package, finding.version, finding.id));
            if !finding.summary.is_empty() {
                text.push_str(&format!(": {}", finding.summary));
            }
            text.push('\n');
            let fixed = match finding.fixed_versions.as_slice() {
                [] => "no fixed version known".to_owned(),
                versions => format!("fixed in {}", versions.join(", ")),
            };
            text.push_str(&format!("    {fixed}"));
            if let Some(held) = &finding.fixed_in_wheelhouse {
                text.push_str(&format!("; the wheelhouse also holds {} {held} for this target", finding.package));
            }
            text.push('\n');
            if let Some(ignored) = &finding.ignored {
                let reason = ignored.reason.as_deref().map(shown).unwrap_or_else(|| "--ignore".to_owned());
                text.push_str(&format!("    ignored ({}): {reason}\n", ignored.by));
            }
        }
        let (counted, ignored) = self.counts();
        let scope = format!("{} package versions on {} targets", self.packages, self.targets);
        text.push_str(&match (counted, ignored) {
            (0, 0) => format!("no known vulnerabilities in {scope}\n"),
            (counted, 0) => format!("{} in {scope}\n", plural(counted, "finding")),
            (counted, ignored) => format!("{} ({ignored} more ignored) in {scope}\n", plural(counted, "finding")),
        });
        text
    }

    fn json(&self) -> Value {
        let (counted, ignored) = self.counts();
        json!({
            "database": {
                "records": self.database.records,
                "relevant": self.database.relevant,
                "withdrawn": self.database.withdrawn,
                "git_ranges_not_evaluated": self.database.git_ranges,
                "warnings": self.database.warnings,
                "newest_modified": self.database.newest_modified.map(osv::timestamp),
                "age_days": self.database.age_seconds(self.now).map(|age| age / 86_400),
            },
            "packages": self.packages,
            "targets": self.targets,
            "findings": self.findings,
            "counts": { "findings": counted, "ignored": ignored },
        })
    }

    /// SARIF 2.1.0: one rule per advisory, one result per finding, an ignored one with an
    /// external suppression carrying its reason, each located at the manifest and named by
    /// target and package.
    fn sarif(&self) -> Value {
        let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut rules = Vec::new();
        for finding in self.findings {
            if !rule_index.contains_key(finding.id.as_str()) {
                rule_index.insert(&finding.id, rules.len());
                rules.push(json!({
                    "id": finding.id,
                    "shortDescription": { "text": if finding.summary.is_empty() { &finding.id } else { &finding.summary } },
                    "properties": { "aliases": finding.aliases },
                }));
            }
        }
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|finding| {
                let mut result = json!({
                    "ruleId": finding.id,
                    "ruleIndex": rule_index[finding.id.as_str()],
                    "level": "error",
                    "message": { "text": message(finding) },
                    "locations": [{
                        "physicalLocation": { "artifactLocation": { "uri": self.manifest } },
                        "logicalLocations": [{
                            "name": format!("{}=={}", finding.package, finding.version),
                            "fullyQualifiedName": format!("{}/{}=={}", finding.target, finding.package, finding.version),
                            "kind": "module",
                        }],
                    }],
                    "partialFingerprints": {
                        "wheelgapFinding/v1": format!("{}/{}/{}/{}", finding.target, finding.package, finding.version, finding.id),
                    },
                    "properties": {
                        "target": finding.target,
                        "package": finding.package,
                        "version": finding.version,
                        "fixedVersions": finding.fixed_versions,
                        "fixedInWheelhouse": finding.fixed_in_wheelhouse,
                    },
                });
                if let Some(ignored) = &finding.ignored {
                    result["suppressions"] = json!([{
                        "kind": "external",
                        "justification": ignored.reason.clone().unwrap_or_else(|| format!("--ignore {}", ignored.by)),
                    }]);
                }
                result
            })
            .collect();
        json!({
            "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": { "driver": { "name": "wheelgap", "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
                "results": results,
            }],
        })
    }

    /// CycloneDX 1.6 with `vulnerabilities`: one per advisory, `affects` naming components by the
    /// purls the SBOM uses, the targets as properties; an ignored advisory carries an analysis
    /// with the reason. Its state is `exploitable` with the response `will_not_fix`: the versions
    /// are in the affected range, and the project chose to accept them, which is all this tool
    /// knows (`not_affected` would claim an analysis nobody recorded).
    fn cyclonedx_vex(&self) -> Value {
        let components: BTreeSet<(&str, &str)> =
            self.findings.iter().map(|finding| (finding.package.as_str(), finding.version.as_str())).collect();
        let mut by_id: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
        for finding in self.findings {
            by_id.entry(&finding.id).or_default().push(finding);
        }
        let vulnerabilities: Vec<Value> = by_id
            .iter()
            .map(|(id, findings)| {
                let first = findings[0];
                let affects: BTreeSet<String> =
                    findings.iter().map(|finding| purl(&finding.package, &finding.version)).collect();
                let targets: BTreeSet<&str> = findings.iter().map(|finding| finding.target.as_str()).collect();
                let fixed: BTreeSet<&str> =
                    findings.iter().flat_map(|finding| &finding.fixed_versions).map(String::as_str).collect();
                let mut vulnerability = json!({
                    "bom-ref": format!("vulnerability:{id}"),
                    "id": id,
                    "source": { "name": "OSV" },
                    "references": first.aliases.iter().map(|alias| json!({
                        "id": alias,
                        "source": { "name": alias.split('-').next().unwrap_or(alias) },
                    })).collect::<Vec<_>>(),
                    "description": first.summary,
                    "affects": affects.iter().map(|reference| json!({ "ref": reference })).collect::<Vec<_>>(),
                    "properties": targets.iter().map(|target| json!({ "name": "xtask:target", "value": target })).collect::<Vec<_>>(),
                });
                if !fixed.is_empty() {
                    vulnerability["recommendation"] =
                        json!(format!("upgrade to {}", fixed.into_iter().collect::<Vec<_>>().join(" or ")));
                }
                if let Some(ignored) = &first.ignored {
                    vulnerability["analysis"] = json!({
                        "state": "exploitable",
                        "response": ["will_not_fix"],
                        "detail": format!("ignored ({}): {}", ignored.by, ignored.reason.as_deref().unwrap_or("--ignore")),
                    });
                }
                vulnerability
            })
            .collect();
        json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "version": 1,
            "metadata": {
                "tools": { "components": [{ "type": "application", "name": "wheelgap", "version": env!("CARGO_PKG_VERSION") }] },
            },
            "components": components.iter().map(|(name, version)| json!({
                "type": "library",
                "bom-ref": purl(name, version),
                "name": name,
                "version": version,
                "purl": purl(name, version),
            })).collect::<Vec<_>>(),
            "vulnerabilities": vulnerabilities,
        })
    }
}

/// One line saying what is affected and what fixes it.
fn message(finding: &Finding) -> String {
    let mut text =
        format!("{} {} on {} is affected by {}", finding.package, finding.version, finding.target, finding.id);
    if !finding.summary.is_empty() {
        text.push_str(&format!(": {}", finding.summary));
    }
    match finding.fixed_versions.as_slice() {
        [] => text.push_str("; no fixed version known"),
        versions => text.push_str(&format!("; fixed in {}", versions.join(", "))),
    }
    if let Some(held) = &finding.fixed_in_wheelhouse {
        text.push_str(&format!("; the wheelhouse also holds {held} for this target"));
    }
    text
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn pretty(value: &Value) -> String {
    // A `Value` always serializes; the fallback only keeps `unwrap` out.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::audit::{DatabaseSummary, Ignored};

    fn finding(target: &str, package: &str, version: &str, id: &str, summary: &str) -> Finding {
        Finding {
            target: target.to_owned(),
            package: package.to_owned(),
            version: version.to_owned(),
            id: id.to_owned(),
            aliases: vec![format!("CVE-{id}")],
            summary: summary.to_owned(),
            fixed_versions: vec!["2.0".to_owned()],
            fixed_in_wheelhouse: None,
            ignored: None,
        }
    }

    /// A fixed-in-the-wheelhouse finding on one target, an ignored one with an escaped summary
    /// (as `audit::findings` leaves it) on the other.
    fn sample_findings() -> Vec<Finding> {
        let mut fixed = finding("amd64", "demo-pkg", "1.0", "GHSA-1", "bad demo-pkg");
        fixed.fixed_in_wheelhouse = Some("2.0".to_owned());
        let mut ignored = finding("arm64", "evil", "1.0", "GHSA-2", &shown("line\u{1b}[2J\nfake"));
        ignored.ignored = Some(Ignored { by: "GHSA-2".to_owned(), reason: Some("accepted".to_owned()) });
        vec![fixed, ignored]
    }

    fn report_of(found: &[Finding], render: impl Fn(&Report<'_>) -> String) -> String {
        let database = DatabaseSummary {
            records: 3,
            relevant: 2,
            withdrawn: 1,
            newest_modified: Some(1_700_000_000),
            ..DatabaseSummary::default()
        };
        let report = Report {
            findings: found,
            database: &database,
            now: 1_700_000_000 + 3 * 86_400 + 5,
            packages: 4,
            targets: 2,
            manifest: "wheelhouse/manifest.json",
        };
        render(&report)
    }

    #[test]
    fn the_text_report_names_fixes_and_escapes_record_text() {
        assert_eq!(
            report_of(&sample_findings(), |report| report.render(Format::Text)),
            "advisory database: 3 records, newest modified 2023-11-14 (3 days old), 1 withdrawn\n\
             amd64:\n  demo-pkg 1.0: GHSA-1 (CVE-GHSA-1): bad demo-pkg\n    fixed in 2.0; the wheelhouse also holds demo-pkg 2.0 for this target\n\
             arm64:\n  evil 1.0: GHSA-2 (CVE-GHSA-2): line\\x1b[2J\\nfake\n    fixed in 2.0\n    ignored (GHSA-2): accepted\n\
             1 finding (1 more ignored) in 4 package versions on 2 targets\n"
        );
        assert!(report_of(&[], |report| report.render(Format::Text))
            .ends_with("\nno known vulnerabilities in 4 package versions on 2 targets\n"));
    }

    #[test]
    fn json_sarif_and_vex_carry_the_same_findings() {
        let found = sample_findings();
        let parse =
            |format| -> Value { serde_json::from_str(&report_of(&found, |report| report.render(format))).unwrap() };
        let json = parse(Format::Json);
        assert_eq!(json["counts"], json!({"findings": 1, "ignored": 1}));
        assert_eq!(json["database"]["age_days"], 3);
        assert_eq!(json["database"]["newest_modified"], "2023-11-14T22:13:20Z");
        assert_eq!(json["findings"][0]["fixed_in_wheelhouse"], "2.0");
        assert_eq!(json["findings"][1]["ignored"], json!({"by": "GHSA-2", "reason": "accepted"}));

        let sarif = parse(Format::Sarif);
        assert_eq!(sarif["version"], "2.1.0");
        let run = &sarif["runs"][0];
        assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 2);
        assert_eq!(run["results"][0]["ruleId"], "GHSA-1");
        assert_eq!(
            run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "wheelhouse/manifest.json"
        );
        assert_eq!(
            run["results"][0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            "amd64/demo-pkg==1.0"
        );
        assert!(run["results"][0].get("suppressions").is_none());
        assert_eq!(run["results"][1]["suppressions"], json!([{"kind": "external", "justification": "accepted"}]));

        let vex = parse(Format::CyclonedxVex);
        assert_eq!((vex["bomFormat"].as_str(), vex["specVersion"].as_str()), (Some("CycloneDX"), Some("1.6")));
        let refs: Vec<&str> =
            vex["components"].as_array().unwrap().iter().map(|c| c["bom-ref"].as_str().unwrap()).collect();
        assert_eq!(refs, ["pkg:pypi/demo-pkg@1.0", "pkg:pypi/evil@1.0"]);
        let vulnerabilities = vex["vulnerabilities"].as_array().unwrap();
        assert_eq!(vulnerabilities[0]["affects"], json!([{"ref": "pkg:pypi/demo-pkg@1.0"}]));
        assert_eq!(vulnerabilities[0]["references"], json!([{"id": "CVE-GHSA-1", "source": {"name": "CVE"}}]));
        assert_eq!(vulnerabilities[0]["recommendation"], "upgrade to 2.0");
        assert!(vulnerabilities[0].get("analysis").is_none());
        assert_eq!(vulnerabilities[1]["analysis"]["detail"], "ignored (GHSA-2): accepted");
    }
}
