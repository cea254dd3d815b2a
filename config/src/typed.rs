//! Typed access to settings.
//!
//! Conversion errors name the origin, `[section] option` and the offending value, except for
//! secret options: there the value is left out and scrubbed from the reason as well, since a
//! `FromStr` error may quote its input.

use std::fmt::Display;
use std::str::FromStr;

use crate::config::{Config, Setting};
use crate::error::{ConfigError, Origin};
use crate::text::scrub;

impl Config {
    /// Typed access with errors naming origin, section, option and (unless secret) value.
    /// `Ok(None)` if the option is unset and has no default.
    pub fn parse<T: FromStr>(&self, section: &str, option: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: Display,
    {
        self.get(section, option)
            .map(|s| self.convert(section, option, s))
            .transpose()
    }

    /// Every value of a (repeatable) option, converted; fails on the first bad one.
    pub fn parse_all<T: FromStr>(&self, section: &str, option: &str) -> Result<Vec<T>, ConfigError>
    where
        T::Err: Display,
    {
        self.get_all(section, option)
            .into_iter()
            .map(|s| self.convert(section, option, s))
            .collect()
    }

    /// Like [`Config::parse`], but a [`ConfigError::Missing`] error if the option is unset.
    pub fn require<T: FromStr>(&self, section: &str, option: &str) -> Result<T, ConfigError>
    where
        T::Err: Display,
    {
        self.parse(section, option)?
            .ok_or_else(|| ConfigError::Missing {
                section: section.to_string(),
                option: option.to_string(),
            })
    }

    /// A boolean: `true/false`, `yes/no`, `on/off` or `1/0`, in any letter case.
    pub fn parse_bool(&self, section: &str, option: &str) -> Result<Option<bool>, ConfigError> {
        let Some(setting) = self.get(section, option) else {
            return Ok(None);
        };
        match setting.value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Some(true)),
            "false" | "no" | "off" | "0" => Ok(Some(false)),
            _ => Err(self.invalid_setting(
                section,
                option,
                setting,
                "expected true/false, yes/no, on/off or 1/0".to_string(),
            )),
        }
    }

    /// Build an Invalid error for an option whose value failed a check done by the caller (e.g.
    /// a range). It points at the effective setting (origin [`Origin::Default`] and no value if
    /// the option is unset). For a secret option the value is left out of the error and
    /// scrubbed from `reason`.
    pub fn invalid(&self, section: &str, option: &str, reason: impl Into<String>) -> ConfigError {
        match self.get(section, option) {
            Some(setting) => self.invalid_setting(section, option, setting, reason.into()),
            None => ConfigError::Invalid {
                origin: Origin::Default,
                section: section.to_string(),
                option: option.to_string(),
                value: None,
                reason: reason.into(),
            },
        }
    }

    fn convert<T: FromStr>(
        &self,
        section: &str,
        option: &str,
        setting: &Setting,
    ) -> Result<T, ConfigError>
    where
        T::Err: Display,
    {
        setting
            .value
            .parse()
            .map_err(|e: T::Err| self.invalid_setting(section, option, setting, e.to_string()))
    }

    fn invalid_setting(
        &self,
        section: &str,
        option: &str,
        setting: &Setting,
        reason: String,
    ) -> ConfigError {
        let secret = self
            .index(section, option)
            .is_some_and(|i| self.spec(i).secret);
        let (value, reason) = if secret {
            (None, scrub(reason, &setting.value))
        } else {
            (Some(setting.value.clone()), reason)
        };
        ConfigError::Invalid {
            origin: setting.origin.clone(),
            section: section.to_string(),
            option: option.to_string(),
            value,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::SCHEMA;
    use std::net::Ipv4Addr;
    use std::path::Path;

    fn load(text: &str, overrides: &[&str]) -> Config {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Config::from_bytes(
            &SCHEMA,
            "home",
            Some((Path::new("/etc/weft/home.conf"), text.as_bytes())),
            &overrides,
        )
        .unwrap()
    }

    #[test]
    fn parse_typed_values() {
        let c = load("[tuntap]\naddress = 10.0.0.2\n", &[]);
        assert_eq!(c.parse::<u16>("tuntap", "mtu").unwrap(), Some(1400));
        assert_eq!(
            c.parse::<Ipv4Addr>("tuntap", "address").unwrap(),
            Some(Ipv4Addr::new(10, 0, 0, 2))
        );
        assert_eq!(c.parse::<String>("community", "name").unwrap(), None);
        assert_eq!(c.require::<u16>("tuntap", "mtu").unwrap(), 1400);
    }

    #[test]
    fn invalid_from_command_line_exact_message() {
        let c = load("", &["tuntap.mtu=abc"]);
        let err = c.parse::<u16>("tuntap", "mtu").unwrap_err();
        assert_eq!(
            err.to_string(),
            "command line '-O tuntap.mtu=abc': [tuntap] mtu: invalid value 'abc': invalid digit found in string"
        );
    }

    #[test]
    fn invalid_from_file_names_line() {
        let c = load("[tuntap]\n\nmtu = 99999\n", &[]);
        assert_eq!(
            c.parse::<u16>("tuntap", "mtu").unwrap_err().to_string(),
            "/etc/weft/home.conf:3: [tuntap] mtu: invalid value '99999': number too large to fit in target type"
        );
    }

    #[test]
    fn invalid_default_and_env() {
        let mut c = load("", &[]);
        assert_eq!(
            c.parse::<u8>("logging", "level").unwrap_err().to_string(),
            "default: [logging] level: invalid value 'info': invalid digit found in string"
        );
        c.apply_env("tuntap", "mtu", "WEFT_MTU", "x".into());
        assert_eq!(
            c.parse::<u16>("tuntap", "mtu").unwrap_err().to_string(),
            "environment variable WEFT_MTU: [tuntap] mtu: invalid value 'x': invalid digit found in string"
        );
    }

    #[test]
    fn missing_required() {
        let c = load("", &[]);
        let err = c.require::<String>("community", "name").unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }));
        assert_eq!(
            err.to_string(),
            "missing required option [community] name (set it in the config file or with -O community.name=...)"
        );
    }

    #[test]
    fn parse_all_values_and_first_error() {
        let c = load(
            "[community]\nsupernode = 1.2.3.4\nsupernode = 5.6.7.8\n",
            &[],
        );
        assert_eq!(
            c.parse_all::<Ipv4Addr>("community", "supernode").unwrap(),
            vec![Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8)]
        );
        assert!(c.parse_all::<u8>("tuntap", "address").unwrap().is_empty());
        let c = load("[community]\nsupernode = 1.2.3.4\nsupernode = nope\n", &[]);
        assert_eq!(
            c.parse_all::<Ipv4Addr>("community", "supernode")
                .unwrap_err()
                .to_string(),
            "/etc/weft/home.conf:3: [community] supernode: invalid value 'nope': invalid IPv4 address syntax"
        );
    }

    #[test]
    fn booleans() {
        for (text, want) in [
            ("true", true),
            ("YES", true),
            ("on", true),
            ("1", true),
            ("False", false),
            ("no", false),
            ("OFF", false),
            ("0", false),
        ] {
            let c = load(&format!("[tuntap]\nup = {text}\n"), &[]);
            assert_eq!(c.parse_bool("tuntap", "up").unwrap(), Some(want), "{text}");
        }
        let c = load("", &[]);
        assert_eq!(c.parse_bool("tuntap", "up").unwrap(), Some(true)); // default "yes"
        assert_eq!(c.parse_bool("community", "name").unwrap(), None);
        let c = load("[tuntap]\nup = maybe\n", &[]);
        assert_eq!(
            c.parse_bool("tuntap", "up").unwrap_err().to_string(),
            "/etc/weft/home.conf:2: [tuntap] up: invalid value 'maybe': expected true/false, yes/no, on/off or 1/0"
        );
    }

    #[test]
    fn caller_checks_use_invalid() {
        let c = load("[tuntap]\nmtu = 100\n", &[]);
        let mtu: u16 = c.require("tuntap", "mtu").unwrap();
        assert!(mtu < 576);
        assert_eq!(
            c.invalid("tuntap", "mtu", "must be at least 576")
                .to_string(),
            "/etc/weft/home.conf:2: [tuntap] mtu: invalid value '100': must be at least 576"
        );
        assert_eq!(
            c.invalid("community", "name", "is required for this mode")
                .to_string(),
            "default: [community] name: invalid value: is required for this mode"
        );
    }

    /// A `FromStr` whose error quotes its input, like many hand-written parsers do.
    #[derive(Debug)]
    struct Key;
    impl FromStr for Key {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            Err(format!("key '{s}' is too short"))
        }
    }

    #[test]
    fn secret_values_never_in_error_text() {
        let secret = "hunter2-s3cr3t";
        let file = format!("[community]\nkey = {secret}\n");
        let mut sources = vec![
            load(&file, &[]),
            load("", &[&format!("community.key={secret}")]),
        ];
        let mut env = load("", &[]);
        env.apply_env("community", "key", "WEFT_KEY", secret.into());
        sources.push(env);
        for c in &sources {
            let errors = [
                c.parse::<u32>("community", "key").unwrap_err(),
                c.parse::<Key>("community", "key").unwrap_err(),
                c.parse_all::<Key>("community", "key").unwrap_err(),
                c.require::<Key>("community", "key").unwrap_err(),
                c.parse_bool("community", "key").unwrap_err(),
                c.invalid("community", "key", format!("{secret} is weak")),
            ];
            for err in errors {
                let text = format!("{err} / {err:?}");
                assert!(!text.contains(secret), "{text}");
                assert!(text.contains("[community] key"), "{text}");
            }
        }
        assert_eq!(
            sources[1]
                .parse::<Key>("community", "key")
                .unwrap_err()
                .to_string(),
            "command line '-O community.key=***': [community] key: invalid value: key '***' is too short"
        );
        assert_eq!(
            sources[0]
                .parse::<u32>("community", "key")
                .unwrap_err()
                .to_string(),
            "/etc/weft/home.conf:2: [community] key: invalid value: invalid digit found in string"
        );
    }
}
