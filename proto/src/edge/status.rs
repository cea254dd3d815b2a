//! What the edge tells the outside: events worth a log line, counters, and the status of its peers and
//! supernodes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{AddressMode, Edge, EdgeConfig, Path, PeerCounters, PeerState};
use crate::keys::PublicKey;
use crate::wire::{Ipv4Net, MacAddr, NakReason};

/// Something that happened which a person may want to know about: one log line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A supernode accepted our registration (first time, or again after losing it).
    Registered {
        /// The supernode.
        supernode: SocketAddr,
        /// Our address as the supernode sees it.
        observed: SocketAddr,
    },
    /// A supernode answered with a new boot id: it restarted.
    SupernodeRestarted {
        /// The supernode.
        supernode: SocketAddr,
    },
    /// A supernode stopped answering.
    RegistrationLost {
        /// The supernode.
        supernode: SocketAddr,
    },
    /// A supernode refused us.
    RegistrationRefused {
        /// The supernode.
        supernode: SocketAddr,
        /// Why.
        reason: NakReason,
    },
    /// The supernode in use changed (the previous one was lost, or another is much closer).
    SupernodeChanged {
        /// The previous one.
        from: Option<SocketAddr>,
        /// The one in use now.
        to: SocketAddr,
    },
    /// The supernode assigned (or changed) our virtual address.
    AddressAssigned(Ipv4Net),
    /// A session with a peer is established.
    PeerUp {
        /// The peer.
        peer: PublicKey,
        /// Its description.
        description: String,
        /// The path in use.
        path: Path,
    },
    /// The path to a peer changed.
    PathChanged {
        /// The peer.
        peer: PublicKey,
        /// The new path.
        path: Path,
    },
    /// A peer's sessions expired with no replacement.
    PeerDown {
        /// The peer.
        peer: PublicKey,
    },
    /// A peer was silent too long and is forgotten.
    PeerGone {
        /// The peer.
        peer: PublicKey,
    },
    /// A supernode has answered nothing for `secs` seconds while we try to register (reported once until
    /// it answers): a wrong address, UDP blocked on the way, or the supernode down.
    SupernodeSilent {
        /// The supernode.
        supernode: SocketAddr,
        /// How long it has been silent.
        secs: u64,
    },
    /// A supernode with no pinned key told us its key, which is now trusted for it (trust on first use):
    /// the daemon stores it and says so loudly.
    SupernodeKeyLearned {
        /// The supernode.
        supernode: SocketAddr,
        /// Its key.
        key: PublicKey,
    },
    /// A supernode does not complete handshakes with the key we pinned for it, and presents another:
    /// either it was given a new key (update the pin) or someone else answers at its address.
    SupernodeKeyMismatch {
        /// The supernode.
        supernode: SocketAddr,
        /// The key we pinned.
        pinned: PublicKey,
        /// The key it presented.
        presented: PublicKey,
    },
    /// A supernode said the peer was cut off from the community (its key is no longer allowed): its
    /// sessions are dropped and it is forgotten.
    PeerRevoked {
        /// The peer.
        peer: PublicKey,
    },
    /// A key not on our own `allow_peer` list was refused (introduced by a supernode, or handshaking with
    /// us), or a peer was forgotten because a new list leaves it out. Once per key between two changes
    /// of the list; every refusal is counted (`dropped_not_allowed`).
    PeerNotAllowed {
        /// The key.
        peer: PublicKey,
    },
}

/// Edge-wide counters. Every dropped datagram lands in exactly one `dropped_*` counter.
#[derive(Debug, Clone, Copy, Default)]
pub struct EdgeStats {
    /// Datagrams received.
    pub rx_packets: u64,
    /// Datagrams sent.
    pub tx_packets: u64,
    /// Bytes received (datagrams).
    pub rx_bytes: u64,
    /// Bytes sent (datagrams).
    pub tx_bytes: u64,
    /// Handshakes completed (either role).
    pub handshakes_completed: u64,
    /// Handshake messages that failed authentication.
    pub handshakes_rejected: u64,
    /// Cookie replies sent instead of answering an initiation (under load).
    pub cookie_replies_sent: u64,
    /// Cookie replies received and accepted (our initiations then carry MAC2).
    pub cookies_received: u64,
    /// Datagrams that did not decode.
    pub dropped_malformed: u64,
    /// Handshake messages with a wrong MAC1 (sent without the community secret, or to another edge),
    /// dropped before any work and never answered.
    pub dropped_bad_mac: u64,
    /// Handshake initiations dropped under load because their source exceeded its rate.
    pub dropped_handshake_rate: u64,
    /// Cookie replies for no initiation of ours in flight, replayed, or that did not open.
    pub dropped_bad_cookie: u64,
    /// Data packets that failed authentication.
    pub dropped_auth: u64,
    /// Data packets or initiations that were replays.
    pub dropped_replay: u64,
    /// Data packets or responses for a session we do not have.
    pub dropped_unknown_session: u64,
    /// Control messages not from one of our supernodes, or about another community.
    pub dropped_not_from_supernode: u64,
    /// Control messages from a supernode's address that were not sealed in our control session with it
    /// (forged or replayed: version 2 believes a supernode only through its session), or that did not open.
    pub dropped_unauthenticated: u64,
    /// Frames dropped: no session and the per-peer queue full, or no route at all.
    pub dropped_no_route: u64,
    /// Peer info or handshakes about a new peer, turned away because the peer table is full.
    pub dropped_no_capacity: u64,
    /// Peer info, handshakes or sessions from keys not on our own `allow_peer` list, refused.
    pub dropped_not_allowed: u64,
    /// Sessions we answered for a key that was not a peer and that the initiator never confirmed with a
    /// packet (expired, or pushed out by newer ones): no peer was made for them.
    pub unconfirmed_dropped: u64,
    /// Frames sent directly.
    pub tx_direct_frames: u64,
    /// Frames sent through a supernode.
    pub tx_relayed_frames: u64,
    /// Ethernet bytes sent directly.
    pub tx_direct_bytes: u64,
    /// Ethernet bytes sent through a supernode.
    pub tx_relayed_bytes: u64,
    /// Frames received directly.
    pub rx_direct_frames: u64,
    /// Frames received through a supernode.
    pub rx_relayed_frames: u64,
    /// Ethernet bytes received directly.
    pub rx_direct_bytes: u64,
    /// Ethernet bytes received through a supernode.
    pub rx_relayed_bytes: u64,
}

