//! MAC1, cookies and MAC2 at the edge: a stranger's handshake is dropped before any work and never
//! answered; a loaded edge answers with a cookie instead of a Noise response, and the initiator's retry
//! with MAC2 completes; forged and replayed cookie replies are ignored.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::fake_supernode::{self, FakeSupernode};
use super::*;
use crate::handshake;
use crate::keys::{CommunityKeys, StaticKeypair};
use crate::wire::{MacAddr, PeerInfo, RegisterAck, HANDSHAKE_INIT_LEN};

const SN: &str = "192.0.2.1:7654";
const A_ADDR: &str = "198.51.100.1:7777";
const B_ADDR: &str = "198.51.100.2:7777";

pub(super) fn edge(
    keys: &CommunityKeys,
    me: &StaticKeypair,
    load: u32,
    now: Instant,
) -> (Edge, FakeSupernode) {
    let cfg = EdgeConfig {
        community: keys.clone(),
        identity: me.clone(),
        supernodes: vec![SN.parse().unwrap()],
        supernode_keys: [(SN.parse().unwrap(), fake_supernode::key().public)].into(),
        mac: MacAddr([2, 0, 0, 0, 0, me.public.0[0]]),
        address: AddressMode::None,
        local_addrs: vec![],
        avoid_nets: Vec::new(),
        description: String::new(),
        allow_p2p: true,
        timers: Timers::default(),
        limits: Limits {
            handshake_load: load,
            ..Limits::default()
        },
    };
    let mut e = Edge::new(cfg, now, 1_750_000_000_000_000, [me.public.0[0]; 32]);
    let mut sn = FakeSupernode::connect(&mut e, SN.parse().unwrap(), now);
    // Acknowledged by its supernode, in an open community: it answers anyone with the secret.
    let mut b = Vec::new();
    RegisterAck {
        community: keys.id,
        public_key: e.public_key(),
        counter: 1,
        observed: "203.0.113.1:1".parse().unwrap(),
        assigned_ip: None,
        lifetime_secs: 65,
        boot_id: 1,
        introduced_only: false,
    }
    .encode(&mut b);
    sn.send(&mut e, &b, now);
    drain(&mut e);
    (e, sn)
}

/// Tells `e` about `peer` at `addr`, as its supernode would.
pub(super) fn introduce(
    e: &mut Edge,
    sn: &mut FakeSupernode,
    keys: &CommunityKeys,
    peer: &StaticKeypair,
    addr: &str,
    now: Instant,
) {
    let mut b = Vec::new();
    PeerInfo {
        community: keys.id,
        punch: false,
        public_key: peer.public,
        mac: MacAddr([2, 0, 0, 0, 0, peer.public.0[0]]),
        ip: None,
        observed: addr.parse().unwrap(),
        local_addrs: vec![],
        description: String::new(),
    }
    .encode(&mut b);
    sn.send(e, &b, now);
}

/// Every datagram `e` sent, as edge-to-edge packets (unwrapped from the relay header).
pub(super) fn drain(e: &mut Edge) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    while let Some(t) = e.poll_transmit() {
        match wire::decode(&t.payload) {
            Ok(Message::Relay { inner, .. }) => v.push(inner.to_vec()),
            _ => v.push(t.payload),
        }
    }
    v
}

pub(super) fn of_type(packets: &[Vec<u8>], t: MsgType) -> Vec<Vec<u8>> {
    packets
        .iter()
        .filter(|p| wire::peek_type(p) == Ok(t))
        .cloned()
        .collect()
}

/// The initiation `a` sent when it was told about its peer.
pub(super) fn initiation_from(a: &mut Edge) -> Vec<u8> {
    let inits = of_type(&drain(a), MsgType::HandshakeInit);
    assert_eq!(inits.len(), 1, "one initiation");
    inits.into_iter().next().unwrap()
}

