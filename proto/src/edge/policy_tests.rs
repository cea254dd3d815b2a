//! The edge's side of key-restricted communities: only introduced peers may handshake, a held initiation
//! is answered once the peer info arrives, a revoked peer is forgotten and refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::fake_supernode::{self, FakeSupernode};
use super::*;
use crate::handshake;
use crate::keys::{CommunityKeys, StaticKeypair};
use crate::wire::{MacAddr, PeerInfo, PeerRevoked, RegisterAck};

const SN: &str = "192.0.2.1:7654";
const B_ADDR: &str = "198.51.100.2:7777";

fn edge(keys: &CommunityKeys, me: &StaticKeypair, now: Instant) -> Edge {
    let cfg = EdgeConfig {
        community: keys.clone(),
        identity: me.clone(),
        supernodes: vec![SN.parse().unwrap()],
        supernode_keys: [(SN.parse().unwrap(), fake_supernode::key().public)].into(),
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        address: AddressMode::None,
        local_addrs: vec![],
        description: "a".into(),
        allow_p2p: true,
        timers: Timers::default(),
        limits: Limits::default(),
    };
    Edge::new(cfg, now, 1_750_000_000_000_000, [7; 32])
}

fn ack(
    e: &mut Edge,
    sn: &mut FakeSupernode,
    keys: &CommunityKeys,
    introduced_only: bool,
    now: Instant,
) {
    let mut b = Vec::new();
    RegisterAck {
        community: keys.id,
        public_key: e.public_key(),
        counter: 1,
        observed: "203.0.113.1:1".parse().unwrap(),
        assigned_ip: None,
        lifetime_secs: 65,
        boot_id: 1,
        introduced_only,
    }
    .encode(&mut b);
    sn.send(e, &b, now);
}

fn peer_info(
    e: &mut Edge,
    sn: &mut FakeSupernode,
    keys: &CommunityKeys,
    peer: &StaticKeypair,
    now: Instant,
) {
    let mut b = Vec::new();
    PeerInfo {
        community: keys.id,
        punch: false,
        public_key: peer.public,
        mac: MacAddr([2, 0, 0, 0, 0, 2]),
        ip: None,
        observed: B_ADDR.parse().unwrap(),
        local_addrs: vec![],
        description: "b".into(),
    }
    .encode(&mut b);
    sn.send(e, &b, now);
}

/// A direct initiation from `from` to `to`, as a revoked edge that knows the secret could send.
fn init(keys: &CommunityKeys, from: &StaticKeypair, to: &PublicKey, ts: u64) -> Vec<u8> {
    let mut b = Vec::new();
    handshake::initiation(keys, from, to, 99, ts, [ts as u8; 32], None, &mut b).unwrap();
    b
}

/// Handshake responses `e` sent to `to`.
fn responses(e: &mut Edge, to: SocketAddr) -> usize {
    let mut n = 0;
    while let Some(t) = e.poll_transmit() {
        if t.dest == to && wire::peek_type(&t.payload) == Ok(MsgType::HandshakeResp) {
            n += 1;
        }
    }
    n
}

#[test]
fn restricted_edge_answers_introduced_peers_only() {
    let keys = CommunityKeys::from_key_material("home", b"secret");
    let a = StaticKeypair::from_private([1; 32]);
    let b = StaticKeypair::from_private([2; 32]);
    let t0 = Instant::now();
    let b_addr: SocketAddr = B_ADDR.parse().unwrap();
    let sn_addr: SocketAddr = SN.parse().unwrap();
    let mut e = edge(&keys, &a, t0);
    let mut sn = FakeSupernode::connect(&mut e, sn_addr, t0);

    // Open community (the ack says so): anyone with the secret may handshake.
    ack(&mut e, &mut sn, &keys, false, t0);
    let mut m = init(&keys, &b, &a.public, 1);
    e.handle_udp(t0, b_addr, &mut m);
    assert_eq!(responses(&mut e, b_addr), 1);

    // Key-restricted, B never introduced: its initiation is held, not answered...
    let mut e = edge(&keys, &a, t0);
    let mut sn = FakeSupernode::connect(&mut e, sn_addr, t0);
    ack(&mut e, &mut sn, &keys, true, t0);
    let mut m = init(&keys, &b, &a.public, 2);
    e.handle_udp(t0, b_addr, &mut m);
    assert_eq!(responses(&mut e, b_addr), 0);
    assert!(e.peers().is_empty());
    // ... and the edge asks its supernode for every peer at once (the peer info may have been lost).
    e.handle_timeout(t0);
    sn.received.clear();
    sn.drain(&mut e);
    let asked = sn
        .received
        .iter()
        .any(|m| matches!(wire::decode(m), Ok(Message::Register(r)) if r.wants_peers));
    assert!(asked, "no registration asking for peers");
    // ... and answered as soon as the supernode introduces B (the init overtook the peer info).
    let t1 = t0 + Duration::from_millis(30);
    peer_info(&mut e, &mut sn, &keys, &b, t1);
    assert_eq!(responses(&mut e, b_addr), 1);

    // B is revoked: forgotten at once, and its next initiation goes unanswered.
    let mut rv = Vec::new();
    PeerRevoked {
        community: keys.id,
        public_key: b.public,
    }
    .encode(&mut rv);
    sn.send(&mut e, &rv, t1);
    assert!(e.peers().is_empty());
    let mut events = Vec::new();
    while let Some(ev) = e.poll_event() {
        events.push(ev);
    }
    assert!(
        events.contains(&Event::PeerRevoked { peer: b.public }),
        "{events:?}"
    );
    let mut m = init(&keys, &b, &a.public, 3);
    e.handle_udp(t1, b_addr, &mut m);
    assert_eq!(responses(&mut e, b_addr), 0);
    // Held initiations expire: one from the revoked peer is never answered later.
    e.handle_timeout(t1 + Duration::from_secs(6));
    assert_eq!(responses(&mut e, b_addr), 0);
    assert!(e.peers().is_empty());
}

#[test]
fn before_the_first_ack_initiations_wait() {
    let keys = CommunityKeys::from_key_material("home", b"secret");
    let a = StaticKeypair::from_private([1; 32]);
    let b = StaticKeypair::from_private([2; 32]);
    let t0 = Instant::now();
    let b_addr: SocketAddr = B_ADDR.parse().unwrap();
    let mut e = edge(&keys, &a, t0);
    let mut sn = FakeSupernode::connect(&mut e, SN.parse().unwrap(), t0);
    let mut m = init(&keys, &b, &a.public, 1);
    e.handle_udp(t0, b_addr, &mut m);
    assert_eq!(
        responses(&mut e, b_addr),
        0,
        "answered before knowing the policy"
    );
    ack(
        &mut e,
        &mut sn,
        &keys,
        false,
        t0 + Duration::from_millis(20),
    );
    assert_eq!(
        responses(&mut e, b_addr),
        1,
        "the open community's ack releases it"
    );
}
