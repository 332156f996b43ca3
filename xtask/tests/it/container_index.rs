//! `build-offline --from-index`: the image installed from the index that `serve` runs, with no
//! wheelhouse in the build context, as a remote builder would; the exact docker command it gives;
//! and `install-script --index-url` for init containers.

use std::process::Command;

use crate::{
    containers::{container_tests_enabled, dockerfile, in_image},
    support::{
        load::{in_namespace, Serving},
        project::{stdout, Project, ONE_TARGET},
        python, run_ok,
    },
};

const COMPOSE: &str = r#"
services:
  api:
    build:
      context: ..
      dockerfile: dockerfiles/api.Dockerfile
      args:
        BASE_IMAGE: ${BASE_IMAGE}
      additional_contexts:
        wheelhouse: ../wheelhouse
    image: ${IMAGE_PREFIX}/api:latest
    x-requirements: ../requirements-api.txt
"#;

fn project() -> Project {
    let project = Project::new();
    project.write("compose/docker-compose.yml", COMPOSE);
    project.write("dockerfiles/api.Dockerfile", &dockerfile("api.py"));
    project.write("api.py", "import purelib, compiled, withextra, speedup\n");
    project.write("requirements-api.txt", "purelib\ncompiled\nwithextra[fast]\n");
    project
}

/// Needs no engine: the docker command of an index build mounts nothing, keeps the network, and
/// carries the URL and the served manifest's sha256 as build arguments.
#[test]
fn an_index_build_names_the_url_and_the_served_manifest_and_mounts_nothing() {
    let project = project();
    project.create_from_file_index(&ONE_TARGET);
    run_ok(&mut project.command(&["dockerfiles"]));
    let server = Serving::start(
        project.command(&["serve", "--bind", "127.0.0.1:0", "--no-access-log"]),
        &project.tmp.path().join("serve.log"),
    );
    let url = server.url("/simple/");
    let manifest = fs_err::read(project.wheelhouse().join("manifest.json")).unwrap();
    let digest = xtask::model::digest::sha256_hex(&manifest);
    let root = project.root().display().to_string();
    let mut command = project.command(&["build-offline", "--engine", "docker", "--dry-run", "--from-index", &url]);
    command
        .args(["--platform", "linux/amd64", "--tag", "1.0"])
        .env("BASE_IMAGE", "localhost/base:1")
        .env("IMAGE_PREFIX", "example");
    assert_eq!(
        stdout(&run_ok(&mut command)),
        format!(
            "docker buildx build --file {root}/dockerfiles/api.Dockerfile --tag example/api:1.0 --platform linux/amd64 \
             --build-arg BASE_IMAGE=localhost/base:1 --build-arg OFFLINE=1 --build-arg WHEELHOUSE_INDEX_URL={url} \
             --build-arg WHEELHOUSE_MANIFEST_SHA256={digest} --load {root}\n"
        )
    );
    let generated = fs_err::read_to_string(project.root().join("dockerfiles/api.Dockerfile")).unwrap();
    assert!(
        generated.contains("--index-url \"$WHEELHOUSE_INDEX_URL\" $trusted -r /tmp/requirements.txt"),
        "{generated}"
    );
    drop(server);

    // No index at the URL: named, and nothing built.
    let mut command = project.command(&["build-offline", "--engine", "docker", "--dry-run", "--from-index", &url]);
    let output = command.env("BASE_IMAGE", "localhost/base:1").env("IMAGE_PREFIX", "example").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is `serve` running there?"));
}

/// In a network namespace with only loopback: serve, a podman build from it, and the install
/// script of an init container from it.
#[test]
fn an_image_and_an_init_container_install_from_serve_with_no_wheelhouse_mounted() {
    if !container_tests_enabled() {
        return;
    }
    let base_image =
        std::env::var("XTASK_BASE_IMAGE").unwrap_or_else(|_| "localhost/wheelhouse-base:bookworm".to_owned());
    let project = project();
    let prefix = format!("localhost/xtask-index-{}", std::process::id());
    project.create_from_file_index(&["--platform", "linux/amd64", "--python", "3.11", "--libc", "glibc_2_36"]);
    run_ok(&mut project.command(&["dockerfiles"]));
    let script = r#"
"$WHEELGAP" build-offline --engine podman --no-cache --tag fromindex --from-index "$url"
"$WHEELGAP" install-script --index-url "$url" --target init-target > install.sh
REQUIREMENTS=requirements-api.txt sh install.sh"#;
    let env: [(&str, &std::ffi::OsStr); 3] = [
        ("BASE_IMAGE", base_image.as_ref()),
        ("IMAGE_PREFIX", prefix.as_ref()),
        ("BUILDAH_ISOLATION", "chroot".as_ref()),
    ];
    let log = in_namespace(&project, script, &env);
    in_image(&format!("{prefix}/api:fromindex"), &["/opt/venv/bin/python", "/app/api.py"]);
    // The build asked the index for its manifest (the cache key) and fetched the wheels from it.
    let requests: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| line.contains("\"event\":\"request\""))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(requests.iter().any(|request| request["path"] == "/manifest.json" && request["status"] == 200), "{log}");
    let wheels = requests.iter().filter(|request| request["kind"] == "file" && request["status"] == 200).count();
    assert!(wheels >= 8, "the build and the script fetch the 4 wheels each: {log}");
    let imported = run_ok(
        Command::new(python())
            .args(["-c", "import purelib, compiled, withextra, speedup"])
            .env("PYTHONPATH", project.root().join("init-target")),
    );
    assert!(imported.status.success());
    let _ = run_ok(Command::new("podman").args(["rmi", "-f", &format!("{prefix}/api:fromindex")]));
}

/// The image of deploy/wheelgap.Dockerfile, built from the base image with podman: the tool runs
/// in it, as `nobody`, and serves an archive the way the Deployment of `bundle --serve` runs it.
#[test]
fn the_tool_image_builds_from_the_base_image_and_runs_as_nobody() {
    if !container_tests_enabled() {
        return;
    }
    let base_image =
        std::env::var("XTASK_BASE_IMAGE").unwrap_or_else(|_| "localhost/wheelhouse-base:bookworm".to_owned());
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    let context = project.tmp.path().join("image");
    fs_err::create_dir_all(&context).unwrap();
    fs_err::copy(env!("CARGO_BIN_EXE_wheelgap"), context.join("wheelgap")).unwrap();
    let image = format!("localhost/xtask-tool-{}:1", std::process::id());
    let dockerfile = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/wheelgap.Dockerfile");
    run_ok(
        Command::new("podman")
            .args(["build", "--pull=never", "--file", dockerfile, "--tag", &image])
            .arg(format!("--build-arg=BASE_IMAGE={base_image}"))
            .arg(&context)
            .env("BUILDAH_ISOLATION", "chroot"),
    );
    let said = in_image(&image, &["sh", "-c", "id -u && wheelgap --version"]);
    assert!(said.starts_with("65534\nwheelgap "), "{said}");
    let help = in_image(&image, &["wheelgap", "serve", "--help"]);
    assert!(help.contains("--archive"), "{help}");
    let _ = run_ok(Command::new("podman").args(["rmi", "-f", &image]));
}
