//! The community policy: key-restricted communities, revocation on reload, admission by name pattern and
//! per-community address pools.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::net::*;
use crate::{first_rx, streams};
use weft_proto::edge::{AddressMode, Event};
use weft_proto::keys::{CommunityKeys, PublicKey, StaticKeypair};
use weft_proto::supernode::{
    AdmissionPolicy, CommunityPolicy, PatternPolicy, SupernodeConfig, SupernodeEvent,
};
use weft_proto::wire::NakReason;

fn identity(n: u8) -> StaticKeypair {
    StaticKeypair::from_private([n; 32])
}

/// A closed policy listing [`COMMUNITY`] with these allowed keys (None: any key).
fn policy_with(keys: Option<&[PublicKey]>) -> AdmissionPolicy {
    let mut p = AdmissionPolicy::default();
    let ck = CommunityKeys::from_key_material(COMMUNITY, SECRET);
    p.listed.insert(
        ck.id,
        CommunityPolicy {
            admission: Some(ck.admission),
            allowed_keys: keys.map(|k| k.iter().copied().collect::<HashSet<_>>()),
            ..CommunityPolicy::named(COMMUNITY)
        },
    );
    p
}

/// Three edges with fixed identities behind cone NATs, under `policy`.
fn three(seed: u64, policy: AdmissionPolicy) -> (Sim, [EdgeId; 3]) {
    let mut sim = Sim::new(seed);
    sim.add_supernode(SupernodeConfig {
        policy,
        ..SupernodeConfig::default()
    });
    let mut ids = [0; 3];
    for (i, id) in ids.iter_mut().enumerate() {
        let nat = sim.add_nat(NatKind::Cone, Link::default());
        *id = sim.add_edge_with(Location::Behind(nat), |c| {
            c.identity = identity(i as u8 + 1)
        });
    }
    (sim, ids)
}

fn keys3() -> Vec<PublicKey> {
    (1..=3).map(|n| identity(n).public).collect()
}

/// The first frame of a stream started at time zero, between every ordered pair: how long the
/// "introduced peers only" rule costs (a handshake initiation that overtakes the peer info is held, not
/// dropped).
/// Returns the slowest direction's first frame and how many directions got none within 10 s.
fn first_frame_times(restricted: bool, loss: f64, seed: u64) -> (Duration, usize) {
    let keys = keys3();
    let (mut sim, [a, b, c]) = three(seed, policy_with(restricted.then_some(&keys[..])));
    for e in [a, b, c] {
        sim.set_edge_link(
            e,
            Link {
                loss,
                ..Link::default()
            },
        );
    }
    let mut all = Vec::new();
    for (x, y) in [(a, b), (a, c), (b, c)] {
        let (xy, yx) = streams(&mut sim, x, y, ms(0), ms(10), 1000);
        all.push((y, xy));
        all.push((x, yx));
    }
    sim.run_for(secs(10));
    let times: Vec<Option<Duration>> = all
        .iter()
        .map(|(to, ids)| first_rx(&sim, *to, ids))
        .collect();
    let missing = times.iter().filter(|t| t.is_none()).count();
    (
        times.into_iter().flatten().max().unwrap_or(Duration::MAX),
        missing,
    )
}

#[test]
fn introduced_only_costs_nothing_on_first_frames() {
    let (open, _) = first_frame_times(false, 0.0, 31);
    let (restricted, _) = first_frame_times(true, 0.0, 31);
    println!(
        "first frame on every pair (slowest pair): {open:?} with any key, {restricted:?} key-restricted"
    );
    assert!(
        restricted <= open + ms(50),
        "restricted {restricted:?} vs open {open:?}"
    );
    // With loss, an initiation sometimes overtakes a lost peer info: it is held, and the edge asks the
    // supernode for its peers again at once. Twenty worlds each way: the median and worst slowest pair.
    // Worlds where a pair never met (both peer infos lost: nothing resends them, with or without keys)
    // are counted apart.
    let stats = |restricted: bool| {
        let mut v = Vec::new();
        let mut unmet = 0;
        for s in 0..20 {
            match first_frame_times(restricted, 0.1, 100 + s) {
                (t, 0) => v.push(t),
                _ => unmet += 1,
            }
        }
        v.sort();
        (v[v.len() / 2], v[v.len() - 1], unmet)
    };
    let (open_med, open_max, open_unmet) = stats(false);
    let (res_med, res_max, res_unmet) = stats(true);
    println!(
        "with 10% loss on every edge link, slowest direction over 20 worlds: median {open_med:?}, \
         worst {open_max:?} ({open_unmet} worlds with a pair that never met) with any key; median \
         {res_med:?}, worst {res_max:?} ({res_unmet} such worlds) key-restricted"
    );
    assert!(res_unmet <= open_unmet + 1);
}

