//! `weft-edge`: joins this machine to a Weft community as one port of a distributed Ethernet switch.
//!
//! This binary is the edge's own part of the daemon: its configuration and identity, the TAP device's
//! set-up, its management methods and its event texts. The protocol lives in `weft-proto`, the data path
//! (the event loop, batched UDP, the TAP device's I/O) in `weft-datapath`, and the start-up sequence and
//! process plumbing in `weft-daemon`.

#![forbid(unsafe_code)]

mod datapath;
mod events;
mod mgmt;
mod netaddrs;
mod pins;

mod settings;
mod strength;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use weft_daemon::identity;
use weft_daemon::privileges::Cap;
use weft_daemon::startup::{Daemon, Prepared, Readiness};
use weft_daemon::{Common, MgmtSettings, StartArgs};
use weft_proto::edge::{AddressMode as ProtoAddressMode, EdgeConfig, Limits, Timers};
use weft_proto::keys::{CommunityId, CommunityKeys, PublicKey};
use weft_proto::secret::{CommunitySecret, GeneratedKey, KdfCost};
use weft_proto::wire::{Ipv4Net, MacAddr};

use settings::{AddressMode, Settings, SCHEMA};

#[derive(Parser)]
#[command(
    name = "weft-edge",
    version = weft_cli::VERSION,
    about = "Weft mesh VPN edge: joins this machine to a community's virtual Ethernet",
    after_help = weft_cli::see_man!("weft-edge"),
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the edge: `start home` reads /etc/weft/home.conf; `start ./x.conf` reads that file.
    Start(StartArgs),
    /// Show help on a topic: `help config` lists every option with its default.
    Help {
        /// The topic (config).
        topic: Option<String>,
    },
    /// Create this edge's identity (its static key pair) if it has none, and print its public key: what a
    /// supernode's community file lists in `allow=`. Refuses to replace an existing identity unless
    /// --force is given (peers and supernodes know the edge by it).
    Keygen {
        #[command(flatten)]
        which: identity::KeyArgs,
        /// Replace an existing identity with a new one.
        #[arg(long)]
        force: bool,
    },
    /// Print this edge's public key (from its identity in the state directory), for a supernode's
    /// community file (`allow=`).
    ShowKey {
        #[command(flatten)]
        which: identity::KeyArgs,
    },
    /// Print a new community key: 256 random bits as `weftkey1-` and 72 hex digits, for `[community] key`
    /// (or key_file) on every edge of a community. Not the edge's identity (that is `keygen`): this is
    /// the secret the community's edges share. Guessing it is hopeless, unlike a passphrase.
    NewCommunityKey,
    /// Print the admission key of a community, for a supernode's community file.
    /// The secret (a generated key or a passphrase) is read from WEFT_KEY or from --key-file. For a
    /// passphrase, --kdf-memory and --kdf-passes must match the edges' kdf_memory and kdf_passes.
    AdmissionKey {
        /// The community name.
        community: String,
        /// A file whose first line is the secret.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Argon2id memory in KiB for a passphrase: the edges' [community] kdf_memory.
        #[arg(long, value_name = "KIB", default_value_t = KdfCost::DEFAULT.memory_kib())]
        kdf_memory: u32,
        /// Argon2id passes for a passphrase: the edges' [community] kdf_passes.
        #[arg(long, value_name = "N", default_value_t = KdfCost::DEFAULT.passes())]
        kdf_passes: u32,
    },
}

/// weft.conf(5), for `--generate man-conf` (packaging/build-deb).
fn man_conf() -> String {
    let supernode = weft_daemon::schema("weft-supernode", weft_daemon::options::SUPERNODE_OPTIONS);
    weft_cli::conf_man_page(&SCHEMA, &supernode, weft_daemon::COMMON_OPTIONS)
}

