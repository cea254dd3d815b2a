//! Address leases expire: registrations of made-up identities that fill a community's subnet hold it only
//! for the lease time, after which a real edge gets an address. Driven by hand (a control handshake, then a
//! sealed REGISTER, per identity) with simulated time (an open supernode, so no admission proof is needed).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use weft_proto::control;
use weft_proto::keys::{CommunityId, StaticKeypair};
use weft_proto::session::Session;
use weft_proto::supernode::{Supernode, SupernodeConfig};
use weft_proto::wire::{self, DataKind, MacAddr, Message, NakReason, Register, DATA_HEADER_LEN};

const HOUR: Duration = Duration::from_secs(3600);

/// Hands `d` to the supernode from `from`; returns what it sends back there.
fn exchange(sn: &mut Supernode, now: Instant, from: SocketAddr, d: &[u8]) -> Vec<Vec<u8>> {
    sn.handle_udp(now, from, d);
    std::iter::from_fn(|| sn.poll_transmit())
        .filter(|t| t.dest == from)
        .map(|t| t.payload)
        .collect()
}

/// Edge `key` opens a control session (as it does every registration here: a new one each time, which
/// also covers the supernode replacing a session) and registers asking for an address. The address
/// assigned, or None when refused because the pool is exhausted.
fn register(sn: &mut Supernode, now: Instant, key: u16, counter: u64) -> Option<wire::Ipv4Net> {
    let mut k = [0x11u8; 32];
    // Not in byte 0, whose low bits X25519 clamps away.
    k[1..3].copy_from_slice(&key.to_be_bytes());
    let me = StaticKeypair::from_private(k);
    let from = SocketAddr::from(([198, 51, 100, (key % 250) as u8 + 1], 1000 + key));
    let sn_key = sn.public_key();
    let (init, b, _) =
        control::initiation(&me, &sn_key, 1, counter, [key as u8; 32], None).unwrap();
    let resp = exchange(sn, now, from, &b);
    assert!(
        !resp.is_empty(),
        "no handshake response for {key}/{counter}: {:?}",
        sn.stats()
    );
    let Ok(Message::CtlResp(r)) = wire::decode(&resp[0]) else {
        panic!("no handshake response");
    };
    let mut s = Session::new(init.finish(r.noise).unwrap(), 1, r.sender_index, true, now);
    let reg = Register {
        community: CommunityId::from_name("crowded"),
        public_key: me.public,
        counter,
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        wants_ip: true,
        wants_peers: false,
        static_ip: None,
        local_addrs: vec![],
        description: String::new(),
        name: None,
        admission_tag: [0; 16],
    };
    let mut sealed = vec![0u8; DATA_HEADER_LEN];
    reg.encode(&mut sealed);
    s.seal_at(DataKind::Control, &mut sealed, 0);
    let mut answer = None;
    for mut d in exchange(sn, now, from, &sealed) {
        let Ok(Message::Data(h, _)) = wire::decode(&d) else {
            continue;
        };
        let n = s.open(&h, &mut d).expect("sealed in our session");
        match wire::decode(&d[DATA_HEADER_LEN..DATA_HEADER_LEN + n]) {
            Ok(Message::RegisterAck(a)) => answer = Some(a.assigned_ip),
            Ok(Message::RegisterNak(n)) => {
                assert_eq!(n.reason, NakReason::PoolExhausted);
                answer = Some(None);
            }
            _ => {}
        }
    }
    answer.expect("the supernode answered the registration")
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
    for key in 1..=300u16 {
        if let Some(ip) = register(&mut sn, t0, key, 1) {
            assigned.push(ip);
        }
    }
    assert_eq!(assigned.len(), 254);
    let real = 1000;
    assert_eq!(register(&mut sn, t0, real, 1), None, "the pool is not full");

    // The made-up edges never register again: the supernode forgets them after 65 s, but their leases
    // stay for the lease time, so an edge coming back within it gets its old address.
    sn.handle_timeout(t0 + Duration::from_secs(120));
    assert!(sn.edges().is_empty());
    let half = t0 + HOUR / 2;
    assert_eq!(register(&mut sn, half, real, 2), None);
    assert_eq!(register(&mut sn, half, 1, 2), Some(assigned[0]));
    sn.take_changed_leases();

    // After the lease time (and its renewal step, an eighth of it) the others' addresses are free again.
    let later = t0 + HOUR + HOUR / 8;
    let got = register(&mut sn, later, real, 3).expect("an address after the lease time");
    assert!(assigned[1..].contains(&got), "{got}");
    let leases = sn.take_changed_leases().expect("the expiry is persisted");
    // Key 1 (seen half an hour in) and the real edge are left.
    assert_eq!(leases.len(), 2, "{leases:?}");
    assert!(leases.iter().any(|l| l.ip == assigned[0]));
    assert!(leases.iter().all(|l| l.last_seen.is_some()));
}
