//! Virtual IPv4 addresses the supernode hands out: one subnet per community inside the configured range,
//! one address per edge identity inside its community's subnet.
//!
//! A community can have a pool of its own (`pool=` in the community file): its subnet is then exactly that
//! network, and no other community gets a subnet of the default range that overlaps it.
//!
//! Choices are deterministic (a community's subnet and an edge's host number start from a hash of its id
//! and probe upwards), and every lease is kept in a table the daemon persists, so an edge gets the same
//! address after a restart of either side.
//!
//! Leases expire: one whose edge has not registered for the lease time (`[supernode] lease_time`, a day by
//! default) is freed, and a community's subnet of the default range with it once its last lease is gone.
//! Otherwise registrations of made-up keys would hold a community's addresses for good. Time here is the
//! wall clock in Unix seconds, passed in, because the last-seen times are persisted and must mean the same
//! after a restart. The last-seen time is renewed in steps of a [`Leases::granularity`] (an eighth of the
//! lease time, at most an hour), so that refreshes every 20 s do not rewrite the lease file every time;
//! expiry waits that step longer, so a lease is never freed less than the lease time after its edge's
//! last registration.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::keys::{CommunityId, PublicKey};
use crate::wire::Ipv4Net;

/// One persisted lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The community.
    pub community: CommunityId,
    /// The edge.
    pub edge: PublicKey,
    /// Its address.
    pub ip: Ipv4Net,
    /// When its edge last registered, Unix seconds; None in lease files of earlier versions (the lease is
    /// then taken as seen when it is restored).
    pub last_seen: Option<u64>,
}

impl Lease {
    /// One line of the lease file: `community-id-hex public-key-hex address/prefix last-seen`.
    pub fn to_line(&self) -> String {
        match self.last_seen {
            Some(t) => format!("{} {} {} {t}", self.community, self.edge, self.ip),
            None => format!("{} {} {}", self.community, self.edge, self.ip),
        }
    }

    /// Parses one line of the lease file, with or without the last-seen time (earlier versions wrote
    /// none).
    pub fn from_line(line: &str) -> Result<Lease, &'static str> {
        let mut it = line.split_whitespace();
        let (Some(c), Some(k), Some(ip), seen, None) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return Err("expected: community-id public-key address/prefix [last-seen]");
        };
        Ok(Lease {
            community: c.parse()?,
            edge: k.parse()?,
            ip: ip.parse()?,
            last_seen: seen
                .map(|t| {
                    t.parse()
                        .map_err(|_| "last-seen is not a number of seconds")
                })
                .transpose()?,
        })
    }
}

/// What the table keeps of one lease.
#[derive(Debug, Clone, Copy)]
struct Held {
    addr: Ipv4Addr,
    /// Unix seconds, renewed in steps of the granularity.
    last_seen: u64,
}

