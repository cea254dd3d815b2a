//! Instructions per packet on the edge's data path, counted by callgrind: a figure that does not move
//! with the load on the machine (criterion's times on a shared 2-core VM spread by ±50 %), so two trees
//! can be compared on a busy machine, one change at a time.
//!
//! `bench/callgrind` runs it: `valgrind --tool=callgrind --toggle-collect=edge_count::measured_*` counts
//! only inside the measured functions below, each of which handles [`FRAMES`] frames, and the script
//! divides. Without valgrind it just runs the loops once (a smoke test).

#[path = "edge_path/pair.rs"]
mod pair;

use std::hint::black_box;

/// Frames per measured function.
const FRAMES: usize = 10_000;

/// Edge `a`: frame in from the TAP side, sealed datagram read in place from the output queue.
#[inline(never)]
fn measured_send(p: &mut pair::Pair, frame: &[u8]) {
    for _ in 0..FRAMES {
        p.a.handle_tap_frame(p.now, black_box(frame));
        black_box(p.a.transmits().bytes());
        p.a.clear_transmits();
    }
}

/// Edge `b`: datagram in (already in a receive buffer, as after `recvmmsg`), frame read in place.
#[inline(never)]
fn measured_recv(p: &mut pair::Pair, datagrams: &mut [Vec<u8>]) {
    for d in datagrams.iter_mut() {
        p.b.handle_udp(p.now, p.a_addr, black_box(d));
        black_box(p.b.tap_frames().bytes());
        p.b.clear_tap_frames();
    }
}

fn main() {
    // Frame sizes from the command line (`edge_count 1400`), else both; cargo's own flags are skipped.
    let mut sizes: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![1400, 64];
    }
    for len in sizes {
        let mut p = pair::established();
        let frame = p.frame_a_to_b(len);
        // Warm-up: the output buffers grow to their working size once.
        p.a.handle_tap_frame(p.now, &frame);
        p.a.clear_transmits();
        measured_send(&mut p, &frame);
        let mut datagrams: Vec<Vec<u8>> = (0..FRAMES)
            .map(|_| {
                p.a.handle_tap_frame(p.now, &frame);
                let d = p.a.transmits().bytes().to_vec();
                p.a.clear_transmits();
                d
            })
            .collect();
        measured_recv(&mut p, &mut datagrams);
        assert_eq!(
            p.b.stats().rx_direct_frames as usize,
            FRAMES + 1,
            "every frame of {len} bytes delivered (and the warm-up one)"
        );
        println!("{len}: {FRAMES} frames sent and received");
    }
}
