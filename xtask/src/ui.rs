//! Progress and summaries on stderr: a bar on a terminal, plain lines in CI logs. stdout is for
//! data (`--json`) only.

use std::{io::IsTerminal, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};

/// One step of a command (resolve, download, ...), made of `total` items.
pub struct Step {
    bar: Option<ProgressBar>,
}

impl Step {
    pub fn start(name: &str, total: usize) -> Step {
        if !std::io::stderr().is_terminal() {
            eprintln!("{name}: {total} to do");
            return Step { bar: None };
        }
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {wide_msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Step { bar: Some(bar) }
    }

    /// One item finished; `message` says which and how it went.
    pub fn item_done(&self, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(message.to_owned());
            }
            None => eprintln!("  {message}"),
        }
    }

    /// The step's one-line summary.
    pub fn finish(self, summary: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{summary}");
    }
}

/// A line for the user on stderr (never stdout, which carries data).
pub fn say(message: &str) {
    eprintln!("{message}");
}

pub fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}
