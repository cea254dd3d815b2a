//! Small text helpers: keeping error messages on one line, hiding secrets, quoting values so the
//! INI reader reads them back unchanged, and wrapping help text.

use std::borrow::Cow;

/// What a secret value is replaced with wherever it would otherwise be shown.
pub(crate) const REDACTED: &str = "***";

/// Escapes control characters so that an error message stays on a single line whatever the user
/// typed (overrides can contain newlines, files can contain stray carriage returns).
pub(crate) fn one_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Removes every occurrence of a secret from a message built by code we do not control (for
/// example a `FromStr` error that quotes its input).
pub(crate) fn scrub(message: String, secret: &str) -> String {
    if secret.is_empty() || !message.contains(secret) {
        message
    } else {
        message.replace(secret, REDACTED)
    }
}

/// Writes a value the way it must appear after `option =` so that the INI reader returns exactly
/// `value`: quoted (with `\"` and `\\` escapes) only when the bare form would be trimmed, taken
/// for a quoted value, or cut at an inline comment (a leading `#` or `;` would follow the space
/// after `=`).
pub(crate) fn ini_value(value: &str) -> Cow<'_, str> {
    let needs_quotes = value.starts_with(['"', '#', ';'])
        || value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace)
        || has_inline_comment_marker(value);
    if !needs_quotes {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Cow::Owned(out)
}

/// Byte offset of the whitespace that starts an inline comment (whitespace followed by `#` or
/// `;`), if any. A bare `#` without whitespace before it is part of the value (`key=#x`).
pub(crate) fn inline_comment_start(s: &str) -> Option<usize> {
    let mut prev_ws: Option<usize> = None;
    for (i, c) in s.char_indices() {
        if let Some(ws) = prev_ws {
            if c == '#' || c == ';' {
                return Some(ws);
            }
        }
        prev_ws = c.is_whitespace().then_some(i);
    }
    None
}

fn has_inline_comment_marker(s: &str) -> bool {
    inline_comment_start(s).is_some()
}

/// Greedy word wrap to `width` columns (counted in chars). Words longer than the width get a line
/// of their own rather than being split, so URLs and paths stay copyable. Blank lines in `text`
/// separate paragraphs and are kept as empty lines.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for (n, paragraph) in text.split("\n\n").enumerate() {
        if n > 0 {
            lines.push(String::new());
        }
        let mut line = String::new();
        let mut len = 0;
        for word in paragraph.split_whitespace() {
            let wlen = word.chars().count();
            if len > 0 && len + 1 + wlen > width {
                lines.push(std::mem::take(&mut line));
                len = 0;
            }
            if len > 0 {
                line.push(' ');
                len += 1;
            }
            line.push_str(word);
            len += wlen;
        }
        if len > 0 {
            lines.push(line);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_control_characters_only() {
        assert_eq!(one_line("plain é"), "plain é");
        assert_eq!(one_line("a\nb\r\tc"), "a\\nb\\r\\tc");
    }

    #[test]
    fn scrub_replaces_every_occurrence() {
        assert_eq!(scrub("bad s3cr3t, s3cr3t".into(), "s3cr3t"), "bad ***, ***");
        assert_eq!(scrub("nothing here".into(), ""), "nothing here");
    }

    #[test]
    fn ini_value_quotes_only_when_needed() {
        assert_eq!(ini_value("home"), "home");
        assert_eq!(ini_value("a#b;c"), "a#b;c");
        assert_eq!(ini_value(""), "");
        assert_eq!(ini_value(" lead"), "\" lead\"");
        assert_eq!(ini_value("x # y"), "\"x # y\"");
        assert_eq!(ini_value("#x"), "\"#x\"");
        assert_eq!(ini_value("\"q\\"), "\"\\\"q\\\\\"");
    }

    #[test]
    fn inline_comment_needs_whitespace_before_marker() {
        assert_eq!(inline_comment_start("a # c"), Some(1));
        assert_eq!(inline_comment_start("a\t;c"), Some(1));
        assert_eq!(inline_comment_start("a#c"), None);
        assert_eq!(inline_comment_start("#c"), None);
    }

    #[test]
    fn wrap_respects_width_and_paragraphs() {
        let lines = wrap("aaa bbb ccc ddd\n\nnext para", 7);
        assert_eq!(lines, vec!["aaa bbb", "ccc ddd", "", "next", "para"]);
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            vec!["averyveryverylongword", "x"]
        );
        assert!(wrap("", 10).is_empty());
    }
}
