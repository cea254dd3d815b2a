//! Two edges with an established, direct session, built the way `tests/sim/` drives the state machines
//! (every `poll_transmit` output goes to the node at its destination address, timers fire from
//! `poll_timeout`), but on a zero-latency network with no NAT, loss or jitter, and with fixed keys and seeds.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use weft_proto::edge::{AddressMode, Edge, EdgeConfig, Limits, Path, PeerState, Timers};
use weft_proto::keys::{CommunityKeys, StaticKeypair};
use weft_proto::supernode::{Supernode, SupernodeConfig};
use weft_proto::wire::{Ipv4Net, MacAddr};
use weft_proto::Transmit;

const SN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 7654);
/// Wall clock handed to the edges (their registration counters and handshake stamps build on it).
const WALL_US: u64 = 1_750_000_000_000_000;
/// Ethertype of the frames the benchmark sends (IEEE local experimental).
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

/// Edge `a` sends to edge `b` over an established direct session; both MAC tables know the other side.
pub struct Pair {
    /// The sender.
    pub a: Edge,
    /// The receiver.
    pub b: Edge,
    /// Where `a`'s datagrams come from, as `b` sees it.
    pub a_addr: SocketAddr,
    /// The instant to drive both edges with: the session is fresh, no timer is due.
    pub now: Instant,
    a_mac: MacAddr,
    b_mac: MacAddr,
}

impl Pair {
    /// An Ethernet frame of `len` bytes (at least 14) from `a`'s MAC to `b`'s.
    pub fn frame_a_to_b(&self, len: usize) -> Vec<u8> {
        ethernet(self.b_mac, self.a_mac, len)
    }
}

fn ethernet(dst: MacAddr, src: MacAddr, len: usize) -> Vec<u8> {
    assert!(len >= 14, "an Ethernet frame has a 14-byte header");
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ETHERTYPE);
    f.extend((14..len).map(|i| i as u8));
    f
}

fn config(n: u8) -> EdgeConfig {
    let addr = edge_addr(n);
    EdgeConfig {
        community: CommunityKeys::from_key_material("bench", b"bench secret"),
        identity: StaticKeypair::from_private([n; 32]),
        supernodes: vec![SN_ADDR],
        supernode_keys: Default::default(),
        mac: MacAddr([0x02, 0x5e, 0, 0, 0, n]),
        address: AddressMode::Static(Ipv4Net {
            addr: Ipv4Addr::new(10, 77, 0, n),
            prefix: 16,
        }),
        local_addrs: vec![addr],
        avoid_nets: Vec::new(),
        description: format!("bench{n}"),
        allow_p2p: true,
        timers: Timers::default(),
        limits: Limits::default(),
    }
}

fn edge_addr(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, n)), 7777)
}

/// The three nodes on a perfect network.
struct Net {
    sn: Supernode,
    edges: [Edge; 2],
    addrs: [SocketAddr; 2],
    /// (from, datagram) in flight.
    queue: VecDeque<(SocketAddr, Transmit)>,
    rx_frames: usize,
}

impl Net {
    fn collect(&mut self) {
        while let Some(t) = self.sn.poll_transmit() {
            self.queue.push_back((SN_ADDR, t));
        }
        for (i, e) in self.edges.iter_mut().enumerate() {
            while let Some(t) = e.poll_transmit() {
                self.queue.push_back((self.addrs[i], t));
            }
            while e.poll_tap().is_some() {
                self.rx_frames += 1;
            }
            while e.poll_event().is_some() {}
        }
    }

    /// Delivers everything in flight, and what it causes, at `now`.
    fn settle(&mut self, now: Instant) {
        self.collect();
        while let Some((from, mut t)) = self.queue.pop_front() {
            if t.dest == SN_ADDR {
                self.sn.handle_udp(now, from, &t.payload);
            } else if let Some(i) = self.addrs.iter().position(|a| *a == t.dest) {
                self.edges[i].handle_udp(now, from, &mut t.payload);
            }
            self.collect();
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if self.sn.poll_timeout() <= now {
            self.sn.handle_timeout(now);
        }
        for e in &mut self.edges {
            if e.poll_timeout() <= now {
                e.handle_timeout(now);
            }
        }
    }

    fn direct_and_up(&self) -> bool {
        self.edges.iter().all(|e| {
            let peers = e.peers();
            peers.len() == 1 && peers[0].state == PeerState::Up && peers[0].path.is_direct()
        })
    }
}

/// Registers both edges with a supernode, lets them handshake through its relay and switch to the direct
/// path, then teaches each MAC table where the other edge's MAC is. Panics if that takes more than ten
/// seconds of virtual time (it takes a few hundred milliseconds: one probe round).
pub fn established() -> Pair {
    let start = Instant::now();
    let cfgs = [config(1), config(2)];
    let mut net = Net {
        sn: Supernode::new(SupernodeConfig::default(), start, Vec::new()),
        edges: [
            Edge::new(cfgs[0].clone(), start, WALL_US, [0xa1; 32]),
            Edge::new(cfgs[1].clone(), start, WALL_US, [0xb2; 32]),
        ],
        addrs: [edge_addr(1), edge_addr(2)],
        queue: VecDeque::new(),
        rx_frames: 0,
    };
    let mut now = start;
    while !net.direct_and_up() {
        assert!(
            now - start < Duration::from_secs(10),
            "edges did not reach a direct session"
        );
        net.fire_timers(now);
        net.settle(now);
        now += Duration::from_millis(5);
    }
    // One frame each way: each edge floods the first frame to its only peer, the other learns the MAC.
    let (a_mac, b_mac) = (cfgs[0].mac, cfgs[1].mac);
    net.edges[0].handle_tap_frame(now, &ethernet(b_mac, a_mac, 60));
    net.settle(now);
    net.edges[1].handle_tap_frame(now, &ethernet(a_mac, b_mac, 60));
    net.settle(now);
    assert_eq!(net.rx_frames, 2, "warm-up frames delivered");
    for e in &net.edges {
        assert_eq!(e.peers()[0].learned_macs.len(), 1, "MAC learned");
        assert!(matches!(e.peers()[0].path, Path::Direct(_)));
    }
    let [a, b] = net.edges;
    Pair {
        a,
        b,
        a_addr: net.addrs[0],
        now,
        a_mac,
        b_mac,
    }
}
