//! The rules of docs/ARCHITECTURE.md, checked on the source as rust-analyzer's `tidy.rs` does: each
//! layer imports only what it may, only `tools/` starts a process, no command imports a sibling,
//! no file passes 600 lines, and no two files import each other, directly or around a cycle.
//! Each rule is also run on a small tree made here, to show that it can fail.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

const MAX_LINES: usize = 600;

/// What may be written in `model/` besides `std` and the model itself: serde and the parsers.
/// `clap` is there for `ValueEnum` derives, which flags.rs takes from the model.
const MODEL_CRATES: [&str; 9] =
    ["serde", "serde_json", "serde_yaml_ng", "toml", "pep508_rs", "sha2", "thiserror", "anyhow", "clap"];

/// `std` paths that reach outside the process's memory: never in `model/`.
const IMPURE_STD: [&str; 4] = ["std::fs", "std::env", "std::process", "std::net"];

/// Text that starts a process.
const PROCESS_STARTS: [&str; 5] = ["cmd!(", "Command::new(", "process::Command", "MetadataCommand", ".spawn()"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Crate {
    Library,
    Binary,
}

/// One source file: its path under `src/`, its module path, its crate and text.
struct Source {
    path: String,
    module: Vec<String>,
    krate: Crate,
    text: String,
}

impl Source {
    /// The top-level module it belongs to (`model`, `commands`, ...), or `""` for a crate root.
    fn layer(&self) -> &str {
        self.module.first().map_or("", String::as_str)
    }
}

fn read_tree(src: &Path) -> Vec<Source> {
    let mut sources = Vec::new();
    for entry in walkdir::WalkDir::new(src).sort_by_file_name() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|extension| extension != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).unwrap().to_string_lossy().replace('\\', "/");
        let text = fs_err::read_to_string(path).unwrap();
        sources.push(source(&relative, text));
    }
    sources
}

fn source(relative: &str, text: String) -> Source {
    let without_extension = relative.strip_suffix(".rs").unwrap();
    let mut module: Vec<String> = without_extension.split('/').map(str::to_owned).collect();
    if module.last().is_some_and(|last| last == "mod") || matches!(relative, "lib.rs" | "main.rs") {
        module.pop();
    }
    // The binary is main.rs and the modules it declares: flags, settings and commands.
    let krate = match module.first().map(String::as_str) {
        None if relative == "main.rs" => Crate::Binary,
        Some("flags" | "settings" | "commands") => Crate::Binary,
        _ => Crate::Library,
    };
    Source { path: relative.to_owned(), module, krate, text }
}

/// The text without comments: `//` to the end of the line (doc comments included).
fn code(text: &str) -> String {
    text.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Every path a `use` declaration names, its tree expanded: `crate::{a::{self, B}, c}` gives
/// `crate::a`, `crate::a::B` and `crate::c`. Globs (`use super::*` in tests) are left out.
fn use_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut declaration: Option<String> = None;
    for line in code.lines() {
        let trimmed = line.trim_start();
        let visibility_stripped = trimmed
            .strip_prefix("pub(crate) ")
            .or_else(|| trimmed.strip_prefix("pub(super) "))
            .or_else(|| trimmed.strip_prefix("pub "))
            .unwrap_or(trimmed);
        if declaration.is_none() {
            match visibility_stripped.strip_prefix("use ") {
                Some(rest) => declaration = Some(rest.to_owned()),
                None => continue,
            }
        } else if let Some(text) = &mut declaration {
            text.push_str(trimmed);
        }
        if let Some(text) = declaration.take_if(|text| text.contains(';')) {
            let tree: String =
                text[..text.find(';').unwrap_or(text.len())].chars().filter(|c| !c.is_whitespace()).collect();
            expand("", &tree, &mut paths);
        }
    }
    paths
}

