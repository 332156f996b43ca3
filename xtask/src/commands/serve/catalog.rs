//! Everything `serve` may answer with, fixed before the first request: the index pages and
//! METADATA files rendered in memory, and each file of the manifest either held in memory (its
//! bytes hashed once more as they were read) or, past the memory budget, on disk with the size,
//! times and inode it had when it was hashed.

use std::{
    collections::{BTreeMap, HashMap},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use xtask::{
    model::{
        digest::sha256_hex,
        manifest::{FileEntry, Manifest},
        serving::MANIFEST_FILES,
        simple_index::{pages, FileMetadata, Layout},
    },
    parallel,
    wheelhouse::files::{sha256_file, wheel_metadata_bytes, wheel_metadata_from},
};

/// A body known in advance, with its entity tag.
pub struct Static {
    pub bytes: Bytes,
    pub etag: String,
}

impl Static {
    fn new(bytes: Vec<u8>) -> Static {
        let etag = format!("\"{}\"", sha256_hex(&bytes));
        Static { bytes: Bytes::from(bytes), etag }
    }
}

/// A file of the manifest as it is served.
pub enum Body {
    Memory(Bytes),
    Disk { path: PathBuf, stamp: Stamp },
}

/// What a file on disk must still show when it is served: a write, a rename over it or a change
/// of its times all change the ctime, which no user can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub modified_nanos: i128,
    pub changed_nanos: i128,
    pub inode: u64,
    pub device: u64,
}

impl Stamp {
    pub fn of(metadata: &std::fs::Metadata) -> Stamp {
        let nanos = |seconds: i64, nanos: i64| i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        Stamp {
            size: metadata.len(),
            modified_nanos: nanos(metadata.mtime(), metadata.mtime_nsec()),
            changed_nanos: nanos(metadata.ctime(), metadata.ctime_nsec()),
            inode: metadata.ino(),
            device: metadata.dev(),
        }
    }
}

pub struct File {
    pub body: Body,
    pub sha256: String,
    pub size: u64,
    pub etag: String,
}

pub struct Catalog {
    /// By path relative to the index root: `simple/index.html`, `simple/flask/index.json`, ...
    pub pages: HashMap<String, Static>,
    /// By wheel file name.
    pub metadata: HashMap<String, Static>,
    /// `manifest.json` and the signatures the wheelhouse holds.
    pub manifest_files: HashMap<&'static str, Static>,
    pub files: HashMap<String, File>,
    pub n_bytes: u64,
    pub n_in_memory: usize,
}

/// The catalog of `wheelhouse`, from the manifest and signatures the caller verified. Every
/// file is hashed again here, against that manifest, and the METADATA served is read from the
/// bytes that were hashed: what is answered is what was verified, whatever happens on disk
/// meanwhile. Files are held in memory, in manifest order, while their sizes fit in
/// `memory_budget` bytes; the others get a [`Stamp`] taken before their hash and checked after it.
pub fn load(
    wheelhouse: &Path,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    signatures: &BTreeMap<String, Vec<u8>>,
    memory_budget: u64,
) -> Result<Catalog> {
    let mut manifest_files = HashMap::new();
    manifest_files.insert(MANIFEST_FILES[0], Static::new(manifest_bytes.to_vec()));
    for (name, bytes) in signatures {
        if let Some(name) = MANIFEST_FILES.iter().find(|known| **known == name) {
            manifest_files.insert(*name, Static::new(bytes.clone()));
        }
    }
    let mut used = 0u64;
    let in_memory: Vec<bool> = manifest
        .files
        .iter()
        .map(|entry| {
            let fits = used.saturating_add(entry.size) <= memory_budget;
            used += if fits { entry.size } else { 0 };
            fits
        })
        .collect();
    let indexed: Vec<usize> = (0..manifest.files.len()).collect();
    let loaded = parallel::map(&indexed, parallel::default_jobs(), |_, index| {
        load_file(wheelhouse, &manifest.files[*index], in_memory[*index])
    });
    let mut files = HashMap::new();
    let mut metadata_of = BTreeMap::new();
    let mut metadata = HashMap::new();
    for (entry, loaded) in manifest.files.iter().zip(loaded) {
        let (body, wheel_metadata) = loaded?;
        if let Some(bytes) = wheel_metadata {
            metadata_of.insert(entry.filename.clone(), FileMetadata::of(&bytes));
            metadata.insert(entry.filename.clone(), Static::new(bytes));
        }
        let file = File { body, sha256: entry.sha256.clone(), size: entry.size, etag: format!("\"{}\"", entry.sha256) };
        files.insert(entry.filename.clone(), file);
    }
    let pages = pages(manifest, &metadata_of, Layout::Tree)
        .into_iter()
        .map(|(path, text)| (path, Static::new(text.into_bytes())))
        .collect();
    let n_bytes = manifest.files.iter().map(|entry| entry.size).sum();
    let n_in_memory = in_memory.iter().filter(|fits| **fits).count();
    Ok(Catalog { pages, metadata, manifest_files, files, n_bytes, n_in_memory })
}

/// One file, hashed against its entry: its body, and for a wheel its METADATA.
fn load_file(wheelhouse: &Path, entry: &FileEntry, in_memory: bool) -> Result<(Body, Option<Vec<u8>>)> {
    let path = wheelhouse.join(&entry.filename);
    let changed = |what: String| anyhow::anyhow!("{} changed while it was being verified: {what}", entry.filename);
    let before = fs_err::symlink_metadata(&path)?;
    if !before.file_type().is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let is_wheel = entry.filename.ends_with(".whl");
    let wheel_metadata = |reader: &mut dyn FnMut() -> Result<Option<Vec<u8>>>| -> Result<Option<Vec<u8>>> {
        if !is_wheel {
            return Ok(None);
        }
        Ok(Some(reader()?.with_context(|| format!("{} has no .dist-info/METADATA", entry.filename))?))
    };
    let check = |actual: &str, size: u64| -> Result<()> {
        if actual != entry.sha256 || size != entry.size {
            return Err(changed(format!(
                "sha256 {actual} ({size} bytes), expected {} ({} bytes)",
                entry.sha256, entry.size
            )));
        }
        Ok(())
    };
    if in_memory {
        let bytes = fs_err::read(&path)?;
        check(&sha256_hex(&bytes), bytes.len() as u64)?;
        let metadata = wheel_metadata(&mut || wheel_metadata_from(std::io::Cursor::new(&bytes[..]), &entry.filename))?;
        return Ok((Body::Memory(Bytes::from(bytes)), metadata));
    }
    let stamp = Stamp::of(&before);
    check(&sha256_file(&path)?, stamp.size)?;
    let metadata = wheel_metadata(&mut || wheel_metadata_bytes(&path))?;
    if Stamp::of(&fs_err::symlink_metadata(&path)?) != stamp {
        return Err(changed("its size, times or inode moved".to_owned()));
    }
    Ok((Body::Disk { path, stamp }, metadata))
}