/// B's key is removed and the supernode reloads: A and C drop B within seconds, nothing from B reaches
/// them any more, B is refused with KeyNotAllowed (now and at every retry), and A↔C go on unharmed.
/// Re-adding the key lets B back in at its next attempt.
#[test]
fn revoked_key_is_cut_off_within_seconds() {
    let keys = keys3();
    let (mut sim, [a, b, c]) = three(32, policy_with(Some(&keys)));
    sim.run_until_cond(secs(10), |s| s.all_up(&[a, b, c]))
        .expect("all up");
    // Streams each way on every pair, every 20 ms, for two minutes from now.
    let start = sim.now();
    let mut from_b = Vec::new();
    let mut to_b = Vec::new();
    let mut ac = Vec::new();
    for (x, y) in [(b, a), (b, c)] {
        let (xy, yx) = streams(&mut sim, x, y, start, ms(20), 6000);
        from_b.push((y, xy));
        to_b.extend(yx);
    }
    let (x, y) = streams(&mut sim, a, c, start, ms(20), 6000);
    ac.push((c, x));
    ac.push((a, y));
    sim.run_for(secs(5));
    for (to, ids) in &from_b {
        assert!(
            first_rx(&sim, *to, ids).is_some(),
            "B reaches edge{to} before"
        );
    }

    let revoked_at = sim.now();
    sim.set_policy(policy_with(Some(&[keys[0], keys[2]])));
    assert!(sim.sn_events.iter().any(|(t, e)| *t == revoked_at
        && matches!(e, SupernodeEvent::EdgeRevoked { edge, reason: NakReason::KeyNotAllowed, .. } if *edge == keys[1])));
    let gone = sim
        .run_until_cond_every(ms(1), secs(10), |s| {
            s.peer(a, b).is_none() && s.peer(c, b).is_none()
        })
        .expect("A and C forget B within 10 s");
    println!(
        "revocation: A and C dropped B {:?} after the reload",
        gone - revoked_at
    );
    assert!(gone - revoked_at < secs(1));
    assert!(sim
        .events_since(a, revoked_at)
        .any(|e| matches!(e, Event::PeerRevoked { peer } if *peer == keys[1])));
    assert!(sim.events_since(b, revoked_at).any(|e| matches!(
        e,
        Event::RegistrationRefused {
            reason: NakReason::KeyNotAllowed,
            ..
        }
    )));
    // B stopped its data plane: no peers, nothing registered.
    assert!(sim.edge(b).peers().is_empty());
    assert!(!sim.edge(b).is_registered());
    let st = sim.edge(b).supernodes();
    assert_eq!(st[0].refusal, Some(NakReason::KeyNotAllowed));

    sim.run_for(secs(60));
    let cut = revoked_at + secs(1);
    for (to, ids) in &from_b {
        for &id in ids {
            if let Some(t) = sim.rx_time(*to, id) {
                assert!(t < cut, "frame {id} from B reached edge{to} at {t:?}");
            }
        }
    }
    for &id in &to_b {
        if let Some(t) = sim.rx_time(b, id) {
            assert!(t < cut, "frame {id} reached B at {t:?}");
        }
    }
    // A↔C unharmed: every frame sent after the reload arrived.
    for (to, ids) in &ac {
        let late: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&i| {
                sim.sent[i as usize].at > revoked_at && sim.sent[i as usize].at < sim.now()
            })
            .collect();
        sim.assert_delivered_once(*to, &late, "A↔C after the revocation");
    }
    assert!(sim.pair_up(a, c));
    // B kept trying, slowly, and was refused every time.
    let refusals = sim
        .sn_events
        .iter()
        .filter(|(t, e)| {
            *t > revoked_at
                && matches!(e, SupernodeEvent::RegistrationRefused { edge, reason: NakReason::KeyNotAllowed, .. } if *edge == keys[1])
        })
        .count();
    assert!(
        (2..=6).contains(&refusals),
        "{refusals} refused attempts in a minute"
    );
    assert!(sim.peer(a, b).is_none() && sim.peer(c, b).is_none());

    // The key is added again: B is back within one retry interval.
    let readded = sim.now();
    sim.set_policy(policy_with(Some(&keys)));
    let back = sim
        .run_until_cond(secs(30), |s| s.pair_up(a, b) && s.pair_up(c, b))
        .expect("B back after its key is re-added");
    // B retries every 20 s while refused; how long it waits depends on where in that cycle the key
    // comes back.
    assert!(back - readded <= secs(21));
    println!(
        "re-added: B up with A and C {:?} later (at B's next retry)",
        back - readded
    );
}

