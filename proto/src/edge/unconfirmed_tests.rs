//! No peer state until the initiator is proven: initiations from made-up identities that pass MAC1 and
//! Noise (sent with the real secret, or with only the MAC key) are answered, but leave nothing in the
//! peer table, and what they leave elsewhere is bounded; a real peer still comes up, once its first
//! packet confirms the session.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::mac_tests::{drain, edge, initiation_from, introduce, of_type};
use super::unconfirmed::{MAX_UNCONFIRMED, UNCONFIRMED_TTL};
use super::*;
use crate::handshake;
use crate::keys::{CommunityKeys, StaticKeypair};

const A_ADDR: &str = "198.51.100.1:7777";
const B_ADDR: &str = "198.51.100.2:7777";

/// The `i`th made-up identity.
fn made_up(i: u32) -> StaticKeypair {
    let mut k = [0x77; 32];
    k[4..8].copy_from_slice(&i.to_le_bytes()); // (not byte 0: clamping clears its low bits)
    StaticKeypair::from_private(k)
}

/// A source address of its own for the `i`th made-up identity.
fn source(i: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0xc612_0000 | i), 4000))
}

fn events(e: &mut Edge) -> Vec<Event> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

#[test]
fn made_up_identities_leave_no_peer_until_a_session_is_confirmed() {
    let keys = CommunityKeys::from_key_material("home", b"secret");
    let (ka, kb) = (
        StaticKeypair::from_private([1; 32]),
        StaticKeypair::from_private([2; 32]),
    );
    let (a_addr, b_addr): (SocketAddr, SocketAddr) =
        (A_ADDR.parse().unwrap(), B_ADDR.parse().unwrap());
    let t0 = Instant::now();
    let (mut b, _sn_b) = edge(&keys, &kb, 200, t0);
    events(&mut b);

    // An insider's flood at 100 initiations a second (under the load threshold, so every one is worth
    // a Noise response), each from a new identity, for 6 s.
    const N: u32 = 600;
    let mut now = t0;
    let mut last = Vec::new();
    for i in 0..N {
        now = t0 + Duration::from_millis(10 * u64::from(i));
        let mut m = Vec::new();
        handshake::initiation(
            &keys,
            &made_up(i),
            &kb.public,
            i,
            1,
            [i as u8; 32],
            None,
            &mut m,
        )
        .unwrap();
        last = m.clone();
        b.handle_udp(now, source(i), &mut m);
        assert!(b.unconfirmed_sessions() <= MAX_UNCONFIRMED);
    }
    let out = drain(&mut b);
    assert_eq!(
        of_type(&out, MsgType::HandshakeResp).len(),
        N as usize,
        "each authentic-looking initiation is answered"
    );
    assert!(b.peers().is_empty(), "peer state for unproven initiators");
    assert_eq!(b.unconfirmed_sessions(), MAX_UNCONFIRMED);
    let st = b.stats();
    assert_eq!(
        st.unconfirmed_dropped,
        u64::from(N) - MAX_UNCONFIRMED as u64
    );
    assert_eq!(st.dropped_no_capacity + st.cookie_replies_sent, 0);
    let ev = events(&mut b);
    assert!(ev.is_empty(), "events for unproven initiators: {ev:?}");

    // The newest initiation replayed: a replay (no answer, no second entry).
    b.handle_udp(now, source(N - 1), &mut last.clone());
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.stats().dropped_replay, 1);

    // Someone with only the MAC key (not the PSK): answered, but it cannot finish the handshake, and a
    // packet it makes up for the session is not authentic.
    let mut mac_only = keys.clone();
    mac_only.edge_psk = [0; 32];
    let x = made_up(N);
    let mut m = Vec::new();
    let (init, _) =
        handshake::initiation(&mac_only, &x, &kb.public, 1, 1, [1; 32], None, &mut m).unwrap();
    b.handle_udp(now, source(N), &mut m);
    let resp = of_type(&drain(&mut b), MsgType::HandshakeResp)
        .pop()
        .unwrap();
    let Ok(Message::HandshakeResp(r)) = wire::decode(&resp) else {
        panic!("not a response");
    };
    assert!(init.finish(r.noise).is_err(), "completed without the PSK");
    let auth_before = b.stats().dropped_auth;
    let mut forged = vec![0u8; DATA_HEADER_LEN + 16];
    wire::DataHeader {
        kind: DataKind::Keepalive,
        receiver_index: r.sender_index,
        counter: 0,
    }
    .write((&mut forged[..DATA_HEADER_LEN]).try_into().unwrap());
    b.handle_udp(now, source(N), &mut forged);
    assert_eq!(b.stats().dropped_auth, auth_before + 1);
    assert!(b.peers().is_empty());

    // The table empties itself: nothing is confirmed, everything expires.
    let later = now + UNCONFIRMED_TTL;
    b.handle_timeout(later);
    assert_eq!(b.unconfirmed_sessions(), 0);
    assert_eq!(b.stats().unconfirmed_dropped, u64::from(N) + 1);
    drain(&mut b);

    // A real peer: refill the table first (at the same pace), so that its session is one among many.
    for i in 0..MAX_UNCONFIRMED as u32 {
        let mut m = Vec::new();
        handshake::initiation(&keys, &made_up(i), &kb.public, i, 2, [2; 32], None, &mut m).unwrap();
        b.handle_udp(
            later + Duration::from_millis(10 * u64::from(i)),
            source(i),
            &mut m,
        );
    }
    drain(&mut b);
    assert_eq!(b.unconfirmed_sessions(), MAX_UNCONFIRMED);
    let later = later + Duration::from_secs(3);
    let (mut a, mut sn_a) = edge(&keys, &ka, 200, later);
    introduce(&mut a, &mut sn_a, &keys, &kb, B_ADDR, later);
    let mut init = initiation_from(&mut a);
    b.handle_udp(later, a_addr, &mut init);
    let mut resp = of_type(&drain(&mut b), MsgType::HandshakeResp)
        .pop()
        .expect("A is answered");
    assert!(b.peers().is_empty(), "a response made a peer");
    a.handle_udp(later, b_addr, &mut resp);
    assert_eq!(a.stats().handshakes_completed, 1);
    // A confirms at once (a keepalive straight back, then a probe): B makes it a peer on the first.
    let sent: Vec<_> = std::iter::from_fn(|| a.poll_transmit())
        .filter(|t| t.dest == b_addr)
        .collect();
    assert!(!sent.is_empty(), "A sent nothing back");
    let unknown_before = b.stats().dropped_unknown_session;
    for mut t in sent {
        b.handle_udp(later, a_addr, &mut t.payload);
    }
    let peers = b.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].public_key, ka.public);
    assert_eq!(peers[0].state, PeerState::Up);
    assert!(events(&mut b)
        .iter()
        .any(|e| matches!(e, Event::PeerUp { peer, .. } if *peer == ka.public)));
    let st = b.stats();
    assert_eq!(st.dropped_unknown_session, unknown_before);
    assert_eq!(st.handshakes_completed, 1);
    assert_eq!(b.unconfirmed_sessions(), MAX_UNCONFIRMED - 1);

    // B answered A's probe: the reply proves the direct path to A.
    for mut t in std::iter::from_fn(|| b.poll_transmit()).filter(|t| t.dest == a_addr) {
        a.handle_udp(later, b_addr, &mut t.payload);
    }
    assert!(a.peers()[0].path.is_direct(), "A's path to B is not direct");
    // From now on A's packets take the peer path: a frame from A reaches B's TAP device.
    let frame = {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        f.extend_from_slice(b"hello");
        f
    };
    a.handle_tap_frame(later, &frame);
    let direct: Vec<_> = std::iter::from_fn(|| a.poll_transmit())
        .filter(|t| t.dest == b_addr)
        .collect();
    assert!(!direct.is_empty(), "the frame did not go direct");
    for mut t in direct {
        b.handle_udp(later, a_addr, &mut t.payload);
    }
    let delivered: Vec<_> = std::iter::from_fn(|| b.poll_tap()).collect();
    assert_eq!(delivered, vec![frame]);
}

