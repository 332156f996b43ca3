//! The dependencies a `pyproject.toml` declares, as requirement lines to resolve: `[project]`
//! `dependencies`, the optional dependencies of the extras asked for, and the PEP 735
//! `[dependency-groups]` asked for (with their `{include-group = "..."}` entries). The project
//! itself is not built: a wheelhouse holds its dependencies.

use std::collections::BTreeMap;

use pep508_rs::Requirement;
use serde::Deserialize;

use crate::model::{untrusted::shown, wheel_name::normalize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PyprojectError {
    #[error("{origin} is not a valid pyproject.toml: {message}")]
    Toml { origin: String, message: String },
    #[error(
        "{origin} has no [project] table with dependencies, and no [dependency-groups]\nhint: a wheelhouse is made \
         of a project's declared dependencies (PEP 621 `[project].dependencies`, PEP 735 groups)"
    )]
    Nothing { origin: String },
    #[error("{origin}: `[project].{field}` is dynamic (filled by the build backend), which this tool cannot read\nhint: lock the project (`uv lock`) and pass uv.lock, or list the dependencies in a requirements file")]
    Dynamic { origin: String, field: String },
    #[error("{origin} has no extra `{extra}`; it has: {known}")]
    UnknownExtra { origin: String, extra: String, known: String },
    #[error("{origin} has no dependency group `{group}`; it has: {known}")]
    UnknownGroup { origin: String, group: String, known: String },
    #[error("{origin}: dependency group `{group}` includes itself (through {chain})")]
    GroupCycle { origin: String, group: String, chain: String },
    #[error("{origin}: `{requirement}` in {place} is not a valid requirement: {message}")]
    Requirement { origin: String, place: String, requirement: String, message: String },
    #[error("{origin}: `{requirement}` in {place} names the project itself with a marker, which this tool cannot expand\nhint: list the extra's requirements there, or drop the marker")]
    SelfWithMarker { origin: String, place: String, requirement: String },
    #[error("{origin}: extra `{extra}` includes itself (through {chain})")]
    ExtraCycle { origin: String, extra: String, chain: String },
    #[error("{origin} declares its dependencies under [tool.poetry], which this tool does not read\nhint: lock the project and pass the lock (`poetry export` or `uv export --format pylock.toml`), or list them under [project].dependencies")]
    Poetry { origin: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Pyproject {
    project: Option<Project>,
    #[serde(default)]
    dependency_groups: BTreeMap<String, Vec<GroupEntry>>,
    #[serde(default)]
    tool: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Project {
    name: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    dynamic: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum GroupEntry {
    Requirement(String),
    Include {
        #[serde(rename = "include-group")]
        include_group: String,
    },
}

/// The requirement lines of `text` (a `pyproject.toml`) with `extras` and `groups` selected, in
/// the file's order, each checked as PEP 508. `origin` names the file in errors.
pub fn requirement_lines(
    text: &str,
    origin: &str,
    extras: &[String],
    groups: &[String],
) -> Result<Vec<String>, PyprojectError> {
    let pyproject: Pyproject = toml::from_str(text)
        .map_err(|error| PyprojectError::Toml { origin: origin.to_owned(), message: error.message().to_owned() })?;
    if pyproject.project.is_none() && pyproject.dependency_groups.is_empty() {
        return Err(PyprojectError::Nothing { origin: origin.to_owned() });
    }
    let poetry = pyproject.tool.get("poetry").and_then(toml::Value::as_table);
    let declared_by_poetry = poetry.is_some_and(|poetry| {
        ["dependencies", "group"]
            .iter()
            .any(|key| poetry.get(*key).is_some_and(|value| value.as_table().is_some_and(|table| !table.is_empty())))
    });
    let mut lines = Vec::new();
    if let Some(project) = &pyproject.project {
        let dynamic = |field: &str| project.dynamic.iter().any(|entry| entry == field);
        for (field, applies) in [("dependencies", true), ("optional-dependencies", !extras.is_empty())] {
            if applies && dynamic(field) {
                return Err(PyprojectError::Dynamic { origin: origin.to_owned(), field: field.to_owned() });
            }
        }
        if project.dependencies.is_empty() && project.optional_dependencies.is_empty() && declared_by_poetry {
            return Err(PyprojectError::Poetry { origin: origin.to_owned() });
        }
        // PEP 685: extra names compare normalized.
        let optional: BTreeMap<String, &Vec<String>> =
            project.optional_dependencies.iter().map(|(name, list)| (normalize(name), list)).collect();
        let expand = Expand { origin, own_name: project.name.as_deref().map(normalize), optional: &optional };
        expand.lines(&project.dependencies, "[project].dependencies", &mut Vec::new(), &mut lines)?;
        for extra in extras {
            expand.extra(extra, &mut Vec::new(), &mut lines)?;
        }
        let groups_by_name: BTreeMap<String, &Vec<GroupEntry>> =
            pyproject.dependency_groups.iter().map(|(name, entries)| (normalize(name), entries)).collect();
        for group in groups {
            group_lines(&expand, &groups_by_name, group, &mut Vec::new(), &mut lines)?;
        }
    } else {
        if let Some(extra) = extras.first() {
            return Err(PyprojectError::UnknownExtra {
                origin: origin.to_owned(),
                extra: extra.clone(),
                known: known(std::iter::empty::<&String>()),
            });
        }
        let optional = BTreeMap::new();
        let expand = Expand { origin, own_name: None, optional: &optional };
        let groups_by_name: BTreeMap<String, &Vec<GroupEntry>> =
            pyproject.dependency_groups.iter().map(|(name, entries)| (normalize(name), entries)).collect();
        for group in groups {
            group_lines(&expand, &groups_by_name, group, &mut Vec::new(), &mut lines)?;
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    lines.retain(|line| seen.insert(line.clone()));
    Ok(lines)
}

/// Requirement lines with the project's own extras expanded in place: `app[cpu,gui]` in an extra
/// of `app` means the lines of those extras; handed to pip, it would fetch a package named
/// `app` from the index.
struct Expand<'a> {
    origin: &'a str,
    own_name: Option<String>,
    optional: &'a BTreeMap<String, &'a Vec<String>>,
}

impl Expand<'_> {
    fn extra(&self, extra: &str, chain: &mut Vec<String>, lines: &mut Vec<String>) -> Result<(), PyprojectError> {
        let name = normalize(extra);
        if chain.contains(&name) {
            chain.push(name.clone());
            return Err(PyprojectError::ExtraCycle {
                origin: self.origin.to_owned(),
                extra: name,
                chain: chain.join(" -> "),
            });
        }
        let list = self.optional.get(&name).ok_or_else(|| PyprojectError::UnknownExtra {
            origin: self.origin.to_owned(),
            extra: extra.to_owned(),
            known: known(self.optional.keys()),
        })?;
        chain.push(name.clone());
        self.lines(list, &format!("extra `{name}`"), chain, lines)?;
        chain.pop();
        Ok(())
    }

    fn lines(
        &self,
        list: &[String],
        place: &str,
        chain: &mut Vec<String>,
        lines: &mut Vec<String>,
    ) -> Result<(), PyprojectError> {
        for line in list {
            let requirement = checked(line, self.origin, place)?;
            if Some(requirement.name.to_string()) != self.own_name {
                lines.push(line.trim().to_owned());
                continue;
            }
            if !requirement.marker.is_true() {
                return Err(PyprojectError::SelfWithMarker {
                    origin: self.origin.to_owned(),
                    place: place.to_owned(),
                    requirement: line.clone(),
                });
            }
            for extra in &requirement.extras {
                self.extra(extra.as_ref(), chain, lines)?;
            }
        }
        Ok(())
    }
}

/// A group's requirements, its included groups' in place (PEP 735).
fn group_lines(
    expand: &Expand<'_>,
    groups: &BTreeMap<String, &Vec<GroupEntry>>,
    group: &str,
    chain: &mut Vec<String>,
    lines: &mut Vec<String>,
) -> Result<(), PyprojectError> {
    let origin = expand.origin;
    let name = normalize(group);
    if chain.contains(&name) {
        chain.push(name.clone());
        return Err(PyprojectError::GroupCycle { origin: origin.to_owned(), group: name, chain: chain.join(" -> ") });
    }
    let entries = groups.get(&name).ok_or_else(|| PyprojectError::UnknownGroup {
        origin: origin.to_owned(),
        group: group.to_owned(),
        known: known(groups.keys()),
    })?;
    chain.push(name.clone());
    for entry in entries.iter() {
        match entry {
            GroupEntry::Requirement(line) => expand.lines(
                std::slice::from_ref(line),
                &format!("dependency group `{name}`"),
                &mut Vec::new(),
                lines,
            )?,
            GroupEntry::Include { include_group } => group_lines(expand, groups, include_group, chain, lines)?,
        }
    }
    chain.pop();
    Ok(())
}

/// One requirement, parsed as PEP 508; refused where pip would read it otherwise than PEP 508
/// does once it is in a requirements file: `${VAR}` (pip expands environment variables, which
/// would put the index's credentials into a URL of the file's choosing), ` #` (a comment) and a
/// trailing `\` (a continuation).
fn checked(line: &str, origin: &str, place: &str) -> Result<Requirement, PyprojectError> {
    let refuse = |message: &str| PyprojectError::Requirement {
        origin: origin.to_owned(),
        place: place.to_owned(),
        requirement: shown(line),
        message: message.to_owned(),
    };
    if line.contains("${") || line.contains(" #") || line.contains("\t#") || line.trim_end().ends_with('\\') {
        return Err(refuse("`${`, ` #` and a trailing `\\` mean something else to pip"));
    }
    line.parse::<Requirement>().map_err(|error| refuse(&error.message.to_string()))
}

/// Names a file offers (extras, groups), escaped, for an error: `a, b`, or `none`.
pub(crate) fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<String> = names.map(|name| shown(name)).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYPROJECT: &str = r#"
[project]
name = "App"
version = "1.0"
dependencies = ["purelib>=1", "compiled; python_version >= '3.11'"]

[project.optional-dependencies]
Fast_IO = ["withextra[fast]"]
all = ["App[fast-io]", "x86helper"]

[dependency-groups]
test = ["oldpy", {include-group = "lint"}]
lint = ["purelib"]
loop-a = [{include-group = "loop-b"}]
loop-b = [{include-group = "loop-a"}]
"#;

    fn lines(extras: &[&str], groups: &[&str]) -> Result<Vec<String>, PyprojectError> {
        let owned = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect::<Vec<_>>();
        requirement_lines(PYPROJECT, "pyproject.toml", &owned(extras), &owned(groups))
    }

    #[test]
    fn dependencies_then_extras_then_groups_with_their_includes_without_repeats() {
        assert_eq!(lines(&[], &[]).unwrap(), ["purelib>=1", "compiled; python_version >= '3.11'"]);
        assert_eq!(
            lines(&["fast-io"], &["test"]).unwrap(),
            ["purelib>=1", "compiled; python_version >= '3.11'", "withextra[fast]", "oldpy", "purelib"]
        );
    }

    #[test]
    fn the_project_named_in_its_own_extras_is_expanded_never_fetched() {
        assert_eq!(
            lines(&["all"], &[]).unwrap(),
            ["purelib>=1", "compiled; python_version >= '3.11'", "withextra[fast]", "x86helper"]
        );
        let looped = "[project]\nname = \"a\"\n[project.optional-dependencies]\nx = [\"a[y]\"]\ny = [\"a[x]\"]\n";
        let error = requirement_lines(looped, "p", &["x".to_owned()], &[]).unwrap_err();
        assert_eq!(error.to_string(), "p: extra `x` includes itself (through x -> y -> x)");
        let marked = "[project]\nname = \"a\"\n[project.optional-dependencies]\nx = [\"a[y]; python_version < '3.12'\"]\ny = []\n";
        assert!(matches!(
            requirement_lines(marked, "p", &["x".to_owned()], &[]),
            Err(PyprojectError::SelfWithMarker { .. })
        ));
    }

    #[test]
    fn what_pip_would_read_otherwise_is_refused() {
        for line in
            ["x @ https://host.invalid/${PIP_INDEX_URL}/x-1.0-py3-none-any.whl", "x ; os_name == 'a #b'", "x \\"]
        {
            let text = format!("[project]\nname = \"a\"\ndependencies = [{}]\n", toml::Value::String(line.to_owned()));
            let error = requirement_lines(&text, "p", &[], &[]).unwrap_err();
            assert!(matches!(error, PyprojectError::Requirement { .. }), "{line}: {error}");
        }
        let poetry = "[project]\nname = \"a\"\n[tool.poetry.dependencies]\nrequests = \"^2\"\n";
        assert!(matches!(requirement_lines(poetry, "p", &[], &[]), Err(PyprojectError::Poetry { .. })));
        let dynamic_extras = "[project]\nname = \"a\"\ndynamic = [\"optional-dependencies\"]\n";
        assert!(matches!(
            requirement_lines(dynamic_extras, "p", &["x".to_owned()], &[]),
            Err(PyprojectError::Dynamic { .. })
        ));
    }

    #[test]
    fn unknown_extras_and_groups_and_cycles_are_named() {
        assert_eq!(
            lines(&["slow"], &[]).unwrap_err().to_string(),
            "pyproject.toml has no extra `slow`; it has: all, fast-io"
        );
        assert_eq!(
            lines(&[], &["docs"]).unwrap_err().to_string(),
            "pyproject.toml has no dependency group `docs`; it has: lint, loop-a, loop-b, test"
        );
        assert_eq!(
            lines(&[], &["loop-a"]).unwrap_err().to_string(),
            "pyproject.toml: dependency group `loop-a` includes itself (through loop-a -> loop-b -> loop-a)"
        );
    }

    #[test]
    fn dynamic_dependencies_and_bad_requirements_are_refused() {
        let dynamic = "[project]\nname = \"a\"\ndynamic = [\"dependencies\"]\n";
        assert!(matches!(requirement_lines(dynamic, "p", &[], &[]), Err(PyprojectError::Dynamic { .. })));
        let bad = "[project]\nname = \"a\"\ndependencies = [\"not a requirement!!\"]\n";
        assert!(matches!(requirement_lines(bad, "p", &[], &[]), Err(PyprojectError::Requirement { .. })));
        assert!(matches!(requirement_lines("[tool.x]\n", "p", &[], &[]), Err(PyprojectError::Nothing { .. })));
    }
}
