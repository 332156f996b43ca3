//! `dist`: the project and this tool in one reproducible archive for the air-gapped side
//! (docs/air-gap.md). In this tool's own workspace the tool goes as its sources with every crate it
//! builds from, so that a machine with only a Rust toolchain builds it; in any other project (a
//! plain Python repository) as the binary that is running, beside the project's files.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    io::{BufWriter, ErrorKind},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use xshell::Shell;
use xtask::{
    model::digest::sidecar_line,
    model::paths::human_bytes,
    tools::cargo,
    ui,
    wheelhouse::{
        archive::{self, Digests},
        layout::STATE_DIR_NAME,
        partial::{partial_file, persist, remove_partial_files, write_file},
    },
};

use crate::{flags, settings::Project};

/// The one directory the archive holds: `tar xzf` makes `wheelgap-dist/` wherever it runs.
const ROOT: &str = "wheelgap-dist";
const DEFAULT_OUTPUT: &str = "wheelgap-dist.tgz";
/// The knee for text: on this workspace's 166 MB (release build, CPU time) level 1 gives 35.2 MB in
/// 0.9s, level 6 25.3 MB in 3.0s, level 9 25.1 MB in 5.8s.
const LEVEL: u32 = 6;
/// Replaced by the archive's own: the vendored crates and the config pointing cargo at them.
const REPLACED: [&str; 2] = [".cargo/config.toml", ".cargo/config"];

/// Where an archive entry's bytes come from.
enum Source {
    File(PathBuf),
    Generated(Vec<u8>),
}

struct Entry {
    mode: u32,
    source: Source,
}

/// The archive's entries by path, which is also their order, and what was left out and why.
#[derive(Default)]
struct Entries {
    by_path: BTreeMap<String, Entry>,
    skipped: Vec<String>,
}

/// Where the binary goes in an archive of a project that does not build this tool.
const BINARY: &str = "bin/wheelgap";

/// How the tool itself travels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    /// This is the tool's own workspace: its sources and `vendor/`, built on the far side.
    Sources,
    /// Any other project: the running binary, for a machine of the same system and architecture.
    Binary,
}

