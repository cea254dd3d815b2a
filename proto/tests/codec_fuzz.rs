//! Property tests of the wire codec, and fuzzing of the two state machines' network input.
//!
//! The codec: decoding arbitrary bytes never panics; every message type round-trips with random field
//! values; mutated valid encodings (bit flips, truncation, extension, insertions, removals) never panic,
//! and whatever still decodes re-encodes to itself.
//!
//! The state machines: an edge and a supernode taken from a short simulated run (so they hold real
//! registrations, sessions and peers) are fed random datagrams and mutations of the datagrams they
//! actually received in that run (authentic handshakes, sealed frames, relayed packets, acks, peer
//! infos), from their supernode, their peers' addresses and strangers. They must not panic, must never
//! write a frame to the TAP device, and must account for every datagram: each is either counted in
//! exactly one drop counter or is a control message the state machine legitimately acts on. Memory stays
//! bounded under floods of peer infos and of authentic handshakes from new identities.

#[path = "sim/net.rs"]
mod net;

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use net::{ms, secs, Link, Location, NatKind, Node, Sim, SN_ADDR};
use weft_proto::edge::{Edge, EdgeStats};
use weft_proto::keys::{CommunityId, PeerTag, PublicKey};
use weft_proto::supernode::{
    AdmissionPolicy, CommunityPolicy, Supernode, SupernodeConfig, SupernodeStats,
};
use weft_proto::wire::{
    self, decode, truncate_utf8, CookieReply, DataHeader, DataKind, HandshakeInit, HandshakeResp,
    Ipv4Net, MacAddr, Message, MsgType, NakReason, PeerInfo, PeerRevoked, PunchRequest, Register,
    RegisterAck, RegisterNak, DATA_HEADER_LEN, MAX_DESCRIPTION_LEN, MAX_LOCAL_ADDRS,
    NOISE_INIT_LEN, NOISE_RESP_LEN,
};

// ----- encoding any decoded message -----

/// Encodes a message with the crate's encoders.
fn encode(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    match m {
        Message::HandshakeInit(h) => {
            wire::encode_handshake_init(h.sender_index, h.noise, &mut out, |_| h.mac1, |_| h.mac2);
        }
        Message::HandshakeResp(h) => {
            wire::encode_handshake_resp(h.sender_index, h.receiver_index, h.noise, &mut out, |_| {
                h.mac1
            })
        }
        Message::CookieReply(c) => wire::encode_cookie_reply(c, &mut out),
        Message::Data(h, sealed) => {
            let mut hdr = [0u8; DATA_HEADER_LEN];
            h.write(&mut hdr);
            out.extend_from_slice(&hdr);
            out.extend_from_slice(sealed);
        }
        Message::CtlInit(m) => m.encode(&mut out),
        Message::CtlResp(m) => m.encode(&mut out),
        Message::KeyQuery => wire::encode_key_query(&mut out),
        Message::KeyReply(m) => m.encode(&mut out),
        Message::Register(r) => r.encode(&mut out),
        Message::RegisterAck(a) => a.encode(&mut out),
        Message::RegisterNak(n) => n.encode(&mut out),
        Message::PeerInfo(p) => p.encode(&mut out),
        Message::PunchRequest(p) => p.encode(&mut out),
        Message::PeerRevoked(r) => r.encode(&mut out),
        Message::UnknownSender => wire::encode_unknown_sender(&mut out),
        Message::Relay { dest, inner } => {
            wire::encode_relay_header(MsgType::Relay, *dest, &mut out);
            out.extend_from_slice(inner);
        }
        Message::Relayed { src, inner } => {
            wire::encode_relay_header(MsgType::Relayed, *src, &mut out);
            out.extend_from_slice(inner);
        }
        Message::SupernodePing(nonce) => wire::encode_supernode_ping(*nonce, &mut out),
        Message::SupernodePong(p) => p.encode(&mut out),
        Message::Fed(m) => m.encode(&mut out),
        Message::FedInit(m) => m.encode(&mut out),
        Message::FedResp(m) => m.encode(&mut out),
        Message::FedRelay {
            community,
            src,
            dest,
            inner,
        } => {
            wire::encode_fed_relay_header(*community, *src, *dest, &mut out);
            out.extend_from_slice(inner);
        }
    }
    out
}

