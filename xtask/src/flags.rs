//! The whole command line: one `///` line per subcommand, one struct of flags per command.

pub mod audit;
pub mod diff;
mod examples;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
pub use examples::examples;
use xtask::model::digest::Algorithm;

#[derive(Debug, Parser)]
#[command(name = "wheelgap", version, about = "Offline, reproducible Python wheelhouses for container builds")]
pub struct Xtask {
    /// The project root (default: the nearest ancestor holding wheelhouse.toml, else the cargo
    /// workspace root when run as `cargo xtask`, else the current directory)
    #[arg(short = 'C', long = "project-dir", global = true, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// Print only errors and warnings
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print each command run (pip, the container engine, gpg), credentials redacted
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Colour `error:`, `warning:` and `hint:`: auto (on a terminal, unless NO_COLOR is set), always, never
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download every requirements file's wheels for every target into the wheelhouse, with a manifest
    CreateWheelhouse(CreateWheelhouse),
    /// Pack the wheelhouse into a reproducible wheelhouse.tgz (and its .sha256) for the air gap
    PackWheelhouse(PackWheelhouse),
    /// Check every byte of a wheelhouse or archive against its manifest, and installability offline
    VerifyWheelhouse(VerifyWheelhouse),
    /// Extract an archive safely, verify it, and swap it in as the wheelhouse
    UnpackWheelhouse(UnpackWheelhouse),
    /// Pack this tool's sources with its vendored crates, to build it with no network
    Dist(Dist),
    /// Write (or --check) the generated wheelhouse fragment in each service's Dockerfile
    Dockerfiles(Dockerfiles),
    /// Build the compose file's images from the wheelhouse, with no network
    BuildOffline(BuildImages),
    /// Build the compose file's images from the package index
    BuildOnline(BuildImages),
    /// Write a hash-locked requirements file beside each requirements file, from the wheelhouse
    Lock(Lock),
    /// Print the hashes of the files of exact pins for the configured targets
    Hashes(Hashes),
    /// Write a CycloneDX 1.6 SBOM of the wheelhouse
    Sbom(Sbom),
    /// Match the wheelhouse against an OSV advisory database carried in (a directory or .zip)
    Audit(audit::Audit),
    /// Write a static PEP 503/691 index of the wheelhouse, with PEP 658 metadata, for any web server
    Index(Index),
    /// Serve the verified wheelhouse (or archive) read-only as a PEP 503/691 index over HTTP
    Serve(Serve),
    /// Sign manifest.json (GnuPG or SSH): a detached signature the archive carries
    Sign(Sign),
    /// Put the packed wheelhouse into a Kubernetes ConfigMap or Secret, or a PVC and loader Pod
    Bundle(Bundle),
    /// Print the POSIX sh script an init container runs to install from the wheelhouse
    InstallScript(InstallScript),
    /// What the wheelhouse holds, and whether it, its locks, archive, signature and SBOM are current
    Status(Status),
    /// What changed between two wheelhouses (manifests, directories or archives): packages per target, files, bytes
    Diff(diff::Diff),
    /// Write a commented wheelhouse.toml from what the project holds: requirements, compose, Dockerfiles
    Init(Init),
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell)
    Completions(Completions),
}

