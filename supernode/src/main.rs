//! `weft-supernode`: admits edges into communities, introduces them to each other, coordinates hole
//! punching and relays sealed packets as a last resort. The protocol lives in `weft-proto`; this binary is
//! the I/O shell: configuration, the UDP socket, persisted leases, the management socket, logging.

mod communities;
mod leases_file;
mod mgmt;
mod settings;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use weft_config::{help_text, resolve_start_arg, Config};
use weft_proto::supernode::{AdmissionPolicy, Supernode, SupernodeConfig, SupernodeEvent};

use settings::{Settings, SCHEMA};

#[derive(Parser)]
#[command(
    name = "weft-supernode",
    version,
    about = "Weft mesh VPN supernode",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the supernode: `start sn` reads /etc/weft/sn.conf; `start ./x.conf` reads that file.
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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Help { topic } => {
            if topic.as_deref() == Some("config") {
                print!("{}", help_text(&SCHEMA));
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "topics: config   (try: weft-supernode help config, or weft-supernode --help)"
                );
                ExitCode::from(2)
            }
        }
        Command::Start { session, overrides } => {
            let (settings, policy) = match load(&session, &overrides) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("weft-supernode: {e:#}");
                    return ExitCode::from(2);
                }
            };
            init_logging(settings.verbose);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(run(settings, policy)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("weft-supernode: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load(arg: &str, overrides: &[String]) -> Result<(Settings, AdmissionPolicy)> {
    let (session, path) = resolve_start_arg(arg, Path::new("/etc/weft"))?;
    let cfg = Config::load(&SCHEMA, &session, Some(&path), overrides)?;
    let s = Settings::from_config(&cfg)?;
    let policy = match &s.community_file {
        Some(p) => communities::load(p)?,
        None => AdmissionPolicy::open(),
    };
    Ok((s, policy))
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

/// A question the management server asks the loop.
pub enum Query {
    Info(oneshot::Sender<mgmt::Snapshot>),
}

fn bind_udp(addr: SocketAddr) -> Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = sock.set_recv_buffer_size(8 << 20);
    let _ = sock.set_send_buffer_size(8 << 20);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("cannot bind UDP {addr}"))?;
    Ok(UdpSocket::from_std(sock.into())?)
}

async fn run(s: Settings, policy: AdmissionPolicy) -> Result<()> {
    let leases = leases_file::load(&s.state_dir)?;
    let restored = leases.len();
    let listed = policy.listed.len();
    let open = policy.open;
    let cfg = SupernodeConfig {
        policy,
        pool_min: s.pool_min,
        pool_max: s.pool_max,
        boot_id: rand::random(),
        ..SupernodeConfig::default()
    };
    let mut sn = Supernode::new(cfg, Instant::now(), leases);
    let udp = bind_udp(s.bind)?;
    tracing::info!(
        "weft-supernode {} session {} listening on udp {}, {}, {} leases restored",
        env!("CARGO_PKG_VERSION"),
        s.session,
        udp.local_addr()?,
        if open {
            "admitting any community".to_string()
        } else {
            format!(
                "admitting the {listed} communities of {}",
                s.community_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )
        },
        restored
    );

    let (qtx, mut qrx) = mpsc::channel::<Query>(16);
    let module = mgmt::module(qtx, s.session.clone(), udp.local_addr()?.to_string())?;
    let sock = weft_web::socket_path(&s.runtime_dir, &s.session);
    let server = weft_web::MgmtServer::bind_unix(&sock, module)
        .await
        .with_context(|| format!("management socket {}", sock.display()))?
        .with_daemon_name("weft-supernode");
    let (stop_mgmt_tx, stop_mgmt_rx) = oneshot::channel::<()>();
    let mgmt_task = tokio::spawn(server.serve(async {
        let _ = stop_mgmt_rx.await;
    }));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut buf = vec![0u8; 65536];
    loop {
        let deadline = tokio::time::Instant::from_std(sn.poll_timeout());
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            r = udp.recv_from(&mut buf) => {
                let now = Instant::now();
                if let Ok((n, from)) = r {
                    sn.handle_udp(now, from, &buf[..n]);
                }
                for _ in 1..64 {
                    match udp.try_recv_from(&mut buf) {
                        Ok((n, from)) => sn.handle_udp(now, from, &buf[..n]),
                        Err(_) => break,
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => sn.handle_timeout(Instant::now()),
            Some(Query::Info(tx)) = qrx.recv() => { let _ = tx.send(mgmt::Snapshot::of(&sn)); }
        }
        while let Some(t) = sn.poll_transmit() {
            if let Err(e) = udp.send_to(&t.payload, t.dest).await {
                tracing::debug!("udp send to {}: {e}", t.dest);
            }
        }
        while let Some(ev) = sn.poll_event() {
            log_event(&sn, &ev);
        }
        if let Some(leases) = sn.take_changed_leases() {
            if let Err(e) = leases_file::save(&s.state_dir, &leases) {
                tracing::error!("cannot persist leases: {e:#}");
            }
        }
    }
    tracing::info!("stopping");
    let _ = stop_mgmt_tx.send(());
    let _ = mgmt_task.await;
    Ok(())
}

fn community_label(sn: &Supernode, id: &weft_proto::keys::CommunityId) -> String {
    match sn.community_name(id) {
        Some(n) => n.to_string(),
        None => id.to_string(),
    }
}

fn log_event(sn: &Supernode, ev: &SupernodeEvent) {
    match ev {
        SupernodeEvent::EdgeRegistered {
            community,
            edge,
            addr,
            moved,
        } => tracing::info!(
            "edge {edge:?} {} community {} from {addr}",
            if *moved { "moved in" } else { "joined" },
            community_label(sn, community)
        ),
        SupernodeEvent::RegistrationRefused {
            community,
            addr,
            reason,
        } => tracing::warn!(
            "refused registration from {addr} for community {}: {reason:?}",
            community_label(sn, community)
        ),
        SupernodeEvent::EdgeExpired { community, edge } => tracing::info!(
            "edge {edge:?} of community {} expired (no refresh)",
            community_label(sn, community)
        ),
    }
}
