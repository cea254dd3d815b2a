//! What an edge knows about one other edge: its identity and addresses, its sessions, the path in use and
//! the direct-path probing state; and the peer table: adding a peer, forgetting one, and the timer that
//! forgets a silent one.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::RngCore;

use super::paths::{PathCheck, Probing};
use super::timers::After;
use super::{Core, Edge, Event};
use crate::handshake::Initiator;
use crate::handshake_mac::ReceivedCookie;
use crate::keys::PublicKey;
use crate::session::Session;
use crate::wire::{Ipv4Net, MacAddr, MAC_LEN};

/// The path packets to a peer take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// No path yet (no supernode registered and no direct address known).
    None,
    /// Straight to the peer at this address.
    Direct(SocketAddr),
    /// Through the supernode at this address.
    Relayed(SocketAddr),
}

impl Path {
    /// Whether the path is direct.
    pub fn is_direct(&self) -> bool {
        matches!(self, Path::Direct(_))
    }
}

/// A peer's state as shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Known, no working session.
    Connecting,
    /// A session is established.
    Up,
}

/// A handshake we initiated and wait on.
pub(crate) struct Pending {
    /// None once a response failed authentication: the attempt then waits for its retry timer, like an
    /// unanswered one, so the retry back-off and the attempt limit also hold for refused handshakes.
    pub initiator: Option<Initiator>,
    pub local_index: u32,
    pub sent_at: Instant,
    /// The initiation's MAC1, which a cookie reply to it is sealed with; None once one was accepted (a
    /// replayed cookie reply is then ignored).
    pub mac1: Option<[u8; MAC_LEN]>,
}

/// Counters for one peer.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerCounters {
    /// Data packets received (any kind).
    pub rx_packets: u64,
    /// Data packets sent (any kind).
    pub tx_packets: u64,
    /// Ethernet bytes received.
    pub rx_bytes: u64,
    /// Ethernet bytes sent.
    pub tx_bytes: u64,
}

/// One other edge of the community.
pub(crate) struct Peer {
    pub key: PublicKey,
    pub mac: Option<MacAddr>,
    pub ip: Option<Ipv4Net>,
    pub description: String,
    /// Direct-path candidates: the address the supernode saw, the peer's local addresses, and addresses
    /// authenticated packets arrived from (peer-reflexive).
    pub candidates: Vec<SocketAddr>,
    pub current: Option<Session>,
    pub previous: Option<Session>,
    /// A session we answered and the initiator has not used yet.
    pub next: Option<Session>,
    pub pending: Option<Pending>,
    pub handshake_attempts: u32,
    /// The peer's last cookie: our initiations carry MAC2 under it while it is fresh.
    pub cookie: Option<ReceivedCookie>,
    /// Greatest handshake timestamp accepted from this peer.
    pub last_init_timestamp: u64,
    pub path: Path,
    pub probing: Probing,
    pub created: Instant,
    pub last_rx: Option<Instant>,
    pub last_direct_rx: Option<Instant>,
    /// The last authentic packet from the current direct address (not from another one).
    pub last_path_rx: Option<Instant>,
    /// A check of the direct path, while one runs (`paths.rs`).
    pub path_check: Option<PathCheck>,
    pub last_tx: Instant,
    pub rtt: Option<Duration>,
    pub queued: VecDeque<Vec<u8>>,
    pub up: bool,
    pub counters: PeerCounters,
    /// A supernode told us about it with peer info (in a key-restricted community only such peers may
    /// handshake with us).
    pub introduced: bool,
    /// The instant of this peer's live entry in the timer table (see `timers.rs`): never later than the
    /// earliest of its timers.
    pub armed: Option<Instant>,
}

