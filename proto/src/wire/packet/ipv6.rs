//! IPv6 fixed headers (RFC 8200); extension headers are the payload's business.

use std::net::Ipv6Addr;

use super::{get_u16, set_u16, PacketError};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

mod field {
    use std::ops::Range;
    pub(super) const VER_TC_FLOW: usize = 0;
    pub(super) const PAYLOAD_LEN: usize = 4;
    pub(super) const NXT_HDR: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC_ADDR: Range<usize> = 8..24;
    pub(super) const DST_ADDR: Range<usize> = 24..40;
    /// Both addresses, back to back: what the TCP/UDP pseudo-header checksum covers.
    pub(super) const ADDRS: Range<usize> = 8..40;
    pub(super) const PAYLOAD: usize = 40;
}

/// A view of an IPv6 header and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking it (see the module of views for when that is right).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` if it holds the whole fixed header. The payload length field is not checked
    /// against the buffer: a segmentation-offload frame need not fill it in.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>, PacketError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        Ok(Ipv6Packet { buffer })
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (6 in a real IPv6 header; not checked by `new_checked`).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// The payload length field: everything after the fixed header, in bytes.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// The next header: the protocol of the payload, such as [`super::IPPROTO_UDP`], or an extension.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// The hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv6Addr::from(a)
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv6Addr::from(a)
    }

    /// Source and destination address as they sit in the header (32 bytes): the part of the TCP/UDP
    /// pseudo-header that comes from the IP header.
    #[inline]
    pub fn addr_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ADDRS]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// Everything after the fixed header, to the end of the buffer.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the payload length field.
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::packet::IPPROTO_UDP;

    fn packet() -> [u8; 43] {
        let mut b = [0u8; 43];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&3u16.to_be_bytes());
        b[6] = IPPROTO_UDP;
        b[7] = 255;
        b[8] = 0xfd;
        b[23] = 1;
        b[24] = 0xfd;
        b[39] = 2;
        b[40..].copy_from_slice(&[1, 2, 3]);
        b
    }

    #[test]
    fn reads_fields() {
        let b = packet();
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 3);
        assert_eq!((p.next_header(), p.hop_limit()), (IPPROTO_UDP, 255));
        assert_eq!(p.src_addr(), "fd00::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "fd00::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.addr_bytes(), &b[8..40]);
        assert_eq!(p.payload(), &[1, 2, 3]);
    }

    #[test]
    fn truncated_is_an_error() {
        let b = packet();
        for n in 0..HEADER_LEN {
            assert_eq!(
                Ipv6Packet::new_checked(&b[..n]),
                Err(PacketError::Truncated)
            );
        }
        assert!(Ipv6Packet::new_checked(&b[..40])
            .unwrap()
            .payload()
            .is_empty());
    }

    #[test]
    fn set_get_round_trip() {
        let mut b = packet();
        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        p.set_payload_len(0x1234);
        assert_eq!(p.payload_len(), 0x1234);
        assert_eq!(b[4..6], [0x12, 0x34]);
    }
}
