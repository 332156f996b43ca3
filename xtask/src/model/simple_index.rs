//! A static simple repository of the wheelhouse (PEP 503 HTML and PEP 691 JSON pages), each file
//! with its sha256, `Requires-Python` and the sha256 of its METADATA (PEP 658/714), so that pip
//! and uv resolve from the metadata files without downloading a wheel. Text in, text out: the
//! caller reads the METADATA of each wheel and writes the pages.
//!
//! The tree, relative to its root: `simple/index.html` and `simple/index.json`, then
//! `simple/<project>/index.html` and `simple/<project>/index.json` per project, linking to
//! `files/<filename>` and its `files/<filename>.metadata` ([`Layout::Tree`]), or, inside a
//! wheelhouse, to `<filename>` and `<filename>.metadata` beside the pages' `simple/`
//! ([`Layout::Wheelhouse`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{digest::sha256_hex, manifest::Manifest, wheel_name::normalize};

/// What a page says of one file beyond the manifest: its METADATA's sha256 and `Requires-Python`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMetadata {
    pub metadata_sha256: String,
    pub requires_python: Option<String>,
}

impl FileMetadata {
    /// From the bytes of a wheel's `.dist-info/METADATA`.
    pub fn of(metadata: &[u8]) -> FileMetadata {
        FileMetadata { metadata_sha256: sha256_hex(metadata), requires_python: requires_python(metadata) }
    }
}

/// The `Requires-Python` header of a METADATA file (the headers end at the first empty line).
fn requires_python(metadata: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(metadata);
    text.lines()
        .take_while(|line| !line.trim().is_empty())
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case("Requires-Python").then(|| value.trim().to_owned())
        })
        .filter(|value| !value.is_empty())
}

/// Where the files are, relative to the index's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Under `files/`, the `.metadata` beside them: `index --output DIR` and `serve`.
    Tree,
    /// The wheelhouse itself is the root: the files where they are, each wheel's `.metadata`
    /// beside it, the pages under `simple/` ([`INDEX_DIR`]): what `index` writes by default, and
    /// what pack carries.
    Wheelhouse,
}

/// The directory of the pages, in a wheelhouse and in a tree.
pub use crate::model::manifest::INDEX_DIR;

/// The longest project name a page of a wheelhouse's index may have in an archive.
const MAX_PROJECT: usize = 100;

/// Whether `path` (relative to a wheelhouse, `/`-separated) is a file of its index: a page
/// (`simple/index.html`, `simple/<project>/index.json`, ...; the project a normalized name) or
/// the `.metadata` of a wheel. Names only: an archive's entries are checked by this before
/// anything is written, so it never admits `..`, an absolute path or anything deeper.
pub fn is_index_file(path: &str) -> bool {
    let page = |name: &str| name == "index.html" || name == "index.json";
    match path.split('/').collect::<Vec<_>>()[..] {
        [INDEX_DIR, name] => page(name),
        [INDEX_DIR, project, name] => is_normalized_project(project) && page(name),
        [file] => {
            file.strip_suffix(".metadata").is_some_and(|wheel| wheel.ends_with(".whl") && !wheel.starts_with('.'))
        }
        _ => false,
    }
}

/// The directories of a wheelhouse's index: `simple` and `simple/<project>`.
pub fn is_index_dir(path: &str) -> bool {
    match path.split('/').collect::<Vec<_>>()[..] {
        [INDEX_DIR] => true,
        [INDEX_DIR, project] => is_normalized_project(project),
        _ => false,
    }
}

