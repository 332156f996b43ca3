//! Proves the synthetic index and HTTP server behave the way the real pip expects.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xtask::model::digest::sha256_hex;

use crate::support::index::{self, NATIVE_SDIST_TAG};
use crate::support::{
    self, file_names, pip, run_fails, run_ok, tempdir, SdistSpec, Server, ServerOptions, TestIndex, WheelSpec,
};

/// Host facts the marker-dependent expectations hinge on, asked of the same interpreter pip runs in.
struct HostPython {
    machine: String,
    at_least_312: bool,
}

fn host_python() -> HostPython {
    let script = "import platform, sys; print(platform.machine()); print(sys.version_info >= (3, 12))";
    let output = run_ok(std::process::Command::new(support::python()).args(["-c", script]));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = stdout.lines();
    let machine = lines.next().unwrap_or_default().to_owned();
    let at_least_312 = lines.next() == Some("True");
    HostPython { machine, at_least_312 }
}

#[test]
fn file_index_selects_aarch64_cp312_wheel_for_foreign_target() {
    let tmp = tempdir();
    let index = TestIndex::build(&tmp.path().join("index"));
    let out = tmp.path().join("out");
    run_ok(
        pip(&tmp.path().join("cache"))
            .args(["download", "--no-deps", "--only-binary=:all:"])
            .args(["--platform", "manylinux2014_aarch64", "--python-version", "3.12"])
            .args(["--implementation", "cp", "--abi", "cp312"])
            .args(["--index-url", &index.file_index_url()])
            .arg("-d")
            .arg(&out)
            .arg("compiled"),
    );
    // 2.1 has no aarch64 wheel, so 2.0's cp312 aarch64 wheel is the only candidate.
    assert_eq!(file_names(&out), ["compiled-2.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"]);
    assert_same_bytes(&out, &index);
}

#[test]
fn http_index_resolves_markers_and_extras() {
    let tmp = tempdir();
    let index = TestIndex::build(&tmp.path().join("index"));
    let server = Server::start(index.root(), ServerOptions::default());
    let out = tmp.path().join("out");
    run_ok(
        pip(&tmp.path().join("cache"))
            .args(["download", "--index-url", &server.url(), "-d"])
            .arg(&out)
            .args(["purelib", "withextra[fast]"]),
    );

    let host = host_python();
    let machine_dep = match host.machine.as_str() {
        "x86_64" => Some("x86helper"),
        "aarch64" => Some("armonly"),
        _ => None,
    };
    let python_dep = if host.at_least_312 { "newpy" } else { "oldpy" };
    let mut projects: Vec<&str> = vec!["purelib", python_dep, "withextra", "speedup"];
    projects.extend(machine_dep);
    let mut expected: Vec<String> = projects.iter().map(|p| WheelSpec::pure(p, "1.0").filename()).collect();
    expected.sort();
    assert_eq!(file_names(&out), expected);
    assert_same_bytes(&out, &index);

    let requests = server.requests();
    for project in &projects {
        let page = format!("/simple/{project}/");
        assert!(requests.contains(&page), "no request for {page}: {requests:?}");
    }
    for file in &expected {
        let path = format!("/files/{file}");
        assert!(requests.contains(&path), "no request for {path}: {requests:?}");
    }
}

#[test]
fn basic_auth_rejects_plain_url_and_accepts_credentials() {
    let tmp = tempdir();
    let index = TestIndex::build(&tmp.path().join("index"));
    // Characters that must be percent-encoded in userinfo, to prove url_with_auth escapes them.
    let (user, pass) = ("builder", "p@ss:w/rd");
    let options = ServerOptions { basic_auth: Some((user.into(), pass.into())), ..ServerOptions::default() };
    let server = Server::start(index.root(), options);
    let cache = tmp.path().join("cache");

    let denied = run_fails(
        pip(&cache)
            .args(["download", "--no-deps", "--index-url", &server.url(), "-d"])
            .arg(tmp.path().join("denied"))
            .arg("oldpy"),
    );
    // The failure must come from the 401, not from pip never reaching the server. pip does not say
    // so: it treats an unauthorized project page as "no versions" and only logs the 401 at debug level.
    assert!(server.requests().contains(&"/simple/oldpy/".to_owned()), "pip never asked for the page");
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(stderr.contains("No matching distribution found for oldpy"), "{stderr}");

    let out = tmp.path().join("out");
    run_ok(
        pip(&cache)
            .args(["download", "--no-deps", "--index-url", &server.url_with_auth(user, pass), "-d"])
            .arg(&out)
            .arg("oldpy"),
    );
    assert_eq!(file_names(&out), [WheelSpec::pure("oldpy", "1.0").filename()]);
}

