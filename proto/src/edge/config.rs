//! What an edge state machine is configured with. The daemon builds this from its INI file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::keys::{CommunityKeys, PublicKey, StaticKeypair};
use crate::wire::{Ipv4Net, MacAddr};

/// How the edge gets its virtual IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressMode {
    /// Configured; told to the supernode so peers can display it.
    Static(Ipv4Net),
    /// Assigned by the supernode from the community's pool.
    Auto,
    /// None from Weft (DHCP on the virtual segment, or no IPv4 at all).
    None,
}

/// Timer values. Defaults are the documented protocol timers (PROTOCOL.md, "Timers").
#[derive(Debug, Clone)]
pub struct Timers {
    /// Registration refresh with each supernode.
    pub register_interval: Duration,
    /// First retry of an unanswered registration; doubles up to `register_interval`.
    pub register_retry: Duration,
    /// A direct path with no packet from the peer for this long has failed: fall back to the relay.
    pub direct_timeout: Duration,
    /// Send a keepalive to a peer we sent nothing to for this long (keeps NAT mappings and liveness).
    pub keepalive: Duration,
    /// A peer we heard nothing from for this long is forgotten.
    pub peer_timeout: Duration,
    /// First interval between rounds of path probes; doubles up to `probe_max`.
    pub probe_first: Duration,
    /// Longest interval between probe rounds while relayed; at this pace the edge also asks the
    /// supernode to coordinate a simultaneous punch.
    pub probe_max: Duration,
    /// First retry of an unanswered handshake; doubles up to 8 times this.
    pub handshake_retry: Duration,
    /// Give up a handshake after this many attempts (until traffic or new peer info asks again).
    pub handshake_attempts: u32,
    /// The initiator of a session starts a new handshake after this long.
    pub rekey_after_time: Duration,
    /// No packet is sent or accepted on a session older than this.
    pub reject_after_time: Duration,
    /// Learned MAC addresses are forgotten after this long without a frame from them.
    pub mac_ageing: Duration,
    /// Liveness ping to each registered supernode (tiny; answered only for a current registration).
    pub supernode_ping: Duration,
    /// A supernode silent (no acknowledgement, no pong) for this long is lost: the edge switches to
    /// another one at once.
    pub supernode_dead: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            register_interval: Duration::from_secs(20),
            register_retry: Duration::from_secs(1),
            direct_timeout: Duration::from_secs(21),
            keepalive: Duration::from_secs(10),
            peer_timeout: Duration::from_secs(75),
            probe_first: Duration::from_millis(100),
            probe_max: Duration::from_secs(30),
            handshake_retry: Duration::from_secs(1),
            handshake_attempts: 20,
            rekey_after_time: Duration::from_secs(120),
            reject_after_time: Duration::from_secs(180),
            mac_ageing: Duration::from_secs(300),
            supernode_ping: Duration::from_secs(1),
            supernode_dead: Duration::from_millis(3500),
        }
    }
}

/// Bounds on memory and on key use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Peers tracked at most (peer info and handshakes beyond this are dropped).
    pub max_peers: usize,
    /// MAC table entries at most.
    pub max_macs: usize,
    /// Frames held per peer while its session is being set up.
    pub max_queued_frames: usize,
    /// The initiator rekeys after sending this many packets on a session.
    pub rekey_after_messages: u64,
    /// No packet is sent on a session after this many.
    pub reject_after_messages: u64,
    /// Handshake initiations per second (with a valid MAC1) above which the edge is under load: an
    /// initiation then needs a valid MAC2 (a cookie) to be answered, and each source is rate limited.
    pub handshake_load: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_peers: 4096,
            max_macs: 16384,
            max_queued_frames: 32,
            rekey_after_messages: 1 << 60,
            reject_after_messages: u64::MAX - (1 << 13),
            handshake_load: 200,
        }
    }
}

/// Everything an edge needs to run.
#[derive(Clone)]
pub struct EdgeConfig {
    /// The community's derived keys.
    pub community: CommunityKeys,
    /// This edge's identity.
    pub identity: StaticKeypair,
    /// Supernodes to register with (all of them).
    pub supernodes: Vec<SocketAddr>,
    /// The static keys of supernodes, pinned (from the configuration or learned before). A supernode not
    /// listed is asked for its key, which is then trusted (and reported with
    /// [`super::Event::SupernodeKeyLearned`] for the daemon to store).
    pub supernode_keys: BTreeMap<SocketAddr, PublicKey>,
    /// The TAP device's MAC address.
    pub mac: MacAddr,
    /// How the virtual IPv4 address is obtained.
    pub address: AddressMode,
    /// Local socket addresses to offer peers as direct-path candidates.
    pub local_addrs: Vec<SocketAddr>,
    /// Networks of this host's tunnels and container bridges: a peer address inside one is reached
    /// through that interface, not the underlay, so it is never probed nor taken as a direct path.
    pub avoid_nets: Vec<Ipv4Net>,
    /// Shown to peers and in status.
    pub description: String,
    /// Try direct paths; when false every packet goes through the supernode.
    pub allow_p2p: bool,
    /// Timer values.
    pub timers: Timers,
    /// Memory and key-use bounds.
    pub limits: Limits,
}
