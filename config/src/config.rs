//! Layering the config file, environment, command line and schema defaults into a [`Config`].
//!
//! Precedence for a single-valued option: command line > environment > file > default. For a
//! repeatable option the strongest layer that has any value supplies *all* values (so `-O` on the
//! command line replaces the file's list instead of appending to it).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Origin};
use crate::ini::{Item, Reader};
use crate::overrides;
use crate::schema::{OptionSpec, Schema};
use crate::text::REDACTED;

/// One value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub origin: Origin,
}

/// Every source's values for one option; the accessors pick the strongest non-empty layer.
#[derive(Debug, Clone, Default)]
struct Layers {
    command_line: Vec<Setting>,
    environment: Option<Setting>,
    file: Vec<Setting>,
    default: Option<Setting>,
}

impl Layers {
    fn effective(&self) -> &[Setting] {
        if !self.command_line.is_empty() {
            &self.command_line
        } else if let Some(env) = &self.environment {
            std::slice::from_ref(env)
        } else if !self.file.is_empty() {
            &self.file
        } else {
            self.default.as_slice()
        }
    }
}

/// The loaded configuration of one session.
///
/// `Debug` hides the values of secret options.
#[derive(Clone)]
pub struct Config {
    schema: Schema,
    session: String,
    path: Option<PathBuf>,
    /// Parallel to `schema.options`.
    layers: Vec<Layers>,
}

impl Config {
    /// Parse the file (if any), then apply `-O section.option=value` overrides (the strings
    /// without the "-O"). Fails on the first problem, in file order and then argument order.
    pub fn load(
        schema: &Schema,
        session: &str,
        file: Option<&Path>,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let contents = match file {
            Some(path) => Some(std::fs::read(path).map_err(|source| ConfigError::Io {
                path: path.to_path_buf(),
                source,
            })?),
            None => None,
        };
        let file = file.zip(contents.as_deref());
        Self::from_bytes(schema, session, file, overrides)
    }

    /// Like [`Config::load`], but with the file contents already in memory (tests, embedded
    /// configs). `file` is the path to report in errors and its contents.
    pub fn from_bytes(
        schema: &Schema,
        session: &str,
        file: Option<(&Path, &[u8])>,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let mut config = Config {
            schema: *schema,
            session: session.to_string(),
            path: file.map(|(path, _)| path.to_path_buf()),
            layers: schema
                .options
                .iter()
                .map(|spec| Layers {
                    default: spec.default.map(|value| Setting {
                        value: value.to_string(),
                        origin: Origin::Default,
                    }),
                    ..Layers::default()
                })
                .collect(),
        };
        if let Some((path, bytes)) = file {
            config.read_file(path, bytes)?;
        }
        for arg in overrides {
            config.apply_override(arg)?;
        }
        Ok(config)
    }

    fn read_file(&mut self, path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
        for item in Reader::new(bytes) {
            let item = item.map_err(|e| ConfigError::Syntax {
                path: path.to_path_buf(),
                line: e.line,
                message: e.message,
            })?;
            match item {
                Item::Section { name, line } => {
                    if !self.schema.has_section(name) {
                        return Err(ConfigError::UnknownSection {
                            path: path.to_path_buf(),
                            line,
                            section: name.to_string(),
                        });
                    }
                }
                Item::Entry {
                    section,
                    key,
                    value,
                    line,
                } => {
                    let origin = Origin::File {
                        path: path.to_path_buf(),
                        line,
                    };
                    let index = self.known(section, key, &origin)?;
                    let spec = &self.schema.options[index];
                    add(
                        &mut self.layers[index].file,
                        spec,
                        Setting { value, origin },
                    )?;
                }
            }
        }
        Ok(())
    }

