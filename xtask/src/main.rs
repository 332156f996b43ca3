//! `cargo xtask`: builds Python wheelhouses for offline container builds with the real pip.
//! Parses the flags, loads the project, dispatches to one command, and prints `error:` lines.

mod commands;
mod flags;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use xshell::Shell;
use xtask::model::redact::redact_text;

use crate::{
    commands::{
        build_images, bundle, create_wheelhouse, dist, dockerfiles, hashes, install_script, lock, pack_wheelhouse,
        sbom, sign, status, unpack_wheelhouse, verify_wheelhouse,
    },
    flags::{Command, Xtask},
    settings::Project,
};

fn main() -> ExitCode {
    let flags = Xtask::parse();
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", redact_text(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}

fn run(flags: Xtask) -> anyhow::Result<()> {
    let project = Project::load(flags.project_dir.as_deref())?;
    let sh = Shell::new()?;
    sh.change_dir(&project.root);
    let project = &project;
    match flags.command {
        Command::CreateWheelhouse(args) => create_wheelhouse::run(&sh, project, &args),
        Command::PackWheelhouse(args) => pack_wheelhouse::run(project, &args),
        Command::VerifyWheelhouse(args) => verify_wheelhouse::run(&sh, project, &args),
        Command::UnpackWheelhouse(args) => unpack_wheelhouse::run(&sh, project, &args),
        Command::Dist(args) => dist::run(&sh, project, &args),
        Command::Dockerfiles(args) => dockerfiles::run(project, &args),
        Command::BuildOffline(args) => build_images::run(&sh, project, &args, build_images::Mode::Offline),
        Command::BuildOnline(args) => build_images::run(&sh, project, &args, build_images::Mode::Online),
        Command::Lock(args) => lock::run(project, &args),
        Command::Hashes(args) => hashes::run(&sh, project, &args),
        Command::Sbom(args) => sbom::run(project, &args),
        Command::Sign(args) => sign::run(&sh, project, &args),
        Command::Bundle(args) => bundle::run(project, &args),
        Command::InstallScript(args) => install_script::run(&args),
        Command::Status(args) => status::run(project, &args),
    }
}
