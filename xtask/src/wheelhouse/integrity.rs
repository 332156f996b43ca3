//! Checking bytes against the manifest: a wheelhouse directory (files hashed in parallel) or a
//! packed archive (one streaming pass, optionally extracting as it goes).

use std::{
    collections::BTreeSet,
    io::{self, BufWriter, Read, Write},
    path::Path,
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{
    model::{
        delta::{DeltaRecord, DELTA_NAME, MAX_DELTA_BYTES},
        digest::{parse_sidecar, sha256_hex},
        manifest::{Manifest, MANIFEST_NAME, RESERVED_NAMES, SHA256SUMS_NAME},
        simple_index::{is_index_file, INDEX_DIR},
        untrusted::shown,
    },
    parallel,
    wheelhouse::{
        archive::{self, Digests, Hashing, Limits},
        files::sha256_file,
        layout::sidecar_path,
        simple_index,
    },
};

/// The most a file of a wheelhouse's index may hold (a METADATA is read up to 16 MiB), and all of
/// them together.
pub const MAX_INDEX_FILE_BYTES: u64 = 16 << 20;
const MAX_INDEX_BYTES: u64 = 1 << 30;

/// The most a reserved file (signature, SBOM) may hold: it is not in the manifest to bound it. An
/// SBOM of a 300-file wheelhouse is about 0.5 MB, a signature a few hundred bytes.
const MAX_RESERVED_BYTES: u64 = 8 << 20;
/// The most a manifest may hold before it is read: about 1 KiB a file, so some 8,000 files. Both
/// are held in memory (and the manifest parsed), so they bound the peak for any archive.
pub const MAX_MANIFEST_BYTES: u64 = 8 << 20;

/// Reserved files (signatures, SBOM) read from an archive, by name.
pub type ReservedFiles = std::collections::BTreeMap<String, Vec<u8>>;

/// One thing wrong, with what a user needs to act on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `missing`, `size`, `sha256`, `unlisted`, `not-a-file`, `sha256sums`, `sidecar`, `archive` or
    /// `install`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirements: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn file(
        kind: &'static str,
        file: &str,
        expected: Option<String>,
        actual: Option<String>,
        message: String,
    ) -> Problem {
        Problem {
            kind,
            file: Some(file.to_owned()),
            expected,
            actual,
            requirements: None,
            target: None,
            package: None,
            message,
        }
    }
}

/// What a check covered.
#[derive(Debug, Default)]
pub struct Checked {
    pub n_files: usize,
    pub n_bytes: u64,
    pub problems: Vec<Problem>,
}

impl Checked {
    /// The manifest's files that are missing or whose bytes differ: what a re-run must fetch again.
    pub fn damaged_files(&self) -> Vec<String> {
        self.problems
            .iter()
            .filter(|problem| {
                ["missing", "size", "sha256", "not-a-file"].contains(&problem.kind) && problem.file.is_some()
            })
            .filter_map(|problem| problem.file.clone())
            .filter(|file| file != SHA256SUMS_NAME)
            .collect()
    }
}

/// How far a directory check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Names and sizes from the directory listing: instant, catches a missing or truncated file.
    Sizes,
    /// Every byte through sha256, in parallel.
    Contents,
}

