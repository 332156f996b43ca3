//! `init`: a commented wheelhouse.toml from what the project holds.

use anyhow::{bail, Result};

use crate::{flags::Init, settings::Project};

pub fn run(_project: &Project, _args: &Init) -> Result<()> {
    bail!("init is being written")
}
