//! `init` end to end: a Python project with a compose file and two Dockerfiles (no Cargo.toml)
//! gets a wheelhouse.toml that parses, names the targets its bases imply, and makes a wheelhouse.

use crate::support::{
    project::{stderr, stdout, Project},
    run_fails, run_ok,
};

/// `api` is `python:3.12-slim` on linux/arm64; `worker` is Debian 12 (its python3 is 3.11) on
/// the host's platform.
fn python_project() -> Project {
    let project = Project::new();
    project.write("requirements.txt", "purelib\n");
    project.write(
        "compose.yaml",
        "services:\n  api:\n    build:\n      context: .\n      dockerfile: dockerfiles/api.Dockerfile\n    platform: linux/arm64\n    x-requirements: requirements.txt\n  worker:\n    build:\n      context: .\n      dockerfile: dockerfiles/worker.Dockerfile\n    x-requirements: requirements.txt\n  db:\n    image: postgres:16\n",
    );
    project.write("dockerfiles/api.Dockerfile", "FROM python:3.12-slim\nARG APP=api\nCOPY . /app\n");
    project.write("dockerfiles/worker.Dockerfile", "FROM debian:bookworm\nRUN apt-get install -y python3\n");
    project
}

fn json(project: &Project) -> serde_json::Value {
    serde_json::from_str(&stdout(&run_ok(&mut project.command(&["init", "--json"])))).unwrap()
}

#[test]
fn init_infers_the_targets_and_the_settings_make_a_wheelhouse() {
    let project = python_project();
    let found = json(&project);
    assert!(!project.root().join("wheelhouse.toml").exists(), "--json writes nothing");
    assert_eq!(found["requirements"], serde_json::json!(["requirements.txt"]));
    assert_eq!(found["compose_file"], "compose.yaml");
    assert_eq!(found["services"][0]["name"], "api");
    assert_eq!(found["services"][0]["dockerfile"], "dockerfiles/api.Dockerfile");
    assert_eq!(found["services"][0]["base_image"], "python:3.12-slim");
    assert_eq!(found["services"][0]["platform"], "linux/arm64");
    assert_eq!(found["services"][1]["python"], "3.11");
    assert_eq!(found["inferred"]["python"], serde_json::json!(["3.11", "3.12"]));
    assert!(found["inferred"]["platforms"].as_array().unwrap().contains(&"linux/arm64".into()), "{found}");

    let output = run_ok(&mut project.command(&["init"]));
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).contains("hint: wheelgap create-wheelhouse"), "{}", stderr(&output));
    let text = fs_err::read_to_string(project.root().join("wheelhouse.toml")).unwrap();
    assert!(text.contains("# from dockerfiles/api.Dockerfile: FROM python:3.12-slim\n"), "{text}");
    let settings: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(settings["targets"]["python"], toml::Value::try_from(["3.11", "3.12"]).unwrap());
    assert!(settings["targets"].get("libc").is_none(), "{text}");

    // A second init refuses to replace it, and names the file and the flag.
    let refused = stderr(&run_fails(&mut project.command(&["init"])));
    assert!(refused.contains("wheelhouse.toml already exists"), "{refused}");
    assert!(refused.contains("--force"), "{refused}");
    run_ok(&mut project.command(&["init", "--force"]));

    let url = project.index.file_index_url();
    run_ok(&mut project.create_command(&["--index-url", &url, "--no-build-tools"]));
    let made: Vec<serde_json::Value> =
        project.manifest()["targets"].as_array().unwrap().iter().map(|target| target["id"].clone()).collect();
    assert_eq!(serde_json::Value::Array(made), found["targets"]);
}

#[test]
fn dry_run_prints_and_writes_nothing() {
    let project = python_project();
    let output = run_ok(&mut project.command(&["init", "--dry-run", "--gitignore", "--dockerfile-markers"]));
    assert!(stdout(&output).contains("python = [\"3.11\", \"3.12\"]"), "{}", stdout(&output));
    assert!(!project.root().join("wheelhouse.toml").exists());
    assert!(!project.root().join(".gitignore").exists());
    let dockerfile = fs_err::read_to_string(project.root().join("dockerfiles/api.Dockerfile")).unwrap();
    assert_eq!(dockerfile, "FROM python:3.12-slim\nARG APP=api\nCOPY . /app\n");
}