// ----- strategies -----

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), p)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), p)),
    ]
}

/// An optional virtual address. `0.0.0.0/0` is how the wire says "none", so it is not a `Some`.
fn ipv4_net() -> impl Strategy<Value = Option<Ipv4Net>> {
    prop_oneof![
        Just(None),
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, prefix)| {
            let addr = Ipv4Addr::from(a);
            (!(addr.is_unspecified() && prefix == 0)).then_some(Ipv4Net { addr, prefix })
        }),
    ]
}

fn description() -> impl Strategy<Value = String> {
    ".{0,40}".prop_map(|s| truncate_utf8(&s, MAX_DESCRIPTION_LEN).to_string())
}

fn local_addrs() -> impl Strategy<Value = Vec<SocketAddr>> {
    vec(socket_addr(), 0..=MAX_LOCAL_ADDRS)
}

fn key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey)
}

fn community() -> impl Strategy<Value = CommunityId> {
    any::<[u8; 8]>().prop_map(CommunityId)
}

fn nak_reason() -> impl Strategy<Value = NakReason> {
    prop_oneof![
        Just(NakReason::CommunityNotAllowed),
        Just(NakReason::BadAdmissionProof),
        Just(NakReason::NoCapacity),
        Just(NakReason::PoolExhausted),
        Just(NakReason::KeyNotAllowed),
        Just(NakReason::NameRequired),
        Just(NakReason::Other),
    ]
}

fn data_kind() -> impl Strategy<Value = DataKind> {
    prop_oneof![
        Just(DataKind::Frame),
        Just(DataKind::Keepalive),
        Just(DataKind::Probe),
        Just(DataKind::ProbeReply),
    ]
}

/// One message of any type, owning its bytes.
#[derive(Debug, Clone)]
enum Sample {
    Register(Register),
    Ack(RegisterAck),
    Nak(RegisterNak),
    PeerInfo(PeerInfo),
    Punch(PunchRequest),
    Revoked(PeerRevoked),
    UnknownSender,
    Init(u32, Vec<u8>, [u8; 16], [u8; 16]),
    Resp(u32, u32, Vec<u8>, [u8; 16]),
    Cookie(CookieReply),
    Data(DataHeader, Vec<u8>),
    Relay(PeerTag, Vec<u8>),
    Relayed(PeerTag, Vec<u8>),
}

impl Sample {
    fn message(&self) -> Message<'_> {
        match self {
            Sample::Register(r) => Message::Register(r.clone()),
            Sample::Ack(a) => Message::RegisterAck(a.clone()),
            Sample::Nak(n) => Message::RegisterNak(n.clone()),
            Sample::PeerInfo(p) => Message::PeerInfo(p.clone()),
            Sample::Punch(p) => Message::PunchRequest(p.clone()),
            Sample::Revoked(r) => Message::PeerRevoked(r.clone()),
            Sample::UnknownSender => Message::UnknownSender,
            Sample::Init(i, n, m1, m2) => Message::HandshakeInit(HandshakeInit {
                sender_index: *i,
                noise: n,
                mac1: *m1,
                mac2: *m2,
            }),
            Sample::Resp(s, r, n, m1) => Message::HandshakeResp(HandshakeResp {
                sender_index: *s,
                receiver_index: *r,
                noise: n,
                mac1: *m1,
            }),
            Sample::Cookie(c) => Message::CookieReply(c.clone()),
            Sample::Data(h, sealed) => Message::Data(*h, sealed),
            Sample::Relay(t, inner) => Message::Relay { dest: *t, inner },
            Sample::Relayed(t, inner) => Message::Relayed { src: *t, inner },
        }
    }

    fn encode(&self) -> Vec<u8> {
        encode(&self.message())
    }
}