fn main() -> ExitCode {
    weft_cli::handle_generate(Cli::command, Some(&man_conf));
    let cli = Cli::parse();
    match cli.command {
        Command::Help { topic } => weft_daemon::help(&SCHEMA, topic.as_deref()),
        Command::Keygen { which, force } => weft_daemon::print_line(
            "weft-edge",
            which.command("weft-edge", &SCHEMA, Some(force)),
        ),
        Command::ShowKey { which } => {
            weft_daemon::print_line("weft-edge", which.command("weft-edge", &SCHEMA, None))
        }
        Command::NewCommunityKey => weft_daemon::print_line("weft-edge", Ok(new_community_key())),
        Command::AdmissionKey {
            community,
            key_file,
            kdf_memory,
            kdf_passes,
        } => weft_daemon::print_line(
            "weft-edge",
            admission_key(&community, key_file.as_deref(), kdf_memory, kdf_passes)
                .map(|k| format!("{community} {k}")),
        ),
        Command::Start(args) => weft_daemon::startup::start::<Settings>(args),
    }
}

/// A new generated community key, from the operating system's random source.
fn new_community_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    GeneratedKey::from_bytes(bytes).to_string()
}

fn admission_key(
    community: &str,
    key_file: Option<&Path>,
    kdf_memory: u32,
    kdf_passes: u32,
) -> Result<String> {
    let (text, from) = match (std::env::var("WEFT_KEY"), key_file) {
        (_, Some(p)) => (
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .trim_end()
                .to_string(),
            format!("the secret in {}", p.display()),
        ),
        (Ok(k), None) => (k, "WEFT_KEY".to_string()),
        (Err(_), None) => anyhow::bail!("give the secret in WEFT_KEY or with --key-file"),
    };
    let secret = CommunitySecret::parse(&text).with_context(|| from.clone())?;
    KdfCost::new(kdf_memory, KdfCost::DEFAULT.passes()).context("--kdf-memory")?;
    let cost = KdfCost::new(kdf_memory, kdf_passes).context("--kdf-passes")?;
    if let Some(w) = strength::weak_secret_warning(community, &secret) {
        eprintln!("weft-edge: warning: {w}");
    }
    Ok(CommunityKeys::derive(community, &secret, &cost)
        .admission
        .to_string())
}

fn load_settings(args: &StartArgs) -> Result<Settings> {
    let mut cfg = weft_daemon::load_config(&SCHEMA, args)?;
    if let Ok(k) = std::env::var("WEFT_KEY") {
        cfg.apply_env("community", "key", "WEFT_KEY", k);
    }
    Ok(Settings::from_config(&cfg)?)
}

impl Daemon for Settings {
    const PROGRAM: &'static str = "weft-edge";
    // CAP_NET_ADMIN only: the TAP device is created with it, in `prepare`.
    const KEEP: &'static [Cap] = &[Cap::CAP_NET_ADMIN];
    const UDP_BUFFER: usize = 4 << 20;
    const LOG_FAILURE: bool = true;
    type Query = datapath::Query;

    fn load(args: &StartArgs) -> Result<Settings> {
        load_settings(args)
    }
    fn common(&self) -> &Common {
        &self.common
    }
    fn mgmt(&self) -> &MgmtSettings {
        &self.mgmt
    }
    fn session(&self) -> &str {
        &self.session
    }
    fn bind(&self) -> SocketAddr {
        self.bind
    }

