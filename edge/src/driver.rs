//! The edge's data path: the thin I/O shell around `weft_proto::edge::Edge`, on a thread of its own.
//!
//! One thread owns the state machine, the UDP socket and the TAP device, and waits in epoll (through mio)
//! on whichever is ready first: a datagram, a frame, the machine's next timer, or a wake-up from the
//! management side (a query, or stop). After each wake-up it drains what is already queued in the kernel
//! (up to a batch per source, so neither direction starves the other), then flushes what the machine
//! produced: UDP with GSO, TAP with coalesced vectored writes, straight from the machine's output queues.
//!
//! Why its own thread and not a task on the tokio runtime that serves the API: `weft_datapath::dataloop`.
//! The management API stays on tokio, on the main thread, and reaches this loop through [`Remote`].
//! One thread for the whole path: on small machines handing packets between threads costs more than it
//! gives (shared/testbed/NOTES.md), and a thread per direction would not split one flow, whose reverse
//! direction (the ACKs) is 2 % of the sender's datagrams (bench/README.md, "Targets").

use std::io::IoSlice;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use tokio::sync::oneshot;
use tun_rs::SyncDevice;
use weft_datapath::dataloop;
use weft_datapath::udp::BatchedUdp;
use weft_proto::edge::{Edge, EdgeStats, Event, Path, PeerStatus, SupernodeStatus};
use weft_proto::wire::Ipv4Net;

use weft_datapath::{offload, tap};

/// A question the management server asks the loop.
pub enum Query {
    /// Everything the status methods and metrics report.
    Snapshot(oneshot::Sender<Snapshot>),
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
pub type EventSink = tokio::sync::broadcast::Sender<weft_web::ServerEvent>;

/// Datagrams or frames handled per wake-up before yielding to the other sources.
const BATCH: usize = 64;
/// `recvmmsg` calls per turn of the loop (each up to 16 buffers, each a GRO run).
const UDP_CALLS: usize = 4;
/// Largest datagram we accept (a jumbo TAP MTU plus headers).
const MAX_DATAGRAM: usize = 65536;

const UDP: Token = Token(0);
const TAP: Token = Token(1);

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
) -> Result<oneshot::Receiver<Result<()>>> {
    dataloop::spawn("weft-data", move || {
        run(edge, udp, dev, vnet, inbox, events)
    })
}

/// Whether a source may still have something queued: set by an epoll edge, cleared by `WouldBlock`.
/// Edge-triggered readiness needs this memory, as a turn stops after a batch without draining.
#[derive(Default)]
struct Ready {
    udp: bool,
    tap: bool,
}

