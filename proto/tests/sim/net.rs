//! A deterministic discrete-event network simulator that drives the Weft state machines exactly as the
//! daemons do, with no sockets, no threads, no sleeping and no wall clock.
//!
//! # Time
//! Virtual time is a [`Duration`] offset from a fixed base [`Instant`] taken once when the simulator is
//! built; the state machines only ever see `base + offset`. Pending work sits in a priority queue ordered
//! by `(time, sequence number)`, and node timers are taken from each node's `poll_timeout()`; at equal
//! times queued items run first, then timers in node order. Every random choice (loss, jitter,
//! duplication, NAT port allocation, node seeds and identities) comes from one seeded ChaCha RNG, so a
//! scenario is a pure function of its seed.
//!
//! # Network
//! Hosts have IPv4 socket addresses and sit either directly on the internet or on the LAN behind a
//! [`Nat`]. Every public endpoint (an internet host, or a NAT's public side) has an access [`Link`] with
//! one-way delay, jitter, loss and duplication; a datagram crossing the internet pays the sender side's
//! link and then the receiver side's link. Traffic between hosts of the same LAN stays on the LAN (a small
//! fixed delay, no loss). NATs do not hairpin, and private addresses are not routed on the internet.
//!
//! # NATs
//! Two models, both with mappings that expire after an idle timeout (refreshed by traffic in either
//! direction, like Linux conntrack):
//! - [`NatKind::Cone`]: endpoint-independent mapping with address-and-port-dependent filtering (Linux
//!   masquerade, "port-restricted cone"): an inside `ip:port` keeps one public port for all destinations
//!   (the inside port when free), and inbound datagrams pass only from a remote `ip:port` the inside
//!   endpoint has sent to;
//! - [`NatKind::Symmetric`]: a fresh random public port per (inside `ip:port`, remote `ip:port`), and
//!   inbound datagrams pass only from that remote.
//!
//! # Driving the nodes
//! One supernode and any number of edges. A datagram is delivered with `handle_udp(now, from, buf)`, a
//! due timer with `handle_timeout(now)`, a TAP frame with `handle_tap_frame(now, frame)`; after every
//! call the node's `poll_transmit()` output goes into the network, `poll_tap()` into the edge's list of
//! received frames and `poll_event()` into its event log. Right after `handle_timeout(now)` a node's
//! `poll_timeout()` must lie strictly after `now`: otherwise a daemon sleeping until that instant would
//! spin, so the simulator panics.

#![allow(dead_code)] // each scenario uses a different part of the toolbox

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weft_proto::edge::{
    AddressMode, Edge, EdgeConfig, Event, Limits, Path, PeerState, PeerStatus, Timers,
};
use weft_proto::keys::{CommunityKeys, PublicKey, StaticKeypair};
use weft_proto::supernode::{
    AdmissionPolicy, Lease, Supernode, SupernodeConfig, SupernodeEvent, SupernodeStats,
};
use weft_proto::wire::packet::EthernetFrame;
use weft_proto::wire::{Ipv4Net, MacAddr};
use weft_proto::Transmit;

/// The supernode's address.
pub const SN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 7654);
/// The UDP port every edge binds.
pub const EDGE_PORT: u16 = 7777;
/// One-way delay between two hosts of the same LAN.
pub const LAN_DELAY: Duration = Duration::from_micros(200);
/// Ethertype of the frames the tests inject (IEEE local experimental).
pub const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
/// Marks the payload of a test frame.
const FRAME_MAGIC: &[u8; 8] = b"WEFTSIM!";
/// The community every edge joins unless told otherwise.
pub const COMMUNITY: &str = "simnet";
/// Its secret.
pub const SECRET: &[u8] = b"correct horse battery staple";

/// Milliseconds, for brevity in scenarios.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Seconds, for brevity in scenarios.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// An access link: what a datagram pays to leave or reach one public endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// One-way delay.
    pub delay: Duration,
    /// Each datagram's delay is `delay` plus a uniform offset in `-jitter..=jitter` (so datagrams reorder).
    pub jitter: Duration,
    /// Probability that a datagram is lost on this link.
    pub loss: f64,
    /// Probability that a datagram is delivered twice (with independent jitter).
    pub duplicate: f64,
}

impl Default for Link {
    fn default() -> Self {
        Link::delay(ms(10))
    }
}

impl Link {
    /// A perfect link with this one-way delay.
    pub fn delay(d: Duration) -> Link {
        Link {
            delay: d,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// How a NAT maps and filters. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    Cone,
    /// A new mapping per remote endpoint.
    Symmetric,
}

/// Index of a NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatId(pub usize);

/// Index of an edge (in the order it was added).
pub type EdgeId = usize;

/// Where a host sits.
#[derive(Debug, Clone, Copy)]
pub enum Location {
    /// Directly on the internet, with its own access link.
    Internet(Link),
    /// On the LAN behind this NAT (which owns the access link).
    Behind(NatId),
}

/// A node of the simulation, for partitions and blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// The supernode.
    Supernode,
    /// An edge.
    Edge(EdgeId),
}

/// Who owns a NAT's public port.
#[derive(Debug, Clone, Copy)]
enum PortOwner {
    Cone(SocketAddr),
    Symmetric(SocketAddr, SocketAddr),
}

struct ConeMapping {
    port: u16,
    /// Remote endpoints the inside endpoint talked to, with the time of the last packet either way.
    remotes: HashMap<SocketAddr, Duration>,
}

/// Counters of one NAT.
#[derive(Debug, Clone, Copy, Default)]
pub struct NatStats {
    /// Mappings created.
    pub mappings: u64,
    /// Inbound datagrams dropped by filtering (or for no mapping).
    pub filtered: u64,
}

/// A NAT box. See the module documentation.
pub struct Nat {
    kind: NatKind,
    public_ip: Ipv4Addr,
    /// The LAN is `192.168.<lan>.0/24`.
    lan: u8,
    link: Link,
    timeout: Duration,
    cone: HashMap<SocketAddr, ConeMapping>,
    symmetric: HashMap<(SocketAddr, SocketAddr), (u16, Duration)>,
    ports: HashMap<u16, PortOwner>,
    /// Counters.
    pub stats: NatStats,
}

impl Nat {
    fn new(kind: NatKind, public_ip: Ipv4Addr, lan: u8, link: Link) -> Nat {
        Nat {
            kind,
            public_ip,
            lan,
            link,
            timeout: secs(120),
            cone: HashMap::new(),
            symmetric: HashMap::new(),
            ports: HashMap::new(),
            stats: NatStats::default(),
        }
    }

