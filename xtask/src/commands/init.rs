//! `init`: a commented wheelhouse.toml from what the project holds (requirements files, the
//! compose file, the base images of its Dockerfiles), the `.gitignore` lines for the tool's
//! files, and, when asked, the empty marker blocks `dockerfiles` fills.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xtask::{
    model::{
        paths::display_path,
        project_scan::{self, Found, Image, Inferred},
        target::{cross_product, Platform, Target},
        untrusted::shown,
    },
    ui,
    wheelhouse::partial,
};

use crate::{
    commands::load_compose,
    flags::Init,
    settings::{discover_requirements, Project, Settings, SETTINGS_NAME},
};

/// What `--json` prints.
#[derive(Serialize)]
struct Report<'a> {
    requirements: &'a [String],
    pyproject: Option<&'static str>,
    compose_file: Option<&'a str>,
    services: &'a [Image],
    inferred: &'a Inferred,
    /// The target ids the written settings give, when they name platforms and Python versions.
    targets: Option<Vec<String>>,
}

pub fn run(project: &Project, args: &Init) -> Result<()> {
    let root = &project.root;
    let requirements: Vec<String> = discover_requirements(root)?.iter().map(|path| display_path(root, path)).collect();
    let pyproject = root.join("pyproject.toml").is_file();
    let (compose_file, dockerfiles) = dockerfiles(project)?;
    let compose_shown = compose_file.as_deref().map(|path| display_path(root, path));
    let mut images = Vec::new();
    for (name, dockerfile, build_args, platform) in &dockerfiles {
        let shown_path = display_path(root, dockerfile);
        let text = match fs_err::read_to_string(dockerfile) {
            Ok(text) => text,
            Err(error) => {
                ui::say(&format!("warning: {error}: its base image is unknown"));
                String::new()
            }
        };
        images.push(Image::scan(name, &shown_path, &text, build_args, platform.as_deref()));
    }
    let host = Platform::host().map(Platform::docker_name);
    let inferred = project_scan::infer(&images, host, compose_shown.as_deref());
    let text = project_scan::render_settings(&Found {
        requirements: &requirements,
        pyproject,
        compose_file: compose_shown.as_deref(),
        inferred: &inferred,
        program: ui::program(),
    });
    // What is written must be what every other command reads.
    Settings::parse(&text).context("init made settings that do not parse (a bug)")?;

    if args.json {
        let report = Report {
            requirements: &requirements,
            pyproject: pyproject.then_some("pyproject.toml"),
            compose_file: compose_shown.as_deref(),
            services: &images,
            inferred: &inferred,
            targets: target_ids(&inferred),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let settings_path = root.join(SETTINGS_NAME);
    if args.dry_run {
        print!("{text}");
        ui::say(&format!("dry run: {} not written", settings_path.display()));
        return Ok(());
    }
    if settings_path.exists() && !args.force {
        bail!("{} already exists\nhint: cargo xtask init --force replaces it", settings_path.display());
    }
    partial::write_file(&settings_path, text.as_bytes())
        .with_context(|| format!("cannot write {}", settings_path.display()))?;
    ui::say(&format!(
        "wrote {SETTINGS_NAME}: {}, {}",
        ui::count(requirements.len(), "requirements file"),
        ui::count(images.len(), "image")
    ));
    gitignore(root, args.gitignore)?;
    if args.dockerfile_markers {
        insert_markers(root, &dockerfiles)?;
    }
    ui::say("hint: cargo xtask create-wheelhouse");
    Ok(())
}

/// A Dockerfile to read: the service (or file) name, its path, build arguments and platform.
type Dockerfile = (String, PathBuf, std::collections::BTreeMap<String, String>, Option<String>);

/// The compose file and its services' Dockerfiles; without one, the Dockerfiles at the usual
/// places: `Dockerfile` and `*.Dockerfile` at the root, and `dockerfiles/*.Dockerfile`.
fn dockerfiles(project: &Project) -> Result<(Option<PathBuf>, Vec<Dockerfile>)> {
    if project.compose_file(None).is_some() {
        let (path, services) = load_compose(project, None)?;
        let found = services
            .into_iter()
            .map(|service| (service.name, service.dockerfile, service.args, service.platform))
            .collect();
        return Ok((Some(path), found));
    }
    let mut found = Vec::new();
    for directory in [project.root.clone(), project.root.join("dockerfiles")] {
        if !directory.is_dir() {
            continue;
        }
        let mut paths: Vec<PathBuf> = fs_err::read_dir(&directory)?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
                path.is_file() && (name == "Dockerfile" || name.ends_with(".Dockerfile"))
            })
            .collect();
        paths.sort();
        for path in paths {
            let name = display_path(&project.root, &path);
            found.push((name, path, Default::default(), None));
        }
    }
    Ok((None, found))
}

/// The ids of the targets the settings give, the host's platform standing in when they name none;
/// `None` when they name no Python version (then it is the interpreter's, unknown here).
fn target_ids(inferred: &Inferred) -> Option<Vec<String>> {
    let python = inferred.python.as_ref()?;
    let platforms = match &inferred.platforms {
        Some(platforms) => platforms.clone(),
        None => vec![Platform::host()?.docker_name().to_owned()],
    };
    let targets = cross_product(&platforms, python, inferred.libc.as_deref(), &Default::default()).ok()?;
    Some(targets.iter().map(Target::id).collect())
}

/// Prints the `.gitignore` lines the project lacks, or (`--gitignore`) appends them.
fn gitignore(root: &Path, append: bool) -> Result<()> {
    let path = root.join(".gitignore");
    let current = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error.into()),
    };
    let missing = project_scan::missing_gitignore_lines(&current);
    if missing.is_empty() {
        ui::say(".gitignore already lists the wheelhouse's files");
    } else if append {
        let text = project_scan::append_gitignore(&current, &missing, ui::program());
        partial::write_file(&path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
        ui::say(&format!(".gitignore: added {}", missing.join(" ")));
    } else {
        ui::say(&format!(".gitignore lacks these lines:\n{}", missing.join("\n")));
        ui::say("hint: cargo xtask init --gitignore appends them");
    }
    Ok(())
}

/// `--dockerfile-markers`: the empty blocks put into each Dockerfile that lacks them.
fn insert_markers(root: &Path, dockerfiles: &[Dockerfile]) -> Result<()> {
    let mut changed = 0;
    for (_, path, _, _) in dockerfiles {
        let path_shown = shown(&display_path(root, path));
        let text = fs_err::read_to_string(path)?;
        match project_scan::insert_markers(&text, ui::program()) {
            Some(marked) => {
                partial::write_file(path, marked.as_bytes()).with_context(|| format!("cannot write {path_shown}"))?;
                ui::say(&format!("{path_shown}: marker blocks inserted"));
                changed += 1;
            }
            None => ui::say(&format!("{path_shown}: has its marker blocks (or no FROM)")),
        }
    }
    if changed > 0 {
        ui::say("hint: cargo xtask dockerfiles fills them");
    }
    Ok(())
}