fn run(
    mut edge: Edge,
    udp: std::net::UdpSocket,
    dev: SyncDevice,
    vnet: bool,
    inbox: Inbox,
    events: EventSink,
) -> Result<()> {
    let mut inbox = inbox;
    let mut udp = BatchedUdp::new(udp)?;
    dev.set_nonblocking(true)?;
    inbox.poll.registry().register(
        &mut SourceFd(&udp.socket().as_raw_fd()),
        UDP,
        Interest::READABLE,
    )?;
    inbox
        .poll
        .registry()
        .register(&mut SourceFd(&dev.as_raw_fd()), TAP, Interest::READABLE)?;
    tracing::debug!(
        "udp batching: up to {} datagrams per send (GSO), {} per receive buffer (GRO)",
        udp.max_gso_segments(),
        udp.gro_segments()
    );
    let mut tbuf = vec![0u8; MAX_DATAGRAM + offload::VNET_HDR_LEN];
    let mut scratch = Vec::with_capacity(2048);
    let tap = Tap { dev: &dev, vnet };
    let mut out = Buffers::default();
    let mut ready = Ready::default();
    let mut polled = Events::with_capacity(8);
    flush(&mut edge, &mut udp, &tap, &events, &mut out);
    while !inbox.stopping() {
        // Asked once per turn (it looks at every timer: about 700 instructions, callgrind); what the
        // packets of this turn change is seen at the next.
        let deadline = edge.poll_timeout();
        // Something left from the last turn: only look for news, do not sleep.
        let timeout = if ready.udp || ready.tap {
            Duration::ZERO
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        dataloop::wait(&mut inbox.poll, &mut polled, timeout).context("epoll")?;
        let mut woken = false;
        for ev in polled.iter() {
            match ev.token() {
                UDP => ready.udp = true,
                TAP => ready.tap = true,
                dataloop::WAKE => woken = true,
                _ => {}
            }
        }
        let now = Instant::now();
        if ready.udp {
            // A few recvmmsg calls at most, then the TAP side gets its turn.
            for _ in 0..UDP_CALLS {
                match udp.try_recv(|from, d| edge.handle_udp(now, from, d)) {
                    Ok(_) => {}
                    Err(e) => {
                        if e.kind() != std::io::ErrorKind::WouldBlock {
                            tracing::debug!("udp receive: {e}");
                        }
                        ready.udp = false;
                        break;
                    }
                }
            }
        }
        if ready.tap {
            for _ in 0..BATCH {
                match dev.recv(&mut tbuf) {
                    Ok(n) => tap.frames(&mut tbuf[..n], &mut scratch, |h, t| {
                        edge.handle_tap_frame_parts(now, h, t)
                    }),
                    Err(e) => {
                        if e.kind() != std::io::ErrorKind::WouldBlock {
                            tracing::debug!("tap receive: {e}");
                        }
                        ready.tap = false;
                        break;
                    }
                }
            }
        }
        if now >= deadline {
            edge.handle_timeout(now);
        }
        // Every ask wakes the loop after queueing, so the queue needs a look only after a wake-up.
        while let Some(q) = woken.then(|| inbox.next_query()).flatten() {
            answer(&edge, q);
        }
        flush(&mut edge, &mut udp, &tap, &events, &mut out);
    }
    Ok(())
}

fn answer(edge: &Edge, q: Query) {
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
    }
}

/// Output bookkeeping reused across wake-ups, so a flush allocates nothing of its own. The packets
/// themselves stay where the state machine wrote them, in its output queues.
#[derive(Default)]
struct Buffers {
    /// Datagrams the state machine produced, in order: destination and place in its queue.
    datagrams: Vec<(SocketAddr, Range<usize>)>,
    /// Frames for the TAP device, in order: their places in its queue.
    frames: Vec<Range<usize>>,
    /// One TAP write (virtio-net header and frame, or a coalesced run), as a gather list.
    tap_write: offload::TapWrite,
}

/// The TAP device, with or without the virtio-net header of offload.
struct Tap<'a> {
    dev: &'a SyncDevice,
    vnet: bool,
}

impl Tap<'_> {
    /// The wire-size frames of one read.
    fn frames(&self, buf: &mut [u8], scratch: &mut Vec<u8>, each: impl FnMut(&[u8], &[u8])) {
        if !self.vnet {
            let mut each = each;
            each(buf, &[]);
        } else if let Err(e) = offload::split(buf, scratch, each) {
            tracing::debug!("tap frame dropped: {e}");
        }
    }

    /// One write; a full device queue (rare: the kernel queues TAP writes on the receive backlog) is
    /// waited out briefly, like a full socket buffer.
    fn write(&self, bufs: &[IoSlice<'_>]) {
        let mut waited = false;
        loop {
            match self.dev.send_vectored(bufs) {
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && !waited => {
                    waited = true;
                    weft_datapath::udp::wait_writable(self.dev, TAP_WAIT);
                }
                Err(e) => {
                    tracing::debug!("tap send: {e}");
                    return;
                }
            }
        }
    }
}

/// How long a TAP write waits for room before the frame is dropped.
const TAP_WAIT: Duration = Duration::from_millis(100);

