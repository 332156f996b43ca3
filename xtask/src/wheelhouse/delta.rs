//! Manifests read from whatever a user points at (a manifest, a wheelhouse or an archive), and a
//! delta archive's staging directory completed from the base wheelhouse it applies to.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{self, Read},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{
    model::{
        delta::{missing_from_base, DeltaRecord, DELTA_NAME, MAX_DELTA_BYTES},
        digest::sha256_hex,
        manifest::{Manifest, MANIFEST_NAME},
        simple_index::{is_index_file, INDEX_DIR},
        untrusted::shown,
    },
    wheelhouse::{
        archive::{self, Hashing, Limits},
        integrity::{MAX_INDEX_FILE_BYTES, MAX_MANIFEST_BYTES},
        layout::read_manifest_with_bytes,
        simple_index::{index_in_wheelhouse, index_names},
    },
};

/// What a path held: `manifest`, `wheelhouse` or `archive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Manifest,
    Wheelhouse,
    Archive,
}

/// A manifest and where it came from. Only the manifest is read (of an archive, its first
/// entries): its files are not checked here.
#[derive(Debug)]
pub struct ManifestSource {
    pub kind: SourceKind,
    pub path: PathBuf,
    pub manifest: Manifest,
    pub sha256: String,
    /// When the source is a delta archive: the base it applies to.
    pub delta: Option<DeltaRecord>,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Manifest => "manifest",
            SourceKind::Wheelhouse => "wheelhouse",
            SourceKind::Archive => "archive",
        }
    }
}

/// Reads the manifest of `path`: a wheelhouse directory, an archive (gzip, by its first bytes) or
/// a `manifest.json`.
pub fn read_source(path: &Path) -> Result<ManifestSource> {
    let shown_path = shown(&path.display().to_string());
    let metadata = fs_err::metadata(path)?;
    if metadata.is_dir() {
        let (manifest, bytes) = read_manifest_with_bytes(path)?;
        let sha256 = sha256_hex(&bytes);
        return Ok(ManifestSource {
            kind: SourceKind::Wheelhouse,
            path: path.to_path_buf(),
            manifest,
            sha256,
            delta: None,
        });
    }
    if !metadata.is_file() {
        bail!("{shown_path} is neither a directory nor a regular file");
    }
    let mut file = fs_err::File::open(path)?;
    let mut magic = [0u8; 2];
    let is_gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    if !is_gzip {
        if metadata.len() > MAX_MANIFEST_BYTES {
            bail!("{shown_path} is {} bytes: not a manifest, and not a gzip archive", metadata.len());
        }
        let mut bytes = Vec::new();
        fs_err::File::open(path)?.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            bail!("{shown_path} grew past {MAX_MANIFEST_BYTES} bytes while it was read: not a manifest");
        }
        let manifest = Manifest::from_json(&String::from_utf8_lossy(&bytes))
            .with_context(|| format!("{shown_path} is neither a wheelhouse archive nor a valid manifest"))?;
        let sha256 = sha256_hex(&bytes);
        return Ok(ManifestSource {
            kind: SourceKind::Manifest,
            path: path.to_path_buf(),
            manifest,
            sha256,
            delta: None,
        });
    }
    let (manifest_bytes, delta) =
        read_archive_head(fs_err::File::open(path)?).with_context(|| format!("cannot read {shown_path}"))?;
    let manifest = Manifest::from_json(&String::from_utf8_lossy(&manifest_bytes))
        .with_context(|| format!("the {MANIFEST_NAME} of {shown_path} is not a valid manifest"))?;
    let sha256 = sha256_hex(&manifest_bytes);
    Ok(ManifestSource { kind: SourceKind::Archive, path: path.to_path_buf(), manifest, sha256, delta })
}

