//! Weft's per-packet machinery, shared by `weft-edge` and `weft-supernode`: batched UDP ([`udp`]); the
//! TAP device ([`tap`]), its reading and writing ([`tap_io`]) and its segmentation offload ([`offload`]);
//! and the one event loop that drives either daemon's protocol state machine ([`driver`], over the traits
//! of [`machine`]) on a thread of its own, with the handle the management side reaches it through
//! ([`dataloop`]).

#![forbid(unsafe_code)]

pub mod dataloop;
pub mod driver;
pub mod machine;
pub mod offload;
pub mod send_failures;
pub mod tap;
pub mod tap_io;
pub mod udp;

pub use udp::bind_udp;
