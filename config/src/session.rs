//! Turning the argument of `start <session|path>` into a session name and config file path.
//!
//! Session names end up in file names, interface names and log lines, so they are restricted to
//! a small safe alphabet.

use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::text::one_line;

/// Longest allowed session name.
pub const MAX_SESSION_LEN: usize = 32;

/// `start <session|path>`: an argument containing '/' or ending in ".conf" is a path, and the
/// session name is the file stem; otherwise it is a session name and the file is
/// `<etc_dir>/<session>.conf`. Session names: 1-32 chars `[A-Za-z0-9_.-]`, not starting with
/// '.'; anything else is a [`ConfigError::BadSession`].
pub fn resolve_start_arg(arg: &str, etc_dir: &Path) -> Result<(String, PathBuf), ConfigError> {
    if arg.contains('/') || arg.ends_with(".conf") {
        let path = PathBuf::from(arg);
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        validate_session_name(&stem).map_err(|e| match e {
            ConfigError::BadSession { name, reason } => ConfigError::BadSession {
                name,
                reason: format!(
                    "{reason} (the session name is the file name of '{}' without '.conf')",
                    one_line(arg)
                ),
            },
            other => other,
        })?;
        Ok((stem, path))
    } else {
        validate_session_name(arg)?;
        Ok((arg.to_string(), etc_dir.join(format!("{arg}.conf"))))
    }
}

/// Checks a session name: 1-32 chars of `[A-Za-z0-9_.-]`, not starting with '.'.
pub fn validate_session_name(name: &str) -> Result<(), ConfigError> {
    let bad = |reason: String| {
        Err(ConfigError::BadSession {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("must not be empty".to_string());
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return bad(format!(
            "contains '{}' (allowed: letters, digits, '_', '.' and '-')",
            one_line(&c.to_string())
        ));
    }
    if name.starts_with('.') {
        return bad("must not start with '.'".to_string());
    }
    if name.len() > MAX_SESSION_LEN {
        return bad(format!("longer than {MAX_SESSION_LEN} characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ETC: &str = "/etc/weft";

    fn ok(arg: &str) -> (String, PathBuf) {
        resolve_start_arg(arg, Path::new(ETC)).unwrap()
    }

    fn err(arg: &str) -> String {
        resolve_start_arg(arg, Path::new(ETC))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn session_names_map_to_etc_dir() {
        assert_eq!(ok("home"), ("home".into(), "/etc/weft/home.conf".into()));
        assert_eq!(
            ok("Office_2.eu-west"),
            (
                "Office_2.eu-west".into(),
                "/etc/weft/Office_2.eu-west.conf".into()
            )
        );
        let max = "a".repeat(32);
        assert_eq!(ok(&max).0, max);
    }

    #[test]
    fn paths_use_the_file_stem() {
        assert_eq!(ok("/tmp/x.conf"), ("x".into(), "/tmp/x.conf".into()));
        assert_eq!(ok("home.conf"), ("home".into(), "home.conf".into()));
        assert_eq!(ok("./lab/net"), ("net".into(), "./lab/net".into()));
        assert_eq!(ok("cfg/a.b.conf"), ("a.b".into(), "cfg/a.b.conf".into()));
    }

    #[test]
    fn bad_session_names() {
        assert_eq!(err(""), "invalid session name '': must not be empty");
        assert_eq!(
            err(".hidden"),
            "invalid session name '.hidden': must not start with '.'"
        );
        assert_eq!(
            err(&"a".repeat(33)),
            format!(
                "invalid session name '{}': longer than 32 characters",
                "a".repeat(33)
            )
        );
        assert_eq!(
            err("my home"),
            "invalid session name 'my home': contains ' ' (allowed: letters, digits, '_', '.' and '-')"
        );
        assert_eq!(
            err("café"),
            "invalid session name 'café': contains 'é' (allowed: letters, digits, '_', '.' and '-')"
        );
        assert_eq!(
            err("a\nb"),
            "invalid session name 'a\\nb': contains '\\n' (allowed: letters, digits, '_', '.' and '-')"
        );
        assert!(matches!(
            resolve_start_arg("..", Path::new(ETC)),
            Err(ConfigError::BadSession { .. })
        ));
    }

    #[test]
    fn bad_names_from_paths_mention_the_path() {
        assert_eq!(
            err("/etc/weft/.conf"),
            "invalid session name '.conf': must not start with '.' (the session name is the file \
             name of '/etc/weft/.conf' without '.conf')"
        );
        assert_eq!(
            err("/"),
            "invalid session name '': must not be empty (the session name is the file name of \
             '/' without '.conf')"
        );
        assert!(err("/tmp/my net.conf").contains("contains ' '"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any argument either resolves to a valid session or fails cleanly.
        #[test]
        fn arbitrary_args_never_panic(arg in "\\PC{0,40}") {
            if let Ok((session, _)) = resolve_start_arg(&arg, Path::new(ETC)) {
                prop_assert!(validate_session_name(&session).is_ok());
            }
        }
    }
}
