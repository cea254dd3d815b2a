//! The edge's timers: for each timer, when it fires and what it then does, side by side in one table, and
//! the structure that tells the driver when the next one is due without looking at every peer.
//!
//! A peer's deadlines are not stored: each is computed from the peer's state (`last_tx + keepalive`, the
//! pending handshake's send time plus its back-off, ...) by the `when` function of its row in
//! [`PEER_TIMERS`], and the row's `then` function is what runs once that instant has come. Both
//! [`Edge::poll_timeout`] and [`Edge::handle_timeout`] read the same rows, so when a timer fires and what
//! it does cannot drift apart.
//!
//! Each peer has one entry in a min-heap of `(instant, peer)` ([`TimerTable`]), the model being quinn-proto's
//! `TimerTable`, so `poll_timeout` is a peek and `handle_timeout` visits only the peers whose entry is due.
//! The entry is allowed to be early, never late: when it comes up, the peer's rows are evaluated (those
//! due run) and the entry is re-armed at the peer's new earliest deadline. Most state changes only move
//! deadlines later (a packet sent pushes the keepalive out, one received pushes the silence timeout out),
//! so the data path touches no timer at all; the few changes that can bring a deadline earlier (a new
//! peer, a handshake started, a session installed, new candidates, a path switched to direct) call
//! [`Core::rearm`], which pushes a new entry only when it is earlier than the one armed. Entries that an
//! earlier one superseded, or whose peer is gone, are skipped when they come up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::peer::Peer;
use super::supernodes::SupernodeLink;
use super::{Core, Edge};
use crate::keys::PublicKey;

/// What the peer table should do after a timer's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    /// Keep the peer; the next rows run.
    Continue,
    /// Forget the peer (its silence timer fired); no other row runs.
    Forget,
}

/// One of a peer's timers: when it fires, computed from the peer's state (None while it is not armed),
/// and what it does then.
struct PeerTimer {
    when: fn(&Core, &Peer) -> Option<Instant>,
    then: fn(&mut Core, &mut Peer, Instant) -> After,
}

/// Every timer of a peer, in the order they run when several are due at once. Each row reads the state
/// the rows before it left (a direct path that timed out is probed again in the same turn).
const PEER_TIMERS: [PeerTimer; 7] = [
    // peer.rs: a peer silent for `peer_timeout` is forgotten.
    PeerTimer {
        when: Core::silence_deadline,
        then: Core::on_silence,
    },
    // sessions.rs: sessions older than `reject_after_time` are dropped.
    PeerTimer {
        when: Core::session_expiry_deadline,
        then: Core::expire_sessions,
    },
    // paths.rs: a direct path silent for `direct_timeout` falls back to the relay.
    PeerTimer {
        when: Core::direct_path_deadline,
        then: Core::fall_back_to_relay,
    },
    // paths.rs: a path check concludes: stay, or follow a peer that moved.
    PeerTimer {
        when: Core::path_check_deadline,
        then: Core::conclude_path_check,
    },
    // sessions.rs: handshake retry with back-off, else the rekey timer.
    PeerTimer {
        when: Core::handshake_deadline,
        then: Core::retry_or_rekey,
    },
    // paths.rs: a keepalive (a probe on a direct path) after `keepalive` without sending.
    PeerTimer {
        when: Core::keepalive_deadline,
        then: Core::send_keepalive,
    },
    // paths.rs: the next probe round towards a direct path (the hole-punch decision).
    PeerTimer {
        when: Core::probe_deadline,
        then: Core::probe_round,
    },
];

/// One of a supernode link's timers (the links are few: they are read directly, no heap).
struct LinkTimer {
    when: fn(&Core, &SupernodeLink) -> Option<Instant>,
    then: fn(&mut Edge, usize, Instant),
}

/// Every timer of a supernode link, in the order they run (all in supernodes.rs).
const LINK_TIMERS: [LinkTimer; 3] = [
    // Lost after `supernode_dead` without an acknowledgement or pong.
    LinkTimer {
        when: Core::supernode_dead_deadline,
        then: Edge::on_supernode_dead,
    },
    // Liveness ping every `supernode_ping` while registered.
    LinkTimer {
        when: Core::supernode_ping_deadline,
        then: Edge::ping_supernode,
    },
    // Registration refresh, or retry with back-off.
    LinkTimer {
        when: Core::register_deadline,
        then: Edge::register,
    },
];

/// A peer timer that is still due right after its action ran (only a bug or a peer with no path at all
/// could do that) is looked at again this much later, rather than at once: the driver must never spin.
const STUCK_RETRY: Duration = Duration::from_millis(100);

