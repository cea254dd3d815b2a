//! Federation links between supernodes: a session per pair made with a handshake in which both prove the
//! static key the other is configured with, and nothing believed outside it. Driven by hand: supernode
//! state machines on a lossless in-memory network with simulated time, edges played by a control
//! handshake and sealed registrations.
//!
//! Attacks: a supernode with a key other than the configured one, a stranger, clear-text federation
//! messages, forged and replayed sealed ones, a replayed handshake, relayed packets from a non-peer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use weft_proto::control::{self, CtlInitiator, Purpose};
use weft_proto::keys::{CommunityId, PeerTag, PublicKey, StaticKeypair};
use weft_proto::session::Session;
use weft_proto::supernode::{FedPeer, Supernode, SupernodeConfig, SupernodeEvent, SupernodeStats};
use weft_proto::wire::{
    self, DataKind, FedInit, FedMessage, MacAddr, Message, MsgType, PeerInfo, Register,
    CTL_MAC_LEN, DATA_HEADER_LEN,
};

const T0_WALL_US: u64 = 1_800_000_000_000_000;

fn sn_addr(i: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, i], 7700))
}

fn keypair(i: u8) -> StaticKeypair {
    let mut k = [0x40u8; 32];
    k[1] = i;
    StaticKeypair::from_private(k)
}

/// Supernodes on a lossless network; what they send to anyone else waits in `outside`.
struct Net {
    t0: Instant,
    now: Instant,
    sns: Vec<(SocketAddr, Supernode)>,
    outside: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// Every datagram between supernodes: (from, to, bytes).
    wire: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Net {
    fn new() -> Net {
        let t0 = Instant::now();
        Net {
            t0,
            now: t0,
            sns: Vec::new(),
            outside: Vec::new(),
            wire: Vec::new(),
        }
    }

    /// Supernode `i` at [`sn_addr`]`(i)` with key [`keypair`]`(i)`, listing `peers` (address, key).
    fn add(&mut self, i: u8, peers: &[(u8, PublicKey)]) -> usize {
        let cfg = SupernodeConfig {
            identity: keypair(i),
            peers: peers
                .iter()
                .map(|&(p, key)| FedPeer {
                    addr: sn_addr(p),
                    key,
                })
                .collect(),
            wall_clock_us: T0_WALL_US + self.now.duration_since(self.t0).as_micros() as u64,
            seed: [i; 32],
            ..SupernodeConfig::default()
        };
        self.sns
            .push((sn_addr(i), Supernode::new(cfg, self.now, Vec::new())));
        self.sns.len() - 1
    }

    fn sn(&self, i: usize) -> &Supernode {
        &self.sns[i].1
    }

    fn stats(&self, i: usize) -> SupernodeStats {
        self.sns[i].1.stats()
    }

    /// Hands `d` to supernode `i` from `from`, then delivers everything that follows.
    fn inject(&mut self, i: usize, from: SocketAddr, d: &[u8]) {
        let now = self.now;
        self.sns[i].1.handle_udp(now, from, d);
        self.deliver();
    }

    /// Delivers datagrams between supernodes until none is left.
    fn deliver(&mut self) {
        for _ in 0..100 {
            let mut moved = Vec::new();
            for (addr, sn) in &mut self.sns {
                while let Some(t) = sn.poll_transmit() {
                    moved.push((*addr, t.dest, t.payload));
                }
            }
            if moved.is_empty() {
                return;
            }
            for (from, to, d) in moved {
                match self.sns.iter().position(|(a, _)| *a == to) {
                    Some(j) => {
                        self.wire.push((from, to, d.clone()));
                        let now = self.now;
                        self.sns[j].1.handle_udp(now, from, &d);
                    }
                    None => self.outside.push((from, to, d)),
                }
            }
        }
        panic!("supernodes never stop talking");
    }

    /// Runs the timers for `d`, a second at a time.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(500);
            let now = self.now;
            for (_, sn) in &mut self.sns {
                sn.handle_timeout(now);
            }
            self.deliver();
        }
    }

    fn up(&self, i: usize) -> Vec<bool> {
        self.sn(i).federation_peers().iter().map(|p| p.up).collect()
    }

    fn remote_keys(&self, i: usize) -> Vec<PublicKey> {
        self.sn(i)
            .remote_edges_all()
            .iter()
            .map(|r| r.info.public_key)
            .collect()
    }
}

/// An edge played by hand: its control session with one supernode.
struct FakeEdge {
    addr: SocketAddr,
    me: StaticKeypair,
    sn: usize,
    session: Session,
}

