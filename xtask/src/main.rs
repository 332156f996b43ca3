//! `cargo xtask`: builds Python wheelhouses for offline container builds with the real pip.
//! Parses the flags, loads the project, dispatches to one command, and prints `error:` lines.

mod commands;
mod flags;
mod settings;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use xshell::Shell;
use xtask::{model::redact::redact_text, ui};

use crate::{
    commands::{
        audit, build_images, bundle, create_wheelhouse, diff, dist, dockerfiles, hashes, index, init, install_script,
        lock, pack_wheelhouse, sbom, serve, sign, status, unpack_wheelhouse, verify_wheelhouse, Finished,
    },
    flags::{Command, Xtask},
    settings::Project,
};

fn main() -> ExitCode {
    ui::set_program(&program_name());
    let flags = parse_flags();
    ui::set_verbosity(if flags.quiet {
        0
    } else if flags.verbose {
        2
    } else {
        1
    });
    ui::set_color(&flags.color);
    let trouble = flags.command.trouble_exit_code();
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<Finished>() {
            Some(Finished(code)) => ExitCode::from(*code),
            None => {
                eprintln!("{}", ui::styled(&format!("error: {}", redact_text(&format!("{error:#}")))));
                ExitCode::from(trouble)
            }
        },
    }
}

/// `cargo xtask` when this repository's alias ran it (cargo sets `CARGO` for what it runs), else
/// the name the binary was started by, so that hints name a command that works.
fn program_name() -> String {
    if std::env::var_os("CARGO").is_some() {
        return ui::CANONICAL_PROGRAM.to_owned();
    }
    std::env::args_os()
        .next()
        .and_then(|argv0| std::path::Path::new(&argv0).file_name().map(|name| name.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "wheelgap".to_owned())
}

/// The flags, with help that names the command the user ran and examples under each subcommand.
fn parse_flags() -> Xtask {
    let program = ui::program();
    let mut command = Xtask::command().bin_name(program);
    let names: Vec<String> = command.get_subcommands().map(|sub| sub.get_name().to_owned()).collect();
    for name in names {
        if let Some(examples) = flags::examples(program, &name) {
            command = command.mut_subcommand(&name, |sub| sub.after_help(examples));
        }
    }
    let matches = command.get_matches();
    Xtask::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
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
        Command::Audit(args) => audit::run(project, &args),
        Command::Index(args) => index::run(project, &args),
        Command::Serve(args) => serve::run(&sh, project, &args),
        Command::Sign(args) => sign::run(&sh, project, &args),
        Command::Bundle(args) => bundle::run(project, &args),
        Command::InstallScript(args) => install_script::run(&args),
        Command::Status(args) => status::run(project, &args),
        Command::Diff(args) => diff::run(project, &args),
        Command::Init(args) => init::run(project, &args),
        Command::Completions(args) => {
            let mut command = flags::Xtask::command();
            clap_complete::generate(args.shell, &mut command, ui::program(), &mut std::io::stdout());
            Ok(())
        }
    }
}
