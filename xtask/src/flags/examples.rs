//! The examples under each subcommand's `--help`.

/// Two or three examples under each subcommand's `--help`, spelled with the command the user ran.
pub fn examples(program: &str, subcommand: &str) -> Option<String> {
    let lines: &[&str] = match subcommand {
        "create-wheelhouse" => &[
            "create-wheelhouse",
            "create-wheelhouse --platform linux/amd64 --platform linux/arm64 --python 3.12",
            "create-wheelhouse -r requirements-api.txt --wheelhouse out/wheels --json",
        ],
        "serve" => {
            &["serve --bind 0.0.0.0:8080", "serve --archive wheelhouse.tgz --keyring team.gpg --bind 127.0.0.1:0"]
        }
        "pack-wheelhouse" => &[
            "pack-wheelhouse",
            "pack-wheelhouse --output /media/usb/wheelhouse.tgz",
            "pack-wheelhouse --since last-shipped/manifest.json --output /media/usb/wheelhouse.delta.tgz",
        ],
        "diff" => &[
            "diff last-shipped/manifest.json",
            "diff wheelhouse.tgz wheelhouse --format markdown > wheelhouse-diff.md",
            "diff old/ new/ --json",
        ],
        "verify-wheelhouse" => &[
            "verify-wheelhouse",
            "verify-wheelhouse --archive wheelhouse.tgz",
            "verify-wheelhouse --archive wheelhouse.tgz --keyring team.gpg --json",
            "verify-wheelhouse --archive wheelhouse.delta.tgz --base wheelhouse",
        ],
        "unpack-wheelhouse" => &[
            "unpack-wheelhouse wheelhouse.tgz",
            "unpack-wheelhouse wheelhouse.tgz --keyring team.gpg",
            "unpack-wheelhouse wheelhouse.delta.tgz",
        ],
        "build-offline" => &["build-offline", "build-offline api --platform linux/arm64", "build-offline --dry-run"],
        "build-online" => &["build-online", "build-online --secret id=pip.conf,src=$HOME/.config/pip/pip.conf"],
        "dockerfiles" => &["dockerfiles", "dockerfiles --check"],
        "lock" => &["lock", "lock --check", "lock --algorithm sha512"],
        "hashes" => &["hashes flask==3.1.3", "hashes flask==3.1.3 --format yaml --platform linux/arm64"],
        "sbom" => &["sbom", "sbom --output sbom.cdx.json"],
        "audit" => &["audit --database osv-pypi.zip", "audit --format sarif --output audit.sarif --ignore GHSA-xxxx"],
        "sign" => &["sign --gpg 0xDEADBEEF", "sign --ssh-key ~/.ssh/id_ed25519"],
        "bundle" => &["bundle --configmap wheelhouse -o bundle.yaml", "bundle --pvc wheelhouse --namespace build"],
        "install-script" => &["install-script > install.sh", "install-script --lock /app/requirements.lock.txt"],
        "status" => &["status", "status --check", "status --json"],
        "dist" => &["dist", "dist --output /media/usb/tool.tgz"],
        "init" => &["init", "init --dry-run --json", "init --gitignore --dockerfile-markers"],
        "completions" => &["completions bash > ~/.local/share/bash-completion/completions/wheelgap", "completions zsh"],
        _ => return None,
    };
    let mut text = String::from("Examples:\n");
    for line in lines {
        text.push_str(&format!("  {program} {line}\n"));
    }
    Some(text)
}
