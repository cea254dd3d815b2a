//! IPv4 headers (RFC 791).

use std::net::Ipv4Addr;

use super::{get_u16, set_u16, PacketError};

/// Length of an IPv4 header without options: the least a header can be.
pub const HEADER_LEN: usize = 20;

mod field {
    use std::ops::Range;
    pub(super) const VER_IHL: usize = 0;
    pub(super) const DSCP_ECN: usize = 1;
    pub(super) const LENGTH: usize = 2;
    pub(super) const IDENT: usize = 4;
    pub(super) const FLG_OFF: usize = 6;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: usize = 10;
    pub(super) const SRC_ADDR: Range<usize> = 12..16;
    pub(super) const DST_ADDR: Range<usize> = 16..20;
    /// Both addresses, back to back: what the TCP/UDP pseudo-header checksum covers.
    pub(super) const ADDRS: Range<usize> = 12..20;
}

/// Flag and fragment-offset bits of the `FLG_OFF` field.
const MORE_FRAGS: u16 = 0x2000;
const FRAG_OFFSET: u16 = 0x1fff;

/// A view of an IPv4 header and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it (see the module of views for when that is right).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` if it holds the whole header, options included. The total length field is not
    /// checked against the buffer: a segmentation-offload frame need not fill it in.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>, PacketError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        let p = Ipv4Packet { buffer };
        if p.header_len() < HEADER_LEN {
            return Err(PacketError::Malformed);
        }
        if len < p.header_len() {
            return Err(PacketError::Truncated);
        }
        Ok(p)
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (4 in a real IPv4 header; not checked by `new_checked`).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize * 4
    }

    /// The DSCP and ECN bits (the former type-of-service byte).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// The total length field: header and payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Whether this is a fragment: more fragments follow, or it starts past offset 0.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & (MORE_FRAGS | FRAG_OFFSET) != 0
    }

    /// The time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload, such as [`super::IPPROTO_TCP`].
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv4Addr::from(a)
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv4Addr::from(a)
    }

    /// Source and destination address as they sit in the header (8 bytes): the part of the TCP/UDP
    /// pseudo-header that comes from the IP header.
    #[inline]
    pub fn addr_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ADDRS]
    }

    /// The header's bytes, options included: what the header checksum covers.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// Everything after the header, to the end of the buffer (not cut to the total length field).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let b = self.buffer.as_ref();
        &b[(b[field::VER_IHL] & 0x0f) as usize * 4..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the total length field.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the identification field.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets the header checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::packet::IPPROTO_TCP;

    /// 10.0.0.1 to 10.0.0.2, TCP, DF set, no options, then two payload bytes.
    const PACKET: [u8; 22] = [
        0x45, 0xb8, 0x00, 0x16, 0x03, 0xe8, 0x40, 0x00, 64, 6, 0x12, 0x34, 10, 0, 0, 1, 10, 0, 0,
        2, 0xaa, 0xbb,
    ];

    #[test]
    fn reads_fields() {
        let p = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!((p.version(), p.header_len()), (4, 20));
        assert_eq!(p.dscp_ecn(), 0xb8);
        assert_eq!(p.total_len(), 22);
        assert_eq!(p.ident(), 1000);
        assert!(!p.is_fragment(), "DF alone is not a fragment");
        assert_eq!(
            (p.ttl(), p.protocol(), p.checksum()),
            (64, IPPROTO_TCP, 0x1234)
        );
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.addr_bytes(), &PACKET[12..20]);
        assert_eq!(p.header(), &PACKET[..20]);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn fragments_are_recognised() {
        for (flg_off, frag) in [
            (0x2000u16, true),
            (0x0001, true),
            (0x4000, false),
            (0x8000, false),
        ] {
            let mut b = PACKET;
            b[6..8].copy_from_slice(&flg_off.to_be_bytes());
            assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().is_fragment(), frag);
        }
    }

    #[test]
    fn truncated_or_malformed_is_an_error() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                Ipv4Packet::new_checked(&PACKET[..n]),
                Err(PacketError::Truncated)
            );
        }
        let mut b = PACKET;
        b[0] = 0x44; // a 16-byte header cannot be
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(PacketError::Malformed));
        b[0] = 0x46; // 24 bytes of header, 22 in the buffer
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(PacketError::Truncated));
        b[0] = 0x45;
        assert!(Ipv4Packet::new_checked(&b[..20])
            .unwrap()
            .payload()
            .is_empty());
    }

    #[test]
    fn options_are_part_of_the_header() {
        let mut b = [0u8; 28];
        b[..20].copy_from_slice(&PACKET[..20]);
        b[0] = 0x46;
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.header().len(), 24);
        assert_eq!(p.payload().len(), 4);
    }

    #[test]
    fn set_get_round_trip() {
        let mut b = PACKET;
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_total_len(1500);
        p.set_ident(0xfffe);
        p.set_checksum(0xbeef);
        assert_eq!(
            (p.total_len(), p.ident(), p.checksum()),
            (1500, 0xfffe, 0xbeef)
        );
        assert_eq!(b[2..6], [0x05, 0xdc, 0xff, 0xfe]);
        assert_eq!(b[10..12], [0xbe, 0xef]);
    }
}
