//! The edge's own list of the peer keys it accepts (`[community] allow_peer`), beside the supernode's
//! policy: with a list, only listed keys become peers, however they arrive (introduced by a supernode,
//! or by a handshake), so a supernode that admits or introduces a key the edge's operator did not list
//! cannot make the edge talk to it. Without a list, nothing changes.
//!
//! A refusal is counted every time (`dropped_not_allowed`) and reported once per key
//! ([`Event::PeerNotAllowed`]), for at most [`MAX_REPORTED`] keys between two changes of the list, so a
//! member that keeps knocking, or makes up identities, does not flood the log.

use std::collections::BTreeSet;
use std::time::Instant;

use super::{Core, Edge, Event};
use crate::keys::PublicKey;

/// Keys reported at most between two changes of the list.
const MAX_REPORTED: usize = 1024;

/// The list and what was reported of it.
#[derive(Default)]
pub(super) struct AllowList {
    /// None: every key the community's policy lets through.
    keys: Option<BTreeSet<PublicKey>>,
    /// Keys refused and reported since the list was last set.
    reported: BTreeSet<PublicKey>,
}

impl Core {
    /// Whether our own list lets `key` be a peer.
    pub(super) fn peer_allowed(&self, key: &PublicKey) -> bool {
        self.allow.keys.as_ref().is_none_or(|k| k.contains(key))
    }

    /// Counts a refusal of `key` and reports it, once per key.
    pub(super) fn refuse_not_allowed(&mut self, key: PublicKey) {
        self.stats.dropped_not_allowed += 1;
        self.report_not_allowed(key);
    }

    /// Reports `key` as not allowed, once per key.
    fn report_not_allowed(&mut self, key: PublicKey) {
        let reported = &mut self.allow.reported;
        if reported.len() < MAX_REPORTED && reported.insert(key) {
            self.events.push_back(Event::PeerNotAllowed { peer: key });
        }
    }
}

impl Edge {
    /// Sets the edge's own list of the peer keys it accepts (`[community] allow_peer`); None accepts
    /// every key the community's policy lets through. Applied at once: peers not on the new list are
    /// forgotten (sessions, learned MACs, held and unconfirmed handshakes), each reported once, and the
    /// supernodes are asked for every peer again at once (keys refused before may be listed now). Then
    /// drain datagrams and events, and read [`Edge::poll_timeout`] again.
    pub fn set_allowed_peers(&mut self, now: Instant, keys: Option<BTreeSet<PublicKey>>) {
        self.core.allow = AllowList {
            keys,
            reported: BTreeSet::new(),
        };
        let refused: Vec<PublicKey> = self
            .peers
            .keys()
            .filter(|k| !self.core.peer_allowed(k))
            .copied()
            .collect();
        for k in refused {
            self.forget_peer(&k);
            self.core.report_not_allowed(k);
        }
        let core = &mut self.core;
        let allow = &core.allow;
        core.held_inits
            .retain(|h| allow.keys.as_ref().is_none_or(|k| k.contains(&h.key)));
        core.unconfirmed
            .retain(|key| allow.keys.as_ref().is_none_or(|k| k.contains(key)));
        for link in core.supernodes.iter_mut().filter(|l| l.registered) {
            link.want_peers = true;
            link.next_register = now;
        }
    }

    /// The edge's own list of accepted peer keys, if it has one.
    pub fn allowed_peers(&self) -> Option<&BTreeSet<PublicKey>> {
        self.core.allow.keys.as_ref()
    }
}
