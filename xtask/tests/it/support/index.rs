//! A synthetic, fully local Python package index (wheels, sdists and PEP 503 pages) generated in code.
//!
//! The archives themselves come from [`super::archives`], which builds them deterministically, so the
//! same specs always produce the same files, sha256s and pages.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use xtask::model::{digest::sha256_hex, wheel_name::normalize};

use super::archives::{build_sdist, build_wheel, SdistSpec, WheelSpec};

/// What the index knows about one file in `files/`.
#[derive(Clone, Debug)]
struct DistFile {
    project: String,
    sha256: String,
    requires_python: Option<String>,
}

/// A package index on disk: `files/` (flat, for `--find-links`) and `simple/` (PEP 503 pages).
#[derive(Debug)]
pub struct TestIndex {
    root: PathBuf,
    /// Keyed by file name so pages list files in a stable order.
    files: BTreeMap<String, DistFile>,
}

impl TestIndex {
    /// Writes the standard fixture (see the module list in [`standard_wheels`] and
    /// [`standard_sdists`]) under `dir`.
    pub fn build(dir: &Path) -> TestIndex {
        let mut index = TestIndex::empty(dir);
        for spec in standard_wheels() {
            index.write_wheel(&spec);
        }
        for spec in standard_sdists() {
            index.write_sdist(&spec);
        }
        index.write_simple_pages();
        index
    }