    async fn prepare(
        self,
        args: StartArgs,
        udp: std::net::UdpSocket,
        remote: datapath::Remote,
    ) -> Result<Prepared<datapath::Query>> {
        let s = self;
        let identity = identity::load_or_create(&s.common.state_dir)?;
        let mac = s
            .mac
            .unwrap_or_else(|| MacAddr::local_from_seed(&identity.public.0));
        let resolved = settings::resolve_supernodes(&s.supernodes).await?;
        let supernodes: Vec<SocketAddr> = resolved.iter().map(|(a, _)| *a).collect();
        // Keys learned on first use earlier, then the configured ones over them.
        let mut supernode_keys = pins::load(&s.common.state_dir);
        supernode_keys.retain(|a, _| supernodes.contains(a));
        for (a, k) in &resolved {
            if let Some(k) = k {
                supernode_keys.insert(*a, *k);
            }
        }
        let bound = udp.local_addr()?;
        let static_addr = match s.address {
            AddressMode::Static(n) => Some(n),
            _ => None,
        };
        let dev = weft_datapath::tap::create(&s.tap_name, mac, s.mtu, static_addr, s.offload)
            .with_context(|| {
                format!(
                    "cannot create TAP device {} (needs CAP_NET_ADMIN and /dev/net/tun)",
                    s.tap_name
                )
            })?;
        let found = netaddrs::local_candidates(
            &s.advertise,
            bound.port(),
            &s.tap_name,
            std::path::Path::new(netaddrs::SYSFS_NET),
        );
        for (iface, why) in &found.skipped {
            tracing::info!("not offering the addresses of {iface} to peers: {why}");
        }
        let local_addrs = found.addrs;
        if let Some(w) = strength::weak_secret_warning(&s.community, &s.secret) {
            tracing::warn!("{w}");
        }
        // Once per start: Argon2id for a passphrase (kdf_memory, kdf_passes), never per packet.
        let community = CommunityKeys::derive(&s.community, &s.secret, &s.kdf);
        let timers = Timers {
            register_interval: s.register_interval,
            ..Timers::default()
        };
        let cfg = EdgeConfig {
            community,
            identity,
            supernodes: supernodes.clone(),
            supernode_keys,
            mac,
            address: match s.address {
                AddressMode::Static(n) => ProtoAddressMode::Static(n),
                AddressMode::Auto => ProtoAddressMode::Auto,
                AddressMode::Dhcp => ProtoAddressMode::None,
            },
            local_addrs: local_addrs.clone(),
            avoid_nets: found
                .avoid
                .iter()
                .map(|&(addr, prefix)| Ipv4Net { addr, prefix })
                .collect(),
            description: s.description.clone(),
            allow_p2p: s.allow_p2p,
            timers,
            limits: Limits::default(),
        };
        let now = Instant::now();
        let mut edge =
            weft_proto::edge::Edge::new(cfg, now, events::wall_clock_us(), rand::random());
        edge.set_allowed_peers(now, s.allow_peers.clone());
        if let Some(keys) = &s.allow_peers {
            tracing::info!(
                "accepting only the {} peer key(s) of [community] allow_peer",
                keys.len()
            );
        }
        tracing::info!(
            "weft-edge {} session {} community {} tap {} mac {} udp {} supernodes {:?} local addresses {:?}",
            weft_cli::VERSION,
            s.session,
            s.community,
            s.tap_name,
            mac,
            bound,
            supernodes,
            local_addrs
        );

        let ctx = Arc::new(mgmt::Context {
            session: s.session.clone(),
            community: s.community.clone(),
            community_id: CommunityId::from_name(&s.community).to_string(),
            description: s.description.clone(),
            tap: s.tap_name.clone(),
            bind: bound.to_string(),
            started: Instant::now(),
            started_unix_ms: events::unix_ms(),
            queries: remote.clone(),
        });
        let status = format!(
            "session {} community {} on {} via {} supernode(s)",
            s.session,
            s.community,
            s.tap_name,
            supernodes.len()
        );
        let vnet = s.offload;
        let state_dir = s.common.state_dir.clone();
        let started = s.clone();
        let applied = Mutex::new(s.allow_peers.clone());
        let loop_handle = remote.clone();
        Ok(Prepared {
            methods: mgmt::module(ctx.clone())?.into(),
            metrics: Arc::new(move || Box::pin(mgmt::render_metrics(ctx.clone()))),
            reload: Arc::new(move |logging| {
                reload(&args, &started, &applied, &loop_handle, logging)
            }),
            status,
            ready: Readiness::When(Box::pin(registering(remote))),
            start: Box::new(move |inbox, events| {
                datapath::spawn(edge, udp, dev, vnet, inbox, events, state_dir)
            }),
        })
    }
}

