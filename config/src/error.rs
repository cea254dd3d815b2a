//! The error type and the [`Origin`] every setting carries.
//!
//! Every message is one line and starts with where the problem is (`file:line` or the command-line
//! argument) so that an operator can jump straight to it. Values of secret options are never part
//! of any message: [`crate::Config`] leaves them out (or redacts them) when it builds the error.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::text::one_line;

/// Where a setting came from; shown at the start of error messages and in dumps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of a config file (1-based).
    File { path: PathBuf, line: usize },
    /// A `-O` argument, without the `-O` itself. For secret (and unknown) options the value part
    /// has already been replaced by `***`.
    CommandLine { arg: String },
    /// An environment variable the daemon mapped onto an option.
    Environment { var: String },
    /// The schema default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", show_path(path)),
            Origin::CommandLine { arg } => write!(f, "command line '-O {}'", one_line(arg)),
            Origin::Environment { var } => write!(f, "environment variable {}", one_line(var)),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// Everything that can go wrong while loading or reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("{}: cannot read: {source}", show_path(.path))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line the INI reader could not make sense of (also: invalid UTF-8, option before any
    /// section header).
    #[error("{}:{line}: {}", show_path(.path), one_line(.message))]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A `[section]` header naming a section no option of the schema lives in.
    #[error("{}:{line}: unknown section [{}]", show_path(.path), one_line(.section))]
    UnknownSection {
        path: PathBuf,
        line: usize,
        section: String,
    },
    /// An option the schema does not know, in a known section.
    #[error("{origin}: unknown option [{}] {}{}", one_line(.section), one_line(.option), did_you_mean(.suggestion))]
    UnknownOption {
        origin: Origin,
        section: String,
        option: String,
        /// The closest known option name in the same section, if one is close enough.
        suggestion: Option<String>,
    },
    /// A non-repeatable option set twice in the file (or twice on the command line).
    #[error("{second}: duplicate option [{}] {} (already set at {first}; only repeatable options may be given more than once)", one_line(.section), one_line(.option))]
    Duplicate {
        section: String,
        option: String,
        first: Origin,
        second: Origin,
    },
    /// A `-O` argument that is not `section.option=value` or names an unknown section. `arg`
    /// has everything after the first `=` replaced by `***`, since it may be a secret.
    #[error("command line '-O {}': {}", one_line(.arg), one_line(.message))]
    BadOverride { arg: String, message: String },
    /// A value that does not parse or failed a check. `value` is `None` for secret options.
    #[error("{origin}: [{}] {}: invalid value{}: {}", one_line(.section), one_line(.option), quoted_value(.value), one_line(.reason))]
    Invalid {
        origin: Origin,
        section: String,
        option: String,
        value: Option<String>,
        reason: String,
    },
    /// A required option that is set nowhere and has no default.
    #[error("missing required option [{section}] {option} (set it in the config file or with -O {section}.{option}=...)")]
    Missing { section: String, option: String },
    /// A session name (given directly or as a file stem) that is not 1-32 chars of
    /// `[A-Za-z0-9_.-]` not starting with `.`.
    #[error("invalid session name '{}': {reason}", one_line(.name))]
    BadSession { name: String, reason: String },
}

fn show_path(path: &Path) -> String {
    one_line(&path.display().to_string()).into_owned()
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean '{}'?)", one_line(s)),
        None => String::new(),
    }
}

fn quoted_value(value: &Option<String>) -> String {
    match value {
        Some(v) => format!(" '{}'", one_line(v)),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(line: usize) -> Origin {
        Origin::File {
            path: "/etc/weft/home.conf".into(),
            line,
        }
    }

    #[test]
    fn origin_display() {
        assert_eq!(file(12).to_string(), "/etc/weft/home.conf:12");
        let cl = Origin::CommandLine {
            arg: "tuntap.mtu=9".into(),
        };
        assert_eq!(cl.to_string(), "command line '-O tuntap.mtu=9'");
        let env = Origin::Environment {
            var: "WEFT_KEY".into(),
        };
        assert_eq!(env.to_string(), "environment variable WEFT_KEY");
        assert_eq!(Origin::Default.to_string(), "default");
    }

    #[test]
    fn messages_stay_on_one_line() {
        let e = ConfigError::Invalid {
            origin: Origin::CommandLine {
                arg: "a.b=x\ny".into(),
            },
            section: "a".into(),
            option: "b".into(),
            value: Some("x\ny".into()),
            reason: "bad\r\nthing".into(),
        };
        let msg = e.to_string();
        assert!(!msg.contains('\n') && !msg.contains('\r'), "{msg}");
        assert_eq!(
            msg,
            "command line '-O a.b=x\\ny': [a] b: invalid value 'x\\ny': bad\\r\\nthing"
        );
    }

    #[test]
    fn invalid_without_value_omits_quotes() {
        let e = ConfigError::Invalid {
            origin: Origin::Default,
            section: "community".into(),
            option: "key".into(),
            value: None,
            reason: "too short".into(),
        };
        assert_eq!(
            e.to_string(),
            "default: [community] key: invalid value: too short"
        );
    }

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<ConfigError>();
    }
}
