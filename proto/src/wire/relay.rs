//! The relay path: an edge-to-edge packet the supernode forwards, behind a relay header that names the
//! edge at the far end by its tag (RELAY from the sending edge, RELAYED to the receiving one), and the
//! same between federated supernodes (FED_RELAY).
//!
//! [`RelayPacket`] is a view for the receiving edge's data path: it reads the tag and hands out the
//! enclosed packet in place, without decoding (and so without copying) anything else.

use super::codec::{put_header, Codec, Reader};
use super::{DecodeError, Message, MsgType, HEADER_LEN, RELAY_HEADER_LEN};
use crate::keys::{CommunityId, PeerTag};

/// Offsets within a relay header, after the common header.
mod field {
    use std::ops::Range;
    pub(super) const TAG: Range<usize> = super::HEADER_LEN..super::RELAY_HEADER_LEN;
    pub(super) const INNER: usize = super::RELAY_HEADER_LEN;
}

/// Encodes the relay header; the caller appends the inner packet.
pub fn encode_relay_header(t: MsgType, tag: PeerTag, out: &mut Vec<u8>) {
    debug_assert!(matches!(t, MsgType::Relay | MsgType::Relayed));
    put_header(out, t, 0);
    tag.encode(out);
}

/// Encodes the header of a relayed packet between supernodes; the caller appends the inner packet.
pub fn encode_fed_relay_header(
    community: CommunityId,
    src: PeerTag,
    dest: PeerTag,
    out: &mut Vec<u8>,
) {
    put_header(out, MsgType::FedRelay, 0);
    community.encode(out);
    src.encode(out);
    dest.encode(out);
}

/// Decodes the body of a RELAY or RELAYED datagram (`t` says which).
pub(super) fn read_relay<'a>(t: MsgType, r: &mut Reader<'a>) -> Result<Message<'a>, DecodeError> {
    let tag = r.read()?;
    let inner = inner(r)?;
    Ok(if t == MsgType::Relay {
        Message::Relay { dest: tag, inner }
    } else {
        Message::Relayed { src: tag, inner }
    })
}

/// Decodes the body of a FED_RELAY datagram.
pub(super) fn read_fed_relay<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, DecodeError> {
    Ok(Message::FedRelay {
        community: r.read()?,
        src: r.read()?,
        dest: r.read()?,
        inner: inner(r)?,
    })
}

/// The enclosed packet: the rest, which must at least hold a common header.
fn inner<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    let inner = r.rest();
    if inner.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    Ok(inner)
}

/// A view of a RELAY or RELAYED datagram: the common header, the 8-byte tag of the edge at the far end,
/// then the enclosed edge-to-edge packet. It checks lengths only (the caller has already dispatched on
/// the type, with [`super::peek_type`]), and accepts what [`super::decode`] accepts as a relay message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RelayPacket<T> {
    /// Wraps `buffer` without checking its length; the accessors panic if it is shorter than
    /// [`new_checked`](Self::new_checked) requires.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> RelayPacket<T> {
        RelayPacket { buffer }
    }

    /// Wraps `buffer` if it holds a relay header and an enclosed packet of at least a common header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<RelayPacket<T>, DecodeError> {
        if buffer.as_ref().len() < RELAY_HEADER_LEN + HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        Ok(RelayPacket { buffer })
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The tag of the edge at the far end: the destination of a RELAY, the source of a RELAYED.
    #[inline]
    pub fn tag(&self) -> PeerTag {
        let mut t = [0u8; 8];
        t.copy_from_slice(&self.buffer.as_ref()[field::TAG]);
        PeerTag(t)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> RelayPacket<&'a T> {
    /// The enclosed edge-to-edge packet, untouched.
    #[inline]
    pub fn inner(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::INNER..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RelayPacket<T> {
    /// Sets the tag.
    #[inline]
    pub fn set_tag(&mut self, tag: PeerTag) {
        self.buffer.as_mut()[field::TAG].copy_from_slice(&tag.0);
    }

    /// The enclosed edge-to-edge packet, to open in place.
    #[inline]
    pub fn inner_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::INNER..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::decode;
    use crate::wire::tests::roundtrip;

    #[test]
    fn relay_roundtrip() {
        let inner = [1u8, 3, 0, 0, 5, 5, 5, 5];
        for t in [MsgType::Relay, MsgType::Relayed] {
            let mut b = Vec::new();
            encode_relay_header(t, PeerTag([3; 8]), &mut b);
            assert_eq!(b.len(), RELAY_HEADER_LEN);
            b.extend_from_slice(&inner);
            match roundtrip(&b) {
                Message::Relay { dest, inner: i } => {
                    assert_eq!(t, MsgType::Relay);
                    assert_eq!((dest, i), (PeerTag([3; 8]), &inner[..]));
                }
                Message::Relayed { src, inner: i } => {
                    assert_eq!(t, MsgType::Relayed);
                    assert_eq!((src, i), (PeerTag([3; 8]), &inner[..]));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn relay_view_reads_what_the_encoder_wrote_and_agrees_with_decode() {
        let mut b = Vec::new();
        encode_relay_header(MsgType::Relayed, PeerTag([7; 8]), &mut b);
        b.extend_from_slice(&[1, 3, 0, 0, 9]);
        let v = RelayPacket::new_checked(&b[..]).unwrap();
        assert_eq!(v.tag(), PeerTag([7; 8]));
        assert_eq!(v.inner(), &[1, 3, 0, 0, 9]);
        // Every length: the view accepts exactly what decode accepts, and never panics.
        for n in 0..=b.len() {
            let view = RelayPacket::new_checked(&b[..n]);
            let decoded = decode(&b[..n]);
            assert_eq!(view.is_ok(), decoded.is_ok(), "length {n}");
        }
        assert_eq!(
            RelayPacket::new_checked(&b[..RELAY_HEADER_LEN + 3]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn relay_view_set_get_and_inner_in_place() {
        let mut b = [0u8; RELAY_HEADER_LEN + 6];
        let mut v = RelayPacket::new_checked(&mut b[..]).unwrap();
        v.set_tag(PeerTag([0xa5; 8]));
        assert_eq!(v.tag(), PeerTag([0xa5; 8]));
        v.inner_mut().copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(&b[HEADER_LEN..RELAY_HEADER_LEN], &[0xa5; 8]);
        assert_eq!(&b[RELAY_HEADER_LEN..], &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn fed_relay_roundtrip() {
        let mut b = Vec::new();
        encode_fed_relay_header(
            CommunityId([1; 8]),
            PeerTag([2; 8]),
            PeerTag([3; 8]),
            &mut b,
        );
        assert_eq!(b.len(), HEADER_LEN + 24);
        assert_eq!(decode(&b), Err(DecodeError::Truncated));
        b.extend_from_slice(&[1, 3, 0, 0]);
        assert_eq!(
            roundtrip(&b),
            Message::FedRelay {
                community: CommunityId([1; 8]),
                src: PeerTag([2; 8]),
                dest: PeerTag([3; 8]),
                inner: &[1, 3, 0, 0],
            }
        );
    }
}
