//! Weft's per-packet machinery, shared by `weft-edge` and `weft-supernode`: batched UDP ([`udp`]), the
//! TAP device and its segmentation offload ([`tap`], [`offload`]), and the thread the data path runs on
//! with the handle the management side reaches it through ([`dataloop`]).

#![forbid(unsafe_code)]

pub mod dataloop;
pub mod offload;
pub mod tap;
pub mod udp;

use std::net::SocketAddr;

use anyhow::{Context, Result};

/// A non-blocking UDP socket with deliberately sized kernel buffers (most loss measured in user-space VPNs
/// here was the receive buffer overflowing). Bound before the tokio runtime exists, so that it can happen
/// before dropping root while the process has one thread.
pub fn bind_udp(addr: SocketAddr, buffer_bytes: usize) -> Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = sock.set_recv_buffer_size(buffer_bytes);
    let _ = sock.set_send_buffer_size(buffer_bytes);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("cannot bind UDP {addr}"))?;
    Ok(sock.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_socket_binds_an_ephemeral_port() {
        let s = bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        assert_ne!(s.local_addr().unwrap().port(), 0);
    }
}
