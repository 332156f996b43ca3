//! The one place that runs uv: finding it, checking its version, and `uv pip compile` of a
//! requirements file for one target into a PEP 751 lock (`--format pylock.toml`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{
    model::{
        redact::redact_text,
        target::{Libc, Platform, Target},
        untrusted::with_lines_kept,
    },
    tools::{
        pip::{IndexOptions, Inputs},
        MissingTool,
    },
};

/// The oldest uv tested here (0.7.0 passes the tests that compare it with pip); the pylock
/// output of `pip compile` is recent, and older releases were not tried.
pub const MIN_UV: (u64, u64) = (0, 7);

/// The glibc floors uv names as `--python-platform` (`x86_64-manylinux_2_28`); 2.17 is also
/// spelled manylinux2014. A floor between two of them has no uv spelling.
const UV_GLIBC_MINORS: [u32; 12] = [17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40];

/// A uv the tool may run.
#[derive(Debug, Clone)]
pub struct Uv {
    pub path: PathBuf,
    pub version: String,
}

/// A `uv pip compile` that failed, with uv's words (redacted, control characters escaped).
#[derive(Debug, thiserror::Error)]
pub enum UvFailure {
    /// uv found no wheel of `requirement` (`name==version`) it may use for the target.
    #[error("uv found no wheel of `{requirement}` for the target\n{output}")]
    NoWheel { requirement: String, output: String },
    #[error("uv failed (exit code {code})\n{output}")]
    Other { code: i32, output: String },
}

impl Uv {
    /// `XTASK_UV` (a path) when set, else `uv` on PATH; a missing uv is a [`MissingTool`].
    pub fn find(sh: &Shell) -> Result<Uv> {
        let path = match std::env::var_os("XTASK_UV") {
            Some(path) => {
                which::which(&path).map_err(|_| missing(&format!("{} (XTASK_UV)", Path::new(&path).display())))?
            }
            None => which::which("uv").map_err(|_| missing("uv"))?,
        };
        let output =
            cmd!(sh, "{path} --version").quiet().read().with_context(|| format!("cannot run {}", path.display()))?;
        let version = output.split_whitespace().nth(1).unwrap_or_default().to_owned();
        check_uv_version(&version).map_err(|error| {
            anyhow::anyhow!("{error}\nhint: python3 -m pip install 'uv>={}.{}'", MIN_UV.0, MIN_UV.1)
        })?;
        Ok(Uv { path, version })
    }

    /// `uv pip compile` of `inputs` for `target`: the lock's TOML. uv evaluates markers and
    /// chooses wheels for the target itself (`--python-platform`, `--python-version`); `python`
    /// is only the interpreter uv starts from, so that it neither searches for one nor downloads one.
    pub fn compile(
        &self,
        sh: &Shell,
        python: &Path,
        target: &Target,
        inputs: &Inputs<'_>,
        index: &IndexOptions,
        scratch: &Path,
    ) -> Result<String> {
        let requirements = match inputs {
            Inputs::RequirementsFile(path) => path.to_path_buf(),
            Inputs::Packages(names) => {
                let path = scratch.join("requested.txt");
                fs_err::write(&path, names.iter().map(|name| format!("{name}\n")).collect::<String>())?;
                path
            }
        };
        let uv = &self.path;
        let platform = python_platform(target)?;
        let version = target.python.full();
        let index_args = index_args(index);
        let command = cmd!(
            sh,
            "{uv} pip compile {requirements} --format pylock.toml --python-platform {platform}
                --python-version {version} --python {python} --only-binary :all: --no-header --quiet
                {index_args...}"
        )
        .envs(index_environment(index));
        crate::ui::verbose(&format!("+ {}", redact_text(&command.to_string())));
        let output =
            command.quiet().ignore_status().output().with_context(|| format!("cannot run {}", uv.display()))?;
        if output.status.success() {
            return String::from_utf8(output.stdout).context("uv's lock is not UTF-8");
        }
        // uv quotes what an index served: never let it reach a terminal raw.
        let text = with_lines_kept(&redact_text(&String::from_utf8_lossy(&output.stderr)));
        match no_usable_wheels(&text) {
            Some(requirement) => Err(UvFailure::NoWheel { requirement, output: text }.into()),
            None => Err(UvFailure::Other { code: output.status.code().unwrap_or(-1), output: text }.into()),
        }
    }
}

fn missing(program: &str) -> MissingTool {
    MissingTool {
        program: program.to_owned(),
        needed_for: "--resolver uv".to_owned(),
        install_hint: "pipx install uv (or python3 -m pip install uv), set XTASK_UV to its path, or use --resolver pip"
            .to_owned(),
    }
}

/// The index settings as uv flags. pip's configuration (pip.conf, `PIP_*`) is pip's: uv does not
/// read it, so everything the tool was told is passed here. uv's own `UV_*` and uv.toml apply to
/// what is not passed.
fn index_args(index: &IndexOptions) -> Vec<String> {
    let mut args = Vec::new();
    if index.isolated {
        args.push("--no-config".to_owned());
    }
    if index.no_index {
        args.push("--no-index".to_owned());
    }
    for link in &index.find_links {
        args.extend(["--find-links".to_owned(), link.clone()]);
    }
    // pip takes the best version across all its indexes; uv's default stops at the first index
    // that has the package. The same resolution as pip needs pip's rule.
    args.extend(["--index-strategy".to_owned(), "unsafe-best-match".to_owned()]);
    args
}

