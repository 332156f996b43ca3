//! The only code that starts a process: pip (and the Python that runs it), the container engine,
//! gpg and ssh-keygen, cargo, rustc and git. A tool that is missing is an error that names it and
//! says what to install.

pub mod cargo;
pub mod engine;
pub mod pip;
pub mod signing;

use std::path::PathBuf;

/// A program on `PATH`, or an error naming it, why it is needed and how to get it.
pub fn find(program: &str, needed_for: &str, install_hint: &str) -> anyhow::Result<PathBuf> {
    which::which(program)
        .map_err(|_| anyhow::anyhow!("`{program}` is not on PATH, and {needed_for} needs it\nhint: {install_hint}"))
}
