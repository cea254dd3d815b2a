//! The start-up sequence both daemons run for `start`, written once: load the configuration, set up
//! logging, bind the UDP socket and drop root, start the runtime and the management server, tell systemd
//! READY, run the data loop on its thread until a signal or the management API stops it, then shut down.
//! What differs between the edge and the supernode is the [`Daemon`] trait's few items.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use tokio::sync::{mpsc, oneshot};
use weft_datapath::dataloop::{self, Inbox, Remote};

use crate::{
    bind_and_drop, control, init_logging, notify, privileges, reload_on_sighup, shutdown_signal,
    Common, Logging, Mgmt, MgmtSettings, ReloadFn, StartArgs,
};

/// Where the data loop publishes events for `/events`.
pub type EventSink = tokio::sync::broadcast::Sender<weft_mgmt::ServerEvent>;

/// What the data loop's thread yields when it stops.
pub type Done = oneshot::Receiver<Result<()>>;

/// A daemon's own part of the start-up sequence: its configuration, and what it builds once the socket
/// is bound and root dropped.
pub trait Daemon: Sized + 'static {
    /// The program's name, which starts its error messages ("weft-edge: ...").
    const PROGRAM: &'static str;
    /// The capabilities kept when started as root with `[daemon] user` set.
    const KEEP: &'static [privileges::Cap];
    /// The UDP socket's kernel buffers, in bytes.
    const UDP_BUFFER: usize;
    /// Whether an error after the socket is bound is logged as well as printed (the edge does both; the
    /// supernode only prints it).
    const LOG_FAILURE: bool;
    /// The questions the management side asks the data loop.
    type Query: Send + 'static;

    /// Reads the configuration named by `start` (and whatever else must be checked before anything
    /// runs). An error here exits with status 2.
    fn load(args: &StartArgs) -> Result<Self>;
    /// The `[daemon]` and `[logging]` options.
    fn common(&self) -> &Common;
    /// The `[management]` options.
    fn mgmt(&self) -> &MgmtSettings;
    /// The session name.
    fn session(&self) -> &str;
    /// The UDP address to bind.
    fn bind(&self) -> SocketAddr;

    /// Builds the state machine and what the management server and the data loop need, on the runtime,
    /// after the privilege drop; logs the start line. `remote` is the management side's handle on the
    /// loop [`Prepared::start`] will run.
    fn prepare(
        self,
        args: StartArgs,
        udp: std::net::UdpSocket,
        remote: Remote<Self::Query>,
    ) -> impl Future<Output = Result<Prepared<Self::Query>>>;
}

/// Starts the data loop on its thread, given the loop's end of the management handle and the sink for
/// `/events`.
pub type StartFn<Q> = Box<dyn FnOnce(Inbox<Q>, EventSink) -> Result<Done>>;

/// What [`Daemon::prepare`] builds.
pub struct Prepared<Q> {
    /// The daemon's own management methods (the control methods are added here).
    pub methods: weft_mgmt::jsonrpsee::Methods,
    /// `/metrics`.
    pub metrics: weft_mgmt::MetricsFn,
    /// The `reload` action.
    pub reload: ReloadFn,
    /// The one-line status systemd shows.
    pub status: String,
    /// When to tell systemd READY.
    pub ready: Readiness,
    /// Starts the data loop.
    pub start: StartFn<Q>,
}

/// When the daemon is ready.
pub enum Readiness {
    /// As soon as the management server serves.
    Now,
    /// When the future yields true (never if it yields false).
    When(Pin<Box<dyn Future<Output = bool> + Send>>),
}

/// `start`: runs daemon `D` until it is stopped, and gives the process's exit status (2 for a
/// configuration error, 1 for any other failure).
pub fn start<D: Daemon>(args: StartArgs) -> ExitCode {
    let daemon = match D::load(&args) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{}: {e:#}", D::PROGRAM);
            return ExitCode::from(2);
        }
    };
    let logging = Arc::new(init_logging(daemon.common().verbose));
    // Before the runtime (one thread): bind, and when root with [daemon] user set, become that user,
    // keeping only D::KEEP (the edge creates its TAP device with it, in `prepare`).
    let udp = match bind_and_drop(
        daemon.common(),
        daemon.session(),
        daemon.bind(),
        D::UDP_BUFFER,
        D::KEEP,
    ) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{}: {e:#}", D::PROGRAM);
            return ExitCode::FAILURE;
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(daemon, args, logging, udp)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if D::LOG_FAILURE {
                tracing::error!("{e:#}");
            }
            eprintln!("{}: {e:#}", D::PROGRAM);
            ExitCode::FAILURE
        }
    }
}

async fn run<D: Daemon>(
    daemon: D,
    args: StartArgs,
    logging: Arc<Logging>,
    udp: std::net::UdpSocket,
) -> Result<()> {
    let common = daemon.common().clone();
    let mgmt = daemon.mgmt().clone();
    let session = daemon.session().to_string();
    let (remote, inbox) = dataloop::channel::<D::Query>()?;
    let prepared = daemon.prepare(args, udp, remote.clone()).await?;
    let (stop_api_tx, mut stop_api_rx) = mpsc::channel::<()>(1);
    let (events_tx, _) = tokio::sync::broadcast::channel(256);
    let controls = control::module(control::Controls {
        logging: logging.clone(),
        stop: stop_api_tx,
        reload: prepared.reload.clone(),
    })?;
    let mut methods = prepared.methods;
    methods.merge(controls)?;
    let server = Mgmt::start(
        &common,
        &mgmt,
        &session,
        D::PROGRAM,
        methods,
        prepared.metrics,
        events_tx.clone(),
    )
    .await?;

    let status = prepared.status;
    reload_on_sighup(prepared.reload, logging, status.clone())?;
    match prepared.ready {
        Readiness::Now => notify::ready(&status),
        Readiness::When(ready) => {
            tokio::spawn(async move {
                if ready.await {
                    notify::ready(&status);
                }
            });
        }
    }

    let done = (prepared.start)(inbox, events_tx)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = stop_api_rx.recv() => {}
        }
        remote.stop();
    });
    let result = done.await.unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "the data-path thread ended without a result"
        ))
    });
    tracing::info!("stopping");
    notify::stopping();
    server.stop().await;
    result
}
