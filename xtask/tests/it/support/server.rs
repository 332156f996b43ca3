//! A tiny std-only HTTP/1.1 file server on 127.0.0.1 with optional basic auth and a controllable stall.
//!
//! Each connection gets its own thread and is closed after one response (`Connection: close`), so
//! there is no keep-alive state to get wrong. Every blocking call is bounded by a socket timeout,
//! the shutdown flag or [`STALL_LIMIT`], so a broken test can never hang the suite forever.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// How long a client may take to send its request, and to accept our bytes.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on a stall even if nobody releases it, so a forgotten stall cannot hang the suite.
const STALL_LIMIT: Duration = Duration::from_secs(120);
/// Requests are tiny GET/HEAD heads; anything bigger is a broken client.
const MAX_HEAD_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Require `Authorization: Basic` with exactly this user and password.
    pub basic_auth: Option<(String, String)>,
    /// A GET whose path contains this string gets half its body, then blocks until
    /// [`Server::release_stall`] or drop.
    pub stall_paths_containing: Option<String>,
    /// Answer 401 to a client whose `User-Agent` contains this: an index that takes credentials
    /// the tool's own downloader does not have (keyring), which pip does have.
    pub refuse_user_agent_containing: Option<String>,
    /// A client whose `User-Agent` contains this gets a 503 for its first GET of each file under
    /// `files/`, as a busy mirror gives.
    pub busy_once_for_user_agent_containing: Option<String>,
    /// A file whose name contains this is served with other bytes from its second GET on, as an
    /// index whose file changed after its page announced the hash.
    pub other_bytes_after_first_get_of: Option<String>,
}

/// A running server; dropping it stops the accept loop and joins every connection thread.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

struct Shared {
    root: PathBuf,
    options: ServerOptions,
    shutdown: AtomicBool,
    /// Request targets in arrival order; the condvar wakes `wait_for_request_containing`.
    requests: Mutex<Vec<String>>,
    request_arrived: Condvar,
    /// True once released (or shutting down); the condvar wakes stalled responses.
    stall_over: Mutex<bool>,
    stall_changed: Condvar,
    connections: Mutex<Vec<JoinHandle<()>>>,
    /// Paths already served, alone and after the user agent that asked (`UA path`).
    served: Mutex<Vec<String>>,
}