/// Runs `pip wheel --no-deps` for one sdist-only project against `files/` alone (`--no-index`), so
/// any attempt to fetch a build dependency would fail the build.
fn build_from_sdist(project: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    let index = TestIndex::build(&tmp.path().join("index"));
    let out = tmp.path().join("out");
    run_ok(
        pip(&tmp.path().join("cache"))
            .args(["wheel", "--no-deps", "--no-index", "--find-links"])
            .arg(index.files_dir())
            .arg("-w")
            .arg(&out)
            .arg(project),
    );
    (tmp, out)
}

#[test]
fn pure_sdist_builds_offline_with_in_tree_backend() {
    let (_tmp, out) = build_from_sdist("sdistonly");
    assert_eq!(file_names(&out), ["sdistonly-1.0-py3-none-any.whl"]);
    let members = zip_members(&out.join("sdistonly-1.0-py3-none-any.whl"));
    assert_eq!(members["sdistonly/__init__.py"], "__version__ = \"1.0\"\n");
    assert!(members["sdistonly-1.0.dist-info/WHEEL"].contains("Root-Is-Purelib: true"));
    assert!(members["sdistonly-1.0.dist-info/METADATA"].contains("Name: sdistonly\n"));
    assert!(members.contains_key("sdistonly-1.0.dist-info/RECORD"));
}

#[test]
fn native_sdist_builds_a_platform_wheel() {
    let (_tmp, out) = build_from_sdist("nativesdist");
    let wheel = format!("nativesdist-1.0-{NATIVE_SDIST_TAG}.whl");
    assert_eq!(file_names(&out), std::slice::from_ref(&wheel));
    let members = zip_members(&out.join(&wheel));
    let wheel_file = &members["nativesdist-1.0.dist-info/WHEEL"];
    assert!(wheel_file.contains("Root-Is-Purelib: false"), "{wheel_file}");
    assert!(wheel_file.contains(&format!("Tag: {NATIVE_SDIST_TAG}\n")), "{wheel_file}");
}

