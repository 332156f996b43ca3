//! Text from untrusted inputs (archive entry names, manifest file names, package names, pip's
//! output about them) made safe to print: control characters escaped, so that `ESC[2J` cannot
//! clear a terminal or a forged newline fake a line of output, and length capped.

/// The most characters of one untrusted name that are printed; the rest is counted.
pub const MAX_SHOWN_CHARS: usize = 200;

/// `text` with every control character written as an escape (`\n`, `\t`, `\x1b`, `\u{202e}` for
/// bidirectional overrides) and cut to [`MAX_SHOWN_CHARS`] characters.
pub fn shown(text: &str) -> String {
    capped(text.chars().map(escaped))
}

/// Bytes that may not be UTF-8 (a tar header's name), shown as [`shown`] shows text, with each
/// byte of an invalid sequence as `\xNN`.
pub fn shown_bytes(bytes: &[u8]) -> String {
    capped(bytes.utf8_chunks().flat_map(|chunk| {
        let invalid = chunk.invalid().iter().map(|byte| format!("\\x{byte:02x}"));
        chunk.valid().chars().map(escaped).chain(invalid)
    }))
}

/// Many lines from another program (pip quoting an index's names), kept as lines: every control
/// character but the newline and the tab escaped, nothing cut. Callers bound the lines they keep.
pub fn with_lines_kept(text: &str) -> String {
    text.chars()
        .map(|character| match character {
            // A backslash is left as it is: no escape is made here that it could be confused with.
            '\n' | '\t' | '\\' => character.to_string(),
            character => escaped(character),
        })
        .collect()
}

fn escaped(character: char) -> String {
    match character {
        '\n' => "\\n".to_owned(),
        '\r' => "\\r".to_owned(),
        '\t' => "\\t".to_owned(),
        '\\' => "\\\\".to_owned(),
        character if character.is_control() => format!("\\x{:02x}", u32::from(character)),
        // Bidirectional overrides and isolates reorder what follows them on screen.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => format!("\\u{{{:04x}}}", u32::from(character)),
        character => character.to_string(),
    }
}

/// The first [`MAX_SHOWN_CHARS`] pieces (one per input character or byte), then a count of the rest.
fn capped(pieces: impl Iterator<Item = String>) -> String {
    let mut result = String::new();
    let mut rest = 0usize;
    for (count, piece) in pieces.enumerate() {
        if count < MAX_SHOWN_CHARS {
            result.push_str(&piece);
        } else {
            rest += 1;
        }
    }
    if rest > 0 {
        result.push_str(&format!("... ({rest} more characters)"));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_length_is_capped() {
        assert_eq!(shown("plain-1.0.whl"), "plain-1.0.whl");
        assert_eq!(shown("\u{1b}[2Jevil\nERROR: fake"), "\\x1b[2Jevil\\nERROR: fake");
        assert_eq!(shown("a\\b"), "a\\\\b");
        assert_eq!(shown("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        let long = "x".repeat(MAX_SHOWN_CHARS + 5);
        assert_eq!(shown(&long), format!("{}... (5 more characters)", "x".repeat(MAX_SHOWN_CHARS)));
        assert_eq!(shown_bytes(b"ok\xffname\x07"), "ok\\xffname\\x07");
        assert_eq!(with_lines_kept("pip said:\n\tname\u{1b}[2J\r\nC:\\x"), "pip said:\n\tname\\x1b[2J\\r\nC:\\x");
    }
}
