//! Micro-benchmarks of the per-packet building blocks of the data path: sealing and opening a data packet,
//! the header codec, the MAC table and the replay window.
//!
//! Run with `cargo bench -p weft-proto --bench micro`; results and their reading are in `bench/MICRO.md`.
//! Byte-oriented benchmarks report bytes/s (of Ethernet payload), the others elements/s (packets/s);
//! the time per iteration is the time per packet either way.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weft_proto::edge::MacTable;
use weft_proto::handshake::TransportKeys;
use weft_proto::keys::{CommunityId, CommunityKeys, PublicKey};
use weft_proto::replay::ReplayWindow;
use weft_proto::session::Session;
use weft_proto::wire::{
    self, DataHeader, DataKind, Ipv4Net, MacAddr, Message, Register, DATA_HEADER_LEN,
};

/// Ethernet frame sizes: a full 1400-byte frame (the common MTU-limited case) and a minimal one.
const SIZES: [usize; 2] = [1400, 64];

/// Packets opened between two resets of the receiving session (the reset is not timed).
const OPEN_BATCH: usize = 512;

/// Two ends of one session with fixed keys, as the unit tests in `session.rs` build them.
fn session_pair(now: Instant) -> (Session, Session) {
    let a = Session::new(
        TransportKeys {
            send: [1; 32],
            recv: [2; 32],
        },
        10,
        20,
        true,
        now,
    );
    (a, receiver(now))
}

fn receiver(now: Instant) -> Session {
    Session::new(
        TransportKeys {
            send: [2; 32],
            recv: [1; 32],
        },
        20,
        10,
        false,
        now,
    )
}

fn frame(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

fn bench_session(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("session");
    for len in SIZES {
        g.throughput(Throughput::Bytes(len as u64));

        // seal_at: the payload already sits behind reserved header space, as the edge lays it out.
        g.bench_with_input(BenchmarkId::new("seal_at", len), &len, |b, &len| {
            let (mut tx, _) = session_pair(now);
            let mut buf = vec![0u8; DATA_HEADER_LEN];
            buf.extend_from_slice(&frame(len));
            buf.reserve(wire::TAG_LEN);
            b.iter(|| {
                buf.truncate(DATA_HEADER_LEN + len);
                tx.seal_at(DataKind::Frame, black_box(&mut buf), 0);
                black_box(buf.len())
            });
        });

        // open: packets sealed with increasing counters, opened in order; every batch starts with a fresh
        // receiving session so the replay window accepts the counters again. Only the opens are timed.
        g.bench_with_input(BenchmarkId::new("open", len), &len, |b, &len| {
            let (mut tx, _) = session_pair(now);
            let payload = frame(len);
            let sealed: Vec<(DataHeader, Vec<u8>)> = (0..OPEN_BATCH)
                .map(|_| {
                    let mut p = Vec::with_capacity(DATA_HEADER_LEN + len + wire::TAG_LEN);
                    tx.seal(DataKind::Frame, &payload, &mut p);
                    match wire::decode(&p) {
                        Ok(Message::Data(h, _)) => (h, p),
                        other => panic!("not a data packet: {other:?}"),
                    }
                })
                .collect();
            let mut work = sealed.clone();
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(OPEN_BATCH as u64) as usize;
                    left -= n as u64;
                    for (w, (_, s)) in work.iter_mut().zip(&sealed).take(n) {
                        w.1.copy_from_slice(s);
                    }
                    let mut rx = receiver(now);
                    let start = Instant::now();
                    for (h, p) in work.iter_mut().take(n) {
                        let plain = rx.open(h, black_box(p)).expect("authentic, in order");
                        black_box(plain);
                    }
                    total += start.elapsed();
                }
                total
            });
        });
    }
    g.finish();
}

fn sample_register() -> Register {
    Register {
        community: CommunityId::from_name("bench"),
        public_key: PublicKey([7; 32]),
        counter: 1_750_000_000_000_000,
        mac: MacAddr([0x02, 0x5e, 0, 0, 0, 1]),
        wants_ip: false,
        wants_peers: true,
        static_ip: Some(Ipv4Net {
            addr: Ipv4Addr::new(10, 77, 0, 1),
            prefix: 16,
        }),
        local_addrs: vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)), 7777),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 20)), 7777),
        ],
        description: "bench-host.example".to_string(),
        name: None,
        admission_tag: [0; wire::ADMISSION_TAG_LEN],
    }
}