/// The one check of a wheelhouse directory against its manifest: every manifest entry present as
/// a regular file with its size (and with [`Depth::Contents`] its sha256), `SHA256SUMS`
/// consistent with the manifest, and nothing the manifest does not list (reserved names aside).
pub fn check_directory(wheelhouse: &Path, manifest: &Manifest, depth: Depth, jobs: usize) -> Result<Checked> {
    let mut checked = Checked::default();
    let manifest_bytes = fs_err::read(wheelhouse.join(MANIFEST_NAME))?;
    check_sha256sums(manifest, &manifest_bytes, fs_err::read(wheelhouse.join(SHA256SUMS_NAME)).ok(), &mut checked);

    // Largest first, so that one big file does not finish last on one thread.
    let mut entries: Vec<_> = manifest.files.iter().collect();
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.size));
    let progress = (depth == Depth::Contents).then(|| {
        crate::ui::Bytes::start("verify", entries.iter().fold(0u64, |total, entry| total.saturating_add(entry.size)))
    });
    let results = parallel::map(&entries, jobs, |_, entry| {
        if let Some(progress) = &progress {
            progress.advance(entry.size, &entry.filename);
        }
        let path = wheelhouse.join(&entry.filename);
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_file() => metadata,
            Ok(_) => return Ok(Some(not_a_file_problem(&entry.filename))),
            Err(_) => {
                return Ok(Some(Problem::file(
                    "missing",
                    &entry.filename,
                    None,
                    None,
                    format!("{} is missing", entry.filename),
                )))
            }
        };
        if metadata.len() != entry.size {
            return Ok(Some(size_problem(&entry.filename, entry.size, metadata.len())));
        }
        if depth == Depth::Sizes {
            return Ok(None);
        }
        let actual = sha256_file(&path)?;
        Ok((actual != entry.sha256).then(|| sha256_problem(&entry.filename, &entry.sha256, &actual)))
    });
    for (entry, result) in entries.iter().zip(results) {
        checked.problems.extend(result?);
        checked.n_files += 1;
        checked.n_bytes += entry.size;
    }
    let (index_files, strays) = simple_index::index_in_wheelhouse(wheelhouse)?;
    for stray in &strays {
        checked.problems.push(unlisted_problem(stray));
    }
    let index_names = simple_index::index_names(manifest);
    for dir_entry in fs_err::read_dir(wheelhouse)? {
        let dir_entry = dir_entry?;
        let name = dir_entry.file_name().to_string_lossy().into_owned();
        // The index (`index`): its pages' directory, and a .metadata beside each listed wheel.
        let of_index = (name == INDEX_DIR && strays.iter().all(|stray| stray != INDEX_DIR))
            || (index_files.contains(&name) && index_names.contains(&name));
        if of_index {
            continue;
        }
        if manifest.file(&name).is_none() && !RESERVED_NAMES.contains(&name.as_str()) {
            checked.problems.push(unlisted_problem(&name));
        } else if manifest.file(&name).is_none() && !dir_entry.file_type()?.is_file() {
            checked.problems.push(not_a_file_problem(&name));
        }
    }
    // An index it holds must be the one its files give: pages and metadata are derived, and a
    // changed one would steer an installer. Checked once the files themselves are known good.
    if depth == Depth::Contents && !index_files.is_empty() && checked.problems.is_empty() {
        for path in simple_index::stale_index(wheelhouse, manifest)? {
            checked.problems.push(Problem::file(
                "index",
                &path,
                None,
                None,
                format!("{path} is not the index these files give\nhint: cargo xtask index rewrites it"),
            ));
        }
    }
    checked.problems.sort_by(|left, right| (&left.file, left.kind).cmp(&(&right.file, right.kind)));
    Ok(checked)
}

/// The result of reading an archive through.
pub struct ArchiveChecked {
    pub manifest: Manifest,
    pub digests: Digests,
    pub checked: Checked,
    /// A delta archive's record: the files it leaves out are in `absent`, not problems, and the
    /// caller must take them from the base (`wheelhouse::delta`) or refuse.
    pub delta: Option<DeltaRecord>,
    pub absent: Vec<String>,
}

