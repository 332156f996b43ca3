//! Property tests of the parsers that read untrusted bytes: the archive reader (on random bytes
//! and on mutated valid archives), extraction, the manifest, requirements files, `.sha256`
//! sidecars and distribution file names. None may panic; the archive reader holds a bounded
//! amount of memory whatever its headers claim; extraction writes nothing outside its directory.
//! `PROPTEST_CASES` sets the number of cases of each property: 64 by default, more in CI.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    collections::BTreeMap,
    io::{self, Read},
    path::{Path, PathBuf},
};

use proptest::{prelude::*, test_runner::FileFailurePersistence};
use xtask::{
    model::{
        digest::{parse_sidecar, sidecar_line},
        manifest::{is_plain_file_name, Manifest},
        paths::lexical_normalize,
        requirements,
        wheel_name::{normalize, DistributionName},
    },
    wheelhouse::{
        archive::{self, Limits, Writer, FILE_MODE},
        integrity,
    },
};

use crate::support::raw_archives::{gzip, pax_record, tar_entry, tar_header, wheelhouse_manifest, END_OF_ARCHIVE};

/// The most the archive reader may hold at once: its 1 MiB read buffer, the gzip state, a PAX
/// header (64 KiB at most) and change. A header claiming gigabytes must not move it.
const MAX_READER_BYTES: isize = 4 << 20;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|text| text.parse().ok()).unwrap_or(64);
    // A failing case is saved in `tests/proptest-regressions/properties.txt` and tried first on
    // every later run; keep the file, and spell the case out as a unit test below too. (None has
    // failed on the code as it is.)
    let failure_persistence = Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions")) as _);
    ProptestConfig { cases, failure_persistence, ..ProptestConfig::default() }
}

/// The system allocator, counting per thread the bytes allocated and not yet freed, and their
/// peak: what [`peak_allocation`] reads. It is the allocator of the whole test binary, at the cost
/// of two thread-local updates per allocation; a const-initialized `Cell` allocates nothing itself.
struct Counting;