fn flush(
    edge: &mut Edge,
    udp: &mut BatchedUdp,
    tap: &Tap<'_>,
    events: &EventSink,
    out: &mut Buffers,
) {
    out.datagrams.clear();
    out.datagrams
        .extend(edge.transmits().iter().map(|(d, r)| (*d, r)));
    if !out.datagrams.is_empty() {
        // Unreachable networks and the like are logged at debug level; the protocol's timers recover.
        udp.send_all(edge.transmits().bytes(), &out.datagrams);
        edge.clear_transmits();
    }
    out.frames.clear();
    out.frames.extend(edge.tap_frames().iter().map(|(_, r)| r));
    let frames = edge.tap_frames().bytes();
    if tap.vnet {
        // Runs of one TCP stream go to the kernel as one large segment (user-space GRO).
        // Written with one vectored write each, straight from the state machine's queue.
        let mut i = 0;
        while i < out.frames.len() {
            i = offload::coalesce_next(frames, &out.frames, i, &mut out.tap_write);
            let w = &out.tap_write;
            let mut iov = [IoSlice::new(&[]); offload::MAX_RUN + 1];
            iov[0] = IoSlice::new(&w.head);
            for (slot, r) in iov[1..].iter_mut().zip(&w.pieces) {
                *slot = IoSlice::new(&frames[r.clone()]);
            }
            tap.write(&iov[..1 + w.pieces.len()]);
        }
    } else {
        for r in &out.frames {
            tap.write(&[IoSlice::new(&frames[r.clone()])]);
        }
    }
    if !out.frames.is_empty() {
        edge.clear_tap_frames();
    }
    while let Some(ev) = edge.poll_event() {
        log_event(edge, &ev);
        if events.receiver_count() > 0 {
            let _ = events.send(server_event(edge, &ev));
        }
        if let Event::AddressAssigned(net) = ev {
            if let Err(e) = tap::set_address(tap.dev, net) {
                tracing::error!("cannot set the TAP address to {net}: {e}");
            }
        }
    }
}

fn peer_name(edge: &Edge, key: &weft_proto::keys::PublicKey) -> String {
    let desc = edge
        .peers()
        .into_iter()
        .find(|p| &p.public_key == key)
        .map(|p| p.description)
        .unwrap_or_default();
    if desc.is_empty() {
        format!("{key:?}")
    } else {
        format!("{desc} ({key:?})")
    }
}

fn path_text(p: &Path) -> String {
    match p {
        Path::Direct(a) => format!("direct {a}"),
        Path::Relayed(sn) => format!("relayed via supernode {sn}"),
        Path::None => "none".into(),
    }
}

/// One line per state change worth knowing.
fn log_event(edge: &Edge, ev: &Event) {
    match ev {
        Event::Registered {
            supernode,
            observed,
        } => tracing::info!("registered with supernode {supernode}, public address {observed}"),
        Event::SupernodeRestarted { supernode } => {
            tracing::info!("supernode {supernode} restarted; registered again")
        }
        Event::RegistrationLost { supernode } => {
            tracing::warn!("supernode {supernode} stopped answering")
        }
        Event::RegistrationRefused { supernode, reason } => {
            use weft_proto::wire::NakReason;
            let name = &edge.config().community.name;
            match reason {
                NakReason::KeyNotAllowed => tracing::error!(
                    "supernode {supernode} refused registration: this edge's key ({}) is not on the allowed list of community '{name}'; ask the supernode's administrator to add it (weft-edge show-key prints it). Retrying every {} s",
                    edge.public_key(),
                    edge.config().timers.register_interval.as_secs()
                ),
                NakReason::CommunityNotAllowed => tracing::error!(
                    "supernode {supernode} refused registration: it does not serve community '{name}'; check [community] name, or ask its administrator to add the community to its community file"
                ),
                NakReason::BadAdmissionProof => tracing::error!(
                    "supernode {supernode} refused registration: the admission proof did not verify, so [community] key is not the secret the supernode expects for community '{name}'; check the key (and the name)"
                ),
                NakReason::NoCapacity => tracing::warn!(
                    "supernode {supernode} refused registration: it is full (too many edges or communities); retrying"
                ),
                NakReason::PoolExhausted => tracing::error!(
                    "supernode {supernode} refused registration: no free address is left in the pool of community '{name}' (address_mode=auto); ask its administrator to enlarge the pool, or configure a static address"
                ),
                NakReason::NameRequired => tracing::error!(
                    "supernode {supernode} refused registration: it asked for the community name again although this edge sent it"
                ),
                NakReason::Other => tracing::error!(
                    "supernode {supernode} refused registration for a reason this version does not know (a newer supernode?)"
                ),
            }
        }
        Event::SupernodeChanged { from, to } => match from {
            Some(from) => tracing::info!("now using supernode {to} (was {from})"),
            None => tracing::info!("now using supernode {to}"),
        },
        Event::AddressAssigned(net) => tracing::info!("virtual address {net} assigned"),
        Event::PeerUp { peer, path, .. } => {
            tracing::info!(
                "peer {} up, path {}",
                peer_name(edge, peer),
                path_text(path)
            )
        }
        Event::PathChanged { peer, path } => {
            tracing::info!("peer {} path {}", peer_name(edge, peer), path_text(path))
        }
        Event::PeerDown { peer } => {
            tracing::info!("peer {} down (session expired)", peer_name(edge, peer))
        }
        Event::PeerGone { peer } => tracing::info!("peer {peer:?} gone"),
        Event::PeerRevoked { peer } => tracing::warn!(
            "peer {peer:?} revoked: the supernode says its key is no longer allowed in the community; sessions with it dropped"
        ),
    }
}

