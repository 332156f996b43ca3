//! What `serve` answers, decided without a socket: the route of a request path, the page format
//! an `Accept` header asks for (PEP 691), a `Range` header against a length, `If-None-Match`
//! against an entity tag, and the Prometheus text of the counters. The server applies them.

use std::collections::BTreeMap;

use crate::model::wheel_name::normalize;

/// The longest request path that is routed; a longer one is a 404 without being looked at.
pub const MAX_PATH: usize = 1024;

/// PEP 691's JSON and HTML content types of version 1.
pub const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";
pub const HTML_TYPE: &str = "application/vnd.pypi.simple.v1+html";

/// The wheelhouse's own files served at the root: the manifest and its signatures.
pub const MANIFEST_FILES: [&str; 3] = ["manifest.json", "manifest.json.asc", "manifest.json.sshsig"];

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/simple/`: the list of projects.
    Root,
    /// `/simple/<normalized name>/`.
    Project(String),
    /// A path that names a page by another spelling (`/simple`, `/simple/Flask/`, no trailing
    /// slash): the canonical path to redirect to.
    Redirect(String),
    /// `/files/<filename>`: a file of the manifest (the caller checks that it is one).
    File(String),
    /// `/files/<filename>.metadata`: a wheel's METADATA (PEP 658).
    Metadata(String),
    /// `/manifest.json` and its signatures at the root: what a client checks the index against
    /// (`build-offline --from-index` keys the image's layer cache on the manifest's sha256).
    Manifest(&'static str),
    Healthz,
    Metrics,
    NotFound,
}

impl Route {
    /// The label of the route's kind in the metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Route::Root | Route::Project(_) | Route::Redirect(_) => "page",
            Route::File(_) => "file",
            Route::Metadata(_) => "metadata",
            Route::Manifest(_) => "manifest",
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::NotFound => "other",
        }
    }
}

/// The route of a request path (without its query). Percent-escapes are decoded in file names;
/// a name that decodes to a path separator, `..` or a control character routes nowhere.
pub fn route(path: &str) -> Route {
    if path.len() > MAX_PATH {
        return Route::NotFound;
    }
    match path {
        "/healthz" => return Route::Healthz,
        "/metrics" => return Route::Metrics,
        "/" | "/simple" => return Route::Redirect("/simple/".to_owned()),
        "/simple/" => return Route::Root,
        _ => {}
    }
    if let Some(name) = MANIFEST_FILES.iter().find(|name| path.strip_prefix('/') == Some(**name)) {
        return Route::Manifest(name);
    }
    if let Some(rest) = path.strip_prefix("/simple/") {
        let (name, slash) = match rest.strip_suffix('/') {
            Some(name) => (name, true),
            None => (rest, false),
        };
        let Some(name) = percent_decode(name).filter(|name| is_project_name(name)) else {
            return Route::NotFound;
        };
        let normalized = normalize(&name);
        return if slash && normalized == name {
            Route::Project(normalized)
        } else {
            Route::Redirect(format!("/simple/{normalized}/"))
        };
    }
    if let Some(rest) = path.strip_prefix("/files/") {
        let Some(name) = percent_decode(rest).filter(|name| is_file_name(name)) else {
            return Route::NotFound;
        };
        return match name.strip_suffix(".metadata") {
            Some(wheel) if wheel.ends_with(".whl") => Route::Metadata(wheel.to_owned()),
            _ => Route::File(name),
        };
    }
    Route::NotFound
}

/// A project name as PEP 508 allows: ASCII letters and digits, with `-`, `_` and `.` inside.
fn is_project_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 200
        && bytes.iter().all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(byte))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && name.chars().all(|character| !character.is_control() && character != '/' && character != '\\')
}

/// `%XX` escapes decoded; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The forms of a page: PEP 691's JSON and HTML, and HTML as `text/html` for a client that asked
/// for that (pip before 22.2 refuses a page of any other type), or asked for nothing in particular.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFormat {
    Html,
    TextHtml,
    Json,
}

impl PageFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            PageFormat::Html => HTML_TYPE,
            PageFormat::TextHtml => "text/html; charset=utf-8",
            PageFormat::Json => JSON_TYPE,
        }
    }

    pub fn is_json(self) -> bool {
        self == PageFormat::Json
    }
}

/// The format an `Accept` header asks for, by PEP 691: the acceptable type of the highest
/// quality, the earlier on a tie; no header is HTML; `None` when nothing offered is acceptable
/// (a 406).
pub fn negotiate(accept: Option<&str>) -> Option<PageFormat> {
    let Some(accept) = accept.filter(|accept| !accept.trim().is_empty()) else {
        return Some(PageFormat::TextHtml);
    };
    let mut best: Option<(u16, PageFormat)> = None;
    for item in accept.split(',').take(64) {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut quality = 1000u16;
        for parameter in parts {
            if let Some(value) = parameter.trim().strip_prefix("q=") {
                quality = parse_quality(value.trim()).unwrap_or(0);
            }
        }
        let format = match media.as_str() {
            "application/vnd.pypi.simple.v1+json" | "application/vnd.pypi.simple.latest+json" => PageFormat::Json,
            "application/vnd.pypi.simple.v1+html" | "application/vnd.pypi.simple.latest+html" => PageFormat::Html,
            "text/html" | "text/*" | "*/*" => PageFormat::TextHtml,
            _ => continue,
        };
        if quality > 0 && best.is_none_or(|(best_quality, _)| quality > best_quality) {
            best = Some((quality, format));
        }
    }
    best.map(|(_, format)| format)
}

/// A quality value as thousandths: `0.8` is 800; `None` if malformed.
fn parse_quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    let quality = whole * 1000 + thousandths;
    (quality <= 1000).then_some(quality)
}

/// What a `Range` header makes of a response of `length` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole body (no header, another unit, several ranges or a malformed one: all allowed
    /// to be ignored by RFC 9110).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A 416: no byte of the range exists.
    Unsatisfiable,
}

/// One `bytes=` range of RFC 9110: `a-b`, `a-` or `-n`.
pub fn range(header: Option<&str>, length: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|header| header.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeAnswer::Whole };
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.len() <= 19 && text.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            Some(0) => RangeAnswer::Unsatisfiable,
            // RFC 9110 14.1.2: of an empty representation, a suffix range is the whole of it.
            Some(_) if length == 0 => RangeAnswer::Whole,
            Some(suffix) => RangeAnswer::Part { start: length.saturating_sub(suffix), end: length - 1 },
            None => RangeAnswer::Whole,
        },
        (start, end) => {
            let Some(start) = number(start) else { return RangeAnswer::Whole };
            let end = match end {
                "" => None,
                end => match number(end) {
                    Some(end) if end >= start => Some(end),
                    _ => return RangeAnswer::Whole,
                },
            };
            if start >= length {
                return RangeAnswer::Unsatisfiable;
            }
            RangeAnswer::Part { start, end: end.map_or(length - 1, |end| end.min(length - 1)) }
        }
    }
}

/// Whether a `Range` applies under `If-Range` (RFC 9110 13.1.5): with no `If-Range`, or one that
/// is `etag` itself (a strong comparison). A date, or another tag, gets the whole representation,
/// so that a resumed download never splices bytes of two versions.
pub fn range_applies(if_range: Option<&str>, etag: &str) -> bool {
    if_range.is_none_or(|value| value.trim() == etag)
}

/// Whether `If-None-Match` names `etag` (weak comparison, `*` included).
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    let Some(header) = header else { return false };
    header.split(',').take(64).map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// The counters `serve` keeps, by route kind and status code.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// (kind, status) -> (requests, body bytes sent).
    pub responses: BTreeMap<(&'static str, u16), (u64, u64)>,
    pub files: usize,
    pub file_bytes: u64,
    pub open_connections: u64,
}

impl Counters {
    pub fn record(&mut self, kind: &'static str, status: u16, bytes: u64) {
        let counts = self.responses.entry((kind, status)).or_default();
        counts.0 += 1;
        counts.1 += bytes;
    }

    /// The Prometheus text exposition of the counters.
    pub fn prometheus(&self) -> String {
        let mut text = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                text.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        let by = |pick: fn(&(u64, u64)) -> u64| -> Vec<(String, u64)> {
            self.responses
                .iter()
                .map(|((kind, code), counts)| (format!("{{kind=\"{kind}\",code=\"{code}\"}}"), pick(counts)))
                .collect()
        };
        family(
            "wheelgap_serve_requests_total",
            "counter",
            "Requests answered, by route kind and status code.",
            by(|c| c.0),
        );
        family(
            "wheelgap_serve_response_bytes_total",
            "counter",
            "Body bytes sent, by route kind and status code.",
            by(|c| c.1),
        );
        let mut errors: BTreeMap<u16, u64> = BTreeMap::new();
        for ((_, code), (count, _)) in &self.responses {
            if *code >= 400 {
                *errors.entry(*code).or_default() += count;
            }
        }
        family(
            "wheelgap_serve_errors_total",
            "counter",
            "Requests answered with a 4xx or 5xx status, by code.",
            errors.into_iter().map(|(code, count)| (format!("{{code=\"{code}\"}}"), count)).collect(),
        );
        family(
            "wheelgap_serve_open_connections",
            "gauge",
            "Connections open now.",
            vec![(String::new(), self.open_connections)],
        );
        family(
            "wheelgap_serve_files",
            "gauge",
            "Files of the manifest served.",
            vec![(String::new(), self.files as u64)],
        );
        family(
            "wheelgap_serve_file_bytes",
            "gauge",
            "Bytes of the files served.",
            vec![(String::new(), self.file_bytes)],
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_pages_files_and_redirects() {
        assert_eq!(route("/simple/"), Route::Root);
        assert_eq!(route("/simple"), Route::Redirect("/simple/".into()));
        assert_eq!(route("/simple/flask/"), Route::Project("flask".into()));
        assert_eq!(route("/simple/Zope.Interface/"), Route::Redirect("/simple/zope-interface/".into()));
        assert_eq!(route("/simple/flask"), Route::Redirect("/simple/flask/".into()));
        assert_eq!(route("/files/a-1.0-py3-none-any.whl"), Route::File("a-1.0-py3-none-any.whl".into()));
        assert_eq!(route("/files/a-1.0-py3-none-any.whl.metadata"), Route::Metadata("a-1.0-py3-none-any.whl".into()));
        assert_eq!(route("/files/a-1.0%2B1-py3-none-any.whl"), Route::File("a-1.0+1-py3-none-any.whl".into()));
        assert_eq!(route("/files/a-1.0.tar.gz.metadata"), Route::File("a-1.0.tar.gz.metadata".into()));
        assert_eq!(route("/manifest.json"), Route::Manifest("manifest.json"));
        assert_eq!(route("/manifest.json.asc"), Route::Manifest("manifest.json.asc"));
        assert_eq!(route("/SHA256SUMS"), Route::NotFound);
        for hostile in [
            "/files/..",
            "/files/%2e%2e",
            "/files/a%2Fb",
            "/files/a%00",
            "/files/%zz",
            "/files/",
            "/simple/../x/",
            "/etc/passwd",
            "/simple/a%0a/",
        ] {
            assert_eq!(route(hostile), Route::NotFound, "{hostile}");
        }
        assert_eq!(route(&format!("/files/{}", "a".repeat(2000))), Route::NotFound);
    }

    #[test]
    fn accept_picks_the_highest_quality_and_refuses_what_is_not_offered() {
        assert_eq!(negotiate(None), Some(PageFormat::TextHtml));
        assert_eq!(negotiate(Some("text/html")), Some(PageFormat::TextHtml));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+html")), Some(PageFormat::Html));
        assert_eq!(negotiate(Some(JSON_TYPE)), Some(PageFormat::Json));
        // pip's own header.
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        assert_eq!(negotiate(Some(pip)), Some(PageFormat::Json));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json;q=0.2, text/html")), Some(PageFormat::TextHtml));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.latest+json")), Some(PageFormat::Json));
        assert_eq!(negotiate(Some("application/xml")), None);
        assert_eq!(negotiate(Some("text/html;q=0")), None);
        assert_eq!(negotiate(Some("*/*")), Some(PageFormat::TextHtml));
        assert_eq!(parse_quality("0.125"), Some(125));
        assert_eq!(parse_quality("1.5"), None);
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(range(None, 10), RangeAnswer::Whole);
        assert_eq!(range(Some("bytes=0-3"), 10), RangeAnswer::Part { start: 0, end: 3 });
        assert_eq!(range(Some("bytes=5-"), 10), RangeAnswer::Part { start: 5, end: 9 });
        assert_eq!(range(Some("bytes=-4"), 10), RangeAnswer::Part { start: 6, end: 9 });
        assert_eq!(range(Some("bytes=-40"), 10), RangeAnswer::Part { start: 0, end: 9 });
        assert_eq!(range(Some("bytes=8-100"), 10), RangeAnswer::Part { start: 8, end: 9 });
        assert_eq!(range(Some("bytes=10-"), 10), RangeAnswer::Unsatisfiable);
        assert_eq!(range(Some("bytes=-0"), 10), RangeAnswer::Unsatisfiable);
        assert_eq!(range(Some("bytes=0-1,3-4"), 10), RangeAnswer::Whole);
        assert_eq!(range(Some("bytes=4-2"), 10), RangeAnswer::Whole);
        assert_eq!(range(Some("items=0-1"), 10), RangeAnswer::Whole);
        assert_eq!(range(Some("bytes=99999999999999999999-"), 10), RangeAnswer::Whole);
        assert_eq!(range(Some("bytes=-5"), 0), RangeAnswer::Whole);
        assert!(range_applies(None, "\"a\"") && range_applies(Some("\"a\""), "\"a\""));
        assert!(!range_applies(Some("\"b\""), "\"a\"") && !range_applies(Some("W/\"a\""), "\"a\""));
        assert!(!range_applies(Some("Tue, 01 Dec 2026 10:00:00 GMT"), "\"a\""));
    }

    #[test]
    fn entity_tags_match_weakly_and_by_star() {
        assert!(none_match(Some("\"abc\""), "\"abc\""));
        assert!(none_match(Some("\"x\", W/\"abc\""), "\"abc\""));
        assert!(none_match(Some("*"), "\"abc\""));
        assert!(!none_match(Some("\"abd\""), "\"abc\""));
        assert!(!none_match(None, "\"abc\""));
    }

    #[test]
    fn metrics_count_errors_by_code() {
        let mut counters = Counters::default();
        counters.record("file", 200, 10);
        counters.record("file", 200, 5);
        counters.record("other", 404, 9);
        let text = counters.prometheus();
        assert!(text.contains("wheelgap_serve_requests_total{kind=\"file\",code=\"200\"} 2\n"), "{text}");
        assert!(text.contains("wheelgap_serve_response_bytes_total{kind=\"file\",code=\"200\"} 15\n"), "{text}");
        assert!(text.contains("wheelgap_serve_errors_total{code=\"404\"} 1\n"), "{text}");
    }
}
