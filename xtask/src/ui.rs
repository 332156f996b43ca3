//! Progress and summaries on stderr: a bar on a terminal, plain lines in CI logs. stdout is for
//! data (`--json`) only. Also what every line for the user shares: how loud (`-q`, `-v`), in
//! colour or not (`--color`, `NO_COLOR`), and the name of the command the user ran.

use std::{
    io::IsTerminal,
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering},
        OnceLock,
    },
    time::Duration,
};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The spelling messages are written with; [`for_user`] puts the command the user ran in its place.
pub const CANONICAL_PROGRAM: &str = "cargo xtask";

static PROGRAM: OnceLock<String> = OnceLock::new();
/// Every bar draws through this one, so that two steps at once (resolutions and the downloads
/// that follow each) share the terminal, a line each.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

fn bars() -> &'static MultiProgress {
    BARS.get_or_init(MultiProgress::new)
}

/// A line on stderr, above any bar being drawn.
fn line(text: &str) {
    bars().suspend(|| eprintln!("{text}"));
}
static VERBOSITY: AtomicU8 = AtomicU8::new(1);
static COLOR: AtomicBool = AtomicBool::new(false);

/// How the user ran this tool: `cargo xtask` through this repository's alias, else the binary's
/// own name (`wheelgap`). Set once, at the start.
pub fn set_program(name: &str) {
    let _ = PROGRAM.set(name.to_owned());
}

/// The command the user ran, for hints and generated headers.
pub fn program() -> &'static str {
    PROGRAM.get().map_or("wheelgap", String::as_str)
}

/// A message written with [`CANONICAL_PROGRAM`], as the user ran the tool.
pub fn for_user(text: &str) -> String {
    if program() == CANONICAL_PROGRAM {
        text.to_owned()
    } else {
        text.replace(CANONICAL_PROGRAM, program())
    }
}

/// 0 with `-q` (errors and warnings only), 1 by default, 2 with `-v` (also the commands run).
pub fn set_verbosity(level: u8) {
    VERBOSITY.store(level, Ordering::Relaxed);
}

fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// Whether `error:`, `warning:` and `hint:` are coloured: `always`, `never`, or (`auto`) when
/// stderr is a terminal and `NO_COLOR` is unset or empty (no-color.org).
pub fn set_color(choice: &str) {
    let on = match choice {
        "always" => true,
        "never" => false,
        _ => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
    };
    COLOR.store(on, Ordering::Relaxed);
}

/// The lines of `text` with their `error:`, `warning:` or `hint:` prefix coloured when colour is
/// on, and the command the user ran in place of [`CANONICAL_PROGRAM`].
pub fn styled(text: &str) -> String {
    let text = for_user(text);
    if !COLOR.load(Ordering::Relaxed) {
        return text;
    }
    text.split('\n')
        .map(|line| {
            for (prefix, code) in [("error:", "1;31"), ("warning:", "1;33"), ("hint:", "1;36")] {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return format!("\x1b[{code}m{prefix}\x1b[0m{rest}");
                }
            }
            line.to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// With `-v`: a command about to run, credentials already redacted by the caller.
pub fn verbose(message: &str) {
    if verbosity() >= 2 {
        line(&styled(message));
    }
}

/// One step of a command (resolve, download, ...), made of `total` items.
pub struct Step {
    bar: Option<ProgressBar>,
}

impl Step {
    pub fn start(name: &str, total: usize) -> Step {
        if verbosity() == 0 {
            return Step { bar: None };
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("{name}: {total} to do");
            return Step { bar: None };
        }
        let bar = bars().add(ProgressBar::new(total as u64));
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
            None if verbosity() > 0 => line(&format!("  {}", styled(message))),
            None => {}
        }
    }

    /// The step's one-line summary.
    pub fn finish(self, summary: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if verbosity() > 0 {
            line(&styled(summary));
        }
    }
}

/// Progress through a known number of bytes (hashing, packing, extracting): a bar with bytes, rate
/// and ETA when stderr is a terminal; nothing otherwise, where the step's summary line says it all.
pub struct Bytes {
    bar: Option<ProgressBar>,
}

impl Bytes {
    pub fn start(name: &str, total: u64) -> Bytes {
        if verbosity() == 0 || !std::io::stderr().is_terminal() {
            return Bytes { bar: None };
        }
        let bar = bars().add(ProgressBar::new(total));
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {wide_msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Bytes { bar: Some(bar) }
    }

    /// The total grows by `bytes`: downloads learn each file's size as its transfer starts.
    pub fn add_to_total(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(bytes);
        }
    }

    /// `bytes` more are done, the message unchanged.
    pub fn inc(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// `bytes` more are done; `what` names the file.
    pub fn advance(&self, bytes: u64, what: &str) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(what.to_owned());
        }
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A line for the user on stderr (never stdout, which carries data); with `-q` only warnings.
pub fn say(message: &str) {
    if verbosity() > 0 || message.starts_with("warning:") {
        line(&styled(message));
    }
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

#[cfg(test)]
mod style_tests {
    use super::*;

    #[test]
    fn the_canonical_command_becomes_the_one_the_user_ran() {
        set_program("wheelgap");
        assert_eq!(for_user("hint: cargo xtask create-wheelhouse"), "hint: wheelgap create-wheelhouse");
    }
}