fn path_json(p: &Path) -> (&'static str, Option<String>) {
    match p {
        Path::Direct(a) => ("direct", Some(a.to_string())),
        Path::Relayed(_) => ("relayed", None),
        Path::None => ("none", None),
    }
}

fn description(edge: &Edge, key: &weft_proto::keys::PublicKey) -> String {
    edge.peers()
        .into_iter()
        .find(|p| &p.public_key == key)
        .map(|p| p.description)
        .unwrap_or_default()
}

/// The `/events` form of an event (kinds and fields: docs/api.md).
fn server_event(edge: &Edge, ev: &Event) -> weft_web::ServerEvent {
    use serde_json::json;
    let (kind, mut data) = match ev {
        Event::Registered {
            supernode,
            observed,
        } => (
            "registered",
            json!({"supernode": supernode.to_string(), "public_addr": observed.to_string()}),
        ),
        Event::SupernodeRestarted { supernode } => (
            "supernode_restarted",
            json!({"supernode": supernode.to_string()}),
        ),
        Event::RegistrationLost { supernode } => (
            "registration_lost",
            json!({"supernode": supernode.to_string()}),
        ),
        Event::RegistrationRefused { supernode, reason } => (
            "registration_refused",
            json!({"supernode": supernode.to_string(), "reason": format!("{reason:?}"), "explanation": reason.explain()}),
        ),
        Event::SupernodeChanged { from, to } => (
            "supernode_changed",
            json!({"from": from.map(|a| a.to_string()), "to": to.to_string()}),
        ),
        Event::AddressAssigned(net) => ("address_assigned", json!({"ip": net.to_string()})),
        Event::PeerUp { peer, path, .. } | Event::PathChanged { peer, path } => {
            let (p, addr) = path_json(path);
            (
                if matches!(ev, Event::PeerUp { .. }) {
                    "peer_up"
                } else {
                    "path_changed"
                },
                json!({"peer": peer.to_string(), "description": description(edge, peer), "path": p, "addr": addr}),
            )
        }
        Event::PeerDown { peer } => (
            "peer_down",
            json!({"peer": peer.to_string(), "description": description(edge, peer)}),
        ),
        Event::PeerGone { peer } => ("peer_gone", json!({"peer": peer.to_string()})),
        Event::PeerRevoked { peer } => ("peer_revoked", json!({"peer": peer.to_string()})),
    };
    data["time_ms"] = json!(unix_ms());
    weft_web::ServerEvent {
        kind: kind.to_string(),
        data: data.to_string(),
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    wall_clock_us() / 1000
}

/// Milliseconds since `t`, for status output.
pub fn ms_since(now: Instant, t: Option<Instant>) -> Option<u64> {
    t.map(|t| now.saturating_duration_since(t).as_millis() as u64)
}

/// Wall-clock microseconds since the Unix epoch, for the protocol's monotonic counters.
pub fn wall_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros() as u64
}