fn expand(prefix: &str, tree: &str, paths: &mut Vec<String>) {
    let join = |tail: &str| if prefix.is_empty() { tail.to_owned() } else { format!("{prefix}::{tail}") };
    match tree.find('{') {
        None => {
            // Whitespace is gone: `a as b` reads `aasb`, which resolves as far as `a` goes anyway.
            if tree == "self" {
                paths.push(prefix.to_owned());
            } else if !tree.is_empty() && !tree.ends_with('*') {
                paths.push(join(tree));
            }
        }
        Some(open) => {
            let head = tree[..open].trim_end_matches("::");
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let prefix = if head.is_empty() { prefix.to_owned() } else { join(head) };
            for part in split_top_level(inner) {
                expand(&prefix, part, paths);
            }
        }
    }
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (index, character) in text.char_indices() {
        match character {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|part| !part.is_empty()).collect()
}

/// The file's code before an inline module (`mod tests {`), and that module's code with the
/// module path `super` and `self` mean there.
fn split_inline_module(source: &Source, code: &str) -> (String, Option<(Source, String)>) {
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim();
        let name = trimmed.strip_prefix("mod ").and_then(|rest| rest.strip_suffix(" {"));
        if let Some(name) = name.filter(|name| name.chars().all(|c| c.is_alphanumeric() || c == '_')) {
            let mut module = source.module.clone();
            module.push(name.to_owned());
            let scope = Source { path: source.path.clone(), module, krate: source.krate, text: String::new() };
            return (code[..offset].to_owned(), Some((scope, code[offset..].to_owned())));
        }
        offset += line.len();
    }
    (code.to_owned(), None)
}

/// The code with its `use` declarations blanked, for [`inline_paths`].
fn without_uses(code: &str) -> String {
    let mut kept = String::new();
    let mut in_use = false;
    for line in code.lines() {
        let trimmed = line.trim_start();
        let starts_use = ["use ", "pub use ", "pub(crate) use "].iter().any(|prefix| trimmed.starts_with(prefix));
        if starts_use || in_use {
            in_use = !line.contains(';');
            kept.push('\n');
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// Paths written in the code itself: `crate::a::b(...)`, `super::x`, `xtask::model::y`.
fn inline_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for root in ["crate::", "super::", "self::", "xtask::"] {
        let mut offset = 0;
        while let Some(found) = code[offset..].find(root) {
            let at = offset + found;
            let before = code[..at].chars().next_back();
            offset = at + root.len();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |end| at + end);
            paths.push(code[at..end].trim_end_matches(':').to_owned());
        }
    }
    paths
}

/// The file a path leads to: the longest prefix of the module path that has a file.
fn resolve(from: &Source, path: &str, files: &BTreeMap<(Crate, Vec<String>), String>) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    let (krate, mut module, rest) = match segments.first().copied()? {
        "crate" => (from.krate, Vec::new(), &segments[1..]),
        "xtask" => (Crate::Library, Vec::new(), &segments[1..]),
        "self" => (from.krate, from.module.clone(), &segments[1..]),
        "super" => {
            let ups = segments.iter().take_while(|segment| **segment == "super").count();
            let mut module = from.module.clone();
            module.truncate(module.len().saturating_sub(ups));
            (from.krate, module, &segments[ups..])
        }
        _ => return None,
    };
    let mut found = files.get(&(krate, module.clone())).cloned();
    for segment in rest {
        module.push((*segment).to_owned());
        match files.get(&(krate, module.clone())) {
            Some(file) => found = Some(file.clone()),
            None => break,
        }
    }
    found
}

/// May a file of layer `from` (in `krate`) import from layer `to`?
fn layer_allows(krate: Crate, from: &str, to_krate: Crate, to: &str) -> bool {
    match (krate, from) {
        (Crate::Library, "model") => to == "model",
        (Crate::Library, "wheelhouse") => matches!(to, "model" | "wheelhouse" | "ui" | "parallel"),
        (Crate::Library, "tools") => matches!(to, "model" | "tools" | "ui" | "parallel"),
        (Crate::Library, "ui" | "parallel") => false,
        (Crate::Binary, "flags") => to_krate == Crate::Library && to == "model",
        (Crate::Binary, "settings") => to_krate == Crate::Library || to == "flags",
        (Crate::Binary, "commands") => to_krate == Crate::Library || matches!(to, "flags" | "settings" | "commands"),
        _ => true,
    }
}