fn sample() -> impl Strategy<Value = Sample> {
    let register = (
        community(),
        key(),
        any::<u64>(),
        any::<[u8; 6]>(),
        any::<(bool, bool)>(),
        ipv4_net(),
        local_addrs(),
        (description(), proptest::option::of(description())),
        any::<[u8; 16]>(),
    )
        .prop_map(
            |(c, k, counter, mac, (wants_ip, wants_peers), ip, addrs, (d, name), tag)| {
                Sample::Register(Register {
                    community: c,
                    public_key: k,
                    counter,
                    mac: MacAddr(mac),
                    wants_ip,
                    wants_peers,
                    static_ip: ip,
                    local_addrs: addrs,
                    description: d,
                    name,
                    admission_tag: tag,
                })
            },
        );
    let ack = (
        community(),
        key(),
        any::<u64>(),
        socket_addr(),
        ipv4_net(),
        any::<u16>(),
        (any::<u64>(), any::<bool>()),
    )
        .prop_map(
            |(c, k, counter, observed, ip, life, (boot, introduced_only))| {
                Sample::Ack(RegisterAck {
                    community: c,
                    public_key: k,
                    counter,
                    observed,
                    assigned_ip: ip,
                    lifetime_secs: life,
                    boot_id: boot,
                    introduced_only,
                })
            },
        );
    let nak = (community(), key(), any::<u64>(), nak_reason()).prop_map(|(c, k, counter, r)| {
        Sample::Nak(RegisterNak {
            community: c,
            public_key: k,
            counter,
            reason: r,
        })
    });
    let peer_info = (
        community(),
        any::<bool>(),
        key(),
        any::<[u8; 6]>(),
        ipv4_net(),
        socket_addr(),
        local_addrs(),
        description(),
    )
        .prop_map(|(c, punch, k, mac, ip, observed, addrs, d)| {
            Sample::PeerInfo(PeerInfo {
                community: c,
                punch,
                public_key: k,
                mac: MacAddr(mac),
                ip,
                observed,
                local_addrs: addrs,
                description: d,
            })
        });
    let punch = (community(), key(), key()).prop_map(|(c, from, target)| {
        Sample::Punch(PunchRequest {
            community: c,
            from,
            target,
        })
    });
    let revoked = (community(), key()).prop_map(|(c, k)| {
        Sample::Revoked(PeerRevoked {
            community: c,
            public_key: k,
        })
    });
    let init = (
        any::<u32>(),
        vec(any::<u8>(), NOISE_INIT_LEN),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
    )
        .prop_map(|(i, n, m1, m2)| Sample::Init(i, n, m1, m2));
    let resp = (
        any::<u32>(),
        any::<u32>(),
        vec(any::<u8>(), NOISE_RESP_LEN),
        any::<[u8; 16]>(),
    )
        .prop_map(|(s, r, n, m1)| Sample::Resp(s, r, n, m1));
    let cookie = (any::<u32>(), any::<[u8; 24]>(), any::<[u8; 32]>()).prop_map(
        |(receiver_index, nonce, sealed)| {
            Sample::Cookie(CookieReply {
                receiver_index,
                nonce,
                sealed,
            })
        },
    );
    let data = (
        data_kind(),
        any::<u32>(),
        any::<u64>(),
        vec(any::<u8>(), 16..120),
    )
        .prop_map(|(kind, receiver_index, counter, sealed)| {
            Sample::Data(
                DataHeader {
                    kind,
                    receiver_index,
                    counter,
                },
                sealed,
            )
        });
    let relay = (any::<[u8; 8]>(), vec(any::<u8>(), 4..120))
        .prop_map(|(t, inner)| Sample::Relay(PeerTag(t), inner));
    let relayed = (any::<[u8; 8]>(), vec(any::<u8>(), 4..120))
        .prop_map(|(t, inner)| Sample::Relayed(PeerTag(t), inner));
    prop_oneof![
        register,
        ack,
        nak,
        peer_info,
        punch,
        revoked,
        Just(Sample::UnknownSender),
        init,
        resp,
        cookie,
        data,
        relay,
        relayed
    ]
}

