//! The inputs besides requirements files: a PEP 751 lock and a uv lock, read per target (markers,
//! the wheel the target ranks first) with no resolution at all, and a pyproject.toml resolved
//! like a requirements file; each gives the same wheelhouse as the requirements it stands for.
//! Other TOML files are refused by name.

use std::collections::BTreeMap;

use crate::support::{
    project::{stderr, Project, FOUR_TARGETS, ONE_TARGET},
    run_ok, scrub_env, uv_under_test, Server, ServerOptions,
};

const COMPILED: [&str; 5] = [
    "compiled-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "compiled-2.0-cp312-cp312-manylinux_2_28_x86_64.whl",
    "compiled-2.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "compiled-2.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "compiled-2.0-cp311-cp311-musllinux_1_2_x86_64.whl",
];

/// What `requirements.txt` below resolves to, as a lock: markers both ways, a compiled package
/// with a wheel per tag, the files on `files_url`.
fn pylock(project: &Project, files_url: &str, compiled: &[&str]) -> String {
    let file = |name: &str| {
        format!(
            "{{ name = \"{name}\", url = \"{files_url}{name}\", hashes = {{ sha256 = \"{}\" }} }}",
            project.index.sha256_of(name)
        )
    };
    let package = |name: &str, version: &str, marker: Option<&str>, wheels: &[&str]| {
        let marker = marker.map(|marker| format!("marker = '{marker}'\n")).unwrap_or_default();
        let wheels: Vec<String> = wheels.iter().map(|wheel| file(wheel)).collect();
        format!(
            "\n[[packages]]\nname = \"{name}\"\nversion = \"{version}\"\n{marker}wheels = [{}]\n",
            wheels.join(", ")
        )
    };
    let pure = |name: &str| format!("{name}-1.0-py3-none-any.whl");
    [
        "lock-version = \"1.0\"\nrequires-python = \">=3.11\"\ncreated-by = \"hand\"\n".to_owned(),
        package("armonly", "1.0", Some("platform_machine == \"aarch64\""), &[&pure("armonly")]),
        package("compiled", "2.0", None, compiled),
        package("newpy", "1.0", Some("python_version >= \"3.12\""), &[&pure("newpy")]),
        package("oldpy", "1.0", Some("python_version < \"3.12\""), &[&pure("oldpy")]),
        package("purelib", "1.0", None, &[&pure("purelib")]),
        package("x86helper", "1.0", Some("platform_machine == \"x86_64\""), &[&pure("x86helper")]),
        package(
            "x86only",
            "1.0",
            Some("platform_machine == \"x86_64\""),
            &["x86only-1.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"],
        ),
    ]
    .concat()
}

fn as_strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// Per target, each package as `name version filename -> dependencies`.
fn packages_by_target(manifest: &serde_json::Value) -> BTreeMap<String, Vec<String>> {
    let mut by_target = BTreeMap::new();
    for resolution in manifest["resolutions"].as_array().unwrap() {
        let packages = resolution["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|package| {
                format!(
                    "{} {} {} direct={} -> {}",
                    package["name"].as_str().unwrap(),
                    package["version"].as_str().unwrap(),
                    package["filename"].as_str().unwrap(),
                    package["direct"],
                    package["dependencies"]
                )
            })
            .collect();
        by_target.insert(resolution["target"].as_str().unwrap().to_owned(), packages);
    }
    by_target
}