/// Communities admitted by name pattern: the supernode asks for the name, the edge sends it once, both are
/// admitted and mesh; a name that matches nothing is refused.
#[test]
fn pattern_admission_asks_for_the_name() {
    let mut sim = Sim::new(33);
    let policy = AdmissionPolicy {
        open: false,
        listed: Default::default(),
        patterns: vec![PatternPolicy {
            pattern: "sim*".into(),
            allowed_keys: None,
        }],
    };
    sim.add_supernode(SupernodeConfig {
        policy,
        ..SupernodeConfig::default()
    });
    let a = sim.add_edge(Location::Internet(Link::default()));
    let b = sim.add_edge(Location::Internet(Link::default()));
    let other = sim.add_edge_with(Location::Internet(Link::default()), |c| {
        c.community = CommunityKeys::from_key_material("elsewhere", SECRET)
    });
    let up = sim
        .run_until_cond(secs(10), |s| s.pair_up(a, b))
        .expect("pattern-admitted edges mesh");
    println!("pattern admission: pair up at {up:?}");
    let asked = sim
        .sn_events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                SupernodeEvent::RegistrationRefused {
                    reason: NakReason::NameRequired,
                    ..
                }
            )
        })
        .count();
    // Each edge is asked once (the second edge may find the name already learned).
    assert!((2..=3).contains(&asked), "asked {asked} times");
    for e in [a, b] {
        assert!(
            !sim.events_since(e, secs(0))
                .any(|e| matches!(e, Event::RegistrationRefused { .. })),
            "edge{e} logged a refusal"
        );
    }
    let id = CommunityKeys::from_key_material(COMMUNITY, SECRET).id;
    assert_eq!(sim.sn().community_name(&id), Some(COMMUNITY));
    assert!(sim.events_since(other, secs(0)).any(|e| matches!(
        e,
        Event::RegistrationRefused {
            reason: NakReason::CommunityNotAllowed,
            ..
        }
    )));
    assert!(!sim.edge(other).is_registered());
    // Refreshes go on without further questions.
    sim.run_for(secs(60));
    let asked_later = sim
        .sn_events
        .iter()
        .filter(|(t, e)| {
            *t > up
                && matches!(
                    e,
                    SupernodeEvent::RegistrationRefused {
                        reason: NakReason::NameRequired,
                        ..
                    }
                )
        })
        .count();
    assert!(asked_later <= 2, "asked again {asked_later} times");
    assert!(sim.edge(a).is_registered() && sim.edge(b).is_registered());
}

