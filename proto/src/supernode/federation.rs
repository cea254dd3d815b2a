//! Federation: several supernodes serving one network, so that none is a single point of failure.
//!
//! Each supernode tells every configured peer which edges are registered with it (on every new or moved
//! registration at once, and all of them every [`SYNC_INTERVAL`]), and that an edge is gone. A supernode
//! introduces the edges it learns from a peer to its own edges of the same community exactly as it
//! introduces its own (peer info with the punch flag to both sides: the peer does the mirror half), so
//! edges registered with different supernodes find each other, punch and go direct. Punch requests and
//! relayed packets for an edge registered elsewhere are handed to that edge's supernode.
//!
//! No loops and no amplification: a supernode only ever sends what it originates about its *own* edges,
//! or a packet for the receiver's own edge; nothing received from a peer is forwarded to another peer, so
//! every message crosses at most one federation link. That needs every supernode to list every other one
//! (a full mesh of peers), which is how the daemon documents `supernode.peer`.
//!
//! Control messages travel only sealed in the federation session with the peer (`fed_channel.rs`: a
//! handshake in which both supernodes prove their configured static keys); anything else is dropped and
//! counted (`federation_rejected`, or `federation_unauthenticated` for one in the clear). Relayed packets
//! are not sealed again (they are sealed end to end already, and a second AEAD per packet would cost the
//! relay path); they are accepted only from the address of a peer with a session in use, and only for an
//! edge registered here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{peer_info, EdgeRecord, Supernode};
use crate::keys::{CommunityId, PeerTag, PublicKey};
use crate::wire::{self, FedMessage, MsgType, PeerInfo};

/// How often every local edge is announced to every peer again (keeps the peers' records alive and
/// repairs anything a lost datagram left out).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(10);

/// An edge registered with another supernode of the federation.
#[derive(Debug, Clone)]
pub struct RemoteEdge {
    /// The edge as that supernode sees it.
    pub info: PeerInfo,
    /// The supernode it is registered with.
    pub via: SocketAddr,
    /// When we last heard of it.
    pub last_seen: Instant,
}

/// The federation side of a supernode's state.
#[derive(Default)]
pub(super) struct FederationState {
    /// Remote edges by community, then key.
    pub remote: BTreeMap<CommunityId, BTreeMap<PublicKey, RemoteEdge>>,
    /// Our last handshake timestamp.
    pub counter: u64,
    /// Next full announcement.
    pub next_sync: Option<Instant>,
    /// Our edges dropped by a policy reload, to announce as gone at the next timer.
    pub pending_gone: Vec<(CommunityId, PublicKey)>,
}

/// A federation peer as the status API shows it.
#[derive(Debug, Clone)]
pub struct FedPeerStatus {
    /// Its address.
    pub addr: SocketAddr,
    /// The static key it must prove.
    pub key: PublicKey,
    /// Whether a session with it is in use.
    pub up: bool,
    /// When it was last heard from (an authentic packet).
    pub last_heard: Option<Instant>,
    /// Edges registered with it that it told us about.
    pub edges: usize,
}

impl Supernode {
    fn federated(&self) -> bool {
        !self.links.links.is_empty()
    }

    /// The next handshake timestamp: wall-clock microseconds (given at start) plus time since, strictly
    /// increasing, so it keeps growing across restarts as the peers' replay check needs.
    pub(super) fn next_fed_counter(&mut self, now: Instant) -> u64 {
        let c =
            self.cfg.wall_clock_us + now.saturating_duration_since(self.start).as_micros() as u64;
        self.fed.counter = c.max(self.fed.counter + 1);
        self.fed.counter
    }

    fn broadcast_fed(&mut self, msg: &FedMessage) {
        for i in 0..self.links.links.len() {
            let to = self.links.links[i].peer.addr;
            self.send_fed(to, msg);
        }
    }

    /// Tells the peers about a local edge (at once when it is new or moved: `introduce`).
    pub(super) fn announce_edge(&mut self, _now: Instant, e: &EdgeRecord, introduce: bool) {
        if self.federated() {
            let msg = FedMessage::Edge {
                info: peer_info(e, false),
                introduce,
            };
            self.broadcast_fed(&msg);
        }
    }

    /// Tells the peers that a local edge is gone.
    pub(super) fn announce_gone(&mut self, _now: Instant, community: CommunityId, key: PublicKey) {
        if self.federated() {
            self.broadcast_fed(&FedMessage::Gone { community, key });
        }
    }

