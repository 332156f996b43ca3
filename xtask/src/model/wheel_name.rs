//! Distribution file names (wheels and sdists) and PEP 503 name normalization.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a wheel or sdist file name")]
pub struct NotADistribution(pub String);

/// What a distribution's file name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributionName {
    /// PEP 503 normalized project name.
    pub name: String,
    pub version: String,
    /// `None` for an sdist.
    pub tags: Option<WheelTags>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelTags {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl WheelTags {
    /// A wheel every target can install: pure Python, no ABI, any platform (`py3-none-any`).
    pub fn is_pure(&self) -> bool {
        self.abi == "none" && self.platform == "any" && self.python.split('.').all(|tag| tag.starts_with("py"))
    }
}

impl DistributionName {
    pub fn parse(filename: &str) -> Result<DistributionName, NotADistribution> {
        let invalid = || NotADistribution(filename.to_owned());
        if filename.contains('/') || filename.starts_with('.') {
            return Err(invalid());
        }
        if let Some(stem) = filename.strip_suffix(".whl") {
            let parts: Vec<&str> = stem.split('-').collect();
            // name-version[-build]-python-abi-platform
            let (name, version, tags) = match parts.as_slice() {
                [name, version, python, abi, platform] | [name, version, _, python, abi, platform] => {
                    (name, version, (python, abi, platform))
                }
                _ => return Err(invalid()),
            };
            if name.is_empty() || version.is_empty() {
                return Err(invalid());
            }
            return Ok(DistributionName {
                name: normalize(name),
                version: (*version).to_owned(),
                tags: Some(WheelTags {
                    python: (*tags.0).to_owned(),
                    abi: (*tags.1).to_owned(),
                    platform: (*tags.2).to_owned(),
                }),
            });
        }
        let stem = filename.strip_suffix(".tar.gz").or_else(|| filename.strip_suffix(".zip")).ok_or_else(invalid)?;
        // The version is whatever follows the last dash: sdist names may contain dashes.
        let (name, version) = stem.rsplit_once('-').ok_or_else(invalid)?;
        if name.is_empty() || version.is_empty() {
            return Err(invalid());
        }
        Ok(DistributionName { name: normalize(name), version: version.to_owned(), tags: None })
    }
}

/// PEP 503: lowercase, with every run of `-`, `_` and `.` replaced by one `-`.
pub fn normalize(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut in_separator_run = false;
    for character in name.chars() {
        if matches!(character, '-' | '_' | '.') {
            if !in_separator_run {
                normalized.push('-');
            }
            in_separator_run = true;
        } else {
            normalized.push(character.to_ascii_lowercase());
            in_separator_run = false;
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(filename: &str, expected: Option<(&str, &str, Option<bool>)>) {
        let parsed = DistributionName::parse(filename).ok();
        let actual = parsed
            .as_ref()
            .map(|dist| (dist.name.as_str(), dist.version.as_str(), dist.tags.as_ref().map(WheelTags::is_pure)));
        assert_eq!(actual, expected, "{filename}");
    }

    #[test]
    fn parses_wheels_and_sdists() {
        check("requests-2.31.0-py3-none-any.whl", Some(("requests", "2.31.0", Some(true))));
        check("six-1.16.0-py2.py3-none-any.whl", Some(("six", "1.16.0", Some(true))));
        check(
            "MarkupSafe-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            Some(("markupsafe", "2.1.3", Some(false))),
        );
        check("foo_bar-1.0-1build-py3-none-any.whl", Some(("foo-bar", "1.0", Some(true))));
        check("x-1.0-cp311-abi3-any.whl", Some(("x", "1.0", Some(false))));
        check("zope.interface-6.0.tar.gz", Some(("zope-interface", "6.0", None)));
        check("python-dateutil-2.8.2.tar.gz", Some(("python-dateutil", "2.8.2", None)));
        check("manifest.json", None);
        check("SHA256SUMS", None);
        check("broken-py3-none-any.whl", None);
        check("../evil-1.0.tar.gz", None);
    }

    #[test]
    fn normalizes_names_like_pep_503() {
        assert_eq!(normalize("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(normalize("charset_normalizer"), "charset-normalizer");
    }
}
