//! A `serve` process on 127.0.0.1 for the tests, and a small HTTP/1.1 load generator: keep-alive
//! clients on plain sockets, each request's latency kept, every answer checked for its status and
//! length. Lean on purpose: the client shares the machine's two CPUs with the server it measures.

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use super::{project::Project, python, scrub_env};

/// A blocking HTTP client for 127.0.0.1: no proxy, no redirects followed.
pub fn client() -> reqwest::blocking::Client {
    // The tool's reqwest has rustls without a provider chosen; the tool installs ring, as here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A running `serve`, stopped with SIGTERM when dropped.
pub struct Serving {
    pub child: Option<Child>,
    pub address: SocketAddr,
    pub log: PathBuf,
}

impl Serving {
    /// Starts `command` (a `serve` with `--bind 127.0.0.1:0`), its stderr into `log`, and waits
    /// for its `listening` line. Panics with the log when it exits first.
    pub fn start(mut command: Command, log: &Path) -> Serving {
        let file = fs_err::File::create(log).unwrap();
        let mut child = command.stdout(Stdio::null()).stderr(file.into_parts().0).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = fs_err::read_to_string(log).unwrap_or_default();
            if let Some(line) = text.lines().find(|line| line.contains("\"event\":\"listening\"")) {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                let address = event["address"].as_str().unwrap().parse().unwrap();
                return Serving { child: Some(child), address, log: log.to_path_buf() };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("serve exited ({status}) before listening:\n{text}");
            }
            assert!(Instant::now() < deadline, "serve did not listen within 120 s:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// SIGTERM, then the exit status and the whole log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        terminate(&mut child);
        let status = child.wait().unwrap();
        (status, fs_err::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
            let _ = child.wait();
        }
    }
}

fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on the pid of a child not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
}

/// What starts every script of [`in_namespace`]: loopback up, `serve` of the project's wheelhouse
/// on it (stderr in serve.log), `$url` its index URL, `$server` its pid, and a trap that stops it
/// whatever happens, so that it never holds the test's pipes open.
const SERVE_IN_NAMESPACE: &str = r#"set -eu
ip link set lo up
"$WHEELGAP" serve --bind 127.0.0.1:0 > /dev/null 2> serve.log &
server=$!
trap 'kill -TERM "$server" 2>/dev/null || true' EXIT
for _ in $(seq 200); do grep -q '"event":"listening"' serve.log && break; sleep 0.1; done
url=$(sed -n 's/.*"index_url":"\([^"]*\)".*/\1/p' serve.log | head -n 1)
"#;

/// Runs `script` with `sh` in a network namespace of its own (`unshare --net`), in the project's
/// root, after [`SERVE_IN_NAMESPACE`], with the binary as `$WHEELGAP`, the test interpreter as
/// `$PYTHON`, no pip or uv configuration, and `env`. Panics with its output and serve.log if it
/// fails; returns serve.log.
pub fn in_namespace(project: &Project, script: &str, env: &[(&str, &OsStr)]) -> String {
    let script = format!("{SERVE_IN_NAMESPACE}{script}\nkill -TERM \"$server\"\nwait \"$server\"\n");
    let mut command = Command::new("unshare");
    scrub_env(&mut command);
    command
        .args(["--net", "sh", "-c", &script])
        .current_dir(project.root())
        .env_remove("CARGO")
        .env("WHEELGAP", env!("CARGO_BIN_EXE_wheelgap"))
        .env("PYTHON", python())
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_CACHE_DIR", project.tmp.path().join("pip-cache"))
        .env("UV_NO_CONFIG", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let log = fs_err::read_to_string(project.root().join("serve.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "{}\n{}\nserve.log:\n{log}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    log
}

/// What a load run measured.
#[derive(Debug)]
pub struct Load {
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub bytes: u64,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// `requests` GETs of `paths` in turn (the i-th request asks for `paths[i % len]`), from
/// `clients` keep-alive connections to `address`. An answer other than 200, a connection that
/// fails, or a body of another length than `lengths[path]` is an error; a failed connection is
/// opened again.
pub fn run(address: SocketAddr, paths: &[(String, u64)], clients: usize, requests: usize) -> Load {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<(Vec<Duration>, usize, u64)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let next = &next;
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    let mut bytes = 0;
                    let mut connection: Option<BufReader<TcpStream>> = None;
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= requests {
                            break;
                        }
                        let (path, length) = &paths[index % paths.len()];
                        let asked = Instant::now();
                        match get(&mut connection, address, path) {
                            Ok((200, body)) if body == *length => bytes += body,
                            _ => {
                                errors += 1;
                                connection = None;
                            }
                        }
                        latencies.push(asked.elapsed());
                    }
                    (latencies, errors, bytes)
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().unwrap()).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = results.iter().flat_map(|(latencies, _, _)| latencies.clone()).collect();
    latencies.sort();
    let at = |quantile: f64| {
        let index = ((latencies.len() as f64 * quantile).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    Load {
        requests: latencies.len(),
        errors: results.iter().map(|(_, errors, _)| errors).sum(),
        seconds,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        bytes: results.iter().map(|(_, _, bytes)| bytes).sum(),
    }
}

/// One GET on the kept connection (opened when there is none): the status and the body's length.
fn get(connection: &mut Option<BufReader<TcpStream>>, address: SocketAddr, path: &str) -> std::io::Result<(u16, u64)> {
    if connection.is_none() {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        *connection = Some(BufReader::with_capacity(64 << 10, stream));
    }
    let reader = connection.as_mut().unwrap();
    write!(reader.get_mut(), "GET {path} HTTP/1.1\r\nHost: load\r\nUser-Agent: load\r\n\r\n")?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let mut length = None;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed in the headers"));
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<u64>().ok();
            }
        }
    }
    let length = length.ok_or_else(|| std::io::Error::other("no content-length"))?;
    let copied = std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink())?;
    Ok((status, copied))
}
