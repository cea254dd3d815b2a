//! The switch's forwarding table: which peer a MAC address was last seen behind, with ageing and a size cap.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::keys::PublicKey;
use crate::wire::MacAddr;

/// Learned MAC addresses.
#[derive(Default)]
pub struct MacTable {
    entries: HashMap<MacAddr, (PublicKey, Instant)>,
}

impl MacTable {
    /// Records that `mac` was seen behind `peer`. Group addresses are never learned. When the table is
    /// full, a new address is not learned (its frames are flooded instead), which is the safe failure.
    pub fn learn(&mut self, mac: MacAddr, peer: PublicKey, now: Instant, cap: usize) {
        if mac.is_group() {
            return;
        }
        if self.entries.len() >= cap && !self.entries.contains_key(&mac) {
            return;
        }
        self.entries.insert(mac, (peer, now));
    }

    /// The peer behind `mac`, if learned and not older than `ageing`.
    pub fn lookup(&self, mac: &MacAddr, now: Instant, ageing: Duration) -> Option<PublicKey> {
        self.entries
            .get(mac)
            .filter(|(_, seen)| now.saturating_duration_since(*seen) < ageing)
            .map(|(p, _)| *p)
    }

    /// Forgets aged entries.
    pub fn expire(&mut self, now: Instant, ageing: Duration) {
        self.entries
            .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < ageing);
    }

    /// Forgets everything learned behind `peer`.
    pub fn forget_peer(&mut self, peer: &PublicKey) {
        self.entries.retain(|_, (p, _)| p != peer);
    }

    /// MACs learned behind `peer`.
    pub fn macs_of(&self, peer: &PublicKey) -> Vec<MacAddr> {
        let mut v: Vec<MacAddr> = self
            .entries
            .iter()
            .filter(|(_, (p, _))| p == peer)
            .map(|(m, _)| *m)
            .collect();
        v.sort();
        v
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_ages_caps_and_ignores_groups() {
        let now = Instant::now();
        let mut t = MacTable::default();
        let p = PublicKey([1; 32]);
        let m1 = MacAddr([2, 0, 0, 0, 0, 1]);
        t.learn(m1, p, now, 2);
        t.learn(MacAddr::BROADCAST, p, now, 2);
        t.learn(MacAddr([0x33, 0x33, 0, 0, 0, 1]), p, now, 2);
        assert_eq!(t.len(), 1);
        t.learn(MacAddr([2, 0, 0, 0, 0, 2]), p, now, 2);
        t.learn(MacAddr([2, 0, 0, 0, 0, 3]), p, now, 2);
        assert_eq!(t.len(), 2, "capped");
        let age = Duration::from_secs(300);
        assert_eq!(t.lookup(&m1, now + Duration::from_secs(299), age), Some(p));
        assert_eq!(t.lookup(&m1, now + Duration::from_secs(300), age), None);
        t.expire(now + Duration::from_secs(301), age);
        assert!(t.is_empty());
    }
}
