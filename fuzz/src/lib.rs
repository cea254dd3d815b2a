//! What the state-machine fuzz targets share: a small mesh (one supernode, two edges) driven the way the
//! daemons drive it, and a sequence of network events chosen by the fuzzer.
//!
//! The mesh first comes up for real (registration, introduction, handshakes through the relay, the direct
//! path), so the fuzzer starts deep inside the protocol rather than at the first byte of a REGISTER; it
//! keeps every datagram the nodes exchanged, and the events can replay one of them with bytes flipped, from
//! any address, to any node. What must hold whatever the events: no panic, and output queues that stay
//! bounded (the state machines cap them; the harness drains them as a driver would).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use weft_proto::edge::{AddressMode, Edge, EdgeConfig, Limits, Timers};
use weft_proto::keys::{CommunityKeys, StaticKeypair};
use weft_proto::supernode::{Supernode, SupernodeConfig};
use weft_proto::wire::{Ipv4Net, MacAddr};

const SN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 7654);
const WALL_US: u64 = 1_750_000_000_000_000;
/// Datagrams kept for replay.
const KEEP: usize = 256;

/// Which node an event goes to.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Node {
    /// The supernode.
    Supernode,
    /// Edge 0 or 1.
    Edge(bool),
}

/// Where an injected datagram claims to come from.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Source {
    /// The supernode's address (what an on-path attacker can spoof).
    Supernode,
    /// One of the edges' addresses.
    Edge(bool),
    /// A stranger: another address, IPv4 or IPv6.
    Stranger(u16, bool),
}

/// One thing that happens on the network.
#[derive(Debug, Arbitrary)]
pub enum Event {
    /// Arbitrary bytes, to a node, from a source.
    Inject {
        to: Node,
        from: Source,
        bytes: Vec<u8>,
    },
    /// A datagram the nodes really exchanged, with some bytes changed, sent again.
    Replay {
        to: Node,
        from: Source,
        which: u8,
        flips: Vec<(u16, u8)>,
        truncate: Option<u16>,
    },
    /// An Ethernet frame from an edge's TAP device.
    Frame { edge: bool, bytes: Vec<u8> },
    /// Time passes (milliseconds), timers fire and what is in flight is delivered.
    Advance(u16),
}

/// The mesh. See the crate documentation.
pub struct Mesh {
    sn: Supernode,
    edges: [Edge; 2],
    addrs: [SocketAddr; 2],
    now: Instant,
    in_flight: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    seen: VecDeque<Vec<u8>>,
}

fn edge_addr(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, n)), 7777)
}

fn config(n: u8) -> EdgeConfig {
    EdgeConfig {
        community: CommunityKeys::from_key_material("fuzz", b"fuzz secret"),
        identity: StaticKeypair::from_private([n; 32]),
        supernodes: vec![SN_ADDR],
        supernode_keys: Default::default(),
        mac: MacAddr([0x02, 0x5e, 0, 0, 0, n]),
        address: if n == 1 {
            AddressMode::Auto
        } else {
            AddressMode::Static(Ipv4Net {
                addr: Ipv4Addr::new(10, 77, 0, n),
                prefix: 16,
            })
        },
        local_addrs: vec![edge_addr(n)],
        avoid_nets: Vec::new(),
        description: format!("fuzz{n}"),
        allow_p2p: true,
        timers: Timers::default(),
        limits: Limits::default(),
    }
}

impl Mesh {
    /// A supernode and two edges that have come up and found their direct path (or a fixed amount of
    /// virtual time has passed).
    pub fn established() -> Mesh {
        let now = Instant::now();
        let mut m = Mesh {
            sn: Supernode::new(SupernodeConfig::default(), now, Vec::new()),
            edges: [
                Edge::new(config(1), now, WALL_US, [0xa1; 32]),
                Edge::new(config(2), now, WALL_US, [0xb2; 32]),
            ],
            addrs: [edge_addr(1), edge_addr(2)],
            now,
            in_flight: VecDeque::new(),
            seen: VecDeque::new(),
        };
        // Until both edges reach each other directly (a few hundred milliseconds of virtual time), at
        // most two seconds: each fuzz run starts here, so the warm-up is most of its cost.
        for _ in 0..400 {
            m.advance(Duration::from_millis(5));
            let direct = |e: &Edge| e.peers().iter().any(|p| p.path.is_direct());
            if m.edges.iter().all(direct) {
                break;
            }
        }
        m
    }