/// What the status API shows of one peer.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    /// Its identity.
    pub public_key: PublicKey,
    /// Its description.
    pub description: String,
    /// Its TAP MAC as it registered it.
    pub mac: Option<MacAddr>,
    /// MACs learned behind it.
    pub learned_macs: Vec<MacAddr>,
    /// Its virtual address.
    pub ip: Option<Ipv4Net>,
    /// Connecting or up.
    pub state: PeerState,
    /// The path in use.
    pub path: Path,
    /// Why the path is not direct, when it is not.
    pub why_not_direct: Option<&'static str>,
    /// Last probe round-trip time on the direct path.
    pub rtt: Option<Duration>,
    /// When we last heard from it.
    pub last_seen: Option<Instant>,
    /// Traffic counters.
    pub counters: PeerCounters,
}

/// What the status API shows of one supernode.
#[derive(Debug, Clone)]
pub struct SupernodeStatus {
    /// Its address.
    pub addr: SocketAddr,
    /// Whether our registration is current.
    pub registered: bool,
    /// When it last acknowledged.
    pub last_ack: Option<Instant>,
    /// Whether it refused our last registration.
    pub refused: bool,
    /// Why it refused it.
    pub refusal: Option<NakReason>,
    /// Round-trip time of the last acknowledged registration or ping.
    pub rtt: Option<Duration>,
    /// Whether it is the one in use for relaying and punching.
    pub active: bool,
    /// The key pinned for it (configured, or learned on first use); None while it is being asked.
    pub key: Option<PublicKey>,
    /// Another key it presented when handshakes with the pinned key went unanswered.
    pub key_mismatch: Option<PublicKey>,
    /// Whether a control session with it is established.
    pub session: bool,
}

/// Status getters: cheap copies for the management API and the daemon's log, never needed to drive the
/// edge.
impl Edge {
    /// Edge-wide counters.
    pub fn stats(&self) -> EdgeStats {
        self.core.stats
    }

    /// Our identity.
    pub fn public_key(&self) -> PublicKey {
        self.core.cfg.identity.public
    }

    /// The configuration in use.
    pub fn config(&self) -> &EdgeConfig {
        &self.core.cfg
    }

    /// The virtual address: the static one, or the one the supernode assigned.
    pub fn address(&self) -> Option<Ipv4Net> {
        match self.core.cfg.address {
            AddressMode::Static(n) => Some(n),
            AddressMode::Auto => self.core.assigned_ip,
            AddressMode::None => None,
        }
    }

    /// Our public address as a supernode last saw it.
    pub fn observed_address(&self) -> Option<SocketAddr> {
        self.core.observed
    }

    /// Supernode registration states.
    pub fn supernodes(&self) -> Vec<SupernodeStatus> {
        self.core
            .supernodes
            .iter()
            .enumerate()
            .map(|(i, s)| SupernodeStatus {
                addr: s.addr,
                registered: s.registered,
                last_ack: s.last_heard.or(s.last_ack),
                refused: s.refused,
                refusal: s.refusal,
                rtt: s.rtt,
                active: self.core.active == Some(i),
                key: s.key,
                key_mismatch: s.key_mismatch,
                session: s.session.is_some(),
            })
            .collect()
    }

    /// Sessions answered for keys that are not peers yet, waiting for their first packet (bounded).
    pub fn unconfirmed_sessions(&self) -> usize {
        self.core.unconfirmed.len()
    }

    /// When any peer last sent us an authentic packet.
    pub fn last_peer_rx(&self) -> Option<Instant> {
        self.peers.values().filter_map(|p| p.last_rx).max()
    }

    /// Whether any supernode holds a current registration.
    pub fn is_registered(&self) -> bool {
        self.core.supernodes.iter().any(|s| s.registered)
    }

    /// Every known peer, sorted by public key.
    pub fn peers(&self) -> Vec<PeerStatus> {
        let mut v: Vec<PeerStatus> = self
            .peers
            .values()
            .map(|p| PeerStatus {
                public_key: p.key,
                description: p.description.clone(),
                mac: p.mac,
                learned_macs: self.core.macs.macs_of(&p.key),
                ip: p.ip,
                state: p.state(),
                path: p.path,
                why_not_direct: self.core.why_not_direct(p),
                rtt: p.rtt,
                last_seen: p.last_rx,
                counters: p.counters,
            })
            .collect();
        v.sort_by_key(|p| p.public_key);
        v
    }
}