/// Every broken rule, one line each.
fn violations(sources: &[Source], dependencies: &[String]) -> Vec<String> {
    let files: BTreeMap<(Crate, Vec<String>), String> =
        sources.iter().map(|source| ((source.krate, source.module.clone()), source.path.clone())).collect();
    let by_path: BTreeMap<&str, &Source> = sources.iter().map(|source| (source.path.as_str(), source)).collect();
    let mut found = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in sources {
        let lines = source.text.lines().count();
        if lines > MAX_LINES {
            found.push(format!("{}: {lines} lines, over {MAX_LINES}: split it", source.path));
        }
        let code = code(&source.text);
        if source.layer() != "tools" {
            for start in PROCESS_STARTS.iter().filter(|start| code.contains(*start)) {
                found.push(format!("{}: starts a process (`{start}`) outside tools/", source.path));
            }
        }
        if source.krate == Crate::Library && source.layer() == "model" {
            // `std::env::consts` is the target the tool was compiled for, not the environment.
            let without_consts = code.replace("std::env::consts", "");
            for banned in IMPURE_STD.iter().filter(|banned| without_consts.contains(*banned)) {
                found.push(format!("{}: model/ uses `{banned}`", source.path));
            }
            for dependency in dependencies.iter().filter(|name| !MODEL_CRATES.contains(&name.as_str())) {
                if inline_roots(&code).contains(dependency.as_str()) {
                    found.push(format!("{}: model/ uses the crate `{dependency}`", source.path));
                }
            }
        }
        let (outer, inner) = split_inline_module(source, &code);
        let mut paths: Vec<(&Source, String)> = Vec::new();
        for (scope, text) in
            [(source, outer.as_str())].into_iter().chain(inner.as_ref().map(|(scope, text)| (scope, text.as_str())))
        {
            paths
                .extend(use_paths(text).into_iter().chain(inline_paths(&without_uses(text))).map(|path| (scope, path)));
        }
        for (scope, path) in paths {
            let Some(target) = resolve(scope, &path, &files) else { continue };
            // A crate root only declares modules; a file's own `tests` reaching back is no import.
            if target == source.path || matches!(target.as_str(), "lib.rs" | "main.rs") {
                continue;
            }
            let target_source = by_path[target.as_str()];
            if !layer_allows(source.krate, source.layer(), target_source.krate, target_source.layer()) {
                found.push(format!("{}: imports {target} (`{path}`), which its layer may not", source.path));
            }
            let command_of = |source: &Source| match source.module.as_slice() {
                [first, command, ..] if first == "commands" => Some(command.clone()),
                _ => None,
            };
            if let (Some(from), Some(to)) = (command_of(source), command_of(target_source)) {
                if from != to {
                    found.push(format!("{}: command `{from}` imports command `{to}` ({target})", source.path));
                }
            }
            edges.entry(source.path.clone()).or_default().insert(target);
        }
    }
    found.extend(cycles(&edges).into_iter().map(|cycle| format!("import cycle: {}", cycle.join(" -> "))));
    found.sort();
    found.dedup();
    found
}

/// The first word of every `a::b` path in the code (`std`, `fs_err`, ...).
fn inline_roots(code: &str) -> BTreeSet<&str> {
    let mut roots = BTreeSet::new();
    for (index, _) in code.match_indices("::") {
        let before = &code[..index];
        let start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |start| start + 1);
        let word = &before[start..];
        let preceded_by_path = before[..start].ends_with("::");
        if !word.is_empty() && !preceded_by_path {
            roots.insert(word);
        }
    }
    roots
}

/// The cycles of the import graph, each as the files around it, found by a depth-first search
/// that reports every edge back to a file still on its path.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    #[derive(PartialEq)]
    enum State {
        OnPath,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        states: &mut BTreeMap<&'a str, State>,
        path: &mut Vec<&'a str>,
        found: &mut Vec<Vec<String>>,
    ) {
        states.insert(node, State::OnPath);
        path.push(node);
        for next in edges.get(node).into_iter().flatten() {
            match states.get(next.as_str()) {
                Some(State::OnPath) => {
                    let start = path.iter().position(|entry| entry == next).unwrap_or(0);
                    let mut cycle: Vec<String> = path[start..].iter().map(|entry| (*entry).to_owned()).collect();
                    cycle.push(next.clone());
                    found.push(cycle);
                }
                Some(State::Done) => {}
                None => visit(next, edges, states, path, found),
            }
        }
        path.pop();
        states.insert(node, State::Done);
    }
    let mut states = BTreeMap::new();
    let mut found = Vec::new();
    for node in edges.keys() {
        if !states.contains_key(node.as_str()) {
            visit(node, edges, &mut states, &mut Vec::new(), &mut found);
        }
    }
    found
}

