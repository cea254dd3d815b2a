//! Where connections come from.
//!
//! The server only needs "accept the next byte stream, and tell me who is on the other end": a unix
//! socket or a TCP port. The accept loop, HTTP handling and routing are the same for both; the
//! [`Peer`] travels into every request's extensions so that policy ("state-changing methods over
//! TCP need the password, over the 0660 unix socket they do not") is decided per request.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
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

impl Peer {
    /// Who this peer counts as for quotas and password rate limits.
    pub(crate) fn client(&self) -> ClientKey {
        match self {
            Peer::Unix { uid, .. } => ClientKey::Uid(*uid),
            Peer::Tcp { addr, .. } => match addr.ip() {
                IpAddr::V4(v4) => ClientKey::Ip(IpAddr::V4(v4)),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => ClientKey::Ip(IpAddr::V4(v4)),
                    // One site usually gets at least a /64 and can pick any address in it, so a
                    // per-address count would be no limit at all.
                    None => {
                        ClientKey::Ip(IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()))
                    }
                },
            },
        }
    }
}

/// One client as far as limits go: a local uid (`None` when the kernel did not say), or a TCP
/// source address (an IPv6 address cut to its /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    Uid(Option<u32>),
    Ip(IpAddr),
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKey::Uid(Some(uid)) => write!(f, "local uid {uid}"),
            ClientKey::Uid(None) => f.write_str("a local process of unknown uid"),
            ClientKey::Ip(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
            ClientKey::Ip(ip) => write!(f, "{ip}"),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(addr: &str) -> ClientKey {
        Peer::Tcp {
            addr: addr.parse().unwrap(),
            remote: true,
        }
        .client()
    }

    #[test]
    fn client_keys() {
        assert_eq!(tcp("192.0.2.1:5").to_string(), "192.0.2.1");
        assert_eq!(tcp("192.0.2.1:5"), tcp("192.0.2.1:6"));
        assert_eq!(tcp("[::ffff:192.0.2.1]:5"), tcp("192.0.2.1:6"));
        assert_eq!(tcp("[2001:db8:1:2:3:4:5:6]:1"), tcp("[2001:db8:1:2::9]:2"));
        assert_ne!(tcp("[2001:db8:1:2::1]:1"), tcp("[2001:db8:1:3::1]:1"));
        assert_eq!(tcp("[2001:db8:1:2::1]:1").to_string(), "2001:db8:1:2::/64");
        let unix = Peer::Unix {
            uid: Some(1001),
            pid: Some(7),
        };
        assert_eq!(unix.client(), ClientKey::Uid(Some(1001)));
        assert_eq!(unix.client().to_string(), "local uid 1001");
    }
}