    fn on_lan(&self, ip: Ipv4Addr) -> bool {
        let o = ip.octets();
        o[0] == 192 && o[1] == 168 && o[2] == self.lan
    }

    /// Drops every mapping idle for the timeout.
    fn expire(&mut self, now: Duration) {
        let timeout = self.timeout;
        let ports = &mut self.ports;
        self.cone.retain(|_, m| {
            m.remotes.retain(|_, last| now < *last + timeout);
            if m.remotes.is_empty() {
                ports.remove(&m.port);
                false
            } else {
                true
            }
        });
        self.symmetric.retain(|_, (port, last)| {
            let keep = now < *last + timeout;
            if !keep {
                ports.remove(port);
            }
            keep
        });
    }

    fn free_port(&self, rng: &mut ChaCha8Rng, preferred: Option<u16>) -> u16 {
        if let Some(p) = preferred.filter(|p| !self.ports.contains_key(p)) {
            return p;
        }
        loop {
            let p = 1024 + (rng.next_u32() % (65536 - 1024)) as u16;
            if !self.ports.contains_key(&p) {
                return p;
            }
        }
    }

    /// Translates an outbound datagram; returns the public source port.
    fn outbound(
        &mut self,
        now: Duration,
        inside: SocketAddr,
        remote: SocketAddr,
        rng: &mut ChaCha8Rng,
    ) -> u16 {
        self.expire(now);
        match self.kind {
            NatKind::Cone => {
                if !self.cone.contains_key(&inside) {
                    // Like Linux masquerade: keep the inside port if it is free.
                    let port = self.free_port(rng, Some(inside.port()));
                    self.ports.insert(port, PortOwner::Cone(inside));
                    self.cone.insert(
                        inside,
                        ConeMapping {
                            port,
                            remotes: HashMap::new(),
                        },
                    );
                    self.stats.mappings += 1;
                }
                let m = self.cone.get_mut(&inside).expect("inserted");
                m.remotes.insert(remote, now);
                m.port
            }
            NatKind::Symmetric => {
                if let Some((port, last)) = self.symmetric.get_mut(&(inside, remote)) {
                    *last = now;
                    return *port;
                }
                let port = self.free_port(rng, None);
                self.ports
                    .insert(port, PortOwner::Symmetric(inside, remote));
                self.symmetric.insert((inside, remote), (port, now));
                self.stats.mappings += 1;
                port
            }
        }
    }

    /// Translates an inbound datagram; returns the inside destination, or None if filtered.
    fn inbound(&mut self, now: Duration, remote: SocketAddr, port: u16) -> Option<SocketAddr> {
        self.expire(now);
        let inside = match self.ports.get(&port).copied() {
            Some(PortOwner::Cone(inside)) => {
                let m = self.cone.get_mut(&inside).expect("port table consistent");
                match m.remotes.get_mut(&remote) {
                    Some(last) => {
                        *last = now;
                        Some(inside)
                    }
                    None => None,
                }
            }
            Some(PortOwner::Symmetric(inside, r)) if r == remote => {
                self.symmetric.get_mut(&(inside, r)).expect("consistent").1 = now;
                Some(inside)
            }
            _ => None,
        };
        if inside.is_none() {
            self.stats.filtered += 1;
        }
        inside
    }

    /// Number of live mappings.
    pub fn mappings(&self) -> usize {
        self.cone.len() + self.symmetric.len()
    }

    /// The public address.
    pub fn public_ip(&self) -> Ipv4Addr {
        self.public_ip
    }
}

/// Network-wide counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetStats {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Datagrams handed to a node.
    pub delivered: u64,
    /// Lost on a link.
    pub lost: u64,
    /// Extra copies created by duplication.
    pub duplicated: u64,
    /// Dropped by NAT filtering.
    pub filtered: u64,
    /// No route (private or unknown address, hairpin, down host).
    pub unroutable: u64,
    /// Dropped by a block or partition.
    pub blocked: u64,
}

/// A frame an edge wrote to its TAP device.
#[derive(Debug, Clone)]
pub struct RxFrame {
    /// When.
    pub at: Duration,
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// The test frame id, when the frame is one of ours.
    pub id: Option<u64>,
}

/// A frame the test injected.
#[derive(Debug, Clone)]
pub struct TxFrame {
    /// When it was handed to the edge.
    pub at: Duration,
    /// Which edge.
    pub from: EdgeId,
    /// Destination MAC.
    pub dst: MacAddr,
}

/// One simulated edge.
pub struct SimEdge {
    /// The state machine.
    pub edge: Edge,
    /// Its configuration (kept for restarts).
    pub cfg: EdgeConfig,
    host: usize,
    /// Frames written to its TAP device.
    pub rx: Vec<RxFrame>,
    /// Its events, with the time.
    pub events: Vec<(Duration, Event)>,
    /// When it was (re)started.
    pub started: Duration,
    deadline: Duration,
}

struct SimSupernode {
    sn: Option<Supernode>,
    cfg: SupernodeConfig,
    host: usize,
    deadline: Duration,
}

struct Host {
    addr: SocketAddr,
    loc: Location,
    node: Node,
    /// A second address of an internet host (a second link), and how the host uses it as a source.
    alias: Option<(SocketAddr, AliasUse)>,
    /// Toggled per datagram sent while the alias alternates.
    flip: bool,
}

/// Which source address an internet host with a second address sends from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasUse {
    /// Alternately its first address and the second one (two working links).
    Alternate,
    /// Only the second one (the host moved to it).
    Only,
}

struct Block {
    a: Node,
    /// None: everything to or from `a` (a partition).
    b: Option<Node>,
    until: Option<Duration>,
}

