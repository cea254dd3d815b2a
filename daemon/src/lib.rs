//! The process plumbing `weft-edge` and `weft-supernode` share, so each binary is only its own state
//! machine set-up, management methods and event texts (the per-packet machinery is `weft-datapath`):
//! the `start` and `help` command-line pieces, loading the configuration, the `[daemon]`/`[logging]`
//! options, logging set-up, binding the UDP socket and dropping root, signals, metrics, starting the
//! management server, and the start-up sequence itself ([`startup`]).

#![forbid(unsafe_code)]
// Config errors carry their origin by value and are built once per start: size does not matter.
#![allow(clippy::result_large_err)]

pub mod control;
pub mod identity;
pub mod logbudget;
pub mod metrics;
pub mod notify;
pub mod options;
pub mod privileges;
pub mod startup;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::oneshot;
use weft_config::{help_text, resolve_start_arg, Config, ConfigError, OptionSpec, Schema};

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

/// The outcome of a one-line command (`keygen`, `show-key`): the line on stdout, or the error on stderr
/// and exit status 2.
pub fn print_line(program: &str, result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{program}: {e:#}");
            ExitCode::from(2)
        }
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
    /// `[daemon] user`: who to become when started as root (see [`privileges`]).
    pub user: Option<String>,
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
            user: cfg
                .get("daemon", "user")
                .map(|s| s.value.clone())
                .filter(|u| !u.is_empty()),
        })
    }
}

/// The process's logging, whose level the management API can change at run time.
pub struct Logging {
    handle: tracing_subscriber::reload::Handle<
        tracing_subscriber::EnvFilter,
        tracing_subscriber::Registry,
    >,
    verbose: AtomicU8,
}

fn filter_for(verbose: u8) -> tracing_subscriber::EnvFilter {
    let level = ["error", "warn", "info", "debug", "trace"][verbose.min(4) as usize];
    tracing_subscriber::EnvFilter::new(format!("{level},jsonrpsee=warn,hyper=warn"))
}

impl Logging {
    /// The current level, 0 error .. 4 trace.
    pub fn verbose(&self) -> u8 {
        self.verbose.load(Ordering::Relaxed)
    }

    /// Changes the level.
    pub fn set_verbose(&self, verbose: u8) -> Result<()> {
        anyhow::ensure!(verbose <= 4, "verbose must be 0 to 4");
        self.handle.reload(filter_for(verbose))?;
        self.verbose.store(verbose, Ordering::Relaxed);
        Ok(())
    }
}

/// Logs to stderr at the configured level; `WEFT_LOG` (an env-filter string) overrides it at start.
pub fn init_logging(verbose: u8) -> Logging {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
        .unwrap_or_else(|_| filter_for(verbose));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    Logging {
        handle,
        verbose: AtomicU8::new(verbose),
    }
}

/// What `reload` did: the options applied at once, and those that take effect at the next start.
pub type ReloadReport = (Vec<String>, Vec<String>);

/// The daemon's `reload` action, called by the management method and on SIGHUP.
pub type ReloadFn = Arc<dyn Fn(&Logging) -> Result<ReloadReport> + Send + Sync>;

/// Reloads on every SIGHUP (`systemctl reload`: `ExecReload=kill -HUP $MAINPID`), as the management
/// method `reload` does, telling systemd RELOADING then READY around it. Errors are logged; the daemon
/// keeps running with the configuration it has.
pub fn reload_on_sighup(
    reload: ReloadFn,
    logging: Arc<Logging>,
    ready_status: String,
) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            notify::reloading();
            match reload(&logging) {
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("reload on SIGHUP failed, configuration unchanged: {e:#}")
                }
            }
            notify::ready(&ready_status);
        }
    });
    Ok(())
}

/// The `[management]` options both daemons have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgmtSettings {
    /// Loopback (or, with `allow_remote`, any) TCP address for the management server, if any.
    pub tcp: Option<SocketAddr>,
    /// Whether a non-loopback address is allowed (every request then needs the password).
    pub allow_remote: bool,
    /// The configured password, if any (else one is generated in the state directory).
    pub password: Option<String>,
}

