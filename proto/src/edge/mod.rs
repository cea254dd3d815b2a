//! The edge state machine: one port of the distributed Ethernet switch.
//!
//! Sans-IO in the manner of quinn-proto: the driver feeds it datagrams ([`Edge::handle_udp`]), frames from the
//! TAP device ([`Edge::handle_tap_frame`]) and timer expiries ([`Edge::handle_timeout`]), always with the
//! current time, then drains what it produced: datagrams to send ([`Edge::poll_transmit`]), frames for the
//! TAP device ([`Edge::poll_tap`]) and events worth a log line ([`Edge::poll_event`]). It never reads a
//! clock, never touches a socket and draws randomness only from the seed it was given, so the same inputs
//! give the same outputs: that is what lets `tests/sim/` run whole meshes deterministically.
//!
//! How a peer comes up: the supernode sends peer info to both edges of a pair at once; both start a Noise
//! handshake through the supernode's relay (always reachable, so the first packets flow within one relayed
//! round trip), and once a session exists both probe every direct candidate with authenticated probes. The
//! first probe reply switches the peer to the direct path; a direct path that goes silent falls back to
//! the relay, and probing resumes with back-off, coordinated through the supernode at its slowest pace.

mod config;
mod mac_table;
mod peer;
#[cfg(test)]
mod policy_tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

pub use config::{AddressMode, EdgeConfig, Limits, Timers};
pub use mac_table::MacTable;
pub use peer::{Path, PeerCounters, PeerState};

use crate::handshake::{self, Initiator};
use crate::keys::{PeerTag, PublicKey};
use crate::queue::PacketQueue;
use crate::session::{OpenError, Session};
use crate::wire::{
    self, DataKind, Ipv4Net, MacAddr, Message, MsgType, NakReason, Register, DATA_HEADER_LEN,
    RELAY_HEADER_LEN, TAG_LEN,
};
use crate::Transmit;
use peer::{Peer, Pending};

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
    /// A supernode said the peer was cut off from the community (its key is no longer allowed): its
    /// sessions are dropped and it is forgotten.
    PeerRevoked {
        /// The peer.
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
    /// Datagrams that did not decode.
    pub dropped_malformed: u64,
    /// Data packets that failed authentication.
    pub dropped_auth: u64,
    /// Data packets or initiations that were replays.
    pub dropped_replay: u64,
    /// Data packets or responses for a session we do not have.
    pub dropped_unknown_session: u64,
    /// Control messages not from one of our supernodes, or about another community.
    pub dropped_not_from_supernode: u64,
    /// Frames dropped: no session and the per-peer queue full, or no route at all.
    pub dropped_no_route: u64,
    /// Peer info or handshakes about a new peer, turned away because the peer table is full.
    pub dropped_no_capacity: u64,
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
}

struct SupernodeLink {
    addr: SocketAddr,
    registered: bool,
    refused: bool,
    last_ack: Option<Instant>,
    /// Counter and send time of the last registration, to match its acknowledgement for the RTT.
    last_sent: Option<(u64, Instant)>,
    rtt: Option<Duration>,
    next_register: Instant,
    retry: Duration,
    boot_id: Option<u64>,
    /// Ask for the full peer list on the next registration.
    want_peers: bool,
    last_unknown_sender: Option<Instant>,
    /// Last acknowledgement or pong.
    last_heard: Option<Instant>,
    next_ping: Instant,
    /// Nonce and send time of the last ping.
    ping: Option<(u64, Instant)>,
    /// How full it said it is (per thousand), from its last pong.
    load_permille: u16,
    /// Why it refused our last registration.
    refusal: Option<NakReason>,
    /// It asked for the community name (NAK `NameRequired`): include it in every registration to it.
    send_name: bool,
    /// What its last acknowledgement said: answer handshakes only from introduced peers. None before
    /// the first acknowledgement.
    introduced_only: Option<bool>,
}

/// A handshake initiation from a peer no supernode has introduced yet, held while we wait for the peer
/// info (or, before the first acknowledgement, to learn whether the community is key-restricted).
struct HeldInit {
    key: PublicKey,
    path: Path,
    tag: Option<PeerTag>,
    sender_index: u32,
    noise: Vec<u8>,
    at: Instant,
}

/// At most this many initiations are held, each at most [`HOLD_INIT`].
const MAX_HELD_INITS: usize = 16;
const HOLD_INIT: Duration = Duration::from_secs(5);

/// The edge state machine. See the module documentation.
pub struct Edge {
    cfg: EdgeConfig,
    rng: ChaCha20Rng,
    start: Instant,
    wall_start_us: u64,
    last_stamp: u64,
    supernodes: Vec<SupernodeLink>,
    /// The supernode in use for relaying and punch requests (we stay registered with all of them).
    active: Option<usize>,
    assigned_ip: Option<Ipv4Net>,
    observed: Option<SocketAddr>,
    /// Ordered, because it is iterated (timers, floods) and the order decides which peer gets which random
    /// draw and in which order datagrams leave: a `HashMap` made the outputs depend on the per-process hash
    /// seed, so the same inputs did not give the same outputs (see the module documentation).
    peers: BTreeMap<PublicKey, Peer>,
    by_tag: HashMap<PeerTag, PublicKey>,
    by_index: HashMap<u32, PublicKey>,
    macs: MacTable,
    next_mac_sweep: Instant,
    transmits: PacketQueue<SocketAddr>,
    tap_out: PacketQueue<()>,
    events: VecDeque<Event>,
    stats: EdgeStats,
    held_inits: VecDeque<HeldInit>,
    /// When we last asked the supernodes for every peer because an unintroduced peer knocked.
    last_peer_request: Option<Instant>,
}

/// Frames for the TAP device and datagrams waiting to be sent are bounded: a driver that stops draining
/// them loses the oldest, it does not grow without bound.
const MAX_OUTPUT_QUEUE: usize = 4096;

impl Edge {
    /// A new edge. `wall_clock_us` is the current Unix time in microseconds: registration counters and
    /// handshake timestamps build on it so they keep growing across restarts. `seed` feeds every random
    /// choice (session indices, ephemeral keys, probe nonces).
    pub fn new(cfg: EdgeConfig, now: Instant, wall_clock_us: u64, seed: [u8; 32]) -> Edge {
        let supernodes = cfg
            .supernodes
            .iter()
            .map(|&addr| SupernodeLink {
                addr,
                registered: false,
                refused: false,
                last_ack: None,
                last_sent: None,
                rtt: None,
                next_register: now,
                retry: cfg.timers.register_retry,
                boot_id: None,
                want_peers: true,
                last_unknown_sender: None,
                last_heard: None,
                next_ping: now,
                ping: None,
                load_permille: 0,
                refusal: None,
                send_name: false,
                introduced_only: None,
            })
            .collect();
        Edge {
            rng: ChaCha20Rng::from_seed(seed),
            start: now,
            wall_start_us: wall_clock_us,
            last_stamp: 0,
            supernodes,
            active: None,
            assigned_ip: None,
            observed: None,
            peers: BTreeMap::new(),
            by_tag: HashMap::new(),
            by_index: HashMap::new(),
            macs: MacTable::default(),
            next_mac_sweep: now + Duration::from_secs(10),
            transmits: PacketQueue::new(MAX_OUTPUT_QUEUE),
            tap_out: PacketQueue::new(MAX_OUTPUT_QUEUE),
            events: VecDeque::new(),
            stats: EdgeStats::default(),
            held_inits: VecDeque::new(),
            last_peer_request: None,
            cfg,
        }
    }