pub fn run(sh: &Shell, project: &Project, args: &flags::Dist) -> Result<()> {
    let root = project.root.as_path();
    let started = Instant::now();
    let tool = if root.join("Cargo.toml").is_file() && cargo::workspace_has_package(root, env!("CARGO_PKG_NAME")) {
        Tool::Sources
    } else {
        Tool::Binary
    };
    if tool == Tool::Sources && !root.join("Cargo.lock").is_file() {
        bail!(
            "{} has no Cargo.lock: the far side builds with --frozen\nhint: `cargo generate-lockfile` writes it",
            root.display()
        );
    }
    let requested = match &args.output {
        Some(path) => project.flag_path(path),
        None => root.join(DEFAULT_OUTPUT),
    };
    let output_name = requested
        .file_name()
        .and_then(|name| name.to_str())
        .with_context(|| format!("{} is not a file name this tool can write", requested.display()))?
        .to_owned();
    let directory = fs_err::canonicalize(requested.parent().unwrap_or(Path::new(".")))
        .context("the directory of the archive must exist")?;
    let output = directory.join(&output_name);
    let sidecar_name = format!("{output_name}.sha256");
    let sidecar = directory.join(&sidecar_name);
    let mtime = archive::source_date_epoch()?;
    remove_partial_files(&directory, &[&output_name, &sidecar_name])?;

    let exclusions = Exclusions::new(root, &project.wheelhouse(None), &[&output, &sidecar]);
    let mut entries = Entries::default();
    let mut project_vendor = 0;
    for relative in project_files(sh, root, &exclusions, tool)? {
        if relative.starts_with("vendor/") {
            project_vendor += 1;
        } else if !exclusions.excludes(&relative) {
            entries.add_file(format!("{ROOT}/{relative}"), &root.join(&relative))?;
        }
    }
    if project_vendor > 0 {
        ui::say(&format!("warning: left out the project's own vendor/ ({project_vendor} files): the archive's comes from cargo vendor"));
    }

    // Beside the output rather than in TMPDIR, named like the partial archive: a killed run's
    // 170 MB of `cargo vendor` are found and removed by the next one.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{output_name}.partial-"))
        .tempdir_in(&directory)
        .with_context(|| format!("cannot create a staging directory in {}", directory.display()))?;
    let n_crates = match tool {
        Tool::Sources => add_sources(sh, root, staging.path(), &mut entries)?,
        Tool::Binary => {
            let binary = std::env::current_exe().context("cannot find the running binary to pack")?;
            entries.insert(
                format!("{ROOT}/{BINARY}"),
                Entry { mode: archive::EXECUTABLE_MODE, source: Source::File(binary) },
            )?;
            0
        }
    };

    for skipped in &entries.skipped {
        ui::say(&format!("warning: left out {skipped}"));
    }
    if !entries.skipped.is_empty() {
        ui::say("hint: the archive holds regular files only; if the build needs one of these, make it a plain file");
    }

    let (digests, n_bytes) = write_archive(&directory, &output_name, &entries.by_path, mtime)?;
    // After the archive: a kill between the two renames leaves a sidecar `sha256sum -c` rejects,
    // never one that vouches for a partial archive. It names the archive by file name alone, so
    // the check runs wherever the two files are copied together.
    write_file(&sidecar, sidecar_line(&digests.archive_sha256, &output_name).as_bytes())?;

    let holds = match tool {
        Tool::Sources => format!("{n_crates} vendored crates"),
        Tool::Binary => format!("{BINARY} for {} {}", std::env::consts::OS, std::env::consts::ARCH),
    };
    ui::say(&format!(
        "wrote {}: {} files ({holds}, {}) in {} bytes ({}), sha256 {}, in {}",
        output.display(),
        entries.by_path.len(),
        human_bytes(n_bytes),
        digests.archive_bytes,
        human_bytes(digests.archive_bytes),
        digests.archive_sha256,
        ui::seconds(started.elapsed()),
    ));
    if tool == Tool::Binary {
        ui::say(&format!(
            "hint: on the air-gapped side ({} {}, as here), with no network, beside wheelhouse.tgz:\n  \
             sha256sum -c {output_name}.sha256\n  \
             tar xzf {output_name} && cd {ROOT}\n  \
             {BINARY} unpack-wheelhouse ../wheelhouse.tgz\n  \
             {BINARY} build-offline",
            std::env::consts::OS,
            std::env::consts::ARCH,
        ));
        return Ok(());
    }
    let toolchain = cargo::rustc_version(sh).map(|version| format!(" ({version} here, or newer)")).unwrap_or_default();
    ui::say(&format!(
        "hint: on the air-gapped side, with a Rust toolchain{toolchain} and no network:\n  \
         sha256sum -c {output_name}.sha256\n  \
         tar xzf {output_name} && cd {ROOT}\n  \
         cargo build --offline --frozen --release -p {package}\n  \
         ./target/release/wheelgap --help",
        package = env!("CARGO_PKG_NAME"),
    ));
    Ok(())
}

/// This tool's sources travel as they are plus `vendor/` (every crate of `Cargo.lock`, written by
/// `cargo vendor` into `staging`) and a `.cargo/config.toml` pointing cargo at it. Returns the
/// number of crates.
fn add_sources(sh: &Shell, root: &Path, staging: &Path, entries: &mut Entries) -> Result<usize> {
    let started = Instant::now();
    let vendor_dir = staging.join("vendor");
    let printed = cargo::vendor(sh, root, &vendor_dir)?;
    let n_crates = entries.add_vendor(&vendor_dir)?;
    ui::say(&format!("vendored {n_crates} crates in {}", ui::seconds(started.elapsed())));
    let config = cargo_config(read_project_config(root)?.as_deref(), &source_replacement(&printed)?)?;
    entries.add_generated(format!("{ROOT}/.cargo/config.toml"), config.into_bytes())?;
    Ok(n_crates)
}

/// What of the project never goes into the archive, as `/`-separated paths relative to the root.
struct Exclusions {
    /// The wheelhouse by default and as configured: data for the air gap, carried in its own archive.
    wheelhouses: Vec<String>,
    /// This run's archive and sidecar, whatever their names.
    outputs: Vec<String>,
}