fn is_normalized_project(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PROJECT
        && name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Every page of the index, by its path relative to the root (`simple/index.html`, ...). The
/// same manifest and metadata give the same bytes. `metadata` has an entry for every file.
pub fn pages(
    manifest: &Manifest,
    metadata: &BTreeMap<String, FileMetadata>,
    layout: Layout,
) -> BTreeMap<String, String> {
    let files_prefix = match layout {
        Layout::Tree => "../../files/",
        Layout::Wheelhouse => "../../",
    };
    let mut projects: BTreeMap<String, Vec<&crate::model::manifest::FileEntry>> = BTreeMap::new();
    for entry in &manifest.files {
        projects.entry(normalize(&entry.name)).or_default().push(entry);
    }
    let mut pages = BTreeMap::new();
    let mut root_html = String::from(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.1\">\n<title>Simple index</title>\n</head>\n<body>\n",
    );
    for name in projects.keys() {
        root_html.push_str(&format!("<a href=\"{}/\">{}</a><br>\n", escape(name), escape(name)));
    }
    root_html.push_str("</body>\n</html>\n");
    pages.insert("simple/index.html".to_owned(), root_html);
    let root_json = RootJson {
        meta: Meta { api_version: "1.1" },
        projects: projects.keys().map(|name| ProjectName { name: name.clone() }).collect(),
    };
    pages.insert("simple/index.json".to_owned(), to_json(&root_json));

    for (name, mut entries) in projects {
        entries.sort_by(|left, right| left.filename.cmp(&right.filename));
        let mut html = format!(
            "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.1\">\n<title>Links for {}</title>\n</head>\n<body>\n<h1>Links for {}</h1>\n",
            escape(&name),
            escape(&name)
        );
        let mut files = Vec::new();
        for entry in &entries {
            let href = format!("{files_prefix}{}", percent_encode(&entry.filename));
            let info = metadata.get(&entry.filename);
            let mut attributes = String::new();
            if let Some(requires) = info.and_then(|info| info.requires_python.as_deref()) {
                attributes.push_str(&format!(" data-requires-python=\"{}\"", escape(requires)));
            }
            if let Some(info) = info {
                let value = format!("sha256={}", info.metadata_sha256);
                attributes.push_str(&format!(" data-dist-info-metadata=\"{value}\" data-core-metadata=\"{value}\""));
            }
            html.push_str(&format!(
                "<a href=\"{}#sha256={}\"{attributes}>{}</a><br>\n",
                escape(&href),
                entry.sha256,
                escape(&entry.filename)
            ));
            // JSON has `core-metadata` only (PEP 714): pip 22.3 to 23.1 read the older
            // `dist-info-metadata` key of JSON pages wrongly and fail on its table. In HTML both
            // attributes are plain strings, which every pip reads.
            let core_metadata = info.map(|info| Hashes { sha256: info.metadata_sha256.clone() });
            files.push(FileJson {
                filename: entry.filename.clone(),
                url: href,
                hashes: Hashes { sha256: entry.sha256.clone() },
                requires_python: info.and_then(|info| info.requires_python.clone()),
                core_metadata,
                size: entry.size,
            });
        }
        html.push_str("</body>\n</html>\n");
        let mut versions: Vec<String> = entries.iter().map(|entry| entry.version.clone()).collect();
        versions.dedup();
        versions.sort();
        versions.dedup();
        let project = ProjectJson { meta: Meta { api_version: "1.1" }, name: name.clone(), versions, files };
        pages.insert(format!("simple/{name}/index.html"), html);
        pages.insert(format!("simple/{name}/index.json"), to_json(&project));
    }
    pages
}

#[derive(Serialize)]
struct Meta {
    #[serde(rename = "api-version")]
    api_version: &'static str,
}

#[derive(Serialize)]
struct RootJson {
    meta: Meta,
    projects: Vec<ProjectName>,
}

#[derive(Serialize)]
struct ProjectName {
    name: String,
}

#[derive(Serialize)]
struct ProjectJson {
    meta: Meta,
    name: String,
    versions: Vec<String>,
    files: Vec<FileJson>,
}

#[derive(Serialize)]
struct Hashes {
    sha256: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct FileJson {
    filename: String,
    url: String,
    hashes: Hashes,
    #[serde(skip_serializing_if = "Option::is_none")]
    requires_python: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    core_metadata: Option<Hashes>,
    size: u64,
}

fn to_json(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A file name as a URL path segment: what a wheel or sdist name may hold beyond these is encoded.
fn percent_encode(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~+!".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_python_comes_from_the_headers_only() {
        let metadata = b"Metadata-Version: 2.1\nName: a\nRequires-Python: >=3.9, <4\n\nRequires-Python: no\n";
        assert_eq!(FileMetadata::of(metadata).requires_python.as_deref(), Some(">=3.9, <4"));
        assert_eq!(FileMetadata::of(b"Name: a\n\nRequires-Python: >=3\n").requires_python, None);
        assert_eq!(FileMetadata::of(b"x").metadata_sha256, sha256_hex(b"x"));
    }

    #[test]
    fn index_files_of_a_wheelhouse_are_a_closed_list_of_names() {
        for good in [
            "simple/index.html",
            "simple/index.json",
            "simple/zope-interface/index.json",
            "a-1.0-py3-none-any.whl.metadata",
        ] {
            assert!(is_index_file(good), "{good}");
        }
        for bad in [
            "simple/../x/index.html",
            "simple/Flask/index.html",
            "simple/a/b/index.html",
            "simple/a/run.sh",
            "simple/-a/index.html",
            "/simple/index.html",
            "simple//index.html",
            "a.tar.gz.metadata",
            ".whl.metadata",
            "x/a-1.0-py3-none-any.whl.metadata",
            "simple",
        ] {
            assert!(!is_index_file(bad), "{bad}");
        }
        assert!(
            is_index_dir("simple")
                && is_index_dir("simple/flask")
                && !is_index_dir("simple/a/b")
                && !is_index_dir("simple/..")
        );
    }

    #[test]
    fn html_attributes_and_urls_are_escaped() {
        assert_eq!(escape("<=3.9\"'&"), "&lt;=3.9&quot;&#x27;&amp;");
        assert_eq!(percent_encode("a b%c-1.0+local.whl"), "a%20b%25c-1.0+local.whl");
    }
}
