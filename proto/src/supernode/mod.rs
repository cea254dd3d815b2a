//! The supernode state machine: admits edges into communities, tells them about each other, coordinates
//! hole punching, relays sealed packets between edges that cannot reach each other, and leases virtual
//! addresses. Sans-IO like the edge: datagrams and time in, datagrams and events out.
//!
//! What a supernode can and cannot do is the point of its design: it checks admission proofs (when it was
//! given a community's admission key) and forwards edge-to-edge packets untouched; it never has the edge
//! PSK, so it cannot complete a handshake with an edge, read a frame or forge one.
//!
//! Edges talk to it through an authenticated, encrypted control channel (`channel.rs`): a Noise IK
//! handshake against the supernode's static key, then sealed messages. A registration is made by the
//! holder of the key it names, in its own session; every reply, peer list and revocation goes sealed to
//! that session.
//!
//! Federated supernodes talk to each other the same way (`fed_channel.rs`): a session per configured
//! peer, made with a handshake in which both prove the static key the other is configured with; what a
//! peer says (`federation.rs`) is believed only sealed in it.
//!
//! Relaying is not open: a relay request is only served when it comes from the address of a current
//! registration (an address only an authentic packet of that edge's session can set), and only towards an
//! edge of the same community.

mod channel;
mod fed_channel;
mod federation;
mod leases;
mod pacing;
mod policy;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

pub use fed_channel::{
    FedPeer, MAX_LINK_SESSIONS, REJECT_AFTER as FED_REJECT_AFTER, REKEY_AFTER as FED_REKEY_AFTER,
};
pub use federation::{FedPeerStatus, RemoteEdge, SYNC_INTERVAL};
pub use leases::{Lease, Leases};
pub use policy::{glob_match, Admission, AdmissionPolicy, CommunityPolicy, PatternPolicy};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::keys::{CommunityId, PeerTag, PublicKey, StaticKeypair};
use crate::queue::PacketQueue;
use crate::wire::{
    self, DataKind, Ipv4Net, MacAddr, Message, MsgType, NakReason, PeerInfo, PeerRevoked, Register,
    RegisterAck, RegisterNak, ADMISSION_TAG_LEN,
};
use crate::Transmit;

/// Supernode configuration.
#[derive(Clone)]
pub struct SupernodeConfig {
    /// Admission policy.
    pub policy: AdmissionPolicy,
    /// First address of the pool for assigned addresses.
    pub pool_min: Ipv4Addr,
    /// Last address of the pool.
    pub pool_max: Ipv4Addr,
    /// Prefix length of each community's subnet.
    pub pool_prefix: u8,
    /// An address lease whose edge has not registered for this long is freed (see the leases module).
    pub lease_time: Duration,
    /// An edge that has not refreshed its registration for this long is forgotten.
    pub edge_expiry: Duration,
    /// Most edges served at once (all communities).
    pub max_edges: usize,
    /// Most communities served at once.
    pub max_communities: usize,
    /// Random per start; tells edges the supernode restarted.
    pub boot_id: u64,
    /// Wall-clock microseconds at start: federation handshake timestamps build on it, so they keep
    /// growing across restarts.
    pub wall_clock_us: u64,
    /// The other supernodes of the federation, each with the static key it must prove (every one of
    /// them: see the federation module); empty: not federated.
    pub peers: Vec<FedPeer>,
    /// The supernode's static key pair: edges pin its public half. The daemon keeps it in its state
    /// directory; the default is a fixed key for tests only.
    pub identity: StaticKeypair,
    /// Seeds every random choice (session indices, ephemeral keys).
    pub seed: [u8; 32],
    /// Above this many control handshakes a second, an initiation must carry a cookie's MAC2 (proof
    /// that its source receives what we send there) before we do any Diffie-Hellman for it.
    pub handshake_load: u32,
}

impl Default for SupernodeConfig {
    fn default() -> Self {
        SupernodeConfig {
            policy: AdmissionPolicy::open(),
            pool_min: Ipv4Addr::new(10, 128, 0, 0),
            pool_max: Ipv4Addr::new(10, 255, 255, 0),
            pool_prefix: 24,
            lease_time: Duration::from_secs(24 * 3600),
            edge_expiry: Duration::from_secs(65),
            max_edges: 100_000,
            max_communities: 10_000,
            boot_id: 0,
            wall_clock_us: 0,
            peers: Vec::new(),
            identity: StaticKeypair::from_private([0x5e; 32]),
            seed: [0; 32],
            handshake_load: 200,
        }
    }
}