/// Reads an archive in one pass: `manifest.json` must come first and `SHA256SUMS` second; every
/// other entry is checked against the manifest as it streams by and, with `extract_to`, written
/// there. A malformed or unsafe archive is an error; content that does not match is a problem.
/// `before_files` sees the manifest and the reserved files (signatures), which pack puts before
/// the distributions, before any distribution is read: a signature is checked before anything
/// else. A delta archive's record (third, after `SHA256SUMS`) is among those reserved files, so
/// that a caller checks the base before a distribution is written.
pub fn check_archive(
    archive_path: &Path,
    extract_to: Option<&Path>,
    before_files: &mut dyn FnMut(&[u8], &ReservedFiles) -> Result<()>,
) -> Result<ArchiveChecked> {
    let mut reserved = std::collections::BTreeMap::new();
    let mut files_started = false;
    let file = fs_err::File::open(archive_path)?;
    let mut manifest: Option<(Manifest, Vec<u8>)> = None;
    let mut checked = Checked::default();
    let mut seen = BTreeSet::new();
    let mut position = 0usize;
    // A refusal of `before_files` (a bad signature) is about the manifest, not about the entry
    // that happened to come next: it is kept here and returned as it is.
    let mut progress: Option<crate::ui::Bytes> = None;
    let mut refused_before_files: Option<anyhow::Error> = None;
    // The names an index of this manifest can have, and the bytes of those read so far.
    let mut index_names = BTreeSet::new();
    let mut index_bytes = 0u64;
    let mut delta = None;
    let read = archive::read(io::BufReader::with_capacity(1 << 20, file), Limits::default(), |name, size, content| {
        position += 1;
        match (position, &manifest) {
            (1, _) => {
                if name != MANIFEST_NAME {
                    let name = shown(name);
                    bail!("the archive starts with `{name}`, not {MANIFEST_NAME}: not made by pack-wheelhouse");
                }
                if size > MAX_MANIFEST_BYTES {
                    bail!("{MANIFEST_NAME} is {size} bytes: refused");
                }
                let mut bytes = Vec::with_capacity(size as usize);
                content.read_to_end(&mut bytes)?;
                let parsed = Manifest::from_json(&String::from_utf8_lossy(&bytes))
                    .with_context(|| format!("the archive's {MANIFEST_NAME} is not a valid manifest"))?;
                if let Some(directory) = extract_to {
                    fs_err::write(directory.join(MANIFEST_NAME), &bytes)?;
                }
                index_names = simple_index::index_names(&parsed);
                let total = parsed.files.iter().fold(0u64, |total, entry| total.saturating_add(entry.size));
                progress =
                    Some(crate::ui::Bytes::start(if extract_to.is_some() { "extract" } else { "verify" }, total));
                manifest = Some((parsed, bytes));
                Ok(())
            }
            (_, None) => unreachable!("the first entry sets the manifest or fails"),
            (_, Some((manifest, manifest_bytes))) => {
                seen.insert(name.to_owned());
                if name == SHA256SUMS_NAME {
                    if size > MAX_MANIFEST_BYTES {
                        bail!("{SHA256SUMS_NAME} is {size} bytes: refused");
                    }
                    let mut sums = Vec::new();
                    content.read_to_end(&mut sums)?;
                    check_sha256sums(manifest, manifest_bytes, Some(sums.clone()), &mut checked);
                    if let Some(directory) = extract_to {
                        fs_err::write(directory.join(SHA256SUMS_NAME), &sums)?;
                    }
                    return Ok(());
                }
                if name == DELTA_NAME {
                    // Third, right after SHA256SUMS and before any distribution, so that the base is
                    // checked before a single distribution is written.
                    if position != 3 || files_started || !seen.contains(SHA256SUMS_NAME) || size > MAX_DELTA_BYTES {
                        bail!("{DELTA_NAME} ({size} bytes) is not the third entry of a delta archive, after {SHA256SUMS_NAME}, or too large: refused");
                    }
                    let mut bytes = Vec::with_capacity(size as usize);
                    content.read_to_end(&mut bytes)?;
                    delta = Some(DeltaRecord::from_json(&bytes).map_err(anyhow::Error::msg)?);
                    reserved.insert(name.to_owned(), bytes);
                    return Ok(());
                }
                let expected = manifest.file(name);
                if expected.is_none() && RESERVED_NAMES.contains(&name) && !files_started {
                    if size > MAX_RESERVED_BYTES {
                        bail!("`{}` is {size} bytes: refused", shown(name));
                    }
                    let mut bytes = Vec::with_capacity(size as usize);
                    content.read_to_end(&mut bytes)?;
                    if let Some(directory) = extract_to {
                        fs_err::write(directory.join(name), &bytes)?;
                    }
                    reserved.insert(name.to_owned(), bytes);
                    return Ok(());
                }
                if !files_started {
                    files_started = true;
                    if let Err(error) = before_files(manifest_bytes, &reserved) {
                        refused_before_files = Some(error);
                        bail!("refused before the distributions");
                    }
                }
                // A page or metadata file of the wheelhouse's index: bounded, extracted, and checked
                // against the files once they are all in (`index_problems`), not by the manifest.
                let of_index = expected.is_none() && is_index_file(name) && index_names.contains(name);
                if of_index {
                    index_bytes = index_bytes.saturating_add(size);
                    if size > MAX_INDEX_FILE_BYTES || index_bytes > MAX_INDEX_BYTES {
                        bail!("`{}` is {size} bytes ({index_bytes} in the index so far): refused", shown(name));
                    }
                    if let Some(directory) = extract_to {
                        if let Some(parent) = directory.join(name).parent() {
                            fs_err::create_dir_all(parent)?;
                        }
                    }
                    copy_hashing(content, name, extract_to)?;
                    return Ok(());
                }
                match expected {
                    Some(entry) if entry.size != size => {
                        checked.problems.push(size_problem(name, entry.size, size));
                        return Ok(());
                    }
                    None if !RESERVED_NAMES.contains(&name) => {
                        checked.problems.push(unlisted_problem(name));
                        return Ok(());
                    }
                    None if size > MAX_RESERVED_BYTES => bail!("`{}` is {size} bytes: refused", shown(name)),
                    _ => {}
                }
                let actual = copy_hashing(content, name, extract_to)?;
                if let Some(progress) = &progress {
                    progress.advance(size, name);
                }
                if expected.is_some() {
                    checked.n_files += 1;
                    checked.n_bytes += size;
                }
                if let Some(entry) = expected {
                    if entry.sha256 != actual {
                        checked.problems.push(sha256_problem(name, &entry.sha256, &actual));
                    }
                }
                Ok(())
            }
        }
    });
    if let Some(error) = refused_before_files {
        return Err(error);
    }
    let digests = read?;
    let Some((manifest, manifest_bytes)) = manifest else { bail!("the archive holds no {MANIFEST_NAME}") };
    if !files_started {
        before_files(&manifest_bytes, &reserved)?;
    }
    if !seen.contains(SHA256SUMS_NAME) {
        checked.problems.push(Problem::file(
            "missing",
            SHA256SUMS_NAME,
            None,
            None,
            format!("{SHA256SUMS_NAME} is missing"),
        ));
    }
    let mut absent = Vec::new();
    for entry in &manifest.files {
        if !seen.contains(&entry.filename) && delta.is_some() {
            absent.push(entry.filename.clone());
        } else if !seen.contains(&entry.filename) {
            checked.problems.push(Problem::file(
                "missing",
                &entry.filename,
                None,
                None,
                format!("{} is missing", entry.filename),
            ));
        }
    }
    Ok(ArchiveChecked { manifest, digests, checked, delta, absent })
}

