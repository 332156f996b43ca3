//! `serve`: the verified wheelhouse as a read-only PEP 503/691 index over HTTP. What it answers
//! (negotiated pages, PEP 658 metadata, HEAD, entity tags, ranges, health and metrics), what it
//! refuses (a damaged wheelhouse, a missing signature, anything the manifest does not list), that
//! it writes nothing and stops gracefully; pip and uv installing from it inside a network namespace
//! with only loopback; and a bounded load against nginx serving the same files.

use std::{collections::BTreeMap, path::Path, process::Command};

use reqwest::{header, StatusCode};
use xtask::model::digest::sha256_hex;

use crate::support::{
    load::{self, client, in_namespace, Serving},
    pip_at_least,
    project::{stderr, Project, FOUR_TARGETS, ONE_TARGET},
    python, run_fails, run_ok, uv_under_test,
};

const REQUIREMENTS: &str = "purelib\ncompiled\nwithextra[fast]\nx86only; platform_machine == \"x86_64\"\nbigpayload\n";
const JSON: &str = "application/vnd.pypi.simple.v1+json";

fn serve(project: &Project, args: &[&str], log: &str) -> Serving {
    let command = project.command(&[&["serve", "--bind", "127.0.0.1:0"][..], args].concat());
    Serving::start(command, &project.tmp.path().join(log))
}

fn manifest_files(project: &Project) -> BTreeMap<String, String> {
    project.manifest()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| (file["filename"].as_str().unwrap().to_owned(), file["sha256"].as_str().unwrap().to_owned()))
        .collect()
}

/// Per target, each package resolved as `name version filename`.
fn pins(manifest: &serde_json::Value) -> BTreeMap<String, Vec<String>> {
    let resolutions = manifest["resolutions"].as_array().unwrap().iter();
    resolutions
        .map(|resolution| {
            let packages = resolution["packages"].as_array().unwrap().iter();
            let packages =
                packages.map(|package| format!("{} {} {}", package["name"], package["version"], package["filename"]));
            (resolution["target"].as_str().unwrap().to_owned(), packages.collect())
        })
        .collect()
}

/// The value of a counter of `/metrics` with these labels (0 when absent).
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .filter(|sample| labels.iter().all(|(key, value)| sample.labels.get(key) == Some(*value)))
        .map(|sample| match sample.value {
            prometheus_parse::Value::Counter(value) | prometheus_parse::Value::Gauge(value) => value,
            _ => 0.0,
        })
        .sum()
}

