//! TCP headers (RFC 9293).

use super::{get_u16, get_u32, set_u16, set_u32, PacketError};

/// Length of a TCP header without options: the least a header can be.
pub const HEADER_LEN: usize = 20;
/// Where the checksum field sits in the header: what a virtio-net header's `csum_offset` names when it
/// asks for the checksum to be completed.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// FIN: the sender has no more data.
pub const FLAG_FIN: u8 = 0x01;
/// SYN: synchronise sequence numbers.
pub const FLAG_SYN: u8 = 0x02;
/// RST: reset the connection.
pub const FLAG_RST: u8 = 0x04;
/// PSH: push the data to the application.
pub const FLAG_PSH: u8 = 0x08;
/// ACK: the acknowledgement number is valid.
pub const FLAG_ACK: u8 = 0x10;
/// URG: the urgent pointer is valid.
pub const FLAG_URG: u8 = 0x20;
/// ECE: ECN echo.
pub const FLAG_ECE: u8 = 0x40;
/// CWR: congestion window reduced.
pub const FLAG_CWR: u8 = 0x80;

mod field {
    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const SEQ_NUM: usize = 4;
    pub(super) const ACK_NUM: usize = 8;
    /// The data offset: the header length in 32-bit words, in the high nibble.
    pub(super) const DATA_OFF: usize = 12;
    pub(super) const FLAGS: usize = 13;
    pub(super) const WIN_SIZE: usize = 14;
    pub(super) const CHECKSUM: usize = 16;
    pub(super) const OPTIONS: usize = 20;
}

/// A view of a TCP header and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it (see the module of views for when that is right).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` if it holds the whole header, options included.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>, PacketError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(PacketError::Truncated);
        }
        let p = TcpPacket { buffer };
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

    /// The sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// The acknowledgement number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// The header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        (self.buffer.as_ref()[field::DATA_OFF] >> 4) as usize * 4
    }

    /// The flag byte (`FLAG_*`; the three reserved bits and NS beside the data offset are not in it).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The window size field.
    #[inline]
    pub fn window_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The options, as bytes.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// The header's bytes, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The segment's data: everything after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let b = self.buffer.as_ref();
        &b[(b[field::DATA_OFF] >> 4) as usize * 4..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::SEQ_NUM, v);
    }

    /// Sets the flag byte.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
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

    /// Port 5000 to 80, seq 0xfffffff0, ack 7, 24-byte header (one 4-byte option), PSH|ACK, then data.
    const SEGMENT: [u8; 27] = [
        0x13,
        0x88,
        0x00,
        0x50,
        0xff,
        0xff,
        0xff,
        0xf0,
        0,
        0,
        0,
        7,
        6 << 4,
        0x18,
        0x01,
        0x00,
        0xab,
        0xcd,
        0,
        0,
        2,
        4,
        5,
        180,
        1,
        2,
        3,
    ];

    #[test]
    fn reads_fields() {
        let p = TcpPacket::new_checked(&SEGMENT[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (5000, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (0xffff_fff0, 7));
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), FLAG_PSH | FLAG_ACK);
        assert_eq!((p.window_len(), p.checksum()), (256, 0xabcd));
        assert_eq!(p.options(), &[2, 4, 5, 180]);
        assert_eq!(p.header(), &SEGMENT[..24]);
        assert_eq!(p.payload(), &[1, 2, 3]);
    }

    #[test]
    fn truncated_or_malformed_is_an_error() {
        for n in 0..24 {
            assert_eq!(
                TcpPacket::new_checked(&SEGMENT[..n]),
                Err(PacketError::Truncated)
            );
        }
        let mut b = SEGMENT;
        b[12] = 4 << 4;
        assert_eq!(TcpPacket::new_checked(&b[..]), Err(PacketError::Malformed));
        b[12] = 15 << 4; // 60 bytes of header
        assert_eq!(TcpPacket::new_checked(&b[..]), Err(PacketError::Truncated));
        assert!(TcpPacket::new_checked(&SEGMENT[..24])
            .unwrap()
            .payload()
            .is_empty());
    }

    #[test]
    fn set_get_round_trip() {
        let mut b = SEGMENT;
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        p.set_seq_number(0x0102_0304);
        p.set_flags(FLAG_FIN | FLAG_SYN | FLAG_RST | FLAG_URG | FLAG_ECE | FLAG_CWR);
        p.set_checksum(0xfeed);
        assert_eq!(p.seq_number(), 0x0102_0304);
        assert_eq!(p.flags(), 0xe7);
        assert_eq!(p.checksum(), 0xfeed);
        assert_eq!(b[4..8], [1, 2, 3, 4]);
        assert_eq!(b[13], 0xe7);
        assert_eq!(b[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2], [0xfe, 0xed]);
    }
}
