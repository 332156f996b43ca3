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

/// `1 target`, `4 targets`: a count with its noun.
pub fn count(number: usize, noun: &str) -> String {
    if number == 1 {
        format!("1 {noun}")
    } else {
        format!("{number} {noun}s")
    }
}

/// A size for people, in SI units as `ls -h --si` and download tools show them.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
    }
}