/// One way to damage a datagram.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Overwrite(usize, u8),
    Truncate(usize),
    Extend(Vec<u8>),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        vec(any::<u8>(), 1..40).prop_map(Mutation::Extend),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn mutate(mut d: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = d.len();
        match m {
            Mutation::FlipBit(i, b) if n > 0 => d[i % n] ^= 1 << b,
            Mutation::Overwrite(i, v) if n > 0 => d[i % n] = *v,
            Mutation::Truncate(k) => d.truncate(k % (n + 1)),
            Mutation::Extend(more) => d.extend_from_slice(more),
            Mutation::Insert(i, v) => d.insert(i % (n + 1), *v),
            Mutation::Remove(i) if n > 0 => {
                d.remove(i % n);
            }
            _ => {}
        }
    }
    d
}

/// Bytes that get past the common header more often than uniform bytes would.
fn headed_bytes() -> impl Strategy<Value = Vec<u8>> {
    let types = prop_oneof![
        Just(0x01u8),
        Just(0x02),
        Just(0x03),
        Just(0x10),
        Just(0x11),
        Just(0x12),
        Just(0x13),
        Just(0x14),
        Just(0x15),
        Just(0x20),
        Just(0x21),
        any::<u8>(),
    ];
    (types, any::<u8>(), vec(any::<u8>(), 0..200)).prop_map(|(t, aux, rest)| {
        let mut v = vec![wire::VERSION, t, aux, 0];
        v.extend(rest);
        v
    })
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..300), headed_bytes()]
}

// ----- the codec -----

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn decode_never_panics(bytes in any_bytes()) {
        let _ = decode(&bytes);
        let _ = wire::peek_type(&bytes);
    }

    #[test]
    fn every_message_roundtrips(s in sample()) {
        let bytes = s.encode();
        prop_assert_eq!(decode(&bytes), Ok(s.message()));
        match &s {
            Sample::Init(..) => prop_assert_eq!(bytes.len(), wire::HANDSHAKE_INIT_LEN),
            Sample::Resp(..) => prop_assert_eq!(bytes.len(), wire::HANDSHAKE_RESP_LEN),
            Sample::Cookie(..) => prop_assert_eq!(bytes.len(), wire::COOKIE_REPLY_LEN),
            _ => {}
        }
        // Fixed-layout messages refuse a trailing byte; variable ones (data, relay) absorb it.
        let mut longer = bytes.clone();
        longer.push(0);
        let absorbs = matches!(s, Sample::Data(..) | Sample::Relay(..) | Sample::Relayed(..));
        prop_assert_eq!(decode(&longer).is_ok(), absorbs);
        // Every prefix shorter than the message (or than the minimum of a variable-length one) is refused.
        let min = match s {
            Sample::Data(..) => DATA_HEADER_LEN + wire::TAG_LEN,
            Sample::Relay(..) | Sample::Relayed(..) => wire::RELAY_HEADER_LEN + wire::HEADER_LEN,
            _ => bytes.len(),
        };
        for n in 0..min {
            prop_assert!(decode(&bytes[..n]).is_err(), "prefix of {} bytes decoded", n);
        }
    }

    #[test]
    fn mutations_never_panic_and_what_decodes_reencodes_to_itself(
        s in sample(),
        muts in vec(mutation(), 1..6),
    ) {
        let bytes = mutate(s.encode(), &muts);
        if let Ok(m) = decode(&bytes) {
            let again = encode(&m);
            prop_assert_eq!(decode(&again), Ok(m));
        }
    }

    #[test]
    fn long_fields_are_cut_to_their_limits(
        d in ".{0,100}",
        addrs in vec(socket_addr(), 0..20),
        k in key(),
    ) {
        let p = PeerInfo {
            community: CommunityId([1; 8]),
            punch: false,
            public_key: k,
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ip: None,
            observed: "192.0.2.9:9".parse().unwrap(),
            local_addrs: addrs.clone(),
            description: d.clone(),
        };
        let mut b = Vec::new();
        p.encode(&mut b);
        let Ok(Message::PeerInfo(q)) = decode(&b) else {
            return Err(TestCaseError::fail("did not decode"));
        };
        prop_assert_eq!(q.description.as_str(), truncate_utf8(&d, MAX_DESCRIPTION_LEN));
        prop_assert_eq!(&q.local_addrs[..], &addrs[..addrs.len().min(MAX_LOCAL_ADDRS)]);
    }
}

