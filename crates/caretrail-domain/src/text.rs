//! Text that people type: the one rule for what a text field of a command may hold, and the
//! repair the read side applies to text already in the log.
//!
//! A command's text reaches names, notes and official names that people read on a screen,
//! export and print, and it reaches databases: PostgreSQL refuses a NUL (U+0000) in `TEXT`,
//! so one NUL in a body name once stopped the dashboards for good. Commands therefore refuse
//! every character that no person types ([`refused`]):
//!
//! - C0 controls (U+0000–U+001F) and DEL (U+007F). A single-line field (a name, a phone, an
//!   office, a gift's description) never needs one. Free-text notes ([`TextKind::Multiline`])
//!   may hold line feeds, carriage returns and tabs: a note typed into a text area has
//!   paragraphs, Windows clients send CR LF, and text pasted from a spreadsheet keeps its
//!   tabs; every other C0 control is refused there too.
//! - C1 controls (U+0080–U+009F): left over from mis-decoded legacy encodings, never typed.
//! - Noncharacters (U+FDD0–U+FDEF and the last two code points of every plane, U+FFFE,
//!   U+FFFF, U+1FFFE, ...): reserved by Unicode for a program's internal use, never for
//!   interchange.
//! - U+FEFF (byte-order mark): an encoding artefact that copy and paste carries into the
//!   middle of text, invisible on screen, so two names that look alike would differ.
//! - The bidirectional embedding, override and isolate controls (U+202A–U+202E,
//!   U+2066–U+2069) and the line and paragraph separators (U+2028, U+2029): they reorder or
//!   break what a reader sees, so a name could display as something other than what is
//!   stored.
//!
//! Private-use characters are accepted on purpose: rare characters in Chinese names are still
//! entered through private-use code points of older input methods and fonts. Unpaired
//! surrogates cannot occur: JSON parsing refuses them, and a Rust string cannot hold one.
//!
//! The log is append-only, so events recorded before this rule (or appended by other means)
//! may hold such characters forever. Every consumer that copies event text into a table
//! stores [`sanitize`]d text instead: each refused character becomes U+FFFD (the replacement
//! character), which every database stores and which shows the reader that something was
//! there. The log itself keeps the original bytes (the audit hashes commit to them).

use std::borrow::Cow;

/// Whether a text field holds one line (names, numbers, offices) or free text (notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// One line: no control character at all.
    Line,
    /// Free text: line feed, carriage return and tab are allowed.
    Multiline,
}

/// Why a text is refused. Neither variant carries the text or the character: messages built
/// from them can never echo personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// A line break or tab in a single-line field.
    #[error("must be a single line: line breaks and tabs are allowed only in notes")]
    LineBreak,
    /// A control character, noncharacter, byte-order mark or bidirectional control.
    #[error(
        "contains a character no person types (a control character, a noncharacter, a byte-order mark or a bidirectional control)"
    )]
    NotText,
}

impl TextError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            TextError::LineBreak => "text_not_single_line",
            TextError::NotText => "text_has_control_characters",
        }
    }
}

/// Whether `c` is refused in a field of `kind`, and why.
pub fn refused(c: char, kind: TextKind) -> Option<TextError> {
    let cp = u32::from(c);
    let not_text = matches!(cp,
        0x00..=0x1F | 0x7F..=0x9F
        | 0xFDD0..=0xFDEF
        | 0xFEFF
        | 0x2028 | 0x2029
        | 0x202A..=0x202E
        | 0x2066..=0x2069)
        || cp & 0xFFFE == 0xFFFE;
    if !not_text {
        return None;
    }
    match c {
        '\n' | '\r' | '\t' if kind == TextKind::Multiline => None,
        '\n' | '\r' | '\t' => Some(TextError::LineBreak),
        _ => Some(TextError::NotText),
    }
}

/// Checks a whole text: `Ok` when every character is allowed in a field of `kind`.
pub fn check(text: &str, kind: TextKind) -> Result<(), TextError> {
    match text.chars().find_map(|c| refused(c, kind)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The replacement character that stands for a refused one on the read side.
pub const REPLACEMENT: char = '\u{FFFD}';

/// `text` with every character a single-line field refuses replaced by U+FFFD: what a read
/// model stores for text copied from an event, whatever the log holds. Borrowed (no copy)
/// when nothing needs replacing, which is every event recorded through a command.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if check(text, TextKind::Line).is_ok() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match refused(c, TextKind::Line) {
                Some(_) => REPLACEMENT,
                None => c,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening #1: every kind of character no person types is refused in a name, and a
    /// note keeps its line breaks and tabs but nothing else.
    #[test]
    fn controls_and_noncharacters_are_refused() {
        for c in [
            '\0',
            '\u{1}',
            '\u{1B}',
            '\u{7F}',
            '\u{80}',
            '\u{9F}',
            '\u{FDD0}',
            '\u{FDEF}',
            '\u{FFFE}',
            '\u{FFFF}',
            '\u{1FFFE}',
            '\u{10FFFF}',
            '\u{FEFF}',
            '\u{202E}',
            '\u{2066}',
            '\u{2028}',
        ] {
            assert_eq!(
                refused(c, TextKind::Line),
                Some(TextError::NotText),
                "{c:?}"
            );
            assert_eq!(
                refused(c, TextKind::Multiline),
                Some(TextError::NotText),
                "{c:?}"
            );
        }
        for c in ['\n', '\r', '\t'] {
            assert_eq!(refused(c, TextKind::Line), Some(TextError::LineBreak));
            assert_eq!(refused(c, TextKind::Multiline), None);
        }
        for c in [
            'a', '张', ' ', '\u{A0}', '\u{200D}', '\u{E000}', '😀', '\u{FFFD}', '\u{FFFC}',
        ] {
            assert_eq!(refused(c, TextKind::Line), None, "{c:?}");
        }
        assert_eq!(check("团体", TextKind::Line), Ok(()));
        assert_eq!(check("团\0体", TextKind::Line), Err(TextError::NotText));
        assert_eq!(check("第一段\r\n第二段", TextKind::Multiline), Ok(()));
        assert_eq!(check("张\n三", TextKind::Line), Err(TextError::LineBreak));
    }

    /// Hardening #1: the read side replaces what a command would refuse, and copies nothing
    /// when there is nothing to replace.
    #[test]
    fn sanitize_replaces_each_refused_character() {
        assert_eq!(sanitize("团\0体\u{FFFF}"), "团\u{FFFD}体\u{FFFD}");
        assert_eq!(sanitize("a\nb"), "a\u{FFFD}b");
        assert!(matches!(sanitize("杭州市总工会"), Cow::Borrowed(_)));
        // The messages never carry the text.
        assert!(!TextError::NotText.to_string().contains('\0'));
    }
}