/// The address pool and its leases.
pub struct Leases {
    min: u32,
    max: u32,
    prefix: u8,
    subnets: HashMap<CommunityId, u32>,
    subnets_used: HashSet<u32>,
    by_edge: HashMap<(CommunityId, PublicKey), Held>,
    hosts_used: HashMap<CommunityId, HashSet<u32>>,
    /// Communities with a pool of their own: (network, prefix).
    pools: HashMap<CommunityId, (u32, u8)>,
    changed: bool,
    /// How long a lease outlives its edge's last registration, in seconds.
    lease_time: u64,
    /// When (Unix seconds) the table is next swept for expired leases, and when it last was.
    next_sweep: u64,
    swept_at: Option<u64>,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// Whether the networks `a/pa` and `b/pb` overlap.
fn overlaps(a: u32, pa: u8, b: u32, pb: u8) -> bool {
    let m = mask(pa.min(pb));
    a & m == b & m
}

fn hash32(b: &[u8]) -> u32 {
    // The inputs are already uniformly distributed (hash outputs and public keys): their first bytes do.
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Leases {
    /// A pool of `/prefix` subnets between `min` and `max` (inclusive), whose leases expire `lease_time`
    /// after their edge's last registration (at least a minute).
    pub fn new(min: Ipv4Addr, max: Ipv4Addr, prefix: u8, lease_time: Duration) -> Leases {
        let prefix = prefix.clamp(8, 30);
        let mask = u32::MAX << (32 - prefix);
        Leases {
            min: u32::from(min) & mask,
            max: (u32::from(max) & mask).max(u32::from(min) & mask),
            prefix,
            subnets: HashMap::new(),
            subnets_used: HashSet::new(),
            by_edge: HashMap::new(),
            hosts_used: HashMap::new(),
            pools: HashMap::new(),
            changed: false,
            lease_time: lease_time.as_secs().max(60),
            next_sweep: 0,
            swept_at: None,
        }
    }

    /// The step in which last-seen times are renewed (and persisted): an eighth of the lease time, at most
    /// an hour.
    pub fn granularity(&self) -> u64 {
        (self.lease_time / 8).min(3600)
    }

    /// Whether a lease last seen at `seen` has expired at `now`.
    fn expired(&self, seen: u64, now: u64) -> bool {
        now >= seen
            .saturating_add(self.lease_time)
            .saturating_add(self.granularity())
    }

    /// Frees every expired lease, and the default-range subnet of a community left without leases.
    fn sweep(&mut self, now: u64) {
        self.next_sweep = now.saturating_add(self.granularity().max(1));
        self.swept_at = Some(now);
        let gone: Vec<((CommunityId, PublicKey), Ipv4Addr)> = self
            .by_edge
            .iter()
            .filter(|(_, h)| self.expired(h.last_seen, now))
            .map(|(k, h)| (*k, h.addr))
            .collect();
        for ((community, edge), addr) in gone {
            self.by_edge.remove(&(community, edge));
            self.changed = true;
            let empty = self.hosts_used.get_mut(&community).is_some_and(|hosts| {
                hosts.remove(&u32::from(addr));
                hosts.is_empty()
            });
            if empty {
                self.hosts_used.remove(&community);
                if let Some(net) = self.subnets.remove(&community) {
                    self.subnets_used.remove(&net);
                }
            }
        }
    }

    fn subnet_size(&self) -> u32 {
        1 << (32 - self.prefix)
    }

    /// The prefix length of `c`'s subnet.
    fn prefix_of(&self, c: &CommunityId) -> u8 {
        self.pools.get(c).map_or(self.prefix, |&(_, p)| p)
    }

    /// Whether the default-range subnet `net` overlaps a community's own pool.
    fn overlaps_a_pool(&self, net: u32) -> bool {
        self.pools
            .values()
            .any(|&(p, pl)| overlaps(net, self.prefix, p, pl))
    }

    /// Sets the communities' own pools (the community file was (re)loaded). Leases that no longer fit
    /// (outside a community's new pool, or in the default range where a pool now lies) are dropped: those
    /// edges get a new address at their next registration.
    pub fn set_pools(&mut self, pools: HashMap<CommunityId, Ipv4Net>) {
        let pools: HashMap<CommunityId, (u32, u8)> = pools
            .into_iter()
            .map(|(c, n)| {
                (
                    c,
                    (u32::from(n.addr) & mask(n.prefix), n.prefix.clamp(8, 30)),
                )
            })
            .collect();
        if pools == self.pools {
            return;
        }
        let all = self.all();
        let before = all.len();
        self.subnets.clear();
        self.subnets_used.clear();
        self.by_edge.clear();
        self.hosts_used.clear();
        self.pools = pools;
        self.insert(all, 0);
        if self.by_edge.len() != before {
            self.changed = true;
        }
    }

    /// Restores persisted leases at `now` (Unix seconds), ignoring those outside the pool and those
    /// expired; a lease without a last-seen time (a file of an earlier version) counts as seen now.
    pub fn restore(&mut self, leases: impl IntoIterator<Item = Lease>, now: u64) {
        let live: Vec<Lease> = leases
            .into_iter()
            .filter(|l| !self.expired(l.last_seen.unwrap_or(now), now))
            .collect();
        self.insert(live, now);
    }

    /// Takes leases into the table (`now` stands in for a missing last-seen time).
    fn insert(&mut self, leases: Vec<Lease>, now: u64) {
        for l in leases {
            let held = Held {
                addr: l.ip.addr,
                last_seen: l.last_seen.unwrap_or(now),
            };
            let ip = u32::from(l.ip.addr);
            if let Some(&(pnet, pprefix)) = self.pools.get(&l.community) {
                let host = ip & !mask(pprefix);
                if l.ip.prefix != pprefix
                    || ip & mask(pprefix) != pnet
                    || host == 0
                    || host == !mask(pprefix)
                {
                    continue;
                }
                let hosts = self.hosts_used.entry(l.community).or_default();
                if hosts.insert(ip) {
                    self.by_edge.insert((l.community, l.edge), held);
                }
                continue;
            }
            let net = ip & (u32::MAX << (32 - self.prefix));
            if l.ip.prefix != self.prefix
                || net < self.min
                || net > self.max
                || self.overlaps_a_pool(net)
            {
                continue;
            }
            if let Some(&existing) = self.subnets.get(&l.community) {
                if existing != net {
                    continue;
                }
            } else if self.subnets_used.contains(&net) {
                continue;
            }
            let hosts = self.hosts_used.entry(l.community).or_default();
            if hosts.contains(&ip) {
                continue;
            }
            hosts.insert(ip);
            self.subnets.insert(l.community, net);
            self.subnets_used.insert(net);
            self.by_edge.insert((l.community, l.edge), held);
        }
    }

    fn subnet_for(&mut self, c: CommunityId) -> Option<u32> {
        if let Some(&n) = self.subnets.get(&c) {
            return Some(n);
        }
        let size = self.subnet_size();
        let slots = (self.max - self.min) / size + 1;
        let start = hash32(&c.0) % slots;
        for i in 0..slots {
            let net = self.min + ((start + i) % slots) * size;
            if !self.subnets_used.contains(&net) && !self.overlaps_a_pool(net) {
                self.subnets_used.insert(net);
                self.subnets.insert(c, net);
                return Some(net);
            }
        }
        None
    }

    /// The address of `edge` in `community` at `now` (Unix seconds), leasing one if it has none and
    /// renewing its lease. None when the pool is exhausted even after expired leases were freed.
    pub fn lease(&mut self, community: CommunityId, edge: PublicKey, now: u64) -> Option<Ipv4Net> {
        let prefix = self.prefix_of(&community);
        let step = self.granularity();
        if let Some(held) = self.by_edge.get_mut(&(community, edge)) {
            if now >= held.last_seen.saturating_add(step) {
                held.last_seen = now;
                self.changed = true;
            }
            return Some(Ipv4Net {
                addr: held.addr,
                prefix,
            });
        }
        if now >= self.next_sweep {
            self.sweep(now);
        }
        if let Some(ip) = self.allocate(community, edge, prefix, now) {
            return Some(ip);
        }
        // Full: free what expired since the last sweep and try again; at most once a second, since a full
        // pool is what a flood of registrations hammers.
        if self.swept_at != Some(now) {
            self.sweep(now);
            return self.allocate(community, edge, prefix, now);
        }
        None
    }

    fn allocate(
        &mut self,
        community: CommunityId,
        edge: PublicKey,
        prefix: u8,
        now: u64,
    ) -> Option<Ipv4Net> {
        let net = match self.pools.get(&community) {
            Some(&(net, _)) => net,
            None => self.subnet_for(community)?,
        };
        let hosts = (1u32 << (32 - prefix)) - 2; // no network or broadcast address
        let start = hash32(&edge.0) % hosts;
        let used = self.hosts_used.entry(community).or_default();
        for i in 0..hosts {
            let ip = net + 1 + (start + i) % hosts;
            if !used.contains(&ip) {
                used.insert(ip);
                let addr = Ipv4Addr::from(ip);
                self.by_edge.insert(
                    (community, edge),
                    Held {
                        addr,
                        last_seen: now,
                    },
                );
                self.changed = true;
                return Some(Ipv4Net { addr, prefix });
            }
        }
        None
    }

    /// Every lease, in a stable order.
    pub fn all(&self) -> Vec<Lease> {
        let mut v: Vec<Lease> = self
            .by_edge
            .iter()
            .map(|(&(community, edge), held)| Lease {
                community,
                edge,
                ip: Ipv4Net {
                    addr: held.addr,
                    prefix: self.prefix_of(&community),
                },
                last_seen: Some(held.last_seen),
            })
            .collect();
        v.sort_by_key(|l| (l.community, l.ip.addr));
        v
    }

    /// Whether leases changed since the last call (the daemon then persists them).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);
    /// A moment, in Unix seconds.
    const T0: u64 = 1_800_000_000;

    fn pool() -> Leases {
        Leases::new(
            "10.128.0.0".parse().unwrap(),
            "10.128.3.0".parse().unwrap(),
            24,
            DAY,
        )
    }

    #[test]
    fn same_edge_same_address_and_distinct_edges_distinct() {
        let mut l = pool();
        let c = CommunityId([1; 8]);
        let a = l.lease(c, PublicKey([1; 32]), T0).unwrap();
        let b = l.lease(c, PublicKey([2; 32]), T0).unwrap();
        assert_ne!(a, b);
        assert_eq!(l.lease(c, PublicKey([1; 32]), T0).unwrap(), a);
        assert_eq!(a.prefix, 24);
        assert!(l.take_changed());
        assert!(!l.take_changed());
        // A restart: the persisted table gives the same answers.
        let mut again = pool();
        again.restore(l.all(), T0);
        assert_eq!(again.lease(c, PublicKey([1; 32]), T0).unwrap(), a);
        assert_eq!(again.lease(c, PublicKey([2; 32]), T0).unwrap(), b);
        assert!(!again.take_changed());
    }

    #[test]
    fn communities_get_distinct_subnets_until_exhausted() {
        let mut l = pool();
        let mut nets = HashSet::new();
        for i in 0..4u8 {
            let ip = l
                .lease(CommunityId([i; 8]), PublicKey([9; 32]), T0)
                .unwrap();
            nets.insert(u32::from(ip.addr) >> 8);
        }
        assert_eq!(nets.len(), 4);
        assert!(l
            .lease(CommunityId([9; 8]), PublicKey([9; 32]), T0)
            .is_none());
    }

    #[test]
    fn subnet_fills_up_without_network_or_broadcast() {
        let mut l = Leases::new(
            "10.0.0.0".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            29,
            DAY,
        );
        let c = CommunityId([1; 8]);
        let mut got = Vec::new();
        for i in 0..6u8 {
            got.push(l.lease(c, PublicKey([i; 32]), T0).unwrap().addr.octets()[3]);
        }
        got.sort();
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6]);
        assert!(l.lease(c, PublicKey([7; 32]), T0).is_none());
    }

