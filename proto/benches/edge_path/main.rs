//! The whole per-packet path through the edge state machine, without sockets or a TAP device: edge `a`
//! takes a frame from its "TAP" (`handle_tap_frame`) and its datagram is read in place from its output
//! queue (`transmits`, then `clear_transmits`), as the daemon does; edge `b` takes that datagram
//! (`handle_udp`) and its frame is read in place (`tap_frames`, `clear_tap_frames`). Includes the MAC table
//! lookup, sealing, the header codec, opening, the replay window, MAC learning and queueing: everything
//! between the two syscalls of each side.
//!
//! Run with `cargo bench -p weft-proto --bench edge_path`; results and their reading are in `bench/MICRO.md`.
//! Throughput is in bytes of Ethernet frame; the time per iteration is the time per frame.

mod pair;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

const SIZES: [usize; 2] = [1400, 64];

fn edge_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("edge");
    for len in SIZES {
        g.throughput(Throughput::Bytes(len as u64));

        // Sender: frame in, sealed datagram out.
        g.bench_with_input(BenchmarkId::new("send", len), &len, |bench, &len| {
            let mut p = pair::established();
            let frame = p.frame_a_to_b(len);
            let now = p.now;
            bench.iter(|| {
                p.a.handle_tap_frame(now, black_box(&frame));
                black_box(p.a.transmits().bytes());
                p.a.clear_transmits();
            });
        });

        // Receiver: datagram in, frame out. The datagrams are sealed by `a` outside the timed part, in
        // order, so the replay window accepts each of them; 32 at a time (about a `recvmmsg` batch), so they
        // are still in cache when `b` opens them, as datagrams the kernel just copied out would be.
        g.bench_with_input(BenchmarkId::new("recv", len), &len, |bench, &len| {
            let mut p = pair::established();
            let frame = p.frame_a_to_b(len);
            let (now, from) = (p.now, p.a_addr);
            let (a, b) = (&mut p.a, &mut p.b);
            bench.iter_batched(
                || {
                    a.handle_tap_frame(now, &frame);
                    a.poll_transmit().expect("a datagram for b").payload
                },
                |mut datagram| {
                    b.handle_udp(now, from, black_box(&mut datagram));
                    assert_eq!(b.tap_frames().len(), 1, "a frame for the TAP");
                    black_box(b.tap_frames().bytes());
                    b.clear_tap_frames();
                    // Returned, so the buffer is freed outside the timed part.
                    datagram
                },
                BatchSize::NumIterations(32),
            );
        });

        // Both sides, one frame end to end.
        g.bench_with_input(BenchmarkId::new("send_recv", len), &len, |bench, &len| {
            let mut p = pair::established();
            let frame = p.frame_a_to_b(len);
            let (now, from) = (p.now, p.a_addr);
            // The datagram crosses in a reused buffer, as the kernel copies it into the receiver's.
            let mut wire = Vec::with_capacity(2048);
            bench.iter(|| {
                p.a.handle_tap_frame(now, black_box(&frame));
                for (_, r) in p.a.transmits().iter() {
                    wire.clear();
                    wire.extend_from_slice(&p.a.transmits().bytes()[r]);
                    p.b.handle_udp(now, from, &mut wire);
                }
                p.a.clear_transmits();
                black_box(p.b.tap_frames().bytes());
                p.b.clear_tap_frames();
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the whole suite should finish in about a minute; the numbers are indicative anyway.
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(3));
    targets = edge_path
}
criterion_main!(benches);
