//! The text of `weft-edge help config` / `weft-supernode help config`.
//!
//! It is generated from the schema so it cannot drift from what the reader accepts, and it is
//! written as a commented-out config file: every line is a comment or a section header, and
//! removing the `#` in front of an option line gives a valid setting.

use crate::schema::{OptionSpec, Schema};
use crate::text::{ini_value, wrap};

/// Width the text is wrapped to (words longer than this stay whole).
const WIDTH: usize = 80;

/// Text for `weft-edge help config`: every option grouped by section, with its default (or
/// "(none)"), whether it is repeatable, and its help text, wrapped to 80 columns, in INI-like
/// form so it can be pasted into a file.
pub fn help_text(schema: &Schema) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        &format!(
            "{} configuration options. Copy what you need into /etc/weft/<session>.conf and \
             remove the '#' in front of the option. Repeatable options may be given several \
             times. Any option can also be set on the command line with \
             -O section.option=value.",
            schema.program
        ),
    );
    for section in schema.sections() {
        out.push_str(&format!("\n[{section}]\n"));
        for spec in schema.options.iter().filter(|o| o.section == section) {
            out.push('\n');
            option(&mut out, spec);
        }
    }
    out
}

fn option(out: &mut String, spec: &OptionSpec) {
    comment(out, spec.help);
    let default = match spec.default {
        None => "(none)".to_string(),
        Some("") => "\"\" (empty)".to_string(),
        Some(d) => ini_value(d).into_owned(),
    };
    comment(out, &format!("Default: {default}"));
    if spec.repeatable {
        comment(out, "Repeatable: give it once per value.");
    }
    if spec.secret {
        comment(out, "Secret: never shown in error messages or dumps.");
    }
    let sample = spec.default.map(ini_value).unwrap_or_default();
    let line = format!("#{} = {sample}", spec.name);
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Appends `text` as `# `-prefixed lines wrapped to [`WIDTH`].
fn comment(out: &mut String, text: &str) {
    for line in wrap(text, WIDTH - 2) {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(&line);
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::testutil::SCHEMA;
    use std::path::Path;

    #[test]
    fn lists_every_option_with_default() {
        let text = help_text(&SCHEMA);
        for spec in SCHEMA.options {
            let sample = match spec.default {
                Some(d) => format!("\n#{} = {}\n", spec.name, ini_value(d)),
                None => format!("\n#{} =\n", spec.name),
            };
            assert!(text.contains(&sample), "{sample:?} missing from\n{text}");
        }
        assert!(text.contains("[community]\n") && text.contains("[tuntap]\n"));
        assert!(text.contains("# Default: 1400\n#mtu = 1400\n"), "{text}");
        assert!(text.contains("# Default: (none)\n#name =\n"), "{text}");
        assert!(text.contains("# Default: \" weft # \"\n"), "{text}");
        assert!(text
            .contains("# Default: (none)\n# Repeatable: give it once per value.\n#supernode =\n"));
        assert!(text.contains("# Secret: never shown in error messages or dumps.\n#key =\n"));
    }

    #[test]
    fn exact_layout_of_one_option() {
        let text = help_text(&SCHEMA);
        assert!(text.starts_with("# weft-test configuration options. Copy what you need into"));
        assert!(text.contains(
            "\n[tuntap]\n\n# MTU of the virtual interface.\n# Default: 1400\n#mtu = 1400\n\n"
        ));
    }

    #[test]
    fn fits_in_80_columns() {
        for line in help_text(&SCHEMA).lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
    }

    #[test]
    fn is_a_valid_config_file_as_is_and_uncommented() {
        let text = help_text(&SCHEMA);
        let path = Path::new("help.conf");
        let c = Config::from_bytes(&SCHEMA, "h", Some((path, text.as_bytes())), &[]).unwrap();
        assert_eq!(c.get("tuntap", "mtu").unwrap().value, "1400");

        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.starts_with(' ') && !rest.is_empty() => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c =
            Config::from_bytes(&SCHEMA, "h", Some((path, uncommented.as_bytes())), &[]).unwrap();
        for spec in SCHEMA.options {
            let got = c.get(spec.section, spec.name).unwrap();
            assert_eq!(
                got.value,
                spec.default.unwrap_or(""),
                "[{}] {}",
                spec.section,
                spec.name
            );
            assert!(matches!(got.origin, crate::Origin::File { .. }));
        }
    }
}