impl Peer {
    pub fn new(key: PublicKey, now: Instant, probe_first: Duration) -> Peer {
        Peer {
            key,
            mac: None,
            ip: None,
            description: String::new(),
            candidates: Vec::new(),
            current: None,
            previous: None,
            next: None,
            pending: None,
            handshake_attempts: 0,
            cookie: None,
            last_init_timestamp: 0,
            path: Path::None,
            probing: Probing {
                next_at: now,
                interval: probe_first,
                nonce: [0; 8],
                sent_at: now,
            },
            created: now,
            last_rx: None,
            last_direct_rx: None,
            last_path_rx: None,
            path_check: None,
            last_tx: now,
            rtt: None,
            queued: VecDeque::new(),
            up: false,
            counters: PeerCounters::default(),
            introduced: false,
            armed: None,
        }
    }

    /// Connecting or up, as shown to people.
    pub fn state(&self) -> PeerState {
        if self.current.is_some() {
            PeerState::Up
        } else {
            PeerState::Connecting
        }
    }

    /// Local indices of all live sessions and the pending handshake, for cleaning up the index map.
    pub fn indices(&self) -> Vec<u32> {
        let mut v = Vec::with_capacity(4);
        for s in [&self.current, &self.previous, &self.next]
            .into_iter()
            .flatten()
        {
            v.push(s.local_index);
        }
        if let Some(p) = &self.pending {
            v.push(p.local_index);
        }
        v
    }
}

impl Core {
    /// The peer `key`, added to `peers` if new and there is room (else counted and None).
    pub(super) fn ensure_peer<'a>(
        &mut self,
        peers: &'a mut BTreeMap<PublicKey, Peer>,
        key: PublicKey,
        now: Instant,
    ) -> Option<&'a mut Peer> {
        let full = peers.len() >= self.cfg.limits.max_peers;
        match peers.entry(key) {
            Entry::Occupied(e) => Some(e.into_mut()),
            Entry::Vacant(e) => {
                if full {
                    self.stats.dropped_no_capacity += 1;
                    return None;
                }
                let mut p = Peer::new(key, now, self.cfg.timers.probe_first);
                self.rng.fill_bytes(&mut p.probing.nonce);
                self.by_tag.insert(key.tag(), key);
                let p = e.insert(p);
                self.rearm(p);
                Some(p)
            }
        }
    }

    /// Cleans up after a peer taken out of the table: its session indices, its tag, its learned MACs.
    /// Its entry in the timer table goes stale and is skipped when it comes up.
    fn drop_peer(&mut self, p: &Peer) {
        for i in p.indices() {
            self.by_index.remove(&i);
        }
        self.by_tag.remove(&p.key.tag());
        self.macs.forget_peer(&p.key);
    }

    /// Timer: a peer we heard nothing from for `peer_timeout` is forgotten.
    pub(super) fn silence_deadline(&self, p: &Peer) -> Option<Instant> {
        Some(p.last_rx.unwrap_or(p.created) + self.cfg.timers.peer_timeout)
    }

    /// What the silence timer does: the peer table is not reachable from here, so it tells the caller.
    pub(super) fn on_silence(&mut self, _: &mut Peer, _: Instant) -> After {
        After::Forget
    }
}

impl Edge {
    /// Forgets a peer: its sessions, indices, learned MACs, held initiations. Returns whether it was up.
    pub(super) fn forget_peer(&mut self, key: &PublicKey) -> bool {
        let Some(p) = self.peers.remove(key) else {
            return false;
        };
        self.core.drop_peer(&p);
        self.core.held_inits.retain(|h| &h.key != key);
        self.core.unconfirmed.retain(|k| k != key);
        p.up
    }

    /// Forgets a peer that went silent, and asks the supernodes for every peer again (it may come back).
    pub(super) fn forget_silent_peer(&mut self, key: &PublicKey) {
        let Some(p) = self.peers.remove(key) else {
            return;
        };
        self.core.drop_peer(&p);
        for sn in &mut self.core.supernodes {
            sn.want_peers = true;
        }
        if p.up {
            self.core.events.push_back(Event::PeerGone { peer: *key });
        }
    }
}
