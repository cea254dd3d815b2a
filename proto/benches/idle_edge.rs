//! What an idle edge costs as its peer count grows: one edge (the hub) with 50, 200 or 1,000 established
//! direct sessions and no traffic, driven the way the daemon drives it (re-read `poll_timeout` after every
//! `handle_*` call, call `handle_timeout` when it is due).
//!
//! - `idle_edge/second/N`: the hub's `poll_timeout` and `handle_timeout` calls over one simulated second,
//!   plus one `poll_timeout` read after each datagram the hub receives (a keepalive's reply). Only those
//!   calls are timed; the other edges and the supernode run between them, untimed. The time per iteration
//!   is the CPU an idle edge spends on its timers per second.
//! - `idle_edge/poll_timeout/N`: one `poll_timeout` call, the price of one turn of the driver's loop.
//!
//! The peers come up through real Noise handshakes, relayed by a stand-in supernode (acknowledges every
//! registration, answers pings, relays, introduces the hub and one leaf to each other on cue), then move to
//! the direct path by probing, as in `tests/sim/`. They come up spread over ten seconds, so their keepalive
//! timers are spread as they are in a real mesh. Rekeying is pushed out of reach (`rekey_after_time`):
//! a rekey is a Noise handshake per peer every two minutes, a real but different cost, and criterion runs
//! thousands of simulated seconds.
//!
//! Run with `cargo bench -p weft-proto --bench idle_edge`; figures in `bench/MICRO.md`.

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use weft_proto::edge::{AddressMode, Edge, EdgeConfig, Limits, PeerState, Timers};
use weft_proto::keys::{CommunityKeys, PeerTag, StaticKeypair};
use weft_proto::wire::{
    self, Ipv4Net, MacAddr, Message, MsgType, PeerInfo, RegisterAck, SupernodePong,
};

const SN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 7654);
const WALL_US: u64 = 1_750_000_000_000_000;
/// The peer counts measured.
const PEERS: [usize; 3] = [50, 200, 1000];
/// The peers come up spread over this long.
const SPREAD: Duration = Duration::from_secs(10);
/// Virtual time step while the mesh comes up.
const STEP: Duration = Duration::from_millis(5);

fn timers() -> Timers {
    Timers {
        rekey_after_time: Duration::from_secs(10_000_000),
        reject_after_time: Duration::from_secs(20_000_000),
        ..Timers::default()
    }
}

/// Node 0 is the hub; node `i` > 0 is leaf `i`.
fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8)),
        7777,
    )
}

fn config(i: usize, community: &CommunityKeys) -> EdgeConfig {
    let mut private = [7u8; 32];
    // Not the first byte: X25519 clamps its low bits away.
    private[8..16].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    EdgeConfig {
        community: community.clone(),
        identity: StaticKeypair::from_private(private),
        supernodes: vec![SN_ADDR],
        supernode_keys: Default::default(),
        mac: MacAddr([0x02, 0x5e, 0, 0, (i >> 8) as u8, i as u8]),
        address: AddressMode::Static(Ipv4Net {
            addr: Ipv4Addr::new(10, 77, (i >> 8) as u8, i as u8),
            prefix: 16,
        }),
        local_addrs: vec![addr(i)],
        avoid_nets: Vec::new(),
        description: format!("edge{i}"),
        allow_p2p: true,
        timers: timers(),
        limits: Limits::default(),
    }
}

/// The hub, its leaves and a stand-in supernode on a perfect network.
struct Mesh {
    nodes: Vec<Edge>,
    index: HashMap<SocketAddr, usize>,
    /// The supernode's view: who registered from where.
    tag_addr: HashMap<PeerTag, SocketAddr>,
    addr_tag: HashMap<SocketAddr, PeerTag>,
    /// (from, to, datagram) in flight.
    queue: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    now: Instant,
    /// Timed: the hub's `poll_timeout` and `handle_timeout` calls.
    spent: Duration,
    /// Driver turns of the hub (timer expiries and datagrams handled).
    turns: u64,
    timing: bool,
}

