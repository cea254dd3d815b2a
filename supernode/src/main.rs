//! `weft-supernode`: admits edges into communities, introduces them to each other, coordinates hole
//! punching and relays sealed packets as a last resort. The protocol lives in `weft-proto`; this binary is
//! the I/O shell: configuration, the UDP socket, persisted leases, the management socket, logging.

mod communities;
mod datapath;
mod events;
mod leases_file;
mod mgmt;
mod settings;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use tokio::sync::{mpsc, oneshot};
use weft_daemon::{Mgmt, StartArgs};
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
}

fn main() -> ExitCode {
    weft_cli::handle_generate(Cli::command, None);
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
            let logging = Arc::new(weft_daemon::init_logging(settings.common.verbose));
            // Before the runtime (one thread): bind, and when root with [daemon] user set, become
            // that user with no capability at all.
            let udp = match weft_daemon::bind_and_drop(
                &settings.common,
                &settings.session,
                settings.bind,
                8 << 20,
                &[],
            ) {
                Ok(u) => u,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("weft-supernode: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(run(settings, policy, args, logging, udp)) {
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
    /// Everything the status methods and metrics report.
    Snapshot(oneshot::Sender<mgmt::Snapshot>),
    /// A reloaded community file.
    SetPolicy(AdmissionPolicy),
}

async fn run(
    s: Settings,
    policy: AdmissionPolicy,
    args: StartArgs,
    logging: Arc<weft_daemon::Logging>,
    udp: std::net::UdpSocket,
) -> Result<()> {
    let leases = leases_file::load(&s.common.state_dir)?;
    let restored = leases.len();
    let listed = policy.listed.len() + policy.patterns.len();
    let open = policy.open;
    let cfg = SupernodeConfig {
        policy,
        pool_min: s.pool_min,
        pool_max: s.pool_max,
        boot_id: rand::random(),
        wall_clock_us: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0),
        federation: s
            .federation
            .as_deref()
            .map(|f| weft_proto::keys::FederationKey::derive(f.as_bytes())),
        peers: s.peers.clone(),
        ..SupernodeConfig::default()
    };
    let sn = Supernode::new(cfg, Instant::now(), leases);
    tracing::info!(
        "weft-supernode {} session {} listening on udp {}, {}, {} leases restored",
        weft_cli::VERSION,
        s.session,
        udp.local_addr()?,
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

    let (qtx, inbox) = weft_datapath::dataloop::channel::<Query>()?;
    let (stop_api_tx, mut stop_api_rx) = mpsc::channel::<()>(1);
    let (events_tx, _) = tokio::sync::broadcast::channel::<weft_web::ServerEvent>(256);
    let running = s.clone();
    let reload_tx = qtx.clone();
    let stop_remote = qtx.clone();
    let ctx_bind = udp.local_addr()?.to_string();
    let ctx = Arc::new(mgmt::Context {
        session: s.session.clone(),
        bind: ctx_bind.clone(),
        started: Instant::now(),
        started_unix_ms: events::unix_ms(),
        queries: qtx,
    });
    let reload_fn: weft_daemon::ReloadFn =
        Arc::new(move |logging| reload(&args, &running, logging, &reload_tx));
    let controls = weft_daemon::control::module(weft_daemon::control::Controls {
        logging: logging.clone(),
        stop: stop_api_tx,
        reload: reload_fn.clone(),
    })?;
    let metrics_ctx = ctx.clone();
    let metrics: weft_web::MetricsFn =
        Arc::new(move || Box::pin(mgmt::render_metrics(metrics_ctx.clone())));
    let server = Mgmt::start(
        &s.common,
        &s.mgmt,
        &s.session,
        "weft-supernode",
        {
            let mut methods = mgmt::module(ctx)?;
            methods.merge(controls)?;
            methods
        },
        metrics,
        events_tx.clone(),
    )
    .await?;

    let status = format!("session {} on udp {}", s.session, ctx_bind);
    weft_daemon::reload_on_sighup(reload_fn, logging, status.clone())?;
    weft_daemon::notify::ready(&status);

    let done = datapath::spawn(
        sn,
        udp,
        datapath::Outside {
            inbox,
            events: events_tx,
            state_dir: s.common.state_dir.clone(),
        },
    )?;
    tokio::spawn(async move {
        tokio::select! {
            _ = weft_daemon::shutdown_signal() => {}
            _ = stop_api_rx.recv() => {}
        }
        stop_remote.stop();
    });
    let result = done.await.unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "the data-path thread ended without a result"
        ))
    });
    tracing::info!("stopping");
    weft_daemon::notify::stopping();
    server.stop().await;
    result
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
