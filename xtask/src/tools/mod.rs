//! The only code that starts a process: pip (and the Python that runs it), uv, the container
//! engine, gpg and ssh-keygen, cargo, rustc and git; and the native downloader, the other way the
//! tool reaches an index. A tool that is missing is an error that names it and
//! says what to install.

pub mod cargo;
pub mod engine;
pub mod http;
pub mod pip;
pub mod pip_workers;
pub mod signing;
pub mod uv;

use std::path::PathBuf;

/// A program that is not on `PATH`: what needs it and how to get it.
#[derive(Debug, thiserror::Error)]
#[error("`{program}` is not on PATH, and {needed_for} needs it\nhint: {install_hint}")]
pub struct MissingTool {
    pub program: String,
    pub needed_for: String,
    pub install_hint: String,
}

/// A program on `PATH`, or a [`MissingTool`].
pub fn find(program: &str, needed_for: &str, install_hint: &str) -> Result<PathBuf, MissingTool> {
    which::which(program).map_err(|_| MissingTool {
        program: program.to_owned(),
        needed_for: needed_for.to_owned(),
        install_hint: install_hint.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_tool_is_named_with_what_needs_it_and_a_hint() {
        let error = super::find("no-such-program-here", "signing with --gpg", "install GnuPG").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`no-such-program-here` is not on PATH, and signing with --gpg needs it\nhint: install GnuPG"
        );
        assert!(super::find("sh", "a test", "none").is_ok());
    }
}
