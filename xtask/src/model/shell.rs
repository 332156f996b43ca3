//! Words and command lines as a POSIX shell reads them back: for the commands `--dry-run` prints,
//! the steps a person copies, and the settings baked into the install script.

/// One word for a POSIX shell: single quotes, with each `'` written as `'\''`. Plain words stay
/// bare so that the printed commands read naturally.
pub fn shell_quote(value: &str) -> String {
    let plain =
        !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&byte));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// A command line, each word quoted only when it must be.
pub fn shell_command(argv: &[String]) -> String {
    argv.iter().map(|word| shell_quote(word)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_makes_one_word() {
        let check = |value: &str, expected: &str| assert_eq!(shell_quote(value), expected, "{value:?}");
        check("/app/requirements.lock.txt", "/app/requirements.lock.txt");
        check("ns/pod:/wheelhouse/wheelhouse.tgz", "ns/pod:/wheelhouse/wheelhouse.tgz");
        check("", "''");
        check("a b", "'a b'");
        check("it's", r"'it'\''s'");
        check("$HOME", "'$HOME'");
        check("cd /x && ls", "'cd /x && ls'");
    }

    #[test]
    fn quoting_keeps_words_whole() {
        let argv = ["echo".to_owned(), "a b".to_owned(), "it's".to_owned(), String::new()];
        assert_eq!(shell_command(&argv), r"echo 'a b' 'it'\''s' ''");
    }
}
