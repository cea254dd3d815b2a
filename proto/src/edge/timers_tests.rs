//! The timer table against a brute-force reference: a small mesh (a supernode and a few edges on a lossy
//! network with partitions, random frames and short timers, so that every kind of timer fires many times)
//! is driven the way a daemon drives it, and after every call into an edge its `poll_timeout` must not be
//! later than the earliest deadline computed over every peer; a timer handled at that instant must do the
//! work that was due and leave `poll_timeout` strictly in the future (the driver never spins).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::edge::{AddressMode, Edge, EdgeConfig, Limits, Timers};
use crate::keys::{CommunityKeys, StaticKeypair};
use crate::supernode::{Supernode, SupernodeConfig};
use crate::wire::{Ipv4Net, MacAddr};

const SN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 7654);
const EDGES: usize = 5;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i as u8 + 1)), 7777)
}

fn mac(i: usize) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, i as u8 + 1])
}

/// The protocol timers shortened about tenfold, so a minute of virtual time sees many rekeys, retries,
/// direct-path timeouts and forgotten peers.
fn short_timers() -> Timers {
    Timers {
        register_interval: Duration::from_secs(2),
        register_retry: Duration::from_millis(200),
        direct_timeout: Duration::from_secs(2),
        keepalive: Duration::from_secs(1),
        peer_timeout: Duration::from_secs(7),
        probe_first: Duration::from_millis(100),
        probe_max: Duration::from_secs(2),
        handshake_retry: Duration::from_millis(200),
        handshake_attempts: 5,
        rekey_after_time: Duration::from_secs(5),
        reject_after_time: Duration::from_secs(8),
        mac_ageing: Duration::from_secs(10),
        supernode_ping: Duration::from_millis(500),
        supernode_dead: Duration::from_millis(1500),
    }
}

/// A datagram on the wire: (arrival, sequence, from, to, bytes).
type InFlight = (Instant, u64, SocketAddr, SocketAddr, Vec<u8>);

struct Mesh {
    rng: ChaCha8Rng,
    now: Instant,
    sn: Supernode,
    edges: Vec<Edge>,
    /// Until when each edge is cut off from the network.
    cut_until: Vec<Instant>,
    wire: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Timer calls that found due work, and those that came from an early (stale) entry.
    fired: u64,
    early: u64,
}

#[derive(Clone, Copy)]
enum Next {
    Datagram,
    SupernodeTimer,
    EdgeTimer(usize),
    Action,
}

impl Mesh {
    fn new(seed: u64) -> Mesh {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let now = Instant::now();
        let community = CommunityKeys::from_key_material("timers", b"timers secret");
        let edges = (0..EDGES)
            .map(|i| {
                let mut private = [0u8; 32];
                rng.fill_bytes(&mut private);
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                let cfg = EdgeConfig {
                    community: community.clone(),
                    identity: StaticKeypair::from_private(private),
                    supernodes: vec![SN],
                    supernode_keys: Default::default(),
                    mac: mac(i),
                    address: AddressMode::Static(Ipv4Net {
                        addr: Ipv4Addr::new(10, 9, 0, i as u8 + 1),
                        prefix: 24,
                    }),
                    local_addrs: vec![addr(i)],
                    avoid_nets: Vec::new(),
                    description: format!("e{i}"),
                    // One edge relays only: its peers keep probing paths that never answer.
                    allow_p2p: i != 0,
                    timers: short_timers(),
                    limits: Limits::default(),
                };
                Edge::new(cfg, now, 1_750_000_000_000_000, seed)
            })
            .collect();
        Mesh {
            rng,
            now,
            sn: Supernode::new(SupernodeConfig::default(), now, Vec::new()),
            edges,
            cut_until: vec![now; EDGES],
            wire: BinaryHeap::new(),
            seq: 0,
            fired: 0,
            early: 0,
        }
    }

    fn index(a: SocketAddr) -> Option<usize> {
        (0..EDGES).find(|&i| addr(i) == a)
    }

    fn cut(&self, a: SocketAddr) -> bool {
        Self::index(a).is_some_and(|i| self.cut_until[i] > self.now)
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, d: Vec<u8>) {
        let delay = Duration::from_micros(500 + self.rng.next_u64() % 30_000);
        self.seq += 1;
        self.wire
            .push(Reverse((self.now + delay, self.seq, from, to, d)));
    }

    fn drain_edge(&mut self, i: usize) {
        while let Some(t) = self.edges[i].poll_transmit() {
            self.send(addr(i), t.dest, t.payload);
        }
        while self.edges[i].poll_tap().is_some() {}
        while self.edges[i].poll_event().is_some() {}
    }

