//! Views of the headers inside the Ethernet frames an edge carries: Ethernet, IPv4, IPv6, TCP and UDP.
//!
//! Modelled on smoltcp's `wire` module: a view wraps a buffer (`T: AsRef<[u8]>`, and `AsMut<[u8]>` for
//! the setters), `new_checked` checks once that the buffer holds the whole header, and the getters and
//! setters then read and write fixed offsets with no further checks the optimiser cannot remove. The
//! offsets are private to each view. Views copy nothing and allocate nothing; the TAP offload code
//! (segmentation, checksums, coalescing) runs them on every packet.
//!
//! `new_unchecked` is for a buffer already checked, such as headers copied from a checked frame; its
//! accessors panic on a buffer too short, which `new_checked` rules out.

pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

pub use ethernet::EthernetFrame;
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use tcp::TcpPacket;
pub use udp::UdpPacket;

/// IP protocol number (IPv4 protocol, IPv6 next header) of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number (IPv4 protocol, IPv6 next header) of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Why a header view could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The buffer is shorter than the header (or than the length the header gives itself).
    #[error("truncated header")]
    Truncated,
    /// A header length field below the header's minimum.
    #[error("malformed header length")]
    Malformed,
}

/// A big-endian `u16` at `at`.
#[inline]
fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// A big-endian `u32` at `at`.
#[inline]
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// No view panics on arbitrary bytes: `new_checked` fails or every accessor works.
        #[test]
        fn new_checked_never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(v) = EthernetFrame::new_checked(&b[..]) {
                let _ = (v.dst_addr(), v.src_addr(), v.ethertype(), v.header(), v.payload());
                if let Ok((at, _)) = v.network_header() {
                    prop_assert!(at <= b.len());
                }
            }
            let _ = ethernet::dst_addr_of_parts(&b[..b.len() / 3], &b[b.len() / 3..]);
            if let Ok(v) = Ipv4Packet::new_checked(&b[..]) {
                let _ = (v.version(), v.dscp_ecn(), v.total_len(), v.ident(), v.is_fragment());
                let _ = (v.ttl(), v.protocol(), v.checksum(), v.src_addr(), v.dst_addr());
                let _ = (v.addr_bytes(), v.header(), v.payload());
                prop_assert!(v.header_len() >= ipv4::HEADER_LEN && v.header_len() <= b.len());
            }
            if let Ok(v) = Ipv6Packet::new_checked(&b[..]) {
                let _ = (v.version(), v.payload_len(), v.next_header(), v.hop_limit());
                let _ = (v.src_addr(), v.dst_addr(), v.addr_bytes(), v.payload());
            }
            if let Ok(v) = TcpPacket::new_checked(&b[..]) {
                let _ = (v.src_port(), v.dst_port(), v.seq_number(), v.ack_number(), v.flags());
                let _ = (v.window_len(), v.checksum(), v.options(), v.header(), v.payload());
                prop_assert!(v.header_len() >= tcp::HEADER_LEN && v.header_len() <= b.len());
            }
            if let Ok(v) = UdpPacket::new_checked(&b[..]) {
                let _ = (v.src_port(), v.dst_port(), v.len(), v.checksum(), v.header(), v.payload());
            }
        }
    }
}
