//! The supernode's side of the control channel: answering control handshakes, the table of sessions,
//! opening what edges send in them and sealing what we send to edges.
//!
//! A session is created by a valid initiation (its MAC checked before any Diffie-Hellman, its timestamp
//! newer than the last accepted for that edge key) and carries a registration once the edge registers in
//! it. Only what arrives sealed in a session reaches the registration logic, with the sender's static key
//! proven by the handshake: a registration can only be made, refreshed or moved by the holder of the key
//! it names. Sessions that carry no registration are few and short-lived: at most [`MAX_PENDING`], the
//! oldest dropped first, each forgotten [`PENDING_TTL`] after it was last used.
//!
//! Nothing larger than a request goes to an address before it proved it receives what we send: the
//! handshake response is smaller than the initiation, a key reply is as large as the key query, and peer
//! lists only go out after a registration sealed in the session (which needs the response's keys).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::RngCore;

use super::{Supernode, SupernodeEvent};
use crate::control;
use crate::handshake_mac::{Admit, CookieChecker, MacKeys, Source};
use crate::keys::{CommunityId, PublicKey};
use crate::session::Session;
use crate::wire::{
    self, CookieReply, CtlInit, CtlResp, DataHeader, DataKind, KeyReply, Message, COOKIE_NONCE_LEN,
    DATA_HEADER_LEN,
};

/// Most sessions that carry no registration yet.
pub const MAX_PENDING: usize = 4096;
/// A session that carries no registration is forgotten this long after its last packet.
pub const PENDING_TTL: Duration = Duration::from_secs(15);

/// One control session with an edge.
pub(super) struct CtlSession {
    pub session: Session,
    /// Where the edge's last authentic packet came from: where we send.
    pub addr: SocketAddr,
    /// The edge's static key, proven by the handshake.
    pub remote: PublicKey,
    /// The initiation's timestamp.
    pub timestamp: u64,
    pub last_rx: Instant,
    /// The community of the registration this session carries.
    pub community: Option<CommunityId>,
}

/// Every control session, and the handshake load.
pub(super) struct Channels {
    /// Under load, initiations without a cookie's MAC2 get a cookie instead of Diffie-Hellman work.
    pub cookies: CookieChecker,
    /// The load was reported (an event when it starts, one when it is over).
    load_reported: bool,
    pub sessions: HashMap<u32, CtlSession>,
    /// The newest session of each edge key (its timestamp is the replay bound for the next initiation).
    pub newest: HashMap<PublicKey, u32>,
    /// Sessions created without a registration, oldest first (some may have one by now).
    pending: VecDeque<u32>,
}

impl Channels {
    /// No sessions yet; under load above `handshake_load` initiations a second.
    pub fn new(handshake_load: u32) -> Channels {
        Channels {
            cookies: CookieChecker::new(handshake_load),
            load_reported: false,
            sessions: HashMap::new(),
            newest: HashMap::new(),
            pending: VecDeque::new(),
        }
    }

    /// Forgets a session.
    pub fn remove(&mut self, index: u32) {
        if let Some(s) = self.sessions.remove(&index) {
            if self.newest.get(&s.remote) == Some(&index) {
                self.newest.remove(&s.remote);
            }
        }
    }
}

impl Supernode {
    /// The supernode's static public key: what edges pin.
    pub fn public_key(&self) -> PublicKey {
        self.cfg.identity.public
    }

    /// A key query: answered with our key, in a datagram no larger than the query.
    pub(super) fn on_key_query(&mut self, from: SocketAddr) {
        self.stats.key_queries += 1;
        let mut buf = Vec::with_capacity(wire::KEY_QUERY_LEN);
        KeyReply {
            key: self.cfg.identity.public,
        }
        .encode(&mut buf);
        debug_assert!(buf.len() <= wire::KEY_QUERY_LEN);
        self.push(from, buf);
    }