impl FakeEdge {
    /// Opens a control session with supernode `sn` and registers in community "fed".
    fn register(net: &mut Net, sn: usize, n: u8) -> FakeEdge {
        let me = keypair(100 + n);
        let addr = SocketAddr::from(([198, 51, 100, n], 4000));
        let sn_key = net.sn(sn).public_key();
        let (init, b, _) = control::initiation(&me, &sn_key, 1, 1, [n; 32], None).unwrap();
        net.inject(sn, addr, &b);
        let resp = net.take(addr).pop().expect("a control response");
        let Ok(Message::CtlResp(r)) = wire::decode(&resp) else {
            panic!("not a control response");
        };
        let session = Session::new(
            init.finish(r.noise).unwrap(),
            1,
            r.sender_index,
            true,
            net.now,
        );
        let mut e = FakeEdge {
            addr,
            me,
            sn,
            session,
        };
        let reg = Register {
            community: CommunityId::from_name("fed"),
            public_key: e.me.public,
            counter: 1,
            mac: MacAddr([2, 0, 0, 0, 0, n]),
            wants_ip: false,
            wants_peers: true,
            static_ip: None,
            local_addrs: vec![],
            description: format!("edge{n}"),
            name: None,
            admission_tag: [0; 16],
        };
        let mut sealed = vec![0u8; DATA_HEADER_LEN];
        reg.encode(&mut sealed);
        e.session.seal_at(DataKind::Control, &mut sealed, 0);
        net.inject(e.sn, e.addr, &sealed);
        e
    }

    /// The keys of the peers the supernode introduced to this edge since the last call.
    fn introduced(&mut self, net: &mut Net) -> Vec<PublicKey> {
        let mut out = Vec::new();
        for mut d in net.take(self.addr) {
            let Ok(Message::Data(h, _)) = wire::decode(&d) else {
                continue;
            };
            let n = self
                .session
                .open(&h, &mut d)
                .expect("sealed in our session");
            if let Ok(Message::PeerInfo(p)) = wire::decode(&d[DATA_HEADER_LEN..DATA_HEADER_LEN + n])
            {
                out.push(p.public_key);
            }
        }
        out
    }
}

impl Net {
    /// What was sent to `addr` outside the supernodes, taken.
    fn take(&mut self, addr: SocketAddr) -> Vec<Vec<u8>> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.outside)
            .into_iter()
            .partition(|(_, to, _)| *to == addr);
        self.outside = rest;
        mine.into_iter().map(|(_, _, d)| d).collect()
    }
}

/// sn1 and sn2, each configured with the other's address and key, linked.
fn linked_pair() -> Net {
    let mut net = Net::new();
    net.add(1, &[(2, keypair(2).public)]);
    net.add(2, &[(1, keypair(1).public)]);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.up(0), vec![true], "sn1 has no session with sn2");
    assert_eq!(net.up(1), vec![true], "sn2 has no session with sn1");
    for i in 0..2 {
        let up: Vec<SupernodeEvent> = std::iter::from_fn(|| net.sns[i].1.poll_event()).collect();
        assert_eq!(up.len(), 1, "{up:?}");
        assert!(matches!(up[0], SupernodeEvent::FederationPeerUp { .. }));
    }
    net
}

#[test]
fn federated_supernodes_introduce_their_edges_over_their_session() {
    let mut net = linked_pair();
    let mut a = FakeEdge::register(&mut net, 0, 1);
    let mut b = FakeEdge::register(&mut net, 1, 2);
    assert_eq!(net.remote_keys(0), vec![b.me.public]);
    assert_eq!(net.remote_keys(1), vec![a.me.public]);
    assert!(a.introduced(&mut net).contains(&b.me.public));
    assert!(b.introduced(&mut net).contains(&a.me.public));
    // Nothing a supernode told the other travelled in the clear: every datagram between them is a
    // handshake message or a sealed federation packet, and the edges' keys appear in none.
    for (_, _, d) in &net.wire {
        match wire::decode(d) {
            Ok(Message::FedInit(_) | Message::FedResp(_)) => {}
            Ok(Message::Data(h, _)) if h.kind == DataKind::Federation => {}
            other => panic!("clear federation traffic: {other:?}"),
        }
        for k in [a.me.public, b.me.public] {
            assert!(!d.windows(32).any(|w| w == k.0), "an edge key in the clear");
        }
    }
    for i in 0..2 {
        let s = net.stats(i);
        assert!(
            s.federation_received > 0 && s.federation_handshakes > 0,
            "{s:?}"
        );
        assert_eq!(
            s.federation_rejected + s.federation_unauthenticated,
            0,
            "{s:?}"
        );
    }
}

