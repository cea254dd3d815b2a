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
//!
//! The calling contract (what to drain after which call, when to read the timer) is on [`Edge`].
//!
//! # Where each behaviour lives
//!
//! - `timers.rs`: the timer table (when each peer's timers fire and what each then does, side by side).
//! - `sessions.rs`: handshakes, held initiations, installing sessions, rekeying and session expiry.
//! - `paths.rs`: direct-path candidates, probing, the hole-punch decision, direct or relayed, keepalives.
//! - `supernodes.rs`: registration, pings, refusals, peer info, which supernode is in use.
//! - `switch.rs`: the MAC table, learning, ageing, forwarding and flooding.
//! - `send.rs`: putting datagrams into the output queue (control messages, packets on a path, sealed data).
//! - `status.rs`: events, counters and the status getters.
//! - `peer.rs`: what the edge knows of one peer; the peer table.
//! - `unconfirmed.rs`: sessions answered for keys that are not peers yet, until their first packet.
//! - `allow.rs`: the edge's own list of accepted peer keys (`allow_peer`).

mod allow;
mod config;
#[cfg(test)]
mod fake_supernode;
#[cfg(test)]
mod mac_tests;
mod paths;
mod peer;
mod pmtu;
#[cfg(test)]
mod policy_tests;
mod send;
mod sessions;
mod status;
mod supernodes;
mod switch;
mod timers;
mod unconfirmed;
#[cfg(test)]
mod unconfirmed_tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub use config::{AddressMode, EdgeConfig, Limits, Timers};
pub use peer::{Path, PeerCounters, PeerState};
pub use status::{EdgeStats, Event, PeerStatus, SupernodeStatus};
pub use switch::MacTable;

use crate::handshake_mac::{CookieChecker, MacKeys};
use crate::keys::{PeerTag, PublicKey};
use crate::queue::PacketQueue;
use crate::wire::{self, DataKind, Ipv4Net, Message, MsgType, DATA_HEADER_LEN};
use crate::Transmit;
use peer::Peer;
use sessions::HeldInit;
use supernodes::SupernodeLink;
use timers::TimerTable;
use unconfirmed::UnconfirmedTable;

/// Frames for the TAP device and datagrams waiting to be sent are bounded: a driver that stops draining
/// them loses the oldest, it does not grow without bound.
pub const MAX_OUTPUT_QUEUE: usize = 4096;

/// The edge state machine: see the module documentation for what it does.
///
/// # Calling contract
///
/// As in quinn-proto, every input is a `handle_*` call with the current time, and every output waits in a
/// queue until the driver takes it:
///
/// | after | drain |
/// |---|---|
/// | [`Edge::handle_udp`] | datagrams ([`Edge::poll_transmit`] or [`Edge::transmits`]), TAP frames ([`Edge::poll_tap`] or [`Edge::tap_frames`]), events ([`Edge::poll_event`]) |
/// | [`Edge::handle_tap_frame`], [`Edge::handle_tap_frame_parts`] | datagrams (a frame for a peer with no session starts a handshake and waits in a queue for it) |
/// | [`Edge::handle_timeout`] | datagrams, events |
///
/// Any `handle_*` call may move the next timer earlier, so the driver reads [`Edge::poll_timeout`] again
/// after every one of them (after a batch of them is enough) and calls [`Edge::handle_timeout`] once that
/// instant has come; calling it early is harmless, it only does what is due. Right after
/// `handle_timeout(now)`, `poll_timeout()` lies strictly after `now`, so a driver that sleeps until it never
/// spins. The output queues are bounded ([`MAX_OUTPUT_QUEUE`] each): a driver that stops draining them loses
/// the oldest entries, not memory.
pub struct Edge {
    /// Ordered, because it is iterated (floods, re-initiation after a registration) and the order decides
    /// which peer gets which random draw and in which order datagrams leave: a `HashMap` made the outputs
    /// depend on the per-process hash seed, so the same inputs did not give the same outputs.
    peers: BTreeMap<PublicKey, Peer>,
    core: Core,
}