    /// Remote edges of `community` other than `except` that are not also registered here.
    pub(super) fn remote_edges(&self, community: CommunityId, except: PublicKey) -> Vec<PeerInfo> {
        let local = self.communities.get(&community);
        self.fed
            .remote
            .get(&community)
            .map(|m| {
                m.values()
                    .filter(|r| r.info.public_key != except)
                    .filter(|r| local.is_none_or(|c| !c.edges.contains_key(&r.info.public_key)))
                    .map(|r| r.info.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A remote edge by key.
    pub(super) fn remote_edge(
        &self,
        community: CommunityId,
        key: &PublicKey,
    ) -> Option<&RemoteEdge> {
        self.fed.remote.get(&community)?.get(key)
    }

    /// A remote edge by tag.
    fn remote_by_tag(&self, community: CommunityId, tag: PeerTag) -> Option<&RemoteEdge> {
        self.fed
            .remote
            .get(&community)?
            .values()
            .find(|r| r.info.public_key.tag() == tag)
    }

    /// Hands a punch request for a remote edge to its supernode, and tells our edge about it.
    pub(super) fn punch_remote(
        &mut self,
        requester: SocketAddr,
        community: CommunityId,
        from: PublicKey,
        target: PublicKey,
    ) -> bool {
        let Some(r) = self.remote_edge(community, &target) else {
            return false;
        };
        let (via, mut info) = (r.via, r.info.clone());
        info.punch = true;
        let mut buf = Vec::new();
        info.encode(&mut buf);
        self.send_ctl_to(requester, &buf);
        self.stats.punches += 1;
        self.send_fed(
            via,
            &FedMessage::Punch {
                community,
                from,
                target,
            },
        );
        true
    }

    /// Relays a packet from a local edge to a remote one through its supernode.
    pub(super) fn relay_remote(
        &mut self,
        community: CommunityId,
        src: PublicKey,
        dest: PeerTag,
        inner: &[u8],
    ) -> bool {
        let Some(via) = self.remote_by_tag(community, dest).map(|r| r.via) else {
            return false;
        };
        self.transmits.push_with(via, |buf| {
            wire::encode_fed_relay_header(community, src.tag(), dest, buf);
            buf.extend_from_slice(inner);
        });
        self.stats.relayed_packets += 1;
        self.stats.relayed_bytes += inner.len() as u64;
        true
    }

    /// A relayed packet from a peer for one of our edges.
    pub(super) fn on_fed_relay(
        &mut self,
        from: SocketAddr,
        community: CommunityId,
        src: PeerTag,
        dest: PeerTag,
        inner: &[u8],
    ) {
        if !self.links.is_up(from) {
            self.stats.federation_rejected += 1;
            return;
        }
        let to = self
            .communities
            .get(&community)
            .and_then(|c| c.by_tag.get(&dest).and_then(|k| c.edges.get(k)))
            .map(|e| e.addr);
        let Some(to) = to.filter(|a| a.port() != 0) else {
            self.stats.dropped_packets += 1;
            return;
        };
        self.transmits.push_with(to, |buf| {
            wire::encode_relay_header(MsgType::Relayed, src, buf);
            buf.extend_from_slice(inner);
        });
        self.stats.relayed_packets += 1;
        self.stats.relayed_bytes += inner.len() as u64;
    }

    /// A federation control message that arrived sealed in a session with the peer at `from`.
    pub(super) fn on_fed(&mut self, now: Instant, from: SocketAddr, msg: FedMessage) {
        match msg {
            FedMessage::Edge { info, introduce } => self.on_fed_edge(now, from, info, introduce),
            FedMessage::Gone { community, key } => {
                if let Some(m) = self.fed.remote.get_mut(&community) {
                    if m.get(&key).is_some_and(|r| r.via == from) {
                        m.remove(&key);
                    }
                }
            }
            FedMessage::Punch {
                community,
                from: requester,
                target,
            } => {
                let target_addr = self
                    .communities
                    .get(&community)
                    .and_then(|c| c.edges.get(&target))
                    .map(|e| e.addr);
                let info = self
                    .remote_edge(community, &requester)
                    .map(|r| r.info.clone());
                if let (Some(addr), Some(mut info)) = (target_addr, info) {
                    info.punch = true;
                    let mut buf = Vec::new();
                    info.encode(&mut buf);
                    self.send_ctl_to(addr, &buf);
                }
            }
        }
    }

    /// Whether our own policy admits `key` in `community` (a peer's announcement of an edge our policy
    /// refuses, e.g. because we reloaded a revocation first, is ignored: we neither introduce it nor relay
    /// to it).
    pub(super) fn policy_admits(&self, community: &CommunityId, key: &PublicKey) -> bool {
        let name = self.names.get(community).map(String::as_str);
        self.cfg
            .policy
            .admission(community, name)
            .is_ok_and(|a| a.allows_key(key))
    }

    /// After a policy reload: forget remote edges our policy no longer admits, and tell the peers which of
    /// our own edges were dropped.
    pub(super) fn federation_policy_changed(&mut self, dropped: &[(CommunityId, PublicKey)]) {
        let mut forget = Vec::new();
        for (id, m) in &self.fed.remote {
            for k in m.keys() {
                if !self.policy_admits(id, k) {
                    forget.push((*id, *k));
                }
            }
        }
        for (id, k) in forget {
            if let Some(m) = self.fed.remote.get_mut(&id) {
                m.remove(&k);
            }
        }
        self.fed.remote.retain(|_, m| !m.is_empty());
        self.fed.pending_gone.extend_from_slice(dropped);
    }

    fn on_fed_edge(&mut self, now: Instant, via: SocketAddr, info: PeerInfo, introduce: bool) {
        let community = info.community;
        let key = info.public_key;
        if !self.policy_admits(&community, &key) {
            return;
        }
        let m = self.fed.remote.entry(community).or_default();
        let changed = m.get(&key).is_none_or(|r| {
            r.via != via
                || r.info.observed != info.observed
                || r.info.local_addrs != info.local_addrs
        });
        m.insert(
            key,
            RemoteEdge {
                info: info.clone(),
                via,
                last_seen: now,
            },
        );
        let registered_here = self
            .communities
            .get(&community)
            .is_some_and(|c| c.edges.contains_key(&key));
        if !(introduce || changed) || registered_here {
            return;
        }
        // Introduce it to our edges of the community, asking them to punch; its own supernode introduces
        // ours to it (it knows them from our announcements) at the same moment.
        let locals: Vec<SocketAddr> = self
            .communities
            .get(&community)
            .map(|c| {
                c.edges
                    .values()
                    .filter(|e| e.addr.port() != 0)
                    .map(|e| e.addr)
                    .collect()
            })
            .unwrap_or_default();
        let mut info = info;
        info.punch = true;
        for addr in locals {
            let mut buf = Vec::new();
            info.encode(&mut buf);
            self.send_ctl_to(addr, &buf);
        }
    }

    /// Announces every local edge to `peer`.
    pub(super) fn sync_to(&mut self, _now: Instant, peer: SocketAddr) {
        let all: Vec<EdgeRecord> = self
            .communities
            .values()
            .flat_map(|c| c.edges.values().filter(|e| e.addr.port() != 0).cloned())
            .collect();
        for e in all {
            let msg = FedMessage::Edge {
                info: peer_info(&e, false),
                introduce: false,
            };
            self.send_fed(peer, &msg);
        }
    }

    /// Periodic work: announce everything again, forget remote edges nobody announced for a while.
    pub(super) fn federation_timers(&mut self, now: Instant) {
        if !self.federated() {
            return;
        }
        self.link_timers(now);
        for (community, key) in std::mem::take(&mut self.fed.pending_gone) {
            self.announce_gone(now, community, key);
        }
        let due = self.fed.next_sync.is_none_or(|t| now >= t);
        if due {
            self.fed.next_sync = Some(now + SYNC_INTERVAL);
            for i in 0..self.links.links.len() {
                let peer = self.links.links[i].peer.addr;
                self.send_fed_keepalive(peer);
                self.sync_to(now, peer);
            }
        }
        let expiry = self.cfg.edge_expiry;
        for m in self.fed.remote.values_mut() {
            m.retain(|_, r| now.saturating_duration_since(r.last_seen) < expiry);
        }
        self.fed.remote.retain(|_, m| !m.is_empty());
    }

    /// The configured federation peers, for the status API.
    pub fn federation_peers(&self) -> Vec<FedPeerStatus> {
        self.links
            .links
            .iter()
            .map(|l| (l.peer.addr, l))
            .map(|(addr, l)| FedPeerStatus {
                addr,
                key: l.peer.key,
                up: l.up(),
                last_heard: l.last_heard,
                edges: self
                    .fed
                    .remote
                    .values()
                    .map(|m| m.values().filter(|r| r.via == addr).count())
                    .sum(),
            })
            .collect()
    }

    /// Every remote edge, for the status API.
    pub fn remote_edges_all(&self) -> Vec<RemoteEdge> {
        self.fed
            .remote
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }
}
