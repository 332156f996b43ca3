//! The shared test context: a throwaway Python project beside a synthetic index, the real `xtask`
//! binary run on it, and the target sets the tests make wheelhouses for.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use super::{run_fails, run_ok, scrub_env, tempdir, TestIndex};

/// linux/amd64 and linux/arm64 on Python 3.11 and 3.12: every marker of the standard index
/// (`platform_machine`, `python_version`) then picks a different set on some target.
pub const FOUR_TARGETS: [&str; 8] =
    ["--platform", "linux/amd64", "--platform", "linux/arm64", "--python", "3.11", "--python", "3.12"];

/// linux/amd64 and linux/arm64 on Python 3.11: two targets, for half the pip runs of four.
pub const TWO_TARGETS: [&str; 6] = ["--platform", "linux/amd64", "--platform", "linux/arm64", "--python", "3.11"];

/// linux/amd64 on Python 3.11: for tests about what is done with a wheelhouse, not what is in it.
pub const ONE_TARGET: [&str; 4] = ["--platform", "linux/amd64", "--python", "3.11"];

pub struct Project {
    pub tmp: tempfile::TempDir,
    pub index: TestIndex,
}

impl Project {
    pub fn new() -> Project {
        let tmp = tempdir();
        let index = TestIndex::build(&tmp.path().join("index"));
        fs_err::create_dir_all(tmp.path().join("project")).unwrap();
        Project { tmp, index }
    }

    /// A project whose `requirements.txt` holds `requirements`, with its wheelhouse already made
    /// for `targets` (one of the target sets above) by [`Project::create_from_file_index`].
    pub fn with_wheelhouse(requirements: &str, targets: &[&str]) -> Project {
        let project = Project::new();
        project.write("requirements.txt", requirements);
        project.create_from_file_index(targets);
        project
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("project")
    }

    pub fn wheelhouse(&self) -> PathBuf {
        self.root().join("wheelhouse")
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.root().join(relative);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, text).unwrap();
        path
    }

    /// The binary with a clean pip and uv environment: no host `PIP_*` or `UV_*`, no config
    /// file, caches of their own, and the test interpreter. Arguments follow.
    pub fn xtask(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wheelgap"));
        scrub_env(&mut command);
        command
            .current_dir(self.root())
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_CACHE_DIR", self.tmp.path().join("pip-cache"))
            .env("UV_NO_CONFIG", "1")
            .env("UV_CACHE_DIR", self.tmp.path().join("uv-cache"))
            .env_remove("CARGO");
        command
    }

    /// [`Project::xtask`] with `args`: the subcommand and its flags.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.xtask();
        command.args(args);
        command
    }

    /// [`Project::command`] followed by `--python-interpreter` and the test interpreter, for the
    /// subcommands that run pip: otherwise they would run the `python3` on PATH, not the
    /// `XTASK_TEST_PYTHON` the other tests use.
    pub fn command_with_test_python(&self, args: &[&str]) -> Command {
        let mut command = self.command(args);
        command.arg("--python-interpreter").arg(super::python());
        command
    }

    /// `create-wheelhouse` with the test interpreter and `extra` flags.
    pub fn create_command(&self, extra: &[&str]) -> Command {
        let mut command = self.command_with_test_python(&["create-wheelhouse"]);
        command.args(extra);
        command
    }

    pub fn create(&self, extra: &[&str]) -> Output {
        run_ok(&mut self.create_command(extra))
    }

    pub fn create_fails(&self, extra: &[&str]) -> Output {
        run_fails(&mut self.create_command(extra))
    }

    /// `create-wheelhouse` from the index as a `file://` URL (no server to start), then `extra`:
    /// usually a target set. `--no-build-tools` keeps pip, setuptools and wheel out, so the
    /// wheelhouse holds only what the requirements pull in and the tests can count its files.
    pub fn create_from_file_index(&self, extra: &[&str]) -> Output {
        let url = self.index.file_index_url();
        self.create(&[&["--index-url", url.as_str(), "--no-build-tools"][..], extra].concat())
    }

    pub fn manifest(&self) -> serde_json::Value {
        let text = fs_err::read_to_string(self.wheelhouse().join("manifest.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Every file in the wheelhouse with its bytes: to prove a failed run changed nothing.
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = fs_err::read_dir(self.wheelhouse())
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                (path.file_name().unwrap().to_string_lossy().into_owned(), fs_err::read(&path).unwrap())
            })
            .collect();
        files.sort();
        files
    }
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The packages of one resolution of the manifest, as JSON.
fn resolution_packages<'a>(
    manifest: &'a serde_json::Value,
    requirements: &str,
    target: &str,
) -> &'a [serde_json::Value] {
    let resolution = manifest["resolutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resolution| resolution["requirements"] == requirements && resolution["target"] == target)
        .unwrap_or_else(|| panic!("no resolution of {requirements} for {target}"));
    resolution["packages"].as_array().unwrap()
}

/// Normalized names of the packages one resolution holds, sorted.
pub fn resolved_names(manifest: &serde_json::Value, requirements: &str, target: &str) -> Vec<String> {
    let mut names: Vec<String> = resolution_packages(manifest, requirements, target)
        .iter()
        .map(|package| package["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// `name==version` of every package one resolution holds, sorted.
pub fn resolved_pins(manifest: &serde_json::Value, requirements: &str, target: &str) -> Vec<String> {
    let mut pins: Vec<String> = resolution_packages(manifest, requirements, target)
        .iter()
        .map(|package| format!("{}=={}", package["name"].as_str().unwrap(), package["version"].as_str().unwrap()))
        .collect();
    pins.sort();
    pins
}

/// File names in the wheelhouse that are distributions (not the manifest or its checksums).
pub fn distributions(dir: &Path) -> Vec<String> {
    super::file_names(dir).into_iter().filter(|name| name != "manifest.json" && name != "SHA256SUMS").collect()
}