// ----- the state machines -----

/// A runner for `cases` cases. (A runner counts successes across runs: one per phase.)
fn runner_for(cases: u32) -> TestRunner {
    TestRunner::new(config(cases))
}

/// `cases` cases, without failure persistence (an integration test has no source root for it; a
/// failure prints its minimal input).
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// A small world run with every datagram captured: a supernode and three edges (two on the internet,
/// one behind a symmetric NAT so some traffic is relayed), with frames flowing every way.
fn recorded_world() -> Sim {
    let mut sim = Sim::new(99);
    sim.add_supernode(SupernodeConfig::default());
    sim.capture = true;
    let sym = sim.add_nat(NatKind::Symmetric, Link::default());
    let ids = [
        sim.add_edge(Location::Internet(Link::default())),
        sim.add_edge(Location::Internet(Link::default())),
        sim.add_edge(Location::Behind(sym)),
    ];
    sim.run_until_cond(secs(10), |s| s.all_up(&ids))
        .expect("up");
    for &a in &ids {
        sim.inject(a, MacAddr::BROADCAST);
    }
    sim.run_for(ms(500));
    for &a in &ids {
        for &b in &ids {
            if a != b {
                let mb = sim.mac(b);
                let start = sim.now() + ms(1);
                sim.schedule_stream(a, mb, start, ms(50), 20);
            }
        }
    }
    sim.run_for(secs(3));
    sim.capture = false;
    sim
}

/// Everything an edge counts as dropped.
fn edge_drops(s: &EdgeStats) -> u64 {
    s.dropped_malformed
        + s.dropped_auth
        + s.dropped_replay
        + s.dropped_unknown_session
        + s.dropped_not_from_supernode
        + s.dropped_unauthenticated
        + s.handshakes_rejected
        + s.dropped_bad_mac
        + s.dropped_handshake_rate
        + s.dropped_bad_cookie
}

/// Every outcome a supernode counts: each datagram lands in exactly one.
fn sn_outcomes(s: &SupernodeStats) -> u64 {
    s.dropped_packets
        + s.registrations
        + s.rejected_registrations
        + s.relayed_packets
        + s.punches
        + s.pings
        + s.federation_received
        + s.federation_rejected
        + s.federation_unauthenticated
        + s.federation_handshakes
        + s.ctl_handshakes
        + s.ctl_rejected
        + s.unauthenticated
        + s.key_queries
}

/// Whether an edge may take `d` from `from` without counting it as dropped: only the clear-text "unknown
/// sender" hint from its supernode (everything else a supernode says comes sealed in the control session,
/// which nothing here can forge, and a replay of it is counted).
fn legit_control(_edge: &Edge, from: SocketAddr, d: &[u8]) -> bool {
    from == SN_ADDR && matches!(decode(d), Ok(Message::UnknownSender))
}