/// Everything of the edge except its peer table. Per-peer code takes the peer as `&mut Peer` and this as
/// `&mut Core`: two disjoint borrows, so it can send, count, log and draw randomness while it holds the
/// peer, without looking the peer up again.
struct Core {
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
    by_tag: HashMap<PeerTag, PublicKey>,
    by_index: HashMap<u32, PublicKey>,
    /// When each peer's timers fire next (see `timers.rs`).
    timers: TimerTable,
    macs: MacTable,
    next_mac_sweep: Instant,
    transmits: PacketQueue<SocketAddr>,
    tap_out: PacketQueue<()>,
    events: VecDeque<Event>,
    stats: EdgeStats,
    held_inits: VecDeque<HeldInit>,
    /// Sessions we answered for keys that are not peers, until the initiator's first packet confirms
    /// one (see `unconfirmed.rs`).
    unconfirmed: UnconfirmedTable,
    /// Our own list of accepted peer keys, if any (see `allow.rs`).
    allow: allow::AllowList,
    /// The keys of MAC1 and of cookie replies, from the community secret.
    mac_keys: MacKeys,
    /// Our handshake load, cookie secret and per-source rate limit.
    cookies: CookieChecker,
    /// When we last asked the supernodes for every peer because an unintroduced peer knocked.
    last_peer_request: Option<Instant>,
}

impl Edge {
    /// A new edge. `wall_clock_us` is the current Unix time in microseconds: registration counters and
    /// handshake timestamps build on it so they keep growing across restarts. `seed` feeds every random
    /// choice (session indices, ephemeral keys, probe nonces).
    pub fn new(cfg: EdgeConfig, now: Instant, wall_clock_us: u64, seed: [u8; 32]) -> Edge {
        let supernodes = cfg
            .supernodes
            .iter()
            .map(|&addr| {
                let key = cfg.supernode_keys.get(&addr).copied();
                SupernodeLink::new(addr, key, now, &cfg.timers)
            })
            .collect();
        Edge {
            peers: BTreeMap::new(),
            core: Core {
                rng: ChaCha20Rng::from_seed(seed),
                start: now,
                wall_start_us: wall_clock_us,
                last_stamp: 0,
                supernodes,
                active: None,
                assigned_ip: None,
                observed: None,
                by_tag: HashMap::new(),
                by_index: HashMap::new(),
                timers: TimerTable::default(),
                macs: MacTable::default(),
                next_mac_sweep: now + switch::MAC_SWEEP,
                transmits: PacketQueue::new(MAX_OUTPUT_QUEUE),
                tap_out: PacketQueue::new(MAX_OUTPUT_QUEUE),
                events: VecDeque::new(),
                stats: EdgeStats::default(),
                held_inits: VecDeque::new(),
                unconfirmed: UnconfirmedTable::default(),
                allow: allow::AllowList::default(),
                mac_keys: MacKeys::of(&cfg.community),
                cookies: CookieChecker::new(cfg.limits.handshake_load),
                last_peer_request: None,
                cfg,
            },
        }
    }

    // ----- inputs -----

