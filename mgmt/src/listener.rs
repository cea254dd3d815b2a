//! Where connections come from.
//!
//! The server only needs "accept the next byte stream, and tell me who is on the other end": a unix
//! socket or a TCP port. The accept loop, HTTP handling and routing are the same for both; the
//! [`Peer`] travels into every request's extensions so that policy ("state-changing methods over
//! TCP need the password, over the 0660 unix socket they do not") is decided per request.

use std::io;
use std::net::SocketAddr;
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
    /// A TCP client. `remote` is set on a listener bound to a non-loopback address, where every
    /// request needs the management password.
    Tcp { addr: SocketAddr, remote: bool },
}

/// A TCP listening socket, bound at configuration time (so "address in use" shows at start-up)
/// and registered with tokio only once serving starts.
#[derive(Debug)]
pub(crate) struct BoundTcp {
    pub(crate) listener: std::net::TcpListener,
    pub(crate) addr: SocketAddr,
    pub(crate) remote: bool,
}

/// A bound listening endpoint of the management server. Dropping it stops accepting and removes
/// whatever it put in the file system (the unix socket file).
#[derive(Debug)]
pub(crate) enum Listener {
    Unix(BoundUnix),
    Tcp(BoundTcp),
}

/// A listener being served (inside the runtime).
pub(crate) enum Active {
    Unix(BoundUnix),
    Tcp {
        listener: tokio::net::TcpListener,
        remote: bool,
    },
}

impl Listener {
    /// Register with the tokio reactor; must run inside a runtime.
    pub(crate) fn activate(self) -> io::Result<Active> {
        match self {
            Listener::Unix(bound) => Ok(Active::Unix(bound)),
            Listener::Tcp(bound) => {
                bound.listener.set_nonblocking(true)?;
                Ok(Active::Tcp {
                    listener: tokio::net::TcpListener::from_std(bound.listener)?,
                    remote: bound.remote,
                })
            }
        }
    }

    /// Human-readable address, for logs.
    pub(crate) fn describe(&self) -> String {
        match self {
            Listener::Unix(bound) => format!("unix:{}", bound.file.path().display()),
            Listener::Tcp(bound) if bound.remote => format!("tcp:{} (remote)", bound.addr),
            Listener::Tcp(bound) => format!("tcp:{}", bound.addr),
        }
    }

    /// Path of the unix socket, if this is one.
    pub(crate) fn unix_path(&self) -> Option<&Path> {
        match self {
            Listener::Unix(bound) => Some(bound.file.path()),
            Listener::Tcp(_) => None,
        }
    }

    /// Bound address of a TCP listener (with the real port when 0 was asked for).
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Unix(_) => None,
            Listener::Tcp(bound) => Some(bound.addr),
        }
    }
}

impl Active {
    /// Wait for the next connection.
    pub(crate) async fn accept(&self) -> io::Result<(Box<dyn Io>, Peer)> {
        match self {
            Active::Unix(bound) => {
                let (stream, _) = bound.listener.accept().await?;
                let cred = stream.peer_cred().ok();
                let peer = Peer::Unix {
                    uid: cred.map(|c| c.uid()),
                    pid: cred.and_then(|c| c.pid()),
                };
                Ok((Box::new(stream), peer))
            }
            Active::Tcp { listener, remote } => {
                let (stream, addr) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok((
                    Box::new(stream),
                    Peer::Tcp {
                        addr,
                        remote: *remote,
                    },
                ))
            }
        }
    }
}