    fn apply_override(&mut self, arg: &str) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::BadOverride {
            arg: overrides::redact(arg),
            message,
        };
        let parts = overrides::split(arg).map_err(bad)?;
        if !self.schema.has_section(parts.section) {
            return Err(bad(format!("unknown section [{}]", parts.section)));
        }
        // Unknown options are usually typos, quite possibly of a secret's name: hide the value.
        let redacted = Origin::CommandLine {
            arg: overrides::redact(arg),
        };
        let index = self.known(parts.section, parts.option, &redacted)?;
        let spec = &self.schema.options[index];
        let origin = if spec.secret {
            redacted
        } else {
            Origin::CommandLine {
                arg: arg.to_string(),
            }
        };
        let setting = Setting {
            value: parts.value.to_string(),
            origin,
        };
        add(&mut self.layers[index].command_line, spec, setting)
    }

    /// The schema index of a known option, or an UnknownOption error at `origin`.
    fn known(&self, section: &str, option: &str, origin: &Origin) -> Result<usize, ConfigError> {
        self.schema
            .index_of(section, option)
            .ok_or_else(|| ConfigError::UnknownOption {
                origin: origin.clone(),
                section: section.to_string(),
                option: option.to_string(),
                suggestion: self.schema.suggest(section, option).map(str::to_string),
            })
    }

    /// Schema index of an option the daemon asks about. Asking for an option the schema does not
    /// declare is a bug in the daemon, caught in debug builds.
    pub(crate) fn index(&self, section: &str, option: &str) -> Option<usize> {
        let index = self.schema.index_of(section, option);
        debug_assert!(
            index.is_some(),
            "option [{section}] {option} is not in the {} schema",
            self.schema.program
        );
        index
    }

    pub(crate) fn spec(&self, index: usize) -> &'static OptionSpec {
        &self.schema.options[index]
    }

    pub(crate) fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The session name this configuration was loaded for.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The config file, if one was read.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The effective single setting: command line > environment > file > schema default. None
    /// if unset and no default. For a repeatable option: the first of [`Config::get_all`].
    pub fn get(&self, section: &str, option: &str) -> Option<&Setting> {
        let index = self.index(section, option)?;
        self.layers[index].effective().first()
    }

    /// All values of a repeatable option (command-line values, when any, replace the file's;
    /// default used if none). Works for single-valued options too (at most one element).
    pub fn get_all(&self, section: &str, option: &str) -> Vec<&Setting> {
        match self.index(section, option) {
            Some(index) => self.layers[index].effective().iter().collect(),
            None => Vec::new(),
        }
    }

    /// Set from an environment variable unless the command line already set it (edge uses
    /// WEFT_KEY -> community.key). For a repeatable option the variable supplies one value that
    /// replaces the file's. Calling it again for the same option replaces the earlier value.
    pub fn apply_env(&mut self, section: &str, option: &str, var: &str, value: String) {
        let Some(index) = self.index(section, option) else {
            return;
        };
        let layers = &mut self.layers[index];
        if layers.command_line.is_empty() {
            layers.environment = Some(Setting {
                value,
                origin: Origin::Environment {
                    var: var.to_string(),
                },
            });
        }
    }

    /// Every option with its effective settings, in schema order (for dumps).
    pub(crate) fn effective(&self) -> impl Iterator<Item = (&'static OptionSpec, &[Setting])> {
        self.schema
            .options
            .iter()
            .zip(&self.layers)
            .map(|(spec, layers)| (spec, layers.effective()))
    }
}

