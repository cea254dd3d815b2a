//! Connection quotas: how many connections a listener serves at once, and how many of them one
//! client may hold.
//!
//! Each listener has its own pool, so TCP clients can never take the unix socket's capacity. Within
//! a pool one client may hold only a share, and on the unix socket a few slots are kept for root
//! and the daemon's own user, so an operator's `weftctl` always gets in. A connection holds a
//! [`Permit`] for as long as it is served; dropping it frees the slot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::listener::ClientKey;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The listener's pool (or the part of it open to this client) is full.
    PoolFull,
    /// This client already holds its share.
    ClientFull,
}

/// The connection pool of one listener.
#[derive(Debug, Clone)]
pub(crate) struct ConnQuota {
    max: usize,
    per_client: usize,
    reserved_for_trusted: usize,
    in_use: Arc<Mutex<InUse>>,
}

#[derive(Debug, Default)]
struct InUse {
    total: usize,
    by_client: HashMap<ClientKey, usize>,
}

/// A served connection's slot; freed on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    client: ClientKey,
    in_use: Arc<Mutex<InUse>>,
}

impl ConnQuota {
    /// A pool of `max` connections, `per_client` of them per client, of which
    /// `reserved_for_trusted` only trusted clients may use.
    pub(crate) fn new(max: usize, per_client: usize, reserved_for_trusted: usize) -> Self {
        Self {
            max,
            per_client,
            reserved_for_trusted: reserved_for_trusted.min(max),
            in_use: Arc::default(),
        }
    }

    /// Admit a connection from `client`, or say why not. A `trusted` client (root or the daemon's
    /// user on the unix socket) has no per-client share and may use the reserved slots.
    pub(crate) fn admit(&self, client: ClientKey, trusted: bool) -> Result<Permit, Refusal> {
        let mut in_use = self.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        let open_to_client = if trusted {
            self.max
        } else {
            self.max - self.reserved_for_trusted
        };
        if in_use.total >= open_to_client {
            return Err(Refusal::PoolFull);
        }
        let held = in_use.by_client.entry(client).or_default();
        if !trusted && *held >= self.per_client {
            return Err(Refusal::ClientFull);
        }
        *held += 1;
        in_use.total += 1;
        Ok(Permit {
            client,
            in_use: self.in_use.clone(),
        })
    }

    /// Connections currently held.
    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut in_use = self.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        in_use.total = in_use.total.saturating_sub(1);
        if let Some(held) = in_use.by_client.get_mut(&self.client) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                in_use.by_client.remove(&self.client);
            }
        }
    }
}

/// At most one log line per interval about something that may happen thousands of times a second
/// (refused connections), each saying how many happened since the last line.
#[derive(Debug)]
pub(crate) struct BurstLog {
    interval: Duration,
    last_line: Option<Instant>,
    unreported: u64,
}

impl BurstLog {
    /// One line per `interval` at most.
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_line: None,
            unreported: 0,
        }
    }

    /// Count one event; returns how many events the line to write now should report, if a line is
    /// due.
    pub(crate) fn count(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        if self
            .last_line
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(last: u8) -> ClientKey {
        ClientKey::Ip(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn per_client_share_and_pool() {
        let q = ConnQuota::new(4, 2, 0);
        let a1 = q.admit(ip(1), false).unwrap();
        let _a2 = q.admit(ip(1), false).unwrap();
        assert_eq!(q.admit(ip(1), false).unwrap_err(), Refusal::ClientFull);
        let _b1 = q.admit(ip(2), false).unwrap();
        let _b2 = q.admit(ip(2), false).unwrap();
        assert_eq!(q.admit(ip(3), false).unwrap_err(), Refusal::PoolFull);
        drop(a1);
        assert_eq!(q.in_use(), 3);
        let _c = q.admit(ip(3), false).unwrap();
        assert_eq!(q.admit(ip(1), false).unwrap_err(), Refusal::PoolFull);
    }

    #[test]
    fn reserved_slots_are_for_trusted_clients_only() {
        let q = ConnQuota::new(4, 4, 2);
        let others: Vec<_> = (0..2)
            .map(|_| q.admit(ClientKey::Uid(Some(1001)), false).unwrap())
            .collect();
        assert_eq!(
            q.admit(ClientKey::Uid(Some(1002)), false).unwrap_err(),
            Refusal::PoolFull
        );
        // Root gets the reserved slots, and has no per-client share.
        let root: Vec<_> = (0..2)
            .map(|_| q.admit(ClientKey::Uid(Some(0)), true).unwrap())
            .collect();
        assert_eq!(
            q.admit(ClientKey::Uid(Some(0)), true).unwrap_err(),
            Refusal::PoolFull
        );
        drop(others);
        drop(root);
        assert_eq!(q.in_use(), 0);
    }

    #[test]
    fn burst_log_reports_counts_once_per_interval() {
        let start = Instant::now();
        let mut log = BurstLog::new(Duration::from_secs(10));
        assert_eq!(log.count(start), Some(1));
        for i in 1..1000 {
            assert_eq!(log.count(start + Duration::from_millis(i)), None);
        }
        assert_eq!(log.count(start + Duration::from_secs(11)), Some(1000));
    }
}
