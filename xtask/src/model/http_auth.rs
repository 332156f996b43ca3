//! What a file download sends and trusts, decided the way pip decides it: which credentials go
//! with a URL (the URL's own, its index's, then `.netrc`), and which hosts are `trusted-host`s.
//! Pure: the netrc text and pip's effective options come in as values.

use std::fmt;

use crate::model::resolution::percent_decode;

/// A user name and password for HTTP basic authentication. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Credentials({}:****)", self.username)
    }
}

/// The parts of a URL this module needs; `None` for text without `scheme://`.
#[derive(Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: &'a str,
    /// `user:password` before the `@`, still percent-encoded.
    pub userinfo: Option<&'a str>,
    /// The host, lowercase as written (brackets kept for IPv6).
    pub host: &'a str,
    pub port: Option<u16>,
    /// From the first `/` on (empty when there is none).
    pub path: &'a str,
}

pub fn url_parts(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (host, port) = match host_port.rfind(':') {
        Some(colon) if !host_port[colon..].contains(']') => {
            (&host_port[..colon], Some(host_port[colon + 1..].parse().ok()?))
        }
        _ => (host_port, None),
    };
    Some(UrlParts { scheme, userinfo, host, port, path })
}

/// The URL with its `user:password@` taken out: what is requested and what may be shown.
pub fn without_userinfo(url: &str) -> String {
    match url_parts(url) {
        Some(UrlParts { userinfo: Some(userinfo), .. }) => url.replacen(&format!("{userinfo}@"), "", 1),
        _ => url.to_owned(),
    }
}

/// The credentials for `url`, in pip's order: those written in the URL; else those of the index
/// URL with the same host and port and the longest path that starts the URL's path (the index the
/// file came from), else of any index on that host and port; else the `.netrc` entry of the host,
/// or its `default` entry.
pub fn credentials_for(url: &str, index_urls: &[String], netrc: Option<&str>) -> Option<Credentials> {
    let parts = url_parts(url)?;
    if let Some(credentials) = parts.userinfo.and_then(split_userinfo) {
        return Some(credentials);
    }
    let same_origin = |index: &&UrlParts<'_>| {
        index.host.eq_ignore_ascii_case(parts.host) && index.port == parts.port && index.userinfo.is_some()
    };
    let indexes: Vec<UrlParts<'_>> = index_urls.iter().filter_map(|index| url_parts(index)).collect();
    let from_index = indexes
        .iter()
        .filter(same_origin)
        .filter(|index| parts.path.starts_with(index.path.trim_end_matches('/')))
        .max_by_key(|index| index.path.len())
        .or_else(|| indexes.iter().find(same_origin));
    if let Some(credentials) = from_index.and_then(|index| split_userinfo(index.userinfo?)) {
        return Some(credentials);
    }
    netrc_lookup(netrc?, parts.host)
}