    fn drain_sn(&mut self) {
        while let Some(t) = self.sn.poll_transmit() {
            self.send(SN, t.dest, t.payload);
        }
        while self.sn.poll_event().is_some() {}
    }

    /// The invariant, after every call into edge `i`.
    fn check(&self, i: usize, what: &str) {
        let e = &self.edges[i];
        let (table, truth) = (e.poll_timeout(), e.brute_force_timeout());
        assert!(
            table <= truth,
            "edge {i} after {what}: poll_timeout is {:?} after the earliest deadline",
            table - truth
        );
    }

    fn step(&mut self, next_action: &mut Instant) {
        let mut best = (*next_action, Next::Action);
        if let Some(Reverse((at, ..))) = self.wire.peek() {
            if *at < best.0 {
                best = (*at, Next::Datagram);
            }
        }
        if self.sn.poll_timeout() < best.0 {
            best = (self.sn.poll_timeout(), Next::SupernodeTimer);
        }
        for i in 0..EDGES {
            let at = self.edges[i].poll_timeout();
            if at < best.0 {
                best = (at, Next::EdgeTimer(i));
            }
        }
        let (at, what) = best;
        // A deadline can lie in the past (a keepalive armed by a session installed long after the last
        // packet sent): it is due now.
        self.now = at.max(self.now);
        let now = self.now;
        match what {
            Next::Datagram => {
                let Some(Reverse((_, _, from, to, mut d))) = self.wire.pop() else {
                    return;
                };
                if self.cut(from) || self.cut(to) || self.rng.next_u32() < u32::MAX / 50 {
                    return; // partitioned, or lost
                }
                if to == SN {
                    self.sn.handle_udp(now, from, &d);
                    self.drain_sn();
                } else if let Some(i) = Self::index(to) {
                    self.edges[i].handle_udp(now, from, &mut d);
                    self.check(i, "handle_udp");
                    self.drain_edge(i);
                }
            }
            Next::SupernodeTimer => {
                self.sn.handle_timeout(now);
                self.drain_sn();
            }
            Next::EdgeTimer(i) => {
                let due = self.edges[i].brute_force_timeout() <= now;
                self.edges[i].handle_timeout(now);
                self.check(i, "handle_timeout");
                let e = &self.edges[i];
                assert!(
                    e.poll_timeout() > now,
                    "edge {i}: poll_timeout not after now right after handle_timeout(now)"
                );
                assert!(
                    e.brute_force_timeout() > now,
                    "edge {i}: a timer due at now is still due after handle_timeout(now)"
                );
                if due {
                    self.fired += 1;
                } else {
                    self.early += 1;
                }
                self.drain_edge(i);
            }
            Next::Action => {
                let i = (self.rng.next_u32() as usize) % EDGES;
                match self.rng.next_u32() % 10 {
                    // Cut an edge off for a while: its direct paths time out, handshakes retry, and a
                    // long cut makes its peers forget it.
                    0 => {
                        let secs = 1 + self.rng.next_u64() % 12;
                        self.cut_until[i] = now + Duration::from_secs(secs);
                    }
                    // A frame to another edge's MAC, or a broadcast.
                    n => {
                        let dst = if n == 1 {
                            MacAddr::BROADCAST
                        } else {
                            mac((self.rng.next_u32() as usize) % EDGES)
                        };
                        let mut frame = Vec::with_capacity(60);
                        frame.extend_from_slice(&dst.0);
                        frame.extend_from_slice(&mac(i).0);
                        frame.extend_from_slice(&[0x88, 0xb5]);
                        frame.resize(60, 0xab);
                        self.edges[i].handle_tap_frame(now, &frame);
                        self.check(i, "handle_tap_frame");
                        self.drain_edge(i);
                    }
                }
                *next_action = now + Duration::from_millis(20 + self.rng.next_u64() % 400);
            }
        }
    }
}

#[test]
fn poll_timeout_is_never_later_than_the_earliest_deadline() {
    for seed in 1..=3 {
        let mut m = Mesh::new(seed);
        let end = m.now + Duration::from_secs(60);
        let mut next_action = m.now + Duration::from_millis(300);
        let mut steps = 0u32;
        while m.now < end {
            m.step(&mut next_action);
            steps += 1;
            assert!(
                steps < 2_000_000,
                "seed {seed}: the mesh never got to its end"
            );
        }
        assert!(
            m.fired > 1000,
            "seed {seed}: only {} timer calls found work",
            m.fired
        );
        let up = m.edges.iter().map(|e| e.peers().len()).sum::<usize>();
        assert!(up > 0, "seed {seed}: no peer known at the end");
    }
}