#[test]
fn built_wheels_install_and_report_their_metadata() {
    let tmp = tempdir();
    let index = TestIndex::build(&tmp.path().join("index"));
    let target = tmp.path().join("target");
    // Installing makes pip validate the wheel layout, WHEEL and METADATA, not just the name.
    run_ok(
        pip(&tmp.path().join("cache"))
            .args(["install", "--no-deps", "--no-index", "--no-compile", "--find-links"])
            .arg(index.files_dir())
            .arg("--target")
            .arg(&target)
            .args(["purelib", "withextra"]),
    );
    let script = "import importlib.metadata as m, purelib; \
                  print(purelib.__version__); \
                  print(sorted(m.requires('purelib'))); \
                  print(m.metadata('withextra').get_all('Provides-Extra'))";
    let output = run_ok(std::process::Command::new(support::python()).env("PYTHONPATH", &target).args(["-c", script]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "1.0");
    assert!(lines[1].contains("x86helper; platform_machine == \"x86_64\""), "{stdout}");
    assert_eq!(lines[2], "['fast']");
}

#[test]
fn requires_python_reaches_pip_through_the_simple_page() {
    let tmp = tempdir();
    let index = TestIndex::build(&tmp.path().join("index"));
    let page = read_to_string(&index.simple_dir().join("py312only/index.html"));
    assert!(page.contains("data-requires-python=\"&gt;=3.12\""), "{page}");

    let cache = tmp.path().join("cache");
    let download = |extra: &[&str]| {
        let mut command = pip(&cache);
        command
            .args(["download", "--no-deps", "--index-url", &index.file_index_url(), "-d"])
            .arg(tmp.path().join("out"))
            .args(extra)
            .arg("py312only");
        command
    };
    if !host_python().at_least_312 {
        let failed = run_fails(&mut download(&[]));
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(stderr.contains("Requires-Python"), "{stderr}");
    }
    run_ok(&mut download(&["--only-binary=:all:", "--python-version", "3.12"]));
    assert_eq!(file_names(&tmp.path().join("out")), ["py312only-1.0-py3-none-any.whl"]);
}

#[test]
fn index_is_byte_for_byte_deterministic() {
    let tmp = tempdir();
    let first = TestIndex::build(&tmp.path().join("a"));
    let second = TestIndex::build(&tmp.path().join("b"));
    let first_tree = tree(first.root());
    let second_tree = tree(second.root());
    assert_eq!(first_tree.keys().collect::<Vec<_>>(), second_tree.keys().collect::<Vec<_>>());
    for (path, bytes) in &first_tree {
        assert!(bytes == &second_tree[path], "{path} differs between two builds");
    }
    for filename in first.filenames() {
        assert_eq!(first.sha256_of(&filename), sha256_hex(&first_tree[&format!("files/{filename}")]));
    }
    assert_eq!(
        first.filenames(),
        [
            "armonly-1.0-py3-none-any.whl",
            "bigpayload-1.0-py3-none-any.whl",
            "chainmid-1.0-py3-none-any.whl",
            "chaintop-1.0-py3-none-any.whl",
            "compiled-2.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
            "compiled-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "compiled-2.0-cp311-cp311-musllinux_1_2_x86_64.whl",
            "compiled-2.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
            "compiled-2.0-cp312-cp312-manylinux_2_28_x86_64.whl",
            "compiled-2.1-cp311-cp311-manylinux_2_34_x86_64.whl",
            "compiled-2.1-cp312-cp312-manylinux_2_34_x86_64.whl",
            "extranative-1.0-py3-none-any.whl",
            "extrasdist-1.0-py3-none-any.whl",
            "nativesdist-1.0.tar.gz",
            "newpy-1.0-py3-none-any.whl",
            "oldpy-1.0-py3-none-any.whl",
            "packaging-24.2-py3-none-any.whl",
            "packaging-25.0-py3-none-any.whl",
            "pip-24.0-py3-none-any.whl",
            "purelib-1.0-py3-none-any.whl",
            "py312only-1.0-py3-none-any.whl",
            "pythonpinned-1.0-py3-none-any.whl",
            "pythonpinned-2.10-py3-none-any.whl",
            "pythonpinned-2.11-py3-none-any.whl",
            "pythonpinned-2.12-py3-none-any.whl",
            "pythonpinned-2.13-py3-none-any.whl",
            "pythonpinned-2.14-py3-none-any.whl",
            "pythonpinned-2.15-py3-none-any.whl",
            "pythonpinned-2.8-py3-none-any.whl",
            "pythonpinned-2.9-py3-none-any.whl",
            "sdistconflict-1.0.tar.gz",
            "sdistdeep-1.0.tar.gz",
            "sdistextra-1.0.tar.gz",
            "sdistonly-1.0.tar.gz",
            "setuptools-69.0-py3-none-any.whl",
            "setuptools-70.0-py3-none-any.whl",
            "speedup-1.0-py3-none-any.whl",
            "viaconflict-1.0-py3-none-any.whl",
            "viaconflict-1.1-py3-none-any.whl",
            "wheel-0.43.0-py3-none-any.whl",
            "withextra-1.0-py3-none-any.whl",
            "x86helper-1.0-py3-none-any.whl",
            "x86only-1.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ]
    );
}

#[test]
fn add_wheel_regenerates_the_project_page() {
    let tmp = tempdir();
    let mut index = TestIndex::build(&tmp.path().join("index"));
    let before = read_to_string(&index.simple_dir().join("purelib/index.html"));
    let spec = WheelSpec::pure("PureLib", "1.1");
    let filename = spec.filename();
    assert_eq!(filename, "purelib-1.1-py3-none-any.whl");
    index.add_wheel(spec);

    let after = read_to_string(&index.simple_dir().join("purelib/index.html"));
    assert_ne!(before, after);
    let link = format!("href=\"../../files/{filename}#sha256={}\"", index.sha256_of(&filename));
    assert!(after.contains(&link), "{after}");
    assert!(index.path_of(&filename).is_file());

    // Sdists are listed next to the wheels of their project.
    let sdist = SdistSpec::pure("purelib", "1.2");
    assert_eq!(sdist.filename(), "purelib-1.2.tar.gz");
    index.add_sdist(sdist);
    let page = read_to_string(&index.simple_dir().join("purelib/index.html"));
    assert!(page.contains(&format!("purelib-1.2.tar.gz#sha256={}", index.sha256_of("purelib-1.2.tar.gz"))), "{page}");

    // A brand-new project also shows up in the root listing.
    index.add_wheel(WheelSpec::pure("Fresh_Pkg.Name", "0.1"));
    assert!(index.simple_dir().join("fresh-pkg-name/index.html").is_file());
    let root = read_to_string(&index.simple_dir().join("index.html"));
    assert!(root.contains("<a href=\"fresh-pkg-name/\">"), "{root}");
}

/// A minimal HTTP/1.1 exchange over a raw socket, so tests control exactly what is read when.
fn send_request(addr: SocketAddr, method: &str, path: &str) -> TcpStream {
    let mut stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(stream) => stream,
        Err(err) => panic!("connecting to {addr}: {err}"),
    };
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if let Err(err) = stream.write_all(request.as_bytes()) {
        panic!("sending request: {err}");
    }
    stream
}

/// Reads until EOF (bounded by a 10 s socket timeout) and splits status line, headers and body.
fn read_response(mut stream: TcpStream) -> (String, String, Vec<u8>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut raw = Vec::new();
    if let Err(err) = stream.read_to_end(&mut raw) {
        panic!("reading response: {err}");
    }
    split_response(&raw)
}

fn split_response(raw: &[u8]) -> (String, String, Vec<u8>) {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        panic!("no complete response head in {:?}", String::from_utf8_lossy(raw));
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head.as_str(), ""));
    (status.to_owned(), headers.to_owned(), raw[end + 4..].to_vec())
}