/// Whether the edge is ready for systemd: once the loop has sent its first registration (the TAP device
/// is up by then: it is created before the loop starts). The loop answers a snapshot between two
/// wake-ups, so a snapshot that counts a sent datagram comes after the flush that sent it. False when the
/// loop stopped first.
async fn registering(queries: datapath::Remote) -> bool {
    loop {
        match queries.request(datapath::Query::Snapshot).await {
            Ok(snap) if snap.stats.tx_packets > 0 => return true,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            Err(_) => return false,
        }
    }
}

/// `reload`: re-reads the configuration; applies what can change at run time (the log level, the
/// `allow_peer` list, which `allow` holds as last applied) and names the options whose change needs a
/// restart.
fn reload(
    args: &StartArgs,
    running: &Settings,
    allow: &Mutex<Option<BTreeSet<PublicKey>>>,
    queries: &datapath::Remote,
    logging: &weft_daemon::Logging,
) -> Result<(Vec<String>, Vec<String>)> {
    let new = load_settings(args)?;
    let mut applied = Vec::new();
    if new.common.verbose != logging.verbose() {
        logging.set_verbose(new.common.verbose)?;
        applied.push("logging.verbose".to_string());
    }
    {
        let mut current = allow.lock().unwrap_or_else(|e| e.into_inner());
        if new.allow_peers != *current {
            queries
                .try_ask(datapath::Query::SetAllowedPeers(new.allow_peers.clone()))
                .map_err(|e| {
                    anyhow::anyhow!("cannot apply community.allow_peer: {e}; try again")
                })?;
            match &new.allow_peers {
                Some(keys) => tracing::info!(
                    "now accepting only the {} peer key(s) of [community] allow_peer",
                    keys.len()
                ),
                None => tracing::info!(
                    "[community] allow_peer removed: accepting every peer the community admits"
                ),
            }
            current.clone_from(&new.allow_peers);
            applied.push("community.allow_peer".to_string());
        }
    }
    let mut restart = Vec::new();
    let mut differs = |name: &str, changed: bool| {
        if changed {
            restart.push(name.to_string());
        }
    };
    differs("community.name", new.community != running.community);
    differs("community.key", new.secret != running.secret);
    differs(
        "community.kdf_memory",
        new.kdf.memory_kib() != running.kdf.memory_kib(),
    );
    differs(
        "community.kdf_passes",
        new.kdf.passes() != running.kdf.passes(),
    );
    differs("community.supernode", new.supernodes != running.supernodes);
    differs("tuntap.name", new.tap_name != running.tap_name);
    differs("tuntap.address", new.address != running.address);
    differs("tuntap.macaddr", new.mac != running.mac);
    differs("tuntap.mtu", new.mtu != running.mtu);
    differs("tuntap.offload", new.offload != running.offload);
    differs("tuntap.description", new.description != running.description);
    differs("connection.bind", new.bind != running.bind);
    differs("connection.allow_p2p", new.allow_p2p != running.allow_p2p);
    differs(
        "connection.register_interval",
        new.register_interval != running.register_interval,
    );
    differs("connection.advertise", new.advertise != running.advertise);
    differs(
        "daemon.state_dir",
        new.common.state_dir != running.common.state_dir,
    );
    differs(
        "daemon.runtime_dir",
        new.common.runtime_dir != running.common.runtime_dir,
    );
    differs("daemon.user", new.common.user != running.common.user);
    differs("management", new.mgmt != running.mgmt);
    tracing::info!("configuration reloaded: applied {applied:?}, restart needed for {restart:?}");
    Ok((applied, restart))
}