#[test]
fn confirmation_after_expiry_makes_no_peer() {
    let keys = CommunityKeys::from_key_material("home", b"secret");
    let (ka, kb) = (
        StaticKeypair::from_private([1; 32]),
        StaticKeypair::from_private([2; 32]),
    );
    let (a_addr, b_addr): (SocketAddr, SocketAddr) =
        (A_ADDR.parse().unwrap(), B_ADDR.parse().unwrap());
    let t0 = Instant::now();
    let (mut b, _sn_b) = edge(&keys, &kb, 200, t0);
    let (mut a, mut sn_a) = edge(&keys, &ka, 200, t0);
    introduce(&mut a, &mut sn_a, &keys, &kb, B_ADDR, t0);
    let mut init = initiation_from(&mut a);
    b.handle_udp(t0, a_addr, &mut init);
    let mut resp = of_type(&drain(&mut b), MsgType::HandshakeResp)
        .pop()
        .unwrap();
    a.handle_udp(t0, b_addr, &mut resp);
    let sent: Vec<_> = std::iter::from_fn(|| a.poll_transmit())
        .filter(|t| t.dest == b_addr)
        .collect();
    // The confirmation arrives too late: the session is gone, and so is any chance of a peer from it.
    let late = t0 + UNCONFIRMED_TTL;
    for mut t in sent {
        b.handle_udp(late, a_addr, &mut t.payload);
    }
    assert!(b.peers().is_empty());
    assert!(b.stats().dropped_unknown_session > 0);
}
