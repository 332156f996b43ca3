//! The one place that runs cargo, rustc and git: the workspace root, what git would commit, the
//! vendored crates of `dist`, and the toolchain's version.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

/// The cargo workspace around the current directory, when `cargo metadata` finds one.
pub fn workspace_root() -> Option<PathBuf> {
    let metadata = cargo_metadata::MetadataCommand::new().no_deps().exec().ok()?;
    Some(metadata.workspace_root.into_std_path_buf())
}

/// Whether the cargo workspace at `root` has a package named `name`: `dist` packs this tool's
/// sources where they are, and the tool's binary everywhere else.
pub fn workspace_has_package(root: &Path, name: &str) -> bool {
    let metadata = cargo_metadata::MetadataCommand::new().no_deps().current_dir(root).exec();
    metadata.is_ok_and(|metadata| metadata.packages.iter().any(|package| package.name.as_str() == name))
}

/// What git would commit in `root` (tracked, or untracked and not ignored), `/`-separated; `None`
/// when `root` is not in a git checkout.
pub fn git_files(sh: &Shell, root: &Path) -> Result<Option<BTreeSet<String>>> {
    let _in_root = sh.push_dir(root);
    let in_checkout = cmd!(sh, "git rev-parse --is-inside-work-tree")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok_and(|answer| answer.trim() == "true");
    if !in_checkout {
        return Ok(None);
    }
    let listed = cmd!(sh, "git ls-files -z --cached --others --exclude-standard")
        .quiet()
        .output()
        .with_context(|| format!("cannot list the files of {} with git", root.display()))?;
    let mut files = BTreeSet::new();
    for path in listed.stdout.split(|byte| *byte == 0).filter(|path| !path.is_empty()) {
        let path = String::from_utf8(path.to_vec()).map_err(|error| {
            anyhow::anyhow!(
                "{}: a path that is not UTF-8 cannot go into the archive",
                String::from_utf8_lossy(error.as_bytes())
            )
        })?;
        files.insert(path);
    }
    Ok(Some(files))
}

/// Runs `cargo vendor` for the workspace into `vendor_dir` and returns what it printed on stdout.
pub fn vendor(sh: &Shell, root: &Path, vendor_dir: &Path) -> Result<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = root.join("Cargo.toml");
    // No `--offline`: when the cache holds every locked crate, cargo reads neither the network nor
    // the index anyway (checked under `unshare --net`), and when it does not, `--offline` only
    // turns a download into "no matching package". CARGO_NET_OFFLINE=true forbids the network.
    let vendored = cmd!(sh, "{cargo} vendor --locked --versioned-dirs --manifest-path {manifest} {vendor_dir}")
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("cannot run `{} vendor`", cargo.to_string_lossy()))?;
    if !vendored.status.success() {
        let stderr = String::from_utf8_lossy(&vendored.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|line| !line.trim_start().starts_with("Vendoring ")).collect();
        bail!(
            "`cargo vendor --locked` failed for {}:\n{}\nhint: Cargo.lock must match Cargo.toml (a `cargo build` updates it), and every crate must be downloadable or in the cargo cache already",
            manifest.display(),
            errors.join("\n").trim()
        );
    }
    String::from_utf8(vendored.stdout).context("`cargo vendor` printed something that is not UTF-8")
}

/// `rustc --version`, for the hint of what toolchain the air-gapped side needs.
pub fn rustc_version(sh: &Shell) -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    cmd!(sh, "{rustc} --version").quiet().ignore_stderr().read().ok()
}
