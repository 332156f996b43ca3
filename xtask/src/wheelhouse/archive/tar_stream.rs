//! A tar stream read header by header, with a bound on every size a header claims before a byte
//! of what it claims is read, and nothing but zero padding after the end-of-archive marker.

use std::io::{self, Read};

/// The most a GNU long-name or long-link header may hold. pack-wheelhouse's writer makes one only
/// for a path over 100 bytes: `wheelhouse/` and one file name, at most 255 bytes on Linux file
/// systems, so 267 bytes with its NUL. (`dist`'s archives, deeper, are read by tar, not here.)
pub const MAX_LONG_NAME_BYTES: u64 = 4 << 10;
/// The most a PAX header (`x` or `g`) may hold. The writer makes none (the `tar` crate's builder
/// writes GNU long names instead); a path and a size take well under 1 KiB, and the records other
/// tars add (times, owners, extended attributes) fit.
pub const MAX_PAX_BYTES: u64 = 64 << 10;
/// The most zero bytes after the last entry, the two blocks of the end-of-archive marker
/// included. The writer makes 1 KiB; GNU tar and Python's tarfile pad to a 10 KiB record;
/// 256 KiB is the record of tar's blocking factor 512.
pub const MAX_END_ZEROS: u64 = 256 << 10;
const BLOCK: u64 = 512;

/// One entry of a tar stream, with what its extension headers said applied.
pub struct TarEntry {
    pub path: Vec<u8>,
    pub entry_type: tar::EntryType,
    pub size: u64,
}

/// A tar stream read header by header, by hand: the `tar` crate reads a GNU long name or a PAX
/// header whole into memory before its caller sees it, so a small archive claiming a 3 GiB name
/// took 3 GiB. Here the size an extension header claims is checked before a byte of it is read.
/// Reading a `TarReader` reads the data of the entry `next_entry` returned last.
pub struct TarReader<R> {
    inner: R,
    /// Bytes of the tar stream read so far, and headers read (extension headers too): where a
    /// refused header is.
    offset: u64,
    headers: u64,
    /// What is left of the current entry's data, and the zeros that pad it to a whole block.
    remaining: u64,
    padding: u64,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> TarReader<R> {
        TarReader { inner, offset: 0, headers: 0, remaining: 0, padding: 0 }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, or `None` after the end-of-archive marker and the zeros that may pad it.
    pub fn next_entry(&mut self) -> io::Result<Option<TarEntry>> {
        let unread = std::mem::take(&mut self.remaining) + std::mem::take(&mut self.padding);
        self.skip(unread)?;
        let mut extensions = Extensions::default();
        loop {
            let start = self.offset;
            let mut header = [0u8; BLOCK as usize];
            if !self.fill(&mut header)? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no end-of-archive marker"));
            }
            if header.iter().all(|byte| *byte == 0) {
                if !extensions.kinds.is_empty() {
                    return Err(invalid("an extension header is followed by no entry".to_owned()));
                }
                self.check_end()?;
                return Ok(None);
            }
            self.headers += 1;
            let size = checked_size(&header)?;
            let (kind, bound) = match header[156] {
                b'L' => ("GNU long-name", MAX_LONG_NAME_BYTES),
                b'K' => ("GNU long-link", MAX_LONG_NAME_BYTES),
                b'x' => ("PAX", MAX_PAX_BYTES),
                b'g' => ("PAX global", MAX_PAX_BYTES),
                type_flag => {
                    let entry = extensions.apply(&header, tar::EntryType::new(type_flag), size)?;
                    (self.remaining, self.padding) = (entry.size, padding(entry.size));
                    return Ok(Some(entry));
                }
            };
            if size > bound {
                return Err(invalid(format!(
                    "header {} (a {kind} header at byte {start} of the tar stream) claims {size} bytes, more than \
                     the {bound} such a header may hold: refused",
                    self.headers
                )));
            }
            let mut data = vec![0u8; size as usize];
            if !self.fill(&mut data)? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.skip(padding(size))?;
            extensions.add(header[156], kind, data)?;
        }
    }

