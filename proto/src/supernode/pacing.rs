//! Pacing of what costs the supernode in proportion to a community's size: a new edge is introduced to
//! every other edge of its community (and they to it), and a full peer list costs one PEER_INFO per edge.
//! Without a pace, a flood of registrations from made-up identities (anyone can make key pairs, and an
//! open community admits them) made the supernode send N introductions for each.
//!
//! New edges join a community at most [`JOIN_RATE`] a second (bursts of [`JOIN_BURST`]); one over the pace
//! is refused with NAK *busy* and registers again after its back-off, so a legitimate crowd (every edge
//! after a supernode restart) gets in within seconds, just not all in the same one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::bucket::TokenBucket;
use crate::keys::CommunityId;

/// New edges a second a community takes, and the burst it takes at once.
pub const JOIN_RATE: f64 = 100.0;
/// See [`JOIN_RATE`].
pub const JOIN_BURST: f64 = 200.0;
/// An edge gets the full peer list (REGISTER flag bit 1) at most this often.
pub const FULL_LIST_INTERVAL: Duration = Duration::from_secs(1);

/// One token bucket per community with edges joining; bounded by the number of communities served.
#[derive(Default)]
pub(super) struct JoinPacer {
    buckets: HashMap<CommunityId, TokenBucket>,
}

impl JoinPacer {
    /// Whether one more edge may join `community` now (and counts it).
    pub fn allow(&mut self, community: CommunityId, now: Instant) -> bool {
        self.buckets
            .entry(community)
            .or_insert(TokenBucket::full(JOIN_BURST, now))
            .take(now, JOIN_RATE, JOIN_BURST)
    }

    /// Forgets the buckets of communities that are gone or full again (called with the sweep).
    pub fn retain(&mut self, mut keep: impl FnMut(&CommunityId) -> bool, now: Instant) {
        self.buckets.retain(|c, b| {
            keep(c)
                && now.saturating_duration_since(b.last_used()).as_secs_f64() * JOIN_RATE
                    < JOIN_BURST
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut p = JoinPacer::default();
        let (c, t0) = (CommunityId([1; 8]), Instant::now());
        let first = (0..1000).filter(|_| p.allow(c, t0)).count();
        assert_eq!(first, JOIN_BURST as usize);
        // Another community has its own bucket.
        assert!(p.allow(CommunityId([2; 8]), t0));
        // A second later, one second's worth.
        let t1 = t0 + Duration::from_secs(1);
        let next = (0..1000).filter(|_| p.allow(c, t1)).count();
        assert_eq!(next, JOIN_RATE as usize);
        // Full buckets are forgotten by the sweep; busy ones are kept.
        p.retain(|_| true, t1 + Duration::from_secs(10));
        assert!(p.buckets.is_empty());
    }
}
