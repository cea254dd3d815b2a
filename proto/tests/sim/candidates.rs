//! Several working addresses for one peer: the direct path stays where it is while its address keeps
//! working (no flapping between candidates), and still follows a peer that really moved.

use std::net::SocketAddr;

use super::net::*;
use super::{learn_macs, resumed, streams, world};
use weft_proto::edge::{Event, Path};

/// How many times `of` changed its path to `to` since `since`, and the direct addresses it used.
fn path_changes(
    sim: &Sim,
    of: EdgeId,
    to: EdgeId,
    since: std::time::Duration,
) -> (usize, Vec<SocketAddr>) {
    let key = sim.key(to);
    let mut n = 0;
    let mut addrs = Vec::new();
    for e in sim.events_since(of, since) {
        if let Event::PathChanged { peer, path } = e {
            if *peer == key {
                n += 1;
                if let Path::Direct(a) = path {
                    addrs.push(*a);
                }
            }
        }
    }
    (n, addrs)
}

/// Two internet edges, the second sending alternately from two addresses (two working links): once
/// direct, the first keeps one path for a minute of traffic and a minute of idle keepalives.
#[test]
fn two_working_addresses_do_not_make_the_path_flap() {
    let mut sim = world(41);
    let a = sim.add_edge(Location::Internet(Link::default()));
    let b = sim.add_edge(Location::Internet(Link::default()));
    let alias = sim.add_alias(b, AliasUse::Alternate);
    sim.run_until_cond(secs(10), |s| s.pair_direct(a, b))
        .expect("direct");
    learn_macs(&mut sim, &[a, b]);
    let start = sim.now() + ms(5);
    let (ab, ba) = streams(&mut sim, a, b, start, ms(20), 3000);
    sim.run_until(start + secs(62));
    let (changes, _) = path_changes(&sim, a, b, start);
    println!("two working addresses: {changes} path changes in 60 s of traffic");
    assert!(
        changes <= 1,
        "the path flapped {changes} times in a minute of traffic"
    );
    sim.assert_delivered_once(b, &ab, "a→b");
    sim.assert_delivered_once(a, &ba, "b→a");
    // Idle: only keepalives, still from both addresses in turn.
    let idle = sim.now();
    sim.run_for(secs(60));
    let (changes, _) = path_changes(&sim, a, b, idle);
    assert!(
        changes <= 1,
        "the path flapped {changes} times in an idle minute"
    );
    assert!(sim.pair_direct(a, b));
    // The alternation really happened: the second address is a path the edge could have taken.
    let Some(Path::Direct(at)) = sim.path(a, b) else {
        unreachable!("direct")
    };
    assert!(at == sim.addr(b) || at == alias, "path to {at}");
}

/// The same pair, then the second edge loses its first address (it sends only from the other one and
/// nothing reaches the first): the path follows it within about a second, without waiting for the
/// direct path's 21 s timeout.
#[test]
fn a_peer_that_loses_one_of_its_addresses_is_followed() {
    let mut sim = world(42);
    let a = sim.add_edge(Location::Internet(Link::default()));
    let b = sim.add_edge(Location::Internet(Link::default()));
    let alias = sim.add_alias(b, AliasUse::Alternate);
    sim.run_until_cond(secs(10), |s| s.pair_direct(a, b))
        .expect("direct");
    learn_macs(&mut sim, &[a, b]);
    let start = sim.now() + ms(5);
    let (ab, ba) = streams(&mut sim, a, b, start, ms(100), 1200);
    sim.run_until(start + secs(30));
    // The address the path sits on goes away; the other one stays.
    let Some(Path::Direct(gone)) = sim.path(a, b) else {
        panic!("not direct: {:?}", sim.path(a, b));
    };
    let kept = if gone == alias { sim.addr(b) } else { alias };
    let moved = sim.now();
    sim.keep_only_address(b, kept);
    let t = sim
        .run_until_cond(secs(30), |s| s.path(a, b) == Some(Path::Direct(kept)))
        .expect("followed to the remaining address");
    println!(
        "moved peer: path at the remaining address {:?} after the move",
        t - moved
    );
    sim.run_until(start + secs(119));
    for (to, flow, name) in [(b, &ab, "a→b"), (a, &ba, "b→a")] {
        let (_, at) = resumed(&sim, to, flow, moved).expect("delivery resumed for good");
        println!(
            "moved peer: {name} delivering again {:?} after the move",
            at - moved
        );
        assert!(at - moved < secs(2), "{name}: gap of {:?}", at - moved);
    }
    let (changes, _) = path_changes(&sim, a, b, moved + secs(5));
    assert_eq!(
        changes, 0,
        "the path changed again after following the move"
    );
}

/// The adversarial side: the second edge's other address lies in a network the first one must not use
/// (its own tunnel's, as the daemon reports in `avoid_nets`). The first edge never takes it as a path,
/// whether the peer sends from it in turn or only from it; traffic goes direct to the usable address
/// while there is one, then through the relay, and always arrives.
#[test]
fn an_address_in_an_avoided_network_is_never_a_path() {
    let mut sim = world(43);
    let b_alias_ip = std::net::Ipv4Addr::new(198, 51, 100, 102);
    let a = sim.add_edge_with(Location::Internet(Link::default()), |c| {
        c.avoid_nets = vec![weft_proto::wire::Ipv4Net {
            addr: b_alias_ip,
            prefix: 30,
        }];
    });
    let b = sim.add_edge(Location::Internet(Link::default()));
    let alias = sim.add_alias(b, AliasUse::Alternate);
    assert_eq!(alias.ip(), b_alias_ip);
    sim.run_until_cond(secs(10), |s| s.pair_direct(a, b))
        .expect("direct");
    learn_macs(&mut sim, &[a, b]);
    let start = sim.now() + ms(5);
    let (ab, ba) = streams(&mut sim, a, b, start, ms(100), 1200);
    let on_alias = |s: &Sim| s.path(a, b) == Some(Path::Direct(alias));
    let mut seen_alias = false;
    while sim.now() < start + secs(30) {
        sim.run_for(ms(100));
        seen_alias |= on_alias(&sim);
    }
    assert_eq!(sim.path(a, b), Some(Path::Direct(sim.addr(b))));
    // Only the avoided address is left.
    sim.keep_only_address(b, alias);
    let cut = sim.now();
    while sim.now() < start + secs(119) {
        sim.run_for(ms(100));
        seen_alias |= on_alias(&sim);
    }
    assert!(
        !seen_alias,
        "edge{a} took a path in a network it must avoid"
    );
    assert!(matches!(sim.path(a, b), Some(Path::Relayed(_))));
    let window = |ids: &[u64]| -> Vec<u64> {
        ids.iter()
            .copied()
            .filter(|&i| (cut + secs(25)..start + secs(118)).contains(&sim.sent[i as usize].at))
            .collect()
    };
    sim.assert_delivered_once(b, &window(&ab), "a→b after the cut");
    sim.assert_delivered_once(a, &window(&ba), "b→a after the cut");
}
