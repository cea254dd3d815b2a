//! The switch: which peer a MAC address was last seen behind (learning, ageing, a size cap), forwarding a
//! frame from the TAP device to that peer, flooding it to every peer when unknown, and delivering received
//! frames to the TAP device.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::peer::Peer;
use super::{Core, Edge, Path};
use crate::keys::PublicKey;
use crate::wire::packet::{ethernet, EthernetFrame};
use crate::wire::{DataKind, MacAddr};

/// How often aged MAC entries are swept out.
pub(super) const MAC_SWEEP: Duration = Duration::from_secs(10);

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

impl Edge {
    /// A frame from the TAP device, given as `head` followed by `tail`: to the peer its destination MAC
    /// was learned behind, else (broadcast, multicast, unknown unicast) to every peer, as a switch does.
    pub(super) fn switch_frame(&mut self, now: Instant, head: &[u8], tail: &[u8]) {
        let Ok(dst) = ethernet::dst_addr_of_parts(head, tail) else {
            self.core.stats.dropped_malformed += 1;
            return;
        };
        let parts = [head, tail];
        let core = &mut self.core;
        if !dst.is_group() {
            if let Some(k) = core.macs.lookup(&dst, now, core.cfg.timers.mac_ageing) {
                if let Some(p) = self.peers.get_mut(&k) {
                    core.send_frame(p, parts, now);
                }
                return;
            }
        }
        if self.peers.is_empty() {
            core.stats.dropped_no_route += 1;
        }
        for p in self.peers.values_mut() {
            core.send_frame(p, parts, now);
        }
    }
}

impl Core {
    /// Sends an Ethernet frame to a peer, or queues it (bounded) while a session is set up.
    pub(super) fn send_frame(&mut self, p: &mut Peer, frame: [&[u8]; 2], now: Instant) {
        if p.current.is_some() && self.seal(p, DataKind::Frame, frame, None, now) {
            self.maybe_rekey_on_send(p, now);
            return;
        }
        if p.queued.len() >= self.cfg.limits.max_queued_frames {
            p.queued.pop_front();
            self.stats.dropped_no_route += 1;
        }
        p.queued.push_back(frame.concat());
        if p.pending.is_none() {
            self.initiate(p, now);
        }
    }

    /// A frame received from `p` on `path`: learn its source MAC behind `p`, count it, queue it for the
    /// TAP device.
    pub(super) fn deliver_frame(&mut self, p: &mut Peer, path: Path, frame: &[u8], now: Instant) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        self.macs
            .learn(eth.src_addr(), p.key, now, self.cfg.limits.max_macs);
        let n = frame.len() as u64;
        p.counters.rx_bytes += n;
        if path.is_direct() {
            self.stats.rx_direct_frames += 1;
            self.stats.rx_direct_bytes += n;
        } else {
            self.stats.rx_relayed_frames += 1;
            self.stats.rx_relayed_bytes += n;
        }
        self.tap_out.push((), frame);
    }

    /// Timer: aged MAC entries are swept out every [`MAC_SWEEP`].
    pub(super) fn mac_sweep_deadline(&self) -> Instant {
        self.next_mac_sweep
    }

    /// What the MAC sweep timer does.
    pub(super) fn sweep_macs(&mut self, now: Instant) {
        self.macs.expire(now, self.cfg.timers.mac_ageing);
        self.next_mac_sweep = now + MAC_SWEEP;
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
