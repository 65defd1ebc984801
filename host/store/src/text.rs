//! Provider text made safe to show: control characters escaped, length
//! bounded.
//!
//! Everything a provider returns is hostile input, and some of it ends up
//! on a terminal (an error message, a name in a table, a digest in `show`).
//! Raw, a control sequence in it could clear the screen, retitle the
//! terminal, write the clipboard (OSC 52) or overwrite a line with a fake
//! verdict; a huge one floods the output. The sandbox passes provider
//! strings through these functions where they enter the host (storage
//! error messages, trap explanations, quotes in contract-violation
//! messages), so a program embedding the library gets the same protection
//! as the `tapedeck` command, which also uses [`printable`] for what it
//! prints itself (names, sessions, tags, payloads).

use std::borrow::Cow;
use std::fmt::Write as _;

/// The most bytes of a provider's error message the host keeps (`storage-error`
/// strings, and an `init` refusal): 4 KiB, enough for any explanation a
/// person reads. A longer one is cut and marked `… (N bytes cut)`.
pub const MAX_ERROR_MESSAGE: usize = 4096;

/// The most bytes of provider text quoted inside one of the host's own
/// messages (a tape id, a provider name, a digest, a line of the guest's
/// stderr explaining a trap).
pub const MAX_QUOTE: usize = 256;

/// True for characters shown escaped: control characters (C0, DEL and C1,
/// which include the terminal's ESC, CSI and OSC introducers) and the
/// Unicode bidirectional controls, which can make a line read other than
/// its bytes.
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` on one line: control characters (newlines, tabs, escapes) and
/// bidirectional controls are shown escaped (`\n`, `\u{1b}`), so a name or
/// payload cannot break a table or act on the terminal.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unprintable) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        push_char(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`printable`], at most `max` bytes of it: the rest of `s` is cut and
/// replaced by `… (N bytes cut)`, N counting the bytes of `s` not shown.
/// Escaping and cutting happen in one pass, so a huge `s` costs no more
/// than `max` bytes of output.
pub fn bounded(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max && !s.chars().any(is_unprintable) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(max.min(s.len()) + 24);
    let mut buf = String::new();
    for (at, c) in s.char_indices() {
        buf.clear();
        push_char(&mut buf, c);
        if out.len() + buf.len() > max {
            let _ = write!(out, "… ({} bytes cut)", s.len() - at);
            return Cow::Owned(out);
        }
        out.push_str(&buf);
    }
    Cow::Owned(out)
}

/// Provider text quoted in one of the host's messages: [`bounded`] to
/// [`MAX_QUOTE`] bytes.
pub fn quote(s: &str) -> Cow<'_, str> {
    bounded(s, MAX_QUOTE)
}

fn push_char(out: &mut String, c: char) {
    if is_unprintable(c) {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(printable("plain ✓"), "plain ✓");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(printable("a\nb\t\u{1b}[31m"), "a\\nb\\t\\u{1b}[31m");
        assert_eq!(printable("\u{9b}2J\u{7}\r"), "\\u{9b}2J\\u{7}\\r");
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
    }

    #[test]
    fn bounded_cuts_and_says_how_much() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("0123456789abc", 10), "0123456789… (3 bytes cut)");
        // Escapes count in the output's size; N counts the input's bytes.
        assert_eq!(bounded("ab\u{1b}cd", 8), "ab\\u{1b}… (2 bytes cut)");
        assert_eq!(bounded("ab\u{1b}cd", 6), "ab… (3 bytes cut)");
        // Never cuts a character in half.
        assert_eq!(bounded("ééé", 3), "é… (4 bytes cut)");
        let huge = "\u{1b}".repeat(1 << 20);
        let out = bounded(&huge, MAX_ERROR_MESSAGE);
        assert!(out.len() < MAX_ERROR_MESSAGE + 32, "{}", out.len());
        assert!(!out.contains('\u{1b}'));
        assert!(out.ends_with(" bytes cut)"));
    }
}
