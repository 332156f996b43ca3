//! The HTTP side of `serve`: hyper's HTTP/1.1 server on a tokio runtime. A bounded number of
//! connections, a deadline for each request's headers and for each connection, GET and HEAD only,
//! answers decided by `model::serving`, a JSON line per request on stderr, Prometheus counters,
//! and a graceful stop on SIGTERM or SIGINT.

use std::{
    convert::Infallible,
    io::{self, Write},
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body::Frame;
use hyper::{
    body::Incoming,
    header::{self, HeaderValue},
    Method, Request, Response, StatusCode,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncRead, AsyncSeekExt, ReadBuf},
    net::TcpListener,
    sync::Semaphore,
};
use xtask::model::serving::{self, Counters, RangeAnswer, Route};

use super::catalog::{Body as FileBody, Catalog, Stamp};

/// Connections over `--max-connections` that still get an answer (a 503) before they are closed.
const OVERFLOW_CONNECTIONS: usize = 64;
/// A connection's read buffer: a request's headers must fit (hyper's default is about 400 KiB).
const MAX_BUFFER: usize = 64 << 10;
const MAX_HEADERS: usize = 64;

/// How the server runs.
pub struct Options {
    pub bind: SocketAddr,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub connection_timeout: Duration,
    pub grace: Duration,
    pub access_log: bool,
    pub threads: usize,
}

struct State {
    catalog: Catalog,
    counters: Mutex<Counters>,
    access_log: bool,
}

/// Serves `catalog` until SIGTERM or SIGINT, then lets open requests finish for `grace`.
pub fn serve(catalog: Catalog, options: Options) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    runtime.block_on(run(catalog, options))
}

async fn run(catalog: Catalog, options: Options) -> Result<()> {
    let listener =
        TcpListener::bind(options.bind).await.with_context(|| format!("cannot listen on {}", options.bind))?;
    let address = listener.local_addr()?;
    let counters = Counters { files: catalog.files.len(), file_bytes: catalog.n_bytes, ..Counters::default() };
    let state = Arc::new(State { catalog, counters: Mutex::new(counters), access_log: options.access_log });
    log_event(serde_json::json!({
        "event": "listening",
        "address": address.to_string(),
        "index_url": format!("http://{address}/simple/"),
        "files": state.catalog.files.len(),
        "bytes": state.catalog.n_bytes,
        "in_memory": state.catalog.n_in_memory,
        "max_connections": options.max_connections,
    }));
    let limit = Arc::new(Semaphore::new(options.max_connections.max(1)));
    // Past the limit a few more connections get one short answer (503, or `ok` from /healthz, so
    // that a busy server is not taken for a dead one) and are closed; past those, closed at once.
    let overflow = Arc::new(Semaphore::new(OVERFLOW_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_BUFFER)
        .max_headers(MAX_HEADERS);
    let mut refusing = http.clone();
    refusing.keep_alive(false);
    let mut stop = Box::pin(stop_signal());
    let reason = loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    log_event(serde_json::json!({"event": "accept-error", "error": error.to_string()}));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            reason = &mut stop => break reason,
        };
        let (permit, overloaded, builder) = match limit.clone().try_acquire_owned() {
            Ok(permit) => (permit, false, &http),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(permit) => (permit, true, &refusing),
                Err(_) => continue,
            },
        };
        stream.set_nodelay(true).ok();
        let counters = state.clone();
        let state = state.clone();
        let service = hyper::service::service_fn(move |request| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(answer(&state, request, peer, overloaded).await) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let deadline = if overloaded { options.header_timeout } else { options.connection_timeout };
        tokio::spawn(async move {
            counters.counters.lock().expect("counters").open_connections += 1;
            // A connection that outlives its deadline is dropped, whatever it is doing.
            let _ = tokio::time::timeout(deadline, connection).await;
            counters.counters.lock().expect("counters").open_connections -= 1;
            drop(permit);
        });
    };
    drop(listener);
    log_event(serde_json::json!({"event": "stopping", "signal": reason, "grace_seconds": options.grace.as_secs()}));
    let finished = tokio::time::timeout(options.grace, graceful.shutdown()).await.is_ok();
    log_event(serde_json::json!({"event": "stopped", "open_requests_finished": finished}));
    Ok(())
}

async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    }
}

/// One JSON object per line on stderr; serde escapes what a hostile path may hold.
fn log_event(mut event: serde_json::Value) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    event["ts"] = serde_json::json!((now.as_millis() as f64) / 1000.0);
    let mut line = event.to_string();
    line.push('\n');
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