    /// After the first zero block: the second, then zeros only, [`MAX_END_ZEROS`] in all at most,
    /// then the end of the stream. Data after the marker is shown by no tar, and a reader that
    /// drained it would inflate gigabytes for nothing.
    fn check_end(&mut self) -> io::Result<()> {
        let marker = self.offset - BLOCK;
        let mut after = (&mut self.inner).take(MAX_END_ZEROS - BLOCK + 1);
        let mut buffer = [0u8; 8192];
        let mut zeros = 0u64;
        loop {
            let read = match after.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if let Some(index) = buffer[..read].iter().position(|byte| *byte != 0) {
                let at = self.offset + zeros + index as u64;
                return Err(invalid(format!(
                    "data follows the end-of-archive marker at byte {marker} (byte {at} of the tar stream is not zero): \
                     refused"
                )));
            }
            zeros += read as u64;
        }
        self.offset += zeros;
        if zeros < BLOCK {
            return Err(invalid("the archive ends early (truncated?): one zero block ends it, not two".to_owned()));
        }
        if zeros > MAX_END_ZEROS - BLOCK {
            return Err(invalid(format!("more than {MAX_END_ZEROS} zero bytes follow the last entry: refused")));
        }
        Ok(())
    }

    /// Fills `buffer` from the stream; `false` when it ended before the first byte.
    fn fill(&mut self, buffer: &mut [u8]) -> io::Result<bool> {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.inner.read(&mut buffer[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.offset += filled as u64;
        Ok(true)
    }

    fn skip(&mut self, bytes: u64) -> io::Result<()> {
        let skipped = io::copy(&mut (&mut self.inner).take(bytes), &mut io::sink())?;
        self.offset += skipped;
        if skipped < bytes {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

impl<R: Read> Read for TarReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let wanted = buffer.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if wanted == 0 {
            return Ok(0);
        }
        let read = self.inner.read(&mut buffer[..wanted])?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining -= read as u64;
        self.offset += read as u64;
        Ok(read)
    }
}

/// What the extension headers before an entry said. Each kind at most once, and not both a GNU
/// long name and a PAX path: two names for one entry would let two tars see two different files.
#[derive(Default)]
struct Extensions {
    kinds: Vec<u8>,
    long_name: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Extensions {
    fn add(&mut self, type_flag: u8, kind: &str, data: Vec<u8>) -> io::Result<()> {
        if self.kinds.contains(&type_flag) {
            return Err(invalid(format!("two {kind} headers describe one entry: refused")));
        }
        self.kinds.push(type_flag);
        match type_flag {
            b'L' => self.long_name = Some(data),
            b'x' => self.pax = Some(data),
            // A link's target is never used (links are refused), nor global PAX records.
            _ => {}
        }
        Ok(())
    }

    fn apply(self, header: &[u8; BLOCK as usize], entry_type: tar::EntryType, size: u64) -> io::Result<TarEntry> {
        let mut entry = TarEntry { path: header_path(header), entry_type, size };
        if let Some(mut name) = self.long_name {
            while name.last() == Some(&0) {
                name.pop();
            }
            entry.path = name;
        }
        for (key, value) in pax_records(self.pax.as_deref().unwrap_or_default())? {
            match key {
                b"path" if self.kinds.contains(&b'L') => {
                    return Err(invalid("both a GNU long name and a PAX path name one entry: refused".to_owned()))
                }
                b"path" => entry.path = value.to_vec(),
                b"size" => {
                    let size = std::str::from_utf8(value).ok().and_then(|text| text.parse().ok());
                    entry.size = size.ok_or_else(|| invalid("a PAX size is not a number".to_owned()))?;
                }
                _ => {}
            }
        }
        Ok(entry)
    }
}

/// The records of a PAX header: `<length> <key>=<value>\n`, the length counting the whole record.
fn pax_records(mut data: &[u8]) -> io::Result<Vec<(&[u8], &[u8])>> {
    let malformed = || invalid("a PAX header record is malformed".to_owned());
    let mut records = Vec::new();
    while !data.is_empty() {
        let space = data.iter().position(|byte| *byte == b' ').ok_or_else(malformed)?;
        let length: usize =
            std::str::from_utf8(&data[..space]).ok().and_then(|text| text.parse().ok()).ok_or_else(malformed)?;
        if length <= space + 1 || length > data.len() || data[length - 1] != b'\n' {
            return Err(malformed());
        }
        let record = &data[space + 1..length - 1];
        let equals = record.iter().position(|byte| *byte == b'=').ok_or_else(malformed)?;
        records.push((&record[..equals], &record[equals + 1..]));
        data = &data[length..];
    }
    Ok(records)
}

/// The size a header gives, once its checksum (the sum of its bytes, the field itself counted as
/// spaces) holds.
fn checked_size(header: &[u8; BLOCK as usize]) -> io::Result<u64> {
    let field = 148..156;
    let sum: u64 = header
        .iter()
        .enumerate()
        .map(|(index, byte)| if field.contains(&index) { u64::from(b' ') } else { u64::from(*byte) })
        .sum();
    if header_number(&header[field]) != Some(sum) {
        return Err(invalid("archive header checksum mismatch".to_owned()));
    }
    header_number(&header[124..136]).ok_or_else(|| invalid("an archive header's size is not a number".to_owned()))
}

/// A numeric header field: octal text ended by a NUL or a space, or GNU's base-256 (the high bit
/// of the first byte set, then big-endian binary) for sizes of 8 GiB and more.
fn header_number(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let first = u64::from(field[0] & 0x7f);
        return field[1..].iter().try_fold(first, |value, byte| value.checked_mul(256)?.checked_add(u64::from(*byte)));
    }
    let text = std::str::from_utf8(until_nul(field)).ok()?.trim_matches(' ');
    u64::from_str_radix(text, 8).ok()
}

/// The name field, behind the ustar prefix field when there is one (GNU headers use that space
/// for other fields).
fn header_path(header: &[u8; BLOCK as usize]) -> Vec<u8> {
    let name = until_nul(&header[..100]);
    let prefix = until_nul(&header[345..500]);
    if &header[257..265] == b"ustar\x0000" && !prefix.is_empty() {
        [prefix, b"/", name].concat()
    } else {
        name.to_vec()
    }
}

fn until_nul(field: &[u8]) -> &[u8] {
    field.iter().position(|byte| *byte == 0).map_or(field, |end| &field[..end])
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_octal_or_base_256_and_nothing_else() {
        assert_eq!(header_number(b"00000001750\0"), Some(1000));
        assert_eq!(header_number(b"    1750 \0\0\0"), Some(1000));
        assert_eq!(header_number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]), Some(1000));
        // 95 bits of ones (or a negative number) does not fit.
        assert_eq!(header_number(&[0xff; 12]), None);
        assert_eq!(header_number(b"17x0\0"), None);
        assert_eq!(header_number(b"\0\0\0\0"), None);
    }

    #[test]
    fn pax_records_are_read_exactly_or_refused() {
        let records = pax_records(b"21 path=wheelhouse/a\n11 size=42\n").unwrap();
        assert_eq!(records, [(&b"path"[..], &b"wheelhouse/a"[..]), (&b"size"[..], &b"42"[..])]);
        let malformed: [&[u8]; 6] = [
            b"20 path=wheelhouse/a\n",
            b"5 a=b\n",
            b"99999999999999999999999 a=b\n",
            b"4 \n",
            b"x path=a\n",
            b"6 ab\n",
        ];
        for data in malformed {
            assert!(pax_records(data).is_err(), "{}", String::from_utf8_lossy(data));
        }
    }
}
