//! The man pages: weft-edge(8), weft-supernode(8) and weftctl(8) from their clap definitions (clap_mangen
//! renders the title, name, synopsis, description and options; the commands are rendered here, with
//! their arguments, instead of clap_mangen's list of per-command pages we do not ship), followed by the
//! hand-written sections clap cannot know (files, signals, environment, exit status, examples); and
//! weft.conf(5) from the daemons' option tables.

use std::fmt::Write as _;

use clap::{Arg, Command};
use weft_config::{OptionSpec, Schema};

use crate::roff::{b, esc, i};

const MANUAL: &str = "Weft manual";

fn source() -> String {
    format!("Weft {}", env!("CARGO_PKG_VERSION"))
}

/// The man page of a binary, section 8.
pub fn man_page(cmd: Command) -> String {
    let name = cmd.get_name().to_string();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual(MANUAL)
        .source(source());
    let mut buf: Vec<u8> = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut buf);
    let _ = man.render_name_section(&mut buf);
    let _ = man.render_synopsis_section(&mut buf);
    let _ = man.render_description_section(&mut buf);
    let _ = man.render_options_section(&mut buf);
    let rendered = String::from_utf8(buf).expect("clap_mangen writes UTF-8");
    // Each render call starts with the same two-line apostrophe preamble: keep the first only.
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let mut page = match rendered.split_once(PREAMBLE) {
        Some((before, rest)) => format!("{before}{PREAMBLE}{}", rest.replace(PREAMBLE, "")),
        None => rendered,
    };
    page.push_str(&commands_section(&cmd));
    page.push_str(extra_sections(&name));
    page
}

fn arg_value(a: &Arg) -> String {
    a.get_value_names()
        .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| a.get_id().as_str().to_uppercase())
}

fn arg_takes_value(a: &Arg) -> bool {
    a.get_action().takes_values()
}

/// `-O SECTION.OPTION=VALUE` or `--key-file KEY_FILE` or `SESSION`, in roff.
fn arg_term(a: &Arg) -> String {
    if a.is_positional() {
        return i(&arg_value(a));
    }
    let flag = match (a.get_short(), a.get_long()) {
        (_, Some(l)) => format!("--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, None) => a.get_id().to_string(),
    };
    if arg_takes_value(a) {
        format!("{} {}", b(&flag), i(&arg_value(a)))
    } else {
        b(&flag)
    }
}

fn arg_usage(a: &Arg) -> String {
    let term = arg_term(a);
    let repeat = matches!(a.get_action(), clap::ArgAction::Append);
    let term = if repeat { format!("{term}...") } else { term };
    if a.is_required_set() {
        term
    } else {
        format!("[{term}]")
    }
}

/// COMMANDS: each subcommand with its usage, its description and its own arguments.
fn commands_section(cmd: &Command) -> String {
    let subs: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if subs.is_empty() {
        return String::new();
    }
    let mut out = String::from(".SH COMMANDS\n");
    for sub in subs {
        let args: Vec<&Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_global_set())
            .collect();
        let usage: Vec<String> = args.iter().map(|a| arg_usage(a)).collect();
        let _ = writeln!(out, ".TP\n{} {}", b(sub.get_name()), usage.join(" "));
        let about = sub
            .get_long_about()
            .or(sub.get_about())
            .map(|s| s.to_string())
            .unwrap_or_default();
        let _ = writeln!(out, "{}", esc(&about));
        let documented: Vec<&&Arg> = args.iter().filter(|a| a.get_help().is_some()).collect();
        if !documented.is_empty() {
            out.push_str(".RS\n");
            for a in documented {
                let help = a
                    .get_long_help()
                    .or(a.get_help())
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let _ = writeln!(out, ".TP\n{}\n{}", arg_term(a), esc(&help));
            }
            out.push_str(".RE\n");
        }
    }
    out
}

