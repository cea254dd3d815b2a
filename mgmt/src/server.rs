//! The management server: bound listeners plus the daemon's methods, served until shutdown.
//!
//! Binding and serving are separate steps so a daemon can fail fast at startup ("another daemon
//! is using this session", "port in use") before it touches the network or the TAP device, and
//! only then start serving next to its event loop. Everything optional (TCP, password, metrics,
//! events) is added with `with_*` calls between the two.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::{Methods, RpcModule};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use crate::auth::{self, PasswordGuard, Policy};
use crate::conn::{self, Shared};
use crate::error::WebError;
use crate::events::{self, EventSource, ServerEvent};
use crate::limits::Limits;
use crate::listener::{Active, BoundTcp, Listener};
use crate::quota::{BurstLog, ConnQuota, Refusal};
use crate::routes::{App, AppState, MetricsFn};
use crate::stats::MgmtStats;
use crate::throttle::PasswordThrottle;
use crate::unix;

/// At most one log line per listener per this interval about refused connections: a flood of
/// connections must not become a flood of log lines.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// After shutdown, in-flight requests get this long to finish before their tasks are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Methods that change state, unless the daemon says otherwise ([`MgmtServer::with_write_methods`]).
pub const DEFAULT_WRITE_METHODS: &[&str] = &["set_verbose", "reload", "stop"];

/// A bound, not yet serving, management server.
///
/// Dropping it without serving closes the sockets and removes the socket file.
pub struct MgmtServer {
    listeners: Vec<Listener>,
    methods: Methods,
    daemon: String,
    session: String,
    password: Option<String>,
    write_methods: HashSet<String>,
    metrics: Option<MetricsFn>,
    events: Option<broadcast::Sender<ServerEvent>>,
    keepalive: Duration,
    max_event_streams: usize,
    limits: Limits,
    stats: Arc<MgmtStats>,
}

impl std::fmt::Debug for MgmtServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MgmtServer")
            .field("listeners", &self.listeners)
            .field("daemon", &self.daemon)
            .field("session", &self.session)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("write_methods", &self.write_methods)
            .field("metrics", &self.metrics.is_some())
            .field("events", &self.events.is_some())
            .finish_non_exhaustive()
    }
}

impl MgmtServer {
    /// Create the parent directory (mode 0750), refuse to start if another live process already
    /// listens on the socket ("another weft daemon is using session X"), remove a stale socket
    /// file, bind, chmod 0660. `module` is a jsonrpsee RpcModule whose methods the daemon
    /// registered.
    pub async fn bind_unix(path: &Path, module: RpcModule<()>) -> Result<MgmtServer, WebError> {
        let bound = unix::bind(path).await?;
        Ok(MgmtServer {
            listeners: vec![Listener::Unix(bound)],
            methods: module.into(),
            daemon: default_daemon_name(),
            session: unix::session_name(path),
            password: None,
            write_methods: DEFAULT_WRITE_METHODS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
            metrics: None,
            events: None,
            keepalive: events::DEFAULT_KEEPALIVE,
            max_event_streams: events::DEFAULT_MAX_STREAMS,
            limits: Limits::default(),
            stats: Arc::default(),
        })
    }

    /// Name the daemon, for logs (default: the executable's file name).
    pub fn with_daemon_name(mut self, name: impl Into<String>) -> Self {
        self.daemon = name.into();
        self
    }

    /// Also listen on TCP at `addr` (port 0 picks a free port; see [`MgmtServer::tcp_addrs`]).
    ///
    /// A loopback address serves like the unix socket, except that write methods always need the
    /// password. A non-loopback address is refused unless `allow_remote` is set, and then needs a
    /// password set first ([`MgmtServer::with_password`]): every request on that listener, every
    /// route, must carry it. Binds at once, so "address in use" shows here.
    pub async fn with_tcp(self, addr: SocketAddr, allow_remote: bool) -> Result<Self, WebError> {
        let remote = !addr.ip().is_loopback();
        if remote && !allow_remote {
            return Err(WebError::RemoteNotAllowed { addr });
        }
        self.add_tcp(addr, remote)
    }

