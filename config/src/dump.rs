//! The effective configuration as text, for `config show`-style commands and debug logs.
//!
//! Written in INI form with each value's origin as an inline comment; secret values are
//! replaced by `***` so the dump can be pasted into bug reports.

use crate::config::Config;
use crate::text::{ini_value, one_line, REDACTED};

impl Config {
    /// Every option of the schema with its effective value(s) and their origins; unset options
    /// appear commented out. Secret values are shown as `***`.
    pub fn dump(&self) -> String {
        let mut out = format!(
            "# {} configuration for session '{}'",
            self.schema().program,
            one_line(self.session())
        );
        match self.path() {
            Some(p) => out.push_str(&format!(" from {}\n", one_line(&p.display().to_string()))),
            None => out.push_str(" (no config file)\n"),
        }
        let mut section = "";
        for (spec, settings) in self.effective() {
            if spec.section != section {
                section = spec.section;
                out.push_str(&format!("\n[{section}]\n"));
            }
            if settings.is_empty() {
                out.push_str(&format!("#{} =  # not set\n", spec.name));
            }
            for s in settings {
                let value = if spec.secret {
                    REDACTED.into()
                } else {
                    one_line(&s.value)
                };
                out.push_str(&format!(
                    "{} = {}  # {}\n",
                    spec.name,
                    ini_value(&value),
                    s.origin
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::testutil::SCHEMA;
    use std::path::Path;

    #[test]
    fn dump_shows_origins_and_hides_secrets() {
        let text = "[community]\nname = home\nkey = hunter2\nsupernode = a\nsupernode = b\n";
        let mut c = Config::from_bytes(
            &SCHEMA,
            "home",
            Some((Path::new("/etc/weft/home.conf"), text.as_bytes())),
            &["tuntap.mtu=1300".to_string()],
        )
        .unwrap();
        c.apply_env("tuntap", "address", "WEFT_ADDR", "10.0.0.2".into());
        let dump = c.dump();
        assert!(!dump.contains("hunter2"), "{dump}");
        let expected = "\
# weft-test configuration for session 'home' from /etc/weft/home.conf

[community]
name = home  # /etc/weft/home.conf:2
supernode = a  # /etc/weft/home.conf:4
supernode = b  # /etc/weft/home.conf:5
key = ***  # /etc/weft/home.conf:3

[tuntap]
mtu = 1300  # command line '-O tuntap.mtu=1300'
address = 10.0.0.2  # environment variable WEFT_ADDR
up = yes  # default
route = 10.0.0.0/8  # default

[logging]
level = info  # default
prefix = \" weft # \"  # default
";
        assert_eq!(dump, expected);
    }

    #[test]
    fn dump_marks_unset_options() {
        let c = Config::load(&SCHEMA, "s", None, &[]).unwrap();
        let dump = c.dump();
        assert!(dump.starts_with("# weft-test configuration for session 's' (no config file)\n"));
        assert!(dump.contains("\n#name =  # not set\n"), "{dump}");
    }
}