    /// Handles one datagram from the network. `data` may be modified (packets are opened in place).
    /// Then drain datagrams, TAP frames and events, and read [`Edge::poll_timeout`] again.
    pub fn handle_udp(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        let stats = &mut self.core.stats;
        stats.rx_packets += 1;
        stats.rx_bytes += data.len() as u64;
        let from_supernode = self.core.supernodes.iter().position(|s| s.addr == from);
        let Ok(t) = wire::peek_type(data) else {
            self.core.stats.dropped_malformed += 1;
            return;
        };
        if let (MsgType::CookieReply, Some(idx)) = (t, from_supernode) {
            // From a supernode's address, a cookie reply answers our control handshake (an edge's comes
            // relayed, inside RELAYED).
            match wire::decode(data) {
                Ok(m) => self.on_channel(now, idx, m),
                Err(_) => self.core.stats.dropped_malformed += 1,
            }
            return;
        }
        match t {
            MsgType::Data if data.get(2) == Some(&(DataKind::Control as u8)) => {
                let Some(idx) = from_supernode else {
                    self.core.stats.dropped_not_from_supernode += 1;
                    return;
                };
                self.on_ctl_data(now, idx, data)
            }
            MsgType::HandshakeInit
            | MsgType::HandshakeResp
            | MsgType::CookieReply
            | MsgType::Data => self.on_edge_packet(now, Path::Direct(from), None, data),
            MsgType::Relayed => {
                if from_supernode.is_none() {
                    self.core.stats.dropped_not_from_supernode += 1;
                    return;
                }
                let Ok(mut relayed) = wire::RelayPacket::new_checked(data) else {
                    self.core.stats.dropped_malformed += 1;
                    return;
                };
                let tag = relayed.tag();
                self.on_edge_packet(now, Path::Relayed(from), Some(tag), relayed.inner_mut())
            }
            _ => {
                let Some(idx) = from_supernode else {
                    self.core.stats.dropped_not_from_supernode += 1;
                    return;
                };
                match wire::decode(data) {
                    Ok(m) => self.on_channel(now, idx, m),
                    Err(_) => self.core.stats.dropped_malformed += 1,
                }
            }
        }
    }

    /// Handles one Ethernet frame read from the TAP device. Then drain datagrams, and read
    /// [`Edge::poll_timeout`] again.
    pub fn handle_tap_frame(&mut self, now: Instant, frame: &[u8]) {
        self.switch_frame(now, frame, &[]);
    }

    /// Handles one Ethernet frame given in two parts, `head` followed by `tail`: the form in which the
    /// driver splits a segmentation-offload read (a rebuilt header, then a slice of the large payload)
    /// without gathering each segment into a buffer first. The frame is copied once, into the sealed
    /// datagram. Drain as after [`Edge::handle_tap_frame`].
    pub fn handle_tap_frame_parts(&mut self, now: Instant, head: &[u8], tail: &[u8]) {
        self.switch_frame(now, head, tail);
    }

    /// An ICMP error (fragmentation needed, IPv4; packet too big, IPv6) said that a datagram this edge sent
    /// to `dest` was too large for a link on the way, which carries IP packets of at most `mtu` bytes. The
    /// error is not authenticated (anyone on the path can forge one), so it may only ever be a hint for
    /// the edge to re-check the path with its own authenticated probes. For now the edge does not search
    /// path MTUs and ignores the hint (nothing in the daemon reads the socket's errors yet).
    pub fn handle_path_mtu_hint(&mut self, now: Instant, dest: SocketAddr, mtu: u16) {
        self.on_path_mtu_hint(now, dest, mtu);
    }

