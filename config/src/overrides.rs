//! Splitting `-O section.option=value` command-line arguments (given without the `-O`).
//!
//! Only the syntax is checked here; [`crate::Config`] checks the names against the schema.
//! Section, option and value are trimmed like in the file; no quote processing is done because
//! the shell already handled quoting.

use crate::text::REDACTED;

/// The parts of one override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Override<'a> {
    pub section: &'a str,
    pub option: &'a str,
    pub value: &'a str,
}

/// Splits at the first `=` and the first `.` before it, so values may contain both.
pub(crate) fn split(arg: &str) -> Result<Override<'_>, String> {
    const SHAPE: &str = "expected section.option=value";
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("{SHAPE} (no '=')"))?;
    let (section, option) = name
        .split_once('.')
        .ok_or_else(|| format!("{SHAPE} (no '.' between section and option)"))?;
    let (section, option) = (section.trim(), option.trim());
    if section.is_empty() {
        return Err(format!("{SHAPE} (empty section name)"));
    }
    if option.is_empty() {
        return Err(format!("{SHAPE} (empty option name)"));
    }
    Ok(Override {
        section,
        option,
        value: value.trim(),
    })
}

/// The argument with everything after the first `=` replaced by `***`, for messages about
/// arguments whose value may be secret.
pub(crate) fn redact(arg: &str) -> String {
    match arg.split_once('=') {
        Some((name, _)) => format!("{name}={REDACTED}"),
        None => arg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(section: &'static str, option: &'static str, value: &'static str) -> Override<'static> {
        Override {
            section,
            option,
            value,
        }
    }

    #[test]
    fn splits_and_trims() {
        assert_eq!(split("tuntap.mtu=1400"), Ok(ok("tuntap", "mtu", "1400")));
        assert_eq!(
            split(" tuntap . mtu = 1400 "),
            Ok(ok("tuntap", "mtu", "1400"))
        );
        assert_eq!(split("community.name="), Ok(ok("community", "name", "")));
        assert_eq!(
            split("community.supernode=sn.example.org:7700"),
            Ok(ok("community", "supernode", "sn.example.org:7700"))
        );
        assert_eq!(split("a.b=c=d"), Ok(ok("a", "b", "c=d")));
        assert_eq!(split("a.b.c=d"), Ok(ok("a", "b.c", "d")));
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(
            split("tuntap.mtu"),
            Err("expected section.option=value (no '=')".into())
        );
        assert_eq!(
            split("mtu=9"),
            Err("expected section.option=value (no '.' between section and option)".into())
        );
        assert_eq!(
            split(".mtu=9"),
            Err("expected section.option=value (empty section name)".into())
        );
        assert_eq!(
            split("tuntap.=9"),
            Err("expected section.option=value (empty option name)".into())
        );
        assert!(split("").is_err());
    }

    #[test]
    fn redacts_value_part() {
        assert_eq!(redact("community.key=s3cr3t=x"), "community.key=***");
        assert_eq!(redact("community.key"), "community.key");
    }
}
