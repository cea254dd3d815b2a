//! Federation links: one authenticated, encrypted session per pair of federated supernodes, made with
//! the control channel's Noise IK handshake under the federation purpose (`crate::control::Purpose`), in
//! which both sides prove their static keys.
//!
//! Each supernode is configured with every peer's address and public key. Either side initiates
//! (FED_INIT to the peer's configured address, addressed to its key); the responder drops an initiation
//! that does not come from a configured peer's address or fails its MAC (keyed by the responder's public
//! key) before any Diffie-Hellman, then does the Noise work and keeps the session only if the initiator's
//! proven static key is the one configured for that address, and its timestamp is newer than the last
//! one accepted from that peer (a replayed initiation cannot make a session). Whatever a peer says
//! afterwards (FED_EDGE, FED_GONE, FED_PUNCH) is believed only sealed in one of its sessions (data kind
//! [`DataKind::Federation`]); the replay window of the session drops a replayed packet.
//!
//! State is bounded by the configuration: per peer at most [`MAX_LINK_SESSIONS`] sessions and one
//! initiation in flight, nothing at all for anyone else. Both sides may initiate at once (at start both
//! do): each keeps both sessions, accepts on either and sends on the newest, so no tie-break is needed.
//! The side that initiated the newest session rekeys after [`REKEY_AFTER`], the other after
//! [`REKEY_AFTER_RESPONDER`] if the first did not; a session is dropped [`REJECT_AFTER`] after it was
//! made. A restarted supernode has no session: it initiates at once, and its new timestamp (wall-clock
//! based) is above the old ones.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::RngCore;

use super::{Supernode, SupernodeEvent};
use crate::control::{self, CtlInitiator, Purpose};
use crate::keys::PublicKey;
use crate::session::Session;
use crate::wire::{self, DataHeader, DataKind, FedInit, FedMessage, FedResp, Message};
use crate::wire::{CTL_MAC_LEN, DATA_HEADER_LEN};

/// The side that initiated the newest session of a link starts a new one this long after it was made.
pub const REKEY_AFTER: Duration = Duration::from_secs(120);
/// The other side starts one this long after, if the initiator has not.
pub const REKEY_AFTER_RESPONDER: Duration = Duration::from_secs(140);
/// A session is neither used nor accepted this long after it was made.
pub const REJECT_AFTER: Duration = Duration::from_secs(180);
/// Most sessions kept per peer (the newest; an older one is dropped when a new one is made).
pub const MAX_LINK_SESSIONS: usize = 3;
/// First retry of an unanswered initiation; doubles up to [`RETRY_MAX`].
pub const RETRY_MIN: Duration = Duration::from_secs(1);
/// Slowest retry of an unanswered initiation (a peer that is down is tried at this pace).
pub const RETRY_MAX: Duration = Duration::from_secs(8);

/// A configured federation peer: where it is and the static key it must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FedPeer {
    /// Its address (the only one its handshakes and relayed packets are accepted from).
    pub addr: SocketAddr,
    /// Its static public key (`weft-supernode show-key` on that supernode).
    pub key: PublicKey,
}

/// An initiation in flight.
struct Pending {
    index: u32,
    init: CtlInitiator,
}

/// The link with one configured peer.
pub(super) struct Link {
    pub peer: FedPeer,
    /// Oldest first, at most [`MAX_LINK_SESSIONS`].
    sessions: Vec<Session>,
    pending: Option<Pending>,
    next_attempt: Instant,
    backoff: Duration,
    /// The timestamp of the newest initiation accepted from the peer: the bound for the next one.
    last_timestamp: u64,
    /// When the last authentic packet (a handshake message or a sealed one) came from the peer.
    pub last_heard: Option<Instant>,
    /// The last wrong key a handshake from the peer's address proved (reported once).
    reported_key: Option<PublicKey>,
}

impl Link {
    /// Whether a session with the peer is in use (relayed packets from its address are accepted).
    pub fn up(&self) -> bool {
        !self.sessions.is_empty()
    }
}

/// Every federation link, one per configured peer.
pub(super) struct Links {
    pub links: Vec<Link>,
}

impl Links {
    pub fn new(peers: &[FedPeer], now: Instant) -> Links {
        let mut links: Vec<Link> = Vec::new();
        for p in peers {
            // One link per address: a repeated peer line is one peer.
            if links.iter().any(|l| l.peer.addr == p.addr) {
                continue;
            }
            links.push(Link {
                peer: *p,
                sessions: Vec::new(),
                pending: None,
                next_attempt: now,
                backoff: RETRY_MIN,
                last_timestamp: 0,
                last_heard: None,
                reported_key: None,
            });
        }
        Links { links }
    }