enum Item {
    Packet {
        src: SocketAddr,
        dst: SocketAddr,
        from: usize,
        lan: bool,
        payload: Vec<u8>,
    },
    Tap {
        edge: EdgeId,
        frame: Vec<u8>,
    },
}

/// The simulator. See the module documentation.
pub struct Sim {
    base: Instant,
    now: Duration,
    seq: u64,
    rng: ChaCha8Rng,
    queue: BTreeMap<(Duration, u64), Item>,
    hosts: Vec<Host>,
    by_addr: HashMap<SocketAddr, usize>,
    nats: Vec<Nat>,
    blocks: Vec<Block>,
    sn: Option<SimSupernode>,
    /// The edges, by [`EdgeId`].
    pub edges: Vec<SimEdge>,
    /// Network counters.
    pub net: NetStats,
    /// The supernode's leases as last persisted (what a restart gets back).
    pub leases: Vec<Lease>,
    /// The supernode's events, with the time.
    pub sn_events: Vec<(Duration, SupernodeEvent)>,
    /// Frames injected, by id.
    pub sent: Vec<TxFrame>,
    next_public: u8,
    wall_base_us: u64,
    boots: u64,
    /// Print every datagram and event (set `SIM_TRACE=1`), for debugging a scenario.
    trace: bool,
    /// Record every delivered datagram in [`Sim::captured`] (a corpus for fuzzing).
    pub capture: bool,
    /// Delivered datagrams while capturing: receiving node, source address as it saw it, bytes.
    pub captured: Vec<(Node, SocketAddr, Vec<u8>)>,
}

impl Sim {
    /// An empty world at virtual time zero.
    pub fn new(seed: u64) -> Sim {
        Sim {
            base: Instant::now(),
            now: Duration::ZERO,
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            queue: BTreeMap::new(),
            hosts: Vec::new(),
            by_addr: HashMap::new(),
            nats: Vec::new(),
            blocks: Vec::new(),
            sn: None,
            edges: Vec::new(),
            net: NetStats::default(),
            leases: Vec::new(),
            sn_events: Vec::new(),
            sent: Vec::new(),
            next_public: 1,
            wall_base_us: 1_750_000_000_000_000,
            boots: 0,
            trace: std::env::var_os("SIM_TRACE").is_some(),
            capture: false,
            captured: Vec::new(),
        }
    }

    // ----- building the world -----

    /// Adds the supernode at [`SN_ADDR`] with a 10 ms access link.
    pub fn add_supernode(&mut self, cfg: SupernodeConfig) {
        assert!(self.sn.is_none(), "one supernode per simulation");
        let host = self.add_host(
            SN_ADDR,
            Location::Internet(Link::default()),
            Node::Supernode,
        );
        self.sn = Some(SimSupernode {
            sn: None,
            cfg,
            host,
            deadline: Duration::MAX,
        });
        self.start_supernode();
    }

    /// Adds a NAT with a fresh public address, a LAN of its own and the given access link.
    pub fn add_nat(&mut self, kind: NatKind, link: Link) -> NatId {
        let ip = self.fresh_public_ip();
        let lan = (self.nats.len() + 1) as u8;
        self.nats.push(Nat::new(kind, ip, lan, link));
        NatId(self.nats.len() - 1)
    }

    fn fresh_public_ip(&mut self) -> Ipv4Addr {
        let ip = Ipv4Addr::new(203, 0, 113, self.next_public);
        self.next_public += 1;
        ip
    }

    fn add_host(&mut self, addr: SocketAddr, loc: Location, node: Node) -> usize {
        assert!(!self.by_addr.contains_key(&addr), "address {addr} taken");
        self.hosts.push(Host {
            addr,
            loc,
            node,
            alias: None,
            flip: false,
        });
        self.by_addr.insert(addr, self.hosts.len() - 1);
        self.hosts.len() - 1
    }

    /// The configuration an edge gets by default: community [`COMMUNITY`], a random identity, MAC
    /// `02:5e:00:00:<id>`, static address `10.77.<id>/16`, its own address as the only local address.
    pub fn default_edge_config(&mut self, id: EdgeId, local: SocketAddr) -> EdgeConfig {
        let mut private = [0u8; 32];
        self.rng.fill_bytes(&mut private);
        let n = id as u16 + 1;
        EdgeConfig {
            community: CommunityKeys::from_key_material(COMMUNITY, SECRET),
            identity: StaticKeypair::from_private(private),
            supernodes: vec![SN_ADDR],
            supernode_keys: Default::default(),
            mac: MacAddr([0x02, 0x5e, 0, 0, (n >> 8) as u8, n as u8]),
            address: AddressMode::Static(Ipv4Net {
                addr: Ipv4Addr::new(10, 77, (n >> 8) as u8, n as u8),
                prefix: 16,
            }),
            local_addrs: vec![local],
            avoid_nets: Vec::new(),
            description: format!("edge{id}"),
            allow_p2p: true,
            timers: Timers::default(),
            limits: Limits::default(),
        }
    }

    /// Adds an edge with the default configuration, started now.
    pub fn add_edge(&mut self, loc: Location) -> EdgeId {
        self.add_edge_with(loc, |_| {})
    }

