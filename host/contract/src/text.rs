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
/// and the Unicode bidirectional and zero-width formatting characters.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}'
        )
}

/// `text` with every unsafe character written as a visible escape (`\n`, `\r`, `\t`, `\e`,
/// `\u{202e}`). Borrowed when nothing needs escaping. (Backslashes are left as they are: text
/// that merely looks like an escape is harmless, and messages often quote Rust's own escapes.)
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
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
}