    fn by_addr(&self, addr: SocketAddr) -> Option<usize> {
        self.links.iter().position(|l| l.peer.addr == addr)
    }

    /// The link and position of the session whose local index is `index`.
    fn by_index(&self, index: u32) -> Option<(usize, usize)> {
        self.links.iter().enumerate().find_map(|(l, link)| {
            link.sessions
                .iter()
                .position(|s| s.local_index == index)
                .map(|s| (l, s))
        })
    }

    fn index_taken(&self, index: u32) -> bool {
        self.links.iter().any(|l| {
            l.sessions.iter().any(|s| s.local_index == index)
                || l.pending.as_ref().is_some_and(|p| p.index == index)
        })
    }

    /// Whether `addr` is the address of a peer with a session in use.
    pub fn is_up(&self, addr: SocketAddr) -> bool {
        self.by_addr(addr).is_some_and(|i| self.links[i].up())
    }
}

impl Supernode {
    fn fed_index(&mut self) -> u32 {
        loop {
            let i = self.rng.next_u32();
            if !self.links.index_taken(i) {
                return i;
            }
        }
    }

    /// Keeps a new session with peer `link`, dropping the oldest beyond the bound, and tells the peer
    /// everything we have (it may have just started, and nothing it was sent before reached it). An
    /// initiation of ours in flight stays when the peer's initiation crossed it: its response makes a
    /// second session, which the peer holds too.
    fn install_link_session(&mut self, now: Instant, link: usize, session: Session) {
        let session_initiator = session.initiator;
        let l = &mut self.links.links[link];
        if l.sessions.is_empty() {
            self.events
                .push_back(SupernodeEvent::FederationPeerUp { peer: l.peer.addr });
        }
        l.sessions.push(session);
        if l.sessions.len() > MAX_LINK_SESSIONS {
            l.sessions.remove(0);
        }
        if session_initiator {
            l.pending = None;
        }
        l.backoff = RETRY_MIN;
        l.last_heard = Some(now);
        self.stats.federation_handshakes += 1;
        let addr = l.peer.addr;
        self.sync_to(now, addr);
    }

    /// Starts (or retries) a handshake with peer `link`.
    fn initiate_link(&mut self, now: Instant, link: usize) {
        let timestamp = self.next_fed_counter(now);
        let index = self.fed_index();
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let peer = self.links.links[link].peer;
        let Ok((init, noise)) = CtlInitiator::start_for(
            Purpose::Federation,
            &self.cfg.identity,
            &peer.key,
            timestamp,
            seed,
        ) else {
            return;
        };
        let mut m = FedInit {
            sender_index: index,
            noise: &noise,
            mac: [0; CTL_MAC_LEN],
        };
        let mut buf = Vec::with_capacity(wire::FED_INIT_LEN);
        m.encode(&mut buf);
        m.mac = control::initiation_mac_for(
            Purpose::Federation,
            &peer.key,
            &buf[..FedInit::signed_len()],
        );
        buf.clear();
        m.encode(&mut buf);
        self.push(peer.addr, buf);
        let l = &mut self.links.links[link];
        l.pending = Some(Pending { index, init });
        l.next_attempt = now + l.backoff;
        l.backoff = (l.backoff * 2).min(RETRY_MAX);
    }

    /// Drops sessions past [`REJECT_AFTER`], and starts a handshake with every peer that has no
    /// session, or whose newest session is due for a rekey.
    pub(super) fn link_timers(&mut self, now: Instant) {
        for link in 0..self.links.links.len() {
            let l = &mut self.links.links[link];
            l.sessions
                .retain(|s| now.saturating_duration_since(s.created) < REJECT_AFTER);
            let due = match l.sessions.last() {
                None => true,
                Some(s) => {
                    let age = now.saturating_duration_since(s.created);
                    age >= if s.initiator {
                        REKEY_AFTER
                    } else {
                        REKEY_AFTER_RESPONDER
                    }
                }
            };
            if !due {
                continue;
            }
            if now >= l.next_attempt {
                self.initiate_link(now, link);
            }
        }
    }