#[test]
fn a_pylock_gives_the_wheelhouse_of_the_requirements_it_locks_without_resolving() {
    let project = Project::new();
    let server = Server::start(project.index.root(), ServerOptions::default());
    let files_url = format!("{}files/", server.base_url());
    project.write("requirements.txt", "purelib\ncompiled\nx86only; platform_machine == \"x86_64\"\n");
    project.write("pylock.toml", &pylock(&project, &files_url, &COMPILED));
    let flags = |input: &str, wheelhouse: &str| -> Vec<String> {
        [
            &["-r", input, "--wheelhouse", wheelhouse, "--index-url", &server.url(), "--no-build-tools"][..],
            &FOUR_TARGETS,
        ]
        .concat()
        .iter()
        .map(|flag| flag.to_string())
        .collect()
    };
    let from_requirements = flags("requirements.txt", "wheelhouse-req");
    project.create(&as_strs(&from_requirements));
    let pages_before = server.requests().iter().filter(|target| target.contains("/simple/")).count();
    assert!(pages_before > 0, "pip read the index: {:?}", server.requests());

    let from_lock = flags("pylock.toml", "wheelhouse-lock");
    let output = project.create(&as_strs(&from_lock));
    let pages_after = server.requests().iter().filter(|target| target.contains("/simple/")).count();
    assert_eq!(pages_after, pages_before, "a lock needs no index page: {}", stderr(&output));

    let read = |wheelhouse: &str| -> serde_json::Value {
        serde_json::from_str(&fs_err::read_to_string(project.root().join(wheelhouse).join("manifest.json")).unwrap())
            .unwrap()
    };
    let (by_requirements, by_lock) = (read("wheelhouse-req"), read("wheelhouse-lock"));
    let locked = packages_by_target(&by_lock);
    assert_eq!(locked.len(), 4, "{locked:?}");
    assert!(
        locked["linux-arm64-cp312"]
            .contains(&"purelib 1.0 purelib-1.0-py3-none-any.whl direct=true -> [\"armonly\",\"newpy\"]".to_owned()),
        "{locked:?}"
    );
    assert_eq!(locked, packages_by_target(&by_requirements));
    let files = |manifest: &serde_json::Value| {
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| (file["filename"].clone(), file["sha256"].clone(), file["targets"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(files(&by_lock), files(&by_requirements));
}

#[test]
fn a_lock_without_a_wheel_for_a_target_names_package_target_and_what_it_offers() {
    let project = Project::new();
    let files_url = format!("{}/", crate::support::index::file_url(&project.index.files_dir()));
    let x86_only = [COMPILED[0], COMPILED[1]];
    project.write("pylock.toml", &pylock(&project, &files_url, &x86_only));
    let output = project.create_fails(
        &[&["-r", "pylock.toml", "--no-build-tools", "--platform", "linux/arm64", "--python", "3.11"][..]].concat(),
    );
    let text = stderr(&output);
    for needed in ["pylock.toml: no wheel of `compiled==2.0` fits linux/arm64 python 3.11", COMPILED[0], COMPILED[1]] {
        assert!(text.contains(needed), "no `{needed}` in:\n{text}");
    }
    assert!(!project.wheelhouse().exists());

    // A hash the bytes do not have: the downloader's check, naming both digests.
    let wrong = pylock(&project, &files_url, &COMPILED)
        .replace(&project.index.sha256_of("purelib-1.0-py3-none-any.whl"), &"0".repeat(64));
    project.write("pylock.toml", &wrong);
    let output = project.create_fails(&[&["-r", "pylock.toml", "--no-build-tools"][..], &ONE_TARGET].concat());
    let text = stderr(&output);
    assert!(text.contains("sha256 mismatch for purelib 1.0 (purelib-1.0-py3-none-any.whl)"), "{text}");
    assert!(text.contains(&"0".repeat(64)), "{text}");
}

#[test]
fn a_locked_sdist_is_built_only_with_build_sdists_and_only_from_its_locked_bytes() {
    let project = Project::new();
    let files_url = format!("{}/", crate::support::index::file_url(&project.index.files_dir()));
    let sdist = "sdistonly-1.0.tar.gz";
    let lock = |sha256: &str| {
        format!(
            "lock-version = \"1.0\"\ncreated-by = \"hand\"\n\n[[packages]]\nname = \"sdistonly\"\nversion = \"1.0\"\n\
             sdist = {{ name = \"{sdist}\", url = \"{files_url}{sdist}\", hashes = {{ sha256 = \"{sha256}\" }} }}\n"
        )
    };
    project.write("pylock.toml", &lock(&project.index.sha256_of(sdist)));
    let targets = ["--platform", "linux/amd64", "--platform", "linux/arm64", "--python", "3.12"];
    let flags = [&["-r", "pylock.toml", "--no-build-tools"][..], &targets].concat();
    let refused = stderr(&project.create_fails(&flags));
    assert!(refused.contains("no wheel of `sdistonly==1.0` fits linux/amd64 python 3.12"), "{refused}");
    assert!(refused.contains("pass --build-sdists"), "{refused}");

    let built = [&flags[..], &["--build-sdists"]].concat();
    project.create(&built);
    let manifest = project.manifest();
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["filename"], "sdistonly-1.0-py3-none-any.whl");
    assert_eq!(files[0]["origin"], "sdist-build");
    assert_eq!(files[0]["targets"], serde_json::json!(["linux-amd64-cp312", "linux-arm64-cp312"]));

    // Other bytes than the lock's: pip checks the locked sha256 before it builds anything.
    std::fs::remove_dir_all(project.wheelhouse()).unwrap();
    project.write("pylock.toml", &lock(&"0".repeat(64)));
    let mismatch = stderr(&project.create_fails(&built));
    assert!(mismatch.contains(&"0".repeat(64)), "{mismatch}");
    assert!(mismatch.contains(&project.index.sha256_of(sdist)), "{mismatch}");
    assert!(!project.wheelhouse().exists());
}

/// A project declaring, with an extra and a dependency group, what `EQUIVALENT` lists: markers
/// both ways (`purelib`'s dependencies), a package only x86_64 has, a compiled package.
const PYPROJECT: &str = r#"[project]
name = "app"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["purelib", "compiled==2.0", "x86only; platform_machine == 'x86_64'"]

[project.optional-dependencies]
fast = ["withextra[fast]"]

[dependency-groups]
test = ["x86helper"]
"#;

const EQUIVALENT: &str =
    "purelib\ncompiled==2.0\nx86only; platform_machine == \"x86_64\"\nwithextra[fast]\nx86helper\n";

#[test]
fn a_pyproject_and_its_uv_lock_give_the_wheelhouse_of_the_equivalent_requirements() {
    let project = Project::new();
    let server = Server::start(project.index.root(), ServerOptions::default());
    project.write("requirements.txt", EQUIVALENT);
    project.write("pyproject.toml", PYPROJECT);
    let index_url = server.url();
    let create = |input: &str, wheelhouse: &str, select: &[&str]| {
        let flags = [
            &["-r", input, "--wheelhouse", wheelhouse, "--index-url", &index_url, "--no-build-tools"][..],
            select,
            &FOUR_TARGETS,
        ]
        .concat();
        let output = project.create(&flags);
        let manifest: serde_json::Value = serde_json::from_str(
            &fs_err::read_to_string(project.root().join(wheelhouse).join("manifest.json")).unwrap(),
        )
        .unwrap();
        (output, manifest)
    };
    let (_, by_requirements) = create("requirements.txt", "wheelhouse-req", &[]);
    let expected = packages_by_target(&by_requirements);
    assert!(expected["linux-amd64-cp311"].iter().any(|package| package.starts_with("x86only ")), "{expected:?}");
    assert!(!expected["linux-arm64-cp311"].iter().any(|package| package.starts_with("x86only ")), "{expected:?}");

    let select = ["--extra", "fast", "--group", "test"];
    let (_, by_pyproject) = create("pyproject.toml", "wheelhouse-pyproject", &select);
    assert_eq!(packages_by_target(&by_pyproject), expected);
    // Without the extra and the group, neither their packages nor anything only they pull in.
    let (_, bare) = create("pyproject.toml", "wheelhouse-bare", &[]);
    let bare = packages_by_target(&bare);
    assert!(!bare["linux-arm64-cp312"].iter().any(|package| package.starts_with("withextra ")), "{bare:?}");
    assert!(!bare["linux-arm64-cp312"].iter().any(|package| package.starts_with("x86helper ")), "{bare:?}");
    let unknown = project.create_fails(&[&["-r", "pyproject.toml", "--extra", "slow"][..], &ONE_TARGET].concat());
    assert!(stderr(&unknown).contains("pyproject.toml has no extra `slow`; it has: fast"), "{}", stderr(&unknown));

    // uv's own lock of the same project, made by the uv under test against the same index.
    let Some(uv) = uv_under_test() else { return };
    let mut lock = std::process::Command::new(&uv);
    scrub_env(&mut lock);
    run_ok(
        lock.args(["lock", "--index-url", &server.url(), "--cache-dir"])
            .arg(project.tmp.path().join("uv-cache"))
            .current_dir(project.root()),
    );
    let pages_before = server.requests().iter().filter(|target| target.contains("/simple/")).count();
    let (output, by_uv_lock) = create("uv.lock", "wheelhouse-uvlock", &select);
    let pages_after = server.requests().iter().filter(|target| target.contains("/simple/")).count();
    assert_eq!(pages_after, pages_before, "a lock needs no index page: {}", stderr(&output));
    assert_eq!(packages_by_target(&by_uv_lock), expected);
    let files = |manifest: &serde_json::Value| {
        manifest["files"].as_array().unwrap().iter().map(|file| file["sha256"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(files(&by_uv_lock), files(&by_requirements));
}

#[test]
fn other_toml_files_and_unknown_lock_versions_are_refused_by_name_never_handed_to_pip() {
    let project = Project::new();
    for (name, text, expected) in [
        (
            "uv.lock",
            "version = 2\n\n[[package]]\nname = \"x\"\n",
            "uv.lock has version 2, and this tool reads uv.lock version 1",
        ),
        (
            "pyproject.toml",
            "[project]\nname = \"x\"\ndynamic = [\"dependencies\"]\n",
            "pyproject.toml: `[project].dependencies` is dynamic",
        ),
        ("deps.toml", "[tool.x]\ny = 1\n", "deps.toml is a TOML file but neither a pylock.toml"),
    ] {
        project.write(name, text);
        let output = project.create_fails(&[&["-r", name, "--no-build-tools"][..], &ONE_TARGET].concat());
        let text = stderr(&output);
        assert!(text.contains(expected) && text.contains("hint:"), "{name}:\n{text}");
        assert!(!text.contains("Invalid requirement"), "{name}: pip's words:\n{text}");
    }
    project.write("pylock.toml", "lock-version = \"2.0\"\n");
    let output = project.create_fails(&[&["-r", "pylock.toml", "--no-build-tools"][..], &ONE_TARGET].concat());
    assert!(
        stderr(&output).contains("pylock.toml has lock-version 2.0, and this tool reads lock-version 1.x"),
        "{}",
        stderr(&output)
    );
}
