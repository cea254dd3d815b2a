//! The one event loop both daemons run their data path in: the thin I/O shell around a sans-IO state
//! machine ([`Machine`]), on a thread of its own.
//!
//! One thread owns the state machine, the UDP socket and, for an edge, the TAP device, and waits in epoll
//! (through mio) on whichever is ready first: a datagram, a frame, the machine's next timer, or a wake-up
//! from the management side (a query, or stop). After each wake-up it drains what is already queued in the
//! kernel (up to a batch per source, so neither direction starves the other), then flushes what the machine
//! produced: UDP with GSO, TAP with coalesced vectored writes, straight from the machine's output queues.
//!
//! Why its own thread and not a task on the tokio runtime that serves the API: [`crate::dataloop`].
//! One thread for the whole path: on small machines handing packets between threads costs more than it
//! gives (on the 2-core benchmark machine, boringtun with one worker thread carried about 1.9 Gbit/s of TCP,
//! against 0.8 to 1.2 for it and the other user-space VPNs with their default threads), and a thread per
//! direction would not split one flow, whose reverse direction (the ACKs) is 2 % of the sender's datagrams
//! (bench/README.md, "Targets").
//!
//! What differs between the daemons plugs in through two small traits: the TAP side is a [`Frames`]
//! source ([`Tap`] for an edge, [`NoTap`] for a supernode), and [`Hooks`] answers the management side's
//! queries and takes the machine's events (logging, `/events`, persisting).

use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Registry, Token};
use tokio::sync::oneshot;

use crate::dataloop::{self, Inbox};
use crate::machine::{Machine, Switch};
use crate::tap;
use crate::tap_io::Tap;
use crate::udp::BatchedUdp;

/// Reads from the TAP device per wake-up before yielding to the other sources.
const BATCH: usize = 64;
/// `recvmmsg` calls per turn of the loop (each up to 16 buffers, each a GRO run) before the other source,
/// timers, queries and sends get their turn.
const UDP_CALLS: usize = 4;

const UDP: Token = Token(0);
const TAP: Token = Token(1);

/// What a daemon adds to the loop: answers to its management side's queries, and what becomes of the
/// machine's events.
pub trait Hooks<M: Machine> {
    /// A question the management side asks (through [`crate::dataloop::Remote`]).
    type Query: Send + 'static;

    /// Answers one query, between two batches of packets.
    fn answer(&mut self, machine: &mut M, query: Self::Query);
    /// Takes one event of the machine, after the turn's packets went out.
    fn event(&mut self, machine: &M, event: &M::Event);
    /// Ends a turn, after its events (the supernode persists changed leases here).
    fn turn_done(&mut self, _machine: &mut M) {}
}

/// The loop's source of Ethernet frames beside its UDP socket: an edge's [`Tap`], or [`NoTap`].
pub trait Frames<M: Machine> {
    /// Registers the device with the loop's poller under `token`.
    fn register(&self, registry: &Registry, token: Token) -> std::io::Result<()>;
    /// Reads up to [`BATCH`] times into `machine`; false once the device had nothing more queued.
    fn receive(&mut self, machine: &mut M, now: Instant) -> bool;
    /// Writes the frames `machine` queued.
    fn send(&mut self, machine: &mut M);
    /// Acts on an event of the machine (an address assigned to the device).
    fn event(&mut self, event: &M::Event);
}

/// No TAP device: the supernode relays datagrams only.
pub struct NoTap;

impl<M: Machine> Frames<M> for NoTap {
    fn register(&self, _: &Registry, _: Token) -> std::io::Result<()> {
        Ok(())
    }
    fn receive(&mut self, _: &mut M, _: Instant) -> bool {
        false
    }
    fn send(&mut self, _: &mut M) {}
    fn event(&mut self, _: &M::Event) {}
}

impl<M: Switch> Frames<M> for Tap {
    fn register(&self, registry: &Registry, token: Token) -> std::io::Result<()> {
        registry.register(&mut SourceFd(&self.as_raw_fd()), token, Interest::READABLE)
    }