    /// A federation initiation: from a configured peer's address, with a MAC under our key (both checked
    /// before any Diffie-Hellman), proving that peer's key, newer than the last one it made.
    pub(super) fn on_fed_init(&mut self, now: Instant, from: SocketAddr, m: FedInit, raw: &[u8]) {
        let Some(link) = self.links.by_addr(from) else {
            self.stats.federation_rejected += 1;
            return;
        };
        if !control::verify_initiation_mac_for(Purpose::Federation, &self.cfg.identity.public, raw)
        {
            self.stats.federation_rejected += 1;
            return;
        }
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let Ok(r) = control::respond_for(Purpose::Federation, &self.cfg.identity, m.noise, seed)
        else {
            self.stats.federation_rejected += 1;
            return;
        };
        let l = &mut self.links.links[link];
        if r.remote != l.peer.key {
            // Another key than the one configured for this address: an impostor, or a peer whose key
            // changed and was not updated here. Said once per key, so the operator knows what to check.
            self.stats.federation_rejected += 1;
            if l.reported_key != Some(r.remote) {
                l.reported_key = Some(r.remote);
                self.events
                    .push_back(SupernodeEvent::FederationKeyMismatch {
                        peer: from,
                        key: r.remote,
                    });
            }
            return;
        }
        if r.timestamp <= l.last_timestamp {
            // A replayed initiation.
            self.stats.federation_rejected += 1;
            return;
        }
        self.links.links[link].last_timestamp = r.timestamp;
        let index = self.fed_index();
        let mut buf = Vec::with_capacity(wire::FED_RESP_LEN);
        FedResp {
            sender_index: index,
            receiver_index: m.sender_index,
            noise: &r.msg,
        }
        .encode(&mut buf);
        self.push(from, buf);
        let session = Session::new(r.keys, index, m.sender_index, false, now);
        self.install_link_session(now, link, session);
    }

    /// A federation response: completes our initiation in flight to that peer, if it proves its key.
    pub(super) fn on_fed_resp(&mut self, now: Instant, from: SocketAddr, m: FedResp) {
        let Some(link) = self.links.by_addr(from).filter(|&l| {
            self.links.links[l]
                .pending
                .as_ref()
                .is_some_and(|p| p.index == m.receiver_index)
        }) else {
            self.stats.federation_rejected += 1;
            return;
        };
        let Some(p) = self.links.links[link].pending.take() else {
            return;
        };
        let Ok(keys) = p.init.finish(m.noise) else {
            // Not the configured key's holder (or tampered with): the retry timer tries again.
            self.stats.federation_rejected += 1;
            return;
        };
        let session = Session::new(keys, p.index, m.sender_index, true, now);
        self.install_link_session(now, link, session);
    }

    /// A sealed federation packet: opened in its session, then acted on as its peer's word.
    pub(super) fn on_fed_data(&mut self, now: Instant, h: DataHeader, raw: &[u8]) {
        let Some((link, s)) = self.links.by_index(h.receiver_index) else {
            self.stats.federation_rejected += 1;
            return;
        };
        let l = &mut self.links.links[link];
        let mut packet = raw.to_vec();
        let Ok(n) = l.sessions[s].open(&h, &mut packet) else {
            // Forged, or a replay: the window (moved only by authentic packets) refuses it.
            self.stats.federation_rejected += 1;
            return;
        };
        l.last_heard = Some(now);
        let via = l.peer.addr;
        if n == 0 {
            // A keepalive: the peer is there (see `send_fed_keepalive`).
            self.stats.federation_received += 1;
            return;
        }
        let Ok(Message::Fed(msg)) = wire::decode(&packet[DATA_HEADER_LEN..DATA_HEADER_LEN + n])
        else {
            self.stats.federation_rejected += 1;
            return;
        };
        self.stats.federation_received += 1;
        self.on_fed(now, via, msg);
    }

    /// An empty sealed packet to the peer at `to`, sent with every periodic sync, so that a peer with no
    /// edge to announce still shows it is there.
    pub(super) fn send_fed_keepalive(&mut self, to: SocketAddr) {
        let Some(l) = self.links.by_addr(to).map(|i| &mut self.links.links[i]) else {
            return;
        };
        let Some(session) = l.sessions.last_mut() else {
            return;
        };
        let addr = l.peer.addr;
        self.transmits.push_with(addr, |buf| {
            let start = buf.len();
            buf.extend_from_slice(&[0u8; DATA_HEADER_LEN]);
            session.seal_at(DataKind::Federation, buf, start);
        });
        self.stats.federation_sent += 1;
    }

    /// Seals `msg` in the newest session with the peer at `to`; nothing when there is none yet (the
    /// session's start sends everything again).
    pub(super) fn send_fed(&mut self, to: SocketAddr, msg: &FedMessage) {
        let Some(link) = self.links.by_addr(to) else {
            return;
        };
        let l = &mut self.links.links[link];
        let Some(session) = l.sessions.last_mut() else {
            return;
        };
        let addr = l.peer.addr;
        self.transmits.push_with(addr, |buf| {
            let start = buf.len();
            buf.extend_from_slice(&[0u8; DATA_HEADER_LEN]);
            msg.encode(buf);
            session.seal_at(DataKind::Federation, buf, start);
        });
        self.stats.federation_sent += 1;
    }
}