    /// A control initiation: check the MAC, then do the Noise work, then answer and keep a session.
    pub(super) fn on_ctl_init(&mut self, now: Instant, from: SocketAddr, m: CtlInit, raw: &[u8]) {
        if !control::verify_initiation_mac(&self.cfg.identity.public, raw) {
            self.stats.ctl_rejected += 1;
            return;
        }
        let source = Source {
            addr: from,
            tag: None,
        };
        let mac2_input = &raw[..CtlInit::mac2_input_len()];
        let admit = self
            .ctl
            .cookies
            .admit(&source, mac2_input, &m.mac2, now, &mut self.rng);
        if !self.ctl.load_reported && self.ctl.cookies.under_load() {
            self.ctl.load_reported = true;
            self.events.push_back(SupernodeEvent::HandshakeLoad {
                under_load: true,
                threshold: self.cfg.handshake_load,
            });
        }
        match admit {
            Admit::Process => {}
            Admit::Cookie(cookie) => {
                // Under load: no Diffie-Hellman for a source that has not shown it receives here.
                let mut nonce = [0u8; COOKIE_NONCE_LEN];
                self.rng.fill_bytes(&mut nonce);
                let sealed = MacKeys::for_supernode(&self.cfg.identity.public)
                    .seal_cookie(&cookie, &m.mac, &nonce);
                let mut buf = Vec::with_capacity(wire::COOKIE_REPLY_LEN);
                wire::encode_cookie_reply(
                    &CookieReply {
                        receiver_index: m.sender_index,
                        nonce,
                        sealed,
                    },
                    &mut buf,
                );
                debug_assert!(buf.len() < raw.len());
                self.stats.ctl_cookies_sent += 1;
                self.push(from, buf);
                return;
            }
            Admit::RateLimited => {
                self.stats.ctl_rate_limited += 1;
                return;
            }
        }
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let Ok(r) = control::respond(&self.cfg.identity, m.noise, seed) else {
            self.stats.ctl_rejected += 1;
            return;
        };
        if let Some(prev) = self.ctl.newest.get(&r.remote) {
            if self
                .ctl
                .sessions
                .get(prev)
                .is_some_and(|s| s.timestamp >= r.timestamp)
            {
                // A replayed (or reordered older) initiation: it must not replace a live session.
                self.stats.ctl_rejected += 1;
                return;
            }
        }
        // Bounded: drop the oldest sessions that still carry no registration.
        while self.ctl.pending.len() >= MAX_PENDING {
            let Some(old) = self.ctl.pending.pop_front() else {
                break;
            };
            if self
                .ctl
                .sessions
                .get(&old)
                .is_some_and(|s| s.community.is_none())
            {
                self.ctl.remove(old);
            }
        }
        let index = loop {
            let i = self.rng.next_u32();
            if !self.ctl.sessions.contains_key(&i) {
                break i;
            }
        };
        let session = Session::new(r.keys, index, m.sender_index, false, now);
        self.ctl.sessions.insert(
            index,
            CtlSession {
                session,
                addr: from,
                remote: r.remote,
                timestamp: r.timestamp,
                last_rx: now,
                community: None,
            },
        );
        self.ctl.newest.insert(r.remote, index);
        self.ctl.pending.push_back(index);
        self.stats.ctl_handshakes += 1;
        let mut buf = Vec::with_capacity(wire::HEADER_LEN + 8 + r.msg.len());
        CtlResp {
            sender_index: index,
            receiver_index: m.sender_index,
            noise: &r.msg,
        }
        .encode(&mut buf);
        self.push(from, buf);
    }

    /// A sealed control message: open it in its session, then act on what it says, as its sender's key.
    pub(super) fn on_ctl_data(
        &mut self,
        now: Instant,
        from: SocketAddr,
        h: DataHeader,
        raw: &[u8],
    ) {
        let Some(s) = self.ctl.sessions.get_mut(&h.receiver_index) else {
            // Perhaps we restarted: say so, in 4 bytes, so the edge does a new handshake at once.
            self.stats.ctl_rejected += 1;
            let mut buf = Vec::new();
            wire::encode_unknown_sender(&mut buf);
            self.push(from, buf);
            return;
        };
        let mut packet = raw.to_vec();
        let Ok(n) = s.session.open(&h, &mut packet) else {
            self.stats.ctl_rejected += 1;
            return;
        };
        s.last_rx = now;
        s.addr = from;
        let (remote, community) = (s.remote, s.community);
        let plain = &packet[DATA_HEADER_LEN..DATA_HEADER_LEN + n];
        let Ok(msg) = wire::decode(plain) else {
            self.stats.dropped_packets += 1;
            return;
        };
        let index = h.receiver_index;
        match msg {
            Message::Register(reg) if reg.public_key == remote => {
                self.on_register(now, from, reg, plain, index)
            }
            Message::PunchRequest(p) if p.from == remote && community == Some(p.community) => {
                self.rebind(now, index, from);
                self.on_punch_request(now, from, p)
            }
            Message::SupernodePing(nonce) => {
                if self.rebind(now, index, from) {
                    self.on_ping(index, nonce);
                } else {
                    // Not registered (expired, or refused since): an authentic "register again".
                    self.stats.dropped_packets += 1;
                    let mut buf = Vec::new();
                    wire::encode_unknown_sender(&mut buf);
                    self.send_ctl(index, &buf);
                }
            }
            _ => self.stats.dropped_packets += 1,
        }
    }