    #[test]
    fn own_pools_are_used_kept_apart_and_changed() {
        let mut l = pool();
        let own = CommunityId([1; 8]);
        let other = CommunityId([2; 8]);
        let mut pools = HashMap::new();
        // Overlaps the default range's first subnet: nobody else may get 10.128.0.0/24.
        pools.insert(own, "10.128.0.0/25".parse().unwrap());
        l.set_pools(pools);
        let a = l.lease(own, PublicKey([1; 32]), T0).unwrap();
        assert_eq!(a.prefix, 25);
        assert_eq!(
            u32::from(a.addr) >> 7,
            u32::from(Ipv4Addr::new(10, 128, 0, 0)) >> 7
        );
        for i in 0..3u8 {
            let o = l
                .lease(CommunityId([10 + i; 8]), PublicKey([9; 32]), T0)
                .unwrap();
            assert_ne!(o.addr.octets()[2], 0, "a default subnet overlaps the pool");
        }
        // Persisted and restored with the pool known first: the same address.
        let mut again = pool();
        let mut pools = HashMap::new();
        pools.insert(own, "10.128.0.0/25".parse().unwrap());
        again.set_pools(pools);
        again.restore(l.all(), T0);
        assert_eq!(again.lease(own, PublicKey([1; 32]), T0).unwrap(), a);
        // The pool moves: the old lease is dropped, the next one comes from the new pool.
        let mut pools = HashMap::new();
        pools.insert(own, "192.168.50.0/24".parse().unwrap());
        again.take_changed();
        again.set_pools(pools);
        assert!(again.take_changed());
        let b = again.lease(own, PublicKey([1; 32]), T0).unwrap();
        assert_eq!(&b.addr.octets()[..3], &[192, 168, 50]);
        assert_eq!(b.prefix, 24);
        let _ = other;
    }

