//! Everything `serve` may answer with, fixed before the first request: the index pages and
//! METADATA files rendered in memory, and each file of the manifest either held in memory (its
//! bytes hashed once more as they were read) or, past the memory budget, on disk with the size,
//! modification time and inode it had when it was verified.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Result};
use bytes::Bytes;
use xtask::{
    model::{digest::sha256_hex, manifest::Manifest, serving::MANIFEST_FILES},
    wheelhouse::{layout::read_signatures, simple_index::render},
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

/// What a file on disk must still show when it is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub modified_nanos: i128,
    pub inode: u64,
    pub device: u64,
}

impl Stamp {
    pub fn of(metadata: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: metadata.len(),
            modified_nanos: i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec()),
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

/// The catalog of `wheelhouse`, whose files the caller has verified against `manifest`. Files
/// are held in memory, in manifest order, while their sizes fit in `memory_budget` bytes.
pub fn load(wheelhouse: &Path, manifest: &Manifest, manifest_bytes: &[u8], memory_budget: u64) -> Result<Catalog> {
    let rendered = render(wheelhouse, manifest, manifest_bytes)?;
    let mut manifest_files = HashMap::new();
    manifest_files.insert(MANIFEST_FILES[0], Static::new(manifest_bytes.to_vec()));
    for (name, bytes) in read_signatures(wheelhouse)? {
        if let Some(name) = MANIFEST_FILES.iter().find(|known| **known == name) {
            manifest_files.insert(*name, Static::new(bytes));
        }
    }
    let mut pages = HashMap::new();
    let mut metadata = HashMap::new();
    for (path, bytes) in rendered.texts {
        if let Some(page) = path.strip_prefix("simple/").map(|_| path.clone()) {
            pages.insert(page, Static::new(bytes));
        } else if let Some(wheel) = path.strip_prefix("files/").and_then(|name| name.strip_suffix(".metadata")) {
            metadata.insert(wheel.to_owned(), Static::new(bytes));
        }
    }
    let mut files = HashMap::new();
    let mut used = 0u64;
    let mut n_bytes = 0u64;
    let mut n_in_memory = 0;
    for entry in &manifest.files {
        let path = wheelhouse.join(&entry.filename);
        n_bytes += entry.size;
        let body = if used.saturating_add(entry.size) <= memory_budget {
            let bytes = fs_err::read(&path)?;
            let actual = sha256_hex(&bytes);
            if actual != entry.sha256 || bytes.len() as u64 != entry.size {
                bail!(
                    "{} changed while it was being verified: sha256 {actual}, expected {}",
                    entry.filename,
                    entry.sha256
                );
            }
            used += entry.size;
            n_in_memory += 1;
            Body::Memory(Bytes::from(bytes))
        } else {
            let stamp = Stamp::of(&fs_err::metadata(&path)?);
            if stamp.size != entry.size {
                bail!(
                    "{} changed while it was being verified: {} bytes, expected {}",
                    entry.filename,
                    stamp.size,
                    entry.size
                );
            }
            Body::Disk { path, stamp }
        };
        files.insert(
            entry.filename.clone(),
            File { body, sha256: entry.sha256.clone(), size: entry.size, etag: format!("\"{}\"", entry.sha256) },
        );
    }
    Ok(Catalog { pages, metadata, manifest_files, files, n_bytes, n_in_memory })
}
