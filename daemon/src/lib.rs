//! What `weft-edge` and `weft-supernode` share as daemons, so each binary is only its own I/O loop:
//! the `start` and `help` command-line pieces, loading the configuration, the `[daemon]`/`[logging]`
//! options, logging set-up, the UDP socket, signals, and starting the management server.

// Config errors carry their origin by value and are built once per start: size does not matter.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use weft_config::{help_text, resolve_start_arg, Config, ConfigError, Schema};

/// Where `start <session>` looks for `<session>.conf`.
pub const ETC_DIR: &str = "/etc/weft";

/// The arguments of `start`.
#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// A session name (reads /etc/weft/<session>.conf) or a path to a config file.
    pub session: String,
    /// Override an option: -O section.option=value (repeatable).
    #[arg(short = 'O', value_name = "SECTION.OPTION=VALUE")]
    pub overrides: Vec<String>,
}

/// `help <topic>`: prints the option table for `config`.
pub fn help(schema: &Schema, topic: Option<&str>) -> ExitCode {
    if topic == Some("config") {
        print!("{}", help_text(schema));
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "topics: config   (try: {p} help config, or {p} --help)",
            p = schema.program
        );
        ExitCode::from(2)
    }
}

/// Resolves the `start` argument and loads the file with its overrides.
pub fn load_config(schema: &Schema, args: &StartArgs) -> Result<Config, ConfigError> {
    let (session, path) = resolve_start_arg(&args.session, Path::new(ETC_DIR))?;
    Config::load(schema, &session, Some(&path), &args.overrides)
}

/// The `[daemon]` and `[logging]` options both daemons have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    /// Persistent state (`[daemon] state_dir`, default /var/lib/weft/<session>).
    pub state_dir: PathBuf,
    /// Runtime files (`[daemon] runtime_dir`); the management socket is `<runtime_dir>/<session>/mgmt`.
    pub runtime_dir: PathBuf,
    /// 0 error .. 4 trace.
    pub verbose: u8,
}

impl Common {
    /// Reads the shared options.
    pub fn from_config(cfg: &Config) -> Result<Common, ConfigError> {
        let verbose: u8 = cfg.require("logging", "verbose")?;
        if verbose > 4 {
            return Err(cfg.invalid("logging", "verbose", "must be 0 to 4"));
        }
        Ok(Common {
            state_dir: cfg
                .parse::<PathBuf>("daemon", "state_dir")?
                .unwrap_or_else(|| PathBuf::from("/var/lib/weft").join(cfg.session())),
            runtime_dir: cfg.require("daemon", "runtime_dir")?,
            verbose,
        })
    }
}

/// Logs to stderr at the configured level; `WEFT_LOG` (an env-filter string) overrides it.
pub fn init_logging(verbose: u8) {
    let level = ["error", "warn", "info", "debug", "trace"][verbose.min(4) as usize];
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},jsonrpsee=warn,hyper=warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// A UDP socket with deliberately sized kernel buffers: most loss measured in user-space VPNs here was
/// the receive buffer overflowing (shared/testbed/NOTES.md).
pub fn bind_udp(addr: SocketAddr, buffer_bytes: usize) -> Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = sock.set_recv_buffer_size(buffer_bytes);
    let _ = sock.set_send_buffer_size(buffer_bytes);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("cannot bind UDP {addr}"))?;
    Ok(UdpSocket::from_std(sock.into())?)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// A running management server; [`Mgmt::stop`] shuts it down and removes its socket.
pub struct Mgmt {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), weft_web::WebError>>,
}

impl Mgmt {
    /// Binds `<runtime_dir>/<session>/mgmt` and serves `module` on it.
    pub async fn start(
        runtime_dir: &Path,
        session: &str,
        daemon: &str,
        module: weft_web::jsonrpsee::RpcModule<()>,
    ) -> Result<Mgmt> {
        let sock = weft_web::socket_path(runtime_dir, session);
        let server = weft_web::MgmtServer::bind_unix(&sock, module)
            .await
            .with_context(|| format!("management socket {}", sock.display()))?
            .with_daemon_name(daemon);
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async {
            let _ = rx.await;
        }));
        Ok(Mgmt { stop, task })
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_config::OptionSpec;

    const SCHEMA: Schema = Schema {
        program: "t",
        options: &[
            OptionSpec::new("daemon", "state_dir", "s"),
            OptionSpec::new("daemon", "runtime_dir", "r").default("/run/weft"),
            OptionSpec::new("logging", "verbose", "v").default("2"),
        ],
    };

    #[test]
    fn common_options_defaults_and_errors() {
        let cfg = Config::from_bytes(&SCHEMA, "home", None, &[]).unwrap();
        let c = Common::from_config(&cfg).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/weft/home"));
        assert_eq!(c.runtime_dir, PathBuf::from("/run/weft"));
        assert_eq!(c.verbose, 2);
        let cfg = Config::from_bytes(&SCHEMA, "home", None, &["logging.verbose=9".into()]).unwrap();
        let e = Common::from_config(&cfg).unwrap_err().to_string();
        assert!(
            e.contains("logging.verbose=9") && e.contains("0 to 4"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn udp_socket_binds_an_ephemeral_port() {
        let s = bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        assert_ne!(s.local_addr().unwrap().port(), 0);
    }
}