#[test]
fn serve_answers_as_an_index_refuses_the_rest_and_writes_nothing() {
    let project = Project::with_wheelhouse(REQUIREMENTS, &FOUR_TARGETS);
    let before = project.snapshot();
    let files = manifest_files(&project);
    // 1 MiB of memory: the 2 MiB wheel is served from disk, the others from memory.
    let server = serve(&project, &["--memory", "1"], "serve.log");
    let http = client();

    // Pages: HTML without an Accept header, PEP 691 JSON when asked, names redirected to their
    // normalized form.
    let root = http.get(server.url("/simple/")).send().unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    assert_eq!(root.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(root.text().unwrap().contains("<a href=\"compiled/\">compiled</a>"));
    let page = http.get(server.url("/simple/compiled/")).header(header::ACCEPT, JSON).send().unwrap();
    assert_eq!(page.headers()[header::CONTENT_TYPE], JSON);
    assert_eq!(page.headers()[header::VARY], "Accept");
    let page: serde_json::Value = serde_json::from_slice(&page.bytes().unwrap()).unwrap();
    let wheels = page["files"].as_array().unwrap();
    assert!(wheels.len() >= 4, "{page}");
    let moved = http.get(server.url("/simple/Compiled")).send().unwrap();
    assert_eq!(moved.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(moved.headers()[header::LOCATION], "/simple/compiled/");
    let html =
        http.get(server.url("/simple/")).header(header::ACCEPT, "application/vnd.pypi.simple.v1+html").send().unwrap();
    assert_eq!(html.headers()[header::CONTENT_TYPE], "application/vnd.pypi.simple.v1+html");
    let refused = http.get(server.url("/simple/")).header(header::ACCEPT, "application/xml").send().unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);

    // Each file of the page: the bytes of the manifest, and the METADATA the page's hash names.
    for wheel in wheels {
        let filename = wheel["filename"].as_str().unwrap();
        let bytes = http.get(server.url(&format!("/files/{filename}"))).send().unwrap().bytes().unwrap();
        assert_eq!(sha256_hex(&bytes), files[filename], "{filename}");
        let metadata = http.get(server.url(&format!("/files/{filename}.metadata"))).send().unwrap();
        assert_eq!(sha256_hex(&metadata.bytes().unwrap()), wheel["core-metadata"]["sha256"].as_str().unwrap());
    }

    // HEAD, entity tags and ranges, on a file in memory and on the one on disk.
    for filename in
        [files.keys().find(|name| name.starts_with("purelib")).unwrap(), &"bigpayload-1.0-py3-none-any.whl".to_owned()]
    {
        let url = server.url(&format!("/files/{filename}"));
        let whole = http.get(&url).send().unwrap();
        let etag = whole.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(etag, format!("\"{}\"", files[filename.as_str()]));
        let bytes = whole.bytes().unwrap();
        assert_eq!(sha256_hex(&bytes), files[filename.as_str()], "{filename}");
        let head = http.head(&url).send().unwrap();
        assert_eq!(head.headers()[header::CONTENT_LENGTH], bytes.len().to_string().as_str(), "{filename}");
        assert!(head.bytes().unwrap().is_empty());
        let cached = http.get(&url).header(header::IF_NONE_MATCH, &etag).send().unwrap();
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        let part = http.get(&url).header(header::RANGE, "bytes=2-9").send().unwrap();
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.headers()[header::CONTENT_RANGE], format!("bytes 2-9/{}", bytes.len()).as_str());
        assert_eq!(part.bytes().unwrap(), bytes.slice(2..10));
        // A range under an If-Range of another version is the whole file, never a splice.
        let other =
            http.get(&url).header(header::RANGE, "bytes=2-9").header(header::IF_RANGE, "\"other\"").send().unwrap();
        assert_eq!(other.status(), StatusCode::OK);
        let beyond = http.get(&url).header(header::RANGE, format!("bytes={}-", bytes.len())).send().unwrap();
        assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    }

    // Only the manifest's files (and the manifest at the root): not a file dropped beside them, not a path out.
    fs_err::write(project.wheelhouse().join("dropped-1.0-py3-none-any.whl"), b"not listed").unwrap();
    for path in [
        "/files/manifest.json",
        "/files/SHA256SUMS",
        "/files/dropped-1.0-py3-none-any.whl",
        "/SHA256SUMS",
        "/files/%2e%2e%2fmanifest.json",
    ] {
        assert_eq!(http.get(server.url(path)).send().unwrap().status(), StatusCode::NOT_FOUND, "{path}");
    }
    fs_err::remove_file(project.wheelhouse().join("dropped-1.0-py3-none-any.whl")).unwrap();
    // The manifest itself, at the root: what a client checks the index against.
    let manifest = http.get(server.url("/manifest.json")).send().unwrap().bytes().unwrap();
    assert_eq!(manifest, fs_err::read(project.wheelhouse().join("manifest.json")).unwrap());
    let posted = http.post(server.url("/simple/")).body("x").send().unwrap();
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(http.get(server.url("/healthz")).send().unwrap().text().unwrap(), "ok\n");

    let metrics = http.get(server.url("/metrics")).send().unwrap().text().unwrap();
    assert_eq!(metric(&metrics, "wheelgap_serve_errors_total", &[("code", "404")]), 5.0, "{metrics}");
    assert_eq!(metric(&metrics, "wheelgap_serve_requests_total", &[("kind", "file"), ("code", "206")]), 2.0);
    assert_eq!(metric(&metrics, "wheelgap_serve_files", &[]), files.len() as f64);
    assert!(metric(&metrics, "wheelgap_serve_response_bytes_total", &[("kind", "file")]) > 2.0 * 1024.0 * 1024.0);

    // SIGTERM: a clean stop, a JSON line per event, and not a byte of the wheelhouse changed.
    let (status, log) = server.stop();
    assert!(status.success(), "{status}: {log}");
    let events: Vec<serde_json::Value> =
        log.lines().filter(|line| line.starts_with('{')).map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(events.iter().any(|event| event["event"] == "stopped"), "{log}");
    assert!(events.iter().any(|event| event["event"] == "request" && event["status"] == 404), "{log}");
    assert_eq!(project.snapshot(), before);
}