impl Exclusions {
    fn new(root: &Path, configured_wheelhouse: &Path, outputs: &[&Path]) -> Exclusions {
        let mut wheelhouses = vec!["wheelhouse".to_owned()];
        wheelhouses.extend(relative_path(root, configured_wheelhouse).ok());
        let outputs = outputs.iter().filter_map(|path| relative_path(root, path).ok()).collect();
        Exclusions { wheelhouses, outputs }
    }

    fn excludes(&self, relative: &str) -> bool {
        let first = relative.split('/').next().unwrap_or(relative);
        let name = relative.rsplit('/').next().unwrap_or(relative);
        first == "target"
            || relative.split('/').any(|component| component == ".git" || component == STATE_DIR_NAME)
            || REPLACED.contains(&relative)
            // Archives, their sidecars and the partial files of a killed run.
            || name.ends_with(".tgz")
            || name.contains(".tgz.")
            || self.outputs.iter().any(|output| output == relative)
            || self.wheelhouses.iter().any(|wheelhouse| {
                let (parent, wheelhouse_name) = wheelhouse.rsplit_once('/').unwrap_or(("", wheelhouse));
                // `.wheelhouse.lock`, `.wheelhouse.staging-*`: a run's files beside it (wheelhouse/layout.rs).
                let run_file = if parent.is_empty() {
                    format!(".{wheelhouse_name}.")
                } else {
                    format!("{parent}/.{wheelhouse_name}.")
                };
                relative == wheelhouse || relative.starts_with(&format!("{wheelhouse}/")) || relative.starts_with(&run_file)
            })
    }
}

/// The project's files, sorted and `/`-separated: in a git checkout what git would commit
/// (tracked, or untracked and not ignored), else every file under the root.
fn project_files(sh: &Shell, root: &Path, exclusions: &Exclusions, tool: Tool) -> Result<BTreeSet<String>> {
    let mut files = match cargo::git_files(sh, root)? {
        Some(files) => files,
        None => {
            let mut files = BTreeSet::new();
            // Pruned on the way down: target/ alone can hold gigabytes.
            let walk = walkdir::WalkDir::new(root).sort_by_file_name().into_iter().filter_entry(|entry| {
                entry.depth() == 0
                    || relative_path(root, entry.path()).is_ok_and(|relative| !exclusions.excludes(&relative))
            });
            for entry in walk {
                let entry = entry.with_context(|| format!("cannot walk {}", root.display()))?;
                if !entry.file_type().is_dir() {
                    files.insert(relative_path(root, entry.path())?);
                }
            }
            files
        }
    };
    if tool == Tool::Sources {
        // `cargo build --frozen` needs both, even where git ignores the lock file.
        files.insert("Cargo.toml".to_owned());
        files.insert("Cargo.lock".to_owned());
    }
    Ok(files)
}

