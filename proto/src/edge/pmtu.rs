//! Path MTU: where ICMP hints about our datagrams' size arrive. The search that would act on them
//! (padded probes per path) is not built yet, so a hint changes nothing.

use std::net::SocketAddr;
use std::time::Instant;

use super::Edge;

impl Edge {
    /// An ICMP error about a datagram to `dest` (see [`Edge::handle_path_mtu_hint`]): ignored until the
    /// path-MTU search exists.
    pub(super) fn on_path_mtu_hint(&mut self, _now: Instant, _dest: SocketAddr, _mtu: u16) {}
}
