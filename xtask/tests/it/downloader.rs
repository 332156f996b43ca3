//! The native downloader talks to an index as pip would: credentials from `.netrc`, proxies and
//! `NO_PROXY`, a private CA, a client certificate, `trusted-host`; it retries a busy mirror, hands
//! pip what only pip can fetch, and refuses bytes other than those announced.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::{
    project::{Project, ONE_TARGET},
    python, run_ok, Server, ServerOptions,
};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const SECRET: &str = "n3trc-Secret";

#[test]
fn netrc_credentials_reach_the_index_and_no_proxy_keeps_loopback_direct() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    let server = Server::start(
        project.index.root(),
        ServerOptions { basic_auth: Some(("deploy".to_owned(), SECRET.to_owned())), ..ServerOptions::default() },
    );
    let netrc = project.write(".netrc-test", &format!("machine 127.0.0.1\n  login deploy\n  password {SECRET}\n"));
    let mut command =
        project.create_command(&[&["--index-url", &server.url(), "--no-build-tools"][..], &ONE_TARGET].concat());
    // A proxy that is not there: only NO_PROXY (127.0.0.1, set for every test) keeps this working.
    command.env("NETRC", &netrc).env("HTTP_PROXY", "http://127.0.0.1:9").env("http_proxy", "http://127.0.0.1:9");
    let output = run_ok(&mut command);
    let text = stderr(&output);
    assert!(text.contains("downloaded 3 files"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(project.wheelhouse().join("purelib-1.0-py3-none-any.whl").is_file());
    let wheel_gets = server.requests().iter().filter(|target| target.ends_with("purelib-1.0-py3-none-any.whl")).count();
    assert_eq!(wheel_gets, 2, "pip's resolution and the downloader each fetch it once: {:?}", server.requests());
}

#[test]
fn a_proxy_carries_every_request_for_a_host_it_alone_can_reach() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    let proxy = Server::start(project.index.root(), ServerOptions::default());
    // `.invalid` never resolves (RFC 6761): only through the proxy is this index reachable.
    let index = "http://index.invalid:8080/simple/";
    let mut command = project.create_command(&[&["--index-url", index, "--no-build-tools"][..], &ONE_TARGET].concat());
    let proxy_url = proxy.base_url();
    command.env("HTTP_PROXY", &proxy_url).env("http_proxy", &proxy_url).env("PIP_TRUSTED_HOST", "index.invalid:8080");
    let output = run_ok(&mut command);
    assert!(stderr(&output).contains("downloaded 3 files"), "{}", stderr(&output));
    let wheel_url = "http://index.invalid:8080/files/purelib-1.0-py3-none-any.whl";
    let through_proxy = proxy.requests().iter().filter(|target| target.as_str() == wheel_url).count();
    assert_eq!(through_proxy, 2, "{:?}", proxy.requests());
}

#[test]
fn bytes_other_than_announced_name_the_package_target_and_both_hashes_and_change_nothing() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    let server = Server::start(
        project.index.root(),
        ServerOptions { other_bytes_after_first_get_of: Some("purelib-1.0".to_owned()), ..ServerOptions::default() },
    );
    let output = project.create_fails(&[&["--index-url", &server.url(), "--no-build-tools"][..], &ONE_TARGET].concat());
    let text = stderr(&output);
    let expected = project.index.sha256_of("purelib-1.0-py3-none-any.whl");
    for needed in ["sha256 mismatch for purelib 1.0 (purelib-1.0-py3-none-any.whl)", "linux/amd64", &expected, "got "] {
        assert!(text.contains(needed), "no `{needed}` in:\n{text}");
    }
    assert!(!project.wheelhouse().exists(), "a failed first run must leave no wheelhouse");
}

