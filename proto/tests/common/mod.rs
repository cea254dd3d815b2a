//! What several integration tests do by hand: an edge identity opens a control session with a supernode
//! state machine and registers in it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Instant;

use weft_proto::control;
use weft_proto::keys::{CommunityId, StaticKeypair};
use weft_proto::session::Session;
use weft_proto::supernode::Supernode;
use weft_proto::wire::{
    self, DataKind, Ipv4Net, MacAddr, Message, NakReason, Register, DATA_HEADER_LEN,
};

/// The supernode's answer to a registration.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Accepted, with the address assigned if one was asked for.
    Ack(Option<Ipv4Net>),
    /// Refused.
    Nak(NakReason),
}

/// The identity numbered `n` (the number is not in byte 0, whose low bits X25519 clamps away).
pub fn identity(n: u16) -> StaticKeypair {
    let mut k = [0x11u8; 32];
    k[1..3].copy_from_slice(&n.to_be_bytes());
    StaticKeypair::from_private(k)
}

/// The address identity `n` sends from.
pub fn address(n: u16) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, (n % 250) as u8 + 1], 1000 + n))
}

/// Hands `d` to the supernode from `from`; returns what it sends back there, and how many datagrams it
/// sent in all.
pub fn exchange(
    sn: &mut Supernode,
    now: Instant,
    from: SocketAddr,
    d: &[u8],
) -> (Vec<Vec<u8>>, usize) {
    sn.handle_udp(now, from, d);
    let all: Vec<_> = std::iter::from_fn(|| sn.poll_transmit()).collect();
    let n = all.len();
    (
        all.into_iter()
            .filter(|t| t.dest == from)
            .map(|t| t.payload)
            .collect(),
        n,
    )
}

/// Identity `n` opens a control session (a new one each time, which also covers the supernode replacing
/// a session) and registers in `community`: the answer. `counter` must grow per identity.
pub fn register(
    sn: &mut Supernode,
    now: Instant,
    community: &str,
    n: u16,
    counter: u64,
    wants_ip: bool,
) -> Answer {
    register_counting(sn, now, community, n, counter, wants_ip).0
}

/// [`register`], also returning how many datagrams the supernode sent in all for the registration.
pub fn register_counting(
    sn: &mut Supernode,
    now: Instant,
    community: &str,
    n: u16,
    counter: u64,
    wants_ip: bool,
) -> (Answer, usize) {
    let me = identity(n);
    let from = address(n);
    let sn_key = sn.public_key();
    let (init, b, _) = control::initiation(&me, &sn_key, 1, counter, [n as u8; 32], None).unwrap();
    let (resp, _) = exchange(sn, now, from, &b);
    assert!(
        !resp.is_empty(),
        "no handshake response for {n}/{counter}: {:?}",
        sn.stats()
    );
    let Ok(Message::CtlResp(r)) = wire::decode(&resp[0]) else {
        panic!("no handshake response");
    };
    let mut s = Session::new(init.finish(r.noise).unwrap(), 1, r.sender_index, true, now);
    let reg = Register {
        community: CommunityId::from_name(community),
        public_key: me.public,
        counter,
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        wants_ip,
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
    let (answers, total) = exchange(sn, now, from, &sealed);
    let mut answer = None;
    for mut d in answers {
        let Ok(Message::Data(h, _)) = wire::decode(&d) else {
            continue;
        };
        let k = s.open(&h, &mut d).expect("sealed in our session");
        match wire::decode(&d[DATA_HEADER_LEN..DATA_HEADER_LEN + k]) {
            Ok(Message::RegisterAck(a)) => answer = Some(Answer::Ack(a.assigned_ip)),
            Ok(Message::RegisterNak(n)) => answer = Some(Answer::Nak(n.reason)),
            _ => {}
        }
    }
    (
        answer.expect("the supernode answered the registration"),
        total,
    )
}
