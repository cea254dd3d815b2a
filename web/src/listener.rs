//! Where connections come from.
//!
//! The server only needs "accept the next byte stream, and tell me who is on the other end". Today
//! that is a unix socket; the loopback TCP listener planned next becomes one more variant here, and
//! the accept loop, HTTP handling and routing stay untouched. The [`Peer`] travels into every
//! request's extensions so that later policy (e.g. "state-changing methods over TCP need the
//! password, over the 0660 unix socket they do not") can be decided per request.

use std::io;
use std::path::Path;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::unix::BoundUnix;

/// A byte stream a connection is served over, whatever the transport.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Who is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Peer {
    /// A local process on the unix socket; credentials come from `SO_PEERCRED` when available.
    Unix { uid: Option<u32>, pid: Option<i32> },
}

/// A bound listening endpoint of the management server. Dropping it stops accepting and removes
/// whatever it put in the file system (the unix socket file).
#[derive(Debug)]
pub(crate) enum Listener {
    Unix(BoundUnix),
}

impl Listener {
    /// Wait for the next connection.
    pub(crate) async fn accept(&self) -> io::Result<(Box<dyn Io>, Peer)> {
        match self {
            Listener::Unix(bound) => {
                let (stream, _) = bound.listener.accept().await?;
                let cred = stream.peer_cred().ok();
                let peer = Peer::Unix {
                    uid: cred.map(|c| c.uid()),
                    pid: cred.and_then(|c| c.pid()),
                };
                Ok((Box::new(stream), peer))
            }
        }
    }

    /// Human-readable address, for logs.
    pub(crate) fn describe(&self) -> String {
        match self {
            Listener::Unix(bound) => format!("unix:{}", bound.file.path().display()),
        }
    }

    /// Path of the unix socket, if this is one.
    pub(crate) fn unix_path(&self) -> Option<&Path> {
        match self {
            Listener::Unix(bound) => Some(bound.file.path()),
        }
    }
}