#[test]
fn stranger_handshakes_are_dropped_unanswered() {
    let keys = CommunityKeys::from_key_material("home", b"secret");
    let guess = CommunityKeys::from_key_material("home", b"guess");
    let (b, x) = (
        StaticKeypair::from_private([2; 32]),
        StaticKeypair::from_private([3; 32]),
    );
    let t0 = Instant::now();
    let x_addr: SocketAddr = A_ADDR.parse().unwrap();
    let (mut e, _sn_e) = edge(&keys, &b, 200, t0);

    // Without the secret: a well-formed Noise initiation to B's real key, MAC1 under a guessed secret.
    let mut m = Vec::new();
    handshake::initiation(&guess, &x, &b.public, 1, 1, [1; 32], None, &mut m).unwrap();
    assert_eq!(m.len(), HANDSHAKE_INIT_LEN);
    e.handle_udp(t0, x_addr, &mut m);
    // With the secret, but meant for another edge (MAC1 binds the receiver's key).
    let mut m = Vec::new();
    handshake::initiation(&keys, &x, &x.public, 2, 2, [2; 32], None, &mut m).unwrap();
    e.handle_udp(t0, x_addr, &mut m);
    // A response under a guessed secret.
    let mut r = Vec::new();
    wire::encode_handshake_resp(5, 6, &[0; wire::NOISE_RESP_LEN], &mut r, |_| [9; 16]);
    e.handle_udp(t0, x_addr, &mut r);

    assert!(drain(&mut e).is_empty(), "a stranger got an answer");
    let st = e.stats();
    assert_eq!(st.dropped_bad_mac, 3);
    assert_eq!(st.handshakes_rejected + st.dropped_unknown_session, 0);
    assert!(e.peers().is_empty());

    // The control: the same initiation with the secret is answered.
    let mut m = Vec::new();
    handshake::initiation(&keys, &x, &b.public, 3, 3, [3; 32], None, &mut m).unwrap();
    e.handle_udp(t0, x_addr, &mut m);
    assert_eq!(of_type(&drain(&mut e), MsgType::HandshakeResp).len(), 1);
    assert_eq!(e.stats().dropped_bad_mac, 3);
}

#[test]
fn loaded_edge_answers_with_cookie_and_mac2_completes() {
    let keys = CommunityKeys::from_key_material("home", b"secret");
    let (ka, kb) = (
        StaticKeypair::from_private([1; 32]),
        StaticKeypair::from_private([2; 32]),
    );
    let t0 = Instant::now();
    let (a_addr, b_addr): (SocketAddr, SocketAddr) =
        (A_ADDR.parse().unwrap(), B_ADDR.parse().unwrap());
    let (mut a, mut sn_a) = edge(&keys, &ka, 200, t0);
    // B is always under load: every initiation needs MAC2.
    let (mut b, _sn_b) = edge(&keys, &kb, 0, t0);
    introduce(&mut a, &mut sn_a, &keys, &kb, B_ADDR, t0);

    let mut init = initiation_from(&mut a);
    b.handle_udp(t0, a_addr, &mut init);
    let out = drain(&mut b);
    assert_eq!(out.len(), 1, "one answer");
    let mut reply = out[0].clone();
    assert_eq!(wire::peek_type(&reply), Ok(MsgType::CookieReply));
    assert!(reply.len() <= init.len(), "amplification");
    assert_eq!(b.stats().cookie_replies_sent, 1);
    assert!(b.peers().is_empty(), "state for an unproven initiator");

    a.handle_udp(t0, b_addr, &mut reply);
    assert_eq!(a.stats().cookies_received, 1);
    assert!(drain(&mut a).is_empty());

    // A's retry carries MAC2: B answers it with a Noise response, and the handshake completes.
    let t1 = t0 + Duration::from_millis(1100);
    a.handle_timeout(t1);
    let mut retry = of_type(&drain(&mut a), MsgType::HandshakeInit)
        .pop()
        .expect("a retry");
    b.handle_udp(t1, a_addr, &mut retry);
    let mut resp = of_type(&drain(&mut b), MsgType::HandshakeResp)
        .pop()
        .expect("a response to the initiation with MAC2");
    a.handle_udp(t1, b_addr, &mut resp);
    assert_eq!(a.stats().handshakes_completed, 1);
    assert_eq!(b.stats().cookie_replies_sent, 1);

    // The retry replayed from elsewhere (another source has another cookie) gets a cookie, no work.
    let mut replayed = retry.clone();
    b.handle_udp(t1, "203.0.113.9:1".parse().unwrap(), &mut replayed);
    let out = drain(&mut b);
    assert_eq!(of_type(&out, MsgType::CookieReply).len(), 1);
    assert_eq!(of_type(&out, MsgType::HandshakeResp).len(), 0);
}

