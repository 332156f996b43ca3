//! Reading distribution files: digests streamed from disk, and the METADATA inside a wheel.

use std::{io::Read, path::Path};

use anyhow::{Context, Result};

use crate::model::digest::Algorithm;

/// The most of a wheel's METADATA that is read: the headers come first, and a description can be
/// long, but nothing legitimate comes near this.
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// Streams the file through sha256 (the sha2 crate uses the CPU's SHA extensions where present).
pub fn sha256_file(path: &Path) -> Result<String> {
    digest_file(Algorithm::Sha256, path)
}

/// Streams the file through `algorithm`, in 1 MiB reads: memory stays flat for any file size.
pub fn digest_file(algorithm: Algorithm, path: &Path) -> Result<String> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = algorithm.hasher();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file.read(&mut buffer).with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finish_hex())
}

/// The `*.dist-info/METADATA` of a wheel, when it has one at the top level.
pub fn wheel_metadata(path: &Path) -> Result<Option<String>> {
    let Some(bytes) = wheel_metadata_bytes(path)? else { return Ok(None) };
    String::from_utf8(bytes).map(Some).with_context(|| format!("the METADATA of {} is not UTF-8", path.display()))
}

/// The bytes of a wheel's `.dist-info/METADATA`, as they are (what PEP 658 serves), at most
/// 16 MiB; `None` when it has none.
pub fn wheel_metadata_bytes(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = fs_err::File::open(path)?;
    wheel_metadata_from(file, &path.display().to_string())
}

/// [`wheel_metadata_bytes`] of a wheel already read (into memory, say), named `shown` in errors.
pub fn wheel_metadata_from(wheel: impl Read + std::io::Seek, shown: &str) -> Result<Option<Vec<u8>>> {
    let mut archive = zip::ZipArchive::new(wheel).with_context(|| format!("{shown} is not a valid wheel"))?;
    let metadata_name = (0..archive.len())
        .filter_map(|index| archive.name_for_index(index).map(str::to_owned))
        .find(|name| name.ends_with(".dist-info/METADATA") && name.matches('/').count() == 1);
    let Some(metadata_name) = metadata_name else { return Ok(None) };
    let mut bytes = Vec::new();
    archive
        .by_name(&metadata_name)?
        .take(MAX_METADATA_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {metadata_name} in {shown}"))?;
    Ok(Some(bytes))
}
