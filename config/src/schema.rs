//! The option table each daemon declares, and lookups into it.
//!
//! The schema is the single source of truth: the reader rejects anything not in it (typos in a
//! config file should fail loudly, not be ignored), `help config` is generated from it, and its
//! defaults are the weakest layer of [`crate::Config`].

/// One option a daemon understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// INI section, e.g. `community`.
    pub section: &'static str,
    /// Option name within the section, e.g. `supernode`.
    pub name: &'static str,
    /// Value used when nothing else sets the option.
    pub default: Option<&'static str>,
    /// One or more sentences for `help config`; blank lines separate paragraphs.
    pub help: &'static str,
    /// May be given several times; all values are kept (see [`crate::Config::get_all`]).
    pub repeatable: bool,
    /// Never echoed in error messages or dumps (keys, passwords).
    pub secret: bool,
}

impl OptionSpec {
    /// A single-valued, non-secret option without default; chain the `const` builders below to
    /// change that, so schema tables stay short.
    pub const fn new(section: &'static str, name: &'static str, help: &'static str) -> Self {
        OptionSpec {
            section,
            name,
            default: None,
            help,
            repeatable: false,
            secret: false,
        }
    }

    /// Sets the default value.
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }

    /// Marks the option as repeatable.
    pub const fn repeatable(mut self) -> Self {
        self.repeatable = true;
        self
    }

    /// Marks the option as secret.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
}

/// All options of one program.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// Program name, used in headings (`weft-edge`).
    pub program: &'static str,
    /// The options; their order is the order of `help config` and dumps.
    pub options: &'static [OptionSpec],
}

impl Schema {
    /// Index of an option in [`Schema::options`].
    pub fn index_of(&self, section: &str, option: &str) -> Option<usize> {
        self.options
            .iter()
            .position(|o| o.section == section && o.name == option)
    }

    /// The spec of an option, if the schema has it.
    pub fn find(&self, section: &str, option: &str) -> Option<&'static OptionSpec> {
        self.index_of(section, option).map(|i| &self.options[i])
    }

    /// Whether any option lives in `section`.
    pub fn has_section(&self, section: &str) -> bool {
        self.options.iter().any(|o| o.section == section)
    }

    /// Section names in order of first appearance.
    pub fn sections(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for o in self.options {
            if !out.contains(&o.section) {
                out.push(o.section);
            }
        }
        out
    }

    /// The known option in `section` closest to a misspelt `option`: case-insensitive edit
    /// distance at most 2, and less than the length of what was typed (so `x` does not suggest
    /// `ip`). Ties go to the option declared first.
    pub fn suggest(&self, section: &str, option: &str) -> Option<&'static str> {
        let typed = option.to_lowercase();
        let typed_len = typed.chars().count();
        self.options
            .iter()
            .filter(|o| o.section == section)
            .map(|o| (edit_distance(&typed, &o.name.to_lowercase()), o.name))
            .filter(|&(d, _)| d <= 2 && d < typed_len)
            .min_by_key(|&(d, _)| d)
            .map(|(_, name)| name)
    }

    /// Checks the table for mistakes a daemon's unit test should catch: duplicate entries (the
    /// second would be unreachable), empty names, and names the INI syntax cannot express.
    pub fn check(&self) -> Result<(), String> {
        for (i, o) in self.options.iter().enumerate() {
            let bad = |s: &str| {
                s.is_empty()
                    || s.chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "[]=#;\"".contains(c))
            };
            if bad(o.section) || bad(o.name) || o.section.contains('.') {
                return Err(format!("option [{}] {}: invalid name", o.section, o.name));
            }
            if self.index_of(o.section, o.name) != Some(i) {
                return Err(format!("option [{}] {} declared twice", o.section, o.name));
            }
        }
        Ok(())
    }
}

/// Levenshtein distance over chars; names are short, so the simple O(n*m) table is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::SCHEMA;

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("mtu", "mtu"), 0);
        assert_eq!(edit_distance("mtuu", "mtu"), 1);
        assert_eq!(edit_distance("mut", "mtu"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn lookups() {
        assert!(SCHEMA.find("tuntap", "mtu").is_some());
        assert!(SCHEMA.find("community", "mtu").is_none());
        assert!(SCHEMA.has_section("community"));
        assert!(!SCHEMA.has_section("tuntapp"));
        assert_eq!(SCHEMA.sections(), vec!["community", "tuntap", "logging"]);
        assert_eq!(SCHEMA.check(), Ok(()));
    }

    #[test]
    fn suggestions() {
        assert_eq!(SCHEMA.suggest("tuntap", "mtuu"), Some("mtu"));
        assert_eq!(SCHEMA.suggest("tuntap", "MTU"), Some("mtu"));
        assert_eq!(SCHEMA.suggest("community", "supernodes"), Some("supernode"));
        assert_eq!(SCHEMA.suggest("community", "kye"), Some("key"));
        assert_eq!(SCHEMA.suggest("tuntap", "x"), None);
        assert_eq!(SCHEMA.suggest("tuntap", "bandwidth"), None);
        // Only options of the same section are suggested.
        assert_eq!(SCHEMA.suggest("logging", "mtu"), None);
    }

    #[test]
    fn check_finds_table_mistakes() {
        static DUP: &[OptionSpec] = &[OptionSpec::new("a", "b", ""), OptionSpec::new("a", "b", "")];
        static BAD: &[OptionSpec] = &[OptionSpec::new("a", "b c", "")];
        let dup = Schema {
            program: "t",
            options: DUP,
        };
        let bad = Schema {
            program: "t",
            options: BAD,
        };
        assert_eq!(dup.check(), Err("option [a] b declared twice".to_string()));
        assert_eq!(bad.check(), Err("option [a] b c: invalid name".to_string()));
    }

    #[test]
    fn builders() {
        const O: OptionSpec = OptionSpec::new("s", "o", "h")
            .default("1")
            .repeatable()
            .secret();
        let o = O;
        assert_eq!(o.default, Some("1"));
        assert!(o.repeatable && o.secret);
        assert_eq!(OptionSpec::new("s", "o", "h").default, None);
    }
}
