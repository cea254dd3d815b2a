//! The TAP device, through `tun-rs` (maintained, and it has the offload and multi-queue
//! support the performance work will need; the crate named `tun-tap` is unmaintained).
//!
//! With offload, the device is created with `IFF_VNET_HDR` and TSO/USO enabled: reads return large segments
//! behind a virtio-net header, which `offload` cuts into wire-size frames (tun-rs's own batch/offload helpers
//! assume TUN, an IP header right after the virtio-net header, and misbehave on TAP, whose frames start with
//! an Ethernet header).

use std::io;

use tun_rs::{DeviceBuilder, Layer, SyncDevice};
use weft_proto::wire::{Ipv4Net, MacAddr};

/// Creates and brings up the TAP device, with its address when it is static, and with segmentation
/// offload when `offload` is set.
pub fn create(
    name: &str,
    mac: MacAddr,
    mtu: u16,
    addr: Option<Ipv4Net>,
    offload: bool,
) -> io::Result<SyncDevice> {
    let mut b = DeviceBuilder::new()
        .name(name)
        .layer(Layer::L2)
        .mac_addr(mac.0)
        .mtu(mtu)
        .offload(offload);
    if let Some(net) = addr {
        b = b.ipv4(net.addr, net.prefix, None);
    }
    b.build_sync()
}

/// Sets (or replaces) the device's IPv4 address.
pub fn set_address(dev: &SyncDevice, net: Ipv4Net) -> io::Result<()> {
    dev.set_network_address(net.addr, net.prefix, None)
}
