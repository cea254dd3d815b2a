//! What `weft-edge`, `weft-supernode` and `weftctl` share on their command line:
//!
//! - [`VERSION`]: the version with the git revision it was built from (`--version`); the revision comes
//!   from `build.rs` (`WEFT_GIT_REV` when set, else `git rev-parse`, else "unknown").
//! - [`handle_generate`]: `--generate KIND` as the first argument prints the binary's man page or a shell
//!   completion script, generated from the very clap definition the binary parses with (clap_mangen,
//!   clap_complete), and exits. It is how `packaging/build-deb` makes the packaged man pages and
//!   completions, so they cannot drift from the binaries. It is left out of `--help` on purpose (as
//!   ripgrep's `--generate` is): it is a packaging tool, not something a user needs.
//! - [`conf_man_page`]: weft.conf(5), generated from the daemons' option tables (the `help config` text).
//!
//! The crate is also the home of `weftctl` (`src/bin/weftctl.rs`), the command-line client of the
//! management API. Dependency direction: this crate depends on `weft-config` and on `weft-mgmt` (for
//! `weftctl`'s client), the daemons depend on it; neither `weft-mgmt` nor `weft-config` depends on it.

#![forbid(unsafe_code)]

mod man;
mod roff;

use std::io::Write;

pub use man::conf_man_page;

/// The git revision the binaries were built from (short hash, or "unknown").
pub const GIT_REV: &str = env!("WEFT_GIT_REV");

/// `0.1.0 (git 1a2b3c4d5e)`: what `--version` prints after the program name.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("WEFT_GIT_REV"),
    ")"
);

/// What `--generate` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generate {
    /// The program's man page (roff).
    Man,
    /// weft.conf(5) (only the daemons offer it).
    ManConf,
    /// A completion script for this shell.
    Complete(clap_complete::Shell),
}

impl Generate {
    /// Parses `man`, `man-conf`, `complete-bash`, `complete-zsh`, `complete-fish`.
    pub fn parse(kind: &str) -> Option<Generate> {
        use clap_complete::Shell;
        Some(match kind {
            "man" => Generate::Man,
            "man-conf" => Generate::ManConf,
            "complete-bash" => Generate::Complete(Shell::Bash),
            "complete-zsh" => Generate::Complete(Shell::Zsh),
            "complete-fish" => Generate::Complete(Shell::Fish),
            _ => return None,
        })
    }
}

/// The output of `--generate KIND` for `cmd`, or an error message. `man_conf` makes weft.conf(5) for the
/// binaries that know the option tables.
pub fn generate(
    kind: &str,
    cmd: clap::Command,
    man_conf: Option<&dyn Fn() -> String>,
) -> Result<Vec<u8>, String> {
    let name = cmd.get_name().to_string();
    match Generate::parse(kind) {
        Some(Generate::Man) => Ok(man::man_page(cmd).into_bytes()),
        Some(Generate::ManConf) => match man_conf {
            Some(f) => Ok(f().into_bytes()),
            None => Err(format!("{name} does not generate weft.conf(5)")),
        },
        Some(Generate::Complete(shell)) => {
            let mut cmd = cmd;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, name, &mut out);
            Ok(out)
        }
        None => Err(format!(
            "unknown --generate kind {kind:?}; one of: man, man-conf, complete-bash, complete-zsh, complete-fish"
        )),
    }
}

/// When the first argument is `--generate KIND`, prints what [`generate`] makes to stdout and exits
/// (0, or 2 on an unknown kind). Otherwise returns and the binary parses its arguments as usual.
pub fn handle_generate(cmd: impl FnOnce() -> clap::Command, man_conf: Option<&dyn Fn() -> String>) {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new("--generate")) {
        return;
    }
    let kind = args
        .next()
        .and_then(|k| k.into_string().ok())
        .unwrap_or_default();
    match generate(&kind, cmd(), man_conf) {
        Ok(bytes) => {
            let mut out = std::io::stdout().lock();
            let ok = out.write_all(&bytes).and_then(|_| out.flush()).is_ok();
            std::process::exit(if ok { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

/// The `after_help` line of each binary: `--help` stays short and points to the manual.
#[macro_export]
macro_rules! see_man {
    ($name:literal) => {
        concat!(
            "Full documentation: man 8 ",
            $name,
            " (files, signals, examples); the configuration: man 5 weft.conf"
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> clap::Command {
        clap::Command::new("weft-test")
            .about("A test")
            .version(VERSION)
            .arg(clap::Arg::new("verbose").short('v').help("Say more"))
            .subcommand(
                clap::Command::new("start")
                    .about("Start it")
                    .arg(clap::Arg::new("session").required(true).help("The session")),
            )
    }

    #[test]
    fn version_names_a_revision() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")), "{VERSION}");
        assert!(
            VERSION.contains("(git ") && !GIT_REV.is_empty(),
            "{VERSION}"
        );
    }

    #[test]
    fn man_page_has_the_usual_sections() {
        let page = String::from_utf8(generate("man", cmd(), None).unwrap()).unwrap();
        for s in [
            ".TH weft-test 8",
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            ".SH COMMANDS",
        ] {
            assert!(page.contains(s), "missing {s}:\n{page}");
        }
        assert!(
            page.contains("Start it") && page.contains("The session"),
            "{page}"
        );
    }

    #[test]
    fn completions_for_three_shells() {
        for (kind, marker) in [
            ("complete-bash", "complete -F"),
            ("complete-zsh", "#compdef weft-test"),
            ("complete-fish", "complete -c weft-test"),
        ] {
            let s = String::from_utf8(generate(kind, cmd(), None).unwrap()).unwrap();
            assert!(s.contains(marker), "{kind}: {s}");
        }
        assert!(generate("man-conf", cmd(), None).is_err());
        assert!(generate("nope", cmd(), None).is_err());
    }
}
