//! The authenticated edge-to-supernode channel, attacked: forged and replayed supernode messages from the
//! supernode's address, spoofed registrations, reflection, strangers without the secret, and a supernode
//! key that is not the pinned one. Each attack must do no harm and be counted.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::net::*;
use weft_proto::control;
use weft_proto::edge::{AddressMode, Event};
use weft_proto::keys::{CommunityKeys, PublicKey, StaticKeypair};
use weft_proto::session::Session;
use weft_proto::supernode::{AdmissionPolicy, CommunityPolicy, SupernodeConfig, SupernodeEvent};
use weft_proto::wire::{
    self, DataKind, Ipv4Net, MacAddr, Message, NakReason, PeerInfo, PeerRevoked, Register,
    RegisterAck, RegisterNak, SupernodePong, ADMISSION_TAG_LEN, DATA_HEADER_LEN,
};

const ATTACKER: &str = "198.51.100.66:4444";

fn attacker() -> SocketAddr {
    ATTACKER.parse().unwrap()
}

/// Two edges up through the supernode.
fn pair(seed: u64) -> (Sim, EdgeId, EdgeId) {
    let mut sim = Sim::new(seed);
    sim.add_supernode(SupernodeConfig::default());
    let a = sim.add_edge(Location::Internet(Link::default()));
    let b = sim.add_edge(Location::Internet(Link::default()));
    sim.run_until_cond(secs(10), |s| s.pair_up(a, b))
        .expect("up");
    (sim, a, b)
}

/// Hands `d` to edge `e` as if from `from`, and drops what it answers.
fn to_edge(sim: &mut Sim, e: EdgeId, from: SocketAddr, d: &[u8]) {
    let now = sim.instant();
    let edge = &mut sim.edges[e].edge;
    edge.handle_udp(now, from, &mut d.to_vec());
    while edge.poll_transmit().is_some() {}
}

/// Hands `d` to the supernode from `from`; returns the datagrams it sends in answer.
fn to_sn(sim: &mut Sim, from: SocketAddr, d: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
    let now = sim.instant();
    let sn = sim.sn_mut();
    sn.handle_udp(now, from, d);
    std::iter::from_fn(|| sn.poll_transmit())
        .map(|t| (t.dest, t.payload))
        .collect()
}

#[test]
fn forged_and_replayed_supernode_messages_change_nothing() {
    let (mut sim, a, b) = pair(71);
    let community = sim.edges[a].cfg.community.id;
    let (ka, kb) = (sim.key(a), sim.key(b));
    let address = sim.edge(a).address();
    let before = sim.edge(a).stats().dropped_unauthenticated;
    let since = sim.now();
    let mut forged = Vec::new();
    // An acknowledgement that moves our address and opens the community; a refusal that cuts us off;
    // peer info that points B's key at the attacker; a revocation of B; a pong from another boot.
    let mut m = Vec::new();
    RegisterAck {
        community,
        public_key: ka,
        counter: u64::MAX,
        observed: attacker(),
        assigned_ip: Some(Ipv4Net {
            addr: "10.66.66.66".parse().unwrap(),
            prefix: 8,
        }),
        lifetime_secs: 65,
        boot_id: 999,
        introduced_only: false,
    }
    .encode(&mut m);
    forged.push(m);
    let mut m = Vec::new();
    RegisterNak {
        community,
        public_key: ka,
        counter: u64::MAX,
        reason: NakReason::KeyNotAllowed,
    }
    .encode(&mut m);
    forged.push(m);
    let mut m = Vec::new();
    PeerInfo {
        community,
        punch: true,
        public_key: kb,
        mac: MacAddr([2, 6, 6, 6, 6, 6]),
        ip: None,
        observed: attacker(),
        local_addrs: vec![attacker()],
        description: "evil".into(),
    }
    .encode(&mut m);
    forged.push(m);
    let mut m = Vec::new();
    PeerRevoked {
        community,
        public_key: kb,
    }
    .encode(&mut m);
    forged.push(m);
    let mut m = Vec::new();
    SupernodePong {
        nonce: 1,
        boot_id: 999,
        load_permille: 1000,
    }
    .encode(&mut m);
    forged.push(m);
    for m in &forged {
        to_edge(&mut sim, a, SN_ADDR, m);
    }
    // Sealed control packets the supernode really sent to A, replayed.
    sim.capture = true;
    sim.run_for(secs(3));
    sim.capture = false;
    let replays: Vec<Vec<u8>> = sim
        .captured
        .iter()
        .filter(|(n, from, d)| {
            *n == Node::Edge(a)
                && *from == SN_ADDR
                && matches!(wire::decode(d), Ok(Message::Data(h, _)) if h.kind == DataKind::Control)
        })
        .map(|(_, _, d)| d.clone())
        .collect();
    assert!(!replays.is_empty(), "no sealed control packet captured");
    for d in &replays {
        to_edge(&mut sim, a, SN_ADDR, d);
    }
    let st = sim.edge(a).stats();
    assert_eq!(
        st.dropped_unauthenticated,
        before + (forged.len() + replays.len()) as u64,
        "every forgery and replay counted: {st:?}"
    );
    assert_eq!(sim.edge(a).address(), address, "address moved by a forgery");
    assert!(sim.edge(a).is_registered());
    assert!(sim.pair_up(a, b), "a forgery took B away");
    let peer = sim.peer(a, b).expect("B still known");
    assert_ne!(peer.description, "evil");
    let bad: Vec<&Event> = sim
        .events_since(a, since)
        .filter(|e| {
            matches!(
                e,
                Event::PeerRevoked { .. }
                    | Event::RegistrationRefused { .. }
                    | Event::AddressAssigned(_)
                    | Event::SupernodeRestarted { .. }
            )
        })
        .collect();
    assert!(bad.is_empty(), "forgeries acted on: {bad:?}");
    // And frames still flow both ways.
    let start = sim.now() + ms(10);
    let (ab, ba) = crate::streams(&mut sim, a, b, start, ms(20), 10);
    sim.run_for(secs(1));
    sim.assert_delivered_once(b, &ab, "a to b");
    sim.assert_delivered_once(a, &ba, "b to a");
}

