//! Responder sessions not yet confirmed by their initiator, for initiations from keys that are not (yet)
//! peers: a small table of its own, outside the peer table.
//!
//! Why: Noise IKpsk2's first message proves the initiator's static key but not the community PSK (psk2
//! enters with the response), and MAC1 needs only the handshake MAC key. So an initiation that passes
//! MAC1 and decrypts proves far too little to be worth a peer: one made-up identity per initiation
//! would fill the peer table. The session we answer with is kept here instead, keyed by our index; only
//! the initiator's first authentic packet on it (its keepalive right after completing the handshake,
//! which needs the transport keys and so the PSK) turns it into a peer. The table is bounded: at most
//! [`MAX_UNCONFIRMED`] entries (the oldest goes first) and at most one per key, each at most
//! [`UNCONFIRMED_TTL`] old. It is looked at only when a data packet's index names no peer session, so
//! the data path of established peers does not pay for it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::Path;
use crate::keys::PublicKey;
use crate::session::Session;

/// Unconfirmed responder sessions kept at most; a new one pushes out the oldest.
pub(super) const MAX_UNCONFIRMED: usize = 256;

/// How long an unconfirmed session waits for the initiator's first packet. The initiator confirms at
/// once (a keepalive, then its probes and frames); when that keepalive is lost, its keepalive timer
/// (10 s) sends another, so the session outlives one lost confirmation.
pub(super) const UNCONFIRMED_TTL: Duration = Duration::from_secs(15);

/// A session we answered for a key that is not a peer.
pub(super) struct Unconfirmed {
    /// The initiator's static key, proven by Noise message 1.
    pub key: PublicKey,
    /// Our end of the session (its `local_index` is the table's key).
    pub session: Session,
    /// The initiation's timestamp: becomes the peer's last accepted one once confirmed.
    pub timestamp: u64,
    /// The path the initiation came on (a direct source is a candidate once confirmed).
    pub path: Path,
}

/// An initiation whose timestamp is not newer than the one already held for its key.
#[derive(Debug)]
pub(super) struct Stale;

/// The table: entries by our index, and our indices oldest first.
#[derive(Default)]
pub(super) struct UnconfirmedTable {
    entries: HashMap<u32, Unconfirmed>,
    /// Insertion order; may name entries already removed (skipped when they come up).
    order: VecDeque<u32>,
}

impl UnconfirmedTable {
    /// How many are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `index` is taken (new indices must not collide with one).
    pub fn contains(&self, index: u32) -> bool {
        self.entries.contains_key(&index)
    }

    /// Adds `u`, replacing an older one of the same key. Refuses (Stale) one whose timestamp is not
    /// newer than that of the entry held for its key (a replayed initiation). Returns how many entries
    /// went unconfirmed to make room or because they expired.
    pub fn insert(&mut self, u: Unconfirmed, now: Instant) -> Result<u64, Stale> {
        let same_key = self
            .entries
            .iter()
            .find(|(_, e)| e.key == u.key)
            .map(|(&i, e)| (i, e.timestamp));
        if let Some((i, ts)) = same_key {
            if u.timestamp <= ts {
                return Err(Stale);
            }
            // The initiator retried: its earlier session will never be confirmed.
            self.entries.remove(&i);
        }
        let mut dropped = self.expire(now);
        while self.entries.len() >= MAX_UNCONFIRMED {
            let Some(i) = self.order.pop_front() else {
                break;
            };
            if self.entries.remove(&i).is_some() {
                dropped += 1;
            }
        }
        if self.order.len() >= 2 * MAX_UNCONFIRMED {
            // Many removed entries still named in the order: forget them.
            let entries = &self.entries;
            self.order.retain(|i| entries.contains_key(i));
        }
        self.order.push_back(u.session.local_index);
        self.entries.insert(u.session.local_index, u);
        Ok(dropped)
    }

    /// Drops the entries older than [`UNCONFIRMED_TTL`]; returns how many.
    pub fn expire(&mut self, now: Instant) -> u64 {
        let mut dropped = 0;
        while let Some(&i) = self.order.front() {
            match self.entries.get(&i) {
                None => {}
                Some(e) if now.saturating_duration_since(e.session.created) >= UNCONFIRMED_TTL => {
                    self.entries.remove(&i);
                    dropped += 1;
                }
                Some(_) => break,
            }
            self.order.pop_front();
        }
        dropped
    }

    /// The live entry for our index `index`.
    pub fn get_mut(&mut self, index: u32, now: Instant) -> Option<&mut Unconfirmed> {
        self.entries
            .get_mut(&index)
            .filter(|e| now.saturating_duration_since(e.session.created) < UNCONFIRMED_TTL)
    }

    /// Takes the entry for our index `index` out.
    pub fn remove(&mut self, index: u32) -> Option<Unconfirmed> {
        self.entries.remove(&index)
    }

    /// Keeps only the entries whose key passes `keep`.
    pub fn retain(&mut self, mut keep: impl FnMut(&PublicKey) -> bool) {
        self.entries.retain(|_, e| keep(&e.key));
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }
}