/// What the `.sha256` sidecar beside an archive says of the archive's sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sidecar {
    Matches,
    Missing,
    /// It names another digest, or (`expected: None`) does not mention the archive at all.
    Mismatch {
        expected: Option<String>,
    },
}

impl Sidecar {
    /// `ok`, `missing` or `mismatch`, as `--json` reports it.
    pub fn state(&self) -> &'static str {
        match self {
            Sidecar::Matches => "ok",
            Sidecar::Missing => "missing",
            Sidecar::Mismatch { .. } => "mismatch",
        }
    }
}

/// The one comparison of an archive's sha256 (`actual`) with the sidecar beside it.
pub fn read_sidecar(archive_path: &Path, actual: &str) -> Result<Sidecar> {
    let sidecar = sidecar_path(archive_path);
    let text = match fs_err::read_to_string(&sidecar) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Sidecar::Missing),
        Err(error) => return Err(error.into()),
    };
    let name = archive_path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(match parse_sidecar(&text, &name) {
        Some(expected) if expected == actual => Sidecar::Matches,
        expected => Sidecar::Mismatch { expected },
    })
}

/// [`read_sidecar`] for verify and unpack: `ok`, `missing` (a warning is printed) or `mismatch`
/// (with the problem).
pub fn check_sidecar(archive_path: &Path, actual: &str) -> (&'static str, Option<Problem>) {
    let sidecar = sidecar_path(archive_path);
    let name = archive_path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let state = match read_sidecar(archive_path, actual) {
        Ok(state) => state,
        // Present but unreadable (not UTF-8, a directory): a sidecar that vouches for nothing is
        // a problem, not a missing file to warn about.
        Err(error) => {
            let message =
                format!("{} cannot be read as a sha256sum line: {error:#}", shown(&sidecar.display().to_string()));
            return ("mismatch", Some(Problem::file("sidecar", &name, None, Some(actual.to_owned()), message)));
        }
    };
    match &state {
        Sidecar::Matches => {}
        Sidecar::Missing => {
            crate::ui::say(&format!("warning: no {} to check the archive's sha256 against", sidecar.display()))
        }
        Sidecar::Mismatch { expected } => {
            let message = format!(
                "{name} has sha256 {actual}, {} says {}",
                sidecar.display(),
                expected.as_deref().unwrap_or("nothing about it")
            );
            let problem = Problem::file("sidecar", &name, expected.clone(), Some(actual.to_owned()), message);
            return (state.state(), Some(problem));
        }
    }
    (state.state(), None)
}

