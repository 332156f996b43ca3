//! Credential redaction for every URL the tool writes: manifest, logs, errors, JSON output.

/// Query parameters whose values are secrets in the index URLs seen in the wild (tokens of
/// artifact registries, signed URLs).
const SECRET_QUERY_KEYS: [&str; 8] = ["token", "access_token", "auth", "key", "password", "secret", "sig", "signature"];

const MASK: &str = "****";

/// `https://user:pass@host/simple?token=x` → `https://****@host/simple?token=****`.
/// Text that is not a URL with a scheme is returned unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => format!("{MASK}@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    format!("{scheme}{host}{}", redact_query(path_and_query))
}

fn redact_query(path_and_query: &str) -> String {
    let Some(question) = path_and_query.find('?') else { return path_and_query.to_owned() };
    let (path, query_and_fragment) = path_and_query.split_at(question + 1);
    let (query, fragment) = match query_and_fragment.find('#') {
        Some(hash) => query_and_fragment.split_at(hash),
        None => (query_and_fragment, ""),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}={MASK}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}{}{fragment}", pairs.join("&"))
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_QUERY_KEYS
        .iter()
        .any(|secret| key == *secret || key.ends_with(&format!("_{secret}")) || key.ends_with(&format!("-{secret}")))
}

/// Redacts every URL found in free text (pip's output, error chains) before it is shown.
pub fn redact_text(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        // Walk back over the scheme's letters to find where the URL starts.
        let start = rest[..scheme_end]
            .rfind(|character: char| !(character.is_ascii_alphanumeric() || "+.-".contains(character)))
            .map_or(0, |index| index + 1);
        let end = rest[scheme_end..]
            .find(|character: char| character.is_whitespace() || "'\"<>()[]{}".contains(character))
            .map_or(rest.len(), |index| scheme_end + index);
        output.push_str(&rest[..start]);
        output.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    output.push_str(rest);
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(redact_text(input), expected);
    }

    #[test]
    fn removes_user_info_and_secret_query_values() {
        check("https://user:s3cret@example.test/simple/", "https://****@example.test/simple/");
        check("https://token@example.test/simple", "https://****@example.test/simple");
        check("http://127.0.0.1:8080/simple/", "http://127.0.0.1:8080/simple/");
        check(
            "https://example.test/simple?token=abc&page=2#frag",
            "https://example.test/simple?token=****&page=2#frag",
        );
        check("https://example.test/f.whl?X-Amz-Signature=abc", "https://example.test/f.whl?X-Amz-Signature=****");
        check("https://example.test/f.whl?api_key=abc", "https://example.test/f.whl?api_key=****");
        check("file:///srv/index/simple/", "file:///srv/index/simple/");
    }

    #[test]
    fn finds_urls_inside_text() {
        check(
            "Looking in indexes: https://u:p@a.test/simple, (from 'git+https://x:y@b.test/r.git')",
            "Looking in indexes: https://****@a.test/simple, (from 'git+https://****@b.test/r.git')",
        );
        check("no urls here", "no urls here");
        check("://odd", "://odd");
    }
}