/// What clap cannot know about each program.
fn extra_sections(name: &str) -> &'static str {
    match name {
        "weft-edge" => EDGE_EXTRA,
        "weft-supernode" => SUPERNODE_EXTRA,
        "weftctl" => WEFTCTL_EXTRA,
        _ => "",
    }
}

const EDGE_EXTRA: &str = r#".SH OPERATION
\fBweft\-edge start\fR \fIsession\fR reads \fI/etc/weft/session.conf\fR (or the file given as a path),
creates the TAP device (default \fBweft\-\fR\fIsession\fR), registers with the supernodes of the
community, and from then on acts as one port of a distributed Ethernet switch: every other edge of
the community is reached directly when the network allows it, through a supernode when it does not,
end\-to\-end encrypted either way.
.PP
Started as root with \fB[daemon] user\fR set, the edge binds its UDP socket, creates its state and
runtime directories for that user, then drops to the user, keeping only \fBCAP_NET_ADMIN\fR (it needs
it to create the TAP device and to set the address a supernode assigns). Under systemd the unit
\fBweft\-edge@.service\fR starts it as the user \fBweft\fR with that one capability instead.
With \fBNOTIFY_SOCKET\fR set (systemd \fBType=notify\fR) it reports READY once the TAP device is up
and the first registration was sent.
.SH SIGNALS
.TP
\fBSIGHUP\fR
Re\-read the configuration, as \fBweftctl reload\fR does: the log level applies at once; options that
need a restart are named in the log.
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop cleanly: the TAP device and the management socket are removed.
.SH ENVIRONMENT
.TP
\fBWEFT_KEY\fR
The community secret, instead of \fB[community] key\fR.
.TP
\fBWEFT_LOG\fR
A tracing filter (e.g. \fBdebug\fR) that overrides \fB[logging] verbose\fR at start.
.SH FILES
.TP
\fI/etc/weft/SESSION.conf\fR
The configuration of session \fISESSION\fR; see \fBweft.conf\fR(5).
.TP
\fI/var/lib/weft/SESSION/\fR
State: the edge's identity key and the generated management password.
.TP
\fI/run/weft/SESSION/mgmt\fR
The management socket (JSON\-RPC over HTTP), used by \fBweftctl\fR(8).
.SH EXIT STATUS
0 after a clean stop, 1 on a run\-time failure, 2 on a configuration or usage error.
.SH EXAMPLES
A minimal \fI/etc/weft/home.conf\fR:
.PP
.nf
.RS
[community]
name = home
key = a long shared secret
supernode = sn.example.org:7700
.RE
.fi
.PP
Then \fBsystemctl enable \-\-now weft\-edge@home\fR, or by hand \fBweft\-edge start home\fR.
\fBweft\-edge help config\fR lists every option with its default; examples are in
\fI/usr/share/doc/weft/examples/\fR.
.SH SEE ALSO
\fBweft.conf\fR(5), \fBweftctl\fR(8), \fBweft\-supernode\fR(8), \fBsystemd.exec\fR(5)
"#;

const SUPERNODE_EXTRA: &str = r#".SH OPERATION
\fBweft\-supernode start\fR \fIsession\fR reads \fI/etc/weft/session.conf\fR (the packaged unit
\fBweft\-supernode.service\fR uses the session \fBsupernode\fR). It admits edges into communities,
tells them about each other, coordinates hole punching and relays sealed packets when two edges
cannot reach each other; it never holds the keys to read edge traffic.
.PP
Started as root with \fB[daemon] user\fR set, it binds its UDP socket, then drops to that user with no
capability at all. Under systemd the unit starts it as the user \fBweft\fR without any capability.
With \fBNOTIFY_SOCKET\fR set it reports READY once its sockets are bound.
.SH SIGNALS
.TP
\fBSIGHUP\fR
Re\-read the configuration and the community file, as \fBweftctl reload\fR does.
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop cleanly.
.SH ENVIRONMENT
.TP
\fBWEFT_LOG\fR
A tracing filter that overrides \fB[logging] verbose\fR at start.
.SH FILES
.TP
\fI/etc/weft/supernode.conf\fR
The configuration of the packaged service; see \fBweft.conf\fR(5).
.TP
\fI/etc/weft/communities\fR
A community file (\fB[supernode] community_file\fR): one community name per line, optionally followed
by its admission key (\fBweft\-edge admission\-key\fR \fINAME\fR prints it).
.TP
\fI/var/lib/weft/SESSION/\fR
State: the address leases and the generated management password.
.TP
\fI/run/weft/SESSION/mgmt\fR
The management socket, used by \fBweftctl\fR(8).
.SH EXIT STATUS
0 after a clean stop, 1 on a run\-time failure, 2 on a configuration or usage error.
.SH SEE ALSO
\fBweft.conf\fR(5), \fBweft\-edge\fR(8), \fBweftctl\fR(8)
"#;