/// A community with a pool of its own gets its auto addresses from it; a reloaded pool moves them.
#[test]
fn per_community_pool_assigns_and_moves() {
    let mut policy = policy_with(None);
    let id = CommunityKeys::from_key_material(COMMUNITY, SECRET).id;
    policy.listed.get_mut(&id).unwrap().pool = Some("10.99.0.0/24".parse().unwrap());
    let mut sim = Sim::new(34);
    sim.add_supernode(SupernodeConfig {
        policy: policy.clone(),
        ..SupernodeConfig::default()
    });
    let ids: Vec<EdgeId> = (0..3)
        .map(|_| {
            sim.add_edge_with(Location::Internet(Link::default()), |c| {
                c.address = AddressMode::Auto
            })
        })
        .collect();
    sim.run_until_cond(secs(10), |s| {
        ids.iter().all(|&e| s.edge(e).address().is_some())
    })
    .expect("addresses assigned");
    let in_net = |sim: &Sim, e: EdgeId, net: [u8; 3]| {
        let a = sim.edge(e).address().unwrap();
        a.prefix == 24
            && a.addr.octets()[..3] == net
            && a.addr != Ipv4Addr::from([net[0], net[1], net[2], 0])
    };
    let mut seen = HashSet::new();
    for &e in &ids {
        assert!(in_net(&sim, e, [10, 99, 0]), "{:?}", sim.edge(e).address());
        seen.insert(sim.edge(e).address().unwrap().addr);
    }
    assert_eq!(seen.len(), 3);
    policy.listed.get_mut(&id).unwrap().pool = Some("10.98.7.0/24".parse().unwrap());
    let at = sim.now();
    sim.set_policy(policy);
    let moved = sim
        .run_until_cond(secs(30), |s| ids.iter().all(|&e| in_net(s, e, [10, 98, 7])))
        .expect("addresses move to the new pool at the next refresh");
    println!(
        "pool changed: every edge readdressed {:?} after the reload",
        moved - at
    );
}

/// The community is removed from the file: every edge of it is cut off at once and stops its data plane.
/// And a refusal never ends someone else's registration: a forged REGISTER with a registered key and a
/// wrong proof is refused without touching the real edge.
#[test]
fn removed_community_is_cut_off_and_forgeries_change_nothing() {
    let (mut sim, [a, b, c]) = three(35, policy_with(None));
    sim.run_until_cond(secs(10), |s| s.all_up(&[a, b, c]))
        .expect("all up");

    // A forged registration of A's key, with a wrong admission proof, from elsewhere.
    let now = sim.instant();
    let forged = weft_proto::wire::Register {
        community: CommunityKeys::from_key_material(COMMUNITY, SECRET).id,
        public_key: sim.key(a),
        counter: u64::MAX - 1,
        mac: weft_proto::wire::MacAddr([2, 0, 0, 0, 0, 0x66]),
        wants_ip: false,
        wants_peers: true,
        static_ip: None,
        local_addrs: vec![],
        description: "forger".into(),
        name: None,
        admission_tag: [0; 16],
    };
    let mut bytes = Vec::new();
    forged.encode(&mut bytes);
    sim.sn_mut()
        .handle_udp(now, "203.0.113.200:4000".parse().unwrap(), &bytes);
    let edges = sim.sn().edges();
    assert!(
        edges
            .iter()
            .any(|e| e.key == sim.key(a) && e.description == "edge0"),
        "the real A lost its registration: {edges:?}"
    );
    sim.run_for(secs(2));
    assert!(sim.all_up(&[a, b, c]));

    let at = sim.now();
    sim.set_policy(AdmissionPolicy::default());
    sim.run_for(secs(1));
    for e in [a, b, c] {
        assert!(sim.events_since(e, at).any(|ev| matches!(
            ev,
            Event::RegistrationRefused {
                reason: NakReason::CommunityNotAllowed,
                ..
            }
        )));
        assert!(sim.edge(e).peers().is_empty(), "edge{e} kept its peers");
        assert!(!sim.edge(e).is_registered());
    }
    assert!(sim.sn().edges().is_empty());
    assert_eq!(sim.sn_stats().revoked, 3);
}