    fn addr_of(&self, n: Node) -> SocketAddr {
        match n {
            Node::Supernode => SN_ADDR,
            Node::Edge(i) => self.addrs[i as usize],
        }
    }

    fn source(&self, s: Source) -> SocketAddr {
        match s {
            Source::Supernode => SN_ADDR,
            Source::Edge(i) => self.addrs[i as usize],
            Source::Stranger(port, false) => {
                SocketAddr::new(Ipv4Addr::new(203, 0, 113, 9).into(), port)
            }
            Source::Stranger(port, true) => {
                SocketAddr::new("2001:db8::9".parse::<IpAddr>().expect("literal"), port)
            }
        }
    }

    /// Hands one datagram to the node at `to`.
    fn deliver(&mut self, from: SocketAddr, to: SocketAddr, mut bytes: Vec<u8>) {
        if to == SN_ADDR {
            self.sn.handle_udp(self.now, from, &bytes);
        } else if let Some(i) = self.addrs.iter().position(|a| *a == to) {
            self.edges[i].handle_udp(self.now, from, &mut bytes);
        }
        self.collect();
    }

    /// Takes what every node produced, as a driver would: datagrams go in flight (and are kept for
    /// replay), frames and events are drained.
    fn collect(&mut self) {
        while let Some(t) = self.sn.poll_transmit() {
            self.keep(&t.payload);
            self.in_flight.push_back((SN_ADDR, t.dest, t.payload));
        }
        for i in 0..2 {
            while let Some(t) = self.edges[i].poll_transmit() {
                self.keep(&t.payload);
                self.in_flight.push_back((self.addrs[i], t.dest, t.payload));
            }
            while self.edges[i].poll_tap().is_some() {}
            while self.edges[i].poll_event().is_some() {}
        }
        while self.sn.poll_event().is_some() {}
    }

    fn keep(&mut self, d: &[u8]) {
        if self.seen.len() >= KEEP {
            self.seen.pop_front();
        }
        self.seen.push_back(d.to_vec());
    }

    /// Lets `d` pass: due timers fire, then everything in flight (and what it causes) is delivered,
    /// at most a bounded number of datagrams so a fuzz input cannot loop for ever.
    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.sn.poll_timeout() <= self.now {
            self.sn.handle_timeout(self.now);
        }
        for e in &mut self.edges {
            if e.poll_timeout() <= self.now {
                e.handle_timeout(self.now);
            }
        }
        self.collect();
        for _ in 0..10_000 {
            let Some((from, to, bytes)) = self.in_flight.pop_front() else {
                break;
            };
            self.deliver(from, to, bytes);
        }
        self.in_flight.clear();
    }

    /// Applies one event.
    pub fn apply(&mut self, ev: Event) {
        match ev {
            Event::Inject { to, from, bytes } => {
                let (from, to) = (self.source(from), self.addr_of(to));
                self.deliver(from, to, bytes);
            }
            Event::Replay {
                to,
                from,
                which,
                flips,
                truncate,
            } => {
                if self.seen.is_empty() {
                    return;
                }
                let mut d = self.seen[which as usize % self.seen.len()].clone();
                for (pos, xor) in flips.into_iter().take(8) {
                    if !d.is_empty() {
                        let n = d.len();
                        d[pos as usize % n] ^= xor;
                    }
                }
                if let Some(t) = truncate {
                    d.truncate(t as usize);
                }
                let (from, to) = (self.source(from), self.addr_of(to));
                self.deliver(from, to, d);
            }
            Event::Frame { edge, bytes } => {
                self.edges[edge as usize].handle_tap_frame(self.now, &bytes);
                self.collect();
            }
            Event::Advance(ms) => self.advance(Duration::from_millis(u64::from(ms))),
        }
    }

    /// Runs `events` (at most a bounded number) and lets the mesh settle.
    pub fn run(events: Vec<Event>) {
        let mut m = Mesh::established();
        for ev in events.into_iter().take(64) {
            m.apply(ev);
        }
        m.advance(Duration::from_secs(1));
        // Both edges still report a status (nothing in them is left inconsistent enough to panic).
        for e in &m.edges {
            let _ = e.peers();
            let _ = e.supernodes();
        }
    }
}