#[test]
fn links_rekey_and_stay_bounded_and_a_restarted_peer_comes_back() {
    let mut net = linked_pair();
    let _a = FakeEdge::register(&mut net, 0, 1);
    let hs = net.stats(0).federation_handshakes;
    net.run_for(Duration::from_secs(600));
    let s = net.stats(0);
    // Ten minutes: a new session every two minutes or so, not one per timer tick.
    let made = s.federation_handshakes - hs;
    assert!((4..=12).contains(&made), "{made} sessions in 10 minutes");
    assert_eq!(net.up(0), vec![true]);
    assert_eq!(net.up(1), vec![true]);
    assert_eq!(s.federation_rejected, 0, "{s:?}");
    assert_eq!(net.stats(1).federation_rejected, 0);
    // The announcements kept flowing through the rekeys (the remote edge would expire after 65 s).
    // (The fake edge does not refresh its registration, so re-register it to keep it.)
    let a = FakeEdge::register(&mut net, 0, 3);
    net.run_for(Duration::from_secs(1));
    assert!(net.remote_keys(1).contains(&a.me.public));

    // sn2 restarts (a new state machine, a later wall clock): it initiates, sn1 takes its new session.
    let cfg_peers = [(1, keypair(1).public)];
    let now = net.now;
    net.sns.remove(1);
    net.now = now + Duration::from_secs(5);
    net.add(2, &cfg_peers);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.up(1), vec![true]);
    assert!(
        net.remote_keys(1).contains(&a.me.public),
        "the restarted sn2 was told about sn1's edge"
    );
}

#[test]
fn a_supernode_with_another_key_cannot_federate() {
    let mut net = Net::new();
    // sn1 lists "sn3" at 192.0.2.3 with a key that is not the one sn3 has (an impostor there, or a
    // stale key): the impostor knows sn1's real key.
    net.add(1, &[(3, keypair(99).public)]);
    net.add(3, &[(1, keypair(1).public)]);
    let mut m = FakeEdge::register(&mut net, 1, 9);
    let mut a = FakeEdge::register(&mut net, 0, 1);
    net.run_for(Duration::from_secs(20));
    assert_eq!(net.up(0), vec![false]);
    assert_eq!(net.up(1), vec![false]);
    let s = net.stats(0);
    assert!(s.federation_rejected > 0, "{s:?}");
    assert_eq!(s.federation_received + s.federation_handshakes, 0, "{s:?}");
    assert!(net.remote_keys(0).is_empty());
    assert!(net.remote_keys(1).is_empty());
    assert!(!a.introduced(&mut net).contains(&m.me.public));
    assert!(!m.introduced(&mut net).contains(&a.me.public));
    // sn1's own initiations, addressed to the configured key, fail their MAC at the impostor.
    assert!(net.stats(1).federation_rejected > 0);
    // sn1 said once what to check: which key its peer's address proved.
    let said: Vec<SupernodeEvent> = std::iter::from_fn(|| net.sns[0].1.poll_event())
        .filter(|e| {
            matches!(
                e,
                SupernodeEvent::FederationKeyMismatch { .. }
                    | SupernodeEvent::FederationPeerUp { .. }
            )
        })
        .collect();
    assert_eq!(
        said,
        vec![SupernodeEvent::FederationKeyMismatch {
            peer: sn_addr(3),
            key: keypair(3).public
        }]
    );

    // A stranger that knows sn1's key but is not configured at all: dropped before any Noise work,
    // and never answered.
    let stranger = keypair(50);
    let d = fed_init(&stranger, &keypair(1).public, 1_000, 7);
    let before = net.stats(0).federation_rejected;
    let from = SocketAddr::from(([203, 0, 113, 5], 7700));
    net.inject(0, from, &d);
    assert_eq!(net.stats(0).federation_rejected, before + 1);
    assert!(net.take(from).is_empty(), "a stranger got an answer");
}

/// A FED_INIT from `me` to the holder of `to`, with a valid MAC.
fn fed_init(me: &StaticKeypair, to: &PublicKey, ts: u64, index: u32) -> Vec<u8> {
    let (_, noise) = CtlInitiator::start_for(Purpose::Federation, me, to, ts, [9; 32]).unwrap();
    let mut m = FedInit {
        sender_index: index,
        noise: &noise,
        mac: [0; CTL_MAC_LEN],
    };
    let mut b = Vec::new();
    m.encode(&mut b);
    m.mac = control::initiation_mac_for(Purpose::Federation, to, &b[..FedInit::signed_len()]);
    b.clear();
    m.encode(&mut b);
    b
}