/// The options both daemons have: `[daemon]`, `[logging]`, `[management]`.
pub const COMMON_OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("daemon", "state_dir", "Directory for persistent state: the edge's identity key, the supernode's address leases, the generated management password. Default: /var/lib/weft/<session>."),
    OptionSpec::new("daemon", "user", "When started as root: the user to become once the sockets are bound. The edge keeps only CAP_NET_ADMIN (for its TAP device), the supernode no privilege at all; the state and runtime directories are created for that user. Ignored when not started as root (the systemd units start the daemons as the user weft). Default: stay as started."),
    OptionSpec::new("daemon", "runtime_dir", "Directory for runtime files; the management socket is <runtime_dir>/<session>/mgmt.").default("/run/weft"),
    OptionSpec::new("logging", "verbose", "Log level: 0 error, 1 warn, 2 info (one line per state change), 3 debug, 4 trace. Can be changed at run time (weftctl verbose N).").default("2"),
    OptionSpec::new("management", "port", "Also serve the management API, status page (/), metrics (/metrics) and events (/events) on this TCP port, on `address`. Default: only the unix socket <runtime_dir>/<session>/mgmt."),
    OptionSpec::new("management", "address", "Address for `port`. A non-loopback address also needs allow_remote = true, and then every request needs the password.").default("127.0.0.1"),
    OptionSpec::new("management", "allow_remote", "Allow a non-loopback management address.").default("false"),
    OptionSpec::new("management", "password", "Password for methods that change state (and for every request on a non-loopback address), as an HTTP Bearer token or Basic password; root on the unix socket needs none. Default: generated at first start into <state_dir>/management.password.").secret(),
];

/// A daemon's schema: its own options followed by [`COMMON_OPTIONS`]. Built once at start (the table is
/// leaked on purpose: it lives as long as the process).
pub fn schema(program: &'static str, own: &'static [OptionSpec]) -> Schema {
    let options: Vec<OptionSpec> = own.iter().chain(COMMON_OPTIONS).cloned().collect();
    Schema {
        program,
        options: Box::leak(options.into_boxed_slice()),
    }
}

impl MgmtSettings {
    /// Reads the `[management]` options.
    pub fn from_config(cfg: &Config) -> Result<MgmtSettings, ConfigError> {
        let port: Option<u16> = cfg.parse("management", "port")?;
        let address: IpAddr = cfg
            .parse("management", "address")?
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let allow_remote = cfg
            .parse_bool("management", "allow_remote")?
            .unwrap_or(false);
        if port.is_some() && !address.is_loopback() && !allow_remote {
            return Err(cfg.invalid(
                "management",
                "address",
                "is not a loopback address: set [management] allow_remote = true to serve it (every request then needs the password)",
            ));
        }
        let password = cfg
            .get("management", "password")
            .map(|s| s.value.clone())
            .filter(|p| !p.is_empty());
        Ok(MgmtSettings {
            tcp: port.map(|p| SocketAddr::new(address, p)),
            allow_remote,
            password,
        })
    }
}

/// The management password: the configured one, else the one in `<state_dir>/management.password`,
/// created (random, mode 0600) at first start. Never a fixed default.
pub fn management_password(configured: Option<&str>, state_dir: &Path) -> Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(p) = configured {
        return Ok(p.to_string());
    }
    let path = state_dir.join("management.password");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => anyhow::bail!("{} is empty", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
    // 22 letters and digits (about 131 bits), chosen without bias by rejection sampling; no punctuation,
    // so the password never looks like a command-line flag or needs quoting.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::with_capacity(22);
    while password.len() < 22 {
        let mut bytes = [0u8; 32];
        getrandom(&mut bytes)?;
        for b in bytes {
            if (b as usize) < 248 && password.len() < 22 {
                password.push(ALPHABET[b as usize % 62] as char);
            }
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(f, "{password}")?;
    tracing::info!("generated a management password in {}", path.display());
    Ok(password)
}

/// Fill `buf` from the operating system's random source (getrandom(2)).
fn getrandom(buf: &mut [u8]) -> Result<()> {
    use rand::RngCore;
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .context("cannot get random bytes from the operating system")
}

/// What needs root, done before the tokio runtime starts (one thread): binds the UDP socket and, when
/// started as root with `[daemon] user` set, hands the state directory and the session's runtime
/// directory to that user and becomes it, keeping only `keep` (see [`privileges`]).
pub fn bind_and_drop(
    common: &Common,
    session: &str,
    bind: SocketAddr,
    buffer_bytes: usize,
    keep: &[privileges::Cap],
) -> Result<std::net::UdpSocket> {
    let run_as = privileges::planned(common.user.as_deref())?;
    if let Some(user) = &run_as {
        privileges::prepare_dir(&common.state_dir, 0o750, user)?;
        privileges::prepare_dir(&common.runtime_dir.join(session), 0o750, user)?;
    }
    let udp = weft_datapath::bind_udp(bind, buffer_bytes)?;
    if let Some(user) = &run_as {
        privileges::drop_to(user, keep)?;
    }
    Ok(udp)
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

/// Pagination of list methods: optional `{"offset": n, "limit": n}` params (default 0 and 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Items to skip.
    #[serde(default)]
    pub offset: usize,
    /// Items to return at most.
    #[serde(default = "Page::default_limit")]
    pub limit: usize,
}

impl Page {
    fn default_limit() -> usize {
        1000
    }

    /// Reads the page from a call's params; absent params mean the first page.
    pub fn from_params(
        params: &weft_mgmt::jsonrpsee::types::Params,
    ) -> Result<Page, weft_mgmt::jsonrpsee::types::ErrorObjectOwned> {
        match params.as_str() {
            None => Ok(Page {
                offset: 0,
                limit: Self::default_limit(),
            }),
            Some(text) => serde_json::from_str::<Page>(text).map_err(|e| {
                weft_mgmt::jsonrpsee::types::ErrorObjectOwned::owned(
                    -32602,
                    format!("invalid params: {e} (expected {{\"offset\": n, \"limit\": n}})"),
                    None::<()>,
                )
            }),
        }
    }

    /// The page's slice of `items`.
    pub fn apply<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = self.offset.min(items.len());
        let end = start.saturating_add(self.limit).min(items.len());
        &items[start..end]
    }
}

/// A running management server; [`Mgmt::stop`] shuts it down and removes its socket.
pub struct Mgmt {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), weft_mgmt::WebError>>,
}