/// True once `raw` holds a complete head and at least half of the announced body.
fn has_first_half(raw: &[u8]) -> bool {
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return false;
    }
    let (_, headers, body) = split_response(raw);
    body.len() >= content_length(&headers) / 2
}

fn content_length(headers: &str) -> usize {
    headers
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in {headers}"))
}

#[test]
fn server_serves_pages_and_files_and_refuses_escapes() {
    let tmp = tempdir();
    let index = TestIndex::build(&tmp.path().join("index"));
    std::fs::write(tmp.path().join("secret.txt"), b"outside the root").unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start(index.root(), ServerOptions::default());
    let addr = server.addr();

    let (status, headers, body) = read_response(send_request(addr, "GET", "/simple/purelib/"));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("Content-Type: text/html"), "{headers}");
    assert_eq!(body, std::fs::read(index.simple_dir().join("purelib/index.html")).unwrap_or_default());

    let wheel = WheelSpec::pure("oldpy", "1.0").filename();
    let (status, headers, body) = read_response(send_request(addr, "HEAD", &format!("/files/{wheel}")));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("Content-Type: application/octet-stream"), "{headers}");
    let size = std::fs::metadata(index.path_of(&wheel)).map(|m| m.len()).unwrap_or_default();
    assert_eq!(content_length(&headers) as u64, size);
    assert!(body.is_empty(), "HEAD must not send a body");

    let (status, headers, _) = read_response(send_request(addr, "GET", "/simple/purelib"));
    assert!(status.starts_with("HTTP/1.1 301"), "{status}");
    assert!(headers.contains("Location: /simple/purelib/"), "{headers}");

    for path in ["/simple/nosuchproject/", "/../secret.txt", "/files/%2e%2e/../secret.txt", "/%2e%2e/secret.txt"] {
        let (status, _, body) = read_response(send_request(addr, "GET", path));
        assert!(status.starts_with("HTTP/1.1 404"), "{path}: {status}");
        assert!(!String::from_utf8_lossy(&body).contains("outside the root"), "{path} escaped the root");
    }
    assert!(server.wait_for_request_containing("secret", Duration::from_secs(1)));
    assert!(server.requests().starts_with(&["/simple/purelib/".to_owned()]));
}