#[test]
fn forged_replayed_and_clear_text_federation_messages_are_ignored() {
    let mut net = linked_pair();
    let _a = FakeEdge::register(&mut net, 0, 1);
    let b = FakeEdge::register(&mut net, 1, 2);
    net.run_for(Duration::from_secs(11));
    // Sealed announcements sn2 really sent to sn1 (the periodic sync), and the handshakes so far.
    let sealed: Vec<Vec<u8>> = net
        .wire
        .iter()
        .filter(|(f, t, d)| {
            *f == sn_addr(2)
                && *t == sn_addr(1)
                && matches!(wire::decode(d), Ok(Message::Data(h, _)) if h.kind == DataKind::Federation)
        })
        .map(|(_, _, d)| d.clone())
        .collect();
    assert!(!sealed.is_empty(), "no sealed announcement captured");
    let before = net.stats(0);

    // 1. Replayed: the session's window refuses each.
    for d in &sealed {
        net.inject(0, sn_addr(2), d);
    }
    // 2. Forged: one bit of the ciphertext flipped.
    let mut forged = sealed[0].clone();
    forged[DATA_HEADER_LEN + 3] ^= 1;
    net.inject(0, sn_addr(2), &forged);
    let s = net.stats(0);
    assert_eq!(s.federation_received, before.federation_received);
    assert_eq!(
        s.federation_rejected,
        before.federation_rejected + sealed.len() as u64 + 1
    );

    // 3. In the clear, from sn2's own address: an edge of the attacker's, the removal of B, a punch.
    let community = CommunityId::from_name("fed");
    let evil = keypair(66).public;
    let msgs = [
        FedMessage::Edge {
            info: PeerInfo {
                community,
                punch: false,
                public_key: evil,
                mac: MacAddr([2, 6, 6, 6, 6, 6]),
                ip: None,
                observed: "198.51.100.66:6666".parse().unwrap(),
                local_addrs: vec![],
                description: "evil".into(),
            },
            introduce: true,
        },
        FedMessage::Gone {
            community,
            key: b.me.public,
        },
        FedMessage::Punch {
            community,
            from: evil,
            target: b.me.public,
        },
    ];
    for m in &msgs {
        let mut d = Vec::new();
        m.encode(&mut d);
        net.inject(0, sn_addr(2), &d);
    }
    let s = net.stats(0);
    assert_eq!(
        s.federation_unauthenticated,
        before.federation_unauthenticated + 3
    );
    assert_eq!(s.federation_received, before.federation_received);
    assert_eq!(
        net.remote_keys(0),
        vec![b.me.public],
        "B was dropped or evil added"
    );

    // 4. sn2's last handshake, replayed: no new session, no answer.
    let init = net
        .wire
        .iter()
        .rev()
        .find(|(f, _, d)| *f == sn_addr(2) && matches!(wire::peek_type(d), Ok(MsgType::FedInit)))
        .map(|(_, _, d)| d.clone())
        .expect("sn2 initiated");
    let hs = net.stats(0).federation_handshakes;
    let rejected = net.stats(0).federation_rejected;
    net.wire.clear();
    net.inject(0, sn_addr(2), &init);
    assert_eq!(net.stats(0).federation_handshakes, hs);
    assert_eq!(net.stats(0).federation_rejected, rejected + 1);
    assert!(net.wire.is_empty(), "a replayed initiation was answered");

    // 5. Relayed packets from an address that is no linked peer: dropped, nothing forwarded.
    let mut relay = Vec::new();
    wire::encode_fed_relay_header(community, PeerTag([1; 8]), b.me.public.tag(), &mut relay);
    relay.extend_from_slice(&[2, 3, 0, 0, 1, 2, 3, 4]);
    let rejected = net.stats(0).federation_rejected;
    let relayed = net.stats(0).relayed_packets;
    net.inject(0, SocketAddr::from(([203, 0, 113, 9], 7700)), &relay);
    assert_eq!(net.stats(0).federation_rejected, rejected + 1);
    assert_eq!(net.stats(0).relayed_packets, relayed);
    // From the linked peer it is forwarded (to B, registered with sn2: sn2 is asked, so send to sn2).
    let relayed = net.stats(1).relayed_packets;
    net.inject(1, sn_addr(1), &relay);
    assert_eq!(net.stats(1).relayed_packets, relayed + 1);
}