impl Entries {
    /// Adds the file at `path`; a symlink or anything else that is not a regular file is left
    /// out and reported, and so is a file git lists but the work tree no longer has.
    fn add_file(&mut self, archive_path: String, path: &Path) -> Result<()> {
        let metadata = match fs_err::symlink_metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == ErrorKind::NotFound => {
                self.skipped.push(format!("{}: listed by git but not in the work tree (deleted?)", path.display()));
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        if metadata.is_symlink() {
            self.skipped.push(format!("{}: a symbolic link", path.display()));
        } else if !metadata.is_file() {
            self.skipped.push(format!("{}: not a regular file", path.display()));
        } else {
            // Only "is it executable" survives, so umasks and checkouts cannot change the bytes.
            let mode =
                if metadata.permissions().mode() & 0o111 != 0 { archive::EXECUTABLE_MODE } else { archive::FILE_MODE };
            self.insert(archive_path, Entry { mode, source: Source::File(path.to_path_buf()) })?;
        }
        Ok(())
    }

    fn add_generated(&mut self, archive_path: String, bytes: Vec<u8>) -> Result<()> {
        self.insert(archive_path, Entry { mode: archive::FILE_MODE, source: Source::Generated(bytes) })
    }

    /// Adds every file `cargo vendor` wrote under `vendor/`; returns the number of crates.
    fn add_vendor(&mut self, vendor_dir: &Path) -> Result<usize> {
        let mut n_crates = 0;
        for entry in walkdir::WalkDir::new(vendor_dir).min_depth(1).sort_by_file_name() {
            let entry = entry.with_context(|| format!("cannot walk {}", vendor_dir.display()))?;
            if entry.file_type().is_dir() {
                n_crates += usize::from(entry.depth() == 1);
                continue;
            }
            let relative = relative_path(vendor_dir, entry.path())?;
            self.add_file(format!("{ROOT}/vendor/{relative}"), entry.path())?;
        }
        Ok(n_crates)
    }

    fn insert(&mut self, archive_path: String, entry: Entry) -> Result<()> {
        if self.by_path.insert(archive_path.clone(), entry).is_some() {
            bail!("{archive_path} would be in the archive twice");
        }
        Ok(())
    }
}

/// The `[source]` tables `cargo vendor` printed, with its absolute directory replaced by `vendor`:
/// cargo reads it relative to the directory holding `.cargo/`, wherever the archive is extracted.
fn source_replacement(printed: &str) -> Result<String> {
    let start = printed
        .lines()
        .position(|line| line.starts_with('['))
        .context("`cargo vendor` printed no source replacement: does the workspace have no dependencies?")?;
    let tables = printed.lines().skip(start).collect::<Vec<_>>().join("\n");
    let mut config: toml::Table =
        toml::from_str(&tables).context("cannot read the configuration `cargo vendor` printed")?;
    let sources = config
        .get_mut("source")
        .and_then(toml::Value::as_table_mut)
        .context("`cargo vendor` printed no [source] table")?;
    let mut n_directories = 0;
    for (_, source) in sources.iter_mut() {
        if let Some(directory) = source.as_table_mut().and_then(|table| table.get_mut("directory")) {
            *directory = toml::Value::String("vendor".to_owned());
            n_directories += 1;
        }
    }
    if n_directories != 1 || !sources.contains_key("crates-io") {
        bail!("`cargo vendor` printed a source replacement this tool does not know:\n{tables}");
    }
    Ok(toml::to_string(&config)?)
}

/// The project's own `.cargo/config.toml` as it is, comments and `[alias]` included, with the
/// source replacement appended.
fn cargo_config(project_config: Option<&str>, replacement: &str) -> Result<String> {
    let mut text = String::new();
    if let Some(existing) = project_config {
        let table: toml::Table =
            toml::from_str(existing).context("the project's .cargo/config.toml is not valid TOML")?;
        if table.contains_key("source") {
            bail!("the project's .cargo/config.toml replaces sources already: dist cannot add the vendored one beside it\nhint: move that [source] configuration to $CARGO_HOME/config.toml");
        }
        text.push_str(existing.trim_end());
        text.push_str("\n\n");
    }
    text.push_str("# Added by `dist`: every crate comes from vendor/, so builds need no network.\n");
    text.push_str(replacement);
    Ok(text)
}

fn read_project_config(root: &Path) -> Result<Option<String>> {
    for name in REPLACED {
        let path = root.join(name);
        if path.is_file() {
            return Ok(Some(fs_err::read_to_string(&path)?));
        }
    }
    Ok(None)
}

/// Writes the archive to a partial file beside the output, then renames it: a killed run leaves
/// the previous archive whole. Returns the digests and the bytes packed.
fn write_archive(
    directory: &Path,
    output_name: &str,
    entries: &BTreeMap<String, Entry>,
    mtime: u64,
) -> Result<(Digests, u64)> {
    let partial = partial_file(directory, output_name)?;
    let partial_path = partial.path().to_path_buf();
    let mut writer = archive::Writer::new(BufWriter::with_capacity(1 << 20, partial), LEVEL, mtime);
    let mut n_bytes = 0;
    for (archive_path, entry) in entries {
        // Read whole before the header is written: the header's size is then the size read,
        // even if the file changes meanwhile. Source files are small.
        let data = match &entry.source {
            Source::File(path) => Cow::Owned(fs_err::read(path)?),
            Source::Generated(bytes) => Cow::Borrowed(bytes),
        };
        writer
            .append(archive_path, entry.mode, data.len() as u64, &data[..])
            .with_context(|| format!("cannot write {}", partial_path.display()))?;
        n_bytes += data.len() as u64;
    }
    let (buffered, digests) = writer.finish().with_context(|| format!("cannot write {}", partial_path.display()))?;
    let partial = buffered.into_inner().map_err(|error| error.into_error())?;
    persist(partial, &directory.join(output_name))?;
    Ok((digests, n_bytes))
}

/// `path` relative to `base`, `/`-separated, as the archive names it.
fn relative_path(base: &Path, path: &Path) -> Result<String> {
    let relative =
        path.strip_prefix(base).with_context(|| format!("{} is not under {}", path.display(), base.display()))?;
    let components: Option<Vec<&str>> = relative.components().map(|component| component.as_os_str().to_str()).collect();
    Ok(components
        .with_context(|| format!("{}: a path that is not UTF-8 cannot go into the archive", path.display()))?
        .join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `cargo vendor --versioned-dirs /tmp/x/vendor` prints on stdout.
    const PRINTED: &str = "To use vendored sources, add this to your .cargo/config.toml for this project:\n\n\
        [source.crates-io]\nreplace-with = \"vendored-sources\"\n\n\
        [source.vendored-sources]\ndirectory = \"/tmp/x/vendor\"\n";

    const REPLACEMENT: &str = "[source.crates-io]\nreplace-with = \"vendored-sources\"\n\n\
        [source.vendored-sources]\ndirectory = \"vendor\"\n";

    fn check_excluded(relative: &str, expected: bool) {
        let exclusions = Exclusions {
            wheelhouses: vec!["wheelhouse".to_owned(), "data/wheels".to_owned()],
            outputs: vec!["out/dist.tar.gz".to_owned(), "out/dist.tar.gz.sha256".to_owned()],
        };
        assert_eq!(exclusions.excludes(relative), expected, "{relative}");
    }

    #[test]
    fn leaves_out_builds_wheelhouses_archives_and_the_replaced_config() {
        for excluded in [
            "target",
            "target/debug/xtask",
            ".git/config",
            "sub/.git",
            ".cargo/config.toml",
            ".cargo/config",
            "wheelhouse",
            "wheelhouse/manifest.json",
            ".wheelhouse.lock",
            ".wheelhouse.staging-12/a.whl",
            "data/wheels/a.whl",
            "data/.wheels.lock",
            "wheelgap-dist.tgz",
            "wheelgap-dist.tgz.sha256",
            ".wheelgap-dist.tgz.partial-abc123",
            "wheelhouse.tgz",
            "out/dist.tar.gz",
            "out/dist.tar.gz.sha256",
        ] {
            check_excluded(excluded, true);
        }
        for kept in [
            "Cargo.toml",
            "xtask/src/target.rs",
            "xtask/src/target/mod.rs",
            ".cargo/other.toml",
            ".gitignore",
            "wheelhouse.toml",
            "docs/wheelhouse.md",
            "out/other.tar.gz",
        ] {
            check_excluded(kept, false);
        }
    }

    #[test]
    fn the_source_replacement_points_at_vendor_relative_to_the_config() {
        assert_eq!(source_replacement(PRINTED).unwrap(), REPLACEMENT);
        let error = source_replacement("nothing to vendor\n").unwrap_err().to_string();
        assert!(error.contains("no source replacement"), "{error}");
    }

    #[test]
    fn the_config_keeps_the_project_config_verbatim_and_adds_the_replacement() {
        let project = "[alias]\n# why\nxtask = \"run --package xtask --quiet --\"\n";
        let config = cargo_config(Some(project), REPLACEMENT).unwrap();
        assert!(config.starts_with(project), "{config}");
        assert!(config.ends_with(REPLACEMENT), "{config}");
        let table: toml::Table = toml::from_str(&config).unwrap();
        assert_eq!(table["alias"]["xtask"].as_str(), Some("run --package xtask --quiet --"));
        assert_eq!(table["source"]["vendored-sources"]["directory"].as_str(), Some("vendor"));
        assert!(cargo_config(None, REPLACEMENT).unwrap().ends_with(REPLACEMENT));
        let error = cargo_config(Some("[source.crates-io]\nreplace-with = \"mirror\"\n"), REPLACEMENT).unwrap_err();
        assert!(error.to_string().contains("replaces sources already"), "{error}");
    }
}
