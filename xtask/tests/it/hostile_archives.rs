//! Archives made to hurt the machine that reads them: extension headers claiming gigabytes, data
//! hidden after the end-of-archive marker, names with control characters. The binary must refuse
//! each with a clear error, in bounded memory, time and output; the reader's bounds are checked
//! one byte either side.

use std::{
    io::{self, Read},
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
};

use xtask::wheelhouse::{
    archive::{self, Limits, Writer, FILE_MODE, MAX_END_ZEROS, MAX_LONG_NAME_BYTES, MAX_PAX_BYTES},
    integrity,
};

use crate::support::{
    project::Project,
    raw_archives::{gzip, gzip_with_run, pax_record, tar_entry, tar_header, wheelhouse_tar_entries, END_OF_ARCHIVE},
};

/// What the binary may take on any archive, however hostile.
const MAX_RSS_KIB: i64 = 64 << 10;
const MAX_STDERR_BYTES: u64 = 64 << 10;
/// What the bombs claim: a 3 GiB name gzips to 3 MB.
const BOMB_BYTES: u64 = 3 << 30;

/// One wheel, for archives that a verify accepts up to what a test adds.
const WHEEL: (&str, &[u8]) = ("purelib-1.0-py3-none-any.whl", b"the bytes of a wheel");

/// A run of the binary, measured: how it ended, its peak RSS, its user CPU time, and its stderr
/// (the first [`MAX_STDERR_BYTES`], and the length of the whole).
struct Measured {
    exit_code: Option<i32>,
    max_rss_kib: i64,
    user_seconds: i64,
    stderr: String,
    stderr_bytes: u64,
}

/// Set for [`a_small_parent_for_measured_runs`]: the command to run, as a JSON array of the
/// program and its arguments.
const MEASURED_COMMAND: &str = "XTASK_TEST_MEASURED_COMMAND";

/// Runs `command` and measures it. Linux counts in a child's peak RSS the memory of the process
/// it was forked from, up to its exec: started from this test process, which runs many tests at
/// once, a run that took 14 MiB read 72 MiB. So this test binary is started again, small, to run
/// only [`a_small_parent_for_measured_runs`], which starts `command` and reports its rusage.
fn run_measured(command: Command) -> Measured {
    let argv: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|argument| argument.to_str().unwrap().to_owned())
        .collect();
    let mut parent = Command::new(std::env::current_exe().unwrap());
    parent.args(["--exact", "hostile_archives::a_small_parent_for_measured_runs", "--nocapture", "--quiet"]);
    parent.env(MEASURED_COMMAND, serde_json::to_string(&argv).unwrap());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => parent.env(key, value),
            None => parent.env_remove(key),
        };
    }
    if let Some(directory) = command.get_current_dir() {
        parent.current_dir(directory);
    }
    let mut parent = parent.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = parent.stderr.take().unwrap();
    // Kept to its first bytes: the unbounded reader printed gigabytes of a name.
    let reader = std::thread::spawn(move || {
        let mut head = Vec::new();
        let kept = io::copy(&mut (&mut stderr).take(MAX_STDERR_BYTES), &mut head).unwrap();
        (head, kept + io::copy(&mut stderr, &mut io::sink()).unwrap())
    });
    let mut report = String::new();
    parent.stdout.take().unwrap().read_to_string(&mut report).unwrap();
    assert!(parent.wait().unwrap().success(), "{report}");
    let (head, stderr_bytes) = reader.join().unwrap();
    let line = report.lines().find_map(|line| line.strip_prefix("measured: ")).unwrap_or_else(|| panic!("{report}"));
    let fields: Vec<i64> = line.split(' ').map(|field| field.parse().unwrap()).collect();
    Measured {
        exit_code: (fields[0] >= 0).then(|| fields[0] as i32),
        max_rss_kib: fields[1],
        user_seconds: fields[2],
        stderr: String::from_utf8_lossy(&head).into_owned(),
        stderr_bytes,
    }
}

