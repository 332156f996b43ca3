//! `hashes`: the hashes of the distribution files of exact pins for the configured targets, as
//! `--hash` lines or as a `packagesWithHashes` list (the shape a Kubernetes operator spec takes).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use xshell::Shell;
use xtask::{
    model::{target::Target, wheel_name::normalize},
    parallel,
    tools::pip::PipFailure,
    wheelhouse::files::digest_file,
};

use crate::{
    flags::{Hashes, HashesFormat},
    settings::Project,
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    packages_with_hashes: Vec<Package>,
}

#[derive(Debug, Serialize)]
struct Package {
    name: String,
    version: String,
    hashes: Vec<Hash>,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct Hash {
    algorithm: &'static str,
    digest: String,
}

/// `name==version`, refusing anything that is not one exact version.
pub fn parse_pin(spec: &str) -> Result<(String, String)> {
    let refuse = || anyhow!("`{spec}` is not an exact pin: write NAME==VERSION (such as flask==3.1.3)");
    let (name, version) = spec.split_once("==").ok_or_else(refuse)?;
    let name = name.trim();
    let version = version.trim();
    let name_ok = !name.is_empty()
        && name.chars().all(|character| character.is_ascii_alphanumeric() || "._-".contains(character));
    let version_ok = !version.is_empty()
        && !version.starts_with('=')
        && version.chars().all(|character| character.is_ascii_alphanumeric() || ".+!_-".contains(character));
    if !name_ok || !version_ok {
        return Err(refuse());
    }
    Ok((normalize(name), version.to_owned()))
}

pub fn run(sh: &Shell, project: &Project, args: &Hashes) -> Result<()> {
    let pins = args.pins.iter().map(|spec| parse_pin(spec)).collect::<Result<Vec<_>>>()?;
    let python = project.find_python(sh, args.targets.python.as_deref())?;
    let targets = project.targets(&args.targets, &python)?;
    let index = project.index_options(&args.index);
    let jobs: Vec<(&(String, String), &Target)> =
        pins.iter().flat_map(|pin| targets.iter().map(move |target| (pin, target))).collect();
    let results = parallel::map(&jobs, parallel::default_jobs(), |sh, ((name, version), target)| {
        let scratch = tempfile::Builder::new().prefix("xtask-hashes-").tempdir()?;
        let pins_file = scratch.path().join("pin.txt");
        fs_err::write(&pins_file, format!("{name}=={version}\n"))?;
        let destination = scratch.path().join("files");
        match python.download(sh, target, &pins_file, &index, &destination) {
            Ok(()) => {}
            Err(error) => {
                return Err(match error.downcast_ref::<PipFailure>() {
                    Some(PipFailure::NoMatchingDistribution { .. }) => anyhow!(
                        "no file of `{name}=={version}` for {target}: the package or version does not exist on the index, or has no wheel for this target"
                    ),
                    _ => error.context(format!("cannot download {name}=={version} for {target}")),
                })
            }
        }
        let mut files = Vec::new();
        for entry in fs_err::read_dir(&destination)? {
            let path = entry?.path();
            let filename = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            files.push((filename, digest_file(args.algorithm, &path)?));
        }
        Ok(files)
    });
    let mut by_pin: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (((name, version), _), result) in jobs.iter().zip(results) {
        match result {
            Ok(files) => by_pin.entry((name.clone(), version.clone())).or_default().extend(files),
            Err(error) => errors.push(format!("{error:#}")),
        }
    }
    if !errors.is_empty() {
        bail!("{}\nhint: check the pins and the index (--index-url, pip's configuration)", errors.join("\n"));
    }
    let packages: Vec<Package> = by_pin
        .into_iter()
        .map(|((name, version), files)| {
            let mut hashes: Vec<Hash> =
                files.into_values().map(|digest| Hash { algorithm: args.algorithm.name(), digest }).collect();
            hashes.sort();
            hashes.dedup();
            Package { name, version, hashes }
        })
        .collect();
    let text = match args.format {
        HashesFormat::Requirements => requirements_text(&packages),
        HashesFormat::Json => {
            format!("{}\n", serde_json::to_string_pretty(&Document { packages_with_hashes: packages })?)
        }
        HashesFormat::Yaml => {
            serde_yaml_ng::to_string(&Document { packages_with_hashes: packages }).context("cannot write YAML")?
        }
    };
    print!("{text}");
    Ok(())
}

fn requirements_text(packages: &[Package]) -> String {
    let mut text = String::new();
    for package in packages {
        text.push_str(&format!("{}=={}", package.name, package.version));
        for hash in &package.hashes {
            text.push_str(&format!(" \\\n    --hash={}:{}", hash.algorithm, hash.digest));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_pins_are_accepted() {
        assert_eq!(parse_pin("Flask==3.1.3").unwrap(), ("flask".to_owned(), "3.1.3".to_owned()));
        assert_eq!(parse_pin("zope.interface==6.0").unwrap().0, "zope-interface");
        for refused in ["flask", "flask>=3", "flask==3.*", "flask===3.1", "==1.0", "flask==3.1; python_version<'3'"] {
            let error = parse_pin(refused).unwrap_err().to_string();
            assert!(error.contains("is not an exact pin"), "{refused}: {error}");
        }
    }

    #[test]
    fn requirements_format_lists_every_hash() {
        let packages = [Package {
            name: "six".to_owned(),
            version: "1.16.0".to_owned(),
            hashes: vec![
                Hash { algorithm: "sha256", digest: "ab".to_owned() },
                Hash { algorithm: "sha256", digest: "cd".to_owned() },
            ],
        }];
        assert_eq!(requirements_text(&packages), "six==1.16.0 \\\n    --hash=sha256:ab \\\n    --hash=sha256:cd\n");
    }
}
