//! The supernode's data path: registrations, introductions, punching and relaying, on a thread of its own
//! that waits in epoll (`weft_datapath::dataloop` says why). The management API, signals and reloads stay on
//! the tokio runtime of the main thread and reach this loop through [`Remote`].

use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use tokio::sync::oneshot;
use weft_datapath::dataloop;
use weft_datapath::udp::BatchedUdp;
use weft_proto::supernode::Supernode;

use crate::{leases_file, log_event, mgmt, server_event, Query};

/// The management side's handle on the loop.
pub type Remote = dataloop::Remote<Query>;
/// The loop's end of [`Remote`].
pub type Inbox = dataloop::Inbox<Query>;

/// `recvmmsg` calls per turn of the loop (each up to 16 buffers, each a GRO run) before timers, queries
/// and sends get their turn.
const UDP_CALLS: usize = 4;

const UDP: Token = Token(0);

/// What the loop needs besides the state machine and its socket.
pub struct Outside {
    pub inbox: Inbox,
    pub events: tokio::sync::broadcast::Sender<weft_web::ServerEvent>,
    /// Where changed leases are saved.
    pub state_dir: PathBuf,
}

/// Starts the loop on a thread named `weft-data`; the receiver yields its result when it has stopped.
pub fn spawn(
    sn: Supernode,
    udp: std::net::UdpSocket,
    outside: Outside,
) -> Result<oneshot::Receiver<Result<()>>> {
    dataloop::spawn("weft-data", move || run(sn, udp, outside))
}

fn run(mut sn: Supernode, udp: std::net::UdpSocket, outside: Outside) -> Result<()> {
    let Outside {
        mut inbox,
        events,
        state_dir,
    } = outside;
    let mut udp = BatchedUdp::new(udp)?;
    inbox.poll.registry().register(
        &mut SourceFd(&udp.socket().as_raw_fd()),
        UDP,
        Interest::READABLE,
    )?;
    let mut polled = Events::with_capacity(8);
    let mut out: Vec<(SocketAddr, Range<usize>)> = Vec::with_capacity(64);
    // Edge-triggered readiness: set by epoll, cleared by WouldBlock; a turn may stop before draining.
    let mut readable = false;
    while !inbox.stopping() {
        // Asked once per turn; what the datagrams of this turn change is seen at the next.
        let deadline = sn.poll_timeout();
        let timeout = if readable {
            Duration::ZERO
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        dataloop::wait(&mut inbox.poll, &mut polled, timeout).context("epoll")?;
        readable |= polled.iter().any(|e| e.token() == UDP);
        let woken = polled.iter().any(|e| e.token() == dataloop::WAKE);
        let now = Instant::now();
        if readable {
            for _ in 0..UDP_CALLS {
                if let Err(e) = udp.try_recv(|from, d| sn.handle_udp(now, from, d)) {
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        tracing::debug!("udp receive: {e}");
                    }
                    readable = false;
                    break;
                }
            }
        }
        if now >= deadline {
            sn.handle_timeout(now);
        }
        // Every ask wakes the loop after queueing, so the queue needs a look only after a wake-up.
        while let Some(q) = woken.then(|| inbox.next_query()).flatten() {
            match q {
                Query::Snapshot(tx) => {
                    let _ = tx.send(mgmt::Snapshot::of(&sn));
                }
                Query::SetPolicy(p) => sn.set_policy(p),
            }
        }
        out.clear();
        out.extend(sn.transmits().iter().map(|(d, r)| (*d, r)));
        if !out.is_empty() {
            udp.send_all(sn.transmits().bytes(), &out);
            sn.clear_transmits();
        }
        while let Some(ev) = sn.poll_event() {
            log_event(&sn, &ev);
            if events.receiver_count() > 0 {
                let _ = events.send(server_event(&sn, &ev));
            }
        }
        if let Some(leases) = sn.take_changed_leases() {
            if let Err(e) = leases_file::save(&state_dir, &leases) {
                tracing::error!("cannot persist leases: {e:#}");
            }
        }
    }
    Ok(())
}