thread_local! {
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE_BYTES.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK_BYTES.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

// SAFETY: every call is passed on to `System` unchanged; the counting touches no memory of it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = System.alloc(layout);
        if !pointer.is_null() {
            count(layout.size() as isize);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = System.alloc_zeroed(layout);
        if !pointer.is_null() {
            count(layout.size() as isize);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        System.dealloc(pointer, layout);
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = System.realloc(pointer, layout, new_size);
        if !moved.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What `run` returns, and the most memory this thread held during it beyond what it held before.
fn peak_allocation<T>(run: impl FnOnce() -> T) -> (T, isize) {
    let start = LIVE_BYTES.with(Cell::get);
    PEAK_BYTES.with(|peak| peak.set(start));
    let result = run();
    (result, PEAK_BYTES.with(Cell::get) - start)
}

/// Reads an archive as verify does, each file's content read up to 1 MiB (a bounded read of what
/// the reader hands out), and the most memory the read held.
fn read_measured(archive_bytes: &[u8]) -> (anyhow::Result<archive::Digests>, isize) {
    peak_allocation(|| {
        archive::read(archive_bytes, Limits::default(), |_, _, content| {
            io::copy(&mut content.take(1 << 20), &mut io::sink())?;
            Ok(())
        })
    })
}

/// Valid tar streams to mutate: what the writer makes (ustar names, a GNU long name, contents of
/// several blocks) and what other tars make (a PAX header). Made once.
fn valid_tar_streams() -> &'static [Vec<u8>] {
    static STREAMS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    STREAMS.get_or_init(make_valid_tar_streams)
}

fn make_valid_tar_streams() -> Vec<Vec<u8>> {
    let mut writer = Writer::new(Vec::new(), 0, 0);
    let long = format!("{}/{}-1.0-py3-none-any.whl", archive::ROOT, "long".repeat(30));
    for (path, data) in [("wheelhouse/manifest.json", &b"{}"[..]), (&long, &[7; 1500]), ("wheelhouse/b", b"b")] {
        writer.append(path, FILE_MODE, data.len() as u64, data).unwrap();
    }
    let (packed, _) = writer.finish().unwrap();
    let mut written = Vec::new();
    flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut written).unwrap();
    let mut records = pax_record("path", b"wheelhouse/from-pax.whl");
    records.extend(pax_record("size", b"700"));
    let mut pax = tar_entry(b"PaxHeaders/x", b'x', &records);
    pax.extend(tar_entry(b"wheelhouse/ignored", b'0', &[9; 700]));
    pax.extend(END_OF_ARCHIVE);
    vec![written, pax]
}

/// Where each header of a valid tar stream starts, extension headers included.
fn header_offsets(tar: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut offset = 0;
    while offset + 512 <= tar.len() && tar[offset..offset + 512].iter().any(|byte| *byte != 0) {
        offsets.push(offset);
        let size_field = std::str::from_utf8(&tar[offset + 124..offset + 135]).unwrap();
        let size = usize::from_str_radix(size_field, 8).unwrap();
        // PAX sizes count too, but the next header is where the header's own size says.
        offset += 512 + size.next_multiple_of(512);
    }
    offsets
}

/// One change to a tar stream. Header changes fix the checksum, so that the reader goes on past
/// them to what they claim.
#[derive(Debug, Clone)]
enum Mutation {
    /// A header's type and size: an extension header claiming gigabytes, a file claiming more
    /// than follows.
    Claim {
        header: usize,
        type_flag: u8,
        size: u64,
    },
    Byte {
        at: usize,
        value: u8,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let sizes = prop_oneof![
        Just(0u64),
        Just(511),
        Just(4096),
        Just(4097),
        Just(65536),
        Just(65537),
        Just(1 << 30),
        Just((1 << 33) - 1),
        any::<u64>(),
    ];
    // The header's own type half the time: a size change alone.
    let type_flags = prop_oneof![Just(0u8), prop::sample::select(b"0\x001234567LKxgSVMN".to_vec())];
    let claim = (any::<usize>(), type_flags, sizes);
    prop_oneof![
        4 => claim.prop_map(|(header, type_flag, size)| Mutation::Claim { header, type_flag, size }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..1100))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
    ]
}

fn mutate(tar: &mut Vec<u8>, headers: &[usize], mutation: &Mutation) {
    let len = tar.len().max(1);
    match mutation {
        Mutation::Claim { header, type_flag, size } => {
            let start = headers[header % headers.len()];
            if start + 512 > tar.len() {
                return;
            }
            if *type_flag != 0 {
                tar[start + 156] = *type_flag;
            }
            // Octal where it fits in 11 digits, else GNU base-256.
            let field = if *size < 1 << 33 {
                format!("{size:011o}\0").into_bytes()
            } else {
                [&[0x80, 0, 0, 0][..], &size.to_be_bytes()].concat()
            };
            tar[start + 124..start + 136].copy_from_slice(&field);
            tar[start + 148..start + 156].copy_from_slice(b"        ");
            let checksum: u32 = tar[start..start + 512].iter().map(|byte| u32::from(*byte)).sum();
            tar[start + 148..start + 156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
        }
        Mutation::Byte { at, value } if !tar.is_empty() => tar[at % len] = *value,
        Mutation::Byte { .. } => {}
        Mutation::Truncate { at } => tar.truncate(at % len),
        Mutation::Insert { at, bytes } => {
            let at = at % len;
            tar.splice(at..at, bytes.iter().copied());
        }
    }
}

/// Names an archive entry may give, each a way out of the directory or a file it must not be.
/// `{root}` stands for the test's temporary directory, as an absolute path.
fn hostile_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "{root}/escape.whl",
        "wheelhouse/../escape.whl",
        "wheelhouse/../../escape.whl",
        "wheelhouse/../../../escape.whl",
        "../escape.whl",
        "wheelhouse/sub/escape.whl",
        "wheelhouse/./escape.whl",
        "wheelhouse//escape.whl",
        "./wheelhouse/escape.whl",
        "wheelhouse\\..\\escape.whl",
        "wheelhouse/",
        "wheelhouse/.",
        "wheelhouse/..",
        "wheelhouse",
        "wheelhouse/purelib-1.0-py3-none-any.whl",
        "wheelhouse/manifest.json",
        "wheelhouse/manifest.json.asc",
        "wheelhouse/sbom.cdx.json",
        "wheelhouse/other-2.0-py3-none-any.whl",
        "wheelhouse/\x1b[2J.whl",
    ])
}

/// How an entry carries its name: in its header, in a GNU long name, or in a PAX path.
#[derive(Debug, Clone, Copy)]
enum Carrier {
    Header,
    LongName,
    PaxPath,
}