    /// The edge of session `index` sent an authentic packet from `from`: if the session carries its
    /// current registration and the address changed (a NAT rebinding), move the registration there and
    /// introduce it again. False when the session carries no current registration.
    pub(super) fn rebind(&mut self, now: Instant, index: u32, from: SocketAddr) -> bool {
        let Some(s) = self.ctl.sessions.get(&index) else {
            return false;
        };
        let (key, Some(community)) = (s.remote, s.community) else {
            return false;
        };
        let Some(e) = self
            .communities
            .get_mut(&community)
            .and_then(|c| c.edges.get_mut(&key))
            .filter(|e| e.session == index)
        else {
            return false;
        };
        if e.addr == from {
            return true;
        }
        let old = std::mem::replace(&mut e.addr, from);
        if self.by_addr.get(&old) == Some(&(community, key)) {
            self.by_addr.remove(&old);
        }
        self.bind_addr(community, key, from);
        self.events.push_back(SupernodeEvent::EdgeRegistered {
            community,
            edge: key,
            addr: from,
            moved: true,
        });
        self.introduce_all(community, key, true);
        if let Some(e) = self
            .communities
            .get(&community)
            .and_then(|c| c.edges.get(&key))
            .cloned()
        {
            self.announce_edge(now, &e, true);
        }
        true
    }

    /// Seals `msg` (an encoded control message) in session `index` and queues it to the session's address.
    pub(super) fn send_ctl(&mut self, index: u32, msg: &[u8]) {
        let Some(s) = self.ctl.sessions.get_mut(&index) else {
            return;
        };
        let addr = s.addr;
        let session = &mut s.session;
        self.transmits.push_with(addr, |buf| {
            let start = buf.len();
            buf.extend_from_slice(&[0u8; DATA_HEADER_LEN]);
            buf.extend_from_slice(msg);
            session.seal_at(DataKind::Control, buf, start);
        });
    }

    /// Sends `msg` (an encoded control message) to the edge `key` of `community`, sealed in its session,
    /// as every message of ours to an edge goes. Public for tools and tests that speak as the supernode.
    /// False when no such edge is registered.
    pub fn send_control(&mut self, community: CommunityId, key: &PublicKey, msg: &[u8]) -> bool {
        let Some(index) = self
            .communities
            .get(&community)
            .and_then(|c| c.edges.get(key))
            .map(|e| e.session)
        else {
            return false;
        };
        self.send_ctl(index, msg);
        true
    }

    /// Seals `msg` to the edge registered from `addr` (nothing if none is).
    pub(super) fn send_ctl_to(&mut self, addr: SocketAddr, msg: &[u8]) {
        let Some(index) = self
            .by_addr
            .get(&addr)
            .and_then(|(c, k)| self.communities.get(c)?.edges.get(k))
            .map(|e| e.session)
        else {
            return;
        };
        self.send_ctl(index, msg);
    }

    /// Forgets sessions that carry no registration and went quiet, and those of registrations gone; says
    /// when a handshake load is over.
    pub(super) fn expire_sessions(&mut self, now: Instant) {
        if self.ctl.load_reported && !self.ctl.cookies.still_under_load(now) {
            self.ctl.load_reported = false;
            self.events.push_back(SupernodeEvent::HandshakeLoad {
                under_load: false,
                threshold: self.cfg.handshake_load,
            });
        }
        let expiry = self.cfg.edge_expiry;
        let communities = &self.communities;
        let mut gone = Vec::new();
        for (i, s) in &self.ctl.sessions {
            let idle = now.saturating_duration_since(s.last_rx);
            let current = s.community.is_some_and(|c| {
                communities
                    .get(&c)
                    .and_then(|c| c.edges.get(&s.remote))
                    .is_some_and(|e| e.session == *i)
            });
            if (!current && idle >= PENDING_TTL) || idle >= expiry {
                gone.push(*i);
            }
        }
        for i in gone {
            self.ctl.remove(i);
        }
        let sessions = &self.ctl.sessions;
        self.ctl.pending.retain(|i| sessions.contains_key(i));
    }
}
