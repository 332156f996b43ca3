//! The compose file: which services build, from which Dockerfile, context, arguments and extra
//! contexts, with `${VAR:-default}` interpolated as `docker compose` does it.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::model::paths::lexical_normalize;

pub const DEFAULT_COMPOSE_FILE: &str = "compose/docker-compose.yml";

/// The parts of a compose file this tool reads; everything else is left to compose.
#[derive(Debug, Deserialize)]
struct ComposeFile {
    #[serde(default)]
    services: BTreeMap<String, ServiceEntry>,
}

#[derive(Debug, Deserialize)]
struct ServiceEntry {
    build: Option<BuildEntry>,
    image: Option<String>,
    platform: Option<String>,
    /// The requirements file the service's image installs (a compose extension field).
    #[serde(rename = "x-requirements")]
    requirements: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BuildEntry {
    Context(String),
    Full {
        context: Option<String>,
        dockerfile: Option<String>,
        #[serde(default)]
        args: KeyValues,
        #[serde(default)]
        additional_contexts: KeyValues,
        target: Option<String>,
    },
}

/// Compose accepts both `KEY: value` maps and `["KEY=value"]` lists.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum KeyValues {
    #[default]
    Empty,
    Map(BTreeMap<String, Option<serde_yaml_ng::Value>>),
    List(Vec<String>),
}

impl KeyValues {
    fn into_map(self) -> BTreeMap<String, String> {
        match self {
            KeyValues::Empty => BTreeMap::new(),
            KeyValues::Map(map) => map
                .into_iter()
                .map(|(key, value)| {
                    let text = match value {
                        None => String::new(),
                        Some(serde_yaml_ng::Value::String(text)) => text,
                        Some(serde_yaml_ng::Value::Bool(value)) => value.to_string(),
                        Some(serde_yaml_ng::Value::Number(value)) => value.to_string(),
                        Some(other) => serde_yaml_ng::to_string(&other).unwrap_or_default().trim().to_owned(),
                    };
                    (key, text)
                })
                .collect(),
            KeyValues::List(items) => items
                .into_iter()
                .map(|item| match item.split_once('=') {
                    Some((key, value)) => (key.to_owned(), value.to_owned()),
                    None => (item, String::new()),
                })
                .collect(),
        }
    }
}

/// A service that builds an image, with every path made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    pub args: BTreeMap<String, String>,
    pub additional_contexts: BTreeMap<String, String>,
    pub image: String,
    pub platform: Option<String>,
    pub target: Option<String>,
    pub requirements: Option<PathBuf>,
}

/// The building services of a compose file's text; `path` is where the text came from (contexts
/// are relative to its directory). Variables are interpolated from `environment`.
pub fn parse(text: &str, path: &Path, environment: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Service>> {
    let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)?;
    interpolate_value(&mut value, environment)?;
    let file: ComposeFile = serde_yaml_ng::from_value(value)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut services = Vec::new();
    for (name, entry) in file.services {
        let Some(build) = entry.build else { continue };
        let (context, dockerfile, args, additional_contexts, target) = match build {
            BuildEntry::Context(context) => (Some(context), None, KeyValues::Empty, KeyValues::Empty, None),
            BuildEntry::Full { context, dockerfile, args, additional_contexts, target } => {
                (context, dockerfile, args, additional_contexts, target)
            }
        };
        let context = lexical_normalize(&base.join(context.as_deref().unwrap_or(".")));
        let dockerfile = lexical_normalize(&context.join(dockerfile.as_deref().unwrap_or("Dockerfile")));
        let additional_contexts = additional_contexts
            .into_map()
            .into_iter()
            .map(|(key, value)| {
                // A path is relative to the compose file's directory; `docker-image://` and other
                // URLs are passed as they are.
                let resolved = if value.contains("://") {
                    value
                } else {
                    lexical_normalize(&base.join(&value)).display().to_string()
                };
                (key, resolved)
            })
            .collect();
        services.push(Service {
            image: entry.image.unwrap_or_else(|| format!("{name}:latest")),
            requirements: entry.requirements.map(|path| lexical_normalize(&base.join(path))),
            platform: entry.platform,
            name,
            context,
            dockerfile,
            args: args.into_map(),
            additional_contexts,
            target,
        });
    }
    Ok(services)
}