impl Command {
    /// The exit status of a failed run: 1, or 2 for the commands whose 1 means an answer ("they
    /// differ", "found something"), as `diff` and `grep` do.
    pub fn trouble_exit_code(&self) -> u8 {
        match self {
            Command::Diff(_) | Command::Audit(_) => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, Args)]
pub struct Index {
    /// Write the index as a tree of its own in DIR, the files copied (default: inside the
    /// wheelhouse, pages under `simple/`, where pack carries it); replaced only if this tool wrote it
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Change nothing: fail, naming the files, when the index is stale or missing
    #[arg(long)]
    pub check: bool,
    /// The wheelhouse (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
    /// Print the index's path, counts and state as JSON on stdout (and nothing else there)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct Serve {
    /// The wheelhouse directory to serve (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR", conflicts_with = "archive")]
    pub wheelhouse: Option<PathBuf>,
    /// Serve an archive made by pack-wheelhouse: verified and extracted to a private temporary
    /// directory, never beside it
    #[arg(long, value_name = "FILE")]
    pub archive: Option<PathBuf>,
    /// The address to listen on (port 0: any free port, named in the `listening` log line)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub bind: std::net::SocketAddr,
    /// Connections served at once; past them 64 more get a 503 with Retry-After (and /healthz
    /// its `ok`), the rest are closed
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (also the keep-alive idle limit)
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub header_timeout: u64,
    /// Seconds a connection may stay open, whatever it is doing
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub connection_timeout: u64,
    /// Seconds open requests may take to finish after SIGTERM or SIGINT
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub grace: u64,
    /// MiB of files held in memory (the rest is read from disk for each request, its size, time
    /// and inode checked, a whole file hashed as it is sent)
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub memory: u64,
    /// Worker threads (default: the CPUs)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Leave out the JSON line per request on stderr (start, stop and errors are still logged)
    #[arg(long)]
    pub no_access_log: bool,
    #[command(flatten)]
    pub signature: SignatureFlags,
}

#[derive(Debug, Args)]
pub struct Init {
    /// Replace an existing wheelhouse.toml
    #[arg(long)]
    pub force: bool,
    /// Append the lines for the tool's own files to .gitignore (default: print them)
    #[arg(long)]
    pub gitignore: bool,
    /// Insert the empty marker blocks into the Dockerfiles that lack them
    #[arg(long)]
    pub dockerfile_markers: bool,
    /// Print what would be written, and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print what was found and inferred as JSON on stdout (and nothing else there)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct Completions {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LockFormat {
    Requirements,
    Pylock,
}

#[derive(Debug, Args)]
pub struct Lock {
    /// Requirements files to lock (default: every one the wheelhouse was made for)
    #[arg(short = 'r', long = "requirement", value_name = "FILE")]
    pub requirements: Vec<PathBuf>,
    /// The hash algorithm of the `--hash` options
    #[arg(long, value_enum, default_value_t = Algorithm::Sha256)]
    pub algorithm: Algorithm,
    /// `requirements`: NAME.lock.txt with `--hash` options; `pylock`: a PEP 751 pylock.NAME.toml
    /// whose wheels point into the wheelhouse
    #[arg(long, value_enum, default_value_t = LockFormat::Requirements)]
    pub format: LockFormat,
    /// Change nothing: fail with a diff when a lock file is stale or missing
    #[arg(long)]
    pub check: bool,
    /// The wheelhouse (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
    /// Print each lock file and its state as JSON on stdout (and nothing else there)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct Dockerfiles {
    /// Change nothing: fail with a diff when a fragment is stale or missing
    #[arg(long)]
    pub check: bool,
    /// The compose file (default: compose/docker-compose.yml)
    #[arg(long, value_name = "FILE")]
    pub compose: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildImages {
    /// Write Prometheus metrics (textfile collector format) to this file
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Services to build (default: every service of the compose file that has a `build`)
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// The compose file (default: compose/docker-compose.yml)
    #[arg(long, value_name = "FILE")]
    pub compose: Option<PathBuf>,
    /// docker (buildx) or podman (default: CONTAINER_ENGINE, else the first that works)
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
    /// Platform to build for (repeatable; default: the service's, else the host's)
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platforms: Vec<String>,
    /// Replace the tag of every image (`example/api:latest` → `example/api:T`)
    #[arg(long, value_name = "T")]
    pub tag: Option<String>,
    /// Push each image after building it
    #[arg(long)]
    pub push: bool,
    /// The buildx builder (docker only)
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,
    /// A build secret, passed through: `id=pip.conf,src=FILE` or `id=netrc,src=FILE` (repeatable)
    #[arg(long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,
    /// Another build argument, KEY=VALUE (repeatable; OFFLINE is set by the command)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The wheelhouse (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR", conflicts_with = "from_index")]
    pub wheelhouse: Option<PathBuf>,
    /// build-offline: install from the index that `serve` runs at URL (its `/simple/`), with no
    /// wheelhouse in the build context; its manifest keys the layer cache
    #[arg(long, value_name = "URL")]
    pub from_index: Option<String>,
    /// Build every step again, not from the engine's layer cache
    #[arg(long)]
    pub no_cache: bool,
    /// Builds run at once (default: 2)
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the commands, one per line, shell-quoted, and run nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Write a `docker buildx bake` file (JSON) for the same builds, and build nothing
    #[arg(long, value_name = "FILE")]
    pub emit_bake: Option<PathBuf>,
    /// Print the result as JSON on stdout (and nothing else there)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PackWheelhouse {
    /// Write Prometheus metrics (textfile collector format) to this file
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// The wheelhouse to pack (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
    /// The archive to write (default: `wheelhouse.tgz` beside the wheelhouse, or with --since
    /// `wheelhouse.delta.tgz`)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write a delta: only the files BASE (an archive, manifest or wheelhouse) lacks, plus the
    /// manifest, SHA256SUMS, signatures and SBOM; unpack-wheelhouse applies it over that base
    #[arg(long, value_name = "BASE")]
    pub since: Option<PathBuf>,
    /// gzip level, 0 (stored: wheels are compressed already) to 9 (default: 0)
    #[arg(long, value_name = "0-9", value_parser = clap::value_parser!(u32).range(0..=9))]
    pub level: Option<u32>,
    /// Print the result as JSON on stdout (and nothing else there)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyWheelhouse {
    /// Write Prometheus metrics (textfile collector format) to this file
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Accept a wheelhouse made for other requirements files or targets than this project's
    #[arg(long)]
    pub accept_foreign: bool,
    /// The wheelhouse directory to verify (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR", conflicts_with = "archive")]
    pub wheelhouse: Option<PathBuf>,
    /// Verify a packed archive in one streaming pass instead (and its .sha256 sidecar)
    #[arg(long, value_name = "FILE")]
    pub archive: Option<PathBuf>,
    /// For a delta archive: the wheelhouse it applies to, checked to be its base and to hold the
    /// files the delta leaves out
    #[arg(long, value_name = "DIR", requires = "archive")]
    pub base: Option<PathBuf>,
    /// Requirements files to prove installable (default: those the manifest records)
    #[arg(short = 'r', long = "requirement", value_name = "FILE")]
    pub requirements: Vec<PathBuf>,
    /// Check the bytes only; do not run pip
    #[arg(long)]
    pub no_install_check: bool,
    #[command(flatten)]
    pub signature: SignatureFlags,
    /// The interpreter that runs pip for the install check (default: python3 on PATH)
    #[arg(long = "python-interpreter", value_name = "PATH")]
    pub python: Option<String>,
    /// pip calls or file hashes run at once (default: CPUs)
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the report as JSON on stdout (and nothing else there)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnpackWheelhouse {
    /// The archive made by pack-wheelhouse: a full one, or a delta (--since) whose base must be
    /// the wheelhouse it replaces
    #[arg(value_name = "FILE")]
    pub archive: PathBuf,
    /// Accept a wheelhouse made for other requirements files or targets than this project's
    #[arg(long)]
    pub accept_foreign: bool,
    /// Where the wheelhouse goes (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
    #[command(flatten)]
    pub signature: SignatureFlags,
}

#[derive(Debug, Args)]
pub struct Dist {
    /// The archive to write (default: `wheelgap-dist.tgz` in the project root)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CreateWheelhouse {
    /// Write Prometheus metrics (textfile collector format) to this file
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// A requirements file, pyproject.toml, uv.lock or pylock.toml (repeatable; default: requirements*.txt and requirements/*.txt)
    #[arg(short = 'r', long = "requirement", value_name = "FILE")]
    pub requirements: Vec<PathBuf>,
    /// An extra of a pyproject.toml or uv.lock input to include (repeatable)
    #[arg(long = "extra", value_name = "NAME")]
    pub extras: Vec<String>,
    /// A dependency group (PEP 735) of a pyproject.toml or uv.lock input to include (repeatable)
    #[arg(long = "group", value_name = "NAME")]
    pub groups: Vec<String>,
    /// Output directory (default: `wheelhouse` in the project root)
    #[arg(long, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
    #[command(flatten)]
    pub targets: TargetFlags,
    #[command(flatten)]
    pub index: IndexFlags,
    /// Do not fetch pip, setuptools and wheel
    #[arg(long)]
    pub no_build_tools: bool,
    /// Build pure-Python wheels from sdists when a package has no wheel
    #[arg(long)]
    pub build_sdists: bool,
    /// Resolve everything again even when nothing changed
    #[arg(long)]
    pub refresh: bool,
    /// On an unchanged re-run, check every file's sha256, not only its size
    #[arg(long)]
    pub full_check: bool,
    /// CPU-bound work at once: hashing, sdist builds, pip downloads of the fallback (default: CPUs)
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Resolutions at once, one per requirements file and target; they wait on the index (default: 8 x CPUs, at most 16)
    #[arg(long, value_name = "N")]
    pub resolve_jobs: Option<usize>,
    /// File transfers at once (default: 16)
    #[arg(long, value_name = "N")]
    pub downloads: Option<usize>,
    /// What resolves each requirements file for each target (default: pip)
    #[arg(long, value_enum, value_name = "TOOL")]
    pub resolver: Option<xtask::model::resolution::Resolver>,
    /// Print the result as JSON on stdout (and nothing else there)
    #[arg(long)]
    pub json: bool,
}

/// The targets: platforms x Python versions, libc floor (shared by the commands that resolve).
#[derive(Debug, Args)]
pub struct TargetFlags {
    /// Target container platform, as docker names it (repeatable; default: the host's)
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platforms: Vec<String>,
    /// Target Python MAJOR.MINOR (repeatable; default: the version of the Python running pip)
    #[arg(long = "python", value_name = "X.Y")]
    pub pythons: Vec<String>,
    /// The full version markers see for that MAJOR.MINOR (repeatable; default X.Y.0)
    #[arg(long = "python-full-version", value_name = "X.Y.Z")]
    pub python_full_versions: Vec<String>,
    /// The targets' C library floor: glibc_2_28 (default), glibc_2_17, musl_1_2, ...
    #[arg(long, value_name = "LIBC")]
    pub libc: Option<String>,
    /// The interpreter that runs pip (default: python3 on PATH)
    #[arg(long = "python-interpreter", value_name = "PATH")]
    pub python: Option<String>,
}

/// Where pip looks (shared by the commands that download).
#[derive(Debug, Args)]
pub struct IndexFlags {
    /// Base URL of the package index (default: pip's own configuration)
    #[arg(long, value_name = "URL")]
    pub index_url: Option<String>,
    /// Another index to search (repeatable)
    #[arg(long = "extra-index-url", value_name = "URL")]
    pub extra_index_urls: Vec<String>,
    /// Use no index at all: only --find-links (the air-gapped way to refresh from local files)
    #[arg(long)]
    pub no_index: bool,
    /// A directory or page of distributions to search (repeatable)
    #[arg(long = "find-links", value_name = "DIR")]
    pub find_links: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashesFormat {
    Requirements,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct Hashes {
    /// Exact pins, NAME==VERSION
    #[arg(value_name = "NAME==VERSION", required = true)]
    pub pins: Vec<String>,
    /// The hash algorithm
    #[arg(long, value_enum, default_value_t = Algorithm::Sha256)]
    pub algorithm: Algorithm,
    /// requirements (`--hash` lines), or json / yaml (a `packagesWithHashes` list)
    #[arg(long, value_enum, default_value_t = HashesFormat::Requirements)]
    pub format: HashesFormat,
    #[command(flatten)]
    pub targets: TargetFlags,
    #[command(flatten)]
    pub index: IndexFlags,
}

#[derive(Debug, Args)]
pub struct Sign {
    /// Sign with this GnuPG key (`gpg --detach-sign --armor`; GNUPGHOME is honoured)
    #[arg(long, value_name = "KEYID", conflicts_with = "ssh_key", required_unless_present = "ssh_key")]
    pub gpg: Option<String>,
    /// Sign with this SSH private key (`ssh-keygen -Y sign`)
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// The wheelhouse (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Bundle {
    /// A ConfigMap of this name, the archive under `binaryData`
    #[arg(long, value_name = "NAME", group = "kind")]
    pub configmap: Option<String>,
    /// A Secret of this name, the archive under `data` (base64)
    #[arg(long, value_name = "NAME", group = "kind")]
    pub secret: Option<String>,
    /// A PersistentVolumeClaim of this name and a loader Pod, for archives over the object limit
    #[arg(long, value_name = "NAME", group = "kind")]
    pub pvc: Option<String>,
    /// A Deployment, Service and NetworkPolicy of this name that run `serve` on the claim that
    /// --pvc made and filled (an index for a fleet of builders and pods)
    #[arg(long, value_name = "NAME", group = "kind", requires = "image")]
    pub serve: Option<String>,
    /// With --serve: the image that holds the tool (`wheelgap` on its PATH; docs/kubernetes.md)
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// With --serve: the claim holding the archive (default: the --serve NAME)
    #[arg(long, value_name = "NAME")]
    pub claim: Option<String>,
    /// With --serve: the label, KEY=VALUE, of the pods the NetworkPolicy admits (default:
    /// wheelgap.io/index-client=true)
    #[arg(long, value_name = "KEY=VALUE")]
    pub allow: Option<String>,
    /// With --serve: another argument for `serve` in the pod (repeatable), such as signature flags
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
    /// The namespace of the objects
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The packed archive (default: `wheelhouse.tgz` beside the wheelhouse)
    #[arg(long, value_name = "FILE")]
    pub archive: Option<PathBuf>,
    /// Where to write the YAML (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print what was bundled as JSON on stdout (needs --output: stdout otherwise carries the YAML)
    #[arg(long, requires = "output")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InstallScript {
    /// Install with --require-hashes from this lock file (a path inside the container)
    #[arg(long, value_name = "FILE")]
    pub lock: Option<String>,
    /// Where the script installs (a `--target` directory; default: the active environment)
    #[arg(long, value_name = "DIR")]
    pub target: Option<String>,
    /// Install from the index that `serve` runs at URL (its `/simple/`), binary files only,
    /// instead of from a bundle
    #[arg(long, value_name = "URL")]
    pub index_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct Status {
    /// The wheelhouse (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
    /// Print the status as JSON on stdout (and nothing else there)
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when anything is stale or missing (for CI): inputs, locks, archive, SBOM
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct Sbom {
    /// Where to write the SBOM (default: sbom.cdx.json in the wheelhouse, a reserved name)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The wheelhouse (default: from wheelhouse.toml, else `wheelhouse`)
    #[arg(long, value_name = "DIR")]
    pub wheelhouse: Option<PathBuf>,
    /// Print where the SBOM went and what it counts as JSON on stdout (and nothing else there)
    #[arg(long)]
    pub json: bool,
}

/// How a signature of manifest.json is required and checked (verify and unpack).
#[derive(Debug, Args)]
pub struct SignatureFlags {
    /// Require a signature of manifest.json (implied by --keyring and --allowed-signers)
    #[arg(long = "signature")]
    pub required: bool,
    /// GnuPG public keys to check a `manifest.json.asc` against (with gpgv)
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// SSH `allowed_signers` file to check a `manifest.json.sshsig` against
    #[arg(long, value_name = "FILE", requires = "identity")]
    pub allowed_signers: Option<PathBuf>,
    /// The signer identity in the allowed_signers file
    #[arg(long, value_name = "ID")]
    pub identity: Option<String>,
}
