//! Virtual IPv4 addresses the supernode hands out: one subnet per community inside the configured range,
//! one address per edge identity inside its community's subnet.
//!
//! A community can have a pool of its own (`pool=` in the community file): its subnet is then exactly that
//! network, and no other community gets a subnet of the default range that overlaps it.
//!
//! Choices are deterministic (a community's subnet and an edge's host number start from a hash of its id
//! and probe upwards), and every lease is kept in a table the daemon persists, so an edge gets the same
//! address after a restart of either side.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

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
}

impl Lease {
    /// One line of the lease file: `community-id-hex public-key-hex address/prefix`.
    pub fn to_line(&self) -> String {
        format!("{} {} {}", self.community, self.edge, self.ip)
    }

    /// Parses one line of the lease file.
    pub fn from_line(line: &str) -> Result<Lease, &'static str> {
        let mut it = line.split_whitespace();
        let (Some(c), Some(k), Some(ip), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Err("expected: community-id public-key address/prefix");
        };
        Ok(Lease {
            community: c.parse()?,
            edge: k.parse()?,
            ip: ip.parse()?,
        })
    }
}

/// The address pool and its leases.
pub struct Leases {
    min: u32,
    max: u32,
    prefix: u8,
    subnets: HashMap<CommunityId, u32>,
    subnets_used: HashSet<u32>,
    by_edge: HashMap<(CommunityId, PublicKey), Ipv4Addr>,
    hosts_used: HashMap<CommunityId, HashSet<u32>>,
    /// Communities with a pool of their own: (network, prefix).
    pools: HashMap<CommunityId, (u32, u8)>,
    changed: bool,
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
    /// A pool of `/prefix` subnets between `min` and `max` (inclusive).
    pub fn new(min: Ipv4Addr, max: Ipv4Addr, prefix: u8) -> Leases {
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
        self.restore(all);
        if self.by_edge.len() != before {
            self.changed = true;
        }
    }

    /// Restores persisted leases (ignoring those outside the pool).
    pub fn restore(&mut self, leases: impl IntoIterator<Item = Lease>) {
        for l in leases {
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
                    self.by_edge.insert((l.community, l.edge), l.ip.addr);
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
            self.by_edge.insert((l.community, l.edge), l.ip.addr);
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

    /// The address of `edge` in `community`, leasing one if it has none. None when the pool is exhausted.
    pub fn lease(&mut self, community: CommunityId, edge: PublicKey) -> Option<Ipv4Net> {
        let prefix = self.prefix_of(&community);
        if let Some(&ip) = self.by_edge.get(&(community, edge)) {
            return Some(Ipv4Net { addr: ip, prefix });
        }
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
                self.by_edge.insert((community, edge), addr);
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
            .map(|(&(community, edge), &addr)| Lease {
                community,
                edge,
                ip: Ipv4Net {
                    addr,
                    prefix: self.prefix_of(&community),
                },
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

    fn pool() -> Leases {
        Leases::new(
            "10.128.0.0".parse().unwrap(),
            "10.128.3.0".parse().unwrap(),
            24,
        )
    }

    #[test]
    fn same_edge_same_address_and_distinct_edges_distinct() {
        let mut l = pool();
        let c = CommunityId([1; 8]);
        let a = l.lease(c, PublicKey([1; 32])).unwrap();
        let b = l.lease(c, PublicKey([2; 32])).unwrap();
        assert_ne!(a, b);
        assert_eq!(l.lease(c, PublicKey([1; 32])).unwrap(), a);
        assert_eq!(a.prefix, 24);
        assert!(l.take_changed());
        assert!(!l.take_changed());
        // A restart: the persisted table gives the same answers.
        let mut again = pool();
        again.restore(l.all());
        assert_eq!(again.lease(c, PublicKey([1; 32])).unwrap(), a);
        assert_eq!(again.lease(c, PublicKey([2; 32])).unwrap(), b);
        assert!(!again.take_changed());
    }

    #[test]
    fn communities_get_distinct_subnets_until_exhausted() {
        let mut l = pool();
        let mut nets = HashSet::new();
        for i in 0..4u8 {
            let ip = l.lease(CommunityId([i; 8]), PublicKey([9; 32])).unwrap();
            nets.insert(u32::from(ip.addr) >> 8);
        }
        assert_eq!(nets.len(), 4);
        assert!(l.lease(CommunityId([9; 8]), PublicKey([9; 32])).is_none());
    }

    #[test]
    fn subnet_fills_up_without_network_or_broadcast() {
        let mut l = Leases::new("10.0.0.0".parse().unwrap(), "10.0.0.0".parse().unwrap(), 29);
        let c = CommunityId([1; 8]);
        let mut got = Vec::new();
        for i in 0..6u8 {
            got.push(l.lease(c, PublicKey([i; 32])).unwrap().addr.octets()[3]);
        }
        got.sort();
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6]);
        assert!(l.lease(c, PublicKey([7; 32])).is_none());
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
        let a = l.lease(own, PublicKey([1; 32])).unwrap();
        assert_eq!(a.prefix, 25);
        assert_eq!(
            u32::from(a.addr) >> 7,
            u32::from(Ipv4Addr::new(10, 128, 0, 0)) >> 7
        );
        for i in 0..3u8 {
            let o = l
                .lease(CommunityId([10 + i; 8]), PublicKey([9; 32]))
                .unwrap();
            assert_ne!(o.addr.octets()[2], 0, "a default subnet overlaps the pool");
        }
        // Persisted and restored with the pool known first: the same address.
        let mut again = pool();
        let mut pools = HashMap::new();
        pools.insert(own, "10.128.0.0/25".parse().unwrap());
        again.set_pools(pools);
        again.restore(l.all());
        assert_eq!(again.lease(own, PublicKey([1; 32])).unwrap(), a);
        // The pool moves: the old lease is dropped, the next one comes from the new pool.
        let mut pools = HashMap::new();
        pools.insert(own, "192.168.50.0/24".parse().unwrap());
        again.take_changed();
        again.set_pools(pools);
        assert!(again.take_changed());
        let b = again.lease(own, PublicKey([1; 32])).unwrap();
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
        };
        assert_eq!(Lease::from_line(&l.to_line()).unwrap(), l);
        assert!(Lease::from_line("junk").is_err());
    }
}
