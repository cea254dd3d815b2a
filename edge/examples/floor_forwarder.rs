//! The floor under any user-space TAP tunnel on a given machine: frames from a TAP device go into UDP
//! datagrams to one peer and back, with no header, no cipher and no state. The benchmark (`bench/run`)
//! runs it beside Weft and the other VPNs, so that the latency and throughput a tunnel costs can be split
//! into what the kernel and the wake-ups charge every user-space design here, and what the VPN adds on top.
//!
//! Its loop has the shape of the edge's data path (one thread, epoll through mio, each source drained to
//! `WouldBlock` after a wake-up), without batching or offload, so per-packet figures are an upper bound on
//! what the plumbing costs, not a faster tunnel.
//!
//! Usage (as root, in the namespace of one end): `floor_forwarder <tap-name> <mtu> <bind ip:port> <peer ip:port>`;
//! the caller sets the device's address and brings it up. Runs until killed.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tun_rs::{DeviceBuilder, Layer};

const TAP: Token = Token(0);
const UDP: Token = Token(1);

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: floor_forwarder <tap-name> <mtu> <bind ip:port> <peer ip:port>");
        std::process::exit(2);
    }
    let bad = |what: &str| std::io::Error::new(ErrorKind::InvalidInput, what.to_string());
    let mtu: u16 = args[2].parse().map_err(|_| bad("mtu"))?;
    let bind: SocketAddr = args[3].parse().map_err(|_| bad("bind address"))?;
    let peer: SocketAddr = args[4].parse().map_err(|_| bad("peer address"))?;

    let tap = DeviceBuilder::new()
        .name(&args[1])
        .layer(Layer::L2)
        .mtu(mtu)
        .build_sync()?;
    tap.set_nonblocking(true)?;
    let udp = UdpSocket::bind(bind)?;
    udp.set_nonblocking(true)?;

    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut SourceFd(&tap.as_raw_fd()), TAP, Interest::READABLE)?;
    poll.registry()
        .register(&mut SourceFd(&udp.as_raw_fd()), UDP, Interest::READABLE)?;
    let mut events = Events::with_capacity(4);
    let mut buf = vec![0u8; 65536];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            // Edge-triggered: drain to WouldBlock. Other errors (an ICMP error queued on the socket) are
            // consumed by the call that reports them.
            if ev.token() == TAP {
                loop {
                    match tap.recv(&mut buf) {
                        Ok(n) => drop(udp.send_to(&buf[..n], peer)),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {}
                    }
                }
            } else {
                loop {
                    match udp.recv(&mut buf) {
                        Ok(n) => drop(tap.send(&buf[..n])),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {}
                    }
                }
            }
        }
    }
}
