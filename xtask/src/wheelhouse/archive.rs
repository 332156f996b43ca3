//! The archive format (docs/pack-verify-unpack.md): a gzip'd tar whose bytes depend only on the names and
//! contents of what goes in, and a reader that refuses anything but plain files in one directory.

use std::io::{self, BufRead, BufReader, Read, Write};

use anyhow::{bail, Context, Result};
use flate2::{bufread::GzDecoder, write::GzEncoder, Compression, GzBuilder};
use sha2::{Digest, Sha256};

use crate::model::{
    digest::hex,
    simple_index::{is_index_dir, is_index_file},
    untrusted::shown_bytes,
};

mod tar_stream;

use tar_stream::TarReader;
pub use tar_stream::{MAX_END_ZEROS, MAX_LONG_NAME_BYTES, MAX_PAX_BYTES};

/// The one directory an archive holds: `tar xzf` makes `wheelhouse/` wherever it runs.
pub const ROOT: &str = "wheelhouse";
/// Stored deflate blocks: wheels are zip files of deflated members already. Measured (see
/// docs/benchmarks.md), level 1 saves 0.2 % of incompressible payloads and 3 % of a real
/// wheelhouse for a slower pack, level 6 little more for five times the time.
pub const DEFAULT_LEVEL: u32 = 0;
/// Files are 0644 and directories 0755 whatever the umask or file system said.
pub const FILE_MODE: u32 = 0o644;
pub const EXECUTABLE_MODE: u32 = 0o755;

/// Digests of what a writer wrote or a reader read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Digests {
    /// sha256 of the `.tgz` bytes: what the `.sha256` sidecar holds.
    pub archive_sha256: String,
    pub archive_bytes: u64,
    /// sha256 of the tar stream inside: the same for any gzip implementation or level.
    pub tar_sha256: String,
    pub tar_bytes: u64,
}

/// Passes bytes through and hashes them on the way.
pub struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Hashing<T> {
        Hashing { inner, hasher: Sha256::new(), bytes: 0 }
    }

    pub fn finish(self) -> (T, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buffer)?;
        self.hasher.update(&buffer[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.bytes += read as u64;
        Ok(read)
    }
}

/// A writer that hands its bytes, 1 MiB at a time, to a thread of its own, which hashes them and
/// writes them on: the three sha256 passes of a pack (each file, the tar stream, the archive) then
/// run on different cores instead of one after the other.
pub struct Offload<W: Write + Send + 'static> {
    buffer: Vec<u8>,
    sender: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<io::Result<(W, Sha256, u64)>>>,
}

const OFFLOAD_CHUNK: usize = 1 << 20;

impl<W: Write + Send + 'static> Offload<W> {
    pub fn new(inner: W) -> Offload<W> {
        // A few chunks in flight keep both sides busy without holding much memory.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let worker = std::thread::spawn(move || {
            let mut inner = inner;
            let mut hasher = Sha256::new();
            let mut bytes = 0u64;
            for chunk in receiver {
                hasher.update(&chunk);
                inner.write_all(&chunk)?;
                bytes += chunk.len() as u64;
            }
            inner.flush()?;
            Ok((inner, hasher, bytes))
        });
        Offload { buffer: Vec::with_capacity(OFFLOAD_CHUNK), sender: Some(sender), worker: Some(worker) }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(OFFLOAD_CHUNK));
        let sent = self.sender.as_ref().map(|sender| sender.send(chunk));
        match sent {
            Some(Ok(())) => Ok(()),
            // The worker stopped: its own error says why.
            _ => Err(self.join().err().unwrap_or_else(|| io::Error::other("the writer thread stopped"))),
        }
    }

    fn join(&mut self) -> io::Result<(W, Sha256, u64)> {
        self.sender = None;
        match self.worker.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the writer thread panicked")),
            None => Err(io::Error::other("the writer thread was already joined")),
        }
    }

    /// Everything written, hashed and passed on: the inner writer, the sha256 and the length.
    pub fn finish(mut self) -> io::Result<(W, String, u64)> {
        self.send_buffer()?;
        let (inner, hasher, bytes) = self.join()?;
        Ok((inner, hex(&hasher.finalize()), bytes))
    }
}

