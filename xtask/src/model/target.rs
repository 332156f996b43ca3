//! Build targets (platform x Python x libc): their pip tags and their PEP 508 marker environment.
//!
//! pip's `--platform` neither expands PEP 600 tags nor changes the marker environment, so both are
//! computed here, once, for every target.

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("unknown platform `{0}`")]
    UnknownPlatform(String),
    #[error("invalid Python version `{0}`: expected MAJOR.MINOR such as 3.11")]
    InvalidPython(String),
    #[error("invalid Python full version `{0}`: expected MAJOR.MINOR.PATCH such as 3.11.9")]
    InvalidFullVersion(String),
    #[error("invalid libc `{0}`: expected glibc_MAJOR_MINOR (such as glibc_2_28) or musl_MAJOR_MINOR")]
    InvalidLibc(String),
    #[error("glibc {major}.{minor} is older than the first manylinux for {arch} (2.{first})")]
    LibcTooOld { major: u32, minor: u32, arch: &'static str, first: u32 },
    #[error("glibc {major}.{minor} is not a glibc that manylinux tags know: they are glibc 2.N")]
    LibcNotTwo { major: u32, minor: u32 },
    #[error("the full version {full} is given for Python {short}: it must start with {short}")]
    FullVersionOfAnotherPython { full: String, short: String },
    #[error("no targets: give at least one --platform and one --python")]
    NoTargets,
}

/// `3.11.9` (or `3.11`) → `3.11`: the MAJOR.MINOR of a version as a person or an image writes it.
pub fn major_minor(version: &str) -> String {
    version.trim().split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The cross product of platforms and Python versions, with the libc floor and full versions,
/// in the order given and without repeats.
pub fn cross_product(
    platforms: &[String],
    pythons: &[String],
    libc: Option<&str>,
    full_versions: &BTreeMap<String, String>,
) -> Result<Vec<Target>, TargetError> {
    let libc = match libc {
        Some(text) => text.parse()?,
        None => Libc::DEFAULT,
    };
    let mut targets = Vec::new();
    for platform in platforms {
        let platform: Platform = platform.parse()?;
        for python in pythons {
            let mut version = PythonVersion::parse(python)?;
            if let Some(full) = full_versions.get(&version.short()) {
                version = version.with_full_version(full)?;
            }
            let target = Target { platform, python: version, libc };
            target.platform_tags()?;
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    if targets.is_empty() {
        return Err(TargetError::NoTargets);
    }
    Ok(targets)
}

/// A container platform as docker spells it (`linux/amd64`), with the CPU names pip and markers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    Amd64,
    Arm64,
    Ppc64le,
    S390x,
}

impl Platform {
    pub const ALL: [Platform; 4] = [Self::Amd64, Self::Arm64, Self::Ppc64le, Self::S390x];

    pub fn docker_name(self) -> &'static str {
        match self {
            Self::Amd64 => "linux/amd64",
            Self::Arm64 => "linux/arm64",
            Self::Ppc64le => "linux/ppc64le",
            Self::S390x => "linux/s390x",
        }
    }

    /// `platform.machine()` inside a container of this platform, and the wheel tag's arch part.
    pub fn machine(self) -> &'static str {
        match self {
            Self::Amd64 => "x86_64",
            Self::Arm64 => "aarch64",
            Self::Ppc64le => "ppc64le",
            Self::S390x => "s390x",
        }
    }

    /// The first glibc minor a manylinux tag exists for: manylinux1 (2.5) on x86_64, manylinux2014
    /// (2.17) for the architectures that came later.
    fn first_manylinux_minor(self) -> u32 {
        match self {
            Self::Amd64 => 5,
            Self::Arm64 | Self::Ppc64le | Self::S390x => 17,
        }
    }

    pub fn host() -> Option<Platform> {
        Self::ALL.into_iter().find(|platform| platform.machine() == std::env::consts::ARCH).or(
            match std::env::consts::ARCH {
                "powerpc64" => Some(Self::Ppc64le),
                _ => None,
            },
        )
    }
}