    #[test]
    fn lease_lines_roundtrip() {
        let l = Lease {
            community: CommunityId([1; 8]),
            edge: PublicKey([2; 32]),
            ip: "10.128.0.9/24".parse().unwrap(),
            last_seen: Some(T0),
        };
        assert_eq!(Lease::from_line(&l.to_line()).unwrap(), l);
        assert!(l.to_line().ends_with(" 1800000000"));
        assert!(Lease::from_line("junk").is_err());
        // Earlier versions wrote no last-seen time.
        let old = format!("{} {} 10.128.0.9/24", l.community, l.edge);
        assert_eq!(
            Lease::from_line(&old).unwrap(),
            Lease {
                last_seen: None,
                ..l.clone()
            }
        );
        assert!(Lease::from_line(&format!("{old} soon")).is_err());
        assert!(Lease::from_line(&format!("{old} 1 2")).is_err());
    }

    /// A /29: six addresses.
    fn small(lease_time: Duration) -> Leases {
        Leases::new(
            "10.0.0.0".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            29,
            lease_time,
        )
    }

    #[test]
    fn a_pool_filled_by_registrations_frees_after_the_lease_time() {
        let hour = Duration::from_secs(3600);
        let mut l = small(hour);
        let step = l.granularity();
        assert_eq!(step, 450);
        let c = CommunityId([1; 8]);
        // Six made-up keys take every address; a real edge finds none.
        let mut taken = Vec::new();
        for i in 0..6u8 {
            taken.push(l.lease(c, PublicKey([100 + i; 32]), T0).unwrap());
        }
        let real = PublicKey([1; 32]);
        assert!(l.lease(c, real, T0).is_none());
        // One of them keeps registering (every 20 s): its lease stays.
        let mut t = T0;
        while t < T0 + 3600 + step {
            t += 20;
            assert_eq!(l.lease(c, PublicKey([100; 32]), t), Some(taken[0]));
        }
        // Never before the lease time has passed...
        assert!(l.lease(c, real, T0 + 3600 - 1).is_none());
        // ...and once it has (plus the renewal step), the silent ones are freed and reused.
        let got = l
            .lease(c, real, T0 + 3600 + step)
            .expect("an address is free again");
        assert!(taken[1..].contains(&got), "{got} {taken:?}");
        assert_eq!(l.all().len(), 2);
        // The edge that kept registering kept its address; the real one keeps its new one.
        assert_eq!(l.lease(c, PublicKey([100; 32]), t), Some(taken[0]));
        assert_eq!(l.lease(c, real, t + 1), Some(got));
    }

