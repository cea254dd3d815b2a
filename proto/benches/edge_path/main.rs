//! The whole per-packet path through the edge state machine, without sockets or a TAP device: edge `a`
//! takes a frame from its "TAP" (`handle_tap_frame`) and its datagram is drained (`poll_transmit`); edge `b`
//! takes that datagram (`handle_udp`) and its frame is drained (`poll_tap`). Includes the MAC table lookup,
//! sealing, the header codec, opening, the replay window, MAC learning, the per-packet allocations and
//! queueing of today's edge: everything between the two syscalls of each side.
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
                while let Some(t) = p.a.poll_transmit() {
                    black_box(t);
                }
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
                    let mut out = None;
                    while let Some(f) = b.poll_tap() {
                        out = Some(f);
                    }
                    // Returned, so the buffers are freed outside the timed part... except the frame
                    // `poll_tap` hands over, which the driver owns (and frees) in the real edge too.
                    (datagram, black_box(out.expect("a frame for the TAP")))
                },
                BatchSize::NumIterations(32),
            );
        });

        // Both sides, one frame end to end.
        g.bench_with_input(BenchmarkId::new("send_recv", len), &len, |bench, &len| {
            let mut p = pair::established();
            let frame = p.frame_a_to_b(len);
            let (now, from) = (p.now, p.a_addr);
            bench.iter(|| {
                p.a.handle_tap_frame(now, black_box(&frame));
                while let Some(mut t) = p.a.poll_transmit() {
                    p.b.handle_udp(now, from, &mut t.payload);
                }
                while let Some(f) = p.b.poll_tap() {
                    black_box(f);
                }
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