/// A control handshake from `me` to the supernode, played by hand: the session and the supernode's index.
fn handshake(sim: &mut Sim, me: &StaticKeypair, from: SocketAddr, ts: u64) -> Option<Session> {
    let sn_key = sim.sn().public_key();
    let (init, b, _) = control::initiation(me, &sn_key, 5, ts, [ts as u8; 32], None).unwrap();
    let out = to_sn(sim, from, &b);
    let (_, resp) = out.into_iter().find(|(d, _)| *d == from)?;
    let Ok(Message::CtlResp(r)) = wire::decode(&resp) else {
        return None;
    };
    let keys = init.finish(r.noise).ok()?;
    Some(Session::new(keys, 5, r.sender_index, true, sim.instant()))
}

fn sealed(s: &mut Session, msg: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; DATA_HEADER_LEN];
    b.extend_from_slice(msg);
    s.seal_at(DataKind::Control, &mut b, 0);
    b
}

fn register(keys: &CommunityKeys, key: PublicKey, counter: u64, wants_ip: bool) -> Vec<u8> {
    let reg = Register {
        community: keys.id,
        public_key: key,
        counter,
        mac: MacAddr([2, 6, 6, 6, 6, 6]),
        wants_ip,
        wants_peers: true,
        static_ip: None,
        local_addrs: vec![],
        description: "attacker".into(),
        name: None,
        admission_tag: [0; ADMISSION_TAG_LEN],
    };
    let mut b = Vec::new();
    reg.encode_unsigned(&mut b);
    let tag = keys.admission.tag(&b);
    b.extend_from_slice(&tag);
    b
}

