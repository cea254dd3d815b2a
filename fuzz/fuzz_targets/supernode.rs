//! The supernode state machine: a real mesh that has come up, then events the fuzzer chooses, aimed at
//! the supernode (forged registrations, relay requests, pings and federation messages from any address).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_fuzz::{Event, Mesh, Node};

fuzz_target!(|events: Vec<Event>| {
    let events = events
        .into_iter()
        .map(|ev| match ev {
            Event::Inject { from, bytes, .. } => Event::Inject {
                to: Node::Supernode,
                from,
                bytes,
            },
            Event::Replay {
                from,
                which,
                flips,
                truncate,
                ..
            } => Event::Replay {
                to: Node::Supernode,
                from,
                which,
                flips,
                truncate,
            },
            other => other,
        })
        .collect();
    Mesh::run(events);
});
