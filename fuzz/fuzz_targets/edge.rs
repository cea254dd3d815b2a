//! The edge state machine: a real mesh that has come up, then events the fuzzer chooses, aimed mostly
//! at the edges (forged or mutated datagrams from the supernode's, a peer's or a stranger's address,
//! TAP frames, time passing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_fuzz::{Event, Mesh, Node};

fuzz_target!(|events: Vec<Event>| {
    let events = events
        .into_iter()
        .map(|ev| match ev {
            Event::Inject {
                to: Node::Supernode,
                from,
                bytes,
            } => Event::Inject {
                to: Node::Edge(false),
                from,
                bytes,
            },
            other => other,
        })
        .collect();
    Mesh::run(events);
});