#[test]
fn spoofed_registrations_neither_lock_out_nor_steal_nor_unbind() {
    let (mut sim, a, b) = pair(72);
    let keys = sim.edges[a].cfg.community.clone();
    let ka = sim.key(a);
    let a_addr = sim.addr(a);
    let record = |sim: &Sim| {
        sim.sn()
            .edges()
            .into_iter()
            .find(|e| e.key == ka)
            .map(|e| e.addr)
    };
    assert_eq!(record(&sim), Some(a_addr));
    // 1. A clear-text registration with A's key, from the attacker and from A's own address (spoofed).
    let unauth = sim.sn_stats().unauthenticated;
    for from in [attacker(), a_addr] {
        let out = to_sn(&mut sim, from, &register(&keys, ka, u64::MAX, true));
        assert!(
            out.is_empty(),
            "answered a clear-text registration: {out:?}"
        );
    }
    assert_eq!(sim.sn_stats().unauthenticated, unauth + 2);
    // 2. The attacker's own authentic session, in which it registers under A's key.
    let me = StaticKeypair::from_private([0x66; 32]);
    let mut s = handshake(&mut sim, &me, attacker(), 1).expect("handshake");
    let dropped = sim.sn_stats().dropped_packets;
    let out = to_sn(
        &mut sim,
        attacker(),
        &sealed(&mut s, &register(&keys, ka, u64::MAX, true)),
    );
    assert!(out.is_empty(), "answered a registration for another key");
    assert_eq!(sim.sn_stats().dropped_packets, dropped + 1);
    // 3. A handshake spoofed from A's address (the answer goes to A, who ignores it).
    let spoofed = handshake(&mut sim, &me, a_addr, 2);
    assert!(
        spoofed.is_some(),
        "the supernode answers a valid initiation"
    );
    assert_eq!(record(&sim), Some(a_addr), "A's registration moved");
    // A stays registered and reachable through the relay, and B's packets still reach A.
    sim.run_for(secs(30));
    assert_eq!(record(&sim), Some(a_addr));
    assert!(sim.edge(a).is_registered());
    let start = sim.now() + ms(10);
    let (ab, ba) = crate::streams(&mut sim, a, b, start, ms(20), 10);
    sim.run_for(secs(1));
    sim.assert_delivered_once(b, &ab, "a to b");
    sim.assert_delivered_once(a, &ba, "b to a");
}

#[test]
fn nothing_a_stranger_sends_is_answered_with_more_bytes() {
    let mut sim = Sim::new(73);
    sim.add_supernode(SupernodeConfig::default());
    let me = StaticKeypair::from_private([0x67; 32]);
    let sn_key = sim.sn().public_key();
    let (_, valid_init, _) = control::initiation(&me, &sn_key, 5, 9, [1; 32], None).unwrap();
    let mut query = Vec::new();
    wire::encode_key_query(&mut query);
    let mut relay = Vec::new();
    wire::encode_relay_header(wire::MsgType::Relay, PublicKey([1; 32]).tag(), &mut relay);
    relay.extend_from_slice(&[0; 32]);
    let mut ctl_for_nobody = vec![0u8; DATA_HEADER_LEN + 16];
    wire::DataHeader {
        kind: DataKind::Control,
        receiver_index: 12345,
        counter: 0,
    }
    .write((&mut ctl_for_nobody[..DATA_HEADER_LEN]).try_into().unwrap());
    let keys = CommunityKeys::from_key_material(COMMUNITY, SECRET);
    let probes = [
        ("valid control initiation", valid_init),
        ("key query", query),
        ("relay from a stranger", relay),
        ("sealed packet for no session", ctl_for_nobody),
        (
            "clear-text registration",
            register(&keys, me.public, 1, true),
        ),
    ];
    for (what, d) in probes {
        let out = to_sn(&mut sim, attacker(), &d);
        let sent: usize = out.iter().map(|(_, p)| p.len()).sum();
        assert!(
            sent <= d.len(),
            "{what}: {} bytes in, {sent} bytes out",
            d.len()
        );
        assert!(out.iter().all(|(to, _)| *to == attacker()));
    }
}

