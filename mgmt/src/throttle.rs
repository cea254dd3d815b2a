//! Failed-password rate limiting, per client.
//!
//! Each client (TCP source address, unix uid) may present [`Limits::max_password_failures`] wrong
//! passwords within [`Limits::failure_window`]; the one that reaches the limit starts a lock-out
//! during which its password attempts are not even checked, so guessing runs at a few attempts per
//! minute instead of tens of thousands per second. Each further burst doubles the lock-out (up to
//! [`Limits::max_lockout`]). A burst is reported once, when it starts the lock-out, not once per
//! attempt. Other clients are unaffected.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::limits::Limits;
use crate::listener::ClientKey;

/// Clients tracked at once. Each record is a few dozen bytes; past this many, the stalest record
/// is forgotten so that an attacker with many addresses cannot make the daemon grow without bound.
const MAX_TRACKED: usize = 4096;

/// Whether a client's password may be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Check it.
    Check,
    /// Do not: the client is locked out for this much longer.
    Locked { retry_after: Duration },
}

/// A burst of failures that just started a lock-out: what the log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Burst {
    /// Failures in the burst.
    pub(crate) failures: u32,
    /// Time from the burst's first failure to its last.
    pub(crate) over: Duration,
    /// How long the client is now locked out.
    pub(crate) lockout: Duration,
    /// Attempts refused unchecked during the client's previous lock-out (0 for a first burst).
    pub(crate) refused_before: u64,
}

#[derive(Debug)]
struct Record {
    failures: u32,
    first_failure: Instant,
    last_failure: Instant,
    locked_until: Option<Instant>,
    /// Bursts so far; sets the length of the next lock-out.
    bursts: u32,
    /// Attempts refused during the current or last lock-out, reported with the next burst.
    refused: u64,
}

/// Per-client password failure counts and lock-outs.
#[derive(Debug)]
pub(crate) struct PasswordThrottle {
    max_failures: u32,
    window: Duration,
    lockout: Duration,
    max_lockout: Duration,
    clients: Mutex<HashMap<ClientKey, Record>>,
}

impl PasswordThrottle {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            max_failures: limits.max_password_failures.max(1),
            window: limits.failure_window,
            lockout: limits.lockout,
            max_lockout: limits.max_lockout.max(limits.lockout),
            clients: Mutex::default(),
        }
    }

    /// May `client`'s password be checked now? Counts the attempt as refused if not.
    pub(crate) fn check(&self, client: ClientKey, now: Instant) -> Verdict {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(record) = clients.get_mut(&client) else {
            return Verdict::Check;
        };
        match record.locked_until {
            Some(until) if until > now => {
                record.refused += 1;
                Verdict::Locked {
                    retry_after: until - now,
                }
            }
            _ => Verdict::Check,
        }
    }

    /// Count a wrong password from `client`; returns the burst if this failure started a lock-out.
    pub(crate) fn failed(&self, client: ClientKey, now: Instant) -> Option<Burst> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if !clients.contains_key(&client) && clients.len() >= MAX_TRACKED {
            self.forget_stale(&mut clients, now);
        }
        let record = clients.entry(client).or_insert(Record {
            failures: 0,
            first_failure: now,
            last_failure: now,
            locked_until: None,
            bursts: 0,
            refused: 0,
        });
        // A client quiet for as long as the longest lock-out starts afresh.
        if now.duration_since(record.last_failure) > self.max_lockout {
            record.bursts = 0;
        }
        if record.failures == 0 || now.duration_since(record.first_failure) > self.window {
            record.failures = 0;
            record.first_failure = now;
        }
        record.failures += 1;
        record.last_failure = now;
        if record.failures < self.max_failures {
            return None;
        }
        let lockout = self
            .lockout
            .saturating_mul(1 << record.bursts.min(16))
            .min(self.max_lockout);
        record.bursts += 1;
        record.locked_until = Some(now + lockout);
        let burst = Burst {
            failures: record.failures,
            over: now.duration_since(record.first_failure),
            lockout,
            refused_before: std::mem::take(&mut record.refused),
        };
        record.failures = 0;
        Some(burst)
    }

    /// Make room: drop records neither locked nor within a window of their last failure, and if
    /// none is, the one with the oldest failure.
    fn forget_stale(&self, clients: &mut HashMap<ClientKey, Record>, now: Instant) {
        clients.retain(|_, r| {
            r.locked_until.is_some_and(|until| until > now)
                || now.duration_since(r.last_failure) <= self.window
        });
        if clients.len() >= MAX_TRACKED {
            if let Some(oldest) = clients
                .iter()
                .min_by_key(|(_, r)| r.last_failure)
                .map(|(k, _)| *k)
            {
                clients.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(last: u8) -> ClientKey {
        ClientKey::Ip(IpAddr::from([192, 0, 2, last]))
    }

    fn throttle() -> PasswordThrottle {
        PasswordThrottle::new(&Limits {
            max_password_failures: 3,
            failure_window: Duration::from_secs(60),
            lockout: Duration::from_secs(10),
            max_lockout: Duration::from_secs(25),
            ..Limits::default()
        })
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn locks_out_after_the_limit_then_cools_down() {
        let t = throttle();
        let t0 = Instant::now();
        assert_eq!(t.failed(ip(1), t0), None);
        assert_eq!(t.failed(ip(1), t0 + S), None);
        assert_eq!(t.check(ip(1), t0 + S), Verdict::Check);
        let burst = t.failed(ip(1), t0 + 2 * S).unwrap();
        assert_eq!(burst.failures, 3);
        assert_eq!(burst.over, 2 * S);
        assert_eq!(burst.lockout, 10 * S);
        assert_eq!(burst.refused_before, 0);
        for i in 0..100 {
            assert_eq!(
                t.check(ip(1), t0 + 3 * S),
                Verdict::Locked { retry_after: 9 * S },
                "{i}"
            );
        }
        // Other clients are unaffected.
        assert_eq!(t.check(ip(2), t0 + 3 * S), Verdict::Check);
        // After the lock-out, checked again; the next burst doubles it, then the cap applies.
        assert_eq!(t.check(ip(1), t0 + 12 * S), Verdict::Check);
        assert_eq!(t.failed(ip(1), t0 + 12 * S), None);
        assert_eq!(t.failed(ip(1), t0 + 12 * S), None);
        let second = t.failed(ip(1), t0 + 12 * S).unwrap();
        assert_eq!(second.lockout, 20 * S);
        assert_eq!(second.refused_before, 100);
        let t1 = t0 + 33 * S;
        for _ in 0..3 {
            t.failed(ip(1), t1);
        }
        assert_eq!(
            t.check(ip(1), t1),
            Verdict::Locked {
                retry_after: 25 * S
            }
        );
        // Quiet for longer than the longest lock-out: back to the first lock-out's length.
        let t2 = t1 + 60 * S;
        for _ in 0..2 {
            assert_eq!(t.failed(ip(1), t2), None);
        }
        assert_eq!(t.failed(ip(1), t2).unwrap().lockout, 10 * S);
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = throttle();
        let t0 = Instant::now();
        for i in 0..10 {
            assert_eq!(t.failed(ip(1), t0 + i * 61 * S), None);
        }
    }

    #[test]
    fn tracking_is_bounded() {
        let t = throttle();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            let key = ClientKey::Uid(Some(i));
            t.failed(key, t0);
        }
        assert!(t.clients.lock().unwrap().len() <= MAX_TRACKED);
    }
}