#[test]
fn a_busy_mirror_is_retried_and_what_the_index_refuses_the_downloader_goes_to_pip() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\nbigpayload\n");
    let flags = |url: &str| {
        [&["--index-url", url, "--no-build-tools"][..], &ONE_TARGET]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let busy = Server::start(
        project.index.root(),
        ServerOptions { busy_once_for_user_agent_containing: Some("wheelgap/".to_owned()), ..ServerOptions::default() },
    );
    let url = busy.url();
    let args = flags(&url);
    let output = project.create(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stderr(&output).contains("downloaded 4 files"), "{}", stderr(&output));
    let gets = busy.requests().iter().filter(|target| target.ends_with("bigpayload-1.0-py3-none-any.whl")).count();
    assert_eq!(gets, 3, "pip once, the downloader twice (a 503, then the file): {:?}", busy.requests());

    fs_err::remove_dir_all(project.wheelhouse()).unwrap();
    let refusing = Server::start(
        project.index.root(),
        ServerOptions { refuse_user_agent_containing: Some("wheelgap/".to_owned()), ..ServerOptions::default() },
    );
    let url = refusing.url();
    let args = flags(&url);
    let output = project.create(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let text = stderr(&output);
    assert!(text.contains("4 files for pip"), "{text}");
    assert_eq!(project.manifest()["files"].as_array().unwrap().len(), 4);
}

/// A private CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl.
struct Certificates {
    ca: PathBuf,
    server: PathBuf,
    server_key: PathBuf,
    client: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    run_ok(Command::new("openssl").current_dir(dir).args(args).stderr(Stdio::piped()));
}

fn make_certificates(dir: &Path) -> Certificates {
    fs_err::create_dir_all(dir).unwrap();
    let days = ["-days", "2"];
    openssl(
        dir,
        &[
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=test-ca",
            ][..],
            &days,
        ]
        .concat(),
    );
    fs_err::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    fs_err::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/CN=test-client")] {
        let (key, csr, cert, ext) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
        openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject]);
        openssl(
            dir,
            &[
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &cert,
                    "-extfile",
                    &ext,
                ][..],
                &days,
            ]
            .concat(),
        );
    }
    let client = [
        fs_err::read_to_string(dir.join("client.crt")).unwrap(),
        fs_err::read_to_string(dir.join("client.key")).unwrap(),
    ]
    .concat();
    fs_err::write(dir.join("client.pem"), client).unwrap();
    Certificates {
        ca: dir.join("ca.pem"),
        server: dir.join("server.crt"),
        server_key: dir.join("server.key"),
        client: dir.join("client.pem"),
    }
}

/// Python's own HTTPS server over the index, requiring a client certificate from the CA.
const HTTPS_SERVER: &str = r#"
import functools, http.server, ssl, sys
root, port_file, cert, key, ca = sys.argv[1:6]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
handler.func.log_message = lambda *args: None
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
context.verify_mode = ssl.CERT_REQUIRED
context.load_verify_locations(ca)
server.socket = context.wrap_socket(server.socket, server_side=True)
open(port_file + ".tmp", "w").write(str(server.server_address[1]))
__import__("os").rename(port_file + ".tmp", port_file)
server.serve_forever()
"#;

struct HttpsServer {
    child: Child,
    port: u16,
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_https(root: &Path, certificates: &Certificates, port_file: &Path) -> HttpsServer {
    let child = Command::new(python())
        .args(["-c", HTTPS_SERVER])
        .arg(root)
        .arg(port_file)
        .args([&certificates.server, &certificates.server_key, &certificates.ca])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !port_file.is_file() {
        assert!(Instant::now() < deadline, "the HTTPS server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let port = fs_err::read_to_string(port_file).unwrap().trim().parse().unwrap();
    HttpsServer { child, port }
}

#[test]
fn https_with_a_private_ca_a_client_certificate_and_a_trusted_host() {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    let certificates = make_certificates(&project.tmp.path().join("certs"));
    let server = start_https(project.index.root(), &certificates, &project.tmp.path().join("https.port"));
    let url = format!("https://127.0.0.1:{}/simple/", server.port);
    let create = |environment: &[(&str, &Path)], trusted: bool| {
        let mut command =
            project.create_command(&[&["--index-url", url.as_str(), "--no-build-tools"][..], &ONE_TARGET].concat());
        for name in ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"] {
            command.env_remove(name);
        }
        command.env("PIP_CLIENT_CERT", &certificates.client);
        for (name, value) in environment {
            command.env(name, value);
        }
        if trusted {
            command.env("PIP_TRUSTED_HOST", "127.0.0.1");
        }
        command
    };
    // The CA through pip's own setting, and through the variable requests reads.
    for name in ["PIP_CERT", "REQUESTS_CA_BUNDLE"] {
        let output = run_ok(&mut create(&[(name, &certificates.ca)], false));
        assert!(stderr(&output).contains("downloaded 3 files"), "{name}: {}", stderr(&output));
        fs_err::remove_dir_all(project.wheelhouse()).unwrap();
    }
    // No CA at all: only trusted-host lets pip and the downloader through.
    let output = run_ok(&mut create(&[], true));
    assert!(stderr(&output).contains("downloaded 3 files"), "{}", stderr(&output));
    fs_err::remove_dir_all(project.wheelhouse()).unwrap();
    let failed = crate::support::run_fails(&mut create(&[], false));
    assert!(!project.wheelhouse().exists(), "{}", stderr(&failed));
}