#[test]
fn strangers_cannot_take_addresses_or_list_members_of_a_closed_community() {
    let keys = CommunityKeys::from_key_material(COMMUNITY, SECRET);
    let mut policy = AdmissionPolicy::default();
    policy.listed.insert(
        keys.id,
        CommunityPolicy {
            admission: Some(keys.admission.clone()),
            ..CommunityPolicy::named(COMMUNITY)
        },
    );
    let mut sim = Sim::new(74);
    sim.add_supernode(SupernodeConfig {
        policy,
        pool_min: "10.200.0.0".parse().unwrap(),
        pool_max: "10.200.0.0".parse().unwrap(),
        pool_prefix: 24,
        // 300 handshakes in one instant: no load shedding here (it has its own test).
        handshake_load: u32::MAX,
        ..SupernodeConfig::default()
    });
    let a = sim.add_edge(Location::Internet(Link::default()));
    sim.run_for(secs(2));
    assert!(sim.edge(a).is_registered());
    // 300 strangers with authentic sessions and a guessed secret ask for addresses and peers.
    let wrong = CommunityKeys::from_key_material(COMMUNITY, b"summer2023");
    let mut naks = 0;
    for i in 0..300u32 {
        let me = StaticKeypair::from_private({
            let mut k = [0x70; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            k
        });
        let from: SocketAddr = format!("198.51.100.{}:{}", 1 + i % 200, 1000 + i)
            .parse()
            .unwrap();
        let mut s = handshake(&mut sim, &me, from, 10 + u64::from(i)).expect("handshake");
        for (_, d) in to_sn(
            &mut sim,
            from,
            &sealed(&mut s, &register(&wrong, me.public, 1, true)),
        ) {
            let mut d = d;
            let Ok(Message::Data(h, _)) = wire::decode(&d) else {
                panic!("answer in the clear")
            };
            let n = s.open(&h, &mut d).expect("sealed for us");
            match wire::decode(&d[DATA_HEADER_LEN..DATA_HEADER_LEN + n]) {
                Ok(Message::RegisterNak(n)) => {
                    assert_eq!(n.reason, NakReason::BadAdmissionProof);
                    naks += 1;
                }
                other => panic!("a stranger was told {other:?}"),
            }
        }
    }
    assert_eq!(naks, 300);
    assert_eq!(sim.sn().edges().len(), 1, "only the member is registered");
    // The pool (one /24) is untouched: a member that joins now gets an address from it.
    let late = sim.add_edge_with(Location::Internet(Link::default()), |c| {
        c.address = AddressMode::Auto
    });
    sim.run_for(secs(2));
    let got = sim.edge(late).address().expect("an address from the pool");
    assert_eq!(got.addr.octets()[..3], [10, 200, 0]);
    let members: HashSet<PublicKey> = sim.sn().edges().iter().map(|e| e.key).collect();
    assert_eq!(members, HashSet::from([sim.key(a), sim.key(late)]));
}

#[test]
fn unpinned_key_is_learned_once_and_a_wrong_pin_is_reported_not_used() {
    // Unpinned: learned on first use, reported, and the edge registers.
    let mut sim = Sim::new(75);
    sim.add_supernode(SupernodeConfig::default());
    let a = sim.add_edge(Location::Internet(Link::default()));
    sim.run_for(secs(2));
    assert!(sim.edge(a).is_registered());
    let sn_key = sim.sn().public_key();
    let learned: Vec<&Event> = sim
        .events_since(a, ms(0))
        .filter(|e| matches!(e, Event::SupernodeKeyLearned { .. }))
        .collect();
    assert_eq!(
        learned,
        vec![&Event::SupernodeKeyLearned {
            supernode: SN_ADDR,
            key: sn_key
        }]
    );
    assert_eq!(sim.edge(a).supernodes()[0].key, Some(sn_key));

    // Pinned to another key (a supernode re-keyed, or an impostor at its address): never registers,
    // never takes the presented key, and says which key it saw.
    let mut sim = Sim::new(76);
    sim.add_supernode(SupernodeConfig::default());
    let pinned = StaticKeypair::from_private([0x99; 32]).public;
    let e = sim.add_edge_with(Location::Internet(Link::default()), |c| {
        c.supernode_keys.insert(SN_ADDR, pinned);
    });
    sim.run_for(secs(20));
    assert!(!sim.edge(e).is_registered());
    let st = &sim.edge(e).supernodes()[0];
    assert_eq!(st.key, Some(pinned));
    assert_eq!(st.key_mismatch, Some(sn_key));
    assert!(sim.events_since(e, ms(0)).any(|ev| *ev
        == Event::SupernodeKeyMismatch {
            supernode: SN_ADDR,
            pinned,
            presented: sn_key
        }));
    assert_eq!(sim.sn().edges().len(), 0);
    assert!(
        sim.sn_stats().ctl_rejected > 0,
        "the initiations for another key were refused"
    );
}

#[test]
fn a_key_reply_nobody_asked_for_is_ignored() {
    let (mut sim, a, _) = pair(77);
    let sn_key = sim.sn().public_key();
    let before = sim.edge(a).stats().dropped_unauthenticated;
    let mut m = Vec::new();
    wire::KeyReply {
        key: PublicKey([0x42; 32]),
    }
    .encode(&mut m);
    to_edge(&mut sim, a, SN_ADDR, &m);
    assert_eq!(sim.edge(a).stats().dropped_unauthenticated, before + 1);
    let st = &sim.edge(a).supernodes()[0];
    assert_eq!((st.key, st.key_mismatch), (Some(sn_key), None));
}

#[test]
fn under_load_the_supernode_answers_spoofed_initiations_with_cookies_and_edges_still_join() {
    let mut sim = Sim::new(78);
    // Always under load: every initiation must carry a cookie's MAC2 before any Diffie-Hellman.
    sim.add_supernode(SupernodeConfig {
        handshake_load: 0,
        ..SupernodeConfig::default()
    });
    let sn_key = sim.sn().public_key();
    // 200 valid initiations (MAC1 right: the supernode's key is public) from 200 spoofed sources.
    let before = sim.sn_stats();
    let (mut bytes_in, mut bytes_out) = (0, 0);
    for i in 0..200u32 {
        let me = StaticKeypair::from_private([0x70 ^ (i as u8); 32]);
        let from: SocketAddr = format!("198.51.100.{}:{}", 1 + i % 250, 2000 + i)
            .parse()
            .unwrap();
        let (_, d, _) =
            control::initiation(&me, &sn_key, i, 1 + u64::from(i), [1; 32], None).unwrap();
        bytes_in += d.len();
        for (to, p) in to_sn(&mut sim, from, &d) {
            assert_eq!(to, from);
            assert!(matches!(wire::decode(&p), Ok(Message::CookieReply(_))));
            bytes_out += p.len();
        }
    }
    let st = sim.sn_stats();
    assert_eq!(
        st.ctl_handshakes, before.ctl_handshakes,
        "Diffie-Hellman work under load"
    );
    assert_eq!(
        st.ctl_cookies_sent + st.ctl_rate_limited,
        before.ctl_cookies_sent + 200
    );
    assert!(
        bytes_out < bytes_in,
        "{bytes_out} bytes out for {bytes_in} in"
    );
    // A real edge gets a cookie, puts MAC2 on its next initiation and registers.
    let a = sim.add_edge(Location::Internet(Link::default()));
    sim.run_until_cond(secs(10), |s| s.edge(a).is_registered())
        .expect("an edge joins a loaded supernode");
    assert!(sim.edge(a).stats().cookies_received >= 1);
    assert!(sim.sn_stats().ctl_handshakes > before.ctl_handshakes);
    sim.run_for(secs(5));
    // The operator heard of the load once (not once per initiation), and that it was over.
    let load = |under: bool| {
        sim.sn_events
            .iter()
            .filter(|(_, e)| {
                *e == SupernodeEvent::HandshakeLoad {
                    under_load: under,
                    threshold: 0,
                }
            })
            .count()
    };
    assert_eq!((load(true), load(false)), (1, 1));
}

#[test]
fn a_silent_supernode_is_reported_once_until_it_answers() {
    let silent = |sim: &Sim, a: EdgeId, since| {
        sim.events_since(a, since)
            .filter(|e| matches!(e, Event::SupernodeSilent { .. }))
            .count()
    };
    let mut sim = Sim::new(79);
    sim.add_supernode(SupernodeConfig::default());
    sim.stop_supernode();
    let a = sim.add_edge(Location::Internet(Link::default()));
    sim.run_for(secs(60));
    assert!(!sim.edge(a).is_registered());
    assert_eq!(silent(&sim, a, ms(0)), 1, "once, not once per attempt");
    // It comes up: the edge registers, and says nothing more while it answers.
    sim.start_supernode();
    sim.run_until_cond(secs(30), |s| s.edge(a).is_registered())
        .expect("registers once the supernode runs");
    let up = sim.now();
    sim.run_for(secs(60));
    assert_eq!(silent(&sim, a, up), 0);
    // It stops again: a new silence, reported once more.
    sim.stop_supernode();
    let down = sim.now();
    sim.run_for(secs(60));
    assert_eq!(silent(&sim, a, down), 1);
}
