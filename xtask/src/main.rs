//! `cargo xtask`: builds Python wheelhouses for offline container builds with the real pip.

mod archive;
mod build_images;
mod bundle;
mod compose;
mod create_wheelhouse;
mod digest;
mod dist;
mod dockerfiles;
mod engine;
mod flags;
mod hashes;
mod install_script;
mod integrity;
mod lock;
mod manifest;
mod metrics;
mod pack_wheelhouse;
mod parallel;
mod partial;
mod pip;
mod redact;
mod requirements;
mod resolution;
mod sbom;
mod settings;
mod sign;
mod status;
mod swap;
mod target;
mod ui;
mod unpack_wheelhouse;
mod verify_wheelhouse;
mod wheel_name;

use std::process::ExitCode;

use clap::Parser;
use xshell::Shell;

use crate::flags::{Command, Xtask};

fn main() -> ExitCode {
    let flags = Xtask::parse();
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", redact::redact_text(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}

fn run(flags: Xtask) -> anyhow::Result<()> {
    let root = settings::project_root(flags.project_dir.as_deref())?;
    let sh = Shell::new()?;
    sh.change_dir(&root);
    match flags.command {
        Command::CreateWheelhouse(args) => create_wheelhouse::run(&sh, &root, &args),
        Command::PackWheelhouse(args) => pack_wheelhouse::run(&root, &args),
        Command::VerifyWheelhouse(args) => verify_wheelhouse::run(&sh, &root, &args),
        Command::UnpackWheelhouse(args) => unpack_wheelhouse::run(&sh, &root, &args),
        Command::Dist(args) => dist::run(&sh, &root, &args),
        Command::Dockerfiles(args) => dockerfiles::run(&root, &args),
        Command::BuildOffline(args) => build_images::run(&sh, &root, &args, build_images::Mode::Offline),
        Command::BuildOnline(args) => build_images::run(&sh, &root, &args, build_images::Mode::Online),
        Command::Lock(args) => lock::run(&root, &args),
        Command::Hashes(args) => hashes::run(&sh, &root, &args),
        Command::Sbom(args) => sbom::run(&root, &args),
        Command::Sign(args) => sign::run(&sh, &root, &args),
        Command::Bundle(args) => bundle::run(&sh, &root, &args),
        Command::InstallScript(args) => install_script::run(&args),
        Command::Status(args) => status::run(&sh, &root, &args),
    }
}