/// The manifest bytes and delta record of an archive, reading no further than its third entry.
fn read_archive_head(input: impl Read) -> Result<(Vec<u8>, Option<DeltaRecord>)> {
    let mut manifest: Option<Vec<u8>> = None;
    let mut delta = None;
    let mut position = 0;
    let mut done = false;
    let read = archive::read(io::BufReader::new(input), Limits::default(), |name, size, content| {
        position += 1;
        match position {
            1 => {
                if name != MANIFEST_NAME || size > MAX_MANIFEST_BYTES {
                    bail!(
                        "the archive starts with `{}` ({size} bytes), not {MANIFEST_NAME}: not made by pack-wheelhouse",
                        shown(name)
                    );
                }
                let mut bytes = Vec::new();
                content.take(MAX_MANIFEST_BYTES).read_to_end(&mut bytes)?;
                manifest = Some(bytes);
                Ok(())
            }
            3 if name == DELTA_NAME => {
                if size > MAX_DELTA_BYTES {
                    bail!("{DELTA_NAME} is {size} bytes: refused");
                }
                let mut bytes = Vec::new();
                content.take(MAX_DELTA_BYTES).read_to_end(&mut bytes)?;
                delta = Some(DeltaRecord::from_json(&bytes).map_err(anyhow::Error::msg)?);
                done = true;
                bail!("read what was needed")
            }
            2 => Ok(()),
            _ => {
                done = true;
                bail!("read what was needed")
            }
        }
    });
    match (read, manifest) {
        (_, Some(manifest)) if done => Ok((manifest, delta)),
        (Ok(_), Some(manifest)) => Ok((manifest, delta)),
        (Err(error), _) => Err(error),
        (Ok(_), None) => bail!("the archive holds no {MANIFEST_NAME}"),
    }
}

/// Completes `staging`, where a delta's files were extracted, from the base wheelhouse `base`
/// (whose manifest the caller proved is the delta's base): each file the delta leaves out is
/// hard-linked from the base where the file system allows (nothing writes through a link: the
/// base stays as it was), else copied; then the index files the delta left out, when the new
/// wheelhouse has an index. The caller verifies every byte of `staging` afterwards.
pub fn fill_from_base(
    staging: &Path,
    base: &Path,
    base_manifest: &Manifest,
    manifest: &Manifest,
    delta: &DeltaRecord,
) -> Result<Taken> {
    let mut taken = Taken::default();
    for entry in &manifest.files {
        let target = staging.join(&entry.filename);
        if std::fs::symlink_metadata(&target).is_ok() {
            continue;
        }
        if let Some(why) = missing_from_base(base_manifest, entry) {
            bail!("{}", shown(&why));
        }
        let source = base.join(&entry.filename);
        if !std::fs::symlink_metadata(&source).is_ok_and(|metadata| metadata.is_file()) {
            bail!("{} is not a regular file in the base {}", shown(&entry.filename), base.display());
        }
        if link_or_copy(&source, &target)? {
            taken.linked.push(entry.filename.clone());
        }
        taken.files += 1;
        taken.bytes = taken.bytes.saturating_add(entry.size);
    }
    if delta.index {
        // Only what the base's index holds as regular files below a real `simple/`: a link there
        // could lead outside the base.
        let (base_files, base_strays) = index_in_wheelhouse(base)?;
        let base_files: BTreeSet<String> =
            if base_strays.is_empty() { base_files.into_iter().collect() } else { BTreeSet::new() };
        // Each project's directory made once: a mkdir that fails because it exists still costs
        // ext4 a search for a free inode, a third of the apply's time over 300 projects.
        let mut made = BTreeSet::new();
        let mut missing = Vec::new();
        for name in index_names(manifest) {
            let (source, target) = (base.join(&name), staging.join(&name));
            if std::fs::symlink_metadata(&target).is_ok() {
                continue;
            }
            if !base_files.contains(&name) {
                missing.push(name);
                continue;
            }
            if let Some(parent) = target.parent().filter(|parent| !made.contains(*parent)) {
                fs_err::create_dir_all(parent)?;
                made.insert(parent.to_path_buf());
            }
            // Linked like the distributions: the check that follows compares every page and
            // metadata file with the one these files give.
            if link_or_copy(&source, &target)? {
                taken.linked.push(name);
            }
        }
        // The base's manifest names the delta's base, not its index: one unpacked from an archive
        // packed before `index` ran has none.
        if let Some(first) = missing.first() {
            bail!(
                "the new wheelhouse has an index, and {} of its files ({}) are neither in the delta nor in the base's index{}\nhint: unpack the full archive, or make the delta against what the far side holds (`pack-wheelhouse --since` its archive or manifest)",
                missing.len(),
                shown(first),
                if base_strays.is_empty() { String::new() } else { format!(" (its {INDEX_DIR}/ holds {}, which is not an index file)", shown(&base_strays[0])) }
            );
        }
    }
    Ok(taken)
}

