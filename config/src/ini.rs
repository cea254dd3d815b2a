//! A small, line-tracking INI reader.
//!
//! We deliberately do not use `rust-ini`: it does not keep line numbers, and every config error
//! must say `file:line`. This reader knows nothing about the schema; it only turns bytes into
//! section headers and `option = value` entries, each with its 1-based line number, and stops at
//! the first syntax error (later lines are not read, so errors come out in file order).
//!
//! Syntax (n3n style):
//! - blank lines and lines starting with `#` or `;` are comments;
//! - `[section]` starts a section; entries before the first header are an error;
//! - `option = value`: whitespace around both is trimmed, the value may be empty;
//! - in an unquoted value, whitespace followed by `#` or `;` starts an inline comment
//!   (`key=#x` keeps the `#`);
//! - `"..."` quotes a value, keeping spaces, `#` and `;`; inside, `\"` and `\\` are escapes and
//!   any other backslash is literal; only a comment may follow the closing quote;
//! - lines end in `\n` or `\r\n`; a leading UTF-8 byte order mark is ignored; each line must be
//!   valid UTF-8.

use crate::text::inline_comment_start;

/// One meaningful line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// `[name]` on `line`.
    Section { name: &'a str, line: usize },
    /// `key = value` on `line`, inside `section`.
    Entry {
        section: &'a str,
        key: &'a str,
        value: String,
        line: usize,
    },
}

/// A line the reader could not understand; the caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Iterator over the [`Item`]s of a file's contents.
pub(crate) struct Reader<'a> {
    /// Unread input; `None` once the last line was returned or after an error.
    rest: Option<&'a [u8]>,
    line: usize,
    section: Option<&'a str>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        Reader {
            rest: Some(bytes),
            line: 0,
            section: None,
        }
    }

    fn next_line(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        self.line += 1;
        let raw = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                &rest[..i]
            }
            None => {
                self.rest = None;
                rest
            }
        };
        Some(raw.strip_suffix(b"\r").unwrap_or(raw))
    }

    /// Interprets one line; `Ok(None)` for blank and comment lines.
    fn parse_line(&mut self, raw: &'a [u8]) -> Result<Option<Item<'a>>, String> {
        let text = std::str::from_utf8(raw)
            .map_err(|e| format!("invalid UTF-8 at column {}", e.valid_up_to() + 1))?;
        let t = text.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            return Ok(None);
        }
        if let Some(inner) = t.strip_prefix('[') {
            let name = parse_header(inner)?;
            self.section = Some(name);
            return Ok(Some(Item::Section {
                name,
                line: self.line,
            }));
        }
        let before_comment = inline_comment_start(t).map_or(t, |i| &t[..i]);
        let Some(eq) = before_comment.find('=') else {
            return Err("expected 'option = value', a [section] header or a comment".to_string());
        };
        let key = t[..eq].trim();
        if key.is_empty() {
            return Err("missing option name before '='".to_string());
        }
        let Some(section) = self.section else {
            return Err(format!(
                "option '{key}' is outside any section (put a [section] header above it)"
            ));
        };
        let value = parse_value(&t[eq + 1..])?;
        Ok(Some(Item::Entry {
            section,
            key,
            value,
            line: self.line,
        }))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Item<'a>, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(raw) = self.next_line() {
            match self.parse_line(raw) {
                Ok(None) => continue,
                Ok(Some(item)) => return Some(Ok(item)),
                Err(message) => {
                    self.rest = None;
                    return Some(Err(SyntaxError {
                        line: self.line,
                        message,
                    }));
                }
            }
        }
        None
    }
}

/// `inner` is a trimmed header line without its leading `[`.
fn parse_header(inner: &str) -> Result<&str, String> {
    let Some(close) = inner.find(']') else {
        return Err("missing ']' at the end of the section header".to_string());
    };
    let name = inner[..close].trim();
    if name.is_empty() {
        return Err("empty section name".to_string());
    }
    if !is_comment_or_empty(&inner[close + 1..]) {
        return Err("unexpected text after the section header".to_string());
    }
    Ok(name)
}