fn interpolate_value(value: &mut serde_yaml_ng::Value, environment: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    match value {
        serde_yaml_ng::Value::String(text) => *text = interpolate(text, environment)?,
        serde_yaml_ng::Value::Sequence(items) => {
            for item in items {
                interpolate_value(item, environment)?;
            }
        }
        serde_yaml_ng::Value::Mapping(map) => {
            for (_, item) in map.iter_mut() {
                interpolate_value(item, environment)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Compose's interpolation: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty),
/// `${VAR-default}` (unset), `${VAR:?message}` / `${VAR?message}` (an error), and `$$` for `$`.
pub fn interpolate(text: &str, environment: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        output.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            output.push('$');
            rest = after;
        } else if let Some(braced) = rest.strip_prefix('{') {
            let end = braced.find('}').with_context(|| format!("unclosed `${{` in `{text}`"))?;
            output.push_str(&expand(&braced[..end], environment)?);
            rest = &braced[end + 1..];
        } else {
            let end = rest
                .find(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                output.push('$');
            } else {
                output.push_str(&environment(&rest[..end]).unwrap_or_default());
            }
            rest = &rest[end..];
        }
    }
    output.push_str(rest);
    Ok(output)
}

fn expand(expression: &str, environment: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let name_end = expression
        .find(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
        .unwrap_or(expression.len());
    let (name, operator) = expression.split_at(name_end);
    let value = environment(name);
    let set_and_non_empty = value.as_deref().is_some_and(|value| !value.is_empty());
    Ok(match operator {
        "" => value.unwrap_or_default(),
        _ if operator.starts_with(":-") => {
            if set_and_non_empty {
                value.unwrap_or_default()
            } else {
                operator[2..].to_owned()
            }
        }
        _ if operator.starts_with('-') => value.unwrap_or_else(|| operator[1..].to_owned()),
        _ if operator.starts_with(":?") || operator.starts_with('?') => {
            let unset = if operator.starts_with(':') { !set_and_non_empty } else { value.is_none() };
            if unset {
                let message = operator.trim_start_matches(':').trim_start_matches('?');
                bail!("variable {name} is required: {message}");
            }
            value.unwrap_or_default()
        }
        _ => bail!("unsupported interpolation `${{{expression}}}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn check(input: &str, expected: &str) {
        assert_eq!(interpolate(input, &environment).unwrap(), expected, "{input}");
    }

    #[test]
    fn interpolates_like_compose() {
        check("${SET}", "value");
        check("$SET/x", "value/x");
        check("${UNSET:-0}", "0");
        check("${EMPTY:-0}", "0");
        check("${EMPTY-0}", "");
        check("${UNSET-0}", "0");
        check("${SET:-0}", "value");
        check("cost: $$5", "cost: $5");
        check("plain", "plain");
        let error = interpolate("${UNSET:?set it}", &environment).unwrap_err().to_string();
        assert_eq!(error, "variable UNSET is required: set it");
    }

    #[test]
    fn reads_building_services_with_paths_from_the_compose_file() {
        let text = r#"
services:
  api:
    build:
      context: ..
      dockerfile: dockerfiles/api.Dockerfile
      args:
        OFFLINE: ${OFFLINE:-0}
        PORT: 8000
      additional_contexts:
        wheelhouse: ../wheelhouse
        base: docker-image://debian:bookworm
    image: example/api:${TAG:-latest}
    x-requirements: ../requirements-api.txt
  worker:
    build:
      context: ..
      dockerfile: dockerfiles/worker.Dockerfile
      args: ["OFFLINE=1"]
  cache:
    image: redis
"#;
        let services = parse(text, Path::new("/repo/compose/docker-compose.yml"), &environment).unwrap();
        assert_eq!(services.len(), 2);
        let api = &services[0];
        assert_eq!(api.name, "api");
        assert_eq!(api.context, PathBuf::from("/repo"));
        assert_eq!(api.dockerfile, PathBuf::from("/repo/dockerfiles/api.Dockerfile"));
        assert_eq!(api.args["OFFLINE"], "0");
        assert_eq!(api.args["PORT"], "8000");
        assert_eq!(api.additional_contexts["wheelhouse"], "/repo/wheelhouse");
        assert_eq!(api.additional_contexts["base"], "docker-image://debian:bookworm");
        assert_eq!(api.image, "example/api:latest");
        assert_eq!(api.requirements.as_deref(), Some(Path::new("/repo/requirements-api.txt")));
        assert_eq!(services[1].args["OFFLINE"], "1");
        assert_eq!(services[1].image, "worker:latest");
    }
}
