//! The dependencies a `pyproject.toml` declares, as requirement lines to resolve: `[project]`
//! `dependencies`, the optional dependencies of the extras asked for, and the PEP 735
//! `[dependency-groups]` asked for (with their `{include-group = "..."}` entries). The project
//! itself is not built: a wheelhouse holds its dependencies.

use std::collections::BTreeMap;

use pep508_rs::Requirement;
use serde::Deserialize;

use crate::model::wheel_name::normalize;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PyprojectError {
    #[error("{origin} is not a valid pyproject.toml: {message}")]
    Toml { origin: String, message: String },
    #[error(
        "{origin} has no [project] table with dependencies, and no [dependency-groups]\nhint: a wheelhouse is made \
         of a project's declared dependencies (PEP 621 `[project].dependencies`, PEP 735 groups)"
    )]
    Nothing { origin: String },
    #[error("{origin}: `[project].dependencies` is dynamic (filled by the build backend), which this tool cannot read\nhint: lock the project (`uv lock`) and pass uv.lock, or list the dependencies in a requirements file")]
    Dynamic { origin: String },
    #[error("{origin} has no extra `{extra}`; it has: {known}")]
    UnknownExtra { origin: String, extra: String, known: String },
    #[error("{origin} has no dependency group `{group}`; it has: {known}")]
    UnknownGroup { origin: String, group: String, known: String },
    #[error("{origin}: dependency group `{group}` includes itself (through {chain})")]
    GroupCycle { origin: String, group: String, chain: String },
    #[error("{origin}: `{requirement}` in {place} is not a valid requirement: {message}")]
    Requirement { origin: String, place: String, requirement: String, message: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Pyproject {
    project: Option<Project>,
    #[serde(default)]
    dependency_groups: BTreeMap<String, Vec<GroupEntry>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Project {
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
    let mut lines = Vec::new();
    if let Some(project) = &pyproject.project {
        if project.dynamic.iter().any(|field| field == "dependencies") {
            return Err(PyprojectError::Dynamic { origin: origin.to_owned() });
        }
        lines.extend(checked(&project.dependencies, origin, "[project].dependencies")?);
        // PEP 685: extra names compare normalized.
        let optional: BTreeMap<String, &Vec<String>> =
            project.optional_dependencies.iter().map(|(name, list)| (normalize(name), list)).collect();
        for extra in extras {
            let list = optional.get(&normalize(extra)).ok_or_else(|| PyprojectError::UnknownExtra {
                origin: origin.to_owned(),
                extra: extra.clone(),
                known: known(optional.keys()),
            })?;
            lines.extend(checked(list, origin, &format!("extra `{extra}`"))?);
        }
    } else if !extras.is_empty() {
        return Err(PyprojectError::UnknownExtra {
            origin: origin.to_owned(),
            extra: extras[0].clone(),
            known: known(std::iter::empty::<&String>()),
        });
    }
    let groups_by_name: BTreeMap<String, &Vec<GroupEntry>> =
        pyproject.dependency_groups.iter().map(|(name, entries)| (normalize(name), entries)).collect();
    for group in groups {
        let mut chain = Vec::new();
        group_lines(&groups_by_name, group, origin, &mut chain, &mut lines)?;
    }
    let mut seen = std::collections::BTreeSet::new();
    lines.retain(|line| seen.insert(line.clone()));
    Ok(lines)
}

/// A group's requirements, its included groups' in place (PEP 735).
fn group_lines(
    groups: &BTreeMap<String, &Vec<GroupEntry>>,
    group: &str,
    origin: &str,
    chain: &mut Vec<String>,
    lines: &mut Vec<String>,
) -> Result<(), PyprojectError> {
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
            GroupEntry::Requirement(line) => {
                lines.extend(checked(std::slice::from_ref(line), origin, &format!("dependency group `{name}`"))?);
            }
            GroupEntry::Include { include_group } => group_lines(groups, include_group, origin, chain, lines)?,
        }
    }
    chain.pop();
    Ok(())
}

fn checked(lines: &[String], origin: &str, place: &str) -> Result<Vec<String>, PyprojectError> {
    lines
        .iter()
        .map(|line| {
            line.parse::<Requirement>().map(|_| line.trim().to_owned()).map_err(|error| PyprojectError::Requirement {
                origin: origin.to_owned(),
                place: place.to_owned(),
                requirement: line.clone(),
                message: error.message.to_string(),
            })
        })
        .collect()
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
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
name = "app"
version = "1.0"
dependencies = ["purelib>=1", "compiled; python_version >= '3.11'"]

[project.optional-dependencies]
Fast_IO = ["withextra[fast]"]

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
    fn unknown_extras_and_groups_and_cycles_are_named() {
        assert_eq!(
            lines(&["slow"], &[]).unwrap_err().to_string(),
            "pyproject.toml has no extra `slow`; it has: fast-io"
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
