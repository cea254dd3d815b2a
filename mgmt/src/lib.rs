//! Weft management server, shared by `weft-edge` and `weft-supernode`.
//!
//! A daemon builds a [`jsonrpsee::RpcModule`] with its methods, binds a [`MgmtServer`] on its
//! per-session unix socket ([`socket_path`]), optionally adds a TCP listener, a password, metrics
//! and an event feed (`with_*`), and runs [`MgmtServer::serve`] next to its event loop. Tools talk
//! to it with [`client::Client`] (or [`client::call`] / [`client::call_blocking`] on the socket),
//! the project's one HTTP client; `weftctl` (in the command-line crate, `weft-cli`) is built on it.
//!
//! Routes: `POST /v1` JSON-RPC 2.0; `GET /` the status page; `GET /metrics` Prometheus text;
//! `GET /events` server-sent events. Internally the server is split into a listener abstraction
//! (where connections come from), an access policy (who may do what) and a router (what a path
//! does).

#![forbid(unsafe_code)]

mod auth;
mod body;
pub mod client;
mod conn;
mod error;
mod events;
mod jsonrpc;
mod limits;
mod listener;
mod quota;
mod response;
mod router;
mod routes;
mod server;
mod stall;
mod stats;
mod throttle;
mod unix;

use std::path::{Path, PathBuf};

pub use error::WebError;
pub use events::ServerEvent;
pub use limits::Limits;
pub use routes::MetricsFn;
pub use server::{MgmtServer, DEFAULT_WRITE_METHODS};
pub use stats::MgmtStats;

/// JSON-RPC error code of a write method called without authorisation.
pub const UNAUTHORIZED_CODE: i32 = auth::UNAUTHORIZED_CODE;

/// Re-exported so daemons register methods against exactly the jsonrpsee version this crate speaks
/// (`weft_mgmt::jsonrpsee::RpcModule`, `weft_mgmt::jsonrpsee::types::ErrorObjectOwned`).
pub use jsonrpsee;

/// Largest request body the server accepts; bigger bodies are answered with 413.
///
/// Management requests are tiny; the bound keeps a misbehaving client from making the daemon
/// buffer arbitrary amounts of memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Normal parent of all session directories.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/weft";

/// Where a daemon's management socket lives: `<runtime_dir>/<session>/mgmt`, runtime_dir normally
/// [`DEFAULT_RUNTIME_DIR`].
///
/// One directory per session (rather than one socket file per session) leaves room for other
/// per-session runtime files and lets the directory mode (0750) gate access as a whole. The session
/// name is expected to have been validated by the configuration layer (no `/`, not `..`).
pub fn socket_path(runtime_dir: &Path, session: &str) -> PathBuf {
    runtime_dir.join(session).join("mgmt")
}

/// Runs one `POST /v1` request body through the JSON-RPC layer exactly as the server does, for a
/// caller with or without write access (`may_write`), and returns the response text (None where
/// JSON-RPC answers nothing). The entry point of the `mgmt_request` fuzz target (`fuzz/`): not for
/// daemons, which go through [`MgmtServer`].
#[doc(hidden)]
pub async fn dispatch_request(
    methods: &jsonrpsee::Methods,
    write_methods: &std::collections::HashSet<String>,
    may_write: bool,
    body: &[u8],
) -> Option<String> {
    let access = jsonrpc::Access {
        may_write,
        write_methods,
    };
    jsonrpc::dispatch(methods, body, &access).await
}

/// The most a batch's answers may add up to (see the `Limits` section of docs/api.md).
#[doc(hidden)]
pub const MAX_RESPONSE_BYTES: usize = jsonrpc::MAX_RESPONSE_BYTES;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_layout() {
        assert_eq!(
            socket_path(Path::new("/run/weft"), "home"),
            PathBuf::from("/run/weft/home/mgmt")
        );
    }
}