/// Hashes an entry's content, writing it to `<extract_to>/<name>` on the way when asked.
fn copy_hashing(content: &mut dyn Read, name: &str, extract_to: Option<&Path>) -> Result<String> {
    let mut hashing = Hashing::new(content);
    match extract_to {
        Some(directory) => {
            let path = directory.join(name);
            // create_new: an entry never overwrites another, even if the reader let one through.
            let file = fs_err::OpenOptions::new().write(true).create_new(true).open(&path)?;
            let mut output = BufWriter::with_capacity(1 << 20, file);
            io::copy(&mut hashing, &mut output)?;
            output.flush()?;
        }
        None => {
            io::copy(&mut hashing, &mut io::sink())?;
        }
    }
    Ok(hashing.finish().1)
}

fn check_sha256sums(manifest: &Manifest, manifest_bytes: &[u8], sums: Option<Vec<u8>>, checked: &mut Checked) {
    let expected = manifest.sha256sums(&sha256_hex(manifest_bytes));
    match sums {
        None => checked.problems.push(Problem::file(
            "missing",
            SHA256SUMS_NAME,
            None,
            None,
            format!("{SHA256SUMS_NAME} is missing"),
        )),
        Some(actual) if actual != expected.as_bytes() => checked.problems.push(Problem::file(
            "sha256sums",
            SHA256SUMS_NAME,
            None,
            None,
            format!("{SHA256SUMS_NAME} does not match {MANIFEST_NAME} (one of them was changed)"),
        )),
        Some(_) => {}
    }
}

fn size_problem(name: &str, expected: u64, actual: u64) -> Problem {
    Problem::file(
        "size",
        name,
        Some(expected.to_string()),
        Some(actual.to_string()),
        format!("{} is {actual} bytes, the manifest says {expected}", shown(name)),
    )
}

fn sha256_problem(name: &str, expected: &str, actual: &str) -> Problem {
    Problem::file(
        "sha256",
        name,
        Some(expected.to_owned()),
        Some(actual.to_owned()),
        format!("{} has sha256 {actual}, the manifest says {expected}", shown(name)),
    )
}

fn not_a_file_problem(name: &str) -> Problem {
    Problem::file(
        "not-a-file",
        name,
        None,
        None,
        format!("{} is not a regular file: a wheelhouse holds files only", shown(name)),
    )
}

fn unlisted_problem(name: &str) -> Problem {
    Problem::file("unlisted", name, None, None, format!("{} is not in the manifest", shown(name)))
}
