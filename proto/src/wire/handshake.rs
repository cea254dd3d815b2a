//! The two handshake messages edges exchange (Noise IKpsk2 messages 1 and 2, each with the session
//! indices the two sides will put on their data packets).

use super::codec::{put_header, Codec, Reader};
use super::{DecodeError, MsgType, NOISE_INIT_LEN, NOISE_RESP_LEN};

/// Edge to edge, Noise message 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInit<'a> {
    /// The index the initiator wants the responder to put on packets for the new session.
    pub sender_index: u32,
    /// The Noise message, exactly [`NOISE_INIT_LEN`] bytes.
    pub noise: &'a [u8],
}

/// Layout: header, sender index (little-endian), Noise message.
impl<'a> Codec<'a> for HandshakeInit<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.noise.len(), NOISE_INIT_LEN);
        put_header(out, MsgType::HandshakeInit, 0);
        out.extend_from_slice(&self.sender_index.to_le_bytes());
        out.extend_from_slice(self.noise);
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(HandshakeInit {
            sender_index: r.u32_le()?,
            noise: r.take(NOISE_INIT_LEN)?,
        })
    }
}

/// Edge to edge, Noise message 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResp<'a> {
    /// The responder's index for the new session.
    pub sender_index: u32,
    /// The initiator's index, from the initiation.
    pub receiver_index: u32,
    /// The Noise message, exactly [`NOISE_RESP_LEN`] bytes.
    pub noise: &'a [u8],
}

/// Layout: header, sender index, receiver index (both little-endian), Noise message.
impl<'a> Codec<'a> for HandshakeResp<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.noise.len(), NOISE_RESP_LEN);
        put_header(out, MsgType::HandshakeResp, 0);
        out.extend_from_slice(&self.sender_index.to_le_bytes());
        out.extend_from_slice(&self.receiver_index.to_le_bytes());
        out.extend_from_slice(self.noise);
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(HandshakeResp {
            sender_index: r.u32_le()?,
            receiver_index: r.u32_le()?,
            noise: r.take(NOISE_RESP_LEN)?,
        })
    }
}

/// Encodes a handshake initiation.
pub fn encode_handshake_init(sender_index: u32, noise: &[u8], out: &mut Vec<u8>) {
    HandshakeInit {
        sender_index,
        noise,
    }
    .encode(out);
}

/// Encodes a handshake response.
pub fn encode_handshake_resp(
    sender_index: u32,
    receiver_index: u32,
    noise: &[u8],
    out: &mut Vec<u8>,
) {
    HandshakeResp {
        sender_index,
        receiver_index,
        noise,
    }
    .encode(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::roundtrip;
    use crate::wire::{Message, HANDSHAKE_INIT_LEN, HANDSHAKE_RESP_LEN};

    #[test]
    fn handshake_roundtrip() {
        let noise = [9u8; NOISE_INIT_LEN];
        let mut b = Vec::new();
        encode_handshake_init(77, &noise, &mut b);
        assert_eq!(b.len(), HANDSHAKE_INIT_LEN);
        assert_eq!(
            roundtrip(&b),
            Message::HandshakeInit(HandshakeInit {
                sender_index: 77,
                noise: &noise
            })
        );
        let noise = [8u8; NOISE_RESP_LEN];
        let mut b = Vec::new();
        encode_handshake_resp(1, 2, &noise, &mut b);
        assert_eq!(b.len(), HANDSHAKE_RESP_LEN);
        assert_eq!(
            roundtrip(&b),
            Message::HandshakeResp(HandshakeResp {
                sender_index: 1,
                receiver_index: 2,
                noise: &noise
            })
        );
    }
}
