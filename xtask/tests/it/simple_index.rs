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

/// By default the index goes into the wheelhouse: pages under `simple/`, each wheel's `.metadata`
/// beside it. A static server of the wheelhouse itself is then an index; verify checks the index
/// against the files; pack carries it and unpack brings it back byte for byte; the install script
/// takes such an archive; and the archive reader admits nothing else nested.
#[test]
fn the_index_inside_the_wheelhouse_is_served_as_it_is_and_pack_carries_it() {
    let project = Project::new();
    project.write("requirements.txt", REQUIREMENTS);
    project.create_from_file_index(&FOUR_TARGETS);
    run_ok(&mut project.command(&["index"]));
    let wheelhouse = project.wheelhouse();
    assert!(wheelhouse.join("simple/compiled/index.json").is_file());
    assert!(wheelhouse.join("purelib-1.0-py3-none-any.whl.metadata").is_file());
    let page = fs_err::read_to_string(wheelhouse.join("simple/purelib/index.html")).unwrap();
    assert!(page.contains("href=\"../../purelib-1.0-py3-none-any.whl#sha256="), "{page}");
    run_ok(&mut project.command(&["index", "--check"]));
    run_ok(&mut project.command_with_test_python(&["verify-wheelhouse"]));

    // The wheelhouse directory, served as it is, resolves like the original index.
    let server = Server::start(&wheelhouse, ServerOptions::default());
    project.create(
        &[&["--wheelhouse", "again", "--index-url", &server.url(), "--no-build-tools"][..], &FOUR_TARGETS].concat(),
    );
    assert_eq!(resolutions(&project, "again"), resolutions(&project, "wheelhouse"));
    assert!(server.requests().iter().any(|target| target.ends_with(".whl.metadata")));
    drop(server);

    // pack carries it; unpack brings back the same bytes.
    let before = tree(&wheelhouse);
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    run_ok(&mut project.command(&["unpack-wheelhouse", "wheelhouse.tgz", "--wheelhouse", "unpacked"]));
    let unpacked = tree(&project.root().join("unpacked"));
    let index_of = |files: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        files
            .iter()
            .filter(|(path, _)| path.starts_with("simple/") || path.ends_with(".metadata"))
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect()
    };
    assert!(index_of(&before).len() > 10);
    assert_eq!(index_of(&unpacked), index_of(&before));

    // The install script takes the archive with its index, and installs.
    let script = project.tmp.path().join("install.sh");
    fs_err::write(&script, crate::support::project::stdout(&run_ok(&mut project.command(&["install-script"]))))
        .unwrap();
    let mut install = Command::new("sh");
    scrub_env(&mut install);
    install
        .arg(&script)
        .arg(project.root().join("wheelhouse.tgz"))
        .env("PYTHON", crate::support::python())
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("REQUIREMENTS", project.root().join("requirements.txt"))
        .env("PIP_TARGET", project.tmp.path().join("target"));
    run_ok(&mut install);

    // An archive whose page was changed after pack: verify --archive names it, unpack refuses it.
    let forged = project.root().join("forged.tgz");
    {
        let input = flate2::read::GzDecoder::new(fs_err::File::open(project.root().join("wheelhouse.tgz")).unwrap());
        let mut reader = tar::Archive::new(input);
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for entry in reader.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            if path == "wheelhouse/simple/purelib/index.html" {
                bytes = b"<a href=\"http://elsewhere/purelib-1.0-py3-none-any.whl\">purelib</a>".to_vec();
            }
            let mut header = entry.header().clone();
            header.set_size(bytes.len() as u64);
            header.set_cksum();
            builder.append_data(&mut header, &path, &bytes[..]).unwrap();
        }
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        fs_err::write(&forged, &bytes).unwrap();
        let sidecar = xtask::model::digest::sidecar_line(&xtask::model::digest::sha256_hex(&bytes), "forged.tgz");
        fs_err::write(project.root().join("forged.tgz.sha256"), sidecar).unwrap();
    }
    let said = stderr(&run_fails(&mut project.command(&[
        "verify-wheelhouse",
        "--archive",
        "forged.tgz",
        "--no-install-check",
    ])));
    assert!(said.contains("simple/purelib/index.html is not the index these files give"), "{said}");
    let said = stderr(&run_fails(&mut project.command(&["unpack-wheelhouse", "forged.tgz", "--wheelhouse", "forged"])));
    assert!(said.contains("is not the index these files give"), "{said}");

    // A file of the user's under simple/: never swapped away, and named.
    fs_err::write(project.root().join("unpacked/simple/notes.txt"), "mine").unwrap();
    let said =
        stderr(&run_fails(&mut project.command(&["unpack-wheelhouse", "wheelhouse.tgz", "--wheelhouse", "unpacked"])));
    assert!(said.contains("simple"), "{said}");
    assert_eq!(fs_err::read_to_string(project.root().join("unpacked/simple/notes.txt")).unwrap(), "mine");

    // What a killed index left is removed by the next run.
    fs_err::write(wheelhouse.join(".purelib-1.0-py3-none-any.whl.metadata.partial-x1y2"), "half").unwrap();
    fs_err::write(wheelhouse.join("simple/purelib/.index.html.partial-x1y2"), "half").unwrap();
    run_ok(&mut project.command(&["index"]));
    assert_eq!(tree(&wheelhouse), before);

    // A page changed in the wheelhouse: verify names it, pack refuses it, index rewrites it.
    fs_err::write(wheelhouse.join("simple/purelib/index.html"), "tampered").unwrap();
    let said = stderr(&run_fails(&mut project.command_with_test_python(&["verify-wheelhouse", "--no-install-check"])));
    assert!(said.contains("simple/purelib/index.html is not the index these files give"), "{said}");
    let said = stderr(&run_fails(&mut project.command(&["pack-wheelhouse", "--output", "other.tgz"])));
    assert!(said.contains("is stale"), "{said}");
    run_ok(&mut project.command(&["index"]));
    assert_eq!(tree(&wheelhouse), before);

    // Nothing nested but the index's own names passes the archive reader or the install script.
    let archive = project.root().join("wheelhouse.tgz");
    for bad in [
        "wheelhouse/simple/purelib/run.sh",
        "wheelhouse/simple/a/b/index.html",
        "wheelhouse/simple/../x/index.html",
        "wheelhouse/simple",
    ] {
        use crate::support::raw_archives::{gzip, tar_entry, wheelhouse_tar_entries};
        let mut tar = wheelhouse_tar_entries(&[]);
        tar.extend(tar_entry(bad.as_bytes(), b'0', b"<html>"));
        tar.extend([0u8; 1024]);
        let bytes = gzip(&tar);
        fs_err::write(&archive, &bytes).unwrap();
        fs_err::write(
            project.root().join("wheelhouse.tgz.sha256"),
            xtask::model::digest::sidecar_line(&xtask::model::digest::sha256_hex(&bytes), "wheelhouse.tgz"),
        )
        .unwrap();
        let said = stderr(&run_fails(&mut project.command(&[
            "verify-wheelhouse",
            "--archive",
            "wheelhouse.tgz",
            "--no-install-check",
        ])));
        assert!(said.contains("refused") || said.contains("simple is not in the manifest"), "{bad}: {said}");
        let said = stderr(&run_fails(&mut install));
        assert!(said.contains("outside wheelhouse/") || said.contains("refused"), "{bad}: {said}");
    }
}
