//! `weft-edge`: joins this machine to a Weft community as one port of a distributed Ethernet switch.
//!
//! This binary is the I/O shell: configuration, the TAP device, the UDP socket, the management socket and
//! logging. The protocol lives in `weft-proto`.

mod driver;
mod identity;
mod mgmt;
mod netaddrs;
mod settings;
mod tap;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio::sync::{mpsc, oneshot};
use weft_config::{help_text, resolve_start_arg, Config};
use weft_proto::edge::{AddressMode as ProtoAddressMode, EdgeConfig, Limits, Timers};
use weft_proto::keys::CommunityKeys;
use weft_proto::wire::MacAddr;

use settings::{AddressMode, Settings, SCHEMA};

#[derive(Parser)]
#[command(
    name = "weft-edge",
    version,
    about = "Weft mesh VPN edge",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the edge: `start home` reads /etc/weft/home.conf; `start ./x.conf` reads that file.
    Start {
        /// A session name or a path to a config file.
        session: String,
        /// Override an option: -O section.option=value (repeatable).
        #[arg(short = 'O', value_name = "SECTION.OPTION=VALUE")]
        overrides: Vec<String>,
    },
    /// Show help on a topic: `help config` lists every option with its default.
    Help {
        /// The topic (config).
        topic: Option<String>,
    },
    /// Print the admission key of a community, for a supernode's community file.
    /// The secret is read from WEFT_KEY or from --key-file.
    AdmissionKey {
        /// The community name.
        community: String,
        /// A file whose first line is the secret.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Help { topic } => match topic.as_deref() {
            Some("config") => {
                print!("{}", help_text(&SCHEMA));
                ExitCode::SUCCESS
            }
            _ => {
                eprintln!("topics: config   (try: weft-edge help config, or weft-edge --help)");
                ExitCode::from(2)
            }
        },
        Command::AdmissionKey {
            community,
            key_file,
        } => match admission_key(&community, key_file.as_deref()) {
            Ok(k) => {
                println!("{community} {k}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("weft-edge: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Start { session, overrides } => {
            let settings = match load_settings(&session, &overrides) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("weft-edge: {e:#}");
                    return ExitCode::from(2);
                }
            };
            init_logging(settings.verbose);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(run(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("weft-edge: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn admission_key(community: &str, key_file: Option<&Path>) -> Result<String> {
    let secret = match (std::env::var("WEFT_KEY"), key_file) {
        (_, Some(p)) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read {}", p.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .trim_end()
            .to_string(),
        (Ok(k), None) => k,
        (Err(_), None) => anyhow::bail!("give the secret in WEFT_KEY or with --key-file"),
    };
    anyhow::ensure!(!secret.is_empty(), "the secret is empty");
    Ok(CommunityKeys::derive(community, secret.as_bytes())
        .admission
        .to_string())
}

fn load_settings(arg: &str, overrides: &[String]) -> Result<Settings> {
    let (session, path) = resolve_start_arg(arg, Path::new("/etc/weft"))?;
    let mut cfg = Config::load(&SCHEMA, &session, Some(&path), overrides)?;
    if let Ok(k) = std::env::var("WEFT_KEY") {
        cfg.apply_env("community", "key", "WEFT_KEY", k);
    }
    Ok(Settings::from_config(&cfg)?)
}

fn init_logging(verbose: u8) {
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

async fn run(s: Settings) -> Result<()> {
    let identity = identity::load_or_create(&s.state_dir)?;
    let mac = s
        .mac
        .unwrap_or_else(|| MacAddr::local_from_seed(&identity.public.0));
    let supernodes = settings::resolve_supernodes(&s.supernodes).await?;
    let udp = driver::bind_udp(s.bind)?;
    let bound = udp.local_addr()?;
    let static_addr = match s.address {
        AddressMode::Static(n) => Some(n),
        _ => None,
    };
    let dev = tap::create(&s.tap_name, mac, s.mtu, static_addr).with_context(|| {
        format!(
            "cannot create TAP device {} (needs CAP_NET_ADMIN and /dev/net/tun)",
            s.tap_name
        )
    })?;
    let local_addrs = netaddrs::local_candidates(&s.advertise, bound.port(), &s.tap_name);
    let timers = Timers {
        register_interval: s.register_interval,
        ..Timers::default()
    };
    let cfg = EdgeConfig {
        community: CommunityKeys::derive(&s.community, &s.secret),
        identity,
        supernodes: supernodes.clone(),
        mac,
        address: match s.address {
            AddressMode::Static(n) => ProtoAddressMode::Static(n),
            AddressMode::Auto => ProtoAddressMode::Auto,
            AddressMode::Dhcp => ProtoAddressMode::None,
        },
        local_addrs: local_addrs.clone(),
        description: s.description.clone(),
        allow_p2p: s.allow_p2p,
        timers,
        limits: Limits::default(),
    };
    let edge =
        weft_proto::edge::Edge::new(cfg, Instant::now(), driver::wall_clock_us(), rand::random());
    tracing::info!(
        "weft-edge {} session {} community {} tap {} mac {} udp {} supernodes {:?} local addresses {:?}",
        env!("CARGO_PKG_VERSION"),
        s.session,
        s.community,
        s.tap_name,
        mac,
        bound,
        supernodes,
        local_addrs
    );

    let (qtx, qrx) = mpsc::channel(16);
    let module = mgmt::module(
        qtx,
        mgmt::Facts {
            session: s.session.clone(),
            community: s.community.clone(),
            tap: s.tap_name.clone(),
            bind: bound.to_string(),
        },
    )?;
    let sock = weft_web::socket_path(&s.runtime_dir, &s.session);
    let server = weft_web::MgmtServer::bind_unix(&sock, module)
        .await
        .with_context(|| format!("management socket {}", sock.display()))?
        .with_daemon_name("weft-edge");
    let (stop_mgmt_tx, stop_mgmt_rx) = oneshot::channel::<()>();
    let mgmt_task = tokio::spawn(server.serve(async {
        let _ = stop_mgmt_rx.await;
    }));

    let (stop_tx, stop_rx) = oneshot::channel();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(());
    });
    let result = driver::run(edge, udp, dev, qrx, stop_rx).await;
    tracing::info!("stopping");
    let _ = stop_mgmt_tx.send(());
    let _ = mgmt_task.await;
    result
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