fn hostile_entry(name: &[u8], carrier: Carrier, type_flag: u8, data: &[u8]) -> Vec<u8> {
    match carrier {
        Carrier::Header if name.len() <= 100 => tar_entry(name, type_flag, data),
        Carrier::Header | Carrier::LongName => {
            let mut entry = tar_entry(b"././@LongLink", b'L', &[name, b"\0"].concat());
            entry.extend(tar_entry(b"truncated", type_flag, data));
            entry
        }
        Carrier::PaxPath => {
            let mut entry = tar_entry(b"PaxHeaders/x", b'x', &pax_record("path", name));
            entry.extend(tar_entry(b"other", type_flag, data));
            entry
        }
    }
}

/// Every path under `root` that is not the archive, `extracted` or a directory above it, or a plain
/// file directly in `extracted`.
fn strays(root: &Path, archive: &Path, extracted: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|entry| entry.unwrap())
        .filter(|entry| {
            let path = entry.path();
            let plain_file_in_extracted = path.parent() == Some(extracted)
                && entry.file_type().is_file()
                && path.file_name().and_then(|name| name.to_str()).is_some_and(is_plain_file_name);
            path != archive && !extracted.starts_with(path) && !plain_file_in_extracted
        })
        .map(|entry| entry.path().to_path_buf())
        .collect()
}