/// Feeds one datagram to an edge and checks the accounting; drains its outputs.
fn feed_edge(sim: &mut Sim, e: usize, from: SocketAddr, d: &[u8]) -> Result<(), TestCaseError> {
    let now = sim.instant();
    let edge = &mut sim.edges[e].edge;
    let before = edge.stats();
    let mut buf = d.to_vec();
    edge.handle_udp(now, from, &mut buf);
    let after = edge.stats();
    prop_assert_eq!(after.rx_packets, before.rx_packets + 1);
    let dropped = edge_drops(&after) - edge_drops(&before);
    prop_assert!(
        dropped <= 1,
        "one datagram counted {} times: {:?}",
        dropped,
        d
    );
    if dropped == 0 {
        prop_assert!(
            legit_control(edge, from, d),
            "datagram from {} neither counted as dropped nor a control message: {:?}",
            from,
            decode(d)
        );
    }
    prop_assert_eq!(after.handshakes_completed, before.handshakes_completed);
    prop_assert!(
        edge.poll_tap().is_none(),
        "a bogus datagram reached the TAP device"
    );
    while edge.poll_transmit().is_some() {}
    while edge.poll_event().is_some() {}
    Ok(())
}

#[test]
fn edge_survives_random_and_mutated_datagrams() {
    let sim = recorded_world();
    let e = 0;
    let corpus: Vec<(SocketAddr, Vec<u8>)> = sim
        .captured
        .iter()
        .filter(|(n, _, _)| *n == Node::Edge(e))
        .map(|(_, from, d)| (*from, d.clone()))
        .collect();
    let kinds: std::collections::BTreeSet<String> = corpus
        .iter()
        .map(|(_, d)| match decode(d) {
            Ok(Message::Relayed { inner, .. }) => format!("Relayed({:?})", wire::peek_type(inner)),
            Ok(Message::Data(h, _)) => format!("Data({:?})", h.kind),
            _ => format!("{:?}", wire::peek_type(d)),
        })
        .collect();
    println!("edge fuzz: corpus of {} datagrams: {kinds:?}", corpus.len());
    assert!(
        corpus.len() > 60 && kinds.len() >= 8,
        "a poor corpus: {kinds:?}"
    );
    let peers: Vec<SocketAddr> = corpus.iter().map(|(f, _)| *f).collect();
    let sim = RefCell::new(sim);

    // Random datagrams: everything is counted, except genuine unknown-sender notices from the supernode.
    let mut runner = runner_for(100);
    let from = prop_oneof![
        Just(SN_ADDR),
        proptest::sample::select(peers.clone()),
        socket_addr()
    ];
    runner
        .run(&vec((from.clone(), any_bytes()), 50), |batch| {
            for (from, d) in batch {
                feed_edge(&mut sim.borrow_mut(), e, from, &d)?;
            }
            Ok(())
        })
        .unwrap();

    // Mutations of what the edge really received, from where it came or from elsewhere.
    let from = prop_oneof![
        3 => Just(None),
        1 => socket_addr().prop_map(Some),
        1 => Just(Some(SN_ADDR)),
    ];
    let item = (
        proptest::sample::select(corpus.clone()),
        from,
        vec(mutation(), 0..4),
    );
    let mut runner = runner_for(100);
    runner
        .run(&vec(item, 50), |batch| {
            for ((orig_from, d), from, muts) in batch {
                let d = mutate(d, &muts);
                feed_edge(&mut sim.borrow_mut(), e, from.unwrap_or(orig_from), &d)?;
            }
            Ok(())
        })
        .unwrap();

    // The whole corpus once more, unchanged: every data packet is a replay now.
    let mut sim = sim.into_inner();
    let before = sim.edge(e).stats();
    for (from, d) in &corpus {
        feed_edge(&mut sim, e, *from, d).unwrap();
    }
    assert!(sim.edge(e).stats().dropped_replay > before.dropped_replay + 50);
    let s = sim.edge(e).stats();
    println!(
        "edge fuzz: {} datagrams, {} dropped: {s:?}",
        s.rx_packets,
        edge_drops(&s)
    );

    // And the edge still works: its peers' frames get through.
    sim.run_for(secs(1));
    let m = sim.mac(e);
    let id = sim.inject(1, m);
    sim.run_for(secs(1));
    assert_eq!(
        sim.rx_count(e, id),
        1,
        "the fuzzed edge no longer receives frames"
    );
}

