//! The native downloader: one file per call, streamed to disk while it is hashed, with what pip
//! would use for the index it talks to: the credentials of the URL, of its index or of `.netrc`;
//! the proxies of `--proxy` or `HTTP(S)_PROXY`/`NO_PROXY`; the CA bundle of `REQUESTS_CA_BUNDLE`,
//! `CURL_CA_BUNDLE` or `--cert` (added to the system's roots); the client certificate; and
//! `trusted-host`. Keyring authentication is pip's alone: a file the index refuses is
//! [`FetchError::AuthRequired`], and the caller hands it to pip.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use sha2::{Digest, Sha256};

use crate::{
    model::{
        digest::hex,
        http_auth::{credentials_for, is_trusted_host, url_parts, without_userinfo},
        redact::redact_text,
        resolution::percent_decode,
    },
    tools::pip::HttpOptions,
};

/// No wheel is this large; a server that sends more is not serving a wheel.
const MAX_FILE_BYTES: u64 = 16 << 30;
const CHUNK: usize = 256 * 1024;
/// pip's defaults (`--timeout`, `--retries`).
const DEFAULT_TIMEOUT_SECONDS: f64 = 15.0;
const DEFAULT_RETRIES: u32 = 5;
/// The statuses pip retries (its `status_forcelist`), and 504.
const RETRIED_STATUSES: [u16; 6] = [500, 502, 503, 504, 520, 527];

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The index wants credentials this downloader does not have (keyring), or refused them.
    #[error("the index answered {status}: it wants credentials this downloader does not have")]
    AuthRequired { status: u16 },
    #[error("sha256 mismatch: expected {expected}, got {actual}")]
    HashMismatch { expected: String, actual: String },
    #[error("the server answered {status}")]
    Status { status: u16 },
    #[error("{0}")]
    Transport(String),
    #[error("the transfer ended after {got} of the {expected} bytes announced")]
    Truncated { got: u64, expected: u64 },
    #[error("the server sent more than {0} bytes")]
    TooLarge(u64),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The caller no longer wants the file (another part of the run failed).
    #[error("cancelled")]
    Cancelled,
}

impl FetchError {
    fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status } => RETRIED_STATUSES.contains(status),
            FetchError::Transport(_) | FetchError::Truncated { .. } => true,
            _ => false,
        }
    }
}

/// A file fetched: its size and sha256 as the bytes arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub size: u64,
    pub sha256: String,
}

/// Told as a transfer goes: its length once the server announces it, then each chunk's size.
pub trait Progress: Sync {
    fn length(&self, bytes: u64);
    fn advance(&self, bytes: u64);
    /// Checked between chunks: `true` stops the transfer with [`FetchError::Cancelled`].
    fn cancelled(&self) -> bool {
        false
    }
}

pub struct Downloader {
    client: reqwest::blocking::Client,
    /// For `trusted-host`s: certificates not checked, as pip does for them.
    unverified: Option<reqwest::blocking::Client>,
    index_urls: Vec<String>,
    netrc: Option<String>,
    trusted_hosts: Vec<String>,
    retries: u32,
}