#[test]
fn stalled_download_holds_half_the_body_until_released() {
    let tmp = tempdir();
    let index = TestIndex::build(&tmp.path().join("index"));
    let wheel = WheelSpec::pure("bigpayload", "1.0").filename();
    let options = ServerOptions { stall_paths_containing: Some("bigpayload".into()), ..ServerOptions::default() };
    let server = Server::start(index.root(), options);

    let mut stream = send_request(server.addr(), "GET", &format!("/files/{wheel}"));
    assert!(server.wait_for_request_containing(&wheel, Duration::from_secs(10)));

    // Read until the first half has arrived, then prove nothing more comes: a quiet socket alone
    // is not enough, since a loaded machine can pause a healthy transfer too.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
    let mut raw = Vec::new();
    let mut chunk = vec![0_u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    let stalled = loop {
        assert!(Instant::now() < deadline, "the first half never arrived: {} bytes", raw.len());
        let quiet = match stream.read(&mut chunk) {
            Ok(0) => break false,
            Ok(n) => {
                raw.extend_from_slice(&chunk[..n]);
                false
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
            Err(err) => panic!("reading: {err}"),
        };
        if quiet && has_first_half(&raw) {
            break true;
        }
    };
    let (status, headers, partial) = split_response(&raw);
    let total = content_length(&headers);
    assert!(stalled, "connection closed instead of stalling");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(total >= index::BIG_PAYLOAD_BYTES, "Content-Length {total} smaller than the payload");
    assert_eq!(partial.len(), total / 2, "expected exactly the first half before the stall");

    server.release_stall();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if let Err(err) = stream.read_to_end(&mut raw) {
        panic!("reading the rest: {err}");
    }
    let (_, _, body) = split_response(&raw);
    assert_eq!(body.len(), total);
    assert_eq!(sha256_hex(&body), index.sha256_of(&wheel));
}

#[test]
fn dropping_the_server_ends_a_stall() {
    let tmp = tempdir();
    let index = TestIndex::build(&tmp.path().join("index"));
    let options = ServerOptions { stall_paths_containing: Some("bigpayload".into()), ..ServerOptions::default() };
    let server = Server::start(index.root(), options);
    let wheel = WheelSpec::pure("bigpayload", "1.0").filename();
    let stream = send_request(server.addr(), "GET", &format!("/files/{wheel}"));
    assert!(server.wait_for_request_containing(&wheel, Duration::from_secs(10)));

    // The reader drains concurrently so the server's half-body write cannot block on a full socket.
    let reader = std::thread::spawn(move || read_response(stream));
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(5), "drop waited for the stall");
    let (status, headers, body) = match reader.join() {
        Ok(response) => response,
        Err(_) => panic!("reader thread panicked"),
    };
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.len() < content_length(&headers), "a dropped server must not finish the transfer");
}

/// Every file under `root`, keyed by its `/`-separated relative path.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                out.insert(relative, std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Downloaded files must be exactly the bytes the index published.
fn assert_same_bytes(out: &Path, index: &TestIndex) {
    for name in file_names(out) {
        let bytes = std::fs::read(out.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sha256_hex(&bytes), index.sha256_of(&name), "{name} differs from the index copy");
    }
}

fn read_to_string(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Text of every member of a (small, text-only) wheel.
fn zip_members(path: &Path) -> BTreeMap<String, String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut archive = zip::ZipArchive::new(file).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut members = BTreeMap::new();
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).unwrap_or_else(|e| panic!("member {i}: {e}"));
        let mut text = String::new();
        member.read_to_string(&mut text).unwrap_or_else(|e| panic!("member {}: {e}", member.name()));
        members.insert(member.name().to_owned(), text);
    }
    members
}