impl FromStr for Platform {
    type Err = TargetError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let name = text.trim().to_ascii_lowercase();
        let name = name.strip_prefix("linux/").unwrap_or(&name);
        match name {
            "amd64" | "x86_64" => Ok(Self::Amd64),
            "arm64" | "arm64/v8" | "aarch64" => Ok(Self::Arm64),
            "ppc64le" => Ok(Self::Ppc64le),
            "s390x" => Ok(Self::S390x),
            _ => Err(TargetError::UnknownPlatform(text.to_owned())),
        }
    }
}

/// The C library the image's Python links against; its version is the floor of the tags accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Libc {
    Glibc { major: u32, minor: u32 },
    Musl { major: u32, minor: u32 },
}

impl Libc {
    /// manylinux_2_28: what Debian bookworm (2.36), RHEL 8 (2.28) and newer all satisfy.
    pub const DEFAULT: Libc = Libc::Glibc { major: 2, minor: 28 };
}

impl fmt::Display for Libc {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Glibc { major, minor } => write!(formatter, "glibc_{major}_{minor}"),
            Self::Musl { major, minor } => write!(formatter, "musl_{major}_{minor}"),
        }
    }
}

impl FromStr for Libc {
    type Err = TargetError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || TargetError::InvalidLibc(text.to_owned());
        let normalized = text.trim().to_ascii_lowercase().replace(['.', '-'], "_");
        let (kind, version) = normalized.split_once('_').ok_or_else(invalid)?;
        let (major, minor) = version.split_once('_').ok_or_else(invalid)?;
        let major = major.parse().map_err(|_| invalid())?;
        let minor = minor.parse().map_err(|_| invalid())?;
        match kind {
            "glibc" | "manylinux" => Ok(Self::Glibc { major, minor }),
            "musl" | "musllinux" => Ok(Self::Musl { major, minor }),
            _ => Err(invalid()),
        }
    }
}

/// A CPython `MAJOR.MINOR`, with the full version markers see.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PythonVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl PythonVersion {
    pub fn parse(text: &str) -> Result<PythonVersion, TargetError> {
        let invalid = || TargetError::InvalidPython(text.to_owned());
        let mut parts = text.trim().split('.');
        let major = parts.next().and_then(|part| part.parse().ok()).ok_or_else(invalid)?;
        let minor = parts.next().and_then(|part| part.parse().ok()).ok_or_else(invalid)?;
        if parts.next().is_some() || major != 3 {
            return Err(invalid());
        }
        Ok(PythonVersion { major, minor, patch: 0 })
    }

    /// Sets the patch level from a full version (`3.11.9`) that must match MAJOR.MINOR.
    pub fn with_full_version(mut self, full: &str) -> Result<PythonVersion, TargetError> {
        let invalid = || TargetError::InvalidFullVersion(full.to_owned());
        let parts: Vec<&str> = full.trim().split('.').collect();
        let [major, minor, patch] = parts.as_slice() else { return Err(invalid()) };
        if major.parse() != Ok(self.major) || minor.parse() != Ok(self.minor) {
            if major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok() && patch.parse::<u32>().is_ok() {
                return Err(TargetError::FullVersionOfAnotherPython {
                    full: full.trim().to_owned(),
                    short: self.short(),
                });
            }
            return Err(invalid());
        }
        self.patch = patch.parse().map_err(|_| invalid())?;
        Ok(self)
    }

    pub fn short(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    pub fn full(&self) -> String {
        format!("{}.{}.{}", self.major, self.minor, self.patch)
    }

    /// `cp311`: both the `--abi` and the interpreter tag.
    pub fn cpython_tag(&self) -> String {
        format!("cp{}{}", self.major, self.minor)
    }
}

/// One image flavour the wheelhouse must serve.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub platform: Platform,
    pub python: PythonVersion,
    pub libc: Libc,
}

impl Target {
    /// A stable key, used in the manifest and in file names: `linux-amd64-cp311`, with the libc
    /// appended only when it is not the default so that common ids stay short.
    pub fn id(&self) -> String {
        let platform = self.platform.docker_name().replace('/', "-");
        let base = format!("{platform}-{}", self.python.cpython_tag());
        if self.libc == Libc::DEFAULT {
            base
        } else {
            format!("{base}-{}", self.libc)
        }
    }

