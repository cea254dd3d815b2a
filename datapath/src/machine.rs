//! What the event loop ([`crate::driver`]) needs of a protocol state machine, and how the edge and the
//! supernode of `weft-proto` provide it through their public API.
//!
//! Both machines are sans-IO: they take datagrams (and, for the edge, Ethernet frames) and the time, and
//! leave what to send in output queues that the loop drains in place. [`Machine`] is that contract on the
//! UDP side; [`Switch`] adds the TAP side, which only the edge has.

use std::net::SocketAddr;
use std::time::Instant;

use weft_proto::edge::{Edge, Event};
use weft_proto::queue::PacketQueue;
use weft_proto::supernode::{Supernode, SupernodeEvent};
use weft_proto::wire::Ipv4Net;

/// A state machine driven by datagrams and timers.
///
/// The calling contract the loop keeps: ask [`Machine::poll_timeout`] once per turn; feed what arrived
/// with [`Machine::handle_udp`]; call [`Machine::handle_timeout`] once the deadline has passed; then send
/// [`Machine::transmits`] and [`Machine::clear_transmits`] them, and drain [`Machine::poll_event`].
pub trait Machine {
    /// What the machine reports to its daemon (a peer came up, an edge registered, ...).
    type Event;

    /// When [`Machine::handle_timeout`] must be called next.
    fn poll_timeout(&self) -> Instant;
    /// One datagram from `from` (the machine may decrypt it in place).
    fn handle_udp(&mut self, now: Instant, from: SocketAddr, datagram: &mut [u8]);
    /// Runs the timers due at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// The datagrams to send, oldest first, back to back in one buffer.
    fn transmits(&self) -> &PacketQueue<SocketAddr>;
    /// Forgets the datagrams [`Machine::transmits`] showed.
    fn clear_transmits(&mut self);
    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// An ICMP error said a datagram sent to `dest` met a link that carries IP packets of at most `mtu`
    /// bytes (read from the socket's error queue). A hint only: machines that do not search the path MTU
    /// ignore it.
    fn handle_path_mtu_hint(&mut self, now: Instant, dest: SocketAddr, mtu: u16) {
        let _ = (now, dest, mtu);
    }
}

/// The TAP side of a machine that is a port of a virtual Ethernet switch (the edge).
pub trait Switch: Machine {
    /// One frame read from the TAP device, given as a head and a tail (the offload code cuts a large
    /// segment into frames whose headers and payload lie apart).
    fn handle_tap_frame(&mut self, now: Instant, head: &[u8], tail: &[u8]);
    /// The frames to write to the TAP device, oldest first, back to back in one buffer.
    fn tap_frames(&self) -> &PacketQueue<()>;
    /// Forgets the frames [`Switch::tap_frames`] showed.
    fn clear_tap_frames(&mut self);
    /// The address an event gives the TAP device, if it gives one.
    fn assigned_address(event: &Self::Event) -> Option<Ipv4Net>;
}

impl Machine for Edge {
    type Event = Event;

    #[inline]
    fn poll_timeout(&self) -> Instant {
        Edge::poll_timeout(self)
    }
    #[inline]
    fn handle_udp(&mut self, now: Instant, from: SocketAddr, datagram: &mut [u8]) {
        Edge::handle_udp(self, now, from, datagram)
    }
    #[inline]
    fn handle_timeout(&mut self, now: Instant) {
        Edge::handle_timeout(self, now)
    }
    #[inline]
    fn transmits(&self) -> &PacketQueue<SocketAddr> {
        Edge::transmits(self)
    }
    #[inline]
    fn clear_transmits(&mut self) {
        Edge::clear_transmits(self)
    }
    #[inline]
    fn poll_event(&mut self) -> Option<Event> {
        Edge::poll_event(self)
    }
    #[inline]
    fn handle_path_mtu_hint(&mut self, now: Instant, dest: SocketAddr, mtu: u16) {
        Edge::handle_path_mtu_hint(self, now, dest, mtu)
    }
}

impl Switch for Edge {
    #[inline]
    fn handle_tap_frame(&mut self, now: Instant, head: &[u8], tail: &[u8]) {
        Edge::handle_tap_frame_parts(self, now, head, tail)
    }
    #[inline]
    fn tap_frames(&self) -> &PacketQueue<()> {
        Edge::tap_frames(self)
    }
    #[inline]
    fn clear_tap_frames(&mut self) {
        Edge::clear_tap_frames(self)
    }
    #[inline]
    fn assigned_address(event: &Event) -> Option<Ipv4Net> {
        match event {
            Event::AddressAssigned(net) => Some(*net),
            _ => None,
        }
    }
}

impl Machine for Supernode {
    type Event = SupernodeEvent;

    #[inline]
    fn poll_timeout(&self) -> Instant {
        Supernode::poll_timeout(self)
    }
    #[inline]
    fn handle_udp(&mut self, now: Instant, from: SocketAddr, datagram: &mut [u8]) {
        Supernode::handle_udp(self, now, from, datagram)
    }
    #[inline]
    fn handle_timeout(&mut self, now: Instant) {
        Supernode::handle_timeout(self, now)
    }
    #[inline]
    fn transmits(&self) -> &PacketQueue<SocketAddr> {
        Supernode::transmits(self)
    }
    #[inline]
    fn clear_transmits(&mut self) {
        Supernode::clear_transmits(self)
    }
    #[inline]
    fn poll_event(&mut self) -> Option<SupernodeEvent> {
        Supernode::poll_event(self)
    }
}