    /// Adds an edge whose default configuration `tweak` adjusts, started now.
    pub fn add_edge_with(&mut self, loc: Location, tweak: impl FnOnce(&mut EdgeConfig)) -> EdgeId {
        let id = self.edges.len();
        let addr = match loc {
            Location::Internet(_) => SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, id as u8 + 1)),
                EDGE_PORT,
            ),
            Location::Behind(nat) => {
                let lan = self.nats[nat.0].lan;
                let on_lan = self
                    .hosts
                    .iter()
                    .filter(|h| matches!(h.loc, Location::Behind(n) if n == nat))
                    .count();
                SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(192, 168, lan, on_lan as u8 + 2)),
                    EDGE_PORT,
                )
            }
        };
        let host = self.add_host(addr, loc, Node::Edge(id));
        let mut cfg = self.default_edge_config(id, addr);
        tweak(&mut cfg);
        let edge = Edge::new(cfg.clone(), self.instant(), self.wall_us(), self.seed32());
        self.edges.push(SimEdge {
            edge,
            cfg,
            host,
            rx: Vec::new(),
            events: Vec::new(),
            started: self.now,
            deadline: Duration::ZERO,
        });
        self.refresh_deadline(Node::Edge(id));
        id
    }

    fn seed32(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        s
    }

    // ----- disturbances -----

    /// Stops the supernode: its state is gone, datagrams to it are lost.
    pub fn stop_supernode(&mut self) {
        let s = self.sn.as_mut().expect("supernode");
        s.sn = None;
        s.deadline = Duration::MAX;
    }

    /// Starts a fresh supernode instance at the same address, with a new boot id and the persisted
    /// leases passed back in.
    pub fn start_supernode(&mut self) {
        self.boots += 1;
        let now = self.instant();
        let leases = self.leases.clone();
        let s = self.sn.as_mut().expect("supernode");
        assert!(s.sn.is_none(), "already running");
        let mut cfg = s.cfg.clone();
        cfg.boot_id = 0x5eed_0000 + self.boots;
        s.sn = Some(Supernode::new(cfg, now, leases));
        self.refresh_deadline(Node::Supernode);
    }

    /// Gives the running supernode a new admission policy (a reloaded community file), and sends what it
    /// sends then (refusals, revocations). A later restart keeps it.
    pub fn set_policy(&mut self, policy: AdmissionPolicy) {
        let s = self.sn.as_mut().expect("supernode");
        s.cfg.policy = policy.clone();
        if let Some(sn) = s.sn.as_mut() {
            sn.set_policy(policy);
        }
        self.drain(Node::Supernode);
    }

    /// Stops and starts the supernode at once.
    pub fn restart_supernode(&mut self) {
        self.stop_supernode();
        self.start_supernode();
    }

    /// Replaces an edge by a fresh instance with the same configuration (so the same identity), as a
    /// daemon restart does. Frames and events recorded so far are kept.
    pub fn restart_edge(&mut self, id: EdgeId) {
        let (now, wall, seed) = (self.instant(), self.wall_us(), self.seed32());
        let e = &mut self.edges[id];
        e.edge = Edge::new(e.cfg.clone(), now, wall, seed);
        e.started = self.now;
        self.refresh_deadline(Node::Edge(id));
    }

    /// Gives a NAT a new public address: every mapping is lost (roaming to another uplink).
    pub fn nat_change_public_ip(&mut self, nat: NatId) -> Ipv4Addr {
        let ip = self.fresh_public_ip();
        let n = &mut self.nats[nat.0];
        n.public_ip = ip;
        n.cone.clear();
        n.symmetric.clear();
        n.ports.clear();
        ip
    }

    /// Drops every mapping of a NAT (a NAT reboot).
    pub fn nat_flush(&mut self, nat: NatId) {
        let n = &mut self.nats[nat.0];
        n.cone.clear();
        n.symmetric.clear();
        n.ports.clear();
    }

    /// Sets a NAT's mapping idle timeout.
    pub fn nat_set_timeout(&mut self, nat: NatId, t: Duration) {
        self.nats[nat.0].timeout = t;
    }

    /// Drops every datagram between `a` and `b` (both ways) until `until` (forever if None).
    pub fn block(&mut self, a: Node, b: Node, until: Option<Duration>) {
        self.blocks.push(Block {
            a,
            b: Some(b),
            until,
        });
    }

    /// Cuts `a` off the network until `until` (forever if None).
    pub fn partition(&mut self, a: Node, until: Option<Duration>) {
        self.blocks.push(Block { a, b: None, until });
    }

    /// Lifts every block and partition.
    pub fn unblock_all(&mut self) {
        self.blocks.clear();
    }

    /// Gives an internet edge a second address, used as a source the way `how` says; returns it.
    pub fn add_alias(&mut self, id: EdgeId, how: AliasUse) -> SocketAddr {
        let h = self.edges[id].host;
        assert!(matches!(self.hosts[h].loc, Location::Internet(_)));
        let alias = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, id as u8 + 101)),
            EDGE_PORT,
        );
        assert!(!self.by_addr.contains_key(&alias), "address {alias} taken");
        self.by_addr.insert(alias, h);
        self.hosts[h].alias = Some((alias, how));
        alias
    }

    /// An internet edge with a second address keeps only `keep` (its first address or the second):
    /// it sends only from there, and datagrams to the other go nowhere (it lost that link).
    pub fn keep_only_address(&mut self, id: EdgeId, keep: SocketAddr) {
        let h = self.edges[id].host;
        let (alias, _) = self.hosts[h].alias.expect("an alias");
        let addr = self.hosts[h].addr;
        if keep == alias {
            self.hosts[h].alias = Some((alias, AliasUse::Only));
            self.by_addr.remove(&addr);
        } else {
            assert_eq!(keep, addr, "not an address of edge{id}");
            self.hosts[h].alias = None;
            self.by_addr.remove(&alias);
        }
    }

    /// Changes an internet host's access link.
    pub fn set_edge_link(&mut self, id: EdgeId, link: Link) {
        let h = self.edges[id].host;
        match &mut self.hosts[h].loc {
            Location::Internet(l) => *l = link,
            Location::Behind(n) => self.nats[n.0].link = link,
        }
    }

    /// Turns the trace of datagrams and events on or off (it starts on when `SIM_TRACE` is set).
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on;
    }

    // ----- time -----

    /// The current virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The current virtual time as the state machines see it.
    pub fn instant(&self) -> Instant {
        self.base + self.now
    }

    fn wall_us(&self) -> u64 {
        self.wall_base_us + self.now.as_micros() as u64
    }

    fn at(&self, i: Instant) -> Duration {
        i.saturating_duration_since(self.base)
    }

    fn schedule(&mut self, at: Duration, item: Item) {
        self.seq += 1;
        self.queue.insert((at, self.seq), item);
    }

    /// Runs the world until virtual time `t`.
    pub fn run_until(&mut self, t: Duration) {
        loop {
            let q = self.queue.first_key_value().map(|(k, _)| k.0);
            let (timer, node) = self.next_timer();
            let next = match q {
                Some(q) if q <= timer => q,
                _ => timer,
            };
            if next > t {
                break;
            }
            self.now = self.now.max(next);
            if q == Some(next) {
                let (_, item) = self.queue.pop_first().expect("peeked");
                self.process(item);
            } else {
                self.fire_timer(node.expect("a timer is due"));
            }
        }
        self.now = self.now.max(t);
    }

    /// Runs the world for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs in 10 ms steps until `cond` holds or `limit` more time passed; returns the time it held.
    pub fn run_until_cond(
        &mut self,
        limit: Duration,
        cond: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        self.run_until_cond_every(ms(10), limit, cond)
    }

    /// Runs in steps of `step` until `cond` holds or `limit` more time passed; returns the time it held.
    pub fn run_until_cond_every(
        &mut self,
        step: Duration,
        limit: Duration,
        mut cond: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let end = self.now + limit;
        loop {
            if cond(self) {
                return Some(self.now);
            }
            if self.now >= end {
                return None;
            }
            self.run_for(step);
        }
    }

    fn next_timer(&self) -> (Duration, Option<Node>) {
        let mut best = (Duration::MAX, None);
        if let Some(s) = &self.sn {
            if s.sn.is_some() && s.deadline < best.0 {
                best = (s.deadline, Some(Node::Supernode));
            }
        }
        for (i, e) in self.edges.iter().enumerate() {
            if e.deadline < best.0 {
                best = (e.deadline, Some(Node::Edge(i)));
            }
        }
        best
    }

    fn refresh_deadline(&mut self, node: Node) {
        let base = self.base;
        match node {
            Node::Supernode => {
                let s = self.sn.as_mut().expect("supernode");
                s.deadline = match &s.sn {
                    Some(sn) => sn.poll_timeout().saturating_duration_since(base),
                    None => Duration::MAX,
                };
            }
            Node::Edge(i) => {
                let e = &mut self.edges[i];
                e.deadline = e.edge.poll_timeout().saturating_duration_since(base);
            }
        }
    }

    fn fire_timer(&mut self, node: Node) {
        let now = self.instant();
        match node {
            Node::Supernode => {
                let s = self.sn.as_mut().expect("supernode");
                s.sn.as_mut().expect("running").handle_timeout(now);
            }
            Node::Edge(i) => self.edges[i].edge.handle_timeout(now),
        }
        self.drain(node);
        let deadline = match node {
            Node::Supernode => self.sn.as_ref().expect("supernode").deadline,
            Node::Edge(i) => self.edges[i].deadline,
        };
        assert!(
            deadline > self.now,
            "{node:?}: poll_timeout() is {deadline:?}, not after now ({:?}), right after \
             handle_timeout(now): a daemon sleeping until then would spin",
            self.now
        );
    }

    // ----- the network -----

    fn process(&mut self, item: Item) {
        match item {
            Item::Tap { edge, frame } => {
                let now = self.instant();
                let (head, tail) = frame.split_at(split_point(&frame));
                self.edges[edge]
                    .edge
                    .handle_tap_frame_parts(now, head, tail);
                self.drain(Node::Edge(edge));
            }
            Item::Packet {
                src,
                dst,
                from,
                lan,
                payload,
            } => self.arrive(src, dst, from, lan, payload),
        }
    }

    fn blocked(&self, a: Node, b: Node) -> bool {
        self.blocks.iter().any(|blk| {
            blk.until.is_none_or(|u| self.now < u)
                && match blk.b {
                    None => blk.a == a || blk.a == b,
                    Some(x) => (blk.a == a && x == b) || (blk.a == b && x == a),
                }
        })
    }

    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn jittered(&mut self, l: &Link) -> Duration {
        if l.jitter.is_zero() {
            return l.delay;
        }
        let span = l.jitter.as_nanos() as u64 * 2 + 1;
        let off = self.rng.next_u64() % span;
        (l.delay + Duration::from_nanos(off)).saturating_sub(l.jitter)
    }

    /// A node sends a datagram: translate it through the sender's NAT, apply the links, schedule arrival.
    fn send(&mut self, host: usize, t: Transmit) {
        self.net.sent += 1;
        let (src_addr, loc) = (self.hosts[host].addr, self.hosts[host].loc);
        let IpAddr::V4(dst_ip) = t.dest.ip() else {
            self.net.unroutable += 1;
            return;
        };
        let (src, src_link) = match loc {
            Location::Behind(n) if self.nats[n.0].on_lan(dst_ip) => {
                let at = self.now + LAN_DELAY;
                self.schedule(
                    at,
                    Item::Packet {
                        src: src_addr,
                        dst: t.dest,
                        from: host,
                        lan: true,
                        payload: t.payload,
                    },
                );
                return;
            }
            Location::Behind(n) => {
                if self.nats[n.0].public_ip == dst_ip {
                    self.net.unroutable += 1; // no hairpinning
                    return;
                }
                let now = self.now;
                let nat = &mut self.nats[n.0];
                let port = nat.outbound(now, src_addr, t.dest, &mut self.rng);
                (SocketAddr::new(IpAddr::V4(nat.public_ip), port), nat.link)
            }
            Location::Internet(l) => {
                let h = &mut self.hosts[host];
                let src = match h.alias {
                    Some((a, AliasUse::Only)) => a,
                    Some((a, AliasUse::Alternate)) => {
                        h.flip = !h.flip;
                        if h.flip {
                            a
                        } else {
                            src_addr
                        }
                    }
                    None => src_addr,
                };
                (src, l)
            }
        };
        let dst_link = if let Some(n) = self.nats.iter().find(|n| n.public_ip == dst_ip) {
            n.link
        } else {
            match self.by_addr.get(&t.dest).map(|&h| self.hosts[h].loc) {
                Some(Location::Internet(l)) => l,
                _ => {
                    self.net.unroutable += 1;
                    return;
                }
            }
        };
        if self.uniform() < src_link.loss || self.uniform() < dst_link.loss {
            self.net.lost += 1;
            return;
        }
        let copies = if self.uniform() < src_link.duplicate || self.uniform() < dst_link.duplicate {
            self.net.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.jittered(&src_link) + self.jittered(&dst_link);
            self.schedule(
                self.now + delay,
                Item::Packet {
                    src,
                    dst: t.dest,
                    from: host,
                    lan: false,
                    payload: t.payload.clone(),
                },
            );
        }
    }

    /// A datagram reaches its destination's public side: filter it through the NAT, deliver it.
    fn arrive(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        from: usize,
        lan: bool,
        payload: Vec<u8>,
    ) {
        let IpAddr::V4(dst_ip) = dst.ip() else {
            unreachable!("only IPv4 is scheduled");
        };
        let inside = if lan {
            dst
        } else if let Some(n) = self.nats.iter().position(|n| n.public_ip == dst_ip) {
            let now = self.now;
            match self.nats[n].inbound(now, src, dst.port()) {
                Some(a) => a,
                None => {
                    self.net.filtered += 1;
                    return;
                }
            }
        } else {
            dst
        };
        let Some(&to) = self.by_addr.get(&inside) else {
            self.net.unroutable += 1;
            return;
        };
        if !lan && matches!(self.hosts[to].loc, Location::Behind(_)) && inside == dst {
            // A private address reached from the internet: not routed.
            self.net.unroutable += 1;
            return;
        }
        let (a, b) = (self.hosts[from].node, self.hosts[to].node);
        if self.blocked(a, b) {
            self.net.blocked += 1;
            return;
        }
        if self.trace {
            println!(
                "{:>12?} {a:?} -> {b:?} {src} -> {inside}: {}",
                self.now,
                describe(&payload)
            );
        }
        if self.capture {
            self.captured.push((b, src, payload.clone()));
        }
        let now = self.instant();
        let mut payload = payload;
        match b {
            Node::Supernode => {
                let s = self.sn.as_mut().expect("supernode");
                let Some(sn) = s.sn.as_mut() else {
                    self.net.unroutable += 1; // down
                    return;
                };
                sn.handle_udp(now, src, &payload);
            }
            Node::Edge(i) => self.edges[i].edge.handle_udp(now, src, &mut payload),
        }
        self.net.delivered += 1;
        self.drain(b);
    }

    /// Drains a node's outputs after a call, as a daemon does.
    fn drain(&mut self, node: Node) {
        let mut out = Vec::new();
        match node {
            Node::Supernode => {
                let s = self.sn.as_mut().expect("supernode");
                let host = s.host;
                if let Some(sn) = s.sn.as_mut() {
                    while let Some(t) = sn.poll_transmit() {
                        out.push(t);
                    }
                    while let Some(e) = sn.poll_event() {
                        self.sn_events.push((self.now, e));
                    }
                    if let Some(l) = sn.take_changed_leases() {
                        self.leases = l;
                    }
                }
                for t in out {
                    self.send(host, t);
                }
            }
            Node::Edge(i) => {
                let now = self.now;
                let e = &mut self.edges[i];
                while let Some(t) = e.edge.poll_transmit() {
                    out.push(t);
                }
                while let Some(f) = e.edge.poll_tap() {
                    e.rx.push(parse_frame(now, &f));
                }
                while let Some(ev) = e.edge.poll_event() {
                    if self.trace {
                        println!("{now:>12?} edge{i} event {ev:?}");
                    }
                    e.events.push((now, ev));
                }
                let host = e.host;
                for t in out {
                    self.send(host, t);
                }
            }
        }
        self.refresh_deadline(node);
    }

    // ----- frames -----

    /// An edge's TAP MAC address.
    pub fn mac(&self, id: EdgeId) -> MacAddr {
        self.edges[id].cfg.mac
    }

    fn new_frame(&mut self, at: Duration, from: EdgeId, dst: MacAddr) -> (u64, Vec<u8>) {
        let id = self.sent.len() as u64;
        self.sent.push(TxFrame { at, from, dst });
        (id, build_frame(dst, self.mac(from), id))
    }

    /// Hands a frame for `dst` to edge `from`'s TAP side now; returns its id.
    pub fn inject(&mut self, from: EdgeId, dst: MacAddr) -> u64 {
        let (id, frame) = self.new_frame(self.now, from, dst);
        let now = self.instant();
        self.edges[from].edge.handle_tap_frame(now, &frame);
        self.drain(Node::Edge(from));
        id
    }

    /// Hands a raw frame to edge `from`'s TAP side now.
    pub fn inject_raw(&mut self, from: EdgeId, frame: &[u8]) {
        let now = self.instant();
        self.edges[from].edge.handle_tap_frame(now, frame);
        self.drain(Node::Edge(from));
    }

    /// Schedules a frame for `dst` from edge `from` at time `at`; returns its id.
    pub fn schedule_frame(&mut self, at: Duration, from: EdgeId, dst: MacAddr) -> u64 {
        assert!(at >= self.now, "cannot schedule in the past");
        let (id, frame) = self.new_frame(at, from, dst);
        self.schedule(at, Item::Tap { edge: from, frame });
        id
    }

    /// Schedules `count` frames from `from` to `dst`, one every `every`, starting at `start`.
    pub fn schedule_stream(
        &mut self,
        from: EdgeId,
        dst: MacAddr,
        start: Duration,
        every: Duration,
        count: usize,
    ) -> Vec<u64> {
        (0..count)
            .map(|k| self.schedule_frame(start + every * k as u32, from, dst))
            .collect()
    }

    /// How many times edge `to` wrote frame `id` to its TAP device.
    pub fn rx_count(&self, to: EdgeId, id: u64) -> usize {
        self.edges[to]
            .rx
            .iter()
            .filter(|f| f.id == Some(id))
            .count()
    }

    /// Per frame id, how many times edge `to` received it.
    pub fn rx_counts(&self, to: EdgeId) -> HashMap<u64, usize> {
        let mut m = HashMap::new();
        for f in &self.edges[to].rx {
            if let Some(id) = f.id {
                *m.entry(id).or_insert(0) += 1;
            }
        }
        m
    }

    /// When edge `to` first received frame `id`.
    pub fn rx_time(&self, to: EdgeId, id: u64) -> Option<Duration> {
        self.edges[to]
            .rx
            .iter()
            .find(|f| f.id == Some(id))
            .map(|f| f.at)
    }

    /// Asserts that every frame in `ids` reached `to` exactly once.
    pub fn assert_delivered_once(&self, to: EdgeId, ids: &[u64], what: &str) {
        let counts = self.rx_counts(to);
        let missing: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|i| !counts.contains_key(i))
            .collect();
        let dup: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|i| counts.get(i).is_some_and(|&c| c > 1))
            .collect();
        assert!(
            missing.is_empty() && dup.is_empty(),
            "{what}: {} of {} frames missing at edge{to} (first: {:?}, sent at {:?}), {} duplicated",
            missing.len(),
            ids.len(),
            missing.first(),
            missing.first().map(|&i| self.sent[i as usize].at),
            dup.len()
        );
    }

    // ----- observation -----

    /// An edge's state machine.
    pub fn edge(&self, id: EdgeId) -> &Edge {
        &self.edges[id].edge
    }

    /// An edge's public key.
    pub fn key(&self, id: EdgeId) -> PublicKey {
        self.edges[id].cfg.identity.public
    }

    /// What edge `of` knows of edge `about`.
    pub fn peer(&self, of: EdgeId, about: EdgeId) -> Option<PeerStatus> {
        let k = self.key(about);
        self.edge(of)
            .peers()
            .into_iter()
            .find(|p| p.public_key == k)
    }

    /// The path edge `of` uses to edge `to` (None if it does not know it).
    pub fn path(&self, of: EdgeId, to: EdgeId) -> Option<Path> {
        self.peer(of, to).map(|p| p.path)
    }

    /// Whether edge `of` has a session with edge `to`.
    pub fn is_up(&self, of: EdgeId, to: EdgeId) -> bool {
        self.peer(of, to).is_some_and(|p| p.state == PeerState::Up)
    }

    /// Whether both edges see each other up.
    pub fn pair_up(&self, a: EdgeId, b: EdgeId) -> bool {
        self.is_up(a, b) && self.is_up(b, a)
    }

    /// Whether both edges use a direct path to each other.
    pub fn pair_direct(&self, a: EdgeId, b: EdgeId) -> bool {
        self.pair_up(a, b)
            && self.path(a, b).is_some_and(|p| p.is_direct())
            && self.path(b, a).is_some_and(|p| p.is_direct())
    }

    /// Whether every pair of `ids` is up both ways.
    pub fn all_up(&self, ids: &[EdgeId]) -> bool {
        pairs(ids).all(|(a, b)| self.pair_up(a, b))
    }

    /// Whether every pair of `ids` is direct both ways.
    pub fn all_direct(&self, ids: &[EdgeId]) -> bool {
        pairs(ids).all(|(a, b)| self.pair_direct(a, b))
    }

    /// The supernode's counters (of the running instance).
    pub fn sn_stats(&self) -> SupernodeStats {
        self.sn().stats()
    }

    /// The running supernode, to drive it by hand.
    pub fn sn_mut(&mut self) -> &mut Supernode {
        self.sn
            .as_mut()
            .and_then(|s| s.sn.as_mut())
            .expect("supernode running")
    }

    /// The running supernode.
    pub fn sn(&self) -> &Supernode {
        self.sn
            .as_ref()
            .and_then(|s| s.sn.as_ref())
            .expect("supernode running")
    }

    /// The public address of a NAT.
    pub fn nat(&self, n: NatId) -> &Nat {
        &self.nats[n.0]
    }

    /// An edge's own socket address.
    pub fn addr(&self, id: EdgeId) -> SocketAddr {
        self.hosts[self.edges[id].host].addr
    }

    /// Events of edge `id` since virtual time `since`.
    pub fn events_since(&self, id: EdgeId, since: Duration) -> impl Iterator<Item = &Event> {
        self.edges[id]
            .events
            .iter()
            .filter(move |(t, _)| *t >= since)
            .map(|(_, e)| e)
    }
}