/// What [`fill_from_base`] took from the base: files and bytes, and the names it hard-linked.
#[derive(Debug, Default)]
pub struct Taken {
    pub files: usize,
    pub bytes: u64,
    pub linked: Vec<String>,
}

/// A hard link where the file system allows one (true), else a copy.
fn link_or_copy(source: &Path, target: &Path) -> Result<bool> {
    if std::fs::hard_link(source, target).is_ok() {
        return Ok(true);
    }
    fs_err::copy(source, target)?;
    Ok(false)
}

/// Refuses a base whose manifest is not the one the delta names, naming both digests.
pub fn check_base(base: &Path, base_sha256: &str, delta: &DeltaRecord) -> Result<()> {
    if base_sha256 != delta.base_manifest_sha256 {
        bail!(
            "the delta applies to the wheelhouse whose manifest has sha256 {}, but {} has {base_sha256}: refused\nhint: apply the deltas in order, or unpack a full archive",
            delta.base_manifest_sha256,
            base.display()
        );
    }
    Ok(())
}

/// The index a base held, to leave out of a delta the index files it holds with the same bytes:
/// a base directory's files, or the sha256 of each index entry of a base archive.
pub enum BaseIndex {
    None,
    Directory(PathBuf),
    Digests(BTreeMap<String, String>),
}

impl BaseIndex {
    /// Reads what `source` holds of an index: an archive is read through (its distributions are
    /// skipped, not hashed), a manifest holds none.
    pub fn of(source: &ManifestSource) -> Result<BaseIndex> {
        match source.kind {
            SourceKind::Manifest => Ok(BaseIndex::None),
            SourceKind::Wheelhouse => Ok(BaseIndex::Directory(source.path.clone())),
            SourceKind::Archive => {
                let mut digests = BTreeMap::new();
                let file = fs_err::File::open(&source.path)?;
                archive::read(io::BufReader::with_capacity(1 << 20, file), Limits::default(), |name, size, content| {
                    if is_index_file(name) && size <= MAX_INDEX_FILE_BYTES {
                        let mut hashing = Hashing::new(content.take(MAX_INDEX_FILE_BYTES));
                        io::copy(&mut hashing, &mut io::sink())?;
                        digests.insert(name.to_owned(), hashing.finish().1);
                    }
                    Ok(())
                })
                .with_context(|| format!("cannot read the base {}", source.path.display()))?;
                Ok(BaseIndex::Digests(digests))
            }
        }
    }

    /// Whether the base holds the index file `name` of `wheelhouse` with the same bytes: a delta
    /// leaves those out, and its unpack takes them from the base.
    pub fn holds_same(&self, wheelhouse: &Path, name: &str) -> bool {
        match self {
            BaseIndex::None => false,
            BaseIndex::Directory(base) => {
                let source = base.join(name);
                if !std::fs::symlink_metadata(&source).is_ok_and(|metadata| metadata.is_file()) {
                    return false;
                }
                match (std::fs::read(source), std::fs::read(wheelhouse.join(name))) {
                    (Ok(old), Ok(new)) => old == new,
                    _ => false,
                }
            }
            BaseIndex::Digests(digests) => digests
                .get(name)
                .is_some_and(|old| std::fs::read(wheelhouse.join(name)).is_ok_and(|new| sha256_hex(&new) == *old)),
        }
    }
}