async fn answer(state: &State, request: Request<Incoming>, peer: SocketAddr, overloaded: bool) -> Response<Body> {
    let started = Instant::now();
    let route = serving::route(request.uri().path());
    let kind = route.kind();
    let response = if overloaded && route != Route::Healthz {
        let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, "too many connections; try again\n");
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    } else {
        respond(state, &request, route).await
    };
    let status = response.status().as_u16();
    let sent = if request.method() == Method::HEAD { 0 } else { response.body().length() };
    state.counters.lock().expect("counters").record(kind, status, sent);
    if state.access_log {
        let path: String = request.uri().path().chars().take(serving::MAX_PATH).collect();
        log_event(serde_json::json!({
            "event": "request",
            "peer": peer.to_string(),
            "method": request.method().as_str(),
            "path": path,
            "kind": kind,
            "status": status,
            "bytes": sent,
            "micros": started.elapsed().as_micros() as u64,
        }));
    }
    response
}

async fn respond(state: &State, request: &Request<Incoming>, route: Route) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let head = request.method() == Method::HEAD;
    let header_text = |name: header::HeaderName| request.headers().get(name).and_then(|value| value.to_str().ok());
    let if_none_match = header_text(header::IF_NONE_MATCH);
    let response = match route {
        Route::Healthz => plain(StatusCode::OK, "ok\n"),
        Route::Metrics => {
            let text = state.counters.lock().expect("counters").prometheus();
            let mut response = Response::new(Body::full(Bytes::from(text)));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            response
        }
        Route::NotFound => plain(StatusCode::NOT_FOUND, "not found\n"),
        Route::Redirect(location) => {
            let mut response = plain(StatusCode::MOVED_PERMANENTLY, "moved\n");
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Route::Root | Route::Project(_) => {
            let Some(format) = serving::negotiate(header_text(header::ACCEPT)) else {
                let mut response = plain(StatusCode::NOT_ACCEPTABLE, "acceptable: PEP 691 JSON or HTML\n");
                response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
                return response;
            };
            let directory = match &route {
                Route::Project(name) => format!("simple/{name}/"),
                _ => "simple/".to_owned(),
            };
            let file = if format.is_json() { "index.json" } else { "index.html" };
            match state.catalog.pages.get(&format!("{directory}{file}")) {
                None => plain(StatusCode::NOT_FOUND, "no such project\n"),
                Some(page) => {
                    let mut response = whole(page.bytes.clone(), &page.etag, if_none_match, format.content_type());
                    response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
                    response
                }
            }
        }
        Route::Manifest(name) => match state.catalog.manifest_files.get(name) {
            None => plain(StatusCode::NOT_FOUND, "the wheelhouse has no such signature\n"),
            Some(file) => {
                let content_type =
                    if name.ends_with(".json") { "application/json" } else { "application/octet-stream" };
                whole(file.bytes.clone(), &file.etag, if_none_match, content_type)
            }
        },
        Route::Metadata(wheel) => match state.catalog.metadata.get(&wheel) {
            None => plain(StatusCode::NOT_FOUND, "not a file of this wheelhouse\n"),
            Some(metadata) => whole(metadata.bytes.clone(), &metadata.etag, if_none_match, "application/octet-stream"),
        },
        Route::File(name) => match state.catalog.files.get(&name) {
            None => plain(StatusCode::NOT_FOUND, "not a file of this wheelhouse\n"),
            Some(file) => {
                if serving::none_match(if_none_match, &file.etag) {
                    not_modified(&file.etag)
                } else {
                    let range = if serving::range_applies(header_text(header::IF_RANGE), &file.etag) {
                        serving::range(header_text(header::RANGE), file.size)
                    } else {
                        RangeAnswer::Whole
                    };
                    file_response(file, range, head).await
                }
            }
        },
    };
    if head {
        let (parts, body) = response.into_parts();
        let length = body.length();
        let mut response = Response::from_parts(parts, Body::Empty);
        // A 304 says nothing of the length: the client keeps what it has.
        if response.status() != StatusCode::NOT_MODIFIED {
            response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        return response;
    }
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn not_modified(etag: &str) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    set_validators(&mut response, etag);
    response
}

/// Pages may change with the wheelhouse behind the same URL: every use revalidates by the entity
/// tag, which is the sha256 of the bytes.
fn set_validators(response: &mut Response<Body>, etag: &str) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// A body held in memory, with ranges and revalidation.
fn whole(bytes: Bytes, etag: &str, if_none_match: Option<&str>, content_type: &'static str) -> Response<Body> {
    if serving::none_match(if_none_match, etag) {
        return not_modified(etag);
    }
    let mut response = Response::new(Body::full(bytes));
    set_validators(&mut response, etag);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn file_response(file: &super::catalog::File, range: RangeAnswer, head: bool) -> Response<Body> {
    let (start, end, status) = match range {
        RangeAnswer::Whole => (0, file.size.saturating_sub(1), StatusCode::OK),
        RangeAnswer::Part { start, end } => (start, end, StatusCode::PARTIAL_CONTENT),
        RangeAnswer::Unsatisfiable => {
            let mut response = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", file.size)) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let length = if file.size == 0 { 0 } else { end - start + 1 };
    let body = match &file.body {
        FileBody::Memory(bytes) => Body::full(bytes.slice(start as usize..(start + length) as usize)),
        FileBody::Disk { .. } if head => Body::Sized(length),
        FileBody::Disk { path, stamp } => match open_unchanged(path, *stamp, start).await {
            Ok(opened) => {
                // A whole file is hashed as it goes out: bytes that differ end the connection
                // before the last one is sent.
                let check = (status == StatusCode::OK).then(|| (Sha256::new(), file.sha256.clone()));
                Body::File(Box::new(Stream { file: opened, remaining: length, check, buffer: vec![0; 64 << 10] }))
            }
            Err(error) => {
                log_event(
                    serde_json::json!({"event": "file-changed", "path": path.display().to_string(), "error": error.to_string()}),
                );
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "the file changed on disk since it was verified\n");
            }
        },
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    set_validators(&mut response, &file.etag);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", file.size)) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    response
}

async fn open_unchanged(path: &std::path::Path, stamp: Stamp, start: u64) -> io::Result<tokio::fs::File> {
    let mut file = tokio::fs::File::open(path).await?;
    if Stamp::of(&file.metadata().await?) != stamp {
        return Err(io::Error::other("size, time or inode differ from when it was verified"));
    }
    file.seek(io::SeekFrom::Start(start)).await?;
    Ok(file)
}

/// A response body: in memory, streamed from a file, or none.
pub enum Body {
    Full(Option<Bytes>, u64),
    File(Box<Stream>),
    /// No bytes are sent, but a length is declared (a HEAD of a file on disk).
    Sized(u64),
    Empty,
}

impl Body {
    fn full(bytes: Bytes) -> Body {
        let length = bytes.len() as u64;
        Body::Full(Some(bytes), length)
    }

    fn length(&self) -> u64 {
        match self {
            Body::Full(_, length) | Body::Sized(length) => *length,
            Body::File(stream) => stream.remaining,
            Body::Empty => 0,
        }
    }
}

pub struct Stream {
    file: tokio::fs::File,
    remaining: u64,
    check: Option<(Sha256, String)>,
    buffer: Vec<u8>,
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Full(bytes, _) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Body::Sized(_) | Body::Empty => Poll::Ready(None),
            Body::File(stream) => {
                let stream = stream.as_mut();
                if stream.remaining == 0 {
                    return Poll::Ready(None);
                }
                let want = stream.buffer.len().min(usize::try_from(stream.remaining).unwrap_or(usize::MAX));
                let mut read = ReadBuf::new(&mut stream.buffer[..want]);
                match Pin::new(&mut stream.file).poll_read(cx, &mut read) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(error)) => Poll::Ready(Some(Err(error))),
                    Poll::Ready(Ok(())) => {
                        let filled = read.filled();
                        if filled.is_empty() {
                            return Poll::Ready(Some(Err(io::Error::other(
                                "the file is shorter than when it was verified",
                            ))));
                        }
                        stream.remaining -= filled.len() as u64;
                        if let Some((hasher, _)) = &mut stream.check {
                            hasher.update(filled);
                        }
                        let chunk = Bytes::copy_from_slice(filled);
                        if stream.remaining == 0 {
                            if let Some((hasher, expected)) = stream.check.take() {
                                let actual = format!("{:x}", hasher.finalize());
                                if actual != expected {
                                    log_event(
                                        serde_json::json!({"event": "file-changed", "expected": expected, "actual": actual}),
                                    );
                                    return Poll::Ready(Some(Err(io::Error::other(
                                        "sha256 differs from the manifest's",
                                    ))));
                                }
                            }
                        }
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(bytes, _) => bytes.is_none(),
            Body::File(stream) => stream.remaining == 0,
            Body::Sized(_) | Body::Empty => true,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Body::Full(_, length) => http_body::SizeHint::with_exact(*length),
            Body::File(stream) => http_body::SizeHint::with_exact(stream.remaining),
            Body::Sized(_) | Body::Empty => http_body::SizeHint::with_exact(0),
        }
    }
}