    /// Every platform tag a wheel may carry to run on this target, newest first, in both PEP 600
    /// and legacy spellings: pip expands neither.
    pub fn platform_tags(&self) -> Result<Vec<String>, TargetError> {
        let machine = self.platform.machine();
        let mut tags = Vec::new();
        match self.libc {
            Libc::Glibc { major, minor } => {
                let first = self.platform.first_manylinux_minor();
                if major != 2 {
                    return Err(TargetError::LibcNotTwo { major, minor });
                }
                if minor < first {
                    return Err(TargetError::LibcTooOld { major, minor, arch: machine, first });
                }
                for glibc_minor in (first..=minor).rev() {
                    tags.push(format!("manylinux_2_{glibc_minor}_{machine}"));
                    let legacy = match glibc_minor {
                        17 => Some("manylinux2014"),
                        12 => Some("manylinux2010"),
                        5 => Some("manylinux1"),
                        _ => None,
                    };
                    if let Some(legacy) = legacy {
                        tags.push(format!("{legacy}_{machine}"));
                    }
                }
            }
            Libc::Musl { major, minor } => {
                for musl_minor in (0..=minor).rev() {
                    tags.push(format!("musllinux_{major}_{musl_minor}_{machine}"));
                }
            }
        }
        Ok(tags)
    }

    /// The PEP 508 marker environment of the target's interpreter. `platform_release` and
    /// `platform_version` describe the build host's kernel, which a container shares, so they
    /// are left to the interpreter running pip.
    pub fn marker_environment(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("implementation_name", "cpython".to_owned()),
            ("implementation_version", self.python.full()),
            ("os_name", "posix".to_owned()),
            ("platform_machine", self.platform.machine().to_owned()),
            ("platform_python_implementation", "CPython".to_owned()),
            ("platform_system", "Linux".to_owned()),
            ("python_full_version", self.python.full()),
            ("python_version", self.python.short()),
            ("sys_platform", "linux".to_owned()),
        ])
    }

    pub fn record(&self) -> Result<TargetRecord, TargetError> {
        Ok(TargetRecord {
            id: self.id(),
            platform: self.platform.docker_name().to_owned(),
            python_version: self.python.short(),
            python_full_version: self.python.full(),
            implementation: "cp".to_owned(),
            abi: self.python.cpython_tag(),
            libc: self.libc.to_string(),
            platform_tags: self.platform_tags()?,
            markers: self.marker_environment().into_iter().map(|(key, value)| (key.to_owned(), value)).collect(),
        })
    }
}

impl TargetRecord {
    /// `platform_machine` of the target's marker environment (`x86_64`, `aarch64`).
    pub fn machine(&self) -> &str {
        self.markers.get("platform_machine").map_or("", String::as_str)
    }

    /// The target a manifest recorded, to resolve for it again (verify's install check).
    pub fn target(&self) -> Result<Target, TargetError> {
        Ok(Target {
            platform: self.platform.parse()?,
            python: PythonVersion::parse(&self.python_version)?.with_full_version(&self.python_full_version)?,
            libc: self.libc.parse()?,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} python {}", self.platform.docker_name(), self.python.short())?;
        if self.libc != Libc::DEFAULT {
            write!(formatter, " {}", self.libc)?;
        }
        Ok(())
    }
}

/// A target as the manifest records it: everything pip was told about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRecord {
    pub id: String,
    pub platform: String,
    pub python_version: String,
    pub python_full_version: String,
    pub implementation: String,
    pub abi: String,
    pub libc: String,
    pub platform_tags: Vec<String>,
    pub markers: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libc_and_full_version_errors_say_what_is_wrong() {
        let glibc_9 = Target {
            platform: Platform::Amd64,
            python: PythonVersion::parse("3.11").unwrap(),
            libc: "glibc_9_99".parse().unwrap(),
        };
        assert_eq!(
            glibc_9.platform_tags().unwrap_err().to_string(),
            "glibc 9.99 is not a glibc that manylinux tags know: they are glibc 2.N"
        );
        let error = PythonVersion::parse("3.11").unwrap().with_full_version("3.12.1").unwrap_err().to_string();
        assert_eq!(error, "the full version 3.12.1 is given for Python 3.11: it must start with 3.11");
    }

    #[test]
    fn major_minor_of_any_version_text() {
        assert_eq!(major_minor("3.11.9"), "3.11");
        assert_eq!(major_minor("3.12"), "3.12");
        assert_eq!(major_minor(" 3.13.0rc1\n"), "3.13");
    }

