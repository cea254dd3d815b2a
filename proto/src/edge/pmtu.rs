//! Path MTU: the largest frame each peer's path carries, found with padded probes and re-checked.

use std::net::SocketAddr;
use std::time::Instant;

use super::Edge;

impl Edge {
    /// An ICMP error about a datagram to `dest` (see [`Edge::handle_path_mtu_hint`]).
    pub(super) fn on_path_mtu_hint(&mut self, _now: Instant, _dest: SocketAddr, _mtu: u16) {}
}
