//! How deeply a JSON text nests, found with one pass over its bytes before any parser sees it.
//!
//! serde_json's parser into `Value` gives up at depth 128, while its `RawValue` skipping (which
//! jsonrpsee uses for `params`) does not count depth at all: two parsers of one request disagreed,
//! and a request the authorisation check could not read was run unchecked. Rejecting every body
//! deeper than a small limit first means no parser ever meets deep nesting, so none can fail on
//! it, recurse far on it, or read it differently from another.

/// Whether `text` opens more than `max` arrays or objects inside each other.
///
/// Only brackets outside strings count; a backslash inside a string escapes the next byte, so
/// `"\"["` holds no bracket. The scan does not validate anything else: unbalanced or otherwise
/// malformed text is left to the parser, which refuses it. Linear time, constant memory.
pub(super) fn exceeds(text: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::exceeds;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn counts_arrays_and_objects() {
        assert!(!exceeds(b"1", 0));
        assert!(exceeds(b"[]", 0));
        assert!(!exceeds(b"[]", 1));
        assert!(!exceeds(nested(32).as_bytes(), 32));
        assert!(exceeds(nested(33).as_bytes(), 32));
        assert!(exceeds(br#"{"a":{"b":[{"c":1}]}}"#, 3));
        assert!(!exceeds(br#"{"a":{"b":[{"c":1}]}}"#, 4));
        // Siblings do not add up.
        assert!(!exceeds(br#"[[1],[2],{"a":[3]},[[4]]]"#, 3));
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let text = format!(
            r#"{{"method":"{}","params":["{}"]}}"#,
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(!exceeds(text.as_bytes(), 2));
        // An escaped quote does not end the string; an escaped backslash does not escape the quote.
        assert!(!exceeds(br#"["\"[[[[", "x\\", 1]"#, 1));
        assert!(exceeds(br#"["x\\", [[1]]]"#, 2));
        // Closing brackets in strings do not let an attacker "pay back" depth either.
        let sneaky = format!(r#"[["{}",[[[1]]]]]"#, "]".repeat(100));
        assert!(exceeds(sneaky.as_bytes(), 4));
    }

    #[test]
    fn huge_depth_is_cheap() {
        assert!(exceeds(nested(1_000_000).as_bytes(), 32));
        assert!(exceeds("[".repeat(1_000_000).as_bytes(), 32));
    }
}
