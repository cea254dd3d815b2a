//! `weft-supernode`: admits edges into communities, introduces them to each other, coordinates hole
//! punching and relays sealed packets as a last resort. The protocol lives in `weft-proto`, the data path
//! in `weft-datapath`, the start-up sequence in `weft-daemon`; this binary is the supernode's own part:
//! configuration and community file, persisted leases, management methods, event texts.

#![forbid(unsafe_code)]

mod communities;
mod datapath;
mod events;
mod leases_file;
mod mgmt;
mod settings;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use tokio::sync::oneshot;
use weft_daemon::privileges::Cap;
use weft_daemon::startup::{Daemon, Prepared, Readiness};
use weft_daemon::{Common, MgmtSettings, StartArgs};
use weft_proto::supernode::{AdmissionPolicy, Supernode, SupernodeConfig};

use settings::{Settings, SCHEMA};

#[derive(Parser)]
#[command(
    name = "weft-supernode",
    version = weft_cli::VERSION,
    about = "Weft mesh VPN supernode: admits edges into communities and introduces them",
    after_help = weft_cli::see_man!("weft-supernode"),
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
    /// Create this supernode's identity (its static key pair) if it has none, and print its public key:
    /// what edges pin (`supernode = HOST:PORT KEY`). Refuses to replace an existing identity unless
    /// --force is given (edges that pinned the old key would refuse the supernode).
    Keygen {
        #[command(flatten)]
        which: weft_daemon::identity::KeyArgs,
        /// Replace an existing identity with a new one.
        #[arg(long)]
        force: bool,
    },
    /// Print this supernode's public key (from its identity in the state directory), for edges to pin.
    ShowKey {
        #[command(flatten)]
        which: weft_daemon::identity::KeyArgs,
    },
}

fn main() -> ExitCode {
    weft_cli::handle_generate(Cli::command, None);
    match Cli::parse().command {
        Command::Help { topic } => weft_daemon::help(&SCHEMA, topic.as_deref()),
        Command::Keygen { which, force } => weft_daemon::print_line(
            "weft-supernode",
            which.command("weft-supernode", &SCHEMA, Some(force)),
        ),
        Command::ShowKey { which } => weft_daemon::print_line(
            "weft-supernode",
            which.command("weft-supernode", &SCHEMA, None),
        ),
        Command::Start(args) => weft_daemon::startup::start::<Start>(args),
    }
}

/// What `start` loads: the settings and the community file's admission policy.
struct Start {
    settings: Settings,
    policy: AdmissionPolicy,
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
    /// Everything the status methods and metrics report.
    Snapshot(oneshot::Sender<mgmt::Snapshot>),
    /// A reloaded community file.
    SetPolicy(AdmissionPolicy),
}

impl Daemon for Start {
    const PROGRAM: &'static str = "weft-supernode";
    // No capability at all.
    const KEEP: &'static [Cap] = &[];
    const UDP_BUFFER: usize = 8 << 20;
    const LOG_FAILURE: bool = false;
    type Query = Query;

    fn load(args: &StartArgs) -> Result<Start> {
        let (settings, policy) = load(args)?;
        Ok(Start { settings, policy })
    }
    fn common(&self) -> &Common {
        &self.settings.common
    }
    fn mgmt(&self) -> &MgmtSettings {
        &self.settings.mgmt
    }
    fn session(&self) -> &str {
        &self.settings.session
    }
    fn bind(&self) -> SocketAddr {
        self.settings.bind
    }