/// `user:pass` (percent-encoded) → credentials; a user name alone has an empty password, as pip
/// sends it.
fn split_userinfo(userinfo: &str) -> Option<Credentials> {
    let (username, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    Some(Credentials { username: percent_decode(username), password: percent_decode(password) })
}

/// The `login` and `password` of `machine HOST` in a netrc file, else of `default`. Tokens are
/// separated by white space and may be double-quoted; `macdef` bodies (up to a blank line) are
/// skipped; `#` starts a comment at the start of a token.
pub fn netrc_lookup(text: &str, host: &str) -> Option<Credentials> {
    let tokens = netrc_tokens(text);
    let mut found: Option<Credentials> = None;
    let mut default: Option<Credentials> = None;
    let mut index = 0;
    while index < tokens.len() {
        let (is_default, matches) = match tokens[index].as_str() {
            "machine" => {
                index += 1;
                (false, tokens.get(index).is_some_and(|machine| machine.eq_ignore_ascii_case(host)))
            }
            "default" => (true, false),
            _ => {
                index += 1;
                continue;
            }
        };
        index += 1;
        let mut entry = Credentials { username: String::new(), password: String::new() };
        while let Some(key) = tokens.get(index) {
            match key.as_str() {
                "login" | "user" => entry.username = tokens.get(index + 1).cloned().unwrap_or_default(),
                "password" => entry.password = tokens.get(index + 1).cloned().unwrap_or_default(),
                "account" => {}
                _ => break,
            }
            index += 2;
        }
        if matches && found.is_none() {
            found = Some(entry);
        } else if is_default && default.is_none() {
            default = Some(entry);
        }
    }
    found.or(default).filter(|entry| !entry.username.is_empty() || !entry.password.is_empty())
}

fn netrc_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut chars = line.chars().peekable();
        loop {
            while chars.next_if(|character| character.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            if first == '#' {
                break;
            }
            let mut token = String::new();
            if first == '"' {
                chars.next();
                while let Some(character) = chars.next() {
                    match character {
                        '"' => break,
                        '\\' => token.extend(chars.next()),
                        _ => token.push(character),
                    }
                }
            } else {
                while let Some(character) = chars.next_if(|character| !character.is_whitespace()) {
                    token.push(character);
                }
            }
            if token == "macdef" {
                // The macro's name ends the line; its body runs to the first empty line.
                for body in lines.by_ref() {
                    if body.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            tokens.push(token);
        }
    }
    tokens
}

/// Whether pip skips certificate checks for `url`: a `trusted-host` entry `host` matches any port
/// of that host, `host:port` only that port.
pub fn is_trusted_host(url: &str, trusted_hosts: &[String]) -> bool {
    let Some(parts) = url_parts(url) else { return false };
    trusted_hosts.iter().any(|entry| {
        let entry = entry.trim();
        match entry.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty()) {
            Some((host, port)) => host.eq_ignore_ascii_case(parts.host) && port.parse().ok() == parts.port,
            None => entry.eq_ignore_ascii_case(parts.host),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(username: &str, password: &str) -> Option<Credentials> {
        Some(Credentials { username: username.to_owned(), password: password.to_owned() })
    }

    #[test]
    fn urls_split_into_what_authentication_needs() {
        let parts = url_parts("https://me:s%40cret@Files.Example:8443/a/b.whl#sha256=00").unwrap();
        assert_eq!(parts.scheme, "https");
        assert_eq!(parts.userinfo, Some("me:s%40cret"));
        assert_eq!((parts.host, parts.port, parts.path), ("Files.Example", Some(8443), "/a/b.whl#sha256=00"));
        assert_eq!(url_parts("http://[::1]:8080/x").unwrap().host, "[::1]");
        assert_eq!(url_parts("http://[::1]/x").unwrap().port, None);
        assert_eq!(url_parts("not a url"), None);
        assert_eq!(without_userinfo("https://me:pw@host/simple/"), "https://host/simple/");
        assert_eq!(without_userinfo("https://host/a@b"), "https://host/a@b");
    }

    #[test]
    fn credentials_come_from_the_url_then_its_index_then_netrc() {
        let indexes = vec![
            "https://team:t0ken@repo.example/team/simple/".to_owned(),
            "https://other:pw@repo.example/other/simple/".to_owned(),
            "https://open.example/simple/".to_owned(),
        ];
        let netrc = "machine repo.example login n password netrc-pw\ndefault login anon password anon-pw\n";
        let check = |url: &str, expected: Option<Credentials>| {
            assert_eq!(credentials_for(url, &indexes, Some(netrc)), expected, "{url}");
        };
        check("https://u:p%3Aq@repo.example/x.whl", credentials("u", "p:q"));
        check("https://repo.example/other/simple/x/x.whl", credentials("other", "pw"));
        check("https://repo.example/team/simple/x/x.whl", credentials("team", "t0ken"));
        // Same host, no matching path: the first index on that origin, as pip does.
        check("https://repo.example/elsewhere/x.whl", credentials("team", "t0ken"));
        // Another port is another origin.
        check("https://repo.example:444/x.whl", credentials("n", "netrc-pw"));
        check("https://open.example/x.whl", credentials("anon", "anon-pw"));
        assert_eq!(credentials_for("https://open.example/x.whl", &indexes, None), None);
        check("https://u@repo.example/x.whl", credentials("u", ""));
    }

    #[test]
    fn netrc_files_as_people_write_them() {
        let text = "# a comment\nmachine a.example\n  login alice\n  password \"pass word\"\n\nmacdef init\nmachine b.example login mallory password bad\n\nmachine c.example login carol password c # trailing\n";
        assert_eq!(netrc_lookup(text, "a.example"), credentials("alice", "pass word"));
        assert_eq!(netrc_lookup(text, "A.EXAMPLE"), credentials("alice", "pass word"));
        assert_eq!(netrc_lookup(text, "b.example"), None, "inside a macdef body");
        assert_eq!(netrc_lookup(text, "c.example"), credentials("carol", "c"));
        assert_eq!(netrc_lookup(text, "d.example"), None);
        assert_eq!(netrc_lookup("machine", "x"), None);
        assert_eq!(netrc_lookup("", "x"), None);
        assert_eq!(netrc_lookup("default login d password e machine x login y password z", "x"), credentials("y", "z"));
    }

    #[test]
    fn trusted_hosts_match_with_or_without_a_port() {
        let trusted = vec!["mirror.internal".to_owned(), "pinned.internal:8443".to_owned()];
        assert!(is_trusted_host("https://mirror.internal/x.whl", &trusted));
        assert!(is_trusted_host("https://mirror.internal:9000/x.whl", &trusted));
        assert!(is_trusted_host("https://pinned.internal:8443/x.whl", &trusted));
        assert!(!is_trusted_host("https://pinned.internal/x.whl", &trusted));
        assert!(!is_trusted_host("https://other.internal/x.whl", &trusted));
        assert!(!is_trusted_host("https://evil.example/?mirror.internal", &trusted));
    }

    #[test]
    fn the_debug_form_hides_the_password() {
        let shown = format!("{:?}", credentials("alice", "hunter2").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
