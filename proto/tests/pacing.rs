//! New edges join a community at a pace: a crowd of registrations from made-up identities (anyone can make
//! key pairs, and an open community admits them) costs the supernode introductions at a bounded rate, and
//! a legitimate crowd still gets in, seconds later.

mod common;

use std::time::{Duration, Instant};

use common::Answer;
use weft_proto::supernode::{Supernode, SupernodeConfig};
use weft_proto::wire::NakReason;

#[test]
fn a_crowd_joins_at_the_pace_and_everyone_gets_in() {
    let t0 = Instant::now();
    let mut sn = Supernode::new(
        SupernodeConfig {
            // The crowd's handshakes arrive in one instant; load shedding has its own tests.
            handshake_load: u32::MAX,
            ..SupernodeConfig::default()
        },
        t0,
        Vec::new(),
    );
    let mut busy = Vec::new();
    let mut sent_for_joins = 0;
    for n in 1..=400u16 {
        let (a, sent) = common::register_counting(&mut sn, t0, "crowd", n, 1, false);
        match a {
            Answer::Ack(_) => sent_for_joins += sent,
            Answer::Nak(NakReason::Busy) => busy.push(n),
            other => panic!("edge {n}: {other:?}"),
        }
    }
    // The burst (200) joins at once; the rest are told to come back.
    assert_eq!(sn.edges().len(), 200);
    assert_eq!(busy.len(), 200);
    // Each join costs introductions to those already in: the burst cost 200 * 199 of them (both ways)
    // plus the acknowledgements, and nothing was sent for the refused ones but their NAK.
    assert_eq!(sent_for_joins, 200 + 200 * 199);
    // A second later, 100 more get in; two seconds later, all of them.
    let t1 = t0 + Duration::from_secs(1);
    let in_t1 = busy
        .iter()
        .filter(|&&n| common::register(&mut sn, t1, "crowd", n, 2, false) == Answer::Ack(None))
        .count();
    assert_eq!(in_t1, 100);
    let t2 = t0 + Duration::from_secs(2);
    for &n in &busy {
        let a = common::register(&mut sn, t2, "crowd", n, 3, false);
        assert_eq!(a, Answer::Ack(None), "edge {n}");
    }
    assert_eq!(sn.edges().len(), 400);
    // Another community was never slowed down by this one.
    let (a, _) = common::register_counting(
        &mut sn,
        t0 + Duration::from_millis(1),
        "other",
        999,
        1,
        false,
    );
    assert_eq!(a, Answer::Ack(None));
}
