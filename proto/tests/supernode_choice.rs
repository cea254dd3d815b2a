//! An edge with several supernodes: which one it uses, and how it moves when that one goes silent.
//! Driven by hand (no simulator): the test plays both supernodes, answering registrations and pings.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use weft_proto::control;
use weft_proto::edge::{AddressMode, Edge, EdgeConfig, Event, Limits, Timers};
use weft_proto::keys::{CommunityKeys, StaticKeypair};
use weft_proto::session::Session;
use weft_proto::wire::{
    self, CtlResp, DataKind, Ipv4Net, KeyReply, MacAddr, Message, RegisterAck, SupernodePong,
    DATA_HEADER_LEN,
};

const WALL_US: u64 = 1_750_000_000_000_000;

fn sn(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)), 7700)
}

fn edge(now: Instant) -> Edge {
    let cfg = EdgeConfig {
        community: CommunityKeys::from_key_material("choice", b"secret"),
        identity: StaticKeypair::from_private([7; 32]),
        supernodes: vec![sn(1), sn(2)],
        supernode_keys: Default::default(),
        mac: MacAddr([2, 0, 0, 0, 0, 7]),
        address: AddressMode::Static(Ipv4Net {
            addr: Ipv4Addr::new(10, 7, 0, 7),
            prefix: 24,
        }),
        local_addrs: vec![],
        avoid_nets: Vec::new(),
        description: "e".into(),
        allow_p2p: true,
        timers: Timers::default(),
        limits: Limits::default(),
    };
    Edge::new(cfg, now, WALL_US, [9; 32])
}

/// One played supernode: its key (the edge learns it on first use) and the control session it answered.
struct Played {
    key: StaticKeypair,
    session: Option<Session>,
}

fn played() -> [Played; 2] {
    [1u8, 2].map(|n| Played {
        key: StaticKeypair::from_private([0x40 + n; 32]),
        session: None,
    })
}

/// Answers what the edge sent to the supernodes, as a real one would (key query, control handshake,
/// sealed acknowledgements and pongs): after `delay[i]` for supernode i+1, with `load[i]`; a supernode
/// whose `alive[i]` is false answers nothing.
fn answer(
    e: &mut Edge,
    sns: &mut [Played; 2],
    now: Instant,
    delay: [u64; 2],
    load: [u16; 2],
    alive: [bool; 2],
) {
    let mut replies = Vec::new();
    while let Some(mut t) = e.poll_transmit() {
        let i = if t.dest == sn(1) { 0 } else { 1 };
        if !alive[i] {
            continue;
        }
        let p = &mut sns[i];
        let mut b = Vec::new();
        match wire::decode(&t.payload).expect("the edge sends valid datagrams") {
            Message::KeyQuery => KeyReply { key: p.key.public }.encode(&mut b),
            Message::CtlInit(m) => {
                let r = control::respond(&p.key, m.noise, [i as u8; 32]).expect("valid");
                CtlResp {
                    sender_index: 100 + i as u32,
                    receiver_index: m.sender_index,
                    noise: &r.msg,
                }
                .encode(&mut b);
                p.session = Some(Session::new(
                    r.keys,
                    100 + i as u32,
                    m.sender_index,
                    false,
                    now,
                ));
            }
            Message::Data(h, _) if h.kind == DataKind::Control => {
                let s = p.session.as_mut().expect("a session");
                let n = s.open(&h, &mut t.payload).expect("sealed in our session");
                let inner = &t.payload[DATA_HEADER_LEN..DATA_HEADER_LEN + n];
                let mut m = Vec::new();
                match wire::decode(inner).expect("valid control message") {
                    Message::Register(r) => RegisterAck {
                        community: r.community,
                        public_key: r.public_key,
                        counter: r.counter,
                        observed: "203.0.113.7:4000".parse().unwrap(),
                        assigned_ip: None,
                        lifetime_secs: 65,
                        boot_id: 1,
                        introduced_only: false,
                    }
                    .encode(&mut m),
                    Message::SupernodePing(nonce) => SupernodePong {
                        nonce,
                        boot_id: 1,
                        load_permille: load[i],
                    }
                    .encode(&mut m),
                    _ => continue,
                }
                b.extend_from_slice(&[0; DATA_HEADER_LEN]);
                b.extend_from_slice(&m);
                s.seal_at(DataKind::Control, &mut b, 0);
            }
            _ => continue,
        }
        replies.push((delay[i], t.dest, b));
    }
    replies.sort_by_key(|r| r.0);
    for (d, from, mut b) in replies {
        e.handle_udp(now + Duration::from_millis(d), from, &mut b);
    }
}

fn active(e: &Edge) -> Option<SocketAddr> {
    e.supernodes().iter().find(|s| s.active).map(|s| s.addr)
}

/// Runs `secs` seconds of edge time in 100 ms steps, the supernodes answering as given.
fn run(
    e: &mut Edge,
    sns: &mut [Played; 2],
    now: &mut Instant,
    secs: u64,
    delay: [u64; 2],
    load: [u16; 2],
    alive: [bool; 2],
) {
    for _ in 0..secs * 10 {
        e.handle_timeout(*now);
        answer(e, sns, *now, delay, load, alive);
        *now += Duration::from_millis(100);
    }
}

#[test]
fn closest_supernode_is_used_and_a_silent_one_is_left_within_four_seconds() {
    let mut now = Instant::now();
    let mut e = edge(now);
    let sns = &mut played();
    // sn2 answers in 10 ms, sn1 in 40 ms: after the first pings the edge uses sn2.
    run(&mut e, sns, &mut now, 3, [40, 10], [0, 0], [true, true]);
    assert_eq!(active(&e), Some(sn(2)));
    assert!(e.supernodes().iter().all(|s| s.registered));
    while e.poll_event().is_some() {}
    // sn2 goes silent: within supernode_dead (3.5 s) plus a ping interval the edge is on sn1.
    let died = now;
    let mut moved = None;
    for _ in 0..60 {
        e.handle_timeout(now);
        answer(&mut e, sns, now, [40, 10], [0, 0], [true, false]);
        if moved.is_none() && active(&e) == Some(sn(1)) {
            moved = Some(now - died);
        }
        now += Duration::from_millis(100);
    }
    let moved = moved.expect("the edge moved to sn1");
    assert!(
        moved <= Duration::from_millis(4600),
        "moved after {moved:?}"
    );
    let events: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
    assert!(events.contains(&Event::RegistrationLost { supernode: sn(2) }));
    assert!(events.contains(&Event::SupernodeChanged {
        from: Some(sn(2)),
        to: sn(1)
    }));
}

#[test]
fn a_nearly_full_supernode_is_passed_over_unless_much_closer() {
    let mut now = Instant::now();
    let mut e = edge(now);
    // sn1: 12 ms and empty; sn2: 2 ms but 90 % full (costs 2 + 9 = 11 ms): sn2 still wins, barely.
    run(
        &mut e,
        &mut played(),
        &mut now,
        3,
        [12, 2],
        [0, 900],
        [true, true],
    );
    assert_eq!(active(&e), Some(sn(2)));
    // Fresh edge; sn2 full (2 + 10 = 12 ms) against sn1 at 5 ms: sn1.
    let mut now = Instant::now();
    let mut e = edge(now);
    run(
        &mut e,
        &mut played(),
        &mut now,
        3,
        [5, 2],
        [0, 1000],
        [true, true],
    );
    assert_eq!(active(&e), Some(sn(1)));
}