/// Requirements lines: includes of files in and out of the project, loops, options, text.
fn requirements_line() -> impl Strategy<Value = String> {
    let target = prop::sample::select(vec!["a.txt", "sub/b.txt", "../b.txt", "/p/a.txt", "../../x.txt", "missing.txt"]);
    let option = prop::sample::select(vec!["-r ", "-c ", "-r", "--requirement=", "--constraint ", "--requirementx "]);
    prop_oneof![
        (option, target).prop_map(|(option, target)| format!("{option}{target}")),
        Just("purelib==1.0 --hash=sha256:00".to_owned()),
        Just("# -r a.txt".to_owned()),
        Just("-r \\".to_owned()),
        Just("-r https://example.invalid/r.txt".to_owned()),
        ".{0,40}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_archive_reader_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let (_, raw_peak) = read_measured(&bytes);
        let (_, gzipped_peak) = read_measured(&gzip(&bytes));
        prop_assert!(raw_peak.max(gzipped_peak) < MAX_READER_BYTES, "{raw_peak} / {gzipped_peak} bytes");
    }

    #[test]
    fn the_archive_reader_holds_bounded_memory_on_mutated_archives(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut tar = which.get(valid_tar_streams()).clone();
        let headers = header_offsets(&tar);
        for mutation in &mutations {
            mutate(&mut tar, &headers, mutation);
        }
        let (_, peak) = read_measured(&gzip(&tar));
        prop_assert!(peak < MAX_READER_BYTES, "{peak} bytes held");
    }

    #[test]
    fn extraction_never_writes_outside_its_directory(
        hostile in prop::collection::vec(
            (hostile_name(), prop::sample::select(vec![Carrier::Header, Carrier::LongName, Carrier::PaxPath]),
             prop_oneof![3 => Just(b'0'), 1 => prop::sample::select(b"12567".to_vec())], any::<prop::sample::Index>()),
            1..4,
        ),
    ) {
        // Two levels down, so that a name climbing out with `..` still lands where it is seen.
        let directory = crate::support::tempdir();
        let archive_path = directory.path().join("one/two/hostile.tgz");
        let extracted = directory.path().join("one/two/extracted");
        fs_err::create_dir_all(&extracted).unwrap();
        let wheel: (&str, &[u8]) = ("purelib-1.0-py3-none-any.whl", b"wheel");
        // manifest.json, SHA256SUMS, the wheel: hostile entries go anywhere after the manifest.
        let (manifest, sums) = wheelhouse_manifest(&[wheel]);
        let mut entries = vec![
            tar_entry(b"wheelhouse/manifest.json", b'0', &manifest),
            tar_entry(b"wheelhouse/SHA256SUMS", b'0', &sums),
            tar_entry(format!("wheelhouse/{}", wheel.0).as_bytes(), b'0', wheel.1),
        ];
        for (name, carrier, type_flag, position) in &hostile {
            let name = name.replace("{root}", &directory.path().display().to_string()).into_bytes();
            let at = 1 + position.index(entries.len());
            entries.insert(at, hostile_entry(&name, *carrier, *type_flag, b"hostile"));
        }
        let mut tar = entries.concat();
        tar.extend(END_OF_ARCHIVE);
        fs_err::write(&archive_path, gzip(&tar)).unwrap();
        let _ = integrity::check_archive(&archive_path, Some(&extracted), &mut |_, _| Ok(()));
        let strays = strays(directory.path(), &archive_path, &extracted);
        prop_assert!(strays.is_empty(), "written outside {}: {strays:?}", extracted.display());
    }

    #[test]
    fn the_manifest_parser_never_panics(
        text in ".{0,300}",
        cut in any::<prop::sample::Index>(),
        insert in ".{0,20}",
    ) {
        let _ = Manifest::from_json(&text);
        let (manifest, _) = wheelhouse_manifest(&[("purelib-1.0-py3-none-any.whl", b"wheel")]);
        let manifest = String::from_utf8(manifest).unwrap();
        let mut boundaries: Vec<usize> = manifest.char_indices().map(|(index, _)| index).collect();
        boundaries.push(manifest.len());
        let at = *cut.get(&boundaries);
        let mutated = format!("{}{insert}{}", &manifest[..at], &manifest[at..]);
        if let Ok(parsed) = Manifest::from_json(&mutated) {
            // Whatever parses names only plain files: nothing a path could be joined to escape.
            prop_assert!(parsed.files.iter().all(|entry| is_plain_file_name(&entry.filename)), "{mutated}");
        }
    }

    #[test]
    fn the_requirements_reader_ends_without_panicking(
        files in prop::collection::btree_map(
            prop::sample::select(vec!["requirements.txt", "a.txt", "sub/b.txt", "b.txt", "../outside.txt"]),
            prop::collection::vec(requirements_line(), 0..6),
            1..5,
        ),
    ) {
        let root = Path::new("/p");
        let contents: BTreeMap<PathBuf, Vec<u8>> = files
            .iter()
            .map(|(name, lines)| (lexical_normalize(&root.join(name)), lines.join("\n").into_bytes()))
            .collect();
        let read_file =
            |path: &Path| -> io::Result<Vec<u8>> { contents.get(path).cloned().ok_or(io::ErrorKind::NotFound.into()) };
        if let Ok(record) = requirements::read(root, &root.join("requirements.txt"), &read_file) {
            let mut paths: Vec<&String> = record.includes.iter().map(|include| &include.path).collect();
            paths.sort();
            paths.dedup();
            prop_assert_eq!(paths.len(), record.includes.len(), "each file is read once");
        }
    }

    #[test]
    fn the_sidecar_parser_never_panics_and_reads_what_is_written(
        text in ".{0,200}",
        name in "[A-Za-z0-9._+-]{1,40}",
        digest in "[0-9a-f]{64}",
    ) {
        let _ = parse_sidecar(&text, &name);
        let _ = parse_sidecar(&name, &text);
        prop_assert_eq!(parse_sidecar(&sidecar_line(&digest, &name), &name), Some(digest.clone()));
        let upper = sidecar_line(&digest.to_ascii_uppercase(), &format!("*dir/{name}"));
        prop_assert_eq!(parse_sidecar(&upper, &name), Some(digest));
    }

    #[test]
    fn the_distribution_name_parser_never_panics_and_reads_what_is_written(
        text in ".{0,80}",
        name in "[A-Za-z0-9]([A-Za-z0-9._]{0,20}[A-Za-z0-9])?",
        version in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}",
    ) {
        if let Ok(parsed) = DistributionName::parse(&text) {
            prop_assert_eq!(normalize(&parsed.name), parsed.name.clone());
            prop_assert!(!parsed.version.is_empty());
        }
        let wheel = DistributionName::parse(&format!("{name}-{version}-py3-none-any.whl")).unwrap();
        prop_assert_eq!((wheel.name, wheel.version), (normalize(&name), version.clone()));
        let sdist = DistributionName::parse(&format!("{name}-{version}.tar.gz")).unwrap();
        prop_assert_eq!(sdist.name, normalize(&name));
    }
}

/// The reader's memory bound holds for the largest claims a header can make, one by one.
#[test]
fn the_reader_refuses_every_huge_claim_in_bounded_memory() {
    for type_flag in *b"LKxg0" {
        for size in [MAX_READER_BYTES as u64, 1 << 30, (1 << 33) - 1] {
            let mut tar = tar_header(b"././@LongLink", type_flag, size).to_vec();
            tar.extend(END_OF_ARCHIVE);
            let (result, peak) = read_measured(&gzip(&tar));
            assert!(result.is_err(), "{} claiming {size} bytes was accepted", type_flag as char);
            assert!(peak < MAX_READER_BYTES, "{} claiming {size}: {peak} bytes held", type_flag as char);
        }
    }
    // And the counter counts: a read that holds 8 MiB is seen.
    let (_, peak) = peak_allocation(|| vec![1u8; 8 << 20].iter().map(|byte| usize::from(*byte)).sum::<usize>());
    assert!(peak >= 8 << 20, "{peak}");
}
