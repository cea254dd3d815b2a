//! Just enough roff: escaping text for man(7) pages.

/// Escapes text for a roff line: backslashes, hyphens (so that options copy and paste as ASCII), and a
/// leading `.` or `'` that would otherwise start a request.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split('\n') {
        if !out.is_empty() {
            out.push('\n');
        }
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        for c in line.chars() {
            match c {
                '\\' => out.push_str("\\e"),
                '-' => out.push_str("\\-"),
                _ => out.push(c),
            }
        }
    }
    out
}

/// Bold.
pub fn b(text: &str) -> String {
    format!("\\fB{}\\fR", esc(text))
}

/// Italic.
pub fn i(text: &str) -> String {
    format!("\\fI{}\\fR", esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(esc("-O a\\b"), "\\-O a\\eb");
        assert_eq!(esc(".x\n'y\nz."), "\\&.x\n\\&'y\nz.");
        assert_eq!(b("--help"), "\\fB\\-\\-help\\fR");
    }
}
