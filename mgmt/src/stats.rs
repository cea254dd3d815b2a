//! Counters of what the management server refused, for the daemon's metrics and for tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the management server refused since it started. Shared: get it with
/// [`MgmtServer::stats`](crate::MgmtServer::stats) before serving.
#[derive(Debug, Default)]
pub struct MgmtStats {
    password_failures: AtomicU64,
    password_bursts: AtomicU64,
    throttled_attempts: AtomicU64,
    refused_connections: AtomicU64,
}

impl MgmtStats {
    /// Wrong passwords presented (and checked).
    pub fn password_failures(&self) -> u64 {
        self.password_failures.load(Ordering::Relaxed)
    }

    /// Bursts of wrong passwords that locked a client out (one log line each).
    pub fn password_bursts(&self) -> u64 {
        self.password_bursts.load(Ordering::Relaxed)
    }

    /// Requests whose password was not checked because their client was locked out.
    pub fn throttled_attempts(&self) -> u64 {
        self.throttled_attempts.load(Ordering::Relaxed)
    }

    /// Connections closed on accept because a pool or a client's share of it was full.
    pub fn refused_connections(&self) -> u64 {
        self.refused_connections.load(Ordering::Relaxed)
    }

    pub(crate) fn count_password_failure(&self) {
        self.password_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_password_burst(&self) {
        self.password_bursts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_throttled(&self) {
        self.throttled_attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_refused_connection(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }
}