/// `raw` is everything after the `=`. Error messages never quote the value: it may be a secret.
fn parse_value(raw: &str) -> Result<String, String> {
    let v = raw.trim_start();
    if let Some(quoted) = v.strip_prefix('"') {
        let (value, after) = parse_quoted(quoted)?;
        if !is_comment_or_empty(after) {
            return Err("unexpected text after the closing quote".to_string());
        }
        return Ok(value);
    }
    // Look for the comment in `raw`: the space after `=` counts, so `key = # note` is empty.
    let v = inline_comment_start(raw).map_or(raw, |i| &raw[..i]);
    Ok(v.trim().to_string())
}

/// Reads up to the closing quote; returns the unescaped value and what follows the quote.
fn parse_quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match s[i + 1..].chars().next() {
                Some(next @ ('"' | '\\')) => {
                    out.push(next);
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    Err("unterminated quoted value (missing closing '\"')".to_string())
}

fn is_comment_or_empty(s: &str) -> bool {
    let s = s.trim_start();
    s.is_empty() || s.starts_with('#') || s.starts_with(';')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::ini_value;
    use proptest::prelude::*;

    fn items(text: &str) -> Result<Vec<Item<'_>>, SyntaxError> {
        Reader::new(text.as_bytes()).collect()
    }

    /// (section, key, value, line) of every entry; panics on a syntax error.
    fn entries(text: &str) -> Vec<(String, String, String, usize)> {
        items(text)
            .unwrap()
            .into_iter()
            .filter_map(|i| match i {
                Item::Entry {
                    section,
                    key,
                    value,
                    line,
                } => Some((section.into(), key.into(), value, line)),
                Item::Section { .. } => None,
            })
            .collect()
    }

    fn value_of(line: &str) -> String {
        let text = format!("[s]\n{line}\n");
        entries(&text).pop().unwrap().2
    }

    fn err(text: &str) -> (usize, String) {
        let e = items(text).unwrap_err();
        (e.line, e.message)
    }

    #[test]
    fn sections_entries_and_line_numbers() {
        let text = "# comment\n; other comment\n\n[community]\nname = home\n  supernode=sn.example.org:7700  \n[tuntap]\nmtu=1400\n";
        let all = items(text).unwrap();
        assert_eq!(
            all[0],
            Item::Section {
                name: "community",
                line: 4
            }
        );
        assert_eq!(
            entries(text),
            vec![
                ("community".into(), "name".into(), "home".into(), 5),
                (
                    "community".into(),
                    "supernode".into(),
                    "sn.example.org:7700".into(),
                    6
                ),
                ("tuntap".into(), "mtu".into(), "1400".into(), 8),
            ]
        );
    }

    #[test]
    fn header_whitespace_and_comments() {
        let all = items("  [ tuntap ]   # the interface\n[x];c\n").unwrap();
        assert_eq!(
            all,
            vec![
                Item::Section {
                    name: "tuntap",
                    line: 1
                },
                Item::Section { name: "x", line: 2 }
            ]
        );
    }

    #[test]
    fn crlf_and_bom() {
        let text = "\u{feff}[s]\r\nk = v\r\nq = \"a \"\r\n";
        assert_eq!(
            entries(text),
            vec![
                ("s".into(), "k".into(), "v".into(), 2),
                ("s".into(), "q".into(), "a ".into(), 3),
            ]
        );
    }

    #[test]
    fn no_trailing_newline() {
        assert_eq!(
            entries("[s]\nk=v"),
            vec![("s".into(), "k".into(), "v".into(), 2)]
        );
        assert!(items("").unwrap().is_empty());
    }

    #[test]
    fn inline_comments() {
        assert_eq!(value_of("k = v # comment"), "v");
        assert_eq!(value_of("k = v ; comment"), "v");
        assert_eq!(value_of("k = v\t# tab comment"), "v");
        assert_eq!(value_of("k = a#b;c"), "a#b;c");
        assert_eq!(value_of("k=#x"), "#x");
        assert_eq!(value_of("k = # only a comment"), "");
        assert_eq!(value_of("k = two words  # c"), "two words");
    }

    #[test]
    fn empty_values() {
        assert_eq!(value_of("k ="), "");
        assert_eq!(value_of("k="), "");
        assert_eq!(value_of("k = \"\""), "");
    }

    #[test]
    fn values_keep_later_equals_signs() {
        assert_eq!(value_of("k = a=b=c"), "a=b=c");
    }

    #[test]
    fn quoted_values() {
        assert_eq!(
            value_of("k = \"  spaced # not ; comment  \""),
            "  spaced # not ; comment  "
        );
        assert_eq!(value_of("k = \"x\" # comment"), "x");
        assert_eq!(value_of("k = \"x\";comment"), "x");
        assert_eq!(value_of(r#"k = "say \"hi\"""#), "say \"hi\"");
        assert_eq!(value_of(r#"k = "back\\slash""#), "back\\slash");
        assert_eq!(value_of(r#"k = "C:\dir\n""#), "C:\\dir\\n");
        // A quote that does not start the value is an ordinary character.
        assert_eq!(value_of("k = a\"b\""), "a\"b\"");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            err("name = x\n"),
            (
                1,
                "option 'name' is outside any section (put a [section] header above it)".into()
            )
        );
        assert_eq!(
            err("[s]\n\njust words\n"),
            (
                3,
                "expected 'option = value', a [section] header or a comment".into()
            )
        );
        assert_eq!(
            err("[s]\nk # = v\n"),
            (
                2,
                "expected 'option = value', a [section] header or a comment".into()
            )
        );
        assert_eq!(
            err("[s]\n = v\n"),
            (2, "missing option name before '='".into())
        );
        assert_eq!(
            err("[s\n"),
            (1, "missing ']' at the end of the section header".into())
        );
        assert_eq!(err("[ ]\n"), (1, "empty section name".into()));
        assert_eq!(
            err("[s] x\n"),
            (1, "unexpected text after the section header".into())
        );
        assert_eq!(
            err("[s]\nk = \"open\n"),
            (2, "unterminated quoted value (missing closing '\"')".into())
        );
        assert_eq!(
            err("[s]\nk = \"a\" b\n"),
            (2, "unexpected text after the closing quote".into())
        );
        assert_eq!(
            Reader::new(b"[s]\nk = \xff\xfe\n").collect::<Result<Vec<_>, _>>(),
            Err(SyntaxError {
                line: 2,
                message: "invalid UTF-8 at column 5".into()
            })
        );
    }

    #[test]
    fn stops_after_first_error() {
        let mut r = Reader::new(b"[s]\nbad\nk=v\n");
        assert!(matches!(r.next(), Some(Ok(Item::Section { .. }))));
        assert!(matches!(r.next(), Some(Err(_))));
        assert_eq!(r.next(), None);
    }

    #[test]
    fn syntax_errors_never_echo_values() {
        for line in ["k = \"s3cr3t", "k = \"s3cr3t\" s3cr3t"] {
            let (_, msg) = err(&format!("[s]\n{line}\n"));
            assert!(!msg.contains("s3cr3t"), "{msg}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Arbitrary bytes never panic the reader, and every reported line exists.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let lines = bytes.split(|&b| b == b'\n').count();
            for item in Reader::new(&bytes) {
                match item {
                    Ok(Item::Section { line, .. }) | Ok(Item::Entry { line, .. }) => prop_assert!(line <= lines),
                    Err(e) => prop_assert!(e.line >= 1 && e.line <= lines),
                }
            }
        }

        /// INI-looking noise (the characters the syntax cares about) never panics either.
        #[test]
        fn ini_like_noise_never_panics(parts in proptest::collection::vec(
            prop::sample::select(vec!["[", "]", "=", "\"", "\\", "#", ";", " ", "\t", "\n", "\r",
                "\r\n", "s", "key", "é", "\u{feff}", "\u{0}", "=\"", "\\\""]), 0..80)) {
            let text: String = parts.concat();
            let _ = Reader::new(text.as_bytes()).count();
        }

        /// Whatever `ini_value` writes, the reader reads back the same value.
        #[test]
        fn quoting_round_trips(value in "[^\n]{0,40}") {
            let text = format!("[s]\nk = {}\n", ini_value(&value));
            let got = entries(&text);
            prop_assert_eq!(&got[0].2, &value);
        }
    }
}