#[test]
fn supernode_survives_random_and_mutated_datagrams() {
    let sim = recorded_world();
    let corpus: Vec<(SocketAddr, Vec<u8>)> = sim
        .captured
        .iter()
        .filter(|(n, _, _)| *n == Node::Supernode)
        .map(|(_, from, d)| (*from, d.clone()))
        .collect();
    let senders: Vec<SocketAddr> = corpus.iter().map(|(f, _)| *f).collect();
    let now = sim.instant();
    // The supernode from the run (open), and a restrictive one that knows the admission key of the
    // community and nothing else.
    let sn_open = sim;
    let keys = sn_open.edges[0].cfg.community.clone();
    let mut policy = AdmissionPolicy::default();
    policy.listed.insert(
        keys.id,
        CommunityPolicy {
            admission: Some(keys.admission.clone()),
            ..CommunityPolicy::named("simnet")
        },
    );
    let mut strict = Supernode::new(
        SupernodeConfig {
            policy,
            ..SupernodeConfig::default()
        },
        now,
        Vec::new(),
    );
    // Give the strict one the same control sessions and registrations first: it has the same key and
    // seed as the one of the run, so the same handshakes in the same order give it the same sessions,
    // and the sealed registrations open.
    for (from, d) in &corpus {
        if matches!(wire::peek_type(d), Ok(MsgType::CtlInit | MsgType::Data)) {
            strict.handle_udp(now, *from, d);
        }
    }
    while strict.poll_transmit().is_some() {}
    assert_eq!(
        strict.edges().len(),
        3,
        "the strict supernode took the sealed registrations: {:?}",
        strict.stats()
    );
    let state = RefCell::new((sn_open, strict));

    fn feed(
        sn: &mut Supernode,
        now: std::time::Instant,
        from: SocketAddr,
        d: &[u8],
    ) -> Result<(), TestCaseError> {
        let before = sn_outcomes(&sn.stats());
        sn.handle_udp(now, from, d);
        let after = sn_outcomes(&sn.stats());
        prop_assert_eq!(
            after,
            before + 1,
            "datagram from {} not counted exactly once: {:?}",
            from,
            decode(d)
        );
        while sn.poll_transmit().is_some() {}
        while sn.poll_event().is_some() {}
        Ok(())
    }

    let mut runner = runner_for(100);
    let from = prop_oneof![proptest::sample::select(senders.clone()), socket_addr()];
    runner
        .run(&vec((from, any_bytes()), 40), |batch| {
            let (open, strict) = &mut *state.borrow_mut();
            for (from, d) in batch {
                feed(open.sn_mut(), now, from, &d)?;
                feed(strict, now, from, &d)?;
            }
            Ok(())
        })
        .unwrap();
    let from = prop_oneof![3 => Just(None), 1 => socket_addr().prop_map(Some)];
    let item = (
        proptest::sample::select(corpus.clone()),
        from,
        vec(mutation(), 0..4),
    );
    let mut runner = runner_for(200);
    runner
        .run(&vec(item, 40), |batch| {
            let (open, strict) = &mut *state.borrow_mut();
            for ((orig, d), from, muts) in batch {
                let d = mutate(d, &muts);
                let from = from.unwrap_or(orig);
                feed(open.sn_mut(), now, from, &d)?;
                feed(strict, now, from, &d)?;
            }
            Ok(())
        })
        .unwrap();
    let (open, strict) = state.into_inner();
    println!("supernode fuzz: open {:?}", open.sn_stats());
    println!("supernode fuzz: strict {:?}", strict.stats());
    for s in [open.sn_stats(), strict.stats()] {
        assert!(
            s.ctl_rejected > 0 && s.unauthenticated + s.dropped_packets > 0,
            "forged and replayed control packets were refused: {s:?}"
        );
    }
}

