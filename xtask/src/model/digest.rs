//! Digests as lowercase hex, the hash algorithms a lock file may use, and the one-line checksum
//! files (`.sha256` sidecars) `sha256sum --check` reads.

use sha2::{Digest, Sha256, Sha384, Sha512};

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The algorithm of pip's `--hash` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The algorithm a lock file's `--hash` options use (sha256 when it names none).
    pub fn of_lock_text(text: &str) -> Algorithm {
        if text.contains("--hash=sha512:") {
            Algorithm::Sha512
        } else if text.contains("--hash=sha384:") {
            Algorithm::Sha384
        } else {
            Algorithm::Sha256
        }
    }

    /// A hasher for this algorithm, fed in chunks.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
}

/// A running digest of one [`Algorithm`].
pub enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(hasher) => hasher.update(bytes),
            Hasher::Sha384(hasher) => hasher.update(bytes),
            Hasher::Sha512(hasher) => hasher.update(bytes),
        }
    }

    pub fn finish_hex(self) -> String {
        match self {
            Hasher::Sha256(hasher) => hex(&hasher.finalize()),
            Hasher::Sha384(hasher) => hex(&hasher.finalize()),
            Hasher::Sha512(hasher) => hex(&hasher.finalize()),
        }
    }
}

/// The line `sha256sum --check` reads for `file_name`: `<hex><space><space><name>`.
pub fn sidecar_line(sha256: &str, file_name: &str) -> String {
    format!("{sha256}  {file_name}\n")
}

/// The digest a `.sha256` sidecar gives for `file_name`.
pub fn parse_sidecar(text: &str, file_name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (digest, name) = line.split_once(char::is_whitespace)?;
        let name = name.trim_start().trim_start_matches('*');
        (name == file_name || name.rsplit('/').next() == Some(file_name)).then(|| digest.to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_gives_the_digest_of_the_standard_tools() {
        // `printf abc | sha256sum` (and sha384sum, sha512sum).
        let check = |algorithm: Algorithm, expected_prefix: &str| {
            let mut hasher = algorithm.hasher();
            hasher.update(b"a");
            hasher.update(b"bc");
            assert!(hasher.finish_hex().starts_with(expected_prefix), "{algorithm:?}");
        };
        check(Algorithm::Sha256, "ba7816bf8f01cfea");
        check(Algorithm::Sha384, "cb00753f45a35e8b");
        check(Algorithm::Sha512, "ddaf35a193617aba");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn sidecars_are_what_sha256sum_reads() {
        assert_eq!(sidecar_line("ab", "wheelhouse.tgz"), "ab  wheelhouse.tgz\n");
        assert_eq!(parse_sidecar("AB  wheelhouse.tgz\n", "wheelhouse.tgz").as_deref(), Some("ab"));
        assert_eq!(parse_sidecar("ab *dir/wheelhouse.tgz\n", "wheelhouse.tgz").as_deref(), Some("ab"));
        assert_eq!(parse_sidecar("ab  other.tgz\n", "wheelhouse.tgz"), None);
    }

    #[test]
    fn a_lock_file_says_its_algorithm() {
        assert_eq!(Algorithm::of_lock_text("x \\\n    --hash=sha384:ab"), Algorithm::Sha384);
        assert_eq!(Algorithm::of_lock_text("x \\\n    --hash=sha512:ab"), Algorithm::Sha512);
        assert_eq!(Algorithm::of_lock_text("# no hashes"), Algorithm::Sha256);
    }
}
