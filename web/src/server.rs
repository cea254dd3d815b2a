//! The management server: bound listeners plus the daemon's methods, served until shutdown.
//!
//! Binding and serving are separate steps so a daemon can fail fast at startup ("another daemon
//! is using this session") before it touches the network or the TAP device, and only then start
//! serving next to its event loop.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::{Methods, RpcModule};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::conn;
use crate::error::WebError;
use crate::listener::Listener;
use crate::router::Router;
use crate::routes::{self, AppState};
use crate::unix;

/// At most this many connections are served at once per listener; more are closed on accept.
/// Management traffic is a handful of tools, so hitting this means something is misbehaving.
const MAX_CONNECTIONS: usize = 64;

/// After shutdown, in-flight requests get this long to finish before their tasks are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A bound, not yet serving, management server.
///
/// Dropping it without serving closes the socket and removes the socket file.
#[derive(Debug)]
pub struct MgmtServer {
    listeners: Vec<Listener>,
    methods: Methods,
    daemon: String,
    session: String,
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
        })
    }

    /// Name the daemon for `GET /` (default: the executable's file name).
    pub fn with_daemon_name(mut self, name: impl Into<String>) -> Self {
        self.daemon = name.into();
        self
    }

    /// Path of the unix socket this server listens on.
    pub fn socket_path(&self) -> Option<&Path> {
        self.listeners.iter().find_map(Listener::unix_path)
    }

    /// Serve until `shutdown` resolves; then stop accepting, and remove the socket file.
    ///
    /// Requests already being handled get a short grace period to complete; idle keep-alive
    /// connections are closed. Dropping the returned future also stops the server and removes the
    /// socket file, only less gracefully.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), WebError> {
        let banner = format!(
            "{} management server, session {}: JSON-RPC 2.0 at POST /v1\n",
            self.daemon, self.session
        );
        let state = Arc::new(AppState {
            methods: self.methods,
            banner,
        });
        let router = Arc::new(routes::build(state));
        let (stop_tx, stop_rx) = watch::channel(false);

        // Dropping this set (e.g. when our future is dropped) aborts the accept loops, which drops
        // the listeners and so removes the socket files.
        let mut loops = JoinSet::new();
        for listener in self.listeners {
            loops.spawn(accept_loop(listener, router.clone(), stop_rx.clone()));
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

/// Accept connections on `listener` and serve each in its own task until told to stop; then
/// close the listener (removing its socket file) and let connections wind down.
async fn accept_loop(listener: Listener, router: Arc<Router>, mut stop: watch::Receiver<bool>) {
    let name = listener.describe();
    tracing::debug!(listener = %name, "management server accepting");
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = conn::stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((io, peer)) => {
                    if conns.len() >= MAX_CONNECTIONS {
                        tracing::warn!(listener = %name, "too many management connections; closing new one");
                        continue;
                    }
                    tracing::debug!(listener = %name, ?peer, "management connection accepted");
                    conns.spawn(conn::serve(io, peer, router.clone(), stop.clone()));
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

/// The executable's file name, e.g. `weft-edge`; good enough to tell the two daemons apart.
fn default_daemon_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "weft".to_owned())
}