impl Mesh {
    fn new(peers: usize) -> Mesh {
        let community = CommunityKeys::from_key_material("bench", b"bench secret");
        let start = Instant::now();
        let nodes: Vec<Edge> = (0..=peers)
            .map(|i| {
                let mut seed = [0x5au8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                Edge::new(config(i, &community), start, WALL_US, seed)
            })
            .collect();
        let index = (0..=peers).map(|i| (addr(i), i)).collect();
        let mut m = Mesh {
            nodes,
            index,
            tag_addr: HashMap::new(),
            addr_tag: HashMap::new(),
            queue: VecDeque::new(),
            now: start,
            spent: Duration::ZERO,
            turns: 0,
            timing: false,
        };
        m.come_up(peers, start);
        m
    }

    /// Introduces leaf after leaf to the hub, spread over [`SPREAD`], and runs until every session is up
    /// and direct.
    fn come_up(&mut self, peers: usize, start: Instant) {
        let mut introduced = 0;
        // `all_direct` lists every peer: look twice a second, not at every step.
        let mut next_check = start;
        loop {
            let now = self.now;
            while introduced < peers && start + SPREAD * introduced as u32 / peers as u32 <= now {
                introduced += 1;
                self.introduce(0, introduced, now);
            }
            for i in 0..=introduced {
                if self.nodes[i].poll_timeout() <= now {
                    self.nodes[i].handle_timeout(now);
                    self.collect(i);
                }
            }
            self.settle();
            if introduced == peers && now >= next_check {
                if self.all_direct() {
                    return;
                }
                next_check = now + Duration::from_millis(500);
            }
            if now - start >= SPREAD * 3 {
                let hub = self.nodes[0].peers();
                let up = hub.iter().filter(|p| p.state == PeerState::Up).count();
                let direct = hub.iter().filter(|p| p.path.is_direct()).count();
                panic!(
                    "the mesh of {peers} did not come up: the hub knows {} peers, {up} up, {direct} direct",
                    hub.len()
                );
            }
            self.now += STEP;
        }
    }

    fn all_direct(&self) -> bool {
        let hub = self.nodes[0].peers();
        hub.len() == self.nodes.len() - 1
            && hub
                .iter()
                .all(|p| p.state == PeerState::Up && p.path.is_direct())
    }

    /// What the supernode sends when `a` and `b` should meet: peer info to both, with the punch flag.
    fn introduce(&mut self, a: usize, b: usize, now: Instant) {
        // The leaf registers first (its first timer), so the supernode knows its tag for relaying.
        self.nodes[b].handle_timeout(now);
        self.collect(b);
        self.settle();
        for (to, about) in [(a, b), (b, a)] {
            let cfg = self.nodes[about].config();
            let info = PeerInfo {
                community: cfg.community.id,
                punch: true,
                public_key: cfg.identity.public,
                mac: cfg.mac,
                ip: None,
                observed: addr(about),
                local_addrs: Vec::new(),
                description: cfg.description.clone(),
            };
            let mut buf = Vec::new();
            info.encode(&mut buf);
            self.queue.push_back((SN_ADDR, addr(to), buf));
        }
        self.settle();
    }

    fn collect(&mut self, i: usize) {
        let from = addr(i);
        let e = &mut self.nodes[i];
        while let Some(t) = e.poll_transmit() {
            self.queue.push_back((from, t.dest, t.payload));
        }
        while e.poll_tap().is_some() {}
        while e.poll_event().is_some() {}
    }

    /// Delivers everything in flight, and what it causes.
    fn settle(&mut self) {
        let now = self.now;
        while let Some((from, to, mut d)) = self.queue.pop_front() {
            if to == SN_ADDR {
                self.supernode(from, &d);
                continue;
            }
            let Some(&i) = self.index.get(&to) else {
                continue;
            };
            self.nodes[i].handle_udp(now, from, &mut d);
            if i == 0 && self.timing {
                // The driver's next turn starts with reading the timer.
                let t0 = Instant::now();
                black_box(self.nodes[0].poll_timeout());
                self.spent += t0.elapsed();
                self.turns += 1;
            }
            self.collect(i);
        }
    }

    /// The stand-in supernode: acknowledges, pongs, relays.
    fn supernode(&mut self, from: SocketAddr, d: &[u8]) {
        let mut out = Vec::new();
        let to = match wire::decode(d) {
            Ok(Message::Register(reg)) => {
                self.tag_addr.insert(reg.public_key.tag(), from);
                self.addr_tag.insert(from, reg.public_key.tag());
                RegisterAck {
                    community: reg.community,
                    public_key: reg.public_key,
                    counter: reg.counter,
                    observed: from,
                    assigned_ip: None,
                    lifetime_secs: 60,
                    boot_id: 1,
                    introduced_only: false,
                }
                .encode(&mut out);
                from
            }
            Ok(Message::SupernodePing(nonce)) => {
                SupernodePong {
                    nonce,
                    boot_id: 1,
                    load_permille: 0,
                }
                .encode(&mut out);
                from
            }
            Ok(Message::Relay { dest, inner }) => {
                let (Some(&to), Some(&src)) = (self.tag_addr.get(&dest), self.addr_tag.get(&from))
                else {
                    return;
                };
                wire::encode_relay_header(MsgType::Relayed, src, &mut out);
                out.extend_from_slice(inner);
                to
            }
            _ => return,
        };
        self.queue.push_back((SN_ADDR, to, out));
    }

    /// Drives the hub through the next simulated second, timing its timer work.
    fn idle_second(&mut self) {
        let end = self.now + Duration::from_secs(1);
        self.timing = true;
        let mut spins = 0u32;
        loop {
            let t0 = Instant::now();
            let next = self.nodes[0].poll_timeout();
            self.spent += t0.elapsed();
            if next > end {
                break;
            }
            if next <= self.now {
                spins += 1;
                assert!(
                    spins < 100_000,
                    "poll_timeout stays in the past: the driver spins"
                );
            }
            self.now = next.max(self.now);
            let t0 = Instant::now();
            self.nodes[0].handle_timeout(self.now);
            self.spent += t0.elapsed();
            self.turns += 1;
            self.collect(0);
            self.settle();
        }
        self.timing = false;
        self.now = end;
    }
}

fn bench_idle(c: &mut Criterion) {
    let mut g = c.benchmark_group("idle_edge");
    for n in PEERS {
        let mut mesh = Mesh::new(n);
        // Turns per simulated second, for reading the per-second figure (printed once).
        mesh.turns = 0;
        for _ in 0..10 {
            mesh.idle_second();
        }
        assert!(
            mesh.all_direct(),
            "every peer still up and direct after 10 s"
        );
        eprintln!(
            "idle_edge/{n}: {:.0} driver turns per simulated second",
            mesh.turns as f64 / 10.0
        );
        g.bench_with_input(BenchmarkId::new("second", n), &n, |b, _| {
            b.iter_custom(|iters| {
                mesh.spent = Duration::ZERO;
                for _ in 0..iters {
                    mesh.idle_second();
                }
                mesh.spent
            })
        });
        g.bench_with_input(BenchmarkId::new("poll_timeout", n), &n, |b, _| {
            b.iter(|| black_box(mesh.nodes[0].poll_timeout()))
        });
        assert!(mesh.all_direct(), "every peer still up and direct");
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = bench_idle
}
criterion_main!(benches);
