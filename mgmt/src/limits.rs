//! How much of the management server one client may use, and for how long.
//!
//! The defaults are what a daemon runs with; tests shrink the durations ([`MgmtServer::with_limits`])
//! so that "cut off after the timeout" or "allowed again after the cool-down" takes seconds.
//!
//! [`MgmtServer::with_limits`]: crate::MgmtServer::with_limits

use std::time::Duration;

/// Connection, timeout and password-failure limits of the management server.
///
/// Build one with `Limits::default()` and change fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// How long a client may take to send a request's headers, counted from the moment the
    /// connection is ready for a request: on a new connection from accept, on a keep-alive
    /// connection from the end of the previous response. So this is also the keep-alive idle
    /// timeout. Default 5 s: headers of a management request are a few hundred bytes that any
    /// client sends in one write, the project's client opens one connection per request, and a
    /// slow-loris client that trickles headers holds a slot for at most this long. (Event streams
    /// are not affected: while a response is being sent no request is being read.)
    pub header_read_timeout: Duration,
    /// How long a response may wait for the client to read it: a write that makes no progress for
    /// this long ends the connection. Default 10 s: a client that reads at all (a browser on a slow
    /// link, an event-stream consumer) drains a socket buffer far faster, while one that stopped
    /// reading would otherwise hold its slot for ever.
    pub write_stall_timeout: Duration,
    /// Connections served at once on the unix socket. Default 64 (a handful of tools and status
    /// pages is the normal load; 64 leaves plenty of room). The unix socket has its own pool, so
    /// TCP clients can never take its capacity.
    pub max_unix_connections: usize,
    /// Of those, how many one uid other than root and the daemon's own may hold. Default 16:
    /// a user of the admin group running a few `weftctl` loops and a status page stays well under
    /// it, and four misbehaving users are needed to fill the shared part of the pool.
    pub max_unix_per_uid: usize,
    /// Unix-socket slots only root and the daemon's own uid may use, so `weftctl` run by them always
    /// gets in even when other local users fill the rest. Default 16.
    pub unix_reserved_for_trusted: usize,
    /// Connections served at once on each TCP listener. Default 64, as for the unix socket.
    pub max_tcp_connections: usize,
    /// Of those, how many one source address may hold (one IPv4 address, or one IPv6 /64, the
    /// smallest block a site is usually given). Default 16: a browser opens up to six connections
    /// per host plus an event stream, and a script beside it still fits. On a loopback listener
    /// every local client has the same address, so there this only caps clients that connect from
    /// other loopback addresses; local users have the unix socket, which TCP cannot crowd out.
    pub max_tcp_per_ip: usize,
    /// Wrong passwords one client (TCP source address, or unix uid) may present within
    /// [`Limits::failure_window`] before its password attempts are refused unchecked. Default 10:
    /// enough for a person mistyping, far too few for guessing.
    pub max_password_failures: u32,
    /// The window failures are counted in. Default 60 s.
    pub failure_window: Duration,
    /// How long a client that used up its failures is refused (HTTP 429 on a remote listener;
    /// elsewhere its requests are served as if they carried no password). Default 60 s; each
    /// further burst from the same client doubles it, up to [`Limits::max_lockout`].
    pub lockout: Duration,
    /// Longest lock-out. Default 15 min: at 10 guesses per 15 min a password of even modest
    /// strength outlives any attacker, while an operator who fixed a stale password waits at most
    /// this long.
    pub max_lockout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            write_stall_timeout: Duration::from_secs(10),
            max_unix_connections: 64,
            max_unix_per_uid: 16,
            unix_reserved_for_trusted: 16,
            max_tcp_connections: 64,
            max_tcp_per_ip: 16,
            max_password_failures: 10,
            failure_window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(15 * 60),
        }
    }
}
