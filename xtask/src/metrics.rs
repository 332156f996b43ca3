//! `--metrics-file`: the Prometheus text format as node_exporter's textfile collector reads it,
//! written whole (a partial file renamed over the old one), with no timestamps.

use std::path::Path;

use anyhow::Result;

use crate::{manifest::Manifest, partial};

/// One gauge sample with its labels.
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    pub fn new(name: &'static str, help: &'static str, value: f64) -> Sample {
        Sample { name, help, labels: Vec::new(), value }
    }
}

/// What every command reports of the wheelhouse it worked on.
pub fn wheelhouse_samples(root: &Path, wheelhouse: &Path, manifest: &Manifest) -> Vec<Sample> {
    let packages: std::collections::BTreeSet<&str> = manifest.files.iter().map(|entry| entry.name.as_str()).collect();
    let locked = manifest.requirements.iter().all(|record| crate::lock::lock_path(&root.join(&record.path)).is_file());
    let signed =
        [crate::sign::GPG_SIGNATURE, crate::sign::SSH_SIGNATURE].iter().any(|name| wheelhouse.join(name).is_file());
    vec![
        Sample::new("xtask_wheelhouse_files", "Distribution files in the wheelhouse.", manifest.files.len() as f64),
        Sample::new(
            "xtask_wheelhouse_bytes",
            "Bytes of the distribution files in the wheelhouse.",
            manifest.files.iter().map(|entry| entry.size).sum::<u64>() as f64,
        ),
        Sample::new("xtask_wheelhouse_packages", "Distinct packages in the wheelhouse.", packages.len() as f64),
        Sample::new(
            "xtask_wheelhouse_targets",
            "Targets (platform x Python) the wheelhouse serves.",
            manifest.targets.len() as f64,
        ),
        Sample::new(
            "xtask_hash_locked",
            "1 when every requirements file has a lock file beside it.",
            f64::from(u8::from(locked && !manifest.requirements.is_empty())),
        ),
        Sample::new(
            "xtask_manifest_signed",
            "1 when the wheelhouse holds a signature of its manifest.",
            f64::from(u8::from(signed)),
        ),
    ]
}

/// Renders the samples, each family with its HELP and TYPE, every sample labelled with the command.
pub fn render(command: &str, samples: &[Sample]) -> String {
    let mut text = String::new();
    let mut last_family = "";
    for sample in samples {
        if sample.name != last_family {
            text.push_str(&format!("# HELP {} {}\n# TYPE {} gauge\n", sample.name, sample.help, sample.name));
            last_family = sample.name;
        }
        let mut labels = vec![format!("command=\"{}\"", escape(command))];
        labels.extend(sample.labels.iter().map(|(key, value)| format!("{key}=\"{}\"", escape(value))));
        text.push_str(&format!("{}{{{}}} {}\n", sample.name, labels.join(","), sample.value));
    }
    text
}

fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// Writes the file whole, so that the collector never reads half of it.
pub fn write(path: Option<&Path>, command: &str, samples: &[Sample]) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let path = std::env::current_dir()?.join(path);
    let directory = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    partial::write_atomically(directory, &name, render(command, samples).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_help_type_and_labels() {
        let mut build = Sample::new("xtask_build_success", "1 when the build succeeded.", 1.0);
        build.labels.push(("service", "api".to_owned()));
        let samples = [Sample::new("xtask_run_duration_seconds", "Seconds the command took.", 1.5), build];
        assert_eq!(
            render("build-offline", &samples),
            "# HELP xtask_run_duration_seconds Seconds the command took.\n# TYPE xtask_run_duration_seconds gauge\n\
             xtask_run_duration_seconds{command=\"build-offline\"} 1.5\n\
             # HELP xtask_build_success 1 when the build succeeded.\n# TYPE xtask_build_success gauge\n\
             xtask_build_success{command=\"build-offline\",service=\"api\"} 1\n"
        );
    }
}
