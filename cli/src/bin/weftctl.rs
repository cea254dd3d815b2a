//! `weftctl`: query and control a running weft daemon (`weft-edge` or `weft-supernode`) through its
//! management server.
//!
//! Human-readable tables by default, `--json` for scripts. Without `--session`, `--socket` or
//! `--url` it finds the running session by itself. Exit codes: 0 success, 1 the daemon returned an
//! error, 2 usage error, 3 no daemon reachable, 4 not authorised.

#![forbid(unsafe_code)]

#[path = "weftctl/render.rs"]
mod render;
#[path = "weftctl/target.rs"]
mod target;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use weft_mgmt::client::{Client, ClientError};

/// How `weftctl` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Ok = 0,
    /// The daemon answered with an error.
    Daemon = 1,
    Usage = 2,
    /// No daemon could be reached.
    Unreachable = 3,
    Unauthorized = 4,
}

/// A failure: what to print and how to exit.
#[derive(Debug)]
struct Failure {
    exit: Exit,
    message: String,
}

impl Failure {
    fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        if e.is_unauthorized() {
            Failure::new(
                Exit::Unauthorized,
                format!(
                    "{e}\nhint: give the management password with --password, --password-file or \
                     WEFT_PASSWORD (by default it is in <state_dir>/management.password)"
                ),
            )
        } else if e.is_unreachable() {
            Failure::new(Exit::Unreachable, e.to_string())
        } else if matches!(e, ClientError::InvalidTarget(_)) {
            Failure::new(Exit::Usage, e.to_string())
        } else {
            Failure::new(Exit::Daemon, e.to_string())
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "weftctl",
    version = weft_cli::VERSION,
    about = "Query and control a running weft daemon (weft-edge or weft-supernode)",
    after_help = "Without --session, --socket or --url, weftctl uses the one session running under \
                  /run/weft (or $WEFT_RUNTIME_DIR).\n\
                  Exit codes: 0 success, 1 the daemon returned an error, 2 usage error, \
                  3 no daemon reachable, 4 not authorised.\n\
                  Full documentation: man 8 weftctl"
)]
struct Cli {
    /// Session name: use the socket <runtime dir>/<SESSION>/mgmt.
    #[arg(long, global = true, value_name = "SESSION", conflicts_with_all = ["socket", "url"])]
    session: Option<String>,

    /// Path of a management socket.
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "url")]
    socket: Option<PathBuf>,

    /// URL of a management TCP listener, e.g. http://127.0.0.1:5644.
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,

    /// Management password, needed for reload, stop and verbose N unless you are root (or the
    /// daemon's user) on the unix socket.
    #[arg(long, global = true, env = "WEFT_PASSWORD", hide_env_values = true)]
    password: Option<String>,

    /// Read the management password from this file (e.g. <state_dir>/management.password).
    #[arg(long, global = true, value_name = "FILE")]
    password_file: Option<PathBuf>,

    /// Print the raw JSON result (watch: one JSON object per line).
    #[arg(long, global = true)]
    json: bool,

    /// Give up on a call after this many seconds.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
enum Command {
    /// The daemon: role, session, addresses, registration, uptime.
    Info,
    /// Peers (edge) or registered edges (supernode).
    Edges,
    /// Supernodes of an edge and their state.
    Supernodes,
    /// Communities.
    Communities,
    /// Packet and byte counters.
    Stats,
    /// Show the log level, or set it to N (0 error … 4 trace).
    Verbose {
        /// The new level: 0 error, 1 warn, 2 info, 3 debug, 4 trace.
        #[arg(value_name = "N", value_parser = clap::value_parser!(u8).range(0..=4))]
        level: Option<u8>,
    },
    /// Re-read the configuration (and community list) where possible.
    Reload,
    /// Stop the daemon.
    Stop,
    /// Follow the daemon's events until it stops (Ctrl-C to quit).
    Watch,
}

/// Silence allowed on the event stream before giving up (the server sends a keepalive every 15 s).
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(50);

fn main() -> ExitCode {
    weft_cli::handle_generate(<Cli as clap::CommandFactory>::command, None);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            } as u8);
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::from(Exit::Ok as u8),
        Err(f) => {
            eprintln!("weftctl: {}", f.message);
            ExitCode::from(f.exit as u8)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    if !(cli.timeout.is_finite() && cli.timeout > 0.0) {
        return Err(Failure::new(
            Exit::Usage,
            "--timeout must be a positive number of seconds",
        ));
    }
    let target = target::resolve(
        cli.session.as_deref(),
        cli.socket.as_deref(),
        cli.url.as_deref(),
    )?;
    let password = match &cli.password_file {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| {
                    Failure::new(
                        Exit::Usage,
                        format!("cannot read password file {}: {e}", file.display()),
                    )
                })?
                .trim()
                .to_owned(),
        ),
        None => cli.password.clone(),
    };
    let client = Client::new(target)
        .with_password(password)
        .with_timeout(Duration::from_secs_f64(cli.timeout));

    let (method, params) = match cli.command {
        Command::Watch => return watch(&client, cli.json),
        Command::Info => ("get_info", Value::Null),
        Command::Edges => ("get_edges", Value::Null),
        Command::Supernodes => ("get_supernodes", Value::Null),
        Command::Communities => ("get_communities", Value::Null),
        Command::Stats => ("get_packetstats", Value::Null),
        Command::Verbose { level: None } => ("get_verbose", Value::Null),
        Command::Verbose { level: Some(n) } => ("set_verbose", json!([n])),
        Command::Reload => ("reload", Value::Null),
        Command::Stop => ("stop", Value::Null),
    };
    // For edges, the role tells which columns the daemon's answer has.
    let role = if cli.command == Command::Edges && !cli.json {
        client
            .call_blocking("get_info", Value::Null)
            .ok()
            .and_then(|info| info.get("role").and_then(Value::as_str).map(str::to_owned))
    } else {
        None
    };
    let result = client.call_blocking(method, params)?;
    let text = if cli.json {
        serde_json::to_string_pretty(&result).unwrap_or_else(|_| result.to_string())
    } else {
        match cli.command {
            Command::Edges => render::edges(&result, role.as_deref()),
            Command::Supernodes => render::supernodes(&result),
            Command::Communities => render::communities(&result),
            Command::Stop => render::stop(&result),
            _ => render::object(&result),
        }
    };
    print(&text);
    Ok(())
}

/// Print `text` with a final newline; a closed stdout (e.g. `| head`) is not an error.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// `watch`: print events as they come until the daemon ends the stream.
fn watch(client: &Client, json: bool) -> Result<(), Failure> {
    let events = client.events_blocking(WATCH_READ_TIMEOUT)?;
    for event in events {
        let (kind, data) = event.map_err(|e| match e {
            ClientError::Timeout(_) => Failure::new(
                Exit::Unreachable,
                "the daemon stopped answering on the event stream",
            ),
            other => Failure::from(other),
        })?;
        let line = if json {
            let data = serde_json::from_str::<Value>(&data).unwrap_or(Value::String(data));
            json!({ "event": kind, "data": data }).to_string()
        } else {
            render::event(&kind, &data)
        };
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
    }
    eprintln!("weftctl: the daemon closed the event stream");
    Ok(())
}
