//! Shared helpers for the integration tests: the synthetic index, the HTTP server and pip invocation.

// One test binary shares these helpers; not every test module uses every one of them.
#![allow(dead_code)]

pub mod archives;
pub mod index;
pub mod load;
pub mod project;
pub mod raw_archives;
pub mod server;

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};

pub use archives::{SdistSpec, WheelSpec};
pub use index::TestIndex;
pub use server::{Server, ServerOptions};

/// The interpreter whose pip the tests drive; `XTASK_TEST_PYTHON` overrides it.
pub fn python() -> OsString {
    std::env::var_os("XTASK_TEST_PYTHON").unwrap_or_else(|| "python3".into())
}

/// Whether the test interpreter's pip is `major.minor` or later.
pub fn pip_at_least(major: u64, minor: u64) -> bool {
    let output = run_ok(Command::new(python()).args(["-c", "import pip; print(pip.__version__)"]));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut parts = text.trim().split('.').map(|part| part.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

/// `python3 -m pip` with the options every test wants, followed by the caller's subcommand.
///
/// `--isolated` ignores pip config files and `PIP_*` variables (the host may set `PIP_FIND_LINKS`
/// and friends); we also scrub those variables and any proxy settings, because requests would
/// otherwise try to send even 127.0.0.1 traffic through a proxy.
pub fn pip(cache_dir: &Path) -> Command {
    let mut command = Command::new(python());
    scrub_env(&mut command);
    command
        .args(["-m", "pip", "--disable-pip-version-check", "--no-input", "--isolated", "--cache-dir"])
        .arg(cache_dir);
    command
}

/// Removes environment variables that would let the host's configuration leak into pip or uv.
pub fn scrub_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let upper = name.to_string_lossy().to_ascii_uppercase();
        if upper.starts_with("PIP_") || upper.starts_with("UV_") || upper.ends_with("_PROXY") {
            command.env_remove(&name);
        }
    }
    command.env("NO_PROXY", "127.0.0.1,localhost").env("no_proxy", "127.0.0.1,localhost");
}

/// Runs `command` and returns its output, panicking with everything useful if it failed.
pub fn run_ok(command: &mut Command) -> Output {
    let output = spawn_output(command);
    if !output.status.success() {
        panic!("command failed: {}", describe(command, &output));
    }
    output
}

/// Runs `command` expecting failure and returns its output.
pub fn run_fails(command: &mut Command) -> Output {
    let output = spawn_output(command);
    if output.status.success() {
        panic!("command unexpectedly succeeded: {}", describe(command, &output));
    }
    output
}

/// The command line and both output streams, for assertion messages.
pub fn describe(command: &Command, output: &Output) -> String {
    format!(
        "{command:?}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn spawn_output(command: &mut Command) -> Output {
    match command.output() {
        Ok(output) => output,
        Err(err) => panic!("could not run {command:?}: {err}"),
    }
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("creating a temp dir: {err}"),
    }
}

/// Sorted names of the regular files directly inside `dir`.
pub fn file_names(dir: &Path) -> Vec<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => panic!("reading {}: {err}", dir.display()),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The same command, run by `unshare --net`: in a network namespace with no network at all.
pub fn in_no_network(command: &Command) -> Command {
    let mut wrapped = Command::new("unshare");
    wrapped.arg("--net").arg(command.get_program()).args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(directory) = command.get_current_dir() {
        wrapped.current_dir(directory);
    }
    wrapped
}

/// The uv under test, or `None` (with a note) when `XTASK_UV` is not set.
pub fn uv_under_test() -> Option<std::path::PathBuf> {
    let uv = std::env::var_os("XTASK_UV").map(std::path::PathBuf::from);
    if uv.is_none() {
        eprintln!("uv test skipped: set XTASK_UV to a uv (python3 -m pip install uv)");
    }
    uv
}

/// Every file under `dir` with its bytes, to prove a refused run changed nothing.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let relative = entry.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (relative, fs_err::read(entry.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}