#[test]
fn forged_and_replayed_cookie_replies_are_ignored() {
    let keys = CommunityKeys::from_key_material("home", b"secret");
    let (ka, kb) = (
        StaticKeypair::from_private([1; 32]),
        StaticKeypair::from_private([2; 32]),
    );
    let t0 = Instant::now();
    let (a_addr, b_addr): (SocketAddr, SocketAddr) =
        (A_ADDR.parse().unwrap(), B_ADDR.parse().unwrap());
    let (mut a, mut sn_a) = edge(&keys, &ka, 200, t0);
    let (mut b, _sn_b) = edge(&keys, &kb, 0, t0);
    // A loaded edge of another community (another secret) that A's initiation somehow reached.
    let (mut other, _sn_other) = edge(
        &CommunityKeys::from_key_material("home", b"other"),
        &kb,
        0,
        t0,
    );
    introduce(&mut a, &mut sn_a, &keys, &kb, B_ADDR, t0);
    let init = initiation_from(&mut a);
    b.handle_udp(t0, a_addr, &mut init.clone());
    let reply = drain(&mut b).pop().unwrap();

    // Forged: any flipped byte after the header.
    for i in 4..reply.len() {
        let mut f = reply.clone();
        f[i] ^= 0x20;
        a.handle_udp(t0, b_addr, &mut f);
    }
    assert_eq!(a.stats().cookies_received, 0);
    let forged = a.stats().dropped_bad_cookie;
    assert_eq!(forged, reply.len() as u64 - 4);
    // Sealed under another community's key: its MAC1 check fails first, so build one by hand.
    let mut theirs = Vec::new();
    let sealed =
        crate::handshake_mac::MacKeys::of(&CommunityKeys::from_key_material("home", b"other"))
            .seal_cookie(&[1; 16], &[0; 16], &[0; 24]);
    let index = match wire::decode(&init) {
        Ok(Message::HandshakeInit(m)) => m.sender_index,
        _ => unreachable!(),
    };
    wire::encode_cookie_reply(
        &wire::CookieReply {
            receiver_index: index,
            nonce: [0; 24],
            sealed,
        },
        &mut theirs,
    );
    a.handle_udp(t0, b_addr, &mut theirs);
    assert_eq!(a.stats().dropped_bad_cookie, forged + 1);
    other.handle_udp(t0, a_addr, &mut init.clone());
    assert!(drain(&mut other).is_empty(), "MAC1 of another community");

    // The genuine reply is accepted once; a replay of it is ignored.
    a.handle_udp(t0, b_addr, &mut reply.clone());
    assert_eq!(a.stats().cookies_received, 1);
    a.handle_udp(t0, b_addr, &mut reply.clone());
    assert_eq!(a.stats().cookies_received, 1);
    assert_eq!(a.stats().dropped_bad_cookie, forged + 2);
    // And it is ignored after the retry too: it answered an older initiation.
    a.handle_timeout(t0 + Duration::from_millis(1100));
    drain(&mut a);
    a.handle_udp(t0, b_addr, &mut reply.clone());
    assert_eq!(a.stats().cookies_received, 1);
    assert_eq!(a.stats().dropped_bad_cookie, forged + 3);
}

#[test]
fn edge_out_of_load_answers_without_cookie() {
    let keys = CommunityKeys::from_key_material("home", b"secret");
    let (ka, kb) = (
        StaticKeypair::from_private([1; 32]),
        StaticKeypair::from_private([2; 32]),
    );
    let t0 = Instant::now();
    let (mut a, mut sn_a) = edge(&keys, &ka, 200, t0);
    let (mut b, _sn_b) = edge(&keys, &kb, 200, t0);
    introduce(&mut a, &mut sn_a, &keys, &kb, B_ADDR, t0);
    let mut init = initiation_from(&mut a);
    b.handle_udp(t0, A_ADDR.parse().unwrap(), &mut init);
    let out = drain(&mut b);
    assert_eq!(of_type(&out, MsgType::HandshakeResp).len(), 1);
    assert_eq!(b.stats().cookie_replies_sent, 0);
}