fn bench_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));

    // A sealed 1400-byte data packet: decoding reads only the 16-byte header and borrows the rest.
    let (mut tx, _) = session_pair(Instant::now());
    let mut data = Vec::new();
    tx.seal(DataKind::Frame, &frame(1400), &mut data);
    g.bench_function("decode_data", |b| {
        b.iter(|| match wire::decode(black_box(&data)) {
            Ok(Message::Data(h, sealed)) => black_box((h.counter, sealed.len())),
            _ => unreachable!("a data packet"),
        })
    });

    // A registration as an edge sends it (two local addresses, a description, signed).
    let reg = sample_register();
    let mut reg_bytes = Vec::new();
    reg.encode_unsigned(&mut reg_bytes);
    let tag = CommunityKeys::from_key_material("bench", b"secret")
        .admission
        .tag(&reg_bytes);
    reg_bytes.extend_from_slice(&tag);
    assert!(matches!(wire::decode(&reg_bytes), Ok(Message::Register(_))));
    g.bench_function("decode_register", |b| {
        b.iter(|| black_box(wire::decode(black_box(&reg_bytes))))
    });

    let mut counter = 0u64;
    g.bench_function("data_header_write", |b| {
        let mut out = [0u8; DATA_HEADER_LEN];
        b.iter(|| {
            counter = counter.wrapping_add(1);
            DataHeader {
                kind: DataKind::Frame,
                receiver_index: black_box(0x1234_5678),
                counter: black_box(counter),
            }
            .write(&mut out);
            black_box(&out);
        })
    });
    g.finish();
}

/// 1000 distinct unicast MACs, spread over 8 peers.
fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([0x02, 0x5e, b[0], b[1], b[2], b[3]])
}

fn bench_mac_table(c: &mut Criterion) {
    const N: u32 = 1000;
    let now = Instant::now();
    let ageing = Duration::from_secs(300);
    let cap = 16384;
    let peers: Vec<PublicKey> = (0..8u8).map(|i| PublicKey([i; 32])).collect();
    let mut table = MacTable::default();
    for i in 0..N {
        table.learn(mac(i), peers[i as usize % peers.len()], now, cap);
    }
    assert_eq!(table.len(), N as usize);

    let mut g = c.benchmark_group("mac_table");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u32;
    g.bench_function("lookup_hit_1000", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            black_box(table.lookup(black_box(&mac(i)), now, ageing))
        })
    });
    let mut i = 0u32;
    g.bench_function("lookup_miss_1000", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            black_box(table.lookup(black_box(&mac(N + i)), now, ageing))
        })
    });
    // What every received frame does: refresh the entry of its source MAC.
    let mut i = 0u32;
    g.bench_function("learn_refresh_1000", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            table.learn(black_box(mac(i)), peers[i as usize % 8], now, cap);
        })
    });
    g.finish();
}

fn bench_replay(c: &mut Criterion) {
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(1));

    let mut w = ReplayWindow::default();
    let mut next = 0u64;
    g.bench_function("check_record_in_order", |b| {
        b.iter(|| {
            let c = black_box(next);
            next += 1;
            assert!(w.check(c) && w.record(c));
        })
    });

    // Reordering: counters arrive as a fixed shuffle within consecutive blocks of 256 (up to 255 behind
    // the newest, well inside the window), the way a multi-queue or jittery path delivers them.
    const BLOCK: u64 = 256;
    let mut perm: Vec<u64> = (0..BLOCK).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for k in (1..perm.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        perm.swap(k, (x % (k as u64 + 1)) as usize);
    }
    let mut w = ReplayWindow::default();
    let mut n = 0u64;
    g.bench_function("check_record_reordered", |b| {
        b.iter(|| {
            let c = black_box((n / BLOCK) * BLOCK + perm[(n % BLOCK) as usize]);
            n += 1;
            assert!(w.check(c) && w.record(c));
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the whole suite should finish in about a minute; the numbers are indicative anyway.
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(3));
    targets = bench_session, bench_codec, bench_mac_table, bench_replay
}
criterion_main!(benches);