const WEFTCTL_EXTRA: &str = r#".SH EXIT STATUS
.TP
0
Success.
.TP
1
The daemon returned an error.
.TP
2
Usage error.
.TP
3
No daemon reachable.
.TP
4
Not authorised: \fBreload\fR, \fBstop\fR and \fBverbose\fR \fIN\fR need root (or the daemon's user) on
the unix socket, or the management password.
.SH ENVIRONMENT
.TP
\fBWEFT_PASSWORD\fR
The management password.
.TP
\fBWEFT_RUNTIME_DIR\fR
Where to look for sessions instead of \fI/run/weft\fR.
.SH FILES
.TP
\fI/run/weft/SESSION/mgmt\fR
The management socket of each running daemon.
.TP
\fI/var/lib/weft/SESSION/management.password\fR
The generated management password of a session.
.SH EXAMPLES
.nf
weftctl edges
weftctl \-\-json edges
weftctl \-\-session home reload
.fi
.SH SEE ALSO
\fBweft\-edge\fR(8), \fBweft\-supernode\fR(8), \fBweft.conf\fR(5)
"#;

fn option_entry(out: &mut String, o: &OptionSpec, also: Option<&str>) {
    let _ = writeln!(out, ".TP\n{} = {}", b(o.name), i("value"));
    let _ = writeln!(out, "{}", esc(o.help));
    let mut notes = Vec::new();
    match o.default {
        Some("") => notes.push("Default: empty.".to_string()),
        Some(d) => notes.push(format!("Default: {d}.")),
        None => {}
    }
    if o.repeatable {
        notes.push("Repeatable.".into());
    }
    if o.secret {
        notes.push("Secret: never shown in error messages.".into());
    }
    if let Some(who) = also {
        notes.push(format!("{who} only."));
    }
    if !notes.is_empty() {
        let _ = writeln!(out, ".br\n{}", esc(&notes.join(" ")));
    }
}

/// The sections of `schema` whose options satisfy `keep`, each with its options.
fn sections(out: &mut String, schema: &Schema, keep: &dyn Fn(&OptionSpec) -> bool) {
    for section in schema.sections() {
        let opts: Vec<&OptionSpec> = schema
            .options
            .iter()
            .filter(|o| o.section == section && keep(o))
            .collect();
        if opts.is_empty() {
            continue;
        }
        let _ = writeln!(out, ".SS [{section}]");
        for o in opts {
            option_entry(out, o, None);
        }
    }
}

/// weft.conf(5): the file format, then the options of the edge, of the supernode, and those both share
/// (`common`), from the same tables as `help config`.
pub fn conf_man_page(edge: &Schema, supernode: &Schema, common: &'static [OptionSpec]) -> String {
    let is_common = |o: &OptionSpec| {
        common
            .iter()
            .any(|c| c.section == o.section && c.name == o.name)
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        ".TH WEFT.CONF 5 \"\" \"{}\" \"{MANUAL}\"",
        esc(&source())
    );
    out.push_str(CONF_HEAD);
    out.push_str(".SH EDGE OPTIONS\nThe options of \\fBweft\\-edge\\fR(8).\n");
    sections(&mut out, edge, &|o| !is_common(o));
    out.push_str(".SH SUPERNODE OPTIONS\nThe options of \\fBweft\\-supernode\\fR(8).\n");
    sections(&mut out, supernode, &|o| !is_common(o));
    out.push_str(".SH OPTIONS OF BOTH DAEMONS\n");
    let both = Schema {
        program: "weft",
        options: common,
    };
    sections(&mut out, &both, &|_| true);
    out.push_str(CONF_TAIL);
    out
}

const CONF_HEAD: &str = r#".SH NAME
weft.conf \- configuration files of the Weft mesh VPN daemons
.SH SYNOPSIS
\fI/etc/weft/SESSION.conf\fR
.SH DESCRIPTION
\fBweft\-edge start\fR \fISESSION\fR and \fBweft\-supernode start\fR \fISESSION\fR read
\fI/etc/weft/SESSION.conf\fR; given a path instead of a name, they read that file and the session is
its name without \fI.conf\fR. The session names the TAP device (by default), the state directory
\fI/var/lib/weft/SESSION\fR and the management socket \fI/run/weft/SESSION/mgmt\fR.
.PP
The format is INI: \fB[section]\fR headers, then \fBoption = value\fR lines. Lines starting with
\fB#\fR or \fB;\fR are comments, and so is the rest of a line after \fB ;\fR or \fB #\fR. Values are not
quoted. A repeatable option is given once per value. An unknown section or option is an error, and
every error names the file, the line and the option.
.PP
Any option can be set on the command line with \fB\-O\fR \fIsection.option=value\fR, which wins over
the file. \fBweft\-edge help config\fR and \fBweft\-supernode help config\fR print every option with
its default, ready to copy.
.PP
The files hold secrets (the community key, the management password): keep them readable by root and
the group \fBweft\fR only (the package makes \fI/etc/weft\fR mode 0750, group \fBweft\fR).
"#;

const CONF_TAIL: &str = r#".SH EXAMPLES
An edge, \fI/etc/weft/home.conf\fR (start it with \fBsystemctl enable \-\-now weft\-edge@home\fR):
.PP
.nf
.RS
[community]
name = home
key = a long shared secret
supernode = sn.example.org:7700
.RE
.fi
.PP
A supernode, \fI/etc/weft/supernode.conf\fR (\fBsystemctl enable \-\-now weft\-supernode\fR):
.PP
.nf
.RS
[connection]
bind = 0.0.0.0:7700
.RE
.fi
.PP
More, with comments: \fI/usr/share/doc/weft/examples/\fR.
.SH FILES
.TP
\fI/etc/weft/\fR
Configuration files, one per session, and community files.
.TP
\fI/var/lib/weft/\fR
State, one directory per session.
.TP
\fI/run/weft/\fR
Management sockets, one directory per session.
.SH SEE ALSO
\fBweft\-edge\fR(8), \fBweft\-supernode\fR(8), \fBweftctl\fR(8)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_page_lists_each_option_once_in_its_place() {
        const E: &[OptionSpec] = &[
            OptionSpec::new("community", "name", "The name."),
            OptionSpec::new("logging", "verbose", "Level.").default("2"),
        ];
        const S: &[OptionSpec] = &[
            OptionSpec::new("supernode", "peer", "A peer.").repeatable(),
            OptionSpec::new("logging", "verbose", "Level.").default("2"),
        ];
        const C: &[OptionSpec] = &[OptionSpec::new("logging", "verbose", "Level.").default("2")];
        let page = conf_man_page(
            &Schema {
                program: "weft-edge",
                options: E,
            },
            &Schema {
                program: "weft-supernode",
                options: S,
            },
            C,
        );
        assert!(page.starts_with(".TH WEFT.CONF 5"), "{page}");
        assert_eq!(page.matches("\\fBverbose\\fR").count(), 1, "{page}");
        assert!(page.contains(".SS [community]") && page.contains(".SS [supernode]"));
        assert!(page.contains("Repeatable.") && page.contains("Default: 2."));
    }
}