    /// An index with no distributions (but valid, empty pages) under `dir`.
    pub fn empty(dir: &Path) -> TestIndex {
        let index = TestIndex { root: dir.to_path_buf(), files: BTreeMap::new() };
        create_dir_all(&index.files_dir());
        index.write_simple_pages();
        index
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Flat directory of every distribution; usable as `--find-links`.
    pub fn files_dir(&self) -> PathBuf {
        self.root.join("files")
    }

    /// The PEP 503 root, also the directory an HTTP server's `/simple/` maps to.
    pub fn simple_dir(&self) -> PathBuf {
        self.root.join("simple")
    }

    /// `file:///abs/dir/simple/`, usable as `--index-url`.
    pub fn file_index_url(&self) -> String {
        file_url(&self.simple_dir())
    }

    /// Absolute path of a distribution in `files/`.
    pub fn path_of(&self, filename: &str) -> PathBuf {
        self.files_dir().join(filename)
    }

    /// Every distribution file name, sorted.
    pub fn filenames(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// Hex sha256 of a distribution; panics for a file the index did not write.
    pub fn sha256_of(&self, filename: &str) -> String {
        match self.files.get(filename) {
            Some(file) => file.sha256.clone(),
            None => panic!("{filename} is not in the test index; it has {:?}", self.filenames()),
        }
    }

    /// Adds (or replaces) a wheel and regenerates the simple pages.
    pub fn add_wheel(&mut self, spec: WheelSpec) {
        self.write_wheel(&spec);
        self.write_simple_pages();
    }

    /// Adds (or replaces) an sdist and regenerates the simple pages.
    pub fn add_sdist(&mut self, spec: SdistSpec) {
        self.write_sdist(&spec);
        self.write_simple_pages();
    }

    fn write_wheel(&mut self, spec: &WheelSpec) {
        let bytes = build_wheel(spec);
        self.record(spec.filename(), &spec.name, spec.requires_python.clone(), &bytes);
    }

    fn write_sdist(&mut self, spec: &SdistSpec) {
        let bytes = build_sdist(spec);
        self.record(spec.filename(), &spec.name, spec.requires_python.clone(), &bytes);
    }

    fn record(&mut self, filename: String, name: &str, requires_python: Option<String>, bytes: &[u8]) {
        write_file(&self.files_dir().join(&filename), bytes);
        let file = DistFile { project: normalize(name), sha256: sha256_hex(bytes), requires_python };
        self.files.insert(filename, file);
    }

    /// Rewrites `simple/` from scratch so removed projects do not linger.
    fn write_simple_pages(&self) {
        let simple = self.simple_dir();
        if simple.exists() {
            if let Err(err) = fs::remove_dir_all(&simple) {
                panic!("removing {}: {err}", simple.display());
            }
        }
        create_dir_all(&simple);

        let mut projects: BTreeMap<&str, Vec<(&str, &DistFile)>> = BTreeMap::new();
        for (filename, file) in &self.files {
            projects.entry(file.project.as_str()).or_default().push((filename.as_str(), file));
        }

        let mut root = html_head("Simple index");
        for project in projects.keys() {
            let _ = writeln!(root, "    <a href=\"{0}/\">{0}</a><br/>", html_escape(project));
        }
        root.push_str(HTML_TAIL);
        write_file(&simple.join("index.html"), root.as_bytes());

        for (project, files) in &projects {
            let mut page = html_head(&format!("Links for {project}"));
            let _ = writeln!(page, "    <h1>Links for {}</h1>", html_escape(project));
            for (filename, file) in files {
                // The page lives at simple/<project>/index.html, so ../../files/ is the dist folder
                // both on disk (file:// index) and under an HTTP server rooted at the index root.
                let href = html_escape(&format!("../../files/{filename}#sha256={}", file.sha256));
                let requires_python = match &file.requires_python {
                    Some(spec) => format!(" data-requires-python=\"{}\"", html_escape(spec)),
                    None => String::new(),
                };
                let _ = writeln!(page, "    <a href=\"{href}\"{requires_python}>{}</a><br/>", html_escape(filename));
            }
            page.push_str(HTML_TAIL);
            let dir = simple.join(project);
            create_dir_all(&dir);
            write_file(&dir.join("index.html"), page.as_bytes());
        }
    }
}

/// Tag of the wheel `nativesdist`'s backend builds.
pub const NATIVE_SDIST_TAG: &str = "cp311-cp311-linux_x86_64";

/// Size of `bigpayload`'s filler: big enough that a stalled transfer is clearly partial.
pub const BIG_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;

/// The wheels [`TestIndex::build`] writes. The product's tests depend on these exact names.
pub fn standard_wheels() -> Vec<WheelSpec> {
    let mut wheels = vec![
        // Markers on machine and Python version, so resolving for another target changes the set.
        WheelSpec::pure("purelib", "1.0")
            .license("MIT OR Apache-2.0")
            .requires("armonly>=1.0; platform_machine == \"aarch64\"")
            .requires("x86helper; platform_machine == \"x86_64\"")
            .requires("oldpy; python_version < \"3.12\"")
            .requires("newpy; python_version >= \"3.12\""),
        WheelSpec::pure("armonly", "1.0"),
        WheelSpec::pure("x86helper", "1.0"),
        WheelSpec::pure("oldpy", "1.0"),
        WheelSpec::pure("newpy", "1.0"),
    ];
    for tag in [
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp312-cp312-manylinux_2_28_x86_64",
        "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64",
        "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64",
        "cp311-cp311-musllinux_1_2_x86_64",
    ] {
        wheels.push(WheelSpec::new("compiled", "2.0", tag));
    }
    // Newer, but only above the default glibc floor (2.28): a correct tool keeps 2.0.
    for tag in ["cp311-cp311-manylinux_2_34_x86_64", "cp312-cp312-manylinux_2_34_x86_64"] {
        wheels.push(WheelSpec::new("compiled", "2.1", tag));
    }
    wheels.extend([
        WheelSpec::pure("withextra", "1.0").extra("fast").requires("speedup>=1; extra == \"fast\""),
        WheelSpec::pure("speedup", "1.0"),
        WheelSpec::new("x86only", "1.0", "py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64"),
        WheelSpec::pure("py312only", "1.0").requires_python(">=3.12"),
        // Stand-ins for the real build tools, so "pip/setuptools/wheel" resolve without the network.
        WheelSpec::pure("pip", "24.0"),
        WheelSpec::pure("setuptools", "70.0"),
        WheelSpec::pure("wheel", "0.43.0"),
        WheelSpec::pure("bigpayload", "1.0").payload(BIG_PAYLOAD_BYTES),
        // Two versions of one package, for two requirements files that pin them apart, and a
        // build tool older than the one the build-tools job resolves, for a file that pins it.
        WheelSpec::pure("packaging", "24.2"),
        WheelSpec::pure("packaging", "25.0"),
        WheelSpec::pure("setuptools", "69.0"),
        // sdist-only packages reached through an extra, a dependency's dependency, and a conflict
        // (both versions of `viaconflict` need `sdistconflict`, so pip backtracks and reports a
        // conflict rather than a missing wheel).
        WheelSpec::pure("extrasdist", "1.0").extra("build").requires("sdistextra==1.0; extra == \"build\""),
        WheelSpec::pure("extranative", "1.0").extra("c").requires("nativesdist==1.0; extra == \"c\""),
        WheelSpec::pure("chaintop", "1.0").requires("chainmid"),
        WheelSpec::pure("chainmid", "1.0").requires("sdistdeep"),
        WheelSpec::pure("viaconflict", "1.0").requires("sdistconflict>=1.0"),
        WheelSpec::pure("viaconflict", "1.1").requires("sdistconflict>=1.0"),
    ]);
    // `pythonpinned` 2.K runs on Python 3.K only, 1.0 on any: a resolver that judges
    // Requires-Python by the host rather than the target falls back to 1.0 off the host's Python.
    wheels.push(WheelSpec::pure("pythonpinned", "1.0"));
    for minor in 8..=15 {
        wheels.push(WheelSpec::pure("pythonpinned", &format!("2.{minor}")).requires_python(&format!("==3.{minor}.*")));
    }
    wheels
}

/// The sdists [`TestIndex::build`] writes.
pub fn standard_sdists() -> Vec<SdistSpec> {
    vec![
        SdistSpec::pure("sdistonly", "1.0"),
        SdistSpec::with_wheel_tag("nativesdist", "1.0", NATIVE_SDIST_TAG),
        SdistSpec::pure("sdistextra", "1.0"),
        SdistSpec::pure("sdistdeep", "1.0"),
        SdistSpec::pure("sdistconflict", "1.0"),
    ]
}

/// `file:///...` URL of a directory, with a trailing slash (pip then reads its `index.html`).
pub fn file_url(dir: &Path) -> String {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(dir),
            Err(err) => panic!("current dir: {err}"),
        }
    };
    let mut url = String::from("file://");
    for byte in absolute.to_string_lossy().bytes() {
        // Keep the path readable; escape only what would break a URL.
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(byte as char);
        } else {
            let _ = write!(url, "%{byte:02X}");
        }
    }
    if !url.ends_with('/') {
        url.push('/');
    }
    url
}

/// Minimal HTML escaping for attribute values and text.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

const HTML_TAIL: &str = "  </body>\n</html>\n";

fn html_head(title: &str) -> String {
    format!("<!DOCTYPE html>\n<html>\n  <head>\n    <title>{}</title>\n  </head>\n  <body>\n", html_escape(title))
}

fn create_dir_all(dir: &Path) {
    if let Err(err) = fs::create_dir_all(dir) {
        panic!("creating {}: {err}", dir.display());
    }
}

fn write_file(path: &Path, bytes: &[u8]) {
    if let Err(err) = fs::write(path, bytes) {
        panic!("writing {}: {err}", path.display());
    }
}
