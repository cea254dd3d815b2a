//! The codec every message is built from: a [`Codec`] per type (its encoding and decoding side by side),
//! a bounds-checked [`Reader`], and the field types several messages share (keys, socket addresses, the
//! local address list, short text).
//!
//! Integers are big-endian except the session indices and the data packet counter, which are
//! little-endian (they sit on the data path and are compared, not displayed); each read and write names
//! its byte order so the exception cannot slip.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{DecodeError, MsgType, HEADER_LEN, MAX_DESCRIPTION_LEN, MAX_LOCAL_ADDRS, VERSION};
use crate::keys::{CommunityId, PeerTag, PublicKey};

/// A type with one wire encoding. For a message, `encode` writes the whole datagram (common header
/// included) and `read` reads what follows the header, finding the header's `aux` byte in the reader;
/// for a field, both cover just the field.
pub(crate) trait Codec<'a>: Sized {
    /// Appends the encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one value, or fails without panicking whatever the input.
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
}

/// Appends the common header: `version | type | aux | reserved`.
#[inline]
pub(crate) fn put_header(out: &mut Vec<u8>, t: MsgType, aux: u8) {
    out.extend_from_slice(&[VERSION, t as u8, aux, 0]);
}

/// A bounds-checked cursor over a datagram's body: every read either succeeds or returns
/// [`DecodeError::Truncated`], and nothing is copied that the caller did not ask for.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    aux: u8,
}

impl<'a> Reader<'a> {
    /// The body of `datagram`, after its common header (whose version and type the caller checked).
    #[inline]
    pub(crate) fn after_header(datagram: &'a [u8]) -> Result<Reader<'a>, DecodeError> {
        match (datagram.get(2), datagram.get(HEADER_LEN..)) {
            (Some(&aux), Some(buf)) => Ok(Reader { buf, aux }),
            _ => Err(DecodeError::Truncated),
        }
    }

    /// The header's `aux` byte: a data packet's kind or a message's flags.
    #[inline]
    pub(crate) fn aux(&self) -> u8 {
        self.aux
    }

    /// Reads one `T`.
    #[inline]
    pub(crate) fn read<T: Codec<'a>>(&mut self) -> Result<T, DecodeError> {
        T::read(self)
    }

    /// Reads a message of fixed layout, which must end the datagram. (Always inlined: the message is
    /// then built in place instead of being moved out of a call: 4 % of the instructions of a REGISTER.)
    #[inline(always)]
    pub(crate) fn read_all<T: Codec<'a>>(&mut self) -> Result<T, DecodeError> {
        let m = T::read(self)?;
        self.finish()?;
        Ok(m)
    }

    /// The next `n` bytes, borrowed.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next `N` bytes, copied.
    #[inline]
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    pub(crate) fn u16_be(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    #[inline]
    pub(crate) fn u32_le(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    #[inline]
    pub(crate) fn u64_be(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    #[inline]
    pub(crate) fn u64_le(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Everything left, borrowed (an enclosed packet or a sealed payload).
    #[inline]
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Fails with [`DecodeError::Trailing`] unless everything was read.
    #[inline]
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing)
        }
    }
}

/// Fixed-size identifiers: their bytes, as they are.
macro_rules! fixed_codec {
    ($($t:ty),*) => {$(
        impl Codec<'_> for $t {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
            #[inline]
            fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self(r.array()?))
            }
        }
    )*};
}

fixed_codec!(CommunityId, PublicKey, PeerTag);

/// A socket address: family (4 or 6), the address, the port (big-endian).
impl Codec<'_> for SocketAddr {
    fn encode(&self, out: &mut Vec<u8>) {
        match self.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&self.port().to_be_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ip = match r.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
            _ => return Err(DecodeError::Invalid("address family")),
        };
        Ok(SocketAddr::new(ip, r.u16_be()?))
    }
}

/// A list of local addresses: a count byte, then at most [`MAX_LOCAL_ADDRS`] socket addresses (the
/// encoder sends the first ones of a longer list).
impl Codec<'_> for Vec<SocketAddr> {
    fn encode(&self, out: &mut Vec<u8>) {
        let v = &self[..self.len().min(MAX_LOCAL_ADDRS)];
        out.push(v.len() as u8);
        for a in v {
            a.encode(out);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.u8()? as usize;
        if n > MAX_LOCAL_ADDRS {
            return Err(DecodeError::Invalid("too many local addresses"));
        }
        // Bounded by MAX_LOCAL_ADDRS, never by what the sender claims.
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(r.read()?);
        }
        Ok(v)
    }
}

/// Short text (a description, a community name): a length byte, then at most
/// [`MAX_DESCRIPTION_LEN`] bytes of UTF-8 (the encoder cuts a longer text at a character boundary).
impl Codec<'_> for String {
    fn encode(&self, out: &mut Vec<u8>) {
        let b = truncate_utf8(self, MAX_DESCRIPTION_LEN).as_bytes();
        out.push(b.len() as u8);
        out.extend_from_slice(b);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.u8()? as usize;
        if n > MAX_DESCRIPTION_LEN {
            return Err(DecodeError::Invalid("description too long"));
        }
        // Invalid bytes become U+FFFD, three bytes each: cut the result back to the length it had on the
        // wire, so a description never outgrows its datagram or MAX_DESCRIPTION_LEN, and a decoded
        // message re-encodes to itself (the encoder would cut a longer one).
        let s = String::from_utf8_lossy(r.take(n)?);
        Ok(truncate_utf8(&s, n).to_string())
    }
}

/// The longest prefix of `s` that fits in `max` bytes without splitting a character.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode, MacAddr, Message, PeerInfo};

    #[test]
    fn truncate_utf8_keeps_whole_characters() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
    }

    #[test]
    fn invalid_utf8_description_stays_within_its_wire_length() {
        // 64 bytes that are not UTF-8 would become 64 three-byte U+FFFD characters.
        let mut b = Vec::new();
        PeerInfo {
            community: CommunityId([1; 8]),
            punch: false,
            public_key: PublicKey([4; 32]),
            mac: MacAddr([2, 1, 2, 3, 4, 5]),
            ip: None,
            observed: "192.0.2.1:1".parse().unwrap(),
            local_addrs: vec![],
            description: "x".repeat(MAX_DESCRIPTION_LEN),
        }
        .encode(&mut b);
        let n = b.len();
        b[n - MAX_DESCRIPTION_LEN..].fill(0xff);
        let Ok(Message::PeerInfo(p)) = decode(&b) else {
            panic!("does not decode")
        };
        assert!(p.description.len() <= MAX_DESCRIPTION_LEN);
        assert!(p.description.starts_with('\u{fffd}'));
        let mut again = Vec::new();
        p.encode(&mut again);
        assert_eq!(decode(&again), Ok(Message::PeerInfo(p)));
    }

    #[test]
    fn reader_never_reads_past_the_end() {
        let body = [1, 2, 3];
        let mut r = Reader { buf: &body, aux: 0 };
        assert_eq!(r.u16_be(), Ok(0x0102));
        assert_eq!(r.u16_be(), Err(DecodeError::Truncated));
        assert_eq!(r.finish(), Err(DecodeError::Trailing));
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(r.finish(), Ok(()));
        assert!(Reader::after_header(&[1, 2, 3]).is_err());
    }
}