impl<W: Write + Send + 'static> Write for Offload<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= OFFLOAD_CHUNK {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

impl<W: Write + Send + 'static> Drop for Offload<W> {
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.join();
        }
    }
}

/// Writes entries in the order given, each header set field by field.
pub struct Writer<W: Write + Send + 'static> {
    tar: tar::Builder<Offload<GzEncoder<Offload<W>>>>,
    mtime: u64,
}

impl<W: Write + Send + 'static> Writer<W> {
    /// `mtime` is every entry's time: `SOURCE_DATE_EPOCH` or 0, never the files' own.
    pub fn new(output: W, level: u32, mtime: u64) -> Writer<W> {
        // No file name and a zero time in the gzip header; flate2 writes OS = 255 (unknown)
        // unless told otherwise, so the header is the same on every machine.
        let gzip = GzBuilder::new().mtime(0).write(Offload::new(output), Compression::new(level.min(9)));
        let mut tar = tar::Builder::new(Offload::new(gzip));
        tar.mode(tar::HeaderMode::Deterministic);
        Writer { tar, mtime }
    }

    /// Appends a regular file at `path` (`/`-separated, relative) with exactly `size` bytes.
    pub fn append(&mut self, path: &str, mode: u32, size: u64, data: impl Read) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(mode);
        // Owner 0:0 with no names: the packer's account must not reach the archive.
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        // append_data writes the path (a GNU long-name entry first when over 100 bytes) and the
        // checksum; everything else is what was set above.
        self.tar.append_data(&mut header, path, data)
    }

    pub fn finish(self) -> io::Result<(W, Digests)> {
        let tar_stream = self.tar.into_inner()?;
        let (gzip, tar_sha256, tar_bytes) = tar_stream.finish()?;
        let output = gzip.finish()?;
        let (output, archive_sha256, archive_bytes) = output.finish()?;
        Ok((output, Digests { archive_sha256, archive_bytes, tar_sha256, tar_bytes }))
    }
}

/// Bounds on what a reader accepts before it has read a manifest to bound it further.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_entries: 100_000, max_total_bytes: 1 << 40 }
    }
}