    // ----- outputs -----

    /// The next datagram to send, as an owned copy. Simple, for tests and simulators; the daemon reads
    /// the queue in place with [`Edge::transmits`] instead.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits
            .pop_front()
            .map(|(dest, payload)| Transmit { dest, payload })
    }

    /// The datagrams to send, oldest first, back to back in one buffer: runs to one destination are
    /// contiguous, ready for one GSO send. Call [`Edge::clear_transmits`] once they are sent.
    pub fn transmits(&self) -> &PacketQueue<SocketAddr> {
        &self.transmits
    }

    /// Forgets the datagrams [`Edge::transmits`] showed (they were sent), keeping the buffer.
    pub fn clear_transmits(&mut self) {
        self.transmits.clear();
    }

    /// The next frame to write to the TAP device, as an owned copy (for tests and simulators; see
    /// [`Edge::tap_frames`]).
    pub fn poll_tap(&mut self) -> Option<Vec<u8>> {
        self.tap_out.pop_front().map(|(_, f)| f)
    }

    /// The frames for the TAP device, oldest first, back to back in one buffer. Call
    /// [`Edge::clear_tap_frames`] once they are written.
    pub fn tap_frames(&self) -> &PacketQueue<()> {
        &self.tap_out
    }

    /// Forgets the frames [`Edge::tap_frames`] showed, keeping the buffer.
    pub fn clear_tap_frames(&mut self) {
        self.tap_out.clear();
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Edge::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Instant {
        let t = &self.cfg.timers;
        let mut next = self.next_mac_sweep;
        for sn in &self.supernodes {
            next = next.min(sn.next_register);
            if let (true, Some(heard)) = (sn.registered, sn.last_heard) {
                next = next.min(heard + t.supernode_dead).min(sn.next_ping);
            }
        }
        for p in self.peers.values() {
            next = next.min(self.peer_deadline(p));
        }
        next
    }

    // ----- status -----

    /// Edge-wide counters.
    pub fn stats(&self) -> EdgeStats {
        self.stats
    }

    /// Our identity.
    pub fn public_key(&self) -> PublicKey {
        self.cfg.identity.public
    }

    /// The configuration in use.
    pub fn config(&self) -> &EdgeConfig {
        &self.cfg
    }

    /// The virtual address: the static one, or the one the supernode assigned.
    pub fn address(&self) -> Option<Ipv4Net> {
        match self.cfg.address {
            AddressMode::Static(n) => Some(n),
            AddressMode::Auto => self.assigned_ip,
            AddressMode::None => None,
        }
    }

    /// Our public address as a supernode last saw it.
    pub fn observed_address(&self) -> Option<SocketAddr> {
        self.observed
    }

    /// Supernode registration states.
    pub fn supernodes(&self) -> Vec<SupernodeStatus> {
        self.supernodes
            .iter()
            .enumerate()
            .map(|(i, s)| SupernodeStatus {
                addr: s.addr,
                registered: s.registered,
                last_ack: s.last_heard.or(s.last_ack),
                refused: s.refused,
                refusal: s.refusal,
                rtt: s.rtt,
                active: self.active == Some(i),
            })
            .collect()
    }

    /// When any peer last sent us an authentic packet.
    pub fn last_peer_rx(&self) -> Option<Instant> {
        self.peers.values().filter_map(|p| p.last_rx).max()
    }

    /// Whether any supernode holds a current registration.
    pub fn is_registered(&self) -> bool {
        self.supernodes.iter().any(|s| s.registered)
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
                learned_macs: self.macs.macs_of(&p.key),
                ip: p.ip,
                state: p.state(),
                path: p.path,
                why_not_direct: self.why_not_direct(p),
                rtt: p.rtt,
                last_seen: p.last_rx,
                counters: p.counters,
            })
            .collect();
        v.sort_by_key(|p| p.public_key);
        v
    }

    fn why_not_direct(&self, p: &Peer) -> Option<&'static str> {
        if p.path.is_direct() {
            None
        } else if !self.cfg.allow_p2p {
            Some("direct paths disabled (allow_p2p=false)")
        } else if p.current.is_none() {
            Some("no session yet")
        } else if p.candidates.is_empty() {
            Some("no address known for the peer")
        } else {
            Some("no probe answered yet (NAT on one side does not allow a direct path)")
        }
    }

    // ----- time -----

    /// A value that grows on every call and across restarts (wall-clock microseconds at least).
    fn stamp(&mut self, now: Instant) -> u64 {
        let t = self.wall_start_us + now.saturating_duration_since(self.start).as_micros() as u64;
        self.last_stamp = t.max(self.last_stamp + 1);
        self.last_stamp
    }

    fn seed(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        s
    }

    fn new_index(&mut self) -> u32 {
        loop {
            let i = self.rng.next_u32();
            if i != 0 && !self.by_index.contains_key(&i) {
                return i;
            }
        }
    }

    // ----- sending -----

    /// Queues a control datagram (registration, punch request): not on the data path, built in its own
    /// buffer.
    fn push_transmit(&mut self, dest: SocketAddr, payload: Vec<u8>) {
        self.transmits.push(dest, &payload);
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += payload.len() as u64;
    }

    /// The supernode to relay through: the active one, else the first configured (to reach anyone at all
    /// before a registration is acknowledged).
    fn relay_supernode(&self) -> Option<SocketAddr> {
        self.active
            .and_then(|i| self.supernodes.get(i))
            .or(self.supernodes.first())
            .map(|s| s.addr)
    }

    /// Picks the supernode in use: keeps the current one while it is registered, unless another is much
    /// better (less than half its cost, and 5 ms less: a flapping choice would move relayed peers back
    /// and forth); else the registered one of lowest cost. The cost is the RTT plus 1 ms for every 10 % of
    /// its capacity in use, so that a nearly full supernode is used only when it is much closer. Relayed
    /// peers follow at once.
    fn choose_active(&mut self) {
        let rtt = |s: &SupernodeLink| {
            s.rtt.unwrap_or(Duration::from_secs(10))
                + Duration::from_micros(10 * u64::from(s.load_permille))
        };
        let best = (0..self.supernodes.len())
            .filter(|&i| self.supernodes[i].registered)
            .min_by_key(|&i| (rtt(&self.supernodes[i]), i));
        let keep = self.active.filter(|&i| {
            let cur = &self.supernodes[i];
            cur.registered
                && best.is_none_or(|b| {
                    let b = rtt(&self.supernodes[b]);
                    !(b * 2 < rtt(cur) && b + Duration::from_millis(5) < rtt(cur))
                })
        });
        let next = keep.or(best);
        if next == self.active || next.is_none() {
            return;
        }
        let from = self.active.map(|i| self.supernodes[i].addr);
        self.active = next;
        let to = self.supernodes[next.expect("checked")].addr;
        if from.is_some() {
            self.events.push_back(Event::SupernodeChanged { from, to });
        }
        let moved: Vec<PublicKey> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.path, Path::Relayed(_)))
            .map(|(k, _)| *k)
            .collect();
        for k in moved {
            let p = self.peers.get_mut(&k).expect("listed");
            p.path = Path::Relayed(to);
            self.events.push_back(Event::PathChanged {
                peer: k,
                path: Path::Relayed(to),
            });
        }
    }

    /// Where a packet on `path` goes: the peer itself, or the relaying supernode.
    fn path_dest(&self, path: Path) -> Option<SocketAddr> {
        match path {
            Path::Direct(a) => Some(a),
            Path::Relayed(sn) => Some(sn),
            Path::None => self.relay_supernode(),
        }
    }

    /// Queues an edge-to-edge packet for `peer` on `path`, built by `write` in place after the relay
    /// header when the path needs one.
    fn send_on_path(
        &mut self,
        path: Path,
        peer: &PublicKey,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        let Some(dest) = self.path_dest(path) else {
            return false;
        };
        let tag = peer.tag();
        let (len, _) = self.transmits.push_with(dest, |buf| {
            if !path.is_direct() {
                wire::encode_relay_header(MsgType::Relay, tag, buf);
            }
            write(buf);
        });
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
        true
    }

    /// The path for packets to `p` right now.
    fn path_for(&self, p: &Peer) -> Path {
        match p.path {
            Path::Direct(a) => Path::Direct(a),
            _ => match self.relay_supernode() {
                Some(sn) => Path::Relayed(sn),
                None => Path::None,
            },
        }
    }

    /// Seals `payload` on the peer's current session and sends it on `path` (the peer's path if None).
    fn send_data(
        &mut self,
        key: &PublicKey,
        kind: DataKind,
        payload: &[u8],
        path: Option<Path>,
        now: Instant,
    ) -> bool {
        self.send_data_parts(key, kind, [payload, &[]], path, now)
    }

    /// [`Edge::send_data`] of a payload given in two parts (a rebuilt header and a payload slice of a larger
    /// buffer, as segmentation offload hands frames over), copied once, straight into the output queue,
    /// and sealed there in place.
    fn send_data_parts(
        &mut self,
        key: &PublicKey,
        kind: DataKind,
        parts: [&[u8]; 2],
        path: Option<Path>,
        now: Instant,
    ) -> bool {
        let Some(p) = self.peers.get(key) else {
            return false;
        };
        let path = path.unwrap_or_else(|| self.path_for(p));
        let Some(dest) = self.path_dest(path) else {
            return false;
        };
        let reject_time = self.cfg.timers.reject_after_time;
        let reject_msgs = self.cfg.limits.reject_after_messages;
        let p = self.peers.get_mut(key).expect("checked above");
        let Some(s) = p.current.as_mut() else {
            return false;
        };
        if now.saturating_duration_since(s.created) >= reject_time || s.sent() >= reject_msgs {
            return false;
        }
        let tag = key.tag();
        let (len, _) = self.transmits.push_with(dest, |buf| {
            if !path.is_direct() {
                wire::encode_relay_header(MsgType::Relay, tag, buf);
            }
            let start = buf.len();
            let [head, tail] = parts;
            buf.reserve(DATA_HEADER_LEN + head.len() + tail.len() + TAG_LEN);
            buf.resize(start + DATA_HEADER_LEN, 0);
            buf.extend_from_slice(head);
            buf.extend_from_slice(tail);
            s.seal_at(kind, buf, start);
        });
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
        p.last_tx = now;
        p.counters.tx_packets += 1;
        if kind == DataKind::Frame {
            let n = (parts[0].len() + parts[1].len()) as u64;
            p.counters.tx_bytes += n;
            if path.is_direct() {
                self.stats.tx_direct_frames += 1;
                self.stats.tx_direct_bytes += n;
            } else {
                self.stats.tx_relayed_frames += 1;
                self.stats.tx_relayed_bytes += n;
            }
        }
        true
    }

    /// Sends an Ethernet frame to a peer, or queues it while a session is set up.
    fn send_frame(&mut self, key: &PublicKey, frame: [&[u8]; 2], now: Instant) {
        let sendable = self.peers.get(key).is_some_and(|p| p.current.is_some());
        if sendable && self.send_data_parts(key, DataKind::Frame, frame, None, now) {
            self.maybe_rekey_on_send(key, now);
            return;
        }
        let cap = self.cfg.limits.max_queued_frames;
        let Some(p) = self.peers.get_mut(key) else {
            return;
        };
        if p.queued.len() >= cap {
            p.queued.pop_front();
            self.stats.dropped_no_route += 1;
        }
        p.queued.push_back(frame.concat());
        if p.pending.is_none() {
            self.initiate(key, now);
        }
    }

    fn maybe_rekey_on_send(&mut self, key: &PublicKey, now: Instant) {
        let limit = self.cfg.limits.rekey_after_messages;
        let due = self.peers.get(key).is_some_and(|p| {
            p.pending.is_none() && p.current.as_ref().is_some_and(|s| s.sent() >= limit)
        });
        if due {
            self.initiate(key, now);
        }
    }

    fn flush_queue(&mut self, key: &PublicKey, now: Instant) {
        let frames: Vec<Vec<u8>> = match self.peers.get_mut(key) {
            Some(p) => p.queued.drain(..).collect(),
            None => return,
        };
        for f in frames {
            self.send_data(key, DataKind::Frame, &f, None, now);
        }
    }

    // ----- handshakes -----

    /// Starts (or restarts) a handshake with `key` on its current path.
    fn initiate(&mut self, key: &PublicKey, now: Instant) {
        let Some(p) = self.peers.get(key) else {
            return;
        };
        let path = self.path_for(p);
        if path == Path::None {
            return;
        }
        let seed = self.seed();
        let ts = self.stamp(now);
        let local_index = self.new_index();
        let Ok((initiator, msg)) = Initiator::start(
            &self.cfg.identity,
            key,
            &self.cfg.community.edge_psk,
            ts,
            seed,
        ) else {
            return;
        };
        let p = self.peers.get_mut(key).expect("checked above");
        if let Some(old) = p.pending.take() {
            self.by_index.remove(&old.local_index);
        }
        p.pending = Some(Pending {
            initiator: Some(initiator),
            local_index,
            sent_at: now,
        });
        p.handshake_attempts += 1;
        p.last_tx = now;
        self.by_index.insert(local_index, *key);
        self.send_on_path(path, key, |buf| {
            wire::encode_handshake_init(local_index, &msg, buf)
        });
    }

    fn on_handshake_init(
        &mut self,
        path: Path,
        from_tag: Option<PeerTag>,
        msg: wire::HandshakeInit,
        now: Instant,
    ) {
        let seed = self.seed();
        let r = match handshake::respond(
            &self.cfg.identity,
            &self.cfg.community.edge_psk,
            msg.noise,
            seed,
        ) {
            Ok(r) => r,
            Err(_) => {
                self.stats.handshakes_rejected += 1;
                return;
            }
        };
        if r.remote == self.cfg.identity.public {
            self.stats.handshakes_rejected += 1;
            return;
        }
        if from_tag.is_some_and(|t| t != r.remote.tag()) {
            // The relay header claims another sender than the handshake proves.
            self.stats.handshakes_rejected += 1;
            return;
        }
        if self.introduced_only() && !self.peers.get(&r.remote).is_some_and(|p| p.introduced) {
            // A key-restricted community (or one we cannot tell yet): only peers a supernode introduced
            // may handshake, so a revoked edge that knows the secret and our address cannot. The peer
            // info usually arrives first; when the initiation overtakes it, hold the initiation a
            // moment rather than make the peer wait for its retry.
            self.hold_init(r.remote, path, from_tag, &msg, now);
            return;
        }
        if !self.ensure_peer(r.remote, now) {
            return;
        }
        let local_index = self.new_index();
        let p = self.peers.get_mut(&r.remote).expect("ensured");
        if r.timestamp <= p.last_init_timestamp {
            self.stats.dropped_replay += 1;
            return;
        }
        p.last_init_timestamp = r.timestamp;
        let session = Session::new(r.keys, local_index, msg.sender_index, false, now);
        if let Some(old) = p.next.replace(session) {
            self.by_index.remove(&old.local_index);
        }
        if let Path::Direct(a) = path {
            p.add_candidate(a);
        }
        self.by_index.insert(local_index, r.remote);
        self.send_on_path(path, &r.remote, |buf| {
            wire::encode_handshake_resp(local_index, msg.sender_index, &r.msg, buf)
        });
    }

    /// Whether only introduced peers may handshake with us: some supernode said the community is
    /// key-restricted, or none has acknowledged us yet (we cannot tell, so we hold initiations).
    fn introduced_only(&self) -> bool {
        let mut known = false;
        for s in &self.supernodes {
            match s.introduced_only {
                Some(true) => return true,
                Some(false) => known = true,
                None => {}
            }
        }
        !known
    }

    fn hold_init(
        &mut self,
        key: PublicKey,
        path: Path,
        tag: Option<PeerTag>,
        msg: &wire::HandshakeInit,
        now: Instant,
    ) {
        self.held_inits
            .retain(|h| h.key != key && now.saturating_duration_since(h.at) < HOLD_INIT);
        if self.held_inits.len() >= MAX_HELD_INITS {
            self.held_inits.pop_front();
            self.stats.handshakes_rejected += 1;
        }
        self.held_inits.push_back(HeldInit {
            key,
            path,
            tag,
            sender_index: msg.sender_index,
            noise: msg.noise.to_vec(),
            at: now,
        });
        // The peer info about it may have been lost (nothing would resend it): ask the supernodes we are
        // registered with for every peer now, at most once a second.
        if self
            .last_peer_request
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.last_peer_request = Some(now);
            for link in self.supernodes.iter_mut().filter(|l| l.registered) {
                link.want_peers = true;
                link.next_register = now;
            }
        }
    }

    /// Answers the held initiations that may now be answered (from `key`, or from anyone when the
    /// community turned out not to be restricted); forgets stale ones.
    fn release_held_inits(&mut self, key: Option<PublicKey>, now: Instant) {
        let open = !self.introduced_only();
        let mut ready = Vec::new();
        let mut keep = VecDeque::new();
        for h in self.held_inits.drain(..) {
            if now.saturating_duration_since(h.at) >= HOLD_INIT {
                self.stats.handshakes_rejected += 1;
            } else if open || Some(h.key) == key {
                ready.push(h);
            } else {
                keep.push_back(h);
            }
        }
        self.held_inits = keep;
        for h in ready {
            let msg = wire::HandshakeInit {
                sender_index: h.sender_index,
                noise: &h.noise,
            };
            self.on_handshake_init(h.path, h.tag, msg, now);
        }
    }

    /// Forgets a peer: its sessions, indices, learned MACs. Returns whether it was up.
    fn forget_peer(&mut self, key: &PublicKey) -> bool {
        let Some(p) = self.peers.remove(key) else {
            return false;
        };
        for i in p.indices() {
            self.by_index.remove(&i);
        }
        self.by_tag.remove(&key.tag());
        self.macs.forget_peer(key);
        self.held_inits.retain(|h| &h.key != key);
        p.up
    }

    fn on_handshake_resp(&mut self, path: Path, msg: wire::HandshakeResp, now: Instant) {
        let Some(&key) = self.by_index.get(&msg.receiver_index) else {
            self.stats.dropped_unknown_session += 1;
            return;
        };
        let Some(p) = self.peers.get_mut(&key) else {
            self.stats.dropped_unknown_session += 1;
            return;
        };
        if p.pending.as_ref().map(|x| x.local_index) != Some(msg.receiver_index) {
            self.stats.dropped_unknown_session += 1;
            return;
        }
        let Some(initiator) = p.pending.as_mut().and_then(|x| x.initiator.take()) else {
            // This attempt already failed; it waits for its retry timer.
            self.stats.dropped_unknown_session += 1;
            return;
        };
        let keys = match initiator.finish(msg.noise) {
            Ok(k) => k,
            Err(_) => {
                // Refused (wrong PSK or forged). The attempt stays pending without its Noise state until
                // the retry timer replaces it. Clearing it instead let the next frame from the TAP start
                // a new handshake at once: an edge with a wrong secret initiated one handshake per frame
                // per peer, with no back-off and no attempt limit, costing each peer a Noise response.
                self.stats.handshakes_rejected += 1;
                return;
            }
        };
        let pending = p.pending.take().expect("checked");
        let session = Session::new(keys, pending.local_index, msg.sender_index, true, now);
        self.install_session(&key, session, now);
        // Confirm the session to the responder at once: it does not send on it before it hears from us.
        let reply_path = match path {
            Path::Direct(a) => Path::Direct(a),
            _ => self.path_for(self.peers.get(&key).expect("installed")),
        };
        self.send_data(&key, DataKind::Keepalive, &[], Some(reply_path), now);
        if let Path::Direct(a) = path {
            self.start_probe_to(&key, a, now);
        }
    }

    /// Makes `session` the current one; the old current becomes previous (for packets in flight).
    fn install_session(&mut self, key: &PublicKey, session: Session, now: Instant) {
        let p = self.peers.get_mut(key).expect("caller checked");
        if let Some(old) = p.previous.take() {
            self.by_index.remove(&old.local_index);
        }
        p.previous = p.current.replace(session);
        p.handshake_attempts = 0;
        self.stats.handshakes_completed += 1;
        let was_up = p.up;
        p.up = true;
        if p.path == Path::None {
            if let Some(sn) = self.relay_supernode() {
                let p = self.peers.get_mut(key).expect("exists");
                p.path = Path::Relayed(sn);
            }
        }
        let p = self.peers.get(key).expect("exists");
        if !was_up {
            self.events.push_back(Event::PeerUp {
                peer: *key,
                description: p.description.clone(),
                path: p.path,
            });
        }
        self.flush_queue(key, now);
    }

    // ----- receiving -----

    /// Handles one datagram from the network. `data` may be modified (packets are opened in place).
    pub fn handle_udp(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += data.len() as u64;
        let from_supernode = self.supernodes.iter().position(|s| s.addr == from);
        let t = match wire::peek_type(data) {
            Ok(t) => t,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        match t {
            MsgType::HandshakeInit | MsgType::HandshakeResp | MsgType::Data => {
                self.on_edge_packet(now, Path::Direct(from), None, data)
            }
            MsgType::Relayed => {
                if from_supernode.is_none() {
                    self.stats.dropped_not_from_supernode += 1;
                    return;
                }
                if data.len() < RELAY_HEADER_LEN + wire::HEADER_LEN {
                    self.stats.dropped_malformed += 1;
                    return;
                }
                let mut tag = [0u8; 8];
                tag.copy_from_slice(&data[wire::HEADER_LEN..RELAY_HEADER_LEN]);
                let inner = &mut data[RELAY_HEADER_LEN..];
                self.on_edge_packet(now, Path::Relayed(from), Some(PeerTag(tag)), inner)
            }
            _ => {
                let Some(idx) = from_supernode else {
                    self.stats.dropped_not_from_supernode += 1;
                    return;
                };
                match wire::decode(data) {
                    Ok(m) => self.on_control(now, idx, m),
                    Err(_) => self.stats.dropped_malformed += 1,
                }
            }
        }
    }

    fn on_edge_packet(&mut self, now: Instant, path: Path, tag: Option<PeerTag>, data: &mut [u8]) {
        let msg = match wire::decode(data) {
            Ok(m) => m,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        match msg {
            Message::HandshakeInit(m) => self.on_handshake_init(path, tag, m, now),
            Message::HandshakeResp(m) => self.on_handshake_resp(path, m, now),
            Message::Data(h, _) => self.on_data(now, path, h, data),
            _ => self.stats.dropped_malformed += 1,
        }
    }

    fn on_data(&mut self, now: Instant, path: Path, h: wire::DataHeader, data: &mut [u8]) {
        let Some(&key) = self.by_index.get(&h.receiver_index) else {
            self.stats.dropped_unknown_session += 1;
            return;
        };
        let reject_time = self.cfg.timers.reject_after_time;
        let Some(p) = self.peers.get_mut(&key) else {
            self.stats.dropped_unknown_session += 1;
            return;
        };
        // Find the session by index; remember whether it is the unconfirmed `next`.
        let idx = h.receiver_index;
        let (session, is_next) = if p.current.as_ref().is_some_and(|s| s.local_index == idx) {
            (p.current.as_mut().expect("checked"), false)
        } else if p.previous.as_ref().is_some_and(|s| s.local_index == idx) {
            (p.previous.as_mut().expect("checked"), false)
        } else if p.next.as_ref().is_some_and(|s| s.local_index == idx) {
            (p.next.as_mut().expect("checked"), true)
        } else {
            self.stats.dropped_unknown_session += 1;
            return;
        };
        if now.saturating_duration_since(session.created) >= reject_time {
            self.stats.dropped_unknown_session += 1;
            return;
        }
        let plain_len = match session.open(&h, data) {
            Ok(n) => n,
            Err(OpenError::Replay) => {
                self.stats.dropped_replay += 1;
                return;
            }
            Err(OpenError::Auth) => {
                self.stats.dropped_auth += 1;
                return;
            }
        };
        p.last_rx = Some(now);
        p.counters.rx_packets += 1;
        // The peer uses the session we answered: it becomes current. Except when both sides initiated at
        // once (the supernode's punch makes them, and so do simultaneous rekey timers): then each side
        // holds two fresh sessions, and if each promoted the other's, each would send on the session the
        // other keeps only as `previous`, which the next install drops while the peer still sends on it
        // (frames lost at every later rekey, and two handshakes per rekey). A deterministic tie-break
        // makes both sides settle on one session: the side with the lower key keeps its own, newer
        // session and merely accepts packets on `next`; the other side promotes as usual.
        let keep_own = key > self.cfg.identity.public
            && p.current.as_ref().is_some_and(|c| {
                c.initiator && p.next.as_ref().is_some_and(|n| c.created >= n.created)
            });
        if is_next && !keep_own {
            let s = p.next.take().expect("checked");
            self.install_session(&key, s, now);
        }
        if let Path::Direct(from) = path {
            self.on_direct_rx(&key, from, now);
        }
        let payload = &data[DATA_HEADER_LEN..DATA_HEADER_LEN + plain_len];
        match h.kind {
            DataKind::Frame => {
                if payload.len() < 14 {
                    self.stats.dropped_malformed += 1;
                    return;
                }
                let mut src = [0u8; 6];
                src.copy_from_slice(&payload[6..12]);
                let cap = self.cfg.limits.max_macs;
                self.macs.learn(MacAddr(src), key, now, cap);
                if let Some(p) = self.peers.get_mut(&key) {
                    p.counters.rx_bytes += payload.len() as u64;
                }
                if path.is_direct() {
                    self.stats.rx_direct_frames += 1;
                    self.stats.rx_direct_bytes += payload.len() as u64;
                } else {
                    self.stats.rx_relayed_frames += 1;
                    self.stats.rx_relayed_bytes += payload.len() as u64;
                }
                self.tap_out.push((), payload);
            }
            DataKind::Keepalive => {}
            DataKind::Probe => {
                if let Path::Direct(from) = path {
                    let echo = payload.to_vec();
                    self.send_data(
                        &key,
                        DataKind::ProbeReply,
                        &echo,
                        Some(Path::Direct(from)),
                        now,
                    );
                }
            }
            DataKind::ProbeReply => {
                if let Path::Direct(from) = path {
                    self.on_probe_reply(&key, from, payload, now);
                }
            }
        }
    }

    /// An authentic packet arrived straight from the peer at `from`.
    fn on_direct_rx(&mut self, key: &PublicKey, from: SocketAddr, now: Instant) {
        let Some(p) = self.peers.get_mut(key) else {
            return;
        };
        p.last_direct_rx = Some(now);
        p.add_candidate(from);
        match p.path {
            Path::Direct(a) if a != from => {
                // The peer roamed (new address or NAT mapping): follow it.
                p.path = Path::Direct(from);
                self.events.push_back(Event::PathChanged {
                    peer: *key,
                    path: Path::Direct(from),
                });
            }
            Path::Direct(_) => {}
            _ => {
                // The peer reaches us directly; check that we reach it too, right away.
                if self.cfg.allow_p2p {
                    self.start_probe_to(key, from, now);
                }
            }
        }
    }

    fn start_probe_to(&mut self, key: &PublicKey, addr: SocketAddr, now: Instant) {
        let Some(p) = self.peers.get(key) else {
            return;
        };
        if p.path.is_direct() || !self.cfg.allow_p2p {
            return;
        }
        let nonce = p.probing.nonce;
        self.send_data(key, DataKind::Probe, &nonce, Some(Path::Direct(addr)), now);
    }

    fn on_probe_reply(&mut self, key: &PublicKey, from: SocketAddr, payload: &[u8], now: Instant) {
        let Some(p) = self.peers.get_mut(key) else {
            return;
        };
        if payload != p.probing.nonce {
            return; // a stale round's reply; the path is proven anyway by the next round
        }
        p.rtt = Some(now.saturating_duration_since(p.probing.sent_at));
        if p.path != Path::Direct(from) && !p.path.is_direct() {
            p.path = Path::Direct(from);
            p.last_direct_rx = Some(now);
            self.events.push_back(Event::PathChanged {
                peer: *key,
                path: Path::Direct(from),
            });
        }
    }

    fn ensure_peer(&mut self, key: PublicKey, now: Instant) -> bool {
        if self.peers.contains_key(&key) {
            return true;
        }
        if self.peers.len() >= self.cfg.limits.max_peers {
            self.stats.dropped_no_capacity += 1;
            return false;
        }
        let mut p = Peer::new(key, now, self.cfg.timers.probe_first);
        self.rng.fill_bytes(&mut p.probing.nonce);
        self.peers.insert(key, p);
        self.by_tag.insert(key.tag(), key);
        true
    }

    // ----- control messages from supernodes -----

    fn on_control(&mut self, now: Instant, sn: usize, msg: Message) {
        let own = self.cfg.identity.public;
        let community = self.cfg.community.id;
        match msg {
            Message::RegisterAck(ack) => {
                if ack.community != community || ack.public_key != own {
                    self.stats.dropped_not_from_supernode += 1;
                    return;
                }
                let interval = self.cfg.timers.register_interval;
                let retry = self.cfg.timers.register_retry;
                let link = &mut self.supernodes[sn];
                let addr = link.addr;
                let was = link.registered;
                let restarted = link.boot_id.is_some_and(|b| b != ack.boot_id);
                link.registered = true;
                link.refused = false;
                link.refusal = None;
                link.introduced_only = Some(ack.introduced_only);
                link.last_ack = Some(now);
                link.last_heard = Some(now);
                if !was {
                    link.next_ping = now + self.cfg.timers.supernode_ping;
                }
                if let Some((c, sent)) = link.last_sent {
                    if c == ack.counter {
                        link.rtt = Some(now.saturating_duration_since(sent));
                    }
                }
                link.next_register = now + interval;
                link.retry = retry;
                link.boot_id = Some(ack.boot_id);
                link.want_peers = false;
                if restarted {
                    self.events
                        .push_back(Event::SupernodeRestarted { supernode: addr });
                }
                if !was || self.observed != Some(ack.observed) {
                    self.events.push_back(Event::Registered {
                        supernode: addr,
                        observed: ack.observed,
                    });
                }
                self.observed = Some(ack.observed);
                self.choose_active();
                if self.cfg.address == AddressMode::Auto {
                    if let Some(ip) = ack.assigned_ip {
                        if self.assigned_ip != Some(ip) {
                            self.assigned_ip = Some(ip);
                            self.events.push_back(Event::AddressAssigned(ip));
                        }
                    }
                }
                // Peers that had no path because no supernode was reachable can now use the relay.
                let keys: Vec<PublicKey> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.current.is_none() && p.pending.is_none())
                    .map(|(k, _)| *k)
                    .collect();
                for k in keys {
                    self.initiate(&k, now);
                }
                if !self.held_inits.is_empty() {
                    self.release_held_inits(None, now);
                }
            }
            Message::RegisterNak(nak) => {
                if nak.community != community || nak.public_key != own {
                    self.stats.dropped_not_from_supernode += 1;
                    return;
                }
                let link = &mut self.supernodes[sn];
                if nak.reason == NakReason::NameRequired && !link.send_name {
                    // It admits communities by name pattern: tell it the name, once, right away.
                    link.send_name = true;
                    link.next_register = now;
                    return;
                }
                link.registered = false;
                link.refused = true;
                link.refusal = Some(nak.reason);
                // Refused: try again only slowly, the operator has to fix something first (re-adding
                // a removed key lets the edge back in at its next attempt).
                link.next_register = now + self.cfg.timers.register_interval;
                self.events.push_back(Event::RegistrationRefused {
                    supernode: link.addr,
                    reason: nak.reason,
                });
                if self.active == Some(sn) {
                    self.active = None;
                    self.choose_active();
                }
                // Cut off (our key or our community is no longer admitted) and no other supernode
                // admits us: stop the data plane. Peers were told to forget us; forget them too, so
                // nothing more is sent until a supernode admits us and introduces us again.
                let cut_off = matches!(
                    nak.reason,
                    NakReason::KeyNotAllowed | NakReason::CommunityNotAllowed
                );
                if cut_off && !self.is_registered() {
                    let keys: Vec<PublicKey> = self.peers.keys().copied().collect();
                    for k in keys {
                        if self.forget_peer(&k) {
                            self.events.push_back(Event::PeerGone { peer: k });
                        }
                    }
                    self.held_inits.clear();
                }
            }
            Message::PeerRevoked(rv) => {
                if rv.community != community {
                    self.stats.dropped_not_from_supernode += 1;
                    return;
                }
                if rv.public_key != own && self.peers.contains_key(&rv.public_key) {
                    self.forget_peer(&rv.public_key);
                    self.events.push_back(Event::PeerRevoked {
                        peer: rv.public_key,
                    });
                }
                self.held_inits.retain(|h| h.key != rv.public_key);
            }
            Message::PeerInfo(info) => {
                if info.community != community {
                    self.stats.dropped_not_from_supernode += 1;
                    return;
                }
                if info.public_key == own || !self.ensure_peer(info.public_key, now) {
                    return;
                }
                let first = self.cfg.timers.probe_first;
                let allow_p2p = self.cfg.allow_p2p;
                let p = self.peers.get_mut(&info.public_key).expect("ensured");
                p.introduced = true;
                p.mac = Some(info.mac);
                p.ip = info.ip;
                p.description = info.description;
                p.add_candidate(info.observed);
                for a in info.local_addrs {
                    p.add_candidate(a);
                }
                if info.punch && allow_p2p && !p.path.is_direct() {
                    p.restart_probing(now, first);
                }
                // A punch about a peer we reach directly at another address: it moved (its NAT changed
                // its public address) and the supernode asks both sides to open their NATs towards each
                // other now. Probe the new address; the first authentic packet from there moves the path
                // (`on_direct_rx`). Ignoring the punch because the path "is direct" kept the dead path
                // until `direct_timeout` when our own NAT filters by remote address: 21 s of lost frames.
                let roamed = match p.path {
                    Path::Direct(a) => {
                        info.punch && allow_p2p && a != info.observed && p.current.is_some()
                    }
                    _ => false,
                };
                let nonce = p.probing.nonce;
                if roamed {
                    let to = Path::Direct(info.observed);
                    self.send_data(&info.public_key, DataKind::Probe, &nonce, Some(to), now);
                }
                if self.held_inits.iter().any(|h| h.key == info.public_key) {
                    self.release_held_inits(Some(info.public_key), now);
                }
                let Some(p) = self.peers.get(&info.public_key) else {
                    return;
                };
                if p.current.is_none() && p.pending.is_none() {
                    self.initiate(&info.public_key, now);
                }
            }
            Message::SupernodePong(pong) => {
                let link = &mut self.supernodes[sn];
                let Some((nonce, sent)) = link.ping else {
                    self.stats.dropped_not_from_supernode += 1;
                    return;
                };
                if pong.nonce != nonce {
                    self.stats.dropped_not_from_supernode += 1;
                    return;
                }
                link.ping = None;
                link.last_heard = Some(now);
                link.rtt = Some(now.saturating_duration_since(sent));
                link.load_permille = pong.load_permille;
                if link.boot_id.is_some_and(|b| b != pong.boot_id) {
                    // Restarted (and it already has our registration again from someone? no: from an
                    // address reuse); register now to be sure it has everything.
                    link.next_register = now;
                    link.want_peers = true;
                }
                self.choose_active();
            }
            Message::UnknownSender => {
                // The supernode lost our registration (it restarted): register again now, at most once a second.
                let link = &mut self.supernodes[sn];
                if link
                    .last_unknown_sender
                    .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
                {
                    link.last_unknown_sender = Some(now);
                    link.next_register = now;
                    link.want_peers = true;
                }
            }
            _ => self.stats.dropped_malformed += 1,
        }
    }

    fn send_register(&mut self, sn: usize, now: Instant) {
        let counter = self.stamp(now);
        let static_ip = match self.cfg.address {
            AddressMode::Static(n) => Some(n),
            _ => None,
        };
        let reg = Register {
            community: self.cfg.community.id,
            public_key: self.cfg.identity.public,
            counter,
            mac: self.cfg.mac,
            wants_ip: self.cfg.address == AddressMode::Auto,
            wants_peers: self.supernodes[sn].want_peers,
            static_ip,
            local_addrs: self.cfg.local_addrs.clone(),
            description: self.cfg.description.clone(),
            name: self.supernodes[sn]
                .send_name
                .then(|| self.cfg.community.name.clone()),
            admission_tag: [0; wire::ADMISSION_TAG_LEN],
        };
        let mut buf = Vec::with_capacity(160);
        reg.encode_unsigned(&mut buf);
        let tag = self.cfg.community.admission.tag(&buf);
        buf.extend_from_slice(&tag);
        let link = &mut self.supernodes[sn];
        link.last_sent = Some((counter, now));
        let addr = link.addr;
        self.push_transmit(addr, buf);
    }

    // ----- TAP -----

    /// Handles one Ethernet frame read from the TAP device.
    pub fn handle_tap_frame(&mut self, now: Instant, frame: &[u8]) {
        self.handle_tap_frame_parts(now, frame, &[]);
    }

    /// Handles one Ethernet frame given in two parts, `head` followed by `tail`: the form in which the
    /// driver splits a segmentation-offload read (a rebuilt header, then a slice of the large payload)
    /// without gathering each segment into a buffer first. The frame is copied once, into the sealed
    /// datagram.
    pub fn handle_tap_frame_parts(&mut self, now: Instant, head: &[u8], tail: &[u8]) {
        if head.len() + tail.len() < 14 {
            self.stats.dropped_malformed += 1;
            return;
        }
        let mut dst = [0u8; 6];
        for (i, b) in head.iter().chain(tail).take(6).enumerate() {
            dst[i] = *b;
        }
        let dst = MacAddr(dst);
        let parts = [head, tail];
        if !dst.is_group() {
            if let Some(peer) = self.macs.lookup(&dst, now, self.cfg.timers.mac_ageing) {
                self.send_frame(&peer, parts, now);
                return;
            }
        }
        // Broadcast, multicast and unknown unicast: flood to every peer, as a switch does.
        let keys: Vec<PublicKey> = self.peers.keys().copied().collect();
        if keys.is_empty() {
            self.stats.dropped_no_route += 1;
        }
        for k in keys {
            self.send_frame(&k, parts, now);
        }
    }

    // ----- timers -----

    fn peer_deadline(&self, p: &Peer) -> Instant {
        let t = &self.cfg.timers;
        let mut next = p.last_rx.unwrap_or(p.created) + t.peer_timeout;
        if let Some(pend) = &p.pending {
            next = next.min(pend.sent_at + self.handshake_backoff(p.handshake_attempts));
        }
        if let Some(s) = &p.current {
            next = next.min(p.last_tx + t.keepalive);
            // Only while no handshake is pending, exactly as `peer_timers` rekeys: once a rekey is under
            // way the rekey instant stays in the past, and reporting it would make `poll_timeout` return
            // a past instant until the response arrives (a driver sleeping until then would spin).
            if p.pending.is_none() {
                next = next.min(s.created + self.rekey_time(s));
            }
            next = next.min(s.created + t.reject_after_time);
            if self.cfg.allow_p2p && !p.path.is_direct() && !p.candidates.is_empty() {
                next = next.min(p.probing.next_at);
            }
        }
        for s in [&p.previous, &p.next].into_iter().flatten() {
            next = next.min(s.created + t.reject_after_time);
        }
        if p.path.is_direct() {
            next = next.min(p.last_direct_rx.unwrap_or(p.created) + t.direct_timeout);
        }
        next
    }

    /// The initiator rekeys on time; the responder does too, a little later, in case the initiator is gone
    /// quiet about it (both may then handshake at once, which is harmless: the newer session wins).
    fn rekey_time(&self, s: &Session) -> Duration {
        let t = self.cfg.timers.rekey_after_time;
        if s.initiator {
            t
        } else {
            t + self.cfg.timers.keepalive * 2
        }
    }

    fn handshake_backoff(&self, attempts: u32) -> Duration {
        let base = self.cfg.timers.handshake_retry;
        base * (1u32 << attempts.saturating_sub(1).min(3))
    }

    /// Does whatever timers have expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Supernodes.
        let interval = self.cfg.timers.register_interval;
        let (ping_every, dead) = (
            self.cfg.timers.supernode_ping,
            self.cfg.timers.supernode_dead,
        );
        for i in 0..self.supernodes.len() {
            let link = &mut self.supernodes[i];
            if link.registered && link.last_heard.is_some_and(|a| now >= a + dead) {
                link.registered = false;
                link.want_peers = true;
                link.next_register = now;
                link.retry = self.cfg.timers.register_retry;
                let addr = link.addr;
                self.events
                    .push_back(Event::RegistrationLost { supernode: addr });
                self.choose_active();
            }
            let link = &mut self.supernodes[i];
            if link.registered && now >= link.next_ping {
                link.next_ping = now + ping_every;
                let nonce = self.rng.next_u64();
                let link = &mut self.supernodes[i];
                link.ping = Some((nonce, now));
                let addr = link.addr;
                let mut buf = Vec::with_capacity(12);
                wire::encode_supernode_ping(nonce, &mut buf);
                self.push_transmit(addr, buf);
            }
            let link = &mut self.supernodes[i];
            if now >= link.next_register {
                // Until acknowledged, retry with back-off; the ack pushes this out to a full interval.
                link.next_register = now + link.retry;
                link.retry = (link.retry * 2).min(interval);
                self.send_register(i, now);
            }
        }
        if now >= self.next_mac_sweep {
            self.macs.expire(now, self.cfg.timers.mac_ageing);
            self.next_mac_sweep = now + Duration::from_secs(10);
        }
        let keys: Vec<PublicKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.peer_timers(&k, now);
        }
    }

    fn peer_timers(&mut self, key: &PublicKey, now: Instant) {
        let t = self.cfg.timers.clone();
        let Some(p) = self.peers.get_mut(key) else {
            return;
        };
        // Forget a silent peer.
        if now >= p.last_rx.unwrap_or(p.created) + t.peer_timeout {
            let p = self.peers.remove(key).expect("exists");
            for i in p.indices() {
                self.by_index.remove(&i);
            }
            self.by_tag.remove(&key.tag());
            self.macs.forget_peer(key);
            for sn in &mut self.supernodes {
                sn.want_peers = true;
            }
            if p.up {
                self.events.push_back(Event::PeerGone { peer: *key });
            }
            return;
        }
        // Expire old sessions.
        let mut expired = Vec::new();
        for slot in [&mut p.current, &mut p.previous, &mut p.next] {
            if slot
                .as_ref()
                .is_some_and(|s| now >= s.created + t.reject_after_time)
            {
                expired.push(slot.take().expect("checked").local_index);
            }
        }
        for i in expired {
            self.by_index.remove(&i);
        }
        let p = self.peers.get_mut(key).expect("exists");
        if p.up && p.current.is_none() {
            p.up = false;
            self.events.push_back(Event::PeerDown { peer: *key });
        }
        // Direct path gone quiet: fall back to the relay at once, and probe again.
        if p.path.is_direct() && now >= p.last_direct_rx.unwrap_or(p.created) + t.direct_timeout {
            p.restart_probing(now, t.probe_first);
            p.path = Path::None;
            let path = self.path_for(self.peers.get(key).expect("exists"));
            let p = self.peers.get_mut(key).expect("exists");
            p.path = path;
            self.events
                .push_back(Event::PathChanged { peer: *key, path });
        }
        // Handshake retries and rekeying.
        let p = self.peers.get(key).expect("exists");
        let mut initiate = false;
        if let Some(pend) = &p.pending {
            if now >= pend.sent_at + self.handshake_backoff(p.handshake_attempts) {
                if p.handshake_attempts < t.handshake_attempts {
                    initiate = true;
                } else {
                    let i = pend.local_index;
                    self.by_index.remove(&i);
                    let p = self.peers.get_mut(key).expect("exists");
                    p.pending = None;
                }
            }
        } else if let Some(s) = &p.current {
            if now >= s.created + self.rekey_time(s) {
                initiate = true;
            }
        }
        if initiate {
            self.initiate(key, now);
        }
        // Keepalive. On a direct path it is a probe: the reply keeps the RTT shown in status current and
        // proves the path works both ways, at the cost of one small packet per idle interval.
        let p = self.peers.get(key).expect("exists");
        if p.current.is_some() && now >= p.last_tx + t.keepalive {
            if let Path::Direct(addr) = p.path {
                let p = self.peers.get_mut(key).expect("exists");
                p.probing.sent_at = now;
                let nonce = p.probing.nonce;
                self.send_data(key, DataKind::Probe, &nonce, Some(Path::Direct(addr)), now);
            } else {
                self.send_data(key, DataKind::Keepalive, &[], None, now);
            }
        }
        // Probing for a direct path.
        let p = self.peers.get(key).expect("exists");
        if self.cfg.allow_p2p
            && p.current.is_some()
            && !p.path.is_direct()
            && !p.candidates.is_empty()
            && now >= p.probing.next_at
        {
            let candidates = p.candidates.clone();
            let at_max = p.probing.interval >= t.probe_max;
            let p = self.peers.get_mut(key).expect("exists");
            self.rng.fill_bytes(&mut p.probing.nonce);
            p.probing.sent_at = now;
            p.probing.next_at = now + p.probing.interval;
            p.probing.interval = (p.probing.interval * 2).min(t.probe_max);
            let nonce = p.probing.nonce;
            for c in candidates {
                self.send_data(key, DataKind::Probe, &nonce, Some(Path::Direct(c)), now);
            }
            if at_max {
                self.request_punch(key);
            }
        }
    }

    /// Asks the supernode to have the peer and us probe each other at the same moment.
    fn request_punch(&mut self, key: &PublicKey) {
        let Some(sn) = self.active.map(|i| self.supernodes[i].addr) else {
            return;
        };
        let mut buf = Vec::new();
        wire::PunchRequest {
            community: self.cfg.community.id,
            from: self.cfg.identity.public,
            target: *key,
        }
        .encode(&mut buf);
        self.push_transmit(sn, buf);
    }
}