impl Server {
    /// Serves `root` (the directory holding `simple/` and `files/`) on an ephemeral loopback port.
    pub fn start(root: &Path, options: ServerOptions) -> Server {
        let root = match root.canonicalize() {
            Ok(root) => root,
            Err(err) => panic!("server root {}: {err}", root.display()),
        };
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(err) => panic!("binding 127.0.0.1:0: {err}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(err) => panic!("local_addr: {err}"),
        };
        let shared = Arc::new(Shared {
            root,
            options,
            shutdown: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            request_arrived: Condvar::new(),
            stall_over: Mutex::new(false),
            stall_changed: Condvar::new(),
            connections: Mutex::new(Vec::new()),
            served: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("test-http-accept".into())
            .spawn(move || accept_loop(&listener, &accept_shared));
        let accept_thread = match accept_thread {
            Ok(handle) => handle,
            Err(err) => panic!("spawning accept thread: {err}"),
        };
        Server { addr, shared, accept_thread: Some(accept_thread) }
    }

    /// `http://127.0.0.1:PORT/` (no trailing path).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `http://127.0.0.1:PORT/simple/`, usable as `--index-url`.
    pub fn url(&self) -> String {
        format!("http://{}/simple/", self.addr)
    }

    /// `http://user:pass@127.0.0.1:PORT/simple/`, with user and password percent-encoded.
    pub fn url_with_auth(&self, user: &str, pass: &str) -> String {
        format!("http://{}:{}@{}/simple/", userinfo_escape(user), userinfo_escape(pass), self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Request targets (path plus any query) in arrival order, including rejected ones.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Waits until some request target contains `needle`; false on timeout.
    pub fn wait_for_request_containing(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut requests = lock(&self.shared.requests);
        loop {
            if requests.iter().any(|r| r.contains(needle)) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            requests = match self.shared.request_arrived.wait_timeout(requests, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Lets every stalled response (and any later one) send the rest of its body.
    pub fn release_stall(&self) {
        self.shared.end_stall();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.end_stall();
        // The accept loop blocks in accept(); a connection of our own wakes it to see the flag.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).is_ok();
        if let Some(handle) = self.accept_thread.take() {
            // If the wake-up connect failed, joining could block forever; leak the thread instead.
            if woke {
                let _ = handle.join();
            }
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for handle in connections {
            // Bounded: every connection socket has read/write timeouts and stalls end on shutdown.
            let _ = handle.join();
        }
    }
}

impl Shared {
    fn end_stall(&self) {
        *lock(&self.stall_over) = true;
        self.stall_changed.notify_all();
    }

    /// Blocks until the stall is released or the server stops; true if the rest may be sent.
    fn wait_for_release(&self) -> bool {
        let deadline = Instant::now() + STALL_LIMIT;
        let mut over = lock(&self.stall_over);
        while !*over {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            over = match self.stall_changed.wait_timeout(over, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        !self.shutdown.load(Ordering::SeqCst)
    }

    fn record_request(&self, target: &str) {
        lock(&self.requests).push(target.to_owned());
        self.request_arrived.notify_all();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take the whole test down with a poison error.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let conn_shared = Arc::clone(shared);
        let spawned =
            thread::Builder::new().name("test-http-conn".into()).spawn(move || handle_connection(stream, &conn_shared));
        if let Ok(handle) = spawned {
            let mut connections = lock(&shared.connections);
            // Drop finished handles so a long test does not accumulate them.
            connections.retain(|h| !h.is_finished());
            connections.push(handle);
        }
    }
}

struct Request {
    method: String,
    target: String,
    authorization: Option<String>,
    user_agent: String,
}

fn handle_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(SOCKET_TIMEOUT));
    let _ = stream.set_write_timeout(Some(SOCKET_TIMEOUT));
    // Errors mean the client went away; there is nobody left to tell.
    let _ = serve_one(&mut stream, shared);
    let _ = stream.flush();
    // Half-close so the client sees EOF after the body; the socket closes when dropped.
    let _ = stream.shutdown(Shutdown::Write);
}

fn serve_one(stream: &mut TcpStream, shared: &Shared) -> io::Result<()> {
    let Some(request) = read_request(stream)? else {
        return Ok(());
    };
    if shared.shutdown.load(Ordering::SeqCst) {
        return Ok(());
    }
    shared.record_request(&request.target);

    let head_only = match request.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => return send_simple(stream, "405 Method Not Allowed", &[("Allow", "GET, HEAD")], false),
    };

    if let Some((user, pass)) = &shared.options.basic_auth {
        if !authorized(request.authorization.as_deref(), user, pass) {
            let headers = [("WWW-Authenticate", "Basic realm=\"test\"")];
            return send_simple(stream, "401 Unauthorized", &headers, head_only);
        }
    }

    if let Some(needle) = &shared.options.refuse_user_agent_containing {
        if request.user_agent.contains(needle.as_str()) {
            return send_simple(stream, "401 Unauthorized", &[("WWW-Authenticate", "Basic realm=\"test\"")], head_only);
        }
    }
    // A proxy's request names the whole URL (`GET http://host:port/path`): this server is then
    // the proxy, and serves the path from its own root whatever the host.
    let origin_form = match request.target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |slash| &rest[slash..]),
        None => request.target.as_str(),
    };
    let path_part = origin_form.split(['?', '#']).next().unwrap_or("");
    let (first_get, first_get_by_agent) = if head_only {
        (false, false)
    } else {
        let mut served = lock(&shared.served);
        let by_agent = format!("{} {path_part}", request.user_agent);
        let first = !served.iter().any(|seen| seen == path_part);
        let first_by_agent = !served.contains(&by_agent);
        served.extend([path_part.to_owned(), by_agent]);
        (first, first_by_agent)
    };
    let busy = shared
        .options
        .busy_once_for_user_agent_containing
        .as_deref()
        .is_some_and(|needle| request.user_agent.contains(needle));
    if busy && first_get_by_agent && path_part.starts_with("/files/") {
        return send_simple(stream, "503 Service Unavailable", &[], head_only);
    }
    let Some(mut path) = resolve(&shared.root, path_part) else {
        return send_simple(stream, "404 Not Found", &[], head_only);
    };
    if path.is_dir() {
        if !path_part.ends_with('/') {
            // Relative links in index pages only resolve correctly under the slash-terminated URL.
            let location = format!("{path_part}/");
            return send_simple(stream, "301 Moved Permanently", &[("Location", &location)], head_only);
        }
        path.push("index.html");
    }
    let mut body = match std::fs::read(&path) {
        Ok(body) if path.is_file() => body,
        _ => return send_simple(stream, "404 Not Found", &[], head_only),
    };
    let changed =
        shared.options.other_bytes_after_first_get_of.as_deref().is_some_and(|needle| path_part.contains(needle));
    if changed && !first_get {
        if let Some(last) = body.last_mut() {
            *last ^= 0xff;
        }
    }
    let content_type = if path.extension().is_some_and(|e| e == "html") {
        "text/html; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if head_only {
        return Ok(());
    }

    let stall = shared.options.stall_paths_containing.as_deref().is_some_and(|needle| request.target.contains(needle));
    if stall {
        let half = body.len() / 2;
        stream.write_all(&body[..half])?;
        stream.flush()?;
        if !shared.wait_for_release() {
            // Server dropped mid-stall: abandon the transfer, as a dying server would.
            return Ok(());
        }
        stream.write_all(&body[half..])?;
    } else {
        stream.write_all(&body)?;
    }
    Ok(())
}

/// Reads the request head; `None` for a connection that closed without sending one (our wake-up).
fn read_request(stream: &mut TcpStream) -> io::Result<Option<Request>> {
    let mut head = Vec::new();
    let mut chunk = [0_u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_owned();
    let target = request_line.next().unwrap_or("").to_owned();
    let headers: Vec<(&str, &str)> =
        lines.take_while(|line| !line.is_empty()).filter_map(|line| line.split_once(':')).collect();
    let header = |wanted: &str| {
        headers
            .iter()
            .find(|(name, _)| name.trim().eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.trim().to_owned())
    };
    Ok(Some(Request {
        method,
        target,
        authorization: header("authorization"),
        user_agent: header("user-agent").unwrap_or_default(),
    }))
}

fn authorized(header: Option<&str>, user: &str, pass: &str) -> bool {
    let Some((scheme, encoded)) = header.and_then(|h| h.split_once(' ')) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    match base64::engine::general_purpose::STANDARD.decode(encoded.trim()) {
        Ok(decoded) => decoded == format!("{user}:{pass}").as_bytes(),
        Err(_) => false,
    }
}

/// Maps a URL path onto `root`, refusing anything that could escape it (`..`, symlinks out).
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    let mut path = root.to_path_buf();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return None,
            _ if segment.contains('\\') || segment.contains('\0') => return None,
            _ => {
                // A segment like "C:" or an absolute path would replace `path` when pushed.
                let mut components = Path::new(segment).components();
                if !matches!((components.next(), components.next()), (Some(Component::Normal(_)), None)) {
                    return None;
                }
                path.push(segment);
            }
        }
    }
    let canonical = path.canonicalize().ok()?;
    canonical.starts_with(root).then_some(canonical)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but RFC 3986 unreserved characters, as userinfo needs.
fn userinfo_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn send_simple(stream: &mut TcpStream, status: &str, headers: &[(&str, &str)], head_only: bool) -> io::Result<()> {
    let body = format!("{status}\n");
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    Ok(())
}