/// Index URLs travel in the environment, not on the command line, where every user of the
/// machine could read their credentials in the process list.
fn index_environment(index: &IndexOptions) -> Vec<(&'static str, String)> {
    let mut environment = Vec::new();
    if let Some(url) = &index.index_url {
        environment.push(("UV_DEFAULT_INDEX", url.clone()));
    }
    if !index.extra_index_urls.is_empty() {
        environment.push(("UV_EXTRA_INDEX_URL", index.extra_index_urls.join(" ")));
    }
    environment
}

/// The target as uv's `--python-platform`: an exact glibc floor, or musl 1.2.
fn python_platform(target: &Target) -> Result<String> {
    let machine = match target.platform {
        Platform::Amd64 | Platform::Arm64 => target.platform.machine(),
        Platform::Ppc64le | Platform::S390x => {
            bail!("uv cannot resolve for {target}: its --python-platform has no {}\nhint: use --resolver pip for this target", target.platform.machine())
        }
    };
    match target.libc {
        Libc::Glibc { major: 2, minor } if UV_GLIBC_MINORS.contains(&minor) => Ok(format!("{machine}-manylinux_2_{minor}")),
        Libc::Musl { major: 1, minor: 2 } => Ok(format!("{machine}-unknown-linux-musl")),
        libc => bail!(
            "uv cannot resolve for {target}: its --python-platform has no {libc} (it knows glibc 2.17, 2.28, 2.31 to 2.40 and musl 1.2)\nhint: choose one of those floors, or use --resolver pip"
        ),
    }
}

/// uv's words for a package it could use no wheel of: `Because NAME==VERSION has no usable wheels`.
fn no_usable_wheels(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let before = line.split(" has no usable wheels").next().filter(|before| before.len() < line.len())?;
        Some(before.rsplit(' ').next()?.to_owned())
    })
}

fn check_uv_version(version: &str) -> Result<()> {
    let mut parts = version.split('.').map(|part| part.parse::<u64>().unwrap_or(0));
    let major_minor = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if major_minor < MIN_UV {
        bail!("uv {version} is not supported: --resolver uv needs uv >= {}.{}", MIN_UV.0, MIN_UV.1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::target::PythonVersion;

    fn platform(platform: &str, libc: &str) -> Result<String> {
        python_platform(&Target {
            platform: platform.parse().unwrap(),
            python: PythonVersion::parse("3.12").unwrap(),
            libc: libc.parse().unwrap(),
        })
    }

    #[test]
    fn targets_map_to_the_python_platforms_uv_knows() {
        assert_eq!(platform("linux/amd64", "glibc_2_28").unwrap(), "x86_64-manylinux_2_28");
        assert_eq!(platform("linux/arm64", "glibc_2_17").unwrap(), "aarch64-manylinux_2_17");
        assert_eq!(platform("linux/arm64", "musl_1_2").unwrap(), "aarch64-unknown-linux-musl");
        let error = platform("linux/amd64", "glibc_2_29").unwrap_err().to_string();
        assert!(
            error.starts_with(
                "uv cannot resolve for linux/amd64 python 3.12 glibc_2_29: its --python-platform has no glibc_2_29"
            ),
            "{error}"
        );
        assert!(platform("linux/s390x", "glibc_2_28").unwrap_err().to_string().contains("hint: use --resolver pip"));
    }

    #[test]
    fn index_urls_go_to_the_environment_and_the_rest_to_flags() {
        let index = IndexOptions {
            index_url: Some("https://u:secret@index.test/simple/".to_owned()),
            extra_index_urls: vec!["https://a.test/simple/".to_owned(), "https://b.test/simple/".to_owned()],
            find_links: vec!["/w".to_owned()],
            ..IndexOptions::default()
        };
        assert_eq!(
            index_environment(&index),
            [
                ("UV_DEFAULT_INDEX", "https://u:secret@index.test/simple/".to_owned()),
                ("UV_EXTRA_INDEX_URL", "https://a.test/simple/ https://b.test/simple/".to_owned())
            ]
        );
        assert!(!index_args(&index).join(" ").contains("secret"));
        assert_eq!(index_args(&index), ["--find-links", "/w", "--index-strategy", "unsafe-best-match"]);
    }

    #[test]
    fn reads_the_package_uv_found_no_wheel_of() {
        let output = "  × No solution found when resolving dependencies:\n  ╰─▶ Because sdistonly==1.0 has no usable wheels and you require sdistonly, we can conclude...\n";
        assert_eq!(no_usable_wheels(output).as_deref(), Some("sdistonly==1.0"));
        assert_eq!(no_usable_wheels("error: something else"), None);
        assert!(check_uv_version("0.13.9").is_ok());
        assert_eq!(
            check_uv_version("0.4.30").unwrap_err().to_string(),
            "uv 0.4.30 is not supported: --resolver uv needs uv >= 0.7"
        );
    }
}