fn dependencies() -> Vec<String> {
    let manifest: toml::Table =
        toml::from_str(&fs_err::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap())
            .unwrap();
    manifest["dependencies"].as_table().unwrap().keys().map(|name| name.replace('-', "_")).collect()
}

#[test]
fn the_source_tree_keeps_the_architecture() {
    let src: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = read_tree(&src);
    assert!(sources.len() > 30, "read only {} files", sources.len());
    let found = violations(&sources, &dependencies());
    assert!(found.is_empty(), "docs/ARCHITECTURE.md is broken:\n{}", found.join("\n"));
}

/// Each rule catches what it is for, in a tree small enough to read.
#[test]
fn each_rule_fails_when_broken() {
    let check = |files: &[(&str, &str)], expected: &[&str]| {
        let sources: Vec<Source> = files.iter().map(|(path, text)| source(path, (*text).to_owned())).collect();
        let found = violations(&sources, &["fs_err".to_owned(), "serde".to_owned(), "xshell".to_owned()]);
        assert_eq!(found, expected, "{files:?}");
    };
    let fine = [
        ("lib.rs", "pub mod model;\npub mod tools;\n"),
        ("model/mod.rs", "pub mod a;\npub mod b;\n"),
        ("model/a.rs", "use serde::Serialize;\nuse crate::model::b::B;\n"),
        ("model/b.rs", "pub struct B; // crate::tools::x in a comment is no import\n"),
        ("tools/mod.rs", "use xshell::cmd;\npub fn run() { cmd!(sh, \"pip\"); }\n"),
        ("main.rs", "mod commands;\nuse crate::commands::one;\n"),
        ("commands/mod.rs", "pub mod one;\npub mod two;\npub fn shared() {}\n"),
        ("commands/one.rs", "use xtask::model::a;\nuse crate::commands::shared;\n"),
        ("commands/two.rs", "use crate::commands::{self, shared};\n"),
    ];
    check(&fine, &[]);
    let with = |path: &str, text: &'static str| -> Vec<(&str, &str)> {
        let mut files: Vec<(&str, &str)> = fine.iter().filter(|(name, _)| *name != path).copied().collect();
        files.push((Box::leak(path.to_owned().into_boxed_str()), text));
        files
    };
    check(
        &with("commands/two.rs", "use crate::commands::{one::run, shared};\n"),
        &["commands/two.rs: command `two` imports command `one` (commands/one.rs)"],
    );
    check(
        &with("model/b.rs", "pub fn read() { fs_err::read(\"x\"); std::fs::read(\"y\"); }\n"),
        &["model/b.rs: model/ uses `std::fs`", "model/b.rs: model/ uses the crate `fs_err`"],
    );
    check(
        &with("model/b.rs", "use crate::tools::run;\n"),
        &["model/b.rs: imports tools/mod.rs (`crate::tools::run`), which its layer may not"],
    );
    check(
        &with("commands/one.rs", "fn f() { std::process::Command::new(\"pip\"); }\n"),
        &[
            "commands/one.rs: starts a process (`Command::new(`) outside tools/",
            "commands/one.rs: starts a process (`process::Command`) outside tools/",
        ],
    );
    check(&with("model/b.rs", "use super::a::A;\n"), &["import cycle: model/a.rs -> model/b.rs -> model/a.rs"]);
    let long = "fn f() {}\n".repeat(MAX_LINES + 1);
    check(&with("model/b.rs", Box::leak(long.into_boxed_str())), &["model/b.rs: 601 lines, over 600: split it"]);
}
