//! `dockerfiles`: the generated fragments between marker comments in each service's Dockerfile
//! (the wheelhouse stage and the install step), written or checked; text outside is never touched.

use anyhow::{bail, Context, Result};
use xtask::{
    model::{
        compose::Service,
        dockerfile::{fragments, render},
        paths::display_path,
    },
    ui,
    wheelhouse::layout::lock_path,
};

use crate::{
    commands::{load_compose, write_or_check, FileState, Mode},
    flags::Dockerfiles,
    settings::Project,
};

pub fn run(project: &Project, args: &Dockerfiles) -> Result<()> {
    let (_, services) = load_compose(project, args.compose.as_deref())?;
    let mode = Mode::check_if(args.check);
    let mut stale = Vec::new();
    for service in &services {
        let expected = expected_dockerfile(service).with_context(|| format!("service `{}`", service.name))?;
        let shown = display_path(&project.root, &service.dockerfile);
        match write_or_check(&service.dockerfile, &shown, &expected, mode)? {
            FileState::UpToDate => ui::say(&format!("{shown}: up to date")),
            FileState::Written => ui::say(&format!("{shown}: fragment written")),
            FileState::Stale { diff, .. } => stale.push(diff),
        }
    }
    if !stale.is_empty() {
        bail!(
            "{} Dockerfile fragments are stale:\n{}\nhint: run `cargo xtask dockerfiles` and commit the result",
            stale.len(),
            stale.join("\n")
        );
    }
    Ok(())
}

/// The service's Dockerfile as it should be: its text with the fragments filled in.
fn expected_dockerfile(service: &Service) -> Result<String> {
    let current = fs_err::read_to_string(&service.dockerfile)?;
    let (requirements, hash_locked) = requirements_in_context(service)?;
    render(&service.dockerfile, &current, &fragments(&requirements, hash_locked))
}

/// The requirements path a service's fragment copies, relative to its build context: its lock
/// file when `cargo xtask lock` has written one (and then `true`), else the requirements file.
fn requirements_in_context(service: &Service) -> Result<(String, bool)> {
    let requirements = service.requirements.as_ref().with_context(|| {
        format!("service `{}` names no requirements file\nhint: add `x-requirements: ../requirements-{}.txt` to it in the compose file", service.name, service.name)
    })?;
    if !requirements.starts_with(&service.context) {
        bail!(
            "service `{}`: {} is outside its build context {}",
            service.name,
            requirements.display(),
            service.context.display()
        );
    }
    let lock = lock_path(requirements);
    if lock.is_file() {
        return Ok((display_path(&service.context, &lock), true));
    }
    Ok((display_path(&service.context, requirements), false))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use xtask::model::{compose, diff::unified};

    use super::*;

    /// The repository's own Dockerfiles carry the fragments this code generates: drift fails here.
    #[test]
    fn the_example_dockerfiles_are_up_to_date() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let path = root.join(crate::settings::DEFAULT_COMPOSE_FILE);
        let services = compose::parse(&fs_err::read_to_string(&path).unwrap(), &path, &|_| None).unwrap();
        assert_eq!(services.len(), 2);
        for service in &services {
            let current = fs_err::read_to_string(&service.dockerfile).unwrap();
            let expected = expected_dockerfile(service).unwrap();
            assert!(
                current == expected,
                "{} is stale; run `cargo xtask dockerfiles`:\n{}",
                service.dockerfile.display(),
                unified(&current, &expected, "current", "expected")
            );
        }
    }
}
