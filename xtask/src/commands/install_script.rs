//! `install-script`: the POSIX sh script an init container runs to check a bundle and install from it.

use std::io::Write;

use anyhow::{Context, Result};
use xtask::model::install_script::script;

use crate::flags::InstallScript;

pub fn run(args: &InstallScript) -> Result<()> {
    let text = script(args.lock.as_deref(), args.target.as_deref(), args.index_url.as_deref(), xtask::ui::program());
    std::io::stdout().lock().write_all(text.as_bytes()).context("cannot write the script to stdout")
}
