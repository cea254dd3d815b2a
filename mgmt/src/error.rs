//! Errors of the management server side.
//!
//! Each variant names the path involved, because the daemon usually just prints the error and
//! exits: the operator must be able to act on the message alone.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the management server could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A live process accepted a connection on the socket we were about to take over.
    #[error(
        "another weft daemon is using session {session} (its management socket {path} is live)"
    )]
    AlreadyRunning { session: String, path: PathBuf },

    /// The socket path has no parent directory or file name (e.g. `/`).
    #[error("invalid management socket path {0}")]
    InvalidPath(PathBuf),

    /// Something that is not a socket sits where the socket should be; we do not delete it.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),

    #[error("cannot create management directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },

    #[error("cannot check whether {path} is in use: {source}")]
    Probe { path: PathBuf, source: io::Error },

    #[error("cannot remove stale management socket {path}: {source}")]
    RemoveStale { path: PathBuf, source: io::Error },

    #[error("cannot bind management socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },

    #[error("cannot set permissions of {path}: {source}")]
    Permissions { path: PathBuf, source: io::Error },

    #[error("cannot listen on management address {addr}: {source}")]
    TcpBind { addr: SocketAddr, source: io::Error },

    /// A non-loopback TCP address without the explicit opt-in.
    #[error("binding a non-loopback management address needs [management] allow_remote = true (address {addr})")]
    RemoteNotAllowed { addr: SocketAddr },

    /// A remote listener would be open to anyone without a password to check.
    #[error("[management] allow_remote = true needs a management password (address {addr})")]
    RemoteWithoutPassword { addr: SocketAddr },

    /// An accept loop task died (panicked); the server can no longer take connections.
    #[error("management server task failed: {0}")]
    Task(String),
}