/// Floods of peer infos about made-up edges cannot grow an edge's peer table: in the clear from the
/// supernode's address they are not believed at all, and even sealed by the supernode itself (a supernode
/// gone bad) they fill the table to its limit and no further.
#[test]
fn peer_info_flood_is_bounded() {
    let mut sim = Sim::new(3);
    sim.add_supernode(SupernodeConfig::default());
    let e = sim.add_edge_with(Location::Internet(Link::default()), |c| {
        c.limits.max_peers = 64
    });
    sim.run_for(secs(1));
    let community = sim.edges[e].cfg.community.id;
    let mut runner = runner_for(1);
    let flood = vec((key(), socket_addr(), local_addrs(), description()), 10_000);
    let sim = RefCell::new(sim);
    runner
        .run(&flood, |infos| {
            let mut sim = sim.borrow_mut();
            let now = sim.instant();
            for (k, observed, addrs, d) in infos {
                let mut b = Vec::new();
                PeerInfo {
                    community,
                    punch: true,
                    public_key: k,
                    mac: MacAddr([2, 1, 2, 3, 4, 5]),
                    ip: None,
                    observed,
                    local_addrs: addrs,
                    description: d,
                }
                .encode(&mut b);
                let key = sim.key(e);
                // Forged in the clear from the supernode's address: counted, not believed.
                let edge = &mut sim.edges[e].edge;
                let (before, peers) = (edge.stats().dropped_unauthenticated, edge.peers().len());
                edge.handle_udp(now, SN_ADDR, &mut b.clone());
                prop_assert_eq!(edge.stats().dropped_unauthenticated, before + 1);
                prop_assert_eq!(edge.peers().len(), peers);
                // Sealed by the supernode.
                prop_assert!(sim.sn_mut().send_control(community, &key, &b));
                let t = sim.sn_mut().poll_transmit().expect("sealed peer info");
                let mut sealed = t.payload;
                let edge = &mut sim.edges[e].edge;
                edge.handle_udp(now, SN_ADDR, &mut sealed);
                while edge.poll_transmit().is_some() {}
                while edge.poll_event().is_some() {}
                if edge.peers().len() < 64 {
                    // (Until full, each is believed.)
                    prop_assert!(edge.peers().iter().any(|p| p.public_key == k));
                }
            }
            Ok(())
        })
        .unwrap();
    let sim = sim.into_inner();
    assert_eq!(
        sim.edge(e).peers().len(),
        64,
        "the table fills up to its limit and no further"
    );
}

/// Authentic handshakes from more new identities than the edge may track: the table stays bounded.
#[test]
fn handshake_flood_from_new_identities_is_bounded() {
    let mut sim = Sim::new(4);
    sim.add_supernode(SupernodeConfig::default());
    let target = sim.add_edge_with(Location::Internet(Link::default()), |c| {
        c.limits.max_peers = 8
    });
    sim.run_for(secs(1));
    // Each attacker is a real edge of the community (it knows the secret and registers): the supernode
    // introduces it and the target, and both sides initiate.
    for _ in 0..24 {
        sim.add_edge(Location::Internet(Link::default()));
    }
    sim.run_for(secs(3));
    let st = sim.edge(target).stats();
    assert_eq!(
        sim.edge(target).peers().len(),
        8,
        "peer table bounded by max_peers"
    );
    assert_eq!(st.handshakes_rejected, 0, "the initiations were authentic");
    assert!(
        st.dropped_no_capacity >= 16,
        "every introduction and initiation turned away is counted: {st:?}"
    );
}
