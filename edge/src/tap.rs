//! The TAP device, through `tun-rs` (maintained, tokio-native, and it has the offload and multi-queue
//! support the performance work will need; the crate named `tun-tap` is unmaintained).
//!
//! Plain `recv`/`send` of whole Ethernet frames for now: tun-rs's batch/offload helpers assume TUN (an IP
//! header after the virtio header) and misbehave on TAP, see shared/testbed/NOTES.md.

use std::io;

use tun_rs::{AsyncDevice, DeviceBuilder, Layer};
use weft_proto::wire::{Ipv4Net, MacAddr};

/// Creates and brings up the TAP device, with its address when it is static.
pub fn create(
    name: &str,
    mac: MacAddr,
    mtu: u16,
    addr: Option<Ipv4Net>,
) -> io::Result<AsyncDevice> {
    let mut b = DeviceBuilder::new()
        .name(name)
        .layer(Layer::L2)
        .mac_addr(mac.0)
        .mtu(mtu);
    if let Some(net) = addr {
        b = b.ipv4(net.addr, net.prefix, None);
    }
    b.build_async()
}

/// Sets (or replaces) the device's IPv4 address.
pub fn set_address(dev: &AsyncDevice, net: Ipv4Net) -> io::Result<()> {
    dev.set_network_address(net.addr, net.prefix, None)
}