impl Downloader {
    /// A downloader with pip's effective options (see `Python::http_options`) and the process's
    /// environment (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`, proxies, `NETRC`, `HOME`).
    pub fn new(options: &HttpOptions, connections: usize) -> anyhow::Result<Downloader> {
        // One process-wide TLS provider; a second install is refused and changes nothing.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = Duration::from_secs_f64(options.timeout.unwrap_or(DEFAULT_TIMEOUT_SECONDS).max(1.0));
        let ca_bundle = ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]
            .into_iter()
            .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
            .or_else(|| options.cert.clone());
        let mut certificates = Vec::new();
        if let Some(path) = &ca_bundle {
            let pem = fs_err::read(path)?;
            certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|error| anyhow::anyhow!("cannot read the CA bundle {path}: {error}"))?;
        }
        let identity = match &options.client_cert {
            Some(path) => Some(
                reqwest::Identity::from_pem(&fs_err::read(path)?)
                    .map_err(|error| anyhow::anyhow!("cannot read the client certificate {path}: {error}"))?,
            ),
            None => None,
        };
        let build = |verify: bool| -> anyhow::Result<reqwest::blocking::Client> {
            let mut builder = reqwest::blocking::Client::builder()
                .user_agent(concat!("wheelgap/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(timeout)
                // The blocking client applies this to the wait for the headers and to each read
                // of the body, not to the whole transfer: a large wheel on a slow link is fine,
                // a stalled one is an error, as with pip's socket timeout.
                .timeout(timeout)
                .pool_max_idle_per_host(connections.max(1))
                .tls_certs_merge(certificates.clone());
            if let Some(identity) = &identity {
                builder = builder.identity(identity.clone());
            }
            if let Some(proxy) = &options.proxy {
                builder = builder.proxy(reqwest::Proxy::all(proxy.as_str())?);
            }
            if !verify {
                builder = builder.tls_danger_accept_invalid_certs(true);
            }
            Ok(builder.build()?)
        };
        Ok(Downloader {
            client: build(true)?,
            unverified: if options.trusted_hosts.is_empty() { None } else { Some(build(false)?) },
            index_urls: options.index_urls(),
            netrc: read_netrc(),
            trusted_hosts: options.trusted_hosts.clone(),
            retries: options.retries.unwrap_or(DEFAULT_RETRIES),
        })
    }

    /// Fetches `url` into `destination` (created or truncated), retrying what pip retries, and
    /// checks the sha256 when one is expected. On an error, `destination` may hold part of the file.
    pub fn fetch(
        &self,
        url: &str,
        destination: &Path,
        expected_sha256: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<Fetched, FetchError> {
        let mut attempt = 0;
        loop {
            if progress.cancelled() {
                return Err(FetchError::Cancelled);
            }
            match self.fetch_once(url, destination, progress) {
                Err(error) if error.is_transient() && attempt < self.retries && !progress.cancelled() => {
                    // pip's backoff: 0.25 s, doubling.
                    std::thread::sleep(Duration::from_millis(250 << attempt.min(6)));
                    attempt += 1;
                }
                Err(error) => return Err(error),
                Ok(fetched) => {
                    if let Some(expected) = expected_sha256 {
                        if !expected.eq_ignore_ascii_case(&fetched.sha256) {
                            return Err(FetchError::HashMismatch {
                                expected: expected.to_owned(),
                                actual: fetched.sha256,
                            });
                        }
                    }
                    return Ok(fetched);
                }
            }
        }
    }

    fn fetch_once(&self, url: &str, destination: &Path, progress: &dyn Progress) -> Result<Fetched, FetchError> {
        if let Some(path) = file_url_path(url) {
            let file = fs_err::File::open(&path)?;
            let length = file.metadata()?.len();
            progress.length(length);
            return stream(file, destination, Some(length), progress);
        }
        let bare = without_userinfo(url);
        let client = match &self.unverified {
            Some(unverified) if is_trusted_host(url, &self.trusted_hosts) => unverified,
            _ => &self.client,
        };
        let mut request = client.get(&bare).header(reqwest::header::ACCEPT_ENCODING, "identity");
        if let Some(credentials) = credentials_for(url, &self.index_urls, self.netrc.as_deref()) {
            request = request.basic_auth(credentials.username, Some(credentials.password));
        }
        let response = request.send().map_err(|error| FetchError::Transport(describe(&error)))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(FetchError::AuthRequired { status });
        }
        if !response.status().is_success() {
            return Err(FetchError::Status { status });
        }
        let length = response.content_length();
        if let Some(length) = length {
            progress.length(length);
        }
        stream(response, destination, length, progress)
    }
}

/// Copies `source` to `destination`, hashing as it goes, within [`MAX_FILE_BYTES`] and the
/// announced length.
fn stream(
    mut source: impl Read,
    destination: &Path,
    length: Option<u64>,
    progress: &dyn Progress,
) -> Result<Fetched, FetchError> {
    let mut file = std::io::BufWriter::with_capacity(CHUNK, fs_err::File::create(destination)?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; CHUNK];
    let limit = length.unwrap_or(MAX_FILE_BYTES).min(MAX_FILE_BYTES);
    let mut size = 0u64;
    loop {
        let read = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(FetchError::Transport(error.to_string())),
        };
        size += read as u64;
        if size > limit {
            return Err(FetchError::TooLarge(limit));
        }
        hasher.update(&buffer[..read]);
        file.write_all(&buffer[..read])?;
        progress.advance(read as u64);
        if progress.cancelled() {
            return Err(FetchError::Cancelled);
        }
    }
    if let Some(expected) = length.filter(|expected| *expected != size) {
        return Err(FetchError::Truncated { got: size, expected });
    }
    // Flushed, not synced: the swap syncs every staged file once, before it publishes them.
    file.into_inner().map_err(|error| error.into_error())?;
    Ok(Fetched { size, sha256: hex(&hasher.finalize()) })
}

/// The local path of a `file://` URL, percent-decoded.
fn file_url_path(url: &str) -> Option<PathBuf> {
    let parts = url_parts(url).filter(|parts| parts.scheme.eq_ignore_ascii_case("file"))?;
    let path = parts.path.split(['#', '?']).next().unwrap_or_default();
    Some(PathBuf::from(percent_decode(path)))
}

/// The text of `~/.netrc` (or `$NETRC`), which pip's requests reads for a host's credentials.
fn read_netrc() -> Option<String> {
    let path = match std::env::var_os("NETRC") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".netrc"),
    };
    std::fs::read_to_string(path).ok()
}

/// A transport error with its causes, its URL without credentials.
fn describe(error: &reqwest::Error) -> String {
    let mut text = redact_text(&error.to_string());
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_become_paths() {
        assert_eq!(file_url_path("file:///srv/wheels/a%20b.whl#sha256=00"), Some(PathBuf::from("/srv/wheels/a b.whl")));
        assert_eq!(file_url_path("https://host/a.whl"), None);
    }
}