/// A one-line description of a datagram, for traces.
fn describe(d: &[u8]) -> String {
    use weft_proto::wire::{decode, Message};
    fn inner(m: &Message) -> String {
        match m {
            Message::HandshakeInit(h) => format!("HandshakeInit(sender {:08x})", h.sender_index),
            Message::HandshakeResp(h) => format!(
                "HandshakeResp(sender {:08x}, receiver {:08x})",
                h.sender_index, h.receiver_index
            ),
            Message::Data(h, _) => {
                format!(
                    "Data({:?}, receiver {:08x}, #{})",
                    h.kind, h.receiver_index, h.counter
                )
            }
            Message::Relay { dest, inner: i } => format!(
                "Relay(to {dest:?}: {})",
                decode(i)
                    .map(|m| inner(&m))
                    .unwrap_or_else(|e| format!("{e}"))
            ),
            Message::Relayed { src, inner: i } => format!(
                "Relayed(from {src:?}: {})",
                decode(i)
                    .map(|m| inner(&m))
                    .unwrap_or_else(|e| format!("{e}"))
            ),
            Message::PeerInfo(p) => format!(
                "PeerInfo({:?} at {}, punch {})",
                p.public_key, p.observed, p.punch
            ),
            Message::Register(r) => {
                format!("Register({:?}, peers {})", r.public_key, r.wants_peers)
            }
            Message::RegisterAck(a) => format!("RegisterAck(observed {})", a.observed),
            other => format!("{other:?}"),
        }
    }
    decode(d)
        .map(|m| inner(&m))
        .unwrap_or_else(|e| format!("undecodable: {e}"))
}