#[test]
fn serve_refuses_a_damaged_wheelhouse_a_missing_signature_and_serves_an_archive_from_elsewhere() {
    let project = Project::with_wheelhouse("purelib\ncompiled\n", &ONE_TARGET);
    run_ok(&mut project.command(&["pack-wheelhouse"]));

    // An archive is verified and extracted into a temporary directory, never beside it.
    let listing = |dir: &Path| {
        let mut names: Vec<String> = fs_err::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing(&project.root());
    // Extractions of servers that are gone (pid 0 never runs a server) are removed; a directory
    // without the marker is not the tool's, and stays.
    let scratch = project.tmp.path().join("scratch");
    for (name, marker) in [("wheelgap-serve-gone", Some("0\n")), ("wheelgap-serve-mine", None)] {
        fs_err::create_dir_all(scratch.join(name)).unwrap();
        if let Some(pid) = marker {
            fs_err::write(scratch.join(name).join(".wheelgap-serve-pid"), pid).unwrap();
        }
    }
    let mut command = project.command(&["serve", "--bind", "127.0.0.1:0", "--archive", "wheelhouse.tgz"]);
    command.args(["--no-access-log", "--max-connections", "1"]).env("TMPDIR", &scratch);
    let server = Serving::start(command, &project.tmp.path().join("archive.log"));
    assert!(!scratch.join("wheelgap-serve-gone").exists() && scratch.join("wheelgap-serve-mine").exists());
    let page = client().get(server.url("/simple/purelib/")).header(header::ACCEPT, JSON).send().unwrap();
    let page: serde_json::Value = serde_json::from_slice(&page.bytes().unwrap()).unwrap();
    let filename = page["files"][0]["filename"].as_str().unwrap();
    let bytes = client().get(server.url(&format!("/files/{filename}"))).send().unwrap().bytes().unwrap();
    assert_eq!(sha256_hex(&bytes), manifest_files(&project)[filename]);
    // One connection at most (--max-connections 1): held open, the next one gets a 503 to retry,
    // and /healthz still answers.
    let mut held = std::net::TcpStream::connect(server.address).unwrap();
    std::io::Write::write_all(&mut held, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = [0u8; 64];
    let read = std::io::Read::read(&mut held, &mut answer).unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    let busy = client().get(server.url("/simple/")).send().unwrap();
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
    assert_eq!(client().get(server.url("/healthz")).send().unwrap().status(), StatusCode::OK);
    drop(held);
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("\"event\":\"request\""), "--no-access-log: {log}");
    assert_eq!(listing(&project.root()), before);

    // A signature is required and there is none.
    fs_err::write(project.root().join("signers.gpg"), b"").unwrap();
    let unsigned =
        stderr(&run_fails(&mut project.command(&["serve", "--bind", "127.0.0.1:0", "--keyring", "signers.gpg"])));
    assert!(unsigned.contains("signature"), "{unsigned}");

    // A wheel that no longer matches its manifest: named, and nothing is served.
    let wheel = project.wheelhouse().join(filename);
    let mut bytes = fs_err::read(&wheel).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs_err::write(&wheel, bytes).unwrap();
    let damaged = stderr(&run_fails(&mut project.command(&["serve", "--bind", "127.0.0.1:0"])));
    assert!(damaged.contains("does not match its manifest") && damaged.contains(filename), "{damaged}");
    assert!(!damaged.contains("listening"), "{damaged}");
}

/// Inside `unshare --net`, with only loopback up: serve, then pip resolves every target from it
/// (through create-wheelhouse, which drives pip per target with the target's markers) and uv does
/// a dry-run install per target; no wheel is fetched to resolve. Then a real install.
#[test]
fn pip_and_uv_install_from_serve_with_no_network_but_loopback() {
    let project = Project::with_wheelhouse(REQUIREMENTS, &FOUR_TARGETS);
    let n_files = manifest_files(&project).len();
    let uv = uv_under_test().map(|uv| uv.display().to_string()).unwrap_or_default();
    let script = r#"
metrics() { "$PYTHON" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' "${url%simple/}metrics"; }
"$WHEELGAP" create-wheelhouse --python-interpreter "$PYTHON" --index-url "$url" --no-build-tools --wheelhouse again \
  --platform linux/amd64 --platform linux/arm64 --python 3.11 --python 3.12
metrics > after-create.txt
if [ -n "$UV" ]; then
  for platform in x86_64-manylinux_2_28 aarch64-manylinux_2_28; do
    for version in 3.11 3.12; do
      "$UV" pip install --dry-run --no-cache --target "uv-$platform-$version" --index-url "$url" \
        --python-platform "$platform" --python-version "$version" --only-binary :all: -r requirements.txt \
        > "uv-$platform-$version.txt" 2>&1
    done
  done
fi
metrics > after-uv.txt
"$PYTHON" -m pip install --isolated --no-cache-dir --disable-pip-version-check --target installed \
  --only-binary :all: --index-url "$url" -r requirements.txt
metrics > after-install.txt
# From an address that is not loopback, pip trusts plain HTTP only when told: the install
# script names the host.
ip addr add 10.213.0.1/32 dev lo
"$WHEELGAP" serve --bind 10.213.0.1:0 --no-access-log > /dev/null 2> remote.log &
remote=$!
trap 'kill -TERM "$server" "$remote" 2>/dev/null || true' EXIT
for _ in $(seq 200); do grep -q '"event":"listening"' remote.log && break; sleep 0.1; done
remote_url=$(sed -n 's/.*"index_url":"\([^"]*\)".*/\1/p' remote.log | head -n 1)
"$WHEELGAP" install-script --index-url "$remote_url" --target via-script > install.sh
REQUIREMENTS=requirements.txt sh install.sh
kill -TERM "$remote"
wait "$remote""#;
    let log = in_namespace(&project, script, &[("UV", uv.as_ref())]);
    let read = |name: &str| fs_err::read_to_string(project.root().join(name)).unwrap();
    let wheel_gets = |text: &str| metric(text, "wheelgap_serve_requests_total", &[("kind", "file"), ("code", "200")]);

    // pip resolved all four targets as it did from the fixture index, then the tool's downloader
    // fetched each file once: no wheel was fetched to resolve (PEP 658 at work).
    let again: serde_json::Value = serde_json::from_str(&read("again/manifest.json")).unwrap();
    assert_eq!(pins(&again), pins(&project.manifest()));
    if pip_at_least(23, 3) {
        assert_eq!(wheel_gets(&read("after-create.txt")), n_files as f64, "{}", read("after-create.txt"));
        let metadata_gets = metric(&read("after-create.txt"), "wheelgap_serve_requests_total", &[("kind", "metadata")]);
        assert!(metadata_gets > 0.0);
    } else {
        // Before 23.2, pip knows only the `dist-info-metadata` key of JSON pages, which serve
        // leaves out (PEP 714): it fetches wheels to resolve, and installs the same files.
        eprintln!("pip before 23.3 fetches wheels to resolve: the wheel and metadata counts are not checked");
    }

    if !uv.is_empty() {
        for (platform, x86) in [("x86_64-manylinux_2_28", true), ("aarch64-manylinux_2_28", false)] {
            for version in ["3.11", "3.12"] {
                let said = read(&format!("uv-{platform}-{version}.txt"));
                assert!(said.contains("Would install") && said.contains("compiled==2.0"), "{said}");
                assert_eq!(said.contains("x86only"), x86, "{platform}: {said}");
            }
        }
        let uv_gets = wheel_gets(&read("after-uv.txt")) - wheel_gets(&read("after-create.txt"));
        assert_eq!(uv_gets, 0.0, "uv fetched a wheel to resolve");
    }

    // The real install for the host fetched wheels, and they import.
    assert!(wheel_gets(&read("after-install.txt")) > n_files as f64);
    let imported = run_ok(
        Command::new(python())
            .args(["-c", "import purelib, compiled; print('ok')"])
            .env("PYTHONPATH", project.root().join("installed")),
    );
    assert_eq!(String::from_utf8_lossy(&imported.stdout).trim(), "ok");
    assert!(log.contains("\"event\":\"stopped\""), "{log}");
    let imported = run_ok(
        Command::new(python())
            .args(["-c", "import purelib, compiled"])
            .env("PYTHONPATH", project.root().join("via-script")),
    );
    assert!(imported.status.success());
}

/// 32 clients, 10,000 requests of index pages, `.metadata` files and wheels, against serve and
/// against nginx (when installed) serving `index`'s static tree of the same wheelhouse. Both must
/// answer every request; the figures are printed (docs/benchmarks.md has a release build's).
#[test]
fn load_of_32_clients_and_10000_requests_has_no_errors() {
    let project = Project::with_wheelhouse(REQUIREMENTS, &FOUR_TARGETS);
    run_ok(&mut project.command(&["index", "--output", "static"]));
    let static_root = project.root().join("static");
    let mut paths: Vec<(String, u64)> = Vec::new();
    for entry in walkdir::WalkDir::new(&static_root).sort_by_file_name() {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(&static_root).unwrap().to_string_lossy().into_owned();
        let length = entry.metadata().unwrap().len();
        if relative.ends_with("/index.html") {
            paths.push((format!("/{}", relative.trim_end_matches("index.html")), length));
        } else if relative.starts_with("files/") {
            paths.push((format!("/{relative}"), length));
        }
    }
    assert!(paths.len() > 30, "{paths:?}");
    // scripts/bench-serve.sh asks for more requests, for steadier figures.
    let requests: usize =
        std::env::var("WHEELGAP_LOAD_REQUESTS").ok().and_then(|text| text.parse().ok()).unwrap_or(10_000);
    // With WHEELGAP_LOAD_ACCESS_LOG=1 both servers write a line per request (serve's JSON to its
    // log file, nginx's combined format to access.log).
    let access_log = std::env::var_os("WHEELGAP_LOAD_ACCESS_LOG").is_some_and(|value| value == "1");
    let server = serve(&project, if access_log { &[] } else { &["--no-access-log"] }, "load.log");
    let ours = load::run(server.address, &paths, 32, requests);
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    eprintln!("serve: {ours:?}, {:.0} requests/s", ours.per_second());
    assert_eq!((ours.requests, ours.errors), (requests, 0), "{ours:?}");

    let Some(nginx) = which::which("nginx")
        .ok()
        .or_else(|| Some("/usr/sbin/nginx".into()).filter(|path: &std::path::PathBuf| path.exists()))
    else {
        eprintln!("nginx not installed: serve alone was loaded");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = project.write(
        "nginx.conf",
        &format!(
            "daemon off;\nuser root;\nworker_processes auto;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log {access};\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n  server {{ listen 127.0.0.1:{port}; root {root}; index index.html; }}\n}}\n",
            dir = project.tmp.path().display(),
            access = if access_log { format!("{}/access.log", project.tmp.path().display()) } else { "off".to_owned() },
            root = static_root.display()
        ),
    );
    let mut child = Command::new(nginx).arg("-c").arg(&conf).spawn().unwrap();
    let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(address).is_err() {
        assert!(started.elapsed().as_secs() < 30 && child.try_wait().unwrap().is_none(), "nginx did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let theirs = load::run(address, &paths, 32, requests);
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGQUIT) };
    child.wait().unwrap();
    eprintln!("nginx: {theirs:?}, {:.0} requests/s", theirs.per_second());
    eprintln!("serve / nginx throughput: {:.2}x", ours.per_second() / theirs.per_second());
    assert_eq!((theirs.requests, theirs.errors), (requests, 0), "{theirs:?}");
    assert_eq!(ours.bytes, theirs.bytes);
}
