//! Delta archives (`pack-wheelhouse --since BASE`): the reserved entry that names the base a delta
//! applies to, and which files of a new manifest the base already holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::manifest::{FileEntry, Manifest};

/// The reserved archive entry of a delta, third after `manifest.json` and `SHA256SUMS`. It is never
/// a file of a wheelhouse: unpack reads it and leaves it out.
pub const DELTA_NAME: &str = "delta.json";
pub const DELTA_FORMAT_VERSION: u32 = 1;
/// A delta record is a few hundred bytes; more is not one.
pub const MAX_DELTA_BYTES: u64 = 64 << 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaRecord {
    pub format_version: u32,
    /// sha256 of the base's `manifest.json` bytes: the one wheelhouse this delta applies to.
    pub base_manifest_sha256: String,
    /// The files of the new manifest the delta leaves out, because the base holds them byte for
    /// byte, and their bytes.
    pub kept_files: usize,
    pub kept_bytes: u64,
    /// Whether the new wheelhouse has an index (`index`): pages and `.metadata` files the delta
    /// does not carry come from the base, where they are the same bytes.
    pub index: bool,
}

impl DeltaRecord {
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a delta record always serializes");
        text.push('\n');
        text
    }

    pub fn from_json(bytes: &[u8]) -> Result<DeltaRecord, String> {
        let record: DeltaRecord =
            serde_json::from_slice(bytes).map_err(|error| format!("{DELTA_NAME} is not a delta record: {error}"))?;
        if record.format_version != DELTA_FORMAT_VERSION {
            return Err(format!(
                "{DELTA_NAME} has format_version {}; this tool reads {DELTA_FORMAT_VERSION}",
                record.format_version
            ));
        }
        let sha256 = &record.base_manifest_sha256;
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
            return Err(format!("{DELTA_NAME} names no sha256 of a base manifest"));
        }
        Ok(record)
    }
}

/// What `unpack-wheelhouse` records of the archive it unpacked, beside the wheelhouse (never in
/// it: the wheelhouse stays what its manifest says), for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The manifest unpacked: a record for another manifest is stale and not shown.
    pub manifest_sha256: String,
    pub archive: String,
    pub archive_sha256: String,
    /// For a delta: the manifest it was applied over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_manifest_sha256: Option<String>,
    /// Seconds since the Unix epoch.
    pub unpacked_at: u64,
}

/// The files of `new` a delta carries (the base lacks them, or holds other bytes under the name),
/// and those it keeps from the base, each in manifest order.
pub fn split<'a>(base: &Manifest, new: &'a Manifest) -> (Vec<&'a FileEntry>, Vec<&'a FileEntry>) {
    let in_base: BTreeMap<&str, &FileEntry> = base.files.iter().map(|entry| (entry.filename.as_str(), entry)).collect();
    new.files.iter().partition(|entry| {
        !in_base.get(entry.filename.as_str()).is_some_and(|old| old.sha256 == entry.sha256 && old.size == entry.size)
    })
}

/// Why a file the delta leaves out cannot come from the base, or `None` when the base's manifest
/// lists it with the same bytes.
pub fn missing_from_base(base: &Manifest, entry: &FileEntry) -> Option<String> {
    match base.file(&entry.filename) {
        None => Some(format!("{} is neither in the delta nor in the base", entry.filename)),
        Some(old) if old.sha256 != entry.sha256 || old.size != entry.size => Some(format!(
            "{} is not in the delta, and the base holds other bytes under that name (sha256 {}, the new manifest says {})",
            entry.filename, old.sha256, entry.sha256
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(filename: &str, sha256: &str) -> FileEntry {
        FileEntry::for_tests(filename, sha256)
    }

    fn manifest(files: Vec<FileEntry>) -> Manifest {
        Manifest { files, ..Manifest::empty_for_tests() }
    }

    #[test]
    fn a_delta_carries_what_the_base_lacks_or_holds_other_bytes_of() {
        let base = manifest(vec![entry("a.whl", "1"), entry("b.whl", "2"), entry("c.whl", "3")]);
        let new = manifest(vec![entry("a.whl", "1"), entry("b.whl", "changed"), entry("d.whl", "4")]);
        let (carried, kept) = split(&base, &new);
        let names = |entries: Vec<&FileEntry>| entries.iter().map(|entry| entry.filename.clone()).collect::<Vec<_>>();
        assert_eq!(names(carried), ["b.whl", "d.whl"]);
        assert_eq!(names(kept), ["a.whl"]);
        assert_eq!(missing_from_base(&base, &entry("a.whl", "1")), None);
        assert!(missing_from_base(&base, &entry("d.whl", "4"))
            .unwrap()
            .contains("neither in the delta nor in the base"));
        assert!(missing_from_base(&base, &entry("b.whl", "changed")).unwrap().contains("other bytes under that name"));
    }

    #[test]
    fn a_record_round_trips_and_a_bad_one_is_refused() {
        let record = DeltaRecord {
            format_version: DELTA_FORMAT_VERSION,
            base_manifest_sha256: "ab".repeat(32),
            kept_files: 3,
            kept_bytes: 30,
            index: false,
        };
        assert_eq!(DeltaRecord::from_json(record.to_json().as_bytes()).unwrap(), record);
        let check = |text: &str, expected: &str| {
            let error = DeltaRecord::from_json(text.as_bytes()).unwrap_err();
            assert!(error.contains(expected), "{error}");
        };
        check(&record.to_json().replace("\"format_version\": 1", "\"format_version\": 2"), "format_version 2");
        check(&record.to_json().replace(&"ab".repeat(32), "../x"), "names no sha256");
        check("{}", "is not a delta record");
    }
}