/// Not a test: the small parent of [`run_measured`], which does nothing unless
/// [`MEASURED_COMMAND`] is set. It runs the command with its stderr and prints
/// `measured: <exit code or -1> <peak RSS KiB> <user CPU seconds>`, read from `wait4`.
#[test]
fn a_small_parent_for_measured_runs() {
    let Ok(argv) = std::env::var(MEASURED_COMMAND) else { return };
    let argv: Vec<String> = serde_json::from_str(&argv).unwrap();
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe, and nothing else runs between fork and exec. The
    // ceilings sit far above what the tests assert and far below the machine: a regression then
    // fails a test instead of taking the machine's memory or running on for minutes.
    unsafe {
        command.pre_exec(|| {
            for (resource, limit) in [(libc::RLIMIT_AS, 2 << 30), (libc::RLIMIT_CPU, 120)] {
                if libc::setrlimit(resource, &libc::rlimit { rlim_cur: limit, rlim_max: limit }) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
    // Reaped by `wait4` below, not by `Child::wait`, for the rusage of this one child.
    #[allow(clippy::zombie_processes)]
    let child = command.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, filled in by wait4, which reaps the child `Child` never waited for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let exit_code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    println!("measured: {exit_code} {} {}", usage.ru_maxrss, usage.ru_utime.tv_sec);
}

fn verify(project: &Project, archive: &Path) -> Command {
    let mut command = project.command(&["verify-wheelhouse", "--no-install-check", "--archive"]);
    command.arg(archive);
    command
}

fn unpack(project: &Project, archive: &Path) -> Command {
    let mut command = project.command(&["unpack-wheelhouse"]);
    command.arg(archive);
    command
}

/// Asserts that the run failed with `expected` on stderr, within the bounds on memory and output.
fn assert_refused_within_bounds(measured: &Measured, expected: &str, what: &str) {
    assert_eq!(measured.exit_code, Some(1), "{what}: {}", measured.stderr);
    assert!(measured.stderr.contains(expected), "{what}: {}", measured.stderr);
    assert!(measured.max_rss_kib < MAX_RSS_KIB, "{what}: peak RSS {} KiB", measured.max_rss_kib);
    assert!(measured.stderr_bytes < MAX_STDERR_BYTES, "{what}: {} bytes of stderr", measured.stderr_bytes);
    // Refusing takes milliseconds; reading what the archive claims took minutes.
    assert!(measured.user_seconds < 10, "{what}: {} s of CPU", measured.user_seconds);
}

#[test]
fn extension_header_bombs_are_refused_in_bounded_memory_and_output() {
    let project = Project::new();
    for (type_flag, name, kind) in [
        (b'L', &b"././@LongLink"[..], "a GNU long-name header"),
        (b'x', &b"PaxHeaders/wheelhouse"[..], "a PAX header"),
        (b'g', &b"PaxHeaders/global"[..], "a PAX global header"),
    ] {
        // The header claims 3 GiB, and the 3 GiB are there: what the `tar` crate read whole.
        let mut after = tar_entry(b"wheelhouse/manifest.json", b'0', b"{}");
        after.extend_from_slice(&END_OF_ARCHIVE);
        let bomb = gzip_with_run(&tar_header(name, type_flag, BOMB_BYTES), b'a', BOMB_BYTES, &after);
        assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
        let path = project.tmp.path().join("bomb.tgz");
        fs_err::write(&path, &bomb).unwrap();
        let expected = format!(
            "the archive is malformed after entry (the start): header 1 ({kind} at byte 0 of the tar stream) claims \
             {BOMB_BYTES} bytes, more than the"
        );
        assert_refused_within_bounds(&run_measured(verify(&project, &path)), &expected, kind);
        let measured = run_measured(unpack(&project, &path));
        assert_refused_within_bounds(&measured, &expected, kind);
        assert!(!project.wheelhouse().exists(), "{kind}: unpack made a wheelhouse");
    }
}

#[test]
fn data_after_the_end_marker_is_refused_without_inflating_it() {
    let project = Project::new();
    let mut tar = wheelhouse_tar_entries(&[WHEEL]);
    tar.extend_from_slice(&END_OF_ARCHIVE);
    let path = project.tmp.path().join("wheelhouse.tgz");

    // What pack writes, and what GNU tar and Python's tarfile pad it to: verified.
    let mut padded = tar.clone();
    padded.resize(padded.len().next_multiple_of(10240), 0);
    for (what, bytes) in [("as packed", &tar), ("padded to a 10 KiB record", &padded)] {
        fs_err::write(&path, gzip(bytes)).unwrap();
        let measured = run_measured(verify(&project, &path));
        assert_eq!(measured.exit_code, Some(0), "{what}: {}", measured.stderr);
    }

    // 6 GiB after the marker, once of data and once of zeros: the first byte or the bound ends it.
    let trailing: [(u8, &str); 2] = [
        (b'x', "data follows the end-of-archive marker at byte"),
        (0, &format!("more than {MAX_END_ZEROS} zero bytes follow the last entry: refused")),
    ];
    for (byte, expected) in trailing {
        fs_err::write(&path, gzip_with_run(&tar, byte, 6 << 30, b"")).unwrap();
        let what = format!("6 GiB of {byte:#04x}");
        let expected = format!("the archive is malformed after entry wheelhouse/{}: {expected}", WHEEL.0);
        assert_refused_within_bounds(&run_measured(verify(&project, &path)), &expected, &what);
        assert_refused_within_bounds(&run_measured(unpack(&project, &path)), &expected, &what);
        assert!(!project.wheelhouse().exists(), "{what}: unpack made a wheelhouse");
    }
}

/// Reads `tar` (gzipped here) with the default limits, reading each file to its end.
fn read_tar(tar: &[u8]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    archive::read(&gzip(tar)[..], Limits::default(), |name, _, content| {
        let mut data = Vec::new();
        content.read_to_end(&mut data)?;
        files.push((name.to_owned(), data));
        Ok(())
    })?;
    Ok(files)
}

fn with_end(entries: &[&[u8]]) -> Vec<u8> {
    let mut tar = entries.concat();
    tar.extend_from_slice(&END_OF_ARCHIVE);
    tar
}

fn check_refused(tar: &[u8], expected: &str) {
    let error = format!("{:#}", read_tar(tar).unwrap_err());
    assert!(error.contains(expected), "expected `{expected}` in: {error}");
}

#[test]
fn extension_headers_are_read_up_to_their_bound_and_refused_one_byte_past_it() {
    let file = tar_entry(b"wheelhouse/a.whl", b'0', b"alpha");
    // A long name of exactly the bound: `wheelhouse/` and a name, NUL-padded.
    let mut name = format!("wheelhouse/{}", "n".repeat(300)).into_bytes();
    name.resize(MAX_LONG_NAME_BYTES as usize, 0);
    let files = read_tar(&with_end(&[&tar_entry(b"././@LongLink", b'L', &name), &file])).unwrap();
    assert_eq!(files, [("n".repeat(300), b"alpha".to_vec())]);
    name.push(0);
    check_refused(
        &with_end(&[&tar_entry(b"././@LongLink", b'L', &name), &file]),
        "header 1 (a GNU long-name header at byte 0 of the tar stream) claims 4097 bytes, more than the 4096 such \
         a header may hold: refused",
    );
    // A long link name is bounded as a long name is, then not used (links are refused).
    let link = vec![b'l'; MAX_LONG_NAME_BYTES as usize];
    assert_eq!(read_tar(&with_end(&[&tar_entry(b"././@LongLink", b'K', &link), &file])).unwrap().len(), 1);
    let link = vec![b'l'; MAX_LONG_NAME_BYTES as usize + 1];
    check_refused(&with_end(&[&tar_entry(b"././@LongLink", b'K', &link), &file]), "(a GNU long-link header at byte 0");

    // PAX records up to 64 KiB, local or global, and the entry after them in the right place.
    // `<length> comment=<value>\n` of `total` bytes.
    let comment = |total: usize| pax_record("comment", &vec![b'c'; total - 10 - total.to_string().len()]);
    assert_eq!(comment(MAX_PAX_BYTES as usize).len(), MAX_PAX_BYTES as usize);
    let second = tar_entry(b"wheelhouse/b.whl", b'0', b"beta");
    for (type_flag, kind) in [(b'x', "a PAX header"), (b'g', "a PAX global header")] {
        let records = comment(MAX_PAX_BYTES as usize);
        let files = read_tar(&with_end(&[&file, &tar_entry(b"PaxHeaders/b", type_flag, &records), &second])).unwrap();
        assert_eq!(files[1], ("b.whl".to_owned(), b"beta".to_vec()), "{kind}");
        let records = comment(MAX_PAX_BYTES as usize + 1);
        check_refused(
            &with_end(&[&file, &tar_entry(b"PaxHeaders/b", type_flag, &records), &second]),
            &format!("after entry wheelhouse/a.whl: header 2 ({kind} at byte 1024 of the tar stream) claims 65537"),
        );
    }
}

#[test]
fn pax_paths_and_sizes_apply_and_two_names_for_one_entry_are_refused() {
    let mut records = pax_record("path", b"wheelhouse/from-pax.whl");
    records.extend(pax_record("size", b"3"));
    records.extend(pax_record("mtime", b"1700000000.5"));
    let pax = tar_entry(b"PaxHeaders/x", b'x', &records);
    // The header says 5 bytes and another name; the PAX records win, as in every tar.
    let mut file = tar_header(b"wheelhouse/ignored.whl", b'0', 5).to_vec();
    file.extend_from_slice(b"abc");
    file.resize(1024, 0);
    assert_eq!(read_tar(&with_end(&[&pax, &file])).unwrap(), [("from-pax.whl".to_owned(), b"abc".to_vec())]);

    let long_name = tar_entry(b"././@LongLink", b'L', b"wheelhouse/from-gnu.whl\0");
    check_refused(&with_end(&[&long_name, &pax, &file]), "both a GNU long name and a PAX path name one entry");
    check_refused(&with_end(&[&long_name, &long_name, &file]), "two GNU long-name headers describe one entry");
    check_refused(&with_end(&[&pax, &pax, &file]), "two PAX headers describe one entry");
    check_refused(&with_end(&[&long_name]), "an extension header is followed by no entry");
    check_refused(
        &with_end(&[&tar_entry(b"PaxHeaders/x", b'x', b"7 path\n"), &file]),
        "a PAX header record is malformed",
    );
    check_refused(&with_end(&[&tar_entry(b"PaxHeaders/x", b'x', &pax_record("size", b"-1")), &file]), "a PAX size");
}

#[test]
fn the_end_marker_may_be_followed_by_zeros_only_and_a_bounded_number_of_them() {
    let file = tar_entry(b"wheelhouse/a.whl", b'0', b"alpha");
    let mut tar = with_end(&[&file]);
    assert_eq!(read_tar(&tar).unwrap().len(), 1);
    tar.resize(file.len() + MAX_END_ZEROS as usize, 0);
    assert_eq!(read_tar(&tar).unwrap().len(), 1, "{MAX_END_ZEROS} zeros after the last entry");
    tar.push(0);
    check_refused(&tar, "more than 262144 zero bytes follow the last entry: refused");

    check_refused(&[&file[..], &[0; 512]].concat(), "the archive ends early (truncated?): one zero block ends it");
    check_refused(&file, "after entry wheelhouse/a.whl: the archive ends early (truncated?)");
    // A second archive after the first, which `tar` would not show and the old reader skipped.
    let mut two = with_end(&[&file]);
    two.extend(with_end(&[&tar_entry(b"wheelhouse/hidden.whl", b'0', b"hidden")]));
    check_refused(
        &two,
        "after entry wheelhouse/a.whl: data follows the end-of-archive marker at byte 1024 (byte 2048 of the tar \
         stream is not zero): refused",
    );
}

#[test]
fn the_writer_needs_nothing_past_the_bounds() {
    // The longest name a file system gives a file: 255 bytes, written with a GNU long name.
    let longest = format!("{}.whl", "w".repeat(251));
    let mut writer = Writer::new(Vec::new(), 0, 0);
    writer.append(&format!("{}/{longest}", archive::ROOT), FILE_MODE, 4, &b"data"[..]).unwrap();
    let (bytes, written) = writer.finish().unwrap();
    let mut names = Vec::new();
    let read = archive::read(&bytes[..], Limits::default(), |name, _, _| {
        names.push(name.to_owned());
        Ok(())
    })
    .unwrap();
    assert_eq!(names, [longest]);
    assert_eq!(read, written);
}

#[test]
fn entry_names_are_printed_escaped_and_cut() {
    let directory = crate::support::tempdir();
    let path = directory.path().join("names.tgz");
    let check = |tar: Vec<u8>, expected: &str| {
        fs_err::write(&path, gzip(&tar)).unwrap();
        let error = match integrity::check_archive(&path, None, &mut |_, _| Ok(())) {
            Ok(_) => panic!("{expected}: accepted"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains(expected), "expected `{expected}` in: {error}");
        assert!(!error.contains('\x1b') && !error.contains('\n'), "{error:?}");
    };
    check(
        with_end(&[&tar_entry(b"wheelhouse/\x1b[2Jevil\nerror: fake", b'0', b"")]),
        "the archive starts with `\\x1b[2Jevil\\nerror: fake`, not manifest.json",
    );
    check(
        with_end(&[&tar_entry(b"wheelhouse/\xff\x1b", b'0', b"")]),
        "archive entry `wheelhouse/\\xff\\x1b` is not UTF-8",
    );
    let long = [&b"wheelhouse/../"[..], &[b'\x07'; 4000]].concat();
    let long_name = tar_entry(b"././@LongLink", b'L', &long);
    check(
        with_end(&[&long_name, &tar_entry(b"x", b'0', b"")]),
        "\\x07... (3814 more characters)` has a `..` component",
    );

    // A name that is only unlisted is a problem, not an error: its message is escaped too.
    let mut tar = wheelhouse_tar_entries(&[WHEEL]);
    tar.extend(with_end(&[&tar_entry(b"wheelhouse/\x1b]0;title\x07.whl", b'0', b"x")]));
    fs_err::write(&path, gzip(&tar)).unwrap();
    let checked = integrity::check_archive(&path, None, &mut |_, _| Ok(())).unwrap().checked;
    let messages: Vec<&str> = checked.problems.iter().map(|problem| problem.message.as_str()).collect();
    assert_eq!(messages, ["\\x1b]0;title\\x07.whl is not in the manifest"]);
}