    fn target(platform: &str, python: &str, libc: &str) -> Target {
        Target {
            platform: platform.parse().unwrap(),
            python: PythonVersion::parse(python).unwrap(),
            libc: libc.parse().unwrap(),
        }
    }

    fn check_tags(platform: &str, libc: &str, expected_first: &[&str], expected_last: &[&str]) {
        let tags = target(platform, "3.11", libc).platform_tags().unwrap();
        assert_eq!(&tags[..expected_first.len()], expected_first, "{tags:?}");
        assert_eq!(&tags[tags.len() - expected_last.len()..], expected_last, "{tags:?}");
        let unique: std::collections::BTreeSet<_> = tags.iter().collect();
        assert_eq!(unique.len(), tags.len(), "duplicate tags in {tags:?}");
    }

    #[test]
    fn manylinux_tags_span_first_to_floor_in_both_spellings() {
        check_tags(
            "linux/amd64",
            "glibc_2_28",
            &["manylinux_2_28_x86_64", "manylinux_2_27_x86_64"],
            &["manylinux_2_6_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64"],
        );
        check_tags(
            "linux/arm64",
            "glibc_2_28",
            &["manylinux_2_28_aarch64"],
            &["manylinux_2_17_aarch64", "manylinux2014_aarch64"],
        );
        let amd64 = target("linux/amd64", "3.11", "glibc_2_28").platform_tags().unwrap();
        assert!(amd64.contains(&"manylinux2014_x86_64".to_owned()));
        assert!(!amd64.contains(&"manylinux_2_29_x86_64".to_owned()));
        assert_eq!(amd64.len(), 24 + 3);
        let arm64 = target("linux/arm64", "3.12", "glibc_2_17").platform_tags().unwrap();
        assert_eq!(arm64, ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]);
    }

    #[test]
    fn musllinux_tags_count_down_to_zero() {
        check_tags(
            "linux/amd64",
            "musl_1_2",
            &["musllinux_1_2_x86_64"],
            &["musllinux_1_1_x86_64", "musllinux_1_0_x86_64"],
        );
    }

    #[test]
    fn glibc_older_than_the_first_manylinux_is_refused() {
        let error = target("linux/arm64", "3.11", "glibc_2_12").platform_tags().unwrap_err();
        assert_eq!(error.to_string(), "glibc 2.12 is older than the first manylinux for aarch64 (2.17)");
    }

    #[test]
    fn markers_describe_the_target_not_the_host() {
        let arm = target("linux/arm64", "3.12", "glibc_2_28");
        let markers = arm.marker_environment();
        assert_eq!(markers["platform_machine"], "aarch64");
        assert_eq!(markers["python_version"], "3.12");
        assert_eq!(markers["python_full_version"], "3.12.0");
        assert_eq!(markers["sys_platform"], "linux");
        assert_eq!(markers["platform_system"], "Linux");
        assert_eq!(markers["implementation_name"], "cpython");
        let patched = PythonVersion::parse("3.12").unwrap().with_full_version("3.12.7").unwrap();
        assert_eq!(patched.full(), "3.12.7");
        assert!(PythonVersion::parse("3.11").unwrap().with_full_version("3.12.1").is_err());
    }

    #[test]
    fn parsing_accepts_common_spellings_and_names_bad_input() {
        assert_eq!("amd64".parse(), Ok(Platform::Amd64));
        assert_eq!("linux/arm64/v8".parse(), Ok(Platform::Arm64));
        assert_eq!("manylinux_2_17".parse(), Ok(Libc::Glibc { major: 2, minor: 17 }));
        assert_eq!("musllinux_1_2".parse(), Ok(Libc::Musl { major: 1, minor: 2 }));
        assert_eq!("windows/amd64".parse::<Platform>().unwrap_err().to_string(), "unknown platform `windows/amd64`");
        assert!(PythonVersion::parse("3").is_err());
        assert!(PythonVersion::parse("2.7").is_err());
        assert!(PythonVersion::parse("3.11.2").is_err());
    }

    #[test]
    fn ids_are_short_for_the_default_libc() {
        assert_eq!(target("linux/amd64", "3.11", "glibc_2_28").id(), "linux-amd64-cp311");
        assert_eq!(target("linux/arm64", "3.12", "musl_1_2").id(), "linux-arm64-cp312-musl_1_2");
    }
}
