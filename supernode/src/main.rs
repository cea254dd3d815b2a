//! `weft-supernode`: admits edges into communities, introduces them to each other, coordinates hole
//! punching and relays sealed packets as a last resort. The protocol lives in `weft-proto`; this binary is
//! the I/O shell: configuration, the UDP socket, persisted leases, the management socket, logging.

mod communities;
mod leases_file;
mod mgmt;
mod settings;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tokio::sync::{mpsc, oneshot};
use weft_daemon::{Mgmt, StartArgs};
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
    Start(StartArgs),
    /// Show help on a topic: `help config` lists every option with its default.
    Help {
        /// The topic (config).
        topic: Option<String>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Help { topic } => weft_daemon::help(&SCHEMA, topic.as_deref()),
        Command::Start(args) => {
            let (settings, policy) = match load(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("weft-supernode: {e:#}");
                    return ExitCode::from(2);
                }
            };
            weft_daemon::init_logging(settings.common.verbose);
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

fn load(args: &StartArgs) -> Result<(Settings, AdmissionPolicy)> {
    let cfg = weft_daemon::load_config(&SCHEMA, args)?;
    let s = Settings::from_config(&cfg)?;
    let policy = match &s.community_file {
        Some(p) => communities::load(p)?,
        None => AdmissionPolicy::open(),
    };
    Ok((s, policy))
}

/// A question the management server asks the loop.
pub enum Query {
    Info(oneshot::Sender<mgmt::Snapshot>),
}

async fn run(s: Settings, policy: AdmissionPolicy) -> Result<()> {
    let leases = leases_file::load(&s.common.state_dir)?;
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
    let udp = weft_daemon::bind_udp(s.bind, 8 << 20)?;
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
    let mgmt = Mgmt::start(&s.common.runtime_dir, &s.session, "weft-supernode", module).await?;

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
            if let Err(e) = leases_file::save(&s.common.state_dir, &leases) {
                tracing::error!("cannot persist leases: {e:#}");
            }
        }
    }
    tracing::info!("stopping");
    mgmt.stop().await;
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
