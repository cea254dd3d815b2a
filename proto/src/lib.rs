//! The Weft protocol core, sans-IO.
//!
//! Wire format ([`wire`]), community secrets ([`secret`]) and keys ([`keys`]), the Noise handshake
//! ([`handshake`]) and its MACs and cookies ([`handshake_mac`]), the edge-to-supernode control channel's
//! handshake ([`control`]), transport sessions with a replay window ([`session`], [`replay`]), and the
//! state machines of an edge ([`edge`]) and a supernode ([`supernode`]). Nothing here opens a socket, reads
//! a clock or spawns a task: the daemons drive these types with datagrams, frames and the current time,
//! and the simulator in `tests/sim/` drives them with a virtual network and virtual time. `PROTOCOL.md` in
//! this crate specifies the wire protocol.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bucket;
pub mod control;
pub mod edge;
pub mod handshake;
pub mod handshake_mac;
pub mod keys;
pub mod queue;
pub mod replay;
pub mod secret;
pub mod session;
pub mod supernode;
pub mod wire;

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub dest: std::net::SocketAddr,
    /// The bytes.
    pub payload: Vec<u8>,
}