/// What happened, one log line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupernodeEvent {
    /// An edge registered for the first time, or from a new address.
    EdgeRegistered {
        /// Its community.
        community: CommunityId,
        /// Its identity.
        edge: PublicKey,
        /// Where it registered from.
        addr: SocketAddr,
        /// Whether it moved (was registered from another address).
        moved: bool,
    },
    /// A registration was refused.
    RegistrationRefused {
        /// The community it asked for.
        community: CommunityId,
        /// The key it registered.
        edge: PublicKey,
        /// Where it came from.
        addr: SocketAddr,
        /// Why.
        reason: NakReason,
    },
    /// A registered edge was cut off because the new policy no longer admits it (its key was removed
    /// from the community's list, or the community from the file); its peers were told (PEER_REVOKED).
    EdgeRevoked {
        /// Its community.
        community: CommunityId,
        /// Its identity.
        edge: PublicKey,
        /// Why (the NAK it was sent).
        reason: NakReason,
    },
    /// A federation session with a configured peer was made after a time without one (at start, or the
    /// peer came back).
    FederationPeerUp {
        /// The peer's configured address.
        peer: SocketAddr,
    },
    /// A handshake from a configured peer's address proved another key than the one configured for it
    /// (an impostor there, or the peer's key changed and this supernode's `peer` line was not updated).
    /// Reported once per distinct key.
    FederationKeyMismatch {
        /// The peer's configured address.
        peer: SocketAddr,
        /// The key the handshake proved.
        key: PublicKey,
    },
    /// More than `threshold` control handshakes arrived in a second (`under_load`: from then on they need a
    /// cookie), or that is over again. One event each way.
    HandshakeLoad {
        /// Whether the load started (true) or ended.
        under_load: bool,
        /// `handshake_load`.
        threshold: u32,
    },
    /// An edge stopped refreshing and was forgotten.
    EdgeExpired {
        /// Its community.
        community: CommunityId,
        /// Its identity.
        edge: PublicKey,
    },
}

/// Supernode counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct SupernodeStats {
    /// Registrations accepted (including refreshes).
    pub registrations: u64,
    /// Registrations refused.
    pub rejected_registrations: u64,
    /// Edge-to-edge packets relayed.
    pub relayed_packets: u64,
    /// Bytes of edge-to-edge packets relayed.
    pub relayed_bytes: u64,
    /// Datagrams dropped (malformed, replayed, from unknown senders, for unknown destinations).
    pub dropped_packets: u64,
    /// Punch coordinations performed.
    pub punches: u64,
    /// Liveness pings answered.
    pub pings: u64,
    /// Federation control messages sent to peers.
    pub federation_sent: u64,
    /// Federation control messages accepted from peers.
    pub federation_received: u64,
    /// Federation packets dropped: a handshake not from a configured peer's address, with a bad MAC,
    /// proving another key than the one configured, or replayed; a sealed packet for no session, forged
    /// or replayed; a relayed packet from an address without a federation session.
    pub federation_rejected: u64,
    /// Federation control messages that came in the clear (they are believed only sealed).
    pub federation_unauthenticated: u64,
    /// Federation sessions made (either side initiating).
    pub federation_handshakes: u64,
    /// Registrations dropped because a reloaded policy no longer admits them.
    pub revoked: u64,
    /// Control channel handshakes answered.
    pub ctl_handshakes: u64,
    /// Control channel packets refused: a bad MAC, a handshake that failed or was replayed, a sealed
    /// packet for no session or that did not open.
    pub ctl_rejected: u64,
    /// Control messages that came in the clear (protocol version 2 accepts them only sealed).
    pub unauthenticated: u64,
    /// Key queries answered (edges that trust the supernode's key on first use).
    pub key_queries: u64,
    /// Control initiations answered with a cookie instead of a handshake (under load).
    pub ctl_cookies_sent: u64,
    /// Control initiations dropped under load because their source sent too many.
    pub ctl_rate_limited: u64,
}