/// Every unordered pair of `ids`.
pub fn pairs(ids: &[EdgeId]) -> impl Iterator<Item = (EdgeId, EdgeId)> + '_ {
    ids.iter()
        .enumerate()
        .flat_map(move |(i, &a)| ids[i + 1..].iter().map(move |&b| (a, b)))
}

/// A minimal Ethernet frame: destination, source, ethertype 0x88b5, a marker and the frame id, padded to
/// the 60-byte Ethernet minimum.
/// Where a scheduled frame is cut when handed to the edge in two parts, as the daemon hands over
/// segmentation-offload frames: it varies with the frame (its last bytes carry its id), through the MAC
/// addresses and the whole frame (0 and the full length included), so every scenario also checks that the
/// two-part path delivers exactly the frame that went in.
fn split_point(frame: &[u8]) -> usize {
    let n = frame.len();
    let id = frame
        .iter()
        .skip(22)
        .take(8)
        .fold(0usize, |a, b| a * 31 + *b as usize);
    id % (n + 1)
}

pub fn build_frame(dst: MacAddr, src: MacAddr, id: u64) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ETHERTYPE);
    f.extend_from_slice(FRAME_MAGIC);
    f.extend_from_slice(&id.to_be_bytes());
    f.resize(60, 0);
    f
}