/// When each peer must be looked at next: a min-heap of `(instant, peer)`, at most one live entry per
/// peer (the one whose instant is the peer's `armed`), possibly stale ones that are skipped.
#[derive(Default)]
pub(super) struct TimerTable {
    heap: BinaryHeap<Reverse<(Instant, PublicKey)>>,
}

impl TimerTable {
    /// The earliest entry (it may be stale, so early, never late).
    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Makes sure the peer `key`, whose live entry is at `armed`, is looked at no later than `at`.
    fn arm(&mut self, key: PublicKey, armed: &mut Option<Instant>, at: Instant) {
        if armed.is_none_or(|a| at < a) {
            *armed = Some(at);
            self.heap.push(Reverse((at, key)));
        }
    }

    /// Takes the earliest entry if it is due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, PublicKey)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}

impl Core {
    /// The earliest of `p`'s timers.
    fn peer_deadline(&self, p: &Peer) -> Instant {
        PEER_TIMERS
            .iter()
            .filter_map(|t| (t.when)(self, p))
            .min()
            .expect("the silence timer is always armed")
    }

    /// Brings `p`'s entry in the timer table forward if one of its timers now fires earlier. Called after
    /// every change that can move a deadline earlier; harmless (a comparison) when nothing moved.
    pub(super) fn rearm(&mut self, p: &mut Peer) {
        let at = self.peer_deadline(p);
        self.timers.arm(p.key, &mut p.armed, at);
    }

    /// The earliest deadline of the timers that are not a peer's: the MAC sweep and the supernode links'
    /// (the links are few, so they are read directly).
    fn edge_wide_deadline(&self) -> Instant {
        let mut next = self.mac_sweep_deadline();
        for link in &self.supernodes {
            for t in &LINK_TIMERS {
                if let Some(at) = (t.when)(self, link) {
                    next = next.min(at);
                }
            }
        }
        next
    }
}

impl Edge {
    /// See [`Edge::poll_timeout`]: the MAC sweep, the supernode links' timers, and the top of the peers'
    /// heap.
    pub(super) fn next_timeout(&self) -> Instant {
        let next = self.core.edge_wide_deadline();
        match self.core.timers.next() {
            Some(at) => next.min(at),
            None => next,
        }
    }

    /// See [`Edge::handle_timeout`]: runs every due timer of the supernode links, the MAC sweep, and of
    /// the peers whose entry is due; re-arms those peers.
    pub(super) fn on_timeout(&mut self, now: Instant) {
        for i in 0..self.core.supernodes.len() {
            for t in &LINK_TIMERS {
                if (t.when)(&self.core, &self.core.supernodes[i]).is_some_and(|at| now >= at) {
                    (t.then)(self, i, now);
                }
            }
        }
        if now >= self.core.mac_sweep_deadline() {
            self.core.sweep_macs(now);
        }
        // Unconfirmed sessions need no timer of their own (the table is bounded, and a stale one is
        // never used): they are swept whenever the edge wakes.
        let expired = self.core.unconfirmed.expire(now);
        self.core.stats.unconfirmed_dropped += expired;
        while let Some((at, key)) = self.core.timers.pop_due(now) {
            let Some(p) = self.peers.get_mut(&key) else {
                continue; // forgotten since
            };
            if p.armed != Some(at) {
                continue; // superseded by an earlier entry, which already came up
            }
            p.armed = None;
            let core = &mut self.core;
            let mut forget = false;
            for t in &PEER_TIMERS {
                if (t.when)(core, p).is_some_and(|d| now >= d)
                    && (t.then)(core, p, now) == After::Forget
                {
                    forget = true;
                    break;
                }
            }
            if forget {
                self.forget_silent_peer(&key);
                continue;
            }
            let mut at = core.peer_deadline(p);
            if at <= now {
                at = now + STUCK_RETRY;
            }
            core.timers.arm(key, &mut p.armed, at);
        }
    }

    /// The reference for [`Edge::poll_timeout`]: the earliest deadline of everything, by brute force
    /// over every peer. `poll_timeout` must never be later than this.
    #[cfg(test)]
    pub(super) fn brute_force_timeout(&self) -> Instant {
        let core = &self.core;
        let mut next = core.edge_wide_deadline();
        for p in self.peers.values() {
            next = next.min(core.peer_deadline(p));
        }
        next
    }
}

#[cfg(test)]
#[path = "timers_tests.rs"]
mod tests;