#[test]
fn gitignore_gets_only_the_missing_lines() {
    let project = python_project();
    let output = run_ok(&mut project.command(&["init"]));
    assert!(stderr(&output).contains("wheelhouse.tgz.sha256"), "{}", stderr(&output));
    assert!(!project.root().join(".gitignore").exists(), "printed, not written");

    project.write(".gitignore", "target/\n/wheelhouse/\n.wheelhouse.*");
    run_ok(&mut project.command(&["init", "--force", "--gitignore"]));
    let text = fs_err::read_to_string(project.root().join(".gitignore")).unwrap();
    assert_eq!(
        text,
        "target/\n/wheelhouse/\n.wheelhouse.*\n# wheelgap: the wheelhouse, its archive and their state files\nwheelhouse.tgz\nwheelhouse.tgz.sha256\n.wheelhouse.tgz.*\n"
    );
    run_ok(&mut project.command(&["init", "--force", "--gitignore"]));
    assert_eq!(fs_err::read_to_string(project.root().join(".gitignore")).unwrap(), text);
}

#[test]
fn dockerfile_markers_are_what_dockerfiles_fills() {
    use std::os::unix::fs::PermissionsExt;

    let project = python_project();
    let api = project.root().join("dockerfiles/api.Dockerfile");
    fs_err::set_permissions(&api, std::fs::Permissions::from_mode(0o640)).unwrap();
    let output = run_ok(&mut project.command(&["init", "--dockerfile-markers"]));
    assert!(stderr(&output).contains("hint: wheelgap dockerfiles"), "{}", stderr(&output));
    let marked = fs_err::read_to_string(&api).unwrap();
    assert!(marked.starts_with("# >>> xtask wheelhouse-stage: generated by `wheelgap dockerfiles`"), "{marked}");
    assert!(marked.contains("ARG APP=api\n# >>> xtask install:"), "{marked}");
    assert_eq!(fs_err::metadata(&api).unwrap().permissions().mode() & 0o777, 0o640);

    run_fails(&mut project.command(&["dockerfiles", "--check"]));
    run_ok(&mut project.command(&["dockerfiles"]));
    run_ok(&mut project.command(&["dockerfiles", "--check"]));
    let filled = fs_err::read_to_string(&api).unwrap();
    assert!(filled.contains("FROM scratch AS wheelhouse"), "{filled}");
    assert!(filled.contains("COPY requirements.txt /tmp/requirements.txt"), "{filled}");

    // Markers already there are left alone.
    run_ok(&mut project.command(&["init", "--force", "--dockerfile-markers"]));
    assert_eq!(fs_err::read_to_string(&api).unwrap(), filled);
}

#[test]
fn without_compose_the_usual_dockerfiles_are_read() {
    let project = Project::new();
    project.write("requirements/prod.txt", "purelib\n");
    project.write("pyproject.toml", "[project]\nname = \"x\"\n");
    project.write("Dockerfile", "FROM python:3.13-alpine\n");
    let found = json(&project);
    assert_eq!(found["compose_file"], serde_json::Value::Null);
    assert_eq!(found["pyproject"], "pyproject.toml");
    assert_eq!(found["services"][0]["dockerfile"], "Dockerfile");
    assert_eq!(found["inferred"]["libc"], "musl_1_2");
    assert_eq!(found["inferred"]["platforms"], serde_json::Value::Null);
    run_ok(&mut project.command(&["init"]));
    let text = fs_err::read_to_string(project.root().join("wheelhouse.toml")).unwrap();
    assert!(text.contains("requirements = [\"requirements/prod.txt\"]\n"), "{text}");
    assert!(text.contains("libc = \"musl_1_2\"\n"), "{text}");
    assert!(text.contains("default is the host's"), "{text}");
}

#[test]
fn create_warns_when_targets_and_dockerfiles_disagree_on_python() {
    // Without init's settings, the targets come from the flags (or the host), not the Dockerfiles.
    let project = python_project();
    let output = project.create_from_file_index(&["--platform", "linux/amd64", "--python", "3.10"]);
    let text = stderr(&output);
    assert!(
        text.contains("warning: service `api` builds on python:3.12-slim (Python 3.12), and no target has Python 3.12 (targets: 3.10)"),
        "{text}"
    );
    assert!(text.contains("warning: the targets have Python 3.10, which no service's Dockerfile uses"), "{text}");
    // With the settings init writes, nothing to say.
    run_ok(&mut project.command(&["init"]));
    let output = project.create_from_file_index(&[]);
    assert!(!stderr(&output).contains("warning:"), "{}", stderr(&output));
}