    /// Does whatever timers have expired at `now` (nothing when none has: calling early is harmless).
    /// Then drain datagrams and events, and read [`Edge::poll_timeout`] again.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.on_timeout(now);
    }

    // ----- outputs -----

    /// When [`Edge::handle_timeout`] must be called next. Read it again after every `handle_*` call: any
    /// of them may move it earlier. Cheap (no scan of the peers).
    #[must_use = "an edge whose timers are not driven never registers, retries or keeps a path alive"]
    pub fn poll_timeout(&self) -> Instant {
        self.next_timeout()
    }

    /// The next datagram to send, as an owned copy. Simple, for tests and simulators; the daemon reads
    /// the queue in place with [`Edge::transmits`] instead.
    #[must_use = "a datagram taken from the queue and dropped is never sent"]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.core
            .transmits
            .pop_front()
            .map(|(dest, payload)| Transmit { dest, payload })
    }

    /// The datagrams to send, oldest first, back to back in one buffer: runs to one destination are
    /// contiguous, ready for one GSO send. Call [`Edge::clear_transmits`] once they are sent.
    pub fn transmits(&self) -> &PacketQueue<SocketAddr> {
        &self.core.transmits
    }

    /// Forgets the datagrams [`Edge::transmits`] showed (they were sent), keeping the buffer.
    pub fn clear_transmits(&mut self) {
        self.core.transmits.clear();
    }

    /// The next frame to write to the TAP device, as an owned copy (for tests and simulators; see
    /// [`Edge::tap_frames`]).
    #[must_use = "a frame taken from the queue and dropped never reaches the TAP device"]
    pub fn poll_tap(&mut self) -> Option<Vec<u8>> {
        self.core.tap_out.pop_front().map(|(_, f)| f)
    }

    /// The frames for the TAP device, oldest first, back to back in one buffer. Call
    /// [`Edge::clear_tap_frames`] once they are written.
    pub fn tap_frames(&self) -> &PacketQueue<()> {
        &self.core.tap_out
    }

    /// Forgets the frames [`Edge::tap_frames`] showed, keeping the buffer.
    pub fn clear_tap_frames(&mut self) {
        self.core.tap_out.clear();
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    // ----- dispatch -----

    fn on_edge_packet(&mut self, now: Instant, path: Path, tag: Option<PeerTag>, data: &mut [u8]) {
        let msg = match wire::decode(data) {
            Ok(m) => m,
            Err(_) => {
                self.core.stats.dropped_malformed += 1;
                return;
            }
        };
        match msg {
            Message::HandshakeInit(m) => self.on_handshake_init(path, tag, m, data, now),
            Message::HandshakeResp(m) => self.on_handshake_resp(path, m, data, now),
            Message::CookieReply(m) => self.on_cookie_reply(m, now),
            Message::Data(h, _) => self.on_data(now, path, h, data),
            _ => self.core.stats.dropped_malformed += 1,
        }
    }

    /// A data packet: open it on its session, note where it came from, then hand its payload on by kind.
    /// A packet whose index names no peer session may confirm an unconfirmed one (looked at only then).
    fn on_data(&mut self, now: Instant, path: Path, h: wire::DataHeader, data: &mut [u8]) {
        let Some(p) = self
            .core
            .by_index
            .get(&h.receiver_index)
            .and_then(|key| self.peers.get_mut(key))
        else {
            self.on_unconfirmed_data(now, path, h, data);
            return;
        };
        let core = &mut self.core;
        let Some(plain_len) = core.open_data(p, &h, data, now) else {
            return;
        };
        core.dispatch_data(
            p,
            path,
            &h,
            &data[DATA_HEADER_LEN..DATA_HEADER_LEN + plain_len],
            now,
        );
    }

    /// A data packet for no peer session: the first packet on an unconfirmed session makes its sender a
    /// peer (`sessions.rs`, `confirm_session`); anything else is counted and dropped.
    fn on_unconfirmed_data(
        &mut self,
        now: Instant,
        path: Path,
        h: wire::DataHeader,
        data: &mut [u8],
    ) {
        let Some((key, plain_len)) = self.confirm_session(now, &h, data) else {
            return;
        };
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        self.core.dispatch_data(
            p,
            path,
            &h,
            &data[DATA_HEADER_LEN..DATA_HEADER_LEN + plain_len],
            now,
        );
    }
}

impl Core {
    /// An opened data packet from `p`: note where it came from, then hand its payload on by kind.
    fn dispatch_data(
        &mut self,
        p: &mut Peer,
        path: Path,
        h: &wire::DataHeader,
        payload: &[u8],
        now: Instant,
    ) {
        if let Path::Direct(from) = path {
            self.on_direct_rx(p, from, now);
        }
        match (h.kind, path) {
            (DataKind::Frame, _) => self.deliver_frame(p, path, payload, now),
            (DataKind::Probe, Path::Direct(from)) => self.answer_probe(p, from, payload, now),
            (DataKind::ProbeReply, Path::Direct(from)) => {
                self.on_probe_reply(p, from, payload, now)
            }
            _ => {}
        }
    }
}