    async fn prepare(
        self,
        args: StartArgs,
        udp: std::net::UdpSocket,
        remote: datapath::Remote,
    ) -> Result<Prepared<Query>> {
        let Start {
            settings: s,
            policy,
        } = self;
        let identity = weft_daemon::identity::load_or_create(&s.common.state_dir)?;
        let public_key = identity.public;
        let leases = leases_file::load(&s.common.state_dir)?;
        let restored = leases.len();
        let listed = policy.listed.len() + policy.patterns.len();
        let open = policy.open;
        let cfg = SupernodeConfig {
            policy,
            pool_min: s.pool_min,
            pool_max: s.pool_max,
            lease_time: s.lease_time,
            handshake_load: s.handshake_load,
            boot_id: rand::random(),
            wall_clock_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
            peers: s.peers.clone(),
            identity,
            seed: rand::random(),
            ..SupernodeConfig::default()
        };
        let sn = Supernode::new(cfg, Instant::now(), leases);
        if s.federation_secret_ignored {
            tracing::warn!(
                "[supernode] federation (or WEFT_FEDERATION) is set but no longer used: federation links \
                 are authenticated by the supernodes' own keys, given with each peer \
                 (peer = HOST[:PORT] KEY); remove the option"
            );
        }
        for p in &s.peers {
            tracing::info!("federation peer {} with key {}", p.addr, p.key);
        }
        tracing::info!(
            "weft-supernode {} session {} listening on udp {} with key {}, {}, {} leases restored",
            weft_cli::VERSION,
            s.session,
            udp.local_addr()?,
            public_key,
            if open {
                "admitting any community".to_string()
            } else {
                format!(
                    "admitting the {listed} communities and patterns of {}",
                    s.community_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )
            },
            restored
        );

        let bind = udp.local_addr()?.to_string();
        let ctx = Arc::new(mgmt::Context {
            session: s.session.clone(),
            bind: bind.clone(),
            public_key: public_key.to_string(),
            started: Instant::now(),
            started_unix_ms: events::unix_ms(),
            queries: remote.clone(),
        });
        let status = format!("session {} on udp {}", s.session, bind);
        let state_dir = s.common.state_dir.clone();
        Ok(Prepared {
            methods: mgmt::module(ctx.clone())?.into(),
            metrics: Arc::new(move || Box::pin(mgmt::render_metrics(ctx.clone()))),
            reload: Arc::new(move |logging| reload(&args, &s, logging, &remote)),
            status,
            ready: Readiness::Now,
            start: Box::new(move |inbox, events| {
                datapath::spawn(
                    sn,
                    udp,
                    datapath::Outside {
                        inbox,
                        events,
                        state_dir,
                    },
                )
            }),
        })
    }
}

/// `reload`: re-reads the configuration and the community file; applies the log level and the community
/// list, and names the options whose change needs a restart.
fn reload(
    args: &StartArgs,
    running: &Settings,
    logging: &weft_daemon::Logging,
    queries: &datapath::Remote,
) -> Result<(Vec<String>, Vec<String>)> {
    let (new, policy) = load(args)?;
    let mut applied = Vec::new();
    if new.common.verbose != logging.verbose() {
        logging.set_verbose(new.common.verbose)?;
        applied.push("logging.verbose".to_string());
    }
    queries
        .try_ask(Query::SetPolicy(policy))
        .map_err(|e| anyhow::anyhow!("cannot apply the community file: {e}"))?;
    applied.push("supernode.community_file".to_string());
    let mut restart = Vec::new();
    for (name, changed) in [
        ("connection.bind", new.bind != running.bind),
        ("supernode.auto_ip_min", new.pool_min != running.pool_min),
        ("supernode.auto_ip_max", new.pool_max != running.pool_max),
        ("supernode.lease_time", new.lease_time != running.lease_time),
        ("supernode.peer", new.peers != running.peers),
        (
            "supernode.handshake_load",
            new.handshake_load != running.handshake_load,
        ),
        (
            "daemon.state_dir",
            new.common.state_dir != running.common.state_dir,
        ),
        (
            "daemon.runtime_dir",
            new.common.runtime_dir != running.common.runtime_dir,
        ),
        ("daemon.user", new.common.user != running.common.user),
        ("management", new.mgmt != running.mgmt),
    ] {
        if changed {
            restart.push(name.to_string());
        }
    }
    tracing::info!("configuration reloaded: applied {applied:?}, restart needed for {restart:?}");
    Ok((applied, restart))
}