impl Mgmt {
    /// Binds `<runtime_dir>/<session>/mgmt` (and the TCP address, if configured) and serves `methods`,
    /// the status page, `/metrics` from `metrics` and `/events` from `events` on them.
    pub async fn start(
        common: &Common,
        settings: &MgmtSettings,
        session: &str,
        daemon: &str,
        methods: impl Into<weft_mgmt::jsonrpsee::Methods>,
        metrics: weft_mgmt::MetricsFn,
        events: tokio::sync::broadcast::Sender<weft_mgmt::ServerEvent>,
    ) -> Result<Mgmt> {
        let password = management_password(settings.password.as_deref(), &common.state_dir)?;
        let mut module = weft_mgmt::jsonrpsee::RpcModule::new(());
        module.merge(methods)?;
        let sock = weft_mgmt::socket_path(&common.runtime_dir, session);
        let server = weft_mgmt::MgmtServer::bind_unix(&sock, module)
            .await
            .with_context(|| format!("management socket {}", sock.display()))?;
        // The daemon's families, then what the management server itself refused.
        let stats = server.stats();
        let metrics: weft_mgmt::MetricsFn = Arc::new(move || {
            let (daemon_metrics, stats) = (metrics.clone(), stats.clone());
            Box::pin(async move {
                let mut text = daemon_metrics().await;
                let mut m = metrics::MetricsText::default();
                m.management(&stats);
                text.push_str(&m.finish());
                text
            })
        });
        let mut server = server
            .with_daemon_name(daemon)
            .with_password(password)
            .with_metrics(metrics)
            .with_events(events);
        if let Some(addr) = settings.tcp {
            server = server
                .with_tcp(addr, settings.allow_remote)
                .await
                .with_context(|| format!("management address {addr}"))?;
            tracing::info!("management API, status page and metrics on http://{addr}/");
        }
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
            OptionSpec::new("daemon", "user", "When started as root: the user to become once the sockets are bound. The edge keeps only CAP_NET_ADMIN (for its TAP device), the supernode no privilege at all; the state and runtime directories are created for that user. Ignored when not started as root (the systemd units start the daemons as the user weft). Default: stay as started."),
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

    #[test]
    fn management_password_is_generated_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("weft-pw-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = management_password(None, &dir).unwrap();
        let b = management_password(None, &dir).unwrap();
        assert_eq!(a, b, "persisted");
        assert_eq!(a.len(), 22);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        let mode = std::fs::metadata(dir.join("management.password"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(management_password(Some("set"), &dir).unwrap(), "set");
        let other = std::env::temp_dir().join(format!("weft-pw-test2-{}", std::process::id()));
        let c = management_password(None, &other).unwrap();
        assert_ne!(a, c, "random per installation");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&other);
    }
}
