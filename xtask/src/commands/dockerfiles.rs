//! `dockerfiles`: the generated fragments between marker comments in each service's Dockerfile
//! (the wheelhouse stage and the install step), written or checked; text outside is never touched.

use anyhow::{bail, Context, Result};
use xtask::{
    model::{paths::display_path, untrusted::shown},
    ui,
};

use crate::{
    commands::{expected_dockerfile, load_compose, write_or_check, FileState, Mode},
    flags::Dockerfiles,
    settings::Project,
};

pub fn run(project: &Project, args: &Dockerfiles) -> Result<()> {
    let (_, services) = load_compose(project, args.compose.as_deref())?;
    let mode = Mode::check_if(args.check);
    let mut stale = Vec::new();
    for service in &services {
        let expected = expected_dockerfile(service, ui::program())
            .with_context(|| format!("service `{}`", shown(&service.name)))?;
        let path_shown = shown(&display_path(&project.root, &service.dockerfile));
        match write_or_check(&service.dockerfile, &path_shown, &expected, mode)? {
            FileState::UpToDate => ui::say(&format!("{path_shown}: up to date")),
            FileState::Written => ui::say(&format!("{path_shown}: fragment written")),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use xtask::model::{compose, diff::unified};

    use super::*;

    /// The repository's own Dockerfiles carry the fragments this code generates: drift fails here.
    #[test]
    fn the_example_dockerfiles_are_up_to_date() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let path = root.join("compose/docker-compose.yml");
        let services = compose::parse(&fs_err::read_to_string(&path).unwrap(), &path, &|_| None).unwrap();
        assert_eq!(services.len(), 2);
        for service in &services {
            let current = fs_err::read_to_string(&service.dockerfile).unwrap();
            let expected = expected_dockerfile(service, "cargo xtask").unwrap();
            assert!(
                current == expected,
                "{} is stale; run `cargo xtask dockerfiles`:\n{}",
                service.dockerfile.display(),
                unified(&current, &expected, "current", "expected")
            );
        }
    }
}