/// One registered edge as the status API shows it.
#[derive(Debug, Clone)]
pub struct EdgeRecord {
    /// Its community.
    pub community: CommunityId,
    /// Its identity.
    pub key: PublicKey,
    /// The address its registrations come from.
    pub addr: SocketAddr,
    /// Its local addresses.
    pub local_addrs: Vec<SocketAddr>,
    /// Its MAC.
    pub mac: MacAddr,
    /// Its virtual address.
    pub ip: Option<Ipv4Net>,
    /// Its description.
    pub description: String,
    /// Last registration.
    pub last_seen: Instant,
    counter: u64,
    /// The control session it registered in: where everything for it is sealed.
    session: u32,
    /// When it was last sent the full peer list on request (paced: `pacing.rs`).
    last_full_list: Option<Instant>,
}

#[derive(Default)]
struct Community {
    /// Ordered like `Supernode::communities`.
    edges: BTreeMap<PublicKey, EdgeRecord>,
    by_tag: HashMap<PeerTag, PublicKey>,
}

/// The supernode state machine. See the module documentation.
pub struct Supernode {
    cfg: SupernodeConfig,
    /// Ordered, because introductions and expiry iterate it: with a `HashMap` the order of the datagrams and
    /// events they produce depended on the per-process hash seed, not only on the inputs.
    communities: BTreeMap<CommunityId, Community>,
    by_addr: HashMap<SocketAddr, (CommunityId, PublicKey)>,
    /// Names of communities admitted by pattern, as their edges told them (REGISTER flag bit 2).
    names: HashMap<CommunityId, String>,
    leases: Leases,
    total_edges: usize,
    next_sweep: Instant,
    transmits: PacketQueue<SocketAddr>,
    events: VecDeque<SupernodeEvent>,
    stats: SupernodeStats,
    last_registration: Option<Instant>,
    start: Instant,
    fed: federation::FederationState,
    links: fed_channel::Links,
    ctl: channel::Channels,
    rng: ChaCha20Rng,
    joins: pacing::JoinPacer,
}

const MAX_OUTPUT_QUEUE: usize = 65536;

impl Supernode {
    /// A new supernode with persisted `leases` restored.
    pub fn new(cfg: SupernodeConfig, now: Instant, leases: Vec<Lease>) -> Supernode {
        let mut l = Leases::new(cfg.pool_min, cfg.pool_max, cfg.pool_prefix, cfg.lease_time);
        l.set_pools(cfg.policy.pools());
        l.restore(leases, cfg.wall_clock_us / 1_000_000);
        Supernode {
            leases: l,
            communities: BTreeMap::new(),
            by_addr: HashMap::new(),
            names: HashMap::new(),
            total_edges: 0,
            next_sweep: now + Duration::from_secs(1),
            transmits: PacketQueue::new(MAX_OUTPUT_QUEUE),
            events: VecDeque::new(),
            stats: SupernodeStats::default(),
            last_registration: None,
            start: now,
            fed: Default::default(),
            links: fed_channel::Links::new(&cfg.peers, now),
            ctl: channel::Channels::new(cfg.handshake_load),
            rng: ChaCha20Rng::from_seed(cfg.seed),
            joins: Default::default(),
            cfg,
        }
    }