    #[test]
    fn an_expired_community_gives_its_subnet_back() {
        let mut l = pool();
        for i in 0..4u8 {
            l.lease(CommunityId([i; 8]), PublicKey([9; 32]), T0)
                .unwrap();
        }
        let late = CommunityId([9; 8]);
        assert!(l.lease(late, PublicKey([9; 32]), T0 + 60).is_none());
        // Communities 1..3 keep registering, community 0 goes silent.
        let later = T0 + DAY.as_secs() + l.granularity();
        for i in 1..4u8 {
            l.lease(CommunityId([i; 8]), PublicKey([9; 32]), later - 60)
                .unwrap();
        }
        let ip = l
            .lease(late, PublicKey([9; 32]), later)
            .expect("a freed subnet");
        assert_eq!(ip.prefix, 24);
        assert_eq!(l.all().len(), 4);
    }

    #[test]
    fn last_seen_is_persisted_in_steps_and_counts_across_a_restart() {
        let mut l = pool();
        let c = CommunityId([1; 8]);
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let ip_a = l.lease(c, a, T0).unwrap();
        l.lease(c, b, T0).unwrap();
        assert!(l.take_changed());
        // A refresh within the step changes nothing on disk; one after it does.
        let step = l.granularity();
        assert_eq!(step, 3600);
        l.lease(c, a, T0 + step - 1).unwrap();
        assert!(!l.take_changed());
        l.lease(c, a, T0 + step).unwrap();
        assert!(l.take_changed());
        let saved = l.all();
        assert_eq!(
            saved.iter().find(|x| x.edge == a).unwrap().last_seen,
            Some(T0 + step)
        );
        // Restarted a day later: B (last seen at T0) has expired, A has not yet.
        let mut again = pool();
        let at = T0 + DAY.as_secs() + step;
        again.restore(saved.clone(), at);
        let kept = again.all();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].edge, a);
        assert_eq!(again.lease(c, a, at).unwrap(), ip_a);
        // A file of an earlier version has no times: its leases count as seen at the restart.
        let mut old = pool();
        let untimed: Vec<Lease> = saved
            .into_iter()
            .map(|l| Lease {
                last_seen: None,
                ..l
            })
            .collect();
        old.restore(untimed, at);
        assert_eq!(old.all().len(), 2);
        assert!(old.all().iter().all(|l| l.last_seen == Some(at)));
        assert_eq!(old.lease(c, a, at).unwrap(), ip_a);
    }
}
