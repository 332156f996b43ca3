//! A throwaway Python project beside a synthetic index, and the real `xtask` binary run on it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use super::{run_fails, run_ok, scrub_env, tempdir, TestIndex};

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

    /// The binary with a clean pip environment: no host `PIP_*`, no config file, a cache of its
    /// own, and the test interpreter. Arguments follow.
    pub fn xtask(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        scrub_env(&mut command);
        command
            .current_dir(self.root())
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_CACHE_DIR", self.tmp.path().join("pip-cache"))
            .env_remove("CARGO");
        command
    }

    /// `create-wheelhouse` with the test interpreter and `extra` flags.
    pub fn create_command(&self, extra: &[&str]) -> Command {
        let mut command = self.xtask();
        command.arg("create-wheelhouse").arg("--python-interpreter").arg(super::python()).args(extra);
        command
    }

    pub fn create(&self, extra: &[&str]) -> Output {
        run_ok(&mut self.create_command(extra))
    }

    pub fn create_fails(&self, extra: &[&str]) -> Output {
        run_fails(&mut self.create_command(extra))
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

/// Normalized names of the packages one resolution holds, sorted.
pub fn resolved_names(manifest: &serde_json::Value, requirements: &str, target: &str) -> Vec<String> {
    let resolution = manifest["resolutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resolution| resolution["requirements"] == requirements && resolution["target"] == target)
        .unwrap_or_else(|| panic!("no resolution of {requirements} for {target}"));
    let mut names: Vec<String> = resolution["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| package["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// File names in the wheelhouse that are distributions (not the manifest or its checksums).
pub fn distributions(dir: &Path) -> Vec<String> {
    super::file_names(dir).into_iter().filter(|name| name != "manifest.json" && name != "SHA256SUMS").collect()
}