    /// The next datagram to send, as an owned copy (for tests and simulators; the daemon reads the queue
    /// in place with [`Supernode::transmits`]).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits
            .pop_front()
            .map(|(dest, payload)| Transmit { dest, payload })
    }

    /// The datagrams to send, oldest first, back to back in one buffer. Call
    /// [`Supernode::clear_transmits`] once they are sent.
    pub fn transmits(&self) -> &PacketQueue<SocketAddr> {
        &self.transmits
    }

    /// Forgets the datagrams [`Supernode::transmits`] showed, keeping the buffer.
    pub fn clear_transmits(&mut self) {
        self.transmits.clear();
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SupernodeEvent> {
        self.events.pop_front()
    }

    /// When [`Supernode::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Instant {
        self.next_sweep
    }

    /// Counters.
    pub fn stats(&self) -> SupernodeStats {
        self.stats
    }

    /// When the last registration was accepted.
    pub fn last_registration(&self) -> Option<Instant> {
        self.last_registration
    }

    /// The current leases, if they changed since the last call (for the daemon to persist).
    pub fn take_changed_leases(&mut self) -> Option<Vec<Lease>> {
        self.leases.take_changed().then(|| self.leases.all())
    }

    /// Replaces the admission policy (the daemon reloads its community file) and applies it to the edges
    /// registered now: an edge the new policy refuses (its key is no longer on its community's list, or
    /// its community is no longer admitted) loses its registration at once and is sent the NAK it would
    /// get if it registered now; when its key was removed, every other edge of its community is sent
    /// PEER_REVOKED so it drops its sessions with it. Leases outside a changed pool are dropped.
    ///
    /// An admission key added or changed is checked at each edge's next refresh (the supernode keeps no
    /// proof to check again), which refuses an edge without the secret; that edge's registration then
    /// expires.
    pub fn set_policy(&mut self, policy: AdmissionPolicy) {
        self.cfg.policy = policy;
        self.leases.set_pools(self.cfg.policy.pools());
        let mut cut = Vec::new();
        for (id, c) in &self.communities {
            let name = self.names.get(id).map(String::as_str);
            match self.cfg.policy.admission(id, name) {
                Err(reason) => cut.extend(c.edges.keys().map(|k| (*id, *k, reason))),
                Ok(a) => cut.extend(
                    c.edges
                        .keys()
                        .filter(|k| !a.allows_key(k))
                        .map(|k| (*id, *k, NakReason::KeyNotAllowed)),
                ),
            }
        }
        let dropped: Vec<(CommunityId, PublicKey)> = cut.iter().map(|(c, k, _)| (*c, *k)).collect();
        for (id, key, reason) in cut {
            self.revoke(id, key, reason);
        }
        self.federation_policy_changed(&dropped);
        self.communities.retain(|_, c| !c.edges.is_empty());
        let communities = &self.communities;
        self.names.retain(|id, _| communities.contains_key(id));
    }

    /// Drops the registration of `key` in `community`, tells it why, and (when its key is no longer
    /// allowed) tells every other edge of the community to forget it.
    fn revoke(&mut self, community: CommunityId, key: PublicKey, reason: NakReason) {
        let Some(c) = self.communities.get_mut(&community) else {
            return;
        };
        let Some(e) = c.edges.remove(&key) else {
            return;
        };
        c.by_tag.remove(&key.tag());
        self.total_edges -= 1;
        self.stats.revoked += 1;
        if self.by_addr.get(&e.addr) == Some(&(community, key)) {
            self.by_addr.remove(&e.addr);
        }
        let mut out = Vec::new();
        let mut buf = Vec::new();
        RegisterNak {
            community,
            public_key: key,
            counter: e.counter,
            reason,
        }
        .encode(&mut buf);
        out.push((e.session, buf));
        if reason == NakReason::KeyNotAllowed {
            let mut buf = Vec::new();
            PeerRevoked {
                community,
                public_key: key,
            }
            .encode(&mut buf);
            for other in c.edges.values() {
                out.push((other.session, buf.clone()));
            }
        }
        for (session, buf) in out {
            self.send_ctl(session, &buf);
        }
        self.events.push_back(SupernodeEvent::EdgeRevoked {
            community,
            edge: key,
            reason,
        });
    }

    /// The display name of a community: the name the policy lists, or the one its edges told (pattern).
    pub fn community_name(&self, id: &CommunityId) -> Option<&str> {
        self.cfg
            .policy
            .listed
            .get(id)
            .map(|c| c.name.as_str())
            .or_else(|| self.names.get(id).map(String::as_str))
    }

    /// Communities with at least one edge, and their edge counts.
    pub fn communities(&self) -> Vec<(CommunityId, usize)> {
        let mut v: Vec<_> = self
            .communities
            .iter()
            .map(|(id, c)| (*id, c.edges.len()))
            .collect();
        v.sort();
        v
    }

    /// Every registered edge.
    pub fn edges(&self) -> Vec<EdgeRecord> {
        let mut v: Vec<EdgeRecord> = self
            .communities
            .values()
            .flat_map(|c| c.edges.values().cloned())
            .collect();
        v.sort_by_key(|e| (e.community, e.key));
        v
    }

    fn push(&mut self, dest: SocketAddr, payload: Vec<u8>) {
        self.transmits.push(dest, &payload);
    }

    /// Handles one datagram.
    pub fn handle_udp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let msg = match wire::decode(data) {
            Ok(m) => m,
            Err(_) => {
                self.stats.dropped_packets += 1;
                return;
            }
        };
        match msg {
            Message::CtlInit(m) => self.on_ctl_init(now, from, m, data),
            Message::Data(h, _) if h.kind == DataKind::Control => {
                self.on_ctl_data(now, from, h, data)
            }
            Message::KeyQuery => self.on_key_query(from),
            Message::Relay { dest, inner } => self.on_relay(from, dest, inner),
            Message::Register(_) | Message::PunchRequest(_) | Message::SupernodePing(_) => {
                // Version 2 takes these only sealed in a control session.
                self.stats.unauthenticated += 1;
            }
            // Federation: a link's handshake, then only what is sealed in it is believed.
            Message::FedInit(m) => self.on_fed_init(now, from, m, data),
            Message::FedResp(m) => self.on_fed_resp(now, from, m),
            Message::Data(h, _) if h.kind == DataKind::Federation => self.on_fed_data(now, h, data),
            Message::Fed(_) => self.stats.federation_unauthenticated += 1,
            Message::FedRelay {
                community,
                src,
                dest,
                inner,
            } => self.on_fed_relay(from, community, src, dest, inner),
            _ => self.stats.dropped_packets += 1,
        }
    }

    /// Liveness: a registered edge's ping gets a pong in its session.
    fn on_ping(&mut self, session: u32, nonce: u64) {
        let mut buf = Vec::new();
        self.stats.pings += 1;
        wire::SupernodePong {
            nonce,
            boot_id: self.cfg.boot_id,
            load_permille: (self.total_edges.saturating_mul(1000) / self.cfg.max_edges.max(1))
                .min(1000) as u16,
        }
        .encode(&mut buf);
        self.send_ctl(session, &buf);
    }

    fn nak(&mut self, from: SocketAddr, reg: &Register, reason: NakReason, session: u32) {
        self.stats.rejected_registrations += 1;
        self.events.push_back(SupernodeEvent::RegistrationRefused {
            community: reg.community,
            edge: reg.public_key,
            addr: from,
            reason,
        });
        let mut buf = Vec::new();
        RegisterNak {
            community: reg.community,
            public_key: reg.public_key,
            counter: reg.counter,
            reason,
        }
        .encode(&mut buf);
        self.send_ctl(session, &buf);
    }

    /// A registration, sealed in control session `session` whose key it names (checked by the caller).
    fn on_register(
        &mut self,
        now: Instant,
        from: SocketAddr,
        reg: Register,
        raw: &[u8],
        session: u32,
    ) {
        // Admission. A name the edge gives must be the community's: the id is derived from it.
        if let Some(n) = &reg.name {
            if CommunityId::from_name(n) != reg.community {
                self.stats.dropped_packets += 1;
                return;
            }
        }
        let name = reg
            .name
            .as_deref()
            .or_else(|| self.names.get(&reg.community).map(String::as_str));
        let verdict = match self.cfg.policy.admission(&reg.community, name) {
            Err(reason) => Err(reason),
            Ok(a) => {
                let signed = &raw[..raw.len() - ADMISSION_TAG_LEN];
                if a.admission_key()
                    .is_some_and(|k| !k.verify(signed, &reg.admission_tag))
                {
                    Err(NakReason::BadAdmissionProof)
                } else if !a.allows_key(&reg.public_key) {
                    Err(NakReason::KeyNotAllowed)
                } else {
                    Ok((a.key_restricted(), matches!(a, Admission::Pattern(_))))
                }
            }
        };
        // A refusal leaves an existing registration alone (it stays until it expires or a policy reload
        // revokes it in `set_policy`): a refresh that fails for a passing reason (a full pool) must not cut
        // an edge off.
        let (introduced_only, by_pattern) = match verdict {
            Ok(v) => v,
            Err(reason) => return self.nak(from, &reg, reason, session),
        };
        if by_pattern {
            if let Some(n) = &reg.name {
                self.names.insert(reg.community, n.clone());
            }
        }
        let existing = self
            .communities
            .get(&reg.community)
            .and_then(|c| c.edges.get(&reg.public_key));
        if let Some(e) = existing {
            if reg.counter <= e.counter {
                // A replay (or a reordered older registration): ignore it.
                self.stats.dropped_packets += 1;
                return;
            }
        } else {
            if self.total_edges >= self.cfg.max_edges
                || (!self.communities.contains_key(&reg.community)
                    && self.communities.len() >= self.cfg.max_communities)
            {
                return self.nak(from, &reg, NakReason::NoCapacity, session);
            }
            if !self.joins.allow(reg.community, now) {
                // Introductions cost in proportion to the community: new edges join at a pace.
                return self.nak(from, &reg, NakReason::Busy, session);
            }
        }
        let ip = if reg.wants_ip {
            // Leases outlive restarts, so they count wall-clock seconds.
            let wall = self.cfg.wall_clock_us
                + now.saturating_duration_since(self.start).as_micros() as u64;
            match self
                .leases
                .lease(reg.community, reg.public_key, wall / 1_000_000)
            {
                Some(ip) => Some(ip),
                None => return self.nak(from, &reg, NakReason::PoolExhausted, session),
            }
        } else {
            reg.static_ip
        };
        let community = self.communities.entry(reg.community).or_default();
        let old = community.edges.get(&reg.public_key);
        let is_new = old.is_none();
        let moved = old.is_some_and(|e| e.addr != from || e.local_addrs != reg.local_addrs);
        let mut old_session = None;
        let old_full_list = old.and_then(|e| e.last_full_list);
        if let Some(old) = old {
            if old.addr != from
                && self.by_addr.get(&old.addr) == Some(&(reg.community, reg.public_key))
            {
                self.by_addr.remove(&old.addr);
            }
            old_session = (old.session != session).then_some(old.session);
        } else {
            self.total_edges += 1;
        }
        let record = EdgeRecord {
            community: reg.community,
            key: reg.public_key,
            addr: from,
            local_addrs: reg.local_addrs.clone(),
            mac: reg.mac,
            ip,
            description: reg.description.clone(),
            last_seen: now,
            counter: reg.counter,
            session,
            last_full_list: old_full_list,
        };
        community
            .by_tag
            .insert(reg.public_key.tag(), reg.public_key);
        community.edges.insert(reg.public_key, record);
        if let Some(s) = self.ctl.sessions.get_mut(&session) {
            s.community = Some(reg.community);
        }
        if let Some(old) = old_session {
            // The edge did a new handshake: its previous session is done.
            self.ctl.remove(old);
        }
        self.bind_addr(reg.community, reg.public_key, from);
        self.stats.registrations += 1;
        self.last_registration = Some(now);
        let mut ack = Vec::new();
        RegisterAck {
            community: reg.community,
            public_key: reg.public_key,
            counter: reg.counter,
            observed: from,
            assigned_ip: if reg.wants_ip { ip } else { None },
            lifetime_secs: self.cfg.edge_expiry.as_secs().min(u16::MAX as u64) as u16,
            boot_id: self.cfg.boot_id,
            introduced_only,
        }
        .encode(&mut ack);
        self.send_ctl(session, &ack);
        if is_new || moved {
            self.events.push_back(SupernodeEvent::EdgeRegistered {
                community: reg.community,
                edge: reg.public_key,
                addr: from,
                moved,
            });
            // Introduce the newcomer and everyone else to each other, at the same moment: both sides start
            // handshaking and probing together, which is what opens both NATs.
            self.introduce_all(reg.community, reg.public_key, true);
            if let Some(e) = self
                .communities
                .get(&reg.community)
                .and_then(|c| c.edges.get(&reg.public_key))
                .cloned()
            {
                self.announce_edge(now, &e, true);
            }
        } else if reg.wants_peers {
            let due = self
                .communities
                .get_mut(&reg.community)
                .and_then(|c| c.edges.get_mut(&reg.public_key))
                .is_some_and(|e| {
                    let due = e.last_full_list.is_none_or(|t| {
                        now.saturating_duration_since(t) >= pacing::FULL_LIST_INTERVAL
                    });
                    if due {
                        e.last_full_list = Some(now);
                    }
                    due
                });
            if due {
                self.introduce_all(reg.community, reg.public_key, false);
            }
        }
    }

    /// Notes that `from` is where the edge `key` of `community` now is (only ever on an authentic packet of
    /// its session).
    fn bind_addr(&mut self, community: CommunityId, key: PublicKey, from: SocketAddr) {
        if let Some((c, k)) = self.by_addr.insert(from, (community, key)) {
            if (c, k) != (community, key) {
                // Another edge held this address (a NAT reused the mapping): it has moved or gone.
                if let Some(other) = self
                    .communities
                    .get_mut(&c)
                    .and_then(|c| c.edges.get_mut(&k))
                {
                    other.addr = SocketAddr::from(([0, 0, 0, 0], 0));
                }
            }
        }
    }

    /// Sends `key` peer info about every other edge of its community; when `mutual`, also tells every other
    /// edge about `key`.
    fn introduce_all(&mut self, community: CommunityId, key: PublicKey, mutual: bool) {
        let Some(c) = self.communities.get(&community) else {
            return;
        };
        let Some(me) = c.edges.get(&key) else {
            return;
        };
        let mut out = Vec::new();
        for other in c.edges.values() {
            if other.key == key || other.addr.port() == 0 {
                continue;
            }
            out.push((me.session, peer_info(other, mutual)));
            if mutual {
                out.push((other.session, peer_info(me, true)));
            }
        }
        // Edges registered with other supernodes of the federation (they hear of this one from there).
        for mut info in self.remote_edges(community, key) {
            info.punch = mutual;
            out.push((me.session, info));
        }
        let mut buf = Vec::new();
        for (session, info) in out {
            buf.clear();
            info.encode(&mut buf);
            self.send_ctl(session, &buf);
        }
    }

    fn on_punch_request(&mut self, _now: Instant, from: SocketAddr, req: wire::PunchRequest) {
        if self.by_addr.get(&from) != Some(&(req.community, req.from)) {
            self.stats.dropped_packets += 1;
            return;
        }
        let Some(c) = self.communities.get(&req.community) else {
            return;
        };
        let (Some(a), Some(b)) = (c.edges.get(&req.from), c.edges.get(&req.target)) else {
            if !self.punch_remote(from, req.community, req.from, req.target) {
                self.stats.dropped_packets += 1;
            }
            return;
        };
        let msgs = [
            (a.session, peer_info(b, true)),
            (b.session, peer_info(a, true)),
        ];
        self.stats.punches += 1;
        for (session, info) in msgs {
            let mut buf = Vec::new();
            info.encode(&mut buf);
            self.send_ctl(session, &buf);
        }
    }

    fn on_relay(&mut self, from: SocketAddr, dest: PeerTag, inner: &[u8]) {
        let Some(&(community, src)) = self.by_addr.get(&from) else {
            // Not registered (perhaps we restarted): say so, so the edge registers again at once.
            self.stats.dropped_packets += 1;
            let mut buf = Vec::new();
            wire::encode_unknown_sender(&mut buf);
            self.push(from, buf);
            return;
        };
        let Some(to) = self
            .communities
            .get(&community)
            .and_then(|c| c.by_tag.get(&dest).and_then(|k| c.edges.get(k)))
            .map(|e| e.addr)
        else {
            if !self.relay_remote(community, src, dest, inner) {
                self.stats.dropped_packets += 1;
            }
            return;
        };
        if to.port() == 0 || to == from {
            self.stats.dropped_packets += 1;
            return;
        }
        // Built in place in the output queue: relaying allocates nothing per packet.
        self.transmits.push_with(to, |buf| {
            wire::encode_relay_header(MsgType::Relayed, src.tag(), buf);
            buf.extend_from_slice(inner);
        });
        self.stats.relayed_packets += 1;
        self.stats.relayed_bytes += inner.len() as u64;
    }

    /// Expires edges that stopped refreshing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + Duration::from_secs(1);
        let expiry = self.cfg.edge_expiry;
        let mut gone = Vec::new();
        for (id, c) in &mut self.communities {
            c.edges.retain(|k, e| {
                let keep = now.saturating_duration_since(e.last_seen) < expiry;
                if !keep {
                    gone.push((*id, *k, e.addr));
                }
                keep
            });
        }
        for (community, edge, addr) in gone {
            self.announce_gone(now, community, edge);
            self.total_edges -= 1;
            if self.by_addr.get(&addr) == Some(&(community, edge)) {
                self.by_addr.remove(&addr);
            }
            if let Some(c) = self.communities.get_mut(&community) {
                c.by_tag.remove(&edge.tag());
            }
            self.events
                .push_back(SupernodeEvent::EdgeExpired { community, edge });
        }
        self.communities.retain(|_, c| !c.edges.is_empty());
        let communities = &self.communities;
        self.names.retain(|id, _| communities.contains_key(id));
        self.expire_sessions(now);
        let communities = &self.communities;
        self.joins.retain(|c| communities.contains_key(c), now);
        self.federation_timers(now);
    }
}

fn peer_info(e: &EdgeRecord, punch: bool) -> PeerInfo {
    PeerInfo {
        community: e.community,
        punch,
        public_key: e.key,
        mac: e.mac,
        ip: e.ip,
        observed: e.addr,
        local_addrs: e.local_addrs.clone(),
        description: e.description.clone(),
    }
}