fn parse_frame(at: Duration, f: &[u8]) -> RxFrame {
    let Ok(eth) = EthernetFrame::new_checked(f) else {
        panic!(
            "the edge wrote a runt frame of {} bytes to the TAP",
            f.len()
        );
    };
    // The payload of a test frame: the marker, then the frame id.
    let p = eth.payload();
    let id = (eth.ethertype() == u16::from_be_bytes(ETHERTYPE)
        && p.len() >= 16
        && &p[..8] == FRAME_MAGIC)
        .then(|| u64::from_be_bytes(p[8..16].try_into().expect("8 bytes")));
    RxFrame {
        at,
        dst: eth.dst_addr(),
        src: eth.src_addr(),
        id,
    }
}

#[cfg(test)]
mod tests {
    //! The NAT models and the network, checked on their own.
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cone_nat_keeps_one_port_and_filters_by_remote_endpoint() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut nat = Nat::new(
            NatKind::Cone,
            Ipv4Addr::new(203, 0, 113, 1),
            1,
            Link::default(),
        );
        let inside = sa("192.168.1.2:7777");
        let (r1, r2) = (sa("198.51.100.1:1000"), sa("198.51.100.2:2000"));
        let p1 = nat.outbound(secs(0), inside, r1, &mut rng);
        let p2 = nat.outbound(secs(1), inside, r2, &mut rng);
        assert_eq!(p1, 7777, "the inside port is kept when free");
        assert_eq!(p1, p2, "endpoint-independent mapping");
        assert_eq!(nat.inbound(secs(2), r1, p1), Some(inside));
        assert_eq!(nat.inbound(secs(2), r2, p1), Some(inside));
        // Same address, other port: address-and-port-dependent filtering refuses it.
        assert_eq!(nat.inbound(secs(2), sa("198.51.100.1:1001"), p1), None);
        assert_eq!(nat.inbound(secs(2), sa("198.51.100.9:1000"), p1), None);
        assert_eq!(nat.inbound(secs(2), r1, p1 + 1), None);
        // A second inside host wanting the same port gets another one.
        let other = nat.outbound(secs(2), sa("192.168.1.3:7777"), r1, &mut rng);
        assert_ne!(other, p1);
        // Idle for the timeout: r2's permission (last used at 2 s) lapses, r1's is refreshed at 5 s.
        nat.timeout = secs(10);
        assert_eq!(nat.inbound(secs(5), r1, p1), Some(inside));
        assert_eq!(nat.inbound(secs(13), r1, p1), Some(inside));
        assert_eq!(nat.inbound(secs(13), r2, p1), None, "expired");
        assert_eq!(nat.inbound(secs(30), r1, p1), None, "whole mapping expired");
        assert_eq!(nat.mappings(), 0);
        assert_eq!(nat.stats.filtered, 5);
    }

    #[test]
    fn symmetric_nat_maps_per_remote_and_filters_strictly() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut nat = Nat::new(
            NatKind::Symmetric,
            Ipv4Addr::new(203, 0, 113, 1),
            1,
            Link::default(),
        );
        let inside = sa("192.168.1.2:7777");
        let (r1, r2) = (sa("198.51.100.1:1000"), sa("198.51.100.2:2000"));
        let p1 = nat.outbound(secs(0), inside, r1, &mut rng);
        let p2 = nat.outbound(secs(0), inside, r2, &mut rng);
        assert_ne!(p1, p2, "a mapping per remote endpoint");
        assert_eq!(
            nat.outbound(secs(1), inside, r1, &mut rng),
            p1,
            "stable while used"
        );
        assert_eq!(nat.inbound(secs(1), r1, p1), Some(inside));
        assert_eq!(
            nat.inbound(secs(1), r2, p1),
            None,
            "r2 may only use its own mapping"
        );
        assert_eq!(nat.inbound(secs(1), r2, p2), Some(inside));
        nat.timeout = secs(5);
        assert_eq!(nat.inbound(secs(7), r1, p1), None, "expired");
        assert_eq!(nat.mappings(), 0);
    }

    #[test]
    fn links_lose_duplicate_and_reorder_deterministically() {
        let run = |seed| {
            let mut sim = Sim::new(seed);
            let lossy = Link {
                delay: ms(20),
                jitter: ms(10),
                loss: 0.1,
                duplicate: 0.05,
            };
            // Two edges without a supernode: their registrations to SN_ADDR are unroutable, but the
            // handshake initiations go nowhere either; instead send raw datagrams between them.
            let a = sim.add_edge_with(Location::Internet(lossy), |c| c.supernodes.clear());
            let b = sim.add_edge_with(Location::Internet(lossy), |c| c.supernodes.clear());
            let (ha, bb) = (sim.edges[a].host, sim.addr(b));
            for i in 0..2000u32 {
                sim.send(
                    ha,
                    Transmit {
                        dest: bb,
                        payload: i.to_be_bytes().to_vec(),
                    },
                );
            }
            sim.run_for(secs(1));
            (sim.net, sim.edge(b).stats().rx_packets)
        };
        let (n, rx) = run(7);
        // Two links at 10% each: about 19% lost, about 9.75% of the rest duplicated.
        assert!((300..460).contains(&n.lost), "lost {}", n.lost);
        assert!(
            (120..230).contains(&n.duplicated),
            "duplicated {}",
            n.duplicated
        );
        assert_eq!(rx, n.delivered);
        assert_eq!(n.delivered, 2000 - n.lost + n.duplicated);
        let (n2, _) = run(7);
        assert_eq!(
            (n.lost, n.duplicated),
            (n2.lost, n2.duplicated),
            "same seed, same world"
        );
    }
}
