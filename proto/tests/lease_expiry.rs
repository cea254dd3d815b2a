//! Address leases expire: registrations of made-up identities that fill a community's subnet hold it only
//! for the lease time, after which a real edge gets an address. Driven by hand (a control handshake, then a
//! sealed REGISTER, per identity) with simulated time (an open supernode, so no admission proof is needed).

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use weft_proto::supernode::{Supernode, SupernodeConfig};
use weft_proto::wire::{self, NakReason};

const HOUR: Duration = Duration::from_secs(3600);

/// Edge `key` registers asking for an address: the address assigned, or None when refused because the
/// pool is exhausted.
fn register(sn: &mut Supernode, now: Instant, key: u16, counter: u64) -> Option<wire::Ipv4Net> {
    match common::register(sn, now, "crowded", key, counter, true) {
        common::Answer::Ack(ip) => ip,
        common::Answer::Nak(n) => {
            assert_eq!(n, NakReason::PoolExhausted);
            None
        }
    }
}

#[test]
fn spoofed_registrations_hold_a_subnet_only_for_the_lease_time() {
    let t0 = Instant::now();
    let cfg = SupernodeConfig {
        // One /24 in all.
        pool_min: Ipv4Addr::new(10, 128, 0, 0),
        pool_max: Ipv4Addr::new(10, 128, 0, 0),
        lease_time: HOUR,
        // 300 handshakes in one instant: no load shedding here (it has its own test).
        handshake_load: u32::MAX,
        wall_clock_us: 1_800_000_000_000_000,
        ..SupernodeConfig::default()
    };
    let mut sn = Supernode::new(cfg, t0, Vec::new());
    // 300 registrations of made-up identities (each a real key pair: the channel proves it): 254
    // addresses, then refusals.
    let mut assigned = Vec::new();
    // (At 100 a second: new edges join a community at a pace, see the pacing test.)
    for key in 1..=300u16 {
        let at = t0 + Duration::from_millis(10 * u64::from(key));
        if let Some(ip) = register(&mut sn, at, key, 1) {
            assigned.push(ip);
        }
    }
    assert_eq!(assigned.len(), 254);
    let real = 1000;
    let full = t0 + Duration::from_secs(4);
    assert_eq!(
        register(&mut sn, full, real, 1),
        None,
        "the pool is not full"
    );

    // The made-up edges never register again: the supernode forgets them after 65 s, but their leases
    // stay for the lease time, so an edge coming back within it gets its old address.
    sn.handle_timeout(full + Duration::from_secs(120));
    assert!(sn.edges().is_empty());
    let half = t0 + HOUR / 2;
    assert_eq!(register(&mut sn, half, real, 2), None);
    assert_eq!(register(&mut sn, half, 1, 2), Some(assigned[0]));
    sn.take_changed_leases();

    // After the lease time (and its renewal step, an eighth of it) the others' addresses are free again.
    let later = full + HOUR + HOUR / 8;
    let got = register(&mut sn, later, real, 3).expect("an address after the lease time");
    assert!(assigned[1..].contains(&got), "{got}");
    let leases = sn.take_changed_leases().expect("the expiry is persisted");
    // Key 1 (seen half an hour in) and the real edge are left.
    assert_eq!(leases.len(), 2, "{leases:?}");
    assert!(leases.iter().any(|l| l.ip == assigned[0]));
    assert!(leases.iter().all(|l| l.last_seen.is_some()));
}
