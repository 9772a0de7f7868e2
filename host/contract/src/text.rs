//! Text a person reads: guest- and upstream-controlled strings made safe to print.
//!
//! Threat: a skill's id, description, error texts, log messages and rows, and an upstream's
//! answers (alert titles and entity names come from attacked machines), reach terminals, pagers
//! and log files. Raw, an ESC sequence clears the screen or sets the window title, a CR or LF
//! forges a line that looks like the host's own, and a Unicode bidirectional override makes text
//! read differently from what it is. [`escape`] writes every such character as a visible escape,
//! whether or not the output is a terminal (it is often a file or a pager first).

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a reader raw: C0 and C1 controls (tab, CR and LF included), DEL,
/// the Unicode line and paragraph separators, and the Unicode bidirectional and zero-width
/// formatting characters. Every one of them is in the Basic Multilingual Plane.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{061C}'
                | '\u{FEFF}'
        )
}

/// `text` with every unsafe character written as a visible escape (`\n`, `\r`, `\t`, `\e`,
/// `\u{202e}`). Borrowed when nothing needs escaping. (Backslashes are left as they are: text
/// that merely looks like an escape is harmless, and messages often quote Rust's own escapes.)
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_with(text, is_unsafe, |out, c| match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{1b}' => out.push_str("\\e"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    })
}

/// JSON text with every unsafe character that is not JSON's own whitespace written as a
/// `\uXXXX` escape: the same JSON value, safe to show on a terminal. Valid JSON holds such a
/// character only inside a string (C0 controls other than whitespace cannot stand raw in it),
/// where the escape means the same character.
pub fn escape_in_json(text: &str) -> Cow<'_, str> {
    let unsafe_here = |c: char| is_unsafe(c) && !matches!(c, '\t' | '\n' | '\r' | ' ');
    escape_with(text, unsafe_here, |out, c| {
        // Every unsafe character is in the BMP: one UTF-16 unit.
        let _ = write!(out, "\\u{:04x}", c as u32);
    })
}

/// `text` with each character `unsafe_here` picks written by `write_escaped`; borrowed when
/// there is none.
fn escape_with(
    text: &str,
    unsafe_here: impl Fn(char) -> bool,
    write_escaped: impl Fn(&mut String, char),
) -> Cow<'_, str> {
    if !text.chars().any(&unsafe_here) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_here(c) {
            write_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(
            escape("Suspicious sign-in (höchst)"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn controls_line_breaks_and_bidi_overrides_become_visible_escapes() {
        assert_eq!(
            escape("a\x1b[2Jb\r\nskillhost: ok\u{202e}cba\u{9b}\u{7f}"),
            "a\\e[2Jb\\r\\nskillhost: ok\\u{202e}cba\\u{9b}\\u{7f}"
        );
    }

    #[test]
    fn line_and_paragraph_separators_are_escaped() {
        assert_eq!(escape("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}");
    }

    #[test]
    fn escaping_in_json_gives_the_same_value_with_no_unsafe_character_raw() {
        let text = "{\"t\": \"a\u{9b}2J\u{7f}\u{202e}\u{2028}b\"}\n";
        let escaped = escape_in_json(text);
        assert_eq!(escaped, "{\"t\": \"a\\u009b2J\\u007f\\u202e\\u2028b\"}\n");
        let before: serde_json::Value = serde_json::from_str(text).unwrap();
        let after: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(before, after);
        assert!(matches!(escape_in_json("{\"a\": 1}"), Cow::Borrowed(_)));
    }
}
