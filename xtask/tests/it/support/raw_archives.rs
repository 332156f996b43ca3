//! Archives no honest writer makes, built byte by byte for the hostile-archive and property tests:
//! tar headers with any name, type and claimed size, PAX records, gzip streams with long runs, and
//! wheelhouse archives whose entries a test lays out by hand.

/// A tar header written byte by byte, for what no honest writer makes: any name up to 100 bytes,
/// any type flag, any claimed size. Owner 0:0, mode 0644, a ustar magic and a right checksum.
pub fn tar_header(name: &[u8], type_flag: u8, size: u64) -> [u8; 512] {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name);
    for (offset, value) in [(100, 0o644u64), (108, 0), (116, 0)] {
        header[offset..offset + 8].copy_from_slice(format!("{value:07o}\0").as_bytes());
    }
    header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    header[136..148].copy_from_slice(format!("{:011o}\0", 0).as_bytes());
    header[156] = type_flag;
    header[257..265].copy_from_slice(b"ustar\x0000");
    header[148..156].copy_from_slice(b"        ");
    let checksum: u32 = header.iter().map(|byte| u32::from(*byte)).sum();
    header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    header
}

/// A header, `data`, and the zeros that pad it to the next 512-byte block.
pub fn tar_entry(name: &[u8], type_flag: u8, data: &[u8]) -> Vec<u8> {
    let mut entry = tar_header(name, type_flag, data.len() as u64).to_vec();
    entry.extend_from_slice(data);
    entry.resize(entry.len().next_multiple_of(512), 0);
    entry
}

/// One PAX record, `<length> <key>=<value>\n`, its length counting itself.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut length = body + 1;
    while format!("{length}").len() + body != length {
        length += 1;
    }
    let mut record = format!("{length} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// The tar end-of-archive marker: two zero blocks.
pub const END_OF_ARCHIVE: [u8; 1024] = [0; 1024];

/// A gzip file holding `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    gzip_with_run(bytes, 0, 0, b"")
}

/// A gzip file whose content is `before`, then `run_length` copies of `run_byte`, then `after`.
/// Gigabytes of one byte cost a few MB and no time: one MiB of it is deflated once, ending in a
/// full flush (so it refers to nothing before it), and those blocks are repeated; the CRC of the
/// whole is combined from the CRCs of the parts.
pub fn gzip_with_run(before: &[u8], run_byte: u8, run_length: u64, after: &[u8]) -> Vec<u8> {
    const CHUNK: u64 = 1 << 20;
    let chunk = vec![run_byte; CHUNK as usize];
    let mut chunk_crc = flate2::Crc::new();
    chunk_crc.update(&chunk);
    let chunk_deflated = deflate_piece(&chunk, flate2::FlushCompress::Full);
    let rest = vec![run_byte; (run_length % CHUNK) as usize];

    // The gzip header of RFC 1952: magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
    let mut gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut crc = flate2::Crc::new();
    gzip.extend(deflate_piece(before, flate2::FlushCompress::Full));
    crc.update(before);
    for _ in 0..run_length / CHUNK {
        gzip.extend_from_slice(&chunk_deflated);
        crc.combine(&chunk_crc);
    }
    gzip.extend(deflate_piece(&rest, flate2::FlushCompress::Full));
    crc.update(&rest);
    gzip.extend(deflate_piece(after, flate2::FlushCompress::Finish));
    crc.update(after);
    gzip.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the length modulo 2^32, which `Crc` keeps.
    gzip.extend_from_slice(&crc.amount().to_le_bytes());
    gzip
}

/// Raw deflate of `data` by a compressor of its own, ended by `flush`: `Full` leaves the stream
/// open and byte-aligned with nothing referred to across the boundary, `Finish` closes it.
fn deflate_piece(data: &[u8], flush: flate2::FlushCompress) -> Vec<u8> {
    let mut compress = flate2::Compress::new(flate2::Compression::best(), false);
    let mut output = Vec::with_capacity(data.len() + 1024);
    loop {
        let consumed = compress.total_in() as usize;
        let status = compress.compress_vec(&data[consumed..], &mut output, flush).unwrap();
        let all_in = compress.total_in() as usize == data.len();
        let finished = status == flate2::Status::StreamEnd || flush != flate2::FlushCompress::Finish;
        if all_in && finished && output.len() < output.capacity() {
            return output;
        }
        output.reserve(64 << 10);
    }
}

/// `manifest.json` and `SHA256SUMS` of a wheelhouse holding `files` (name and bytes): what
/// verify and unpack check an archive against.
pub fn wheelhouse_manifest(files: &[(&str, &[u8])]) -> (Vec<u8>, Vec<u8>) {
    use xtask::model::manifest::{FileEntry, IndexSettings, Manifest, ToolInfo, FORMAT_VERSION};
    let entries = files.iter().map(|(filename, bytes)| {
        let name = xtask::model::wheel_name::DistributionName::parse(filename).unwrap();
        FileEntry {
            filename: (*filename).to_owned(),
            name: name.name,
            version: name.version,
            sha256: xtask::model::digest::sha256_hex(bytes),
            size: bytes.len() as u64,
            requirements: Default::default(),
            targets: Default::default(),
            origin: "index".to_owned(),
        }
    });
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        tool: ToolInfo {
            name: "xtask".to_owned(),
            version: "0.1.0".to_owned(),
            pip_version: "24.0".to_owned(),
            python_version: "3.11.9".to_owned(),
        },
        inputs_digest: "0".repeat(64),
        index: IndexSettings::default(),
        targets: Vec::new(),
        requirements: Vec::new(),
        resolutions: Vec::new(),
        files: entries.collect(),
    };
    let manifest_bytes = manifest.to_json().into_bytes();
    let sums = manifest.sha256sums(&xtask::model::digest::sha256_hex(&manifest_bytes));
    (manifest_bytes, sums.into_bytes())
}

/// The tar stream of a wheelhouse archive as pack-wheelhouse lays it out (manifest, SHA256SUMS,
/// then `files`), without its end-of-archive marker, so that a test can append what it likes.
pub fn wheelhouse_tar_entries(files: &[(&str, &[u8])]) -> Vec<u8> {
    let (manifest, sums) = wheelhouse_manifest(files);
    let mut tar = tar_entry(b"wheelhouse/manifest.json", b'0', &manifest);
    tar.extend(tar_entry(b"wheelhouse/SHA256SUMS", b'0', &sums));
    for (name, bytes) in files {
        tar.extend(tar_entry(format!("wheelhouse/{name}").as_bytes(), b'0', bytes));
    }
    tar
}