/// Reads a wheelhouse archive in one pass, handing each file (name inside [`ROOT`], size from its
/// header, content) to `on_file`. Refuses, naming the entry: anything but a regular file, a path
/// that is not `wheelhouse/<name>`, a duplicate, more entries or bytes than `limits`, an extension
/// header over its bound, a malformed or truncated stream, anything but zeros after the
/// end-of-archive marker (or more than [`MAX_END_ZEROS`] of them), and bytes after the end of the
/// gzip stream. What it holds in memory does not depend on what the headers claim.
pub fn read(
    input: impl Read,
    limits: Limits,
    mut on_file: impl FnMut(&str, u64, &mut dyn Read) -> Result<()>,
) -> Result<Digests> {
    let mut raw = BufReader::with_capacity(1 << 20, Hashing::new(input));
    if raw.fill_buf().context("cannot read the archive")?.is_empty() {
        bail!("the archive is empty (0 bytes)");
    }
    let mut tar = TarReader::new(Hashing::new(GzDecoder::new(raw)));
    let mut seen = std::collections::BTreeSet::new();
    let mut directories = 0usize;
    let mut total_bytes = 0u64;
    let mut last = String::from("(the start)");
    while let Some(entry) = tar.next_entry().map_err(|error| malformed(&last, error))? {
        let path = shown_bytes(&entry.path);
        let is_root = std::str::from_utf8(&entry.path).is_ok_and(|path| path.trim_end_matches('/') == ROOT);
        let is_index_dir = std::str::from_utf8(&entry.path).is_ok_and(|path| {
            path.strip_prefix(ROOT)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| is_index_dir(rest.trim_end_matches('/')))
        });
        if entry.entry_type.is_dir() && (is_root || is_index_dir) {
            // Data after a directory header is read as the next header by some tars and skipped
            // by others: what one sees, the other must too.
            if entry.size != 0 {
                bail!("archive entry `{path}` is a directory with {} bytes of data: refused", entry.size);
            }
            directories += 1;
            if directories > limits.max_entries {
                bail!("archive has more than {} directory entries: refused at `{path}`", limits.max_entries);
            }
            continue;
        }
        let name = file_name_in_root(&entry.path, &path)?;
        if !(entry.entry_type.is_file() || entry.entry_type == tar::EntryType::Continuous) {
            bail!("archive entry `{path}` is a {}, not a regular file: refused", type_name(entry.entry_type));
        }
        if !seen.insert(name.to_owned()) {
            bail!("archive entry `{path}` appears twice: refused");
        }
        if seen.len() > limits.max_entries {
            bail!("archive has more than {} entries: refused at `{path}`", limits.max_entries);
        }
        total_bytes = total_bytes.saturating_add(entry.size);
        if total_bytes > limits.max_total_bytes {
            bail!("archive holds more than {} bytes: refused at `{path}`", limits.max_total_bytes);
        }
        on_file(name, entry.size, &mut StreamErrors(&mut tar)).with_context(|| format!("archive entry `{path}`"))?;
        // The rest of an entry a callback did not read is skipped by the next `next_entry`.
        last = path;
    }
    // The end-of-archive marker was read up to the end of the gzip stream, whose CRC the decoder
    // checked there: whatever follows in the file is not gzip.
    let (decoder, tar_sha256, tar_bytes) = tar.into_inner().finish();
    let mut raw = decoder.into_inner();
    let trailing = io::copy(&mut raw, &mut io::sink()).context("cannot read the archive")?;
    if trailing > 0 {
        bail!("the archive has {trailing} bytes after the end of its gzip stream: refused");
    }
    let (_, archive_sha256, archive_bytes) = raw.into_inner().finish();
    Ok(Digests { archive_sha256, archive_bytes, tar_sha256, tar_bytes })
}

fn malformed(after: &str, error: io::Error) -> anyhow::Error {
    anyhow::anyhow!("the archive is malformed after entry {after}: {}", describe(&error))
}

/// What a decompression or read error means to someone holding the archive.
fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    if error.kind() == io::ErrorKind::UnexpectedEof || text.contains("incomplete deflate stream") {
        "the archive ends early (truncated?)".to_owned()
    } else if text.contains("invalid gzip header") {
        "it is not a gzip file".to_owned()
    } else if text.contains("corrupt deflate stream") || text.contains("crc") {
        format!("the compressed data is corrupt ({text})")
    } else {
        text
    }
}

/// An entry's content, with stream errors said in the user's terms.
struct StreamErrors<'a, R>(&'a mut R);

impl<R: Read> Read for StreamErrors<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.0.read(buffer).map_err(|error| io::Error::new(error.kind(), describe(&error)))
    }
}

/// `wheelhouse/<name>` → `<name>`, where `<name>` is one plain path component, or a page of the
/// wheelhouse's index (`simple/index.html`, `simple/<project>/index.json`: a closed list of
/// names, nothing deeper); `shown` is the path as errors print it.
fn file_name_in_root<'a>(path: &'a [u8], shown: &str) -> Result<&'a str> {
    let refuse = |why: &str| anyhow::anyhow!("archive entry `{shown}` {why}: refused");
    let path = std::str::from_utf8(path).map_err(|_| refuse("is not UTF-8"))?;
    if path.starts_with('/') {
        return Err(refuse("has an absolute path"));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(refuse("has a `..` component"));
    }
    let name = path
        .strip_prefix(ROOT)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| refuse(&format!("is outside `{ROOT}/`")))?;
    if name.contains('/') && is_index_file(name) {
        return Ok(name);
    }
    if name.is_empty() || name == "." || name.contains('/') || name.contains('\0') || name.contains('\\') {
        return Err(refuse(&format!("is not a plain file name directly in `{ROOT}/`")));
    }
    Ok(name)
}