    fn receive(&mut self, machine: &mut M, now: Instant) -> bool {
        for _ in 0..BATCH {
            if let Err(e) = self.recv(|head, tail| machine.handle_tap_frame(now, head, tail)) {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    tracing::debug!("tap receive: {e}");
                }
                return false;
            }
        }
        true
    }

    fn send(&mut self, machine: &mut M) {
        if self.send_all(machine.tap_frames()) > 0 {
            machine.clear_tap_frames();
        }
    }

    fn event(&mut self, event: &M::Event) {
        if let Some(net) = M::assigned_address(event) {
            if let Err(e) = tap::set_address(self.device(), net) {
                tracing::error!("cannot set the TAP address to {net}: {e}");
            }
        }
    }
}

/// Starts the loop on a thread named `weft-data`; the receiver yields its result when it has stopped
/// (after [`crate::dataloop::Remote::stop`], or on an error of epoll).
pub fn spawn<M, F, H>(
    machine: M,
    udp: std::net::UdpSocket,
    frames: F,
    inbox: Inbox<H::Query>,
    hooks: H,
) -> Result<oneshot::Receiver<Result<()>>>
where
    M: Machine + Send + 'static,
    F: Frames<M> + Send + 'static,
    H: Hooks<M> + Send + 'static,
{
    dataloop::spawn("weft-data", move || run(machine, udp, frames, inbox, hooks))
}

/// Whether a source may still have something queued: set by an epoll edge, cleared by `WouldBlock`.
/// Edge-triggered readiness needs this memory, as a turn stops after a batch without draining.
#[derive(Default)]
struct Ready {
    udp: bool,
    tap: bool,
}

/// The loop's state besides the machine and its hooks.
struct Io<F> {
    udp: BatchedUdp,
    frames: F,
    /// Datagrams the machine produced, in order: destination and place in its queue (reused, so a flush
    /// allocates nothing of its own; the packets stay where the machine wrote them).
    datagrams: Vec<(SocketAddr, Range<usize>)>,
}

fn run<M, F, H>(
    mut machine: M,
    udp: std::net::UdpSocket,
    frames: F,
    mut inbox: Inbox<H::Query>,
    mut hooks: H,
) -> Result<()>
where
    M: Machine,
    F: Frames<M>,
    H: Hooks<M>,
{
    let udp = BatchedUdp::new(udp)?;
    inbox.poll.registry().register(
        &mut SourceFd(&udp.socket().as_raw_fd()),
        UDP,
        Interest::READABLE,
    )?;
    frames.register(inbox.poll.registry(), TAP)?;
    tracing::debug!(
        "udp batching: up to {} datagrams per send (GSO), {} per receive buffer (GRO)",
        udp.max_gso_segments(),
        udp.gro_segments()
    );
    let mut io = Io {
        udp,
        frames,
        datagrams: Vec::with_capacity(64),
    };
    let mut ready = Ready::default();
    let mut polled = Events::with_capacity(8);
    flush(&mut machine, &mut io, &mut hooks);
    while !inbox.stopping() {
        // Asked once per turn (the edge's looks at every timer: about 700 instructions, callgrind); what
        // the packets of this turn change is seen at the next.
        let deadline = machine.poll_timeout();
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
                if let Err(e) = io.udp.try_recv(|from, d| machine.handle_udp(now, from, d)) {
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        tracing::debug!("udp receive: {e}");
                    }
                    ready.udp = false;
                    break;
                }
            }
        }
        if ready.tap {
            ready.tap = io.frames.receive(&mut machine, now);
        }
        if now >= deadline {
            machine.handle_timeout(now);
        }
        // Every ask wakes the loop after queueing, so the queue needs a look only after a wake-up.
        while let Some(q) = woken.then(|| inbox.next_query()).flatten() {
            hooks.answer(&mut machine, q);
        }
        flush(&mut machine, &mut io, &mut hooks);
    }
    Ok(())
}

/// Sends what the machine produced (UDP, then TAP), then hands its events to the hooks and the device.
fn flush<M: Machine, F: Frames<M>, H: Hooks<M>>(machine: &mut M, io: &mut Io<F>, hooks: &mut H) {
    io.datagrams.clear();
    io.datagrams
        .extend(machine.transmits().iter().map(|(d, r)| (*d, r)));
    if !io.datagrams.is_empty() {
        // Unreachable networks and the like are logged at debug level; the protocol's timers recover.
        io.udp.send_all(machine.transmits().bytes(), &io.datagrams);
        machine.clear_transmits();
    }
    io.frames.send(machine);
    while let Some(ev) = machine.poll_event() {
        hooks.event(machine, &ev);
        io.frames.event(&ev);
    }
    hooks.turn_done(machine);
}
