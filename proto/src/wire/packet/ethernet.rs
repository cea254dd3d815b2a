//! Ethernet II frames: destination and source MAC address, EtherType, payload.

use super::{get_u16, set_u16, PacketError};
use crate::wire::MacAddr;

/// Length of an Ethernet header without VLAN tags.
pub const HEADER_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of an 802.1ad (QinQ) service tag.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;

mod field {
    use std::ops::Range;
    pub(super) const DST: Range<usize> = 0..6;
    pub(super) const SRC: Range<usize> = 6..12;
    pub(super) const ETHERTYPE: usize = 12;
    pub(super) const PAYLOAD: usize = 14;
    /// Behind one VLAN tag (two bytes of tag control information): the inner EtherType.
    pub(super) const VLAN_ETHERTYPE: usize = 16;
    pub(super) const VLAN_PAYLOAD: usize = 18;
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking it (see the module of views for when that is right).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` if it holds a whole Ethernet header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>, PacketError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        Ok(EthernetFrame { buffer })
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        MacAddr(m)
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        MacAddr(m)
    }

    /// The EtherType (of the outer tag, if the frame is VLAN-tagged).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// The header's 14 bytes: both addresses and the EtherType.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN]
    }

    /// Where the network-layer header starts in the frame, and its EtherType, looking through one
    /// 802.1Q or 802.1ad tag. The offset is at most the frame's length.
    #[inline]
    pub fn network_header(&self) -> Result<(usize, u16), PacketError> {
        let b = self.buffer.as_ref();
        match self.ethertype() {
            ETHERTYPE_VLAN | ETHERTYPE_QINQ => {
                if b.len() < field::VLAN_PAYLOAD {
                    return Err(PacketError::Truncated);
                }
                Ok((field::VLAN_PAYLOAD, get_u16(b, field::VLAN_ETHERTYPE)))
            }
            t => Ok((field::PAYLOAD, t)),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// Everything after the 14-byte header (a VLAN tag, if any, included).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0);
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        set_u16(self.buffer.as_mut(), field::ETHERTYPE, t);
    }

    /// Everything after the 14-byte header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// The destination address of a frame given in two parts, `head` followed by `tail` (the form in which
/// a segmentation-offload read is handed over: rebuilt headers, then a slice of the large payload),
/// where the cut may fall anywhere, even inside the addresses. Fails unless the two hold a whole
/// Ethernet header.
#[inline]
pub fn dst_addr_of_parts(head: &[u8], tail: &[u8]) -> Result<MacAddr, PacketError> {
    if head.len() + tail.len() < HEADER_LEN {
        return Err(PacketError::Truncated);
    }
    if head.len() >= HEADER_LEN {
        return Ok(EthernetFrame::new_unchecked(head).dst_addr());
    }
    let mut m = [0u8; 6];
    for (d, s) in m.iter_mut().zip(head.iter().chain(tail)) {
        *d = *s;
    }
    Ok(MacAddr(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0,
    ];

    #[test]
    fn reads_fields() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr::BROADCAST);
        assert_eq!(f.src_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(f.network_header(), Ok((14, ETHERTYPE_IPV4)));
        assert_eq!(f.header(), &FRAME[..14]);
        assert_eq!(f.payload(), &[0x45, 0]);
    }

    #[test]
    fn truncated_is_an_error() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&FRAME[..n]),
                Err(PacketError::Truncated)
            );
        }
        assert!(EthernetFrame::new_checked(&FRAME[..14])
            .unwrap()
            .payload()
            .is_empty());
    }

    #[test]
    fn looks_through_one_vlan_tag() {
        let mut b = [0u8; 18];
        let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
        f.set_ethertype(ETHERTYPE_VLAN);
        // Tag control information, then the inner EtherType.
        f.payload_mut()[2..4].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        assert_eq!(f.network_header(), Ok((18, ETHERTYPE_IPV6)));
        f.set_ethertype(ETHERTYPE_QINQ);
        assert_eq!(f.network_header(), Ok((18, ETHERTYPE_IPV6)));
        let short = EthernetFrame::new_checked(&b[..17]).unwrap();
        assert_eq!(short.network_header(), Err(PacketError::Truncated));
    }

    #[test]
    fn set_get_round_trip() {
        let mut b = [0u8; 20];
        let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
        f.set_dst_addr(MacAddr([1, 2, 3, 4, 5, 6]));
        f.set_src_addr(MacAddr([7, 8, 9, 10, 11, 12]));
        f.set_ethertype(0x88b5);
        assert_eq!(f.dst_addr(), MacAddr([1, 2, 3, 4, 5, 6]));
        assert_eq!(f.src_addr(), MacAddr([7, 8, 9, 10, 11, 12]));
        assert_eq!(f.ethertype(), 0x88b5);
        assert_eq!(b[..14], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x88, 0xb5]);
    }

    #[test]
    fn destination_of_a_frame_cut_anywhere() {
        for cut in 0..=FRAME.len() {
            let (head, tail) = FRAME.split_at(cut);
            assert_eq!(
                dst_addr_of_parts(head, tail),
                Ok(MacAddr::BROADCAST),
                "cut {cut}"
            );
        }
        let mut other = FRAME;
        other[..6].copy_from_slice(&[2, 4, 6, 8, 10, 12]);
        let (head, tail) = other.split_at(3);
        assert_eq!(
            dst_addr_of_parts(head, tail),
            Ok(MacAddr([2, 4, 6, 8, 10, 12]))
        );
        assert_eq!(
            dst_addr_of_parts(&FRAME[..7], &FRAME[7..13]),
            Err(PacketError::Truncated)
        );
    }
}