    /// Listen on `addr` as if it were a non-loopback address (every request needs the password),
    /// whatever it is. For tests, which may only bind loopback addresses.
    #[doc(hidden)]
    pub async fn with_tcp_as_remote(self, addr: SocketAddr) -> Result<Self, WebError> {
        self.add_tcp(addr, true)
    }

    fn add_tcp(mut self, addr: SocketAddr, remote: bool) -> Result<Self, WebError> {
        if remote && self.password.as_deref().is_none_or(str::is_empty) {
            return Err(WebError::RemoteWithoutPassword { addr });
        }
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| WebError::TcpBind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| WebError::TcpBind { addr, source })?;
        tracing::debug!(addr = %local, remote, "management TCP listener bound");
        self.listeners.push(Listener::Tcp(BoundTcp {
            listener,
            addr: local,
            remote,
        }));
        Ok(self)
    }

    /// The management password: with it (`Authorization: Bearer <password>` or
    /// `Basic base64(<any user>:<password>)`) any client may call write methods. An empty password
    /// counts as none.
    pub fn with_password(mut self, password: String) -> Self {
        self.password = (!password.is_empty()).then_some(password);
        self
    }

    /// Which methods change state and so need authorisation (default
    /// [`DEFAULT_WRITE_METHODS`]). Replaces the list.
    pub fn with_write_methods(mut self, methods: &[&str]) -> Self {
        self.write_methods = methods.iter().map(|m| (*m).to_owned()).collect();
        self
    }

    /// Serve `GET /metrics` with the Prometheus text `render` produces on each request, e.g.
    /// `Arc::new(move || Box::pin(render_metrics(ctx.clone())))`.
    pub fn with_metrics(mut self, render: MetricsFn) -> Self {
        self.metrics = Some(render);
        self
    }

    /// Serve `GET /events`: everything sent on `events` from then on, as server-sent events.
    pub fn with_events(mut self, events: broadcast::Sender<ServerEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// Interval of the `: keepalive` comments on event streams (default 15 s).
    pub fn with_event_keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval.max(Duration::from_millis(1));
        self
    }

    /// How many event streams may be open at once (default 32); more get HTTP 503.
    pub fn with_max_event_streams(mut self, max: usize) -> Self {
        self.max_event_streams = max;
        self
    }

    /// Connection quotas, timeouts and password rate limits (default [`Limits::default`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Counters of what this server refuses (wrong passwords, throttled attempts, connections
    /// over quota), live while it serves.
    pub fn stats(&self) -> Arc<MgmtStats> {
        self.stats.clone()
    }

    /// Path of the unix socket this server listens on.
    pub fn socket_path(&self) -> Option<&Path> {
        self.listeners.iter().find_map(Listener::unix_path)
    }

    /// Addresses of the TCP listeners, in the order they were added (with real port numbers).
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(Listener::tcp_addr)
            .collect()
    }

    /// Serve until `shutdown` resolves; then stop accepting, end event streams, and remove the
    /// socket file.
    ///
    /// Requests already being handled get a short grace period to complete; idle keep-alive
    /// connections are closed. Dropping the returned future also stops the server and removes the
    /// socket file, only less gracefully.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), WebError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let keepalive = self.keepalive;
        let max_streams = self.max_event_streams;
        let daemon_uid = effective_uid();
        let guard = PasswordGuard::new(
            self.password.clone(),
            daemon_uid,
            PasswordThrottle::new(&self.limits),
            self.stats.clone(),
        );
        let state = Arc::new(AppState {
            methods: self.methods,
            policy: Policy {
                password: self.password,
                write_methods: self.write_methods,
                daemon_uid,
            },
            metrics: self.metrics,
            events: self
                .events
                .map(|tx| EventSource::new(tx, keepalive, max_streams)),
            stop: stop_rx.clone(),
        });
        let shared = Arc::new(Shared {
            app: Arc::new(App::new(state)),
            guard,
            header_read_timeout: self.limits.header_read_timeout,
            write_stall_timeout: self.limits.write_stall_timeout,
        });

        // Dropping this set (e.g. when our future is dropped) aborts the accept loops, which drops
        // the listeners and so removes the socket files.
        let mut loops = JoinSet::new();
        for listener in self.listeners {
            let name = listener.describe();
            let active = listener
                .activate()
                .map_err(|e| WebError::Task(format!("cannot start listening on {name}: {e}")))?;
            tracing::debug!(daemon = %self.daemon, session = %self.session, listener = %name, "management server listening");
            let gate = Gate {
                quota: quota_for(&active, &self.limits),
                daemon_uid,
                stats: self.stats.clone(),
            };
            loops.spawn(accept_loop(
                active,
                name,
                gate,
                shared.clone(),
                stop_rx.clone(),
            ));
        }

        tokio::select! {
            () = shutdown => {}
            Some(ended) = loops.join_next() => {
                // Accept loops only return after a stop signal, so this one died.
                return Err(WebError::Task(match ended {
                    Ok(()) => "accept loop ended unexpectedly".to_owned(),
                    Err(e) => e.to_string(),
                }));
            }
        }
        tracing::debug!("management server shutting down");
        let _ = stop_tx.send(true);
        while let Some(ended) = loops.join_next().await {
            ended.map_err(|e| WebError::Task(e.to_string()))?;
        }
        Ok(())
    }
}

