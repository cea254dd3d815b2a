//! Data packets: the 16-byte clear header of a sealed edge-to-edge packet, which is also the AEAD's
//! associated data, and what the payload holds once opened.

use super::codec::{Codec, Reader};
use super::{DecodeError, MsgType, DATA_HEADER_LEN, TAG_LEN, VERSION};

/// What a data packet carries once opened (the `aux` byte of its header, authenticated as associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DataKind {
    /// An Ethernet frame for the TAP device.
    Frame = 0,
    /// Nothing: keeps NAT mappings and the peer's liveness timer fresh, and confirms a new session.
    Keepalive = 1,
    /// A path probe: 8 bytes the receiver echoes back in a probe reply to the address it came from.
    Probe = 2,
    /// The echo of a probe.
    ProbeReply = 3,
    /// Edge and supernode only: a control message (registration, acknowledgement, peer info, ping...)
    /// sealed in the control channel; the plaintext is the message's ordinary encoding.
    Control = 4,
    /// Supernode and supernode only: a federation message (FED_EDGE, FED_GONE, FED_PUNCH) sealed in the
    /// federation session of the two; the plaintext is the message's encoding.
    Federation = 5,
}

impl DataKind {
    #[inline]
    fn from_u8(b: u8) -> Option<DataKind> {
        Some(match b {
            0 => DataKind::Frame,
            1 => DataKind::Keepalive,
            2 => DataKind::Probe,
            3 => DataKind::ProbeReply,
            4 => DataKind::Control,
            5 => DataKind::Federation,
            _ => return None,
        })
    }
}

/// The clear part of a data packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader {
    /// What the payload is (authenticated).
    pub kind: DataKind,
    /// The receiver's session index.
    pub receiver_index: u32,
    /// The packet counter: nonce and replay-window position.
    pub counter: u64,
}

impl DataHeader {
    /// Writes the 16 header bytes.
    #[inline]
    pub fn write(&self, out: &mut [u8; DATA_HEADER_LEN]) {
        out[0] = VERSION;
        out[1] = MsgType::Data as u8;
        out[2] = self.kind as u8;
        out[3] = 0;
        out[4..8].copy_from_slice(&self.receiver_index.to_le_bytes());
        out[8..16].copy_from_slice(&self.counter.to_le_bytes());
    }
}

/// Layout: header with the kind in `aux`, receiver index, counter (both little-endian).
impl Codec<'_> for DataHeader {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        let mut h = [0u8; DATA_HEADER_LEN];
        self.write(&mut h);
        out.extend_from_slice(&h);
    }

    #[inline]
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DataHeader {
            kind: DataKind::from_u8(r.aux()).ok_or(DecodeError::Invalid("data kind"))?,
            receiver_index: r.u32_le()?,
            counter: r.u64_le()?,
        })
    }
}

/// Reads a data packet's header and borrows its sealed payload (ciphertext and tag), which must be at
/// least as long as a tag.
#[inline]
pub(super) fn read_sealed<'a>(r: &mut Reader<'a>) -> Result<(DataHeader, &'a [u8]), DecodeError> {
    let h = r.read()?;
    let sealed = r.rest();
    if sealed.len() < TAG_LEN {
        return Err(DecodeError::Truncated);
    }
    Ok((h, sealed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::roundtrip;
    use crate::wire::{decode, Message};

    #[test]
    fn data_roundtrip() {
        let h = DataHeader {
            kind: DataKind::Probe,
            receiver_index: 0xdead_beef,
            counter: u64::MAX - 1,
        };
        let mut hb = [0u8; DATA_HEADER_LEN];
        h.write(&mut hb);
        let mut b = hb.to_vec();
        b.extend_from_slice(&[0xaa; 24]);
        assert_eq!(roundtrip(&b), Message::Data(h, &[0xaa; 24][..]));
        // A data packet shorter than a tag is truncated.
        assert_eq!(
            decode(&b[..DATA_HEADER_LEN + 15]),
            Err(DecodeError::Truncated)
        );
        let mut via_codec = Vec::new();
        h.encode(&mut via_codec);
        assert_eq!(via_codec, hb);
    }
}
