//! UDP headers (RFC 768).

use super::{get_u16, set_u16, PacketError};

/// Length of a UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const LENGTH: usize = 4;
    pub(super) const CHECKSUM: usize = 6;
    pub(super) const PAYLOAD: usize = 8;
}

/// A view of a UDP header and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checking it (see the module of views for when that is right).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` if it holds the whole header. The length field is not checked against the buffer:
    /// a segmentation-offload frame need not fill it in.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>, PacketError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        Ok(UdpPacket { buffer })
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// The destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field: header and payload, in bytes.
    #[inline]
    #[allow(clippy::len_without_is_empty)] // a header field, not a container's size
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The checksum field (0: none sent, over IPv4).
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The header's 8 bytes.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// Everything after the header, to the end of the buffer.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATAGRAM: [u8; 11] = [0x1e, 0x79, 0x00, 0x35, 0x00, 0x0b, 0x12, 0x34, 7, 8, 9];

    #[test]
    fn reads_fields() {
        let p = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (7801, 53));
        assert_eq!((p.len(), p.checksum()), (11, 0x1234));
        assert_eq!(p.header(), &DATAGRAM[..8]);
        assert_eq!(p.payload(), &[7, 8, 9]);
    }

    #[test]
    fn truncated_is_an_error() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                UdpPacket::new_checked(&DATAGRAM[..n]),
                Err(PacketError::Truncated)
            );
        }
        assert!(UdpPacket::new_checked(&DATAGRAM[..8])
            .unwrap()
            .payload()
            .is_empty());
    }

    #[test]
    fn set_get_round_trip() {
        let mut b = DATAGRAM;
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.set_len(1008);
        p.set_checksum(0xffff);
        assert_eq!((p.len(), p.checksum()), (1008, 0xffff));
        assert_eq!(b[4..8], [0x03, 0xf0, 0xff, 0xff]);
    }
}
