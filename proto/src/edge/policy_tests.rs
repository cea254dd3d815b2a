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
        avoid_nets: Vec::new(),
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

/// Handshake initiations `e` sent towards `peer` (relayed through the supernode at first).
fn initiations_to(e: &mut Edge, peer: &PublicKey) -> usize {
    let mut n = 0;
    while let Some(t) = e.poll_transmit() {
        if let Ok(Message::Relay { dest: tag, inner }) = wire::decode(&t.payload) {
            if tag == peer.tag() && wire::peek_type(inner) == Ok(MsgType::HandshakeInit) {
                n += 1;
            }
        }
    }
    n
}

fn not_allowed_events(e: &mut Edge) -> Vec<PublicKey> {
    std::iter::from_fn(|| e.poll_event())
        .filter_map(|ev| match ev {
            Event::PeerNotAllowed { peer } => Some(peer),
            _ => None,
        })
        .collect()
}

#[test]
fn allow_peer_refuses_introduced_keys_it_does_not_list() {
    let keys = CommunityKeys::from_key_material("home", b"secret");
    let a = StaticKeypair::from_private([1; 32]);
    let b = StaticKeypair::from_private([2; 32]);
    let c = StaticKeypair::from_private([3; 32]);
    let t0 = Instant::now();
    let b_addr: SocketAddr = B_ADDR.parse().unwrap();
    let mut e = edge(&keys, &a, t0);
    e.set_allowed_peers(t0, Some([b.public].into()));
    let mut sn = FakeSupernode::connect(&mut e, SN.parse().unwrap(), t0);
    ack(&mut e, &mut sn, &keys, false, t0);
    not_allowed_events(&mut e);

    // C is introduced (the supernode admits it) but not on our list: no peer, no initiation towards it,
    // counted every time, reported once.
    peer_info(&mut e, &mut sn, &keys, &c, t0);
    assert!(e.peers().is_empty());
    assert_eq!(initiations_to(&mut e, &c.public), 0);
    peer_info(&mut e, &mut sn, &keys, &c, t0);
    assert_eq!(e.stats().dropped_not_allowed, 2);
    assert_eq!(not_allowed_events(&mut e), vec![c.public]);
    // Its initiation (it knows the secret) gets no answer and leaves no state, not even unconfirmed.
    let mut m = init(&keys, &c, &a.public, 1);
    e.handle_udp(t0, b_addr, &mut m);
    assert_eq!(responses(&mut e, b_addr), 0);
    assert_eq!(e.unconfirmed_sessions(), 0);
    assert_eq!(e.stats().dropped_not_allowed, 3);
    assert!(not_allowed_events(&mut e).is_empty(), "reported twice");

    // B is listed: introduced, initiated to, and answered.
    peer_info(&mut e, &mut sn, &keys, &b, t0);
    assert_eq!(e.peers().len(), 1);
    assert_eq!(initiations_to(&mut e, &b.public), 1);
    let mut m = init(&keys, &b, &a.public, 2);
    e.handle_udp(t0, b_addr, &mut m);
    assert_eq!(responses(&mut e, b_addr), 1);

    // A new list without B: B is forgotten at once and reported; C, now listed, is accepted.
    e.set_allowed_peers(t0, Some([c.public].into()));
    assert!(e.peers().is_empty());
    assert_eq!(not_allowed_events(&mut e), vec![b.public]);
    // ... and the supernode is asked for every peer at once (C was refused before).
    e.handle_timeout(t0);
    sn.received.clear();
    sn.drain(&mut e);
    assert!(
        sn.received
            .iter()
            .any(|m| matches!(wire::decode(m), Ok(Message::Register(r)) if r.wants_peers)),
        "no registration asking for peers"
    );
    peer_info(&mut e, &mut sn, &keys, &c, t0);
    assert_eq!(e.peers().len(), 1);
    assert_eq!(initiations_to(&mut e, &c.public), 1);
    // No list: anyone the community admits, as without the option.
    e.set_allowed_peers(t0, None);
    peer_info(&mut e, &mut sn, &keys, &b, t0);
    assert_eq!(e.peers().len(), 2);
    assert_eq!(e.stats().dropped_not_allowed, 3);
}

#[test]
fn allow_peer_refuses_unlisted_keys_in_a_restricted_community_without_holding_them() {
    let keys = CommunityKeys::from_key_material("home", b"secret");
    let a = StaticKeypair::from_private([1; 32]);
    let c = StaticKeypair::from_private([3; 32]);
    let t0 = Instant::now();
    let b_addr: SocketAddr = B_ADDR.parse().unwrap();
    let mut e = edge(&keys, &a, t0);
    e.set_allowed_peers(t0, Some([].into()));
    let mut sn = FakeSupernode::connect(&mut e, SN.parse().unwrap(), t0);
    ack(&mut e, &mut sn, &keys, true, t0);
    // The initiation arrives first: refused outright, not held for the peer info...
    let mut m = init(&keys, &c, &a.public, 1);
    e.handle_udp(t0, b_addr, &mut m);
    // ... so the supernode's introduction that follows releases nothing.
    peer_info(&mut e, &mut sn, &keys, &c, t0);
    assert_eq!(responses(&mut e, b_addr), 0);
    assert!(e.peers().is_empty());
    assert_eq!(e.stats().dropped_not_allowed, 2);
}
