//! The edge's part of the data path: the generic loop of `weft_datapath::driver` drives the state machine
//! and the TAP device; this module answers the management side's queries and turns the machine's events
//! into log lines and `/events`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Result;
use tokio::sync::oneshot;
use tun_rs::SyncDevice;
use weft_datapath::dataloop;
use weft_datapath::driver::{self, Hooks};
use weft_datapath::tap_io::Tap;
use weft_proto::edge::{Edge, EdgeStats, Event, PeerStatus, SupernodeStatus};
use weft_proto::keys::PublicKey;
use weft_proto::wire::Ipv4Net;

use crate::events::{log_event, server_event};

/// A question the management server asks the loop.
pub enum Query {
    /// Everything the status methods and metrics report.
    Snapshot(oneshot::Sender<Snapshot>),
    /// A reload changed `allow_peer`: the new list (None: no list).
    SetAllowedPeers(Option<BTreeSet<PublicKey>>),
}

/// A copy of the edge's state for the management API, taken between two packets.
pub struct Snapshot {
    pub now: Instant,
    pub public_key: String,
    pub mac: String,
    pub ip: Option<Ipv4Net>,
    pub registered: bool,
    pub observed: Option<SocketAddr>,
    pub supernodes: Vec<SupernodeStatus>,
    pub peers: Vec<PeerStatus>,
    pub stats: EdgeStats,
    pub last_peer_rx: Option<Instant>,
}

/// Where the loop publishes events for `/events`.
pub type EventSink = tokio::sync::broadcast::Sender<weft_mgmt::ServerEvent>;

/// The management side's handle on the loop.
pub type Remote = dataloop::Remote<Query>;
/// The loop's end of [`Remote`].
pub type Inbox = dataloop::Inbox<Query>;

/// Starts the loop on a thread named `weft-data`; the receiver yields its result when it has stopped.
pub fn spawn(
    edge: Edge,
    udp: std::net::UdpSocket,
    dev: SyncDevice,
    vnet: bool,
    inbox: Inbox,
    events: EventSink,
    state_dir: std::path::PathBuf,
) -> Result<oneshot::Receiver<Result<()>>> {
    let tap = Tap::new(dev, vnet)?;
    driver::spawn(edge, udp, tap, inbox, EdgeHooks { events, state_dir })
}

/// The edge's [`Hooks`].
struct EdgeHooks {
    events: EventSink,
    /// Where supernode keys learned on first use are stored.
    state_dir: std::path::PathBuf,
}

impl Hooks<Edge> for EdgeHooks {
    type Query = Query;

    fn answer(&mut self, edge: &mut Edge, q: Query) {
        match q {
            Query::Snapshot(tx) => {
                let _ = tx.send(Snapshot {
                    now: Instant::now(),
                    public_key: edge.public_key().to_string(),
                    mac: edge.config().mac.to_string(),
                    ip: edge.address(),
                    registered: edge.is_registered(),
                    observed: edge.observed_address(),
                    supernodes: edge.supernodes(),
                    peers: edge.peers(),
                    stats: edge.stats(),
                    last_peer_rx: edge.last_peer_rx(),
                });
            }
            Query::SetAllowedPeers(keys) => edge.set_allowed_peers(Instant::now(), keys),
        }
    }

    fn event(&mut self, edge: &Edge, ev: &Event) {
        log_event(edge, ev);
        if let Event::SupernodeKeyLearned { supernode, key } = ev {
            // Once per supernode in the edge's life: small enough for this thread.
            if let Err(e) = crate::pins::store(&self.state_dir, *supernode, *key) {
                tracing::error!(
                    "cannot store the key of supernode {supernode}: {e:#}; it will be trusted on first use again at the next start"
                );
            }
        }
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(server_event(edge, ev));
        }
    }
}