fn type_name(entry_type: tar::EntryType) -> &'static str {
    match entry_type {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        tar::EntryType::Directory => "directory",
        _ => "special entry",
    }
}

/// `SOURCE_DATE_EPOCH` when set (reproducible-builds.org), else 0.
pub fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => {
            text.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH=`{text}` is not a number of seconds"))
        }
        Err(_) => Ok(0),
    }
}

/// `SOURCE_DATE_EPOCH` when set, else nothing (for fields that are better absent than made up).
pub fn source_date_epoch_option() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(_) => source_date_epoch().map(Some),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(files: &[(&str, &[u8])], level: u32) -> (Vec<u8>, Digests) {
        let mut writer = Writer::new(Vec::new(), level, 0);
        for (path, data) in files {
            writer.append(path, FILE_MODE, data.len() as u64, *data).unwrap();
        }
        writer.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = Vec::new();
        read(bytes, Limits::default(), |name, _, content| {
            let mut data = Vec::new();
            content.read_to_end(&mut data)?;
            files.push((name.to_owned(), data));
            Ok(())
        })?;
        Ok(files)
    }

    /// A ustar entry written byte by byte, for what no honest writer makes.
    fn raw_entry(name: &str, type_flag: u8, link: &str, data: &[u8]) -> Vec<u8> {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        for (offset, value) in [(100, 0o644u64), (108, 0), (116, 0), (136, 0)] {
            header[offset..offset + 8].copy_from_slice(format!("{value:07o}\0").as_bytes());
        }
        header[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        header[156] = type_flag;
        header[157..157 + link.len()].copy_from_slice(link.as_bytes());
        header[257..265].copy_from_slice(b"ustar\x0000");
        header[148..156].copy_from_slice(b"        ");
        let checksum: u32 = header.iter().map(|byte| u32::from(*byte)).sum();
        header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
        let mut entry = header.to_vec();
        entry.extend_from_slice(data);
        entry.resize(entry.len().next_multiple_of(512), 0);
        entry
    }

    /// A header's size field set to `size`, its checksum made right again.
    fn set_size(entry: &mut [u8], size: u64) {
        entry[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        entry[148..156].copy_from_slice(b"        ");
        let checksum: u32 = entry[..512].iter().map(|byte| u32::from(*byte)).sum();
        entry[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    }

    fn gzip_entries(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        for entry in entries {
            encoder.write_all(entry).unwrap();
        }
        encoder.write_all(&[0u8; 1024]).unwrap();
        encoder.finish().unwrap()
    }

    fn check_refused(entries: &[Vec<u8>], expected: &str) {
        let error = format!("{:#}", read_all(&gzip_entries(entries)).unwrap_err());
        assert!(error.contains(expected), "{error}");
    }

    #[test]
    fn round_trips_long_names_and_reports_digests() {
        let long = format!("{ROOT}/{}-1.0-py3-none-any.whl", "x".repeat(120));
        let (bytes, written) = pack(&[("wheelhouse/a.txt", b"alpha"), (&long, b"beta")], 1);
        let mut files = Vec::new();
        let read_digests = read(&bytes[..], Limits::default(), |name, size, content| {
            let mut data = Vec::new();
            content.read_to_end(&mut data)?;
            assert_eq!(size, data.len() as u64);
            files.push(name.to_owned());
            Ok(())
        })
        .unwrap();
        assert_eq!(files, ["a.txt".to_owned(), long[ROOT.len() + 1..].to_owned()]);
        assert_eq!(read_digests, written);
        assert_eq!(written.archive_bytes, bytes.len() as u64);
    }

    #[test]
    fn the_tar_stream_does_not_depend_on_the_compression_level() {
        let files: &[(&str, &[u8])] = &[("wheelhouse/a", b"same bytes")];
        let (stored, stored_digests) = pack(files, 0);
        let (deflated, deflated_digests) = pack(files, 9);
        assert_ne!(stored, deflated);
        assert_eq!(stored_digests.tar_sha256, deflated_digests.tar_sha256);
        assert_eq!(pack(files, 0).0, stored, "same input, same bytes");
    }

    #[test]
    fn refuses_unsafe_paths_links_devices_and_duplicates() {
        let file = |name: &str| raw_entry(name, b'0', "", b"x");
        check_refused(&[file("wheelhouse/../etc/passwd")], "has a `..` component");
        check_refused(&[file("/etc/passwd")], "has an absolute path");
        check_refused(&[file("other/a")], "is outside `wheelhouse/`");
        check_refused(&[file("wheelhouse/sub/a")], "is not a plain file name");
        check_refused(&[file("wheelhouse/a"), file("wheelhouse/a")], "`wheelhouse/a` appears twice");
        check_refused(&[raw_entry("wheelhouse/l", b'2', "/etc/passwd", b"")], "`wheelhouse/l` is a symbolic link");
        check_refused(&[raw_entry("wheelhouse/h", b'1', "wheelhouse/a", b"")], "`wheelhouse/h` is a hard link");
        check_refused(&[raw_entry("wheelhouse/d", b'3', "", b"")], "`wheelhouse/d` is a character device");
        check_refused(&[raw_entry("wheelhouse/f", b'6', "", b"")], "`wheelhouse/f` is a FIFO");
        let mut lying = raw_entry("wheelhouse/a", b'0', "", &[b'y'; 1000]);
        // The header says 10 bytes; the 1000 that follow are read as the next header.
        set_size(&mut lying, 10);
        check_refused(&[lying], "malformed after entry wheelhouse/a");
    }

    #[test]
    fn refuses_bad_streams() {
        let error = read_all(b"").unwrap_err().to_string();
        assert_eq!(error, "the archive is empty (0 bytes)");
        let error = read_all(b"this is not gzip at all").unwrap_err().to_string();
        assert!(error.contains("not a gzip file"), "{error}");
        let (bytes, _) = pack(&[("wheelhouse/a", &[7u8; 100_000])], 0);
        let error = format!("{:#}", read_all(&bytes[..bytes.len() / 2]).unwrap_err());
        assert!(error.contains("archive entry `wheelhouse/a`: the archive ends early (truncated?)"), "{error}");
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"junk");
        let error = read_all(&trailing).unwrap_err().to_string();
        assert!(error.contains("4 bytes after the end of its gzip stream"), "{error}");
    }

    #[test]
    fn bounds_extension_headers_and_refuses_data_after_the_end_marker() {
        let claiming = |type_flag: u8, size: u64| {
            let mut header = raw_entry("././@LongLink", type_flag, "", b"");
            set_size(&mut header, size);
            header
        };
        check_refused(
            &[claiming(b'L', 3 << 30)],
            "after entry (the start): header 1 (a GNU long-name header at byte 0 of the tar stream) claims \
             3221225472 bytes, more than the 4096 such a header may hold: refused",
        );
        check_refused(&[claiming(b'x', MAX_PAX_BYTES + 1)], "(a PAX header at byte 0 of the tar stream) claims 65537");
        let file = raw_entry("wheelhouse/a", b'0', "", b"x");
        let junk = b"junk".to_vec();
        check_refused(
            &[file.clone(), vec![0; 1024], junk],
            "after entry wheelhouse/a: data follows the end-of-archive marker at byte 1024 (byte 2048",
        );
        check_refused(&[file, vec![0; MAX_END_ZEROS as usize]], "more than 262144 zero bytes follow the last entry");
        // A long name within the bound, printed escaped and cut.
        let long_name = raw_entry("././@LongLink", b'L', "", format!("\x1b[2J{}\0", "n".repeat(300)).as_bytes());
        let error = format!("{:#}", read_all(&gzip_entries(&[long_name, raw_entry("x", b'0', "", b"")])).unwrap_err());
        assert!(error.starts_with("archive entry `\\x1b[2Jnnn"), "{error}");
        assert!(error.ends_with("nnn... (104 more characters)` is outside `wheelhouse/`: refused"), "{error}");
    }
}
