//! `index`: the wheelhouse as a static PEP 503/691 index with PEP 658 metadata. Served over HTTP,
//! it gives pip and uv what the original index gave (the same resolution, file for file), with no
//! wheel downloaded to resolve; the same bytes twice and anywhere; an output it did not write, or a
//! damaged wheelhouse, refused.

use std::{collections::BTreeMap, path::Path, process::Command};

use crate::support::{
    pip_at_least,
    project::{stderr, Project, FOUR_TARGETS},
    run_fails, run_ok, scrub_env, uv_under_test, Server, ServerOptions,
};

const REQUIREMENTS: &str = "purelib\ncompiled\nwithextra[fast]\nx86only; platform_machine == \"x86_64\"\n";

/// Per target, each package as `name version filename sha256`.
fn resolutions(project: &Project, wheelhouse: &str) -> BTreeMap<String, Vec<String>> {
    let text = fs_err::read_to_string(project.root().join(wheelhouse).join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sha256: BTreeMap<&str, &str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| (file["filename"].as_str().unwrap(), file["sha256"].as_str().unwrap()))
        .collect();
    manifest["resolutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|resolution| {
            let packages = resolution["packages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|package| {
                    let filename = package["filename"].as_str().unwrap();
                    format!("{} {} {filename} {}", package["name"], package["version"], sha256[filename])
                })
                .collect();
            (resolution["target"].as_str().unwrap().to_owned(), packages)
        })
        .collect()
}

/// Every file under `dir`, by relative path, with the sha256 of its bytes.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let relative = entry.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (relative, xtask::model::digest::sha256_hex(&fs_err::read(entry.path()).unwrap()))
        })
        .collect()
}

#[test]
fn a_served_index_of_the_wheelhouse_resolves_like_its_source_without_downloading_a_wheel() {
    let project = Project::new();
    project.write("requirements.txt", REQUIREMENTS);
    project.create_from_file_index(&FOUR_TARGETS);
    run_ok(&mut project.command(&["index", "--output", "served"]));
    let served = project.root().join("served");
    for page in ["simple/index.html", "simple/index.json", "simple/compiled/index.html", "simple/compiled/index.json"] {
        assert!(served.join(page).is_file(), "{page} missing");
    }
    let page = fs_err::read_to_string(served.join("simple/compiled/index.html")).unwrap();
    assert!(page.contains("data-core-metadata=\"sha256="), "{page}");

    // The same requirements and targets, resolved by pip from the served index.
    let server = Server::start(&served, ServerOptions::default());
    project.create(
        &[&["--wheelhouse", "again", "--index-url", &server.url(), "--no-build-tools"][..], &FOUR_TARGETS].concat(),
    );
    assert_eq!(resolutions(&project, "again"), resolutions(&project, "wheelhouse"));
    let requests = server.requests();
    let wheel_gets = requests.iter().filter(|target| target.ends_with(".whl")).count();
    let metadata_gets = requests.iter().filter(|target| target.ends_with(".whl.metadata")).count();
    assert!(metadata_gets > 0, "{requests:?}");
    let n_files = fs_err::read_dir(served.join("files"))
        .unwrap()
        .filter(|entry| entry.as_ref().is_ok_and(|entry| entry.file_name().to_string_lossy().ends_with(".whl")));
    let n_files = n_files.count();
    if pip_at_least(23, 3) {
        // pip resolved from the .metadata files alone; each wheel was fetched once, to download it.
        assert_eq!(wheel_gets, n_files, "{requests:?}");
    } else {
        eprintln!("pip before 23.3 fetches wheels to resolve even with PEP 658: the wheel count is not checked");
    }

    // uv resolves for a target from the index with no wheel fetched.
    let Some(uv) = uv_under_test() else { return };
    let before = server.requests().iter().filter(|target| target.ends_with(".whl")).count();
    let mut compile = Command::new(&uv);
    scrub_env(&mut compile);
    let output = run_ok(
        compile
            .args(["pip", "compile", "--no-cache", "--index-url", &server.url(), "--python-platform"])
            .args(["aarch64-manylinux_2_28", "--python-version", "3.12", "requirements.txt"])
            .current_dir(project.root()),
    );
    let locked = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(locked.contains("compiled==") && !locked.contains("x86only"), "{locked}");
    assert_eq!(server.requests().iter().filter(|target| target.ends_with(".whl")).count(), before);
}

#[test]
fn the_index_is_the_same_bytes_twice_and_anywhere_and_replaces_only_what_it_wrote() {
    let project = Project::new();
    project.write("requirements.txt", REQUIREMENTS);
    project.create_from_file_index(&FOUR_TARGETS);
    run_ok(&mut project.command(&["index", "--output", "one"]));
    run_ok(&mut project.command(&["index", "--output", "elsewhere/two"]));
    let one = tree(&project.root().join("one"));
    assert!(one.len() > 10, "{:?}", one.keys());
    assert_eq!(one, tree(&project.root().join("elsewhere/two")));

    // Up to date; --check passes; a changed page is named by --check and rewritten by index.
    let again = run_ok(&mut project.command(&["index", "--output", "one"]));
    assert!(stderr(&again).contains("up to date"), "{}", stderr(&again));
    run_ok(&mut project.command(&["index", "--output", "one", "--check"]));
    let page = project.root().join("one/simple/purelib/index.html");
    fs_err::write(&page, "tampered").unwrap();
    let stale = stderr(&run_fails(&mut project.command(&["index", "--output", "one", "--check"])));
    assert!(stale.contains("simple/purelib/index.html"), "{stale}");
    run_ok(&mut project.command(&["index", "--output", "one"]));
    assert_eq!(tree(&project.root().join("one")), one);
    // A served wheel with other bytes of the same size is named too.
    let served_wheel = project.root().join("one/files/purelib-1.0-py3-none-any.whl");
    let mut bytes = fs_err::read(&served_wheel).unwrap();
    bytes[0] ^= 0xff;
    fs_err::write(&served_wheel, bytes).unwrap();
    let stale = stderr(&run_fails(&mut project.command(&["index", "--output", "one", "--check"])));
    assert!(stale.contains("files/purelib-1.0-py3-none-any.whl"), "{stale}");
    run_ok(&mut project.command(&["index", "--output", "one"]));
    assert_eq!(tree(&project.root().join("one")), one);

    // A directory of the user's is never replaced.
    project.write("mine/notes.txt", "mine");
    let refused = stderr(&run_fails(&mut project.command(&["index", "--output", "mine"])));
    assert!(refused.contains("holds files this tool did not write"), "{refused}");
    assert_eq!(fs_err::read_to_string(project.root().join("mine/notes.txt")).unwrap(), "mine");

    // Nor is an index made of a wheelhouse whose bytes no longer match its manifest.
    let wheel = fs_err::read_dir(project.wheelhouse())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|extension| extension == "whl"))
        .unwrap();
    let mut bytes = fs_err::read(&wheel).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs_err::write(&wheel, bytes).unwrap();
    let damaged = stderr(&run_fails(&mut project.command(&["index", "--output", "one"])));
    assert!(damaged.contains("does not match its manifest"), "{damaged}");
    assert_eq!(tree(&project.root().join("one")), one);
}
