//! `--metrics-file`: the Prometheus text format as node_exporter's textfile collector reads it,
//! with no timestamps.

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