/// Each listener's own connection pool: the unix socket's cannot be used by TCP clients, and keeps
/// slots for root and the daemon's user.
fn quota_for(listener: &Active, limits: &Limits) -> ConnQuota {
    match listener {
        Active::Unix(_) => ConnQuota::new(
            limits.max_unix_connections,
            limits.max_unix_per_uid,
            limits.unix_reserved_for_trusted,
        ),
        Active::Tcp { .. } => ConnQuota::new(limits.max_tcp_connections, limits.max_tcp_per_ip, 0),
    }
}

/// Who one listener admits.
struct Gate {
    quota: ConnQuota,
    daemon_uid: u32,
    stats: Arc<MgmtStats>,
}

/// Accept connections on `listener` and serve each in its own task until told to stop; then
/// close the listener (removing its socket file) and let connections wind down.
async fn accept_loop(
    listener: Active,
    name: String,
    gate: Gate,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    tracing::debug!(listener = %name, "management server accepting");
    let mut conns = JoinSet::new();
    let mut refusals = BurstLog::new(REFUSAL_LOG_INTERVAL);
    loop {
        tokio::select! {
            () = conn::stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((io, peer)) => {
                    let client = peer.client();
                    let trusted = auth::is_trusted(&peer, gate.daemon_uid);
                    let permit = match gate.quota.admit(client, trusted) {
                        Ok(permit) => permit,
                        Err(refusal) => {
                            // Closing at once costs the least; the client sees a reset or EOF.
                            drop(io);
                            gate.stats.count_refused_connection();
                            if let Some(refused) = refusals.count(std::time::Instant::now()) {
                                let why = match refusal {
                                    Refusal::PoolFull => "the listener's connection pool is full",
                                    Refusal::ClientFull => "that client holds its share of connections",
                                };
                                tracing::warn!(
                                    listener = %name,
                                    %client,
                                    refused,
                                    "management connections refused ({refused} since the last such line; \
                                     latest from {client}: {why}). Check for a misbehaving tool or a slow-connection attack"
                                );
                            }
                            continue;
                        }
                    };
                    tracing::debug!(listener = %name, ?peer, "management connection accepted");
                    conns.spawn(conn::serve(io, peer, permit, shared.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    tracing::debug!(listener = %name, connections = conns.len(), "stopped accepting");
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::debug!(listener = %name, "aborting management connections still open after grace period");
    }
}

/// The daemon's effective uid (a unix peer with this uid is the daemon's own user).
fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The executable's file name, e.g. `weft-edge`; good enough to tell the two daemons apart.
fn default_daemon_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "weft".to_owned())
}