/// Adds a setting to one layer; a second value for a non-repeatable option is an error.
fn add(layer: &mut Vec<Setting>, spec: &OptionSpec, setting: Setting) -> Result<(), ConfigError> {
    if !spec.repeatable {
        if let Some(first) = layer.first() {
            return Err(ConfigError::Duplicate {
                section: spec.section.to_string(),
                option: spec.name.to_string(),
                first: first.origin.clone(),
                second: setting.origin,
            });
        }
    }
    layer.push(setting);
    Ok(())
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (spec, settings) in self.effective() {
            let values: Vec<(&str, String)> = settings
                .iter()
                .map(|s| {
                    let value = if spec.secret { REDACTED } else { &s.value };
                    (value, s.origin.to_string())
                })
                .collect();
            map.entry(&format_args!("[{}] {}", spec.section, spec.name), &values);
        }
        map.finish()?;
        write!(f, " (session {:?}, file {:?})", self.session, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::SCHEMA;
    use proptest::prelude::*;
    use std::io::Write;

    const PATH: &str = "/etc/weft/home.conf";

    fn load(text: &str, overrides: &[&str]) -> Result<Config, ConfigError> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Config::from_bytes(
            &SCHEMA,
            "home",
            Some((Path::new(PATH), text.as_bytes())),
            &overrides,
        )
    }

    fn load_err(text: &str, overrides: &[&str]) -> String {
        load(text, overrides).unwrap_err().to_string()
    }

    fn value<'a>(c: &'a Config, s: &str, o: &str) -> Option<&'a str> {
        c.get(s, o).map(|s| s.value.as_str())
    }

    fn values<'a>(c: &'a Config, s: &str, o: &str) -> Vec<&'a str> {
        c.get_all(s, o)
            .into_iter()
            .map(|s| s.value.as_str())
            .collect()
    }

    const EXAMPLE: &str = "\
# comment   ; comment
[community]
name = home
supernode = sn.example.org:7700
supernode = 198.51.100.7      # repeatable options appear several times
[tuntap]
mtu=1400
";

    #[test]
    fn loads_the_example_file_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home.conf");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(EXAMPLE.as_bytes())
            .unwrap();
        let c = Config::load(&SCHEMA, "home", Some(&path), &[]).unwrap();
        assert_eq!(c.session(), "home");
        assert_eq!(c.path(), Some(path.as_path()));
        assert_eq!(value(&c, "community", "name"), Some("home"));
        assert_eq!(
            values(&c, "community", "supernode"),
            vec!["sn.example.org:7700", "198.51.100.7"]
        );
        let mtu = c.get("tuntap", "mtu").unwrap();
        assert_eq!(mtu.value, "1400");
        assert_eq!(mtu.origin, Origin::File { path, line: 7 });
    }

    #[test]
    fn no_file_gives_defaults() {
        let c = Config::load(&SCHEMA, "s", None, &[]).unwrap();
        assert_eq!(c.path(), None);
        let mtu = c.get("tuntap", "mtu").unwrap();
        assert_eq!(
            (mtu.value.as_str(), &mtu.origin),
            ("1400", &Origin::Default)
        );
        assert_eq!(c.get("community", "name"), None);
        assert!(c.get_all("community", "supernode").is_empty());
        assert_eq!(values(&c, "tuntap", "route"), vec!["10.0.0.0/8"]);
    }

    #[test]
    fn empty_value_is_set_not_missing() {
        let c = load("[community]\nname =\n", &[]).unwrap();
        assert_eq!(value(&c, "community", "name"), Some(""));
    }

    #[test]
    fn sections_may_be_reopened() {
        let c = load(
            "[community]\nname=a\n[tuntap]\nmtu=1\n[community]\nsupernode=x\n",
            &[],
        )
        .unwrap();
        assert_eq!(value(&c, "community", "name"), Some("a"));
        assert_eq!(values(&c, "community", "supernode"), vec!["x"]);
    }

    #[test]
    fn io_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.conf");
        let err = Config::load(&SCHEMA, "x", Some(&path), &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "{}: cannot read: No such file or directory (os error 2)",
                path.display()
            )
        );
    }

    #[test]
    fn io_error_exact_example() {
        let err = Config::load(&SCHEMA, "x", Some(Path::new("/tmp/x.conf")), &[]);
        if Path::new("/tmp/x.conf").exists() {
            return; // someone else's file; the tempdir test above covers the message
        }
        assert_eq!(
            err.unwrap_err().to_string(),
            "/tmp/x.conf: cannot read: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        assert_eq!(
            load_err("[community]\nname = \"home\n", &[]),
            "/etc/weft/home.conf:2: unterminated quoted value (missing closing '\"')"
        );
        assert_eq!(
            load_err("# top\nname = home\n", &[]),
            "/etc/weft/home.conf:2: option 'name' is outside any section (put a [section] header above it)"
        );
    }

    #[test]
    fn unknown_section() {
        let err = load("[community]\nname=a\n[tuntapp]\nmtu=1\n", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownSection { line: 3, .. }));
        assert_eq!(
            err.to_string(),
            "/etc/weft/home.conf:3: unknown section [tuntapp]"
        );
    }

    #[test]
    fn unknown_option_with_and_without_suggestion() {
        let text = "[tuntap]\n\n\n\n\n\n\n\n\n\n\nmtuu = 1400\n";
        assert_eq!(
            load_err(text, &[]),
            "/etc/weft/home.conf:12: unknown option [tuntap] mtuu (did you mean 'mtu'?)"
        );
        assert_eq!(
            load_err("[tuntap]\nbandwidth = 9\n", &[]),
            "/etc/weft/home.conf:2: unknown option [tuntap] bandwidth"
        );
        // The option exists, but in another section.
        assert_eq!(
            load_err("[community]\nmtu = 9\n", &[]),
            "/etc/weft/home.conf:2: unknown option [community] mtu"
        );
    }

    #[test]
    fn duplicate_in_file_names_both_lines() {
        let err = load("[community]\nname = a\n\nname = b\n", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/weft/home.conf:4: duplicate option [community] name (already set at \
             /etc/weft/home.conf:2; only repeatable options may be given more than once)"
        );
        match err {
            ConfigError::Duplicate { first, second, .. } => {
                assert_eq!(first.to_string(), "/etc/weft/home.conf:2");
                assert_eq!(second.to_string(), "/etc/weft/home.conf:4");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_on_command_line() {
        assert_eq!(
            load_err("", &["tuntap.mtu=1", "tuntap.mtu=2"]),
            "command line '-O tuntap.mtu=2': duplicate option [tuntap] mtu (already set at \
             command line '-O tuntap.mtu=1'; only repeatable options may be given more than once)"
        );
    }

    #[test]
    fn file_and_command_line_are_not_duplicates() {
        let c = load("[tuntap]\nmtu=1\n", &["tuntap.mtu=2"]).unwrap();
        assert_eq!(value(&c, "tuntap", "mtu"), Some("2"));
    }

    #[test]
    fn bad_overrides() {
        assert_eq!(
            load_err("", &["tuntap.mtu"]),
            "command line '-O tuntap.mtu': expected section.option=value (no '=')"
        );
        assert_eq!(
            load_err("", &["mtu=9"]),
            "command line '-O mtu=***': expected section.option=value (no '.' between section and option)"
        );
        assert_eq!(
            load_err("", &["tuntapp.mtu=9"]),
            "command line '-O tuntapp.mtu=***': unknown section [tuntapp]"
        );
        assert!(matches!(
            load("", &["tuntapp.mtu=9"]).unwrap_err(),
            ConfigError::BadOverride { .. }
        ));
    }

    #[test]
    fn unknown_option_on_command_line_hides_value() {
        let err = load("", &["community.kye=hunter2"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "command line '-O community.kye=***': unknown option [community] kye (did you mean 'key'?)"
        );
        assert!(matches!(
            err,
            ConfigError::UnknownOption { suggestion: Some(ref s), .. } if s == "key"
        ));
    }

    #[test]
    fn precedence_command_line_env_file_default() {
        let file = "[tuntap]\nmtu = 1300\n[community]\nkey = from-file\nname = f\n";
        // default only
        let c = load("", &[]).unwrap();
        assert_eq!(c.get("tuntap", "mtu").unwrap().origin, Origin::Default);
        // file beats default
        let c = load(file, &[]).unwrap();
        assert_eq!(value(&c, "tuntap", "mtu"), Some("1300"));
        // env beats file
        let mut c = load(file, &[]).unwrap();
        c.apply_env("community", "key", "WEFT_KEY", "from-env".into());
        let key = c.get("community", "key").unwrap();
        assert_eq!(key.value, "from-env");
        assert_eq!(key.origin.to_string(), "environment variable WEFT_KEY");
        // command line beats env (regardless of call order) and file
        let mut c = load(file, &["community.key=from-cli", "tuntap.mtu=9000"]).unwrap();
        c.apply_env("community", "key", "WEFT_KEY", "from-env".into());
        assert_eq!(value(&c, "community", "key"), Some("from-cli"));
        assert_eq!(value(&c, "tuntap", "mtu"), Some("9000"));
        assert_eq!(
            c.get("tuntap", "mtu").unwrap().origin.to_string(),
            "command line '-O tuntap.mtu=9000'"
        );
        // env beats default when there is no file value
        let mut c = load("", &[]).unwrap();
        c.apply_env("tuntap", "mtu", "WEFT_MTU", "1200".into());
        assert_eq!(value(&c, "tuntap", "mtu"), Some("1200"));
        // a later apply_env replaces an earlier one
        c.apply_env("tuntap", "mtu", "WEFT_MTU2", "1100".into());
        assert_eq!(value(&c, "tuntap", "mtu"), Some("1100"));
    }

    #[test]
    fn repeatable_layers_replace_not_append() {
        let file = "[community]\nsupernode = a\nsupernode = b\n[tuntap]\nroute = 10.1.0.0/16\n";
        let c = load(file, &[]).unwrap();
        assert_eq!(values(&c, "community", "supernode"), vec!["a", "b"]);
        assert_eq!(value(&c, "community", "supernode"), Some("a"));
        // the file replaces the default
        assert_eq!(values(&c, "tuntap", "route"), vec!["10.1.0.0/16"]);
        let c = load(file, &["community.supernode=c", "community.supernode=d"]).unwrap();
        assert_eq!(values(&c, "community", "supernode"), vec!["c", "d"]);
        let origins: Vec<String> = c
            .get_all("community", "supernode")
            .iter()
            .map(|s| s.origin.to_string())
            .collect();
        assert_eq!(
            origins,
            vec![
                "command line '-O community.supernode=c'",
                "command line '-O community.supernode=d'"
            ]
        );
        let mut c = load(file, &[]).unwrap();
        c.apply_env("community", "supernode", "WEFT_SN", "e".into());
        assert_eq!(values(&c, "community", "supernode"), vec!["e"]);
    }

    #[test]
    fn secret_command_line_origin_is_redacted() {
        let c = load("", &["community.key=hunter2"]).unwrap();
        let key = c.get("community", "key").unwrap();
        assert_eq!(key.value, "hunter2");
        assert_eq!(
            key.origin.to_string(),
            "command line '-O community.key=***'"
        );
        let err = load("", &["community.key=hunter2", "community.key=hunter3"]).unwrap_err();
        let msg = err.to_string();
        assert!(
            !msg.contains("hunter") && !format!("{err:?}").contains("hunter"),
            "{msg}"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let c = load("[community]\nkey = hunter2\nname = n\n", &[]).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("\"n\""), "{dbg}");
    }

    #[test]
    fn errors_come_in_file_order() {
        // The unknown option on line 2 is reported, not the syntax error on line 3.
        assert_eq!(
            load_err("[tuntap]\nmtuu=1\n[broken\n", &[]),
            "/etc/weft/home.conf:2: unknown option [tuntap] mtuu (did you mean 'mtu'?)"
        );
    }

    /// Loads `bytes` and `overrides` and exercises every accessor; must never panic, and every
    /// error message must be a single line.
    fn exercise(bytes: &[u8], overrides: &[String]) -> Result<(), TestCaseError> {
        let path = Path::new(PATH);
        match Config::from_bytes(&SCHEMA, "fuzz", Some((path, bytes)), overrides) {
            Ok(c) => {
                for spec in SCHEMA.options {
                    let _ = c.get_all(spec.section, spec.name);
                    for e in [
                        c.parse::<u16>(spec.section, spec.name).err(),
                        c.parse_all::<std::net::Ipv4Addr>(spec.section, spec.name)
                            .err(),
                        c.parse_bool(spec.section, spec.name).err(),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        prop_assert!(!e.to_string().contains('\n'));
                    }
                }
                let _ = c.dump();
            }
            Err(e) => prop_assert!(!e.to_string().contains('\n'), "{}", e),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// A few hundred random byte strings as config files never panic.
        #[test]
        fn random_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            exercise(&bytes, &[])?;
        }

        /// Files and overrides built from the schema's own words and the syntax's special
        /// characters reach deeper than pure noise; still no panics.
        #[test]
        fn schema_shaped_noise_never_panics(
            lines in proptest::collection::vec(
                (prop::sample::select(vec!["[community]", "[tuntap]", "[logging]", "[x]", "", "#",
                    "name", "supernode", "key", "mtu", "up", "route", "level", "mtuu"]),
                 prop::sample::select(vec!["", " = ", "=", " =\"", " = \"a # b\""]),
                 "[ -~\u{e9}\r\\\\]{0,12}"),
                0..20),
            overrides in proptest::collection::vec("[a-z.=\n ]{0,20}", 0..4),
        ) {
            let text: String = lines
                .iter()
                .map(|(a, b, c)| format!("{a}{b}{c}\n"))
                .collect();
            exercise(text.as_bytes(), &overrides)?;
        }
    }
}
