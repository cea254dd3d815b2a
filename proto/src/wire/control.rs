//! The edge-to-supernode control channel: its Noise IK handshake (CTL_INIT, CTL_RESP), and the supernode
//! key query an edge with no pinned key sends once (KEY_QUERY, KEY_REPLY).
//!
//! Everything else between an edge and a supernode (registrations, acknowledgements, refusals, peer info,
//! revocations, punch requests, pings, pongs) travels sealed inside the channel as a data packet of kind
//! [`super::DataKind::Control`], whose plaintext is the message's ordinary encoding.

use super::codec::{put_header, Codec, Reader};
use super::{DecodeError, MsgType, CTL_MAC_LEN, CTL_NOISE_INIT_LEN, CTL_NOISE_RESP_LEN, MAC_LEN};
use crate::keys::PublicKey;

/// Edge to supernode, Noise IK message 1: proves the edge's static key to a supernode whose key it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlInit<'a> {
    /// The index the edge wants the supernode to put on packets of the new session.
    pub sender_index: u32,
    /// The Noise message, exactly [`CTL_NOISE_INIT_LEN`] bytes.
    pub noise: &'a [u8],
    /// Keyed by the supernode's public key over all preceding bytes: checked before any Diffie-Hellman,
    /// so a sender that does not even know whom it talks to costs the supernode one hash.
    pub mac: [u8; CTL_MAC_LEN],
    /// Keyed by a cookie the supernode sent this address, over all preceding bytes; zeros without one.
    /// Checked only when the supernode is under load (see `handshake_mac`).
    pub mac2: [u8; MAC_LEN],
}

impl CtlInit<'_> {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }

    /// The bytes the MAC covers: everything before it.
    pub fn signed_len() -> usize {
        super::HEADER_LEN + 4 + CTL_NOISE_INIT_LEN
    }

    /// The bytes MAC2 covers: everything before it (MAC1 included).
    pub fn mac2_input_len() -> usize {
        Self::signed_len() + CTL_MAC_LEN
    }
}

/// Layout: header, sender index (little-endian), Noise message, MAC (MAC1), MAC2.
impl<'a> Codec<'a> for CtlInit<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.noise.len(), CTL_NOISE_INIT_LEN);
        put_header(out, MsgType::CtlInit, 0);
        out.extend_from_slice(&self.sender_index.to_le_bytes());
        out.extend_from_slice(self.noise);
        out.extend_from_slice(&self.mac);
        out.extend_from_slice(&self.mac2);
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(CtlInit {
            sender_index: r.u32_le()?,
            noise: r.take(CTL_NOISE_INIT_LEN)?,
            mac: r.array()?,
            mac2: r.array()?,
        })
    }
}

/// Supernode to edge, Noise IK message 2: proves the supernode's key and completes the session. Smaller
/// than the initiation it answers, so it cannot amplify a spoofed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlResp<'a> {
    /// The supernode's index for the new session.
    pub sender_index: u32,
    /// The edge's index, from the initiation.
    pub receiver_index: u32,
    /// The Noise message, exactly [`CTL_NOISE_RESP_LEN`] bytes.
    pub noise: &'a [u8],
}

impl CtlResp<'_> {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }
}

/// Layout: header, sender index, receiver index (both little-endian), Noise message.
impl<'a> Codec<'a> for CtlResp<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.noise.len(), CTL_NOISE_RESP_LEN);
        put_header(out, MsgType::CtlResp, 0);
        out.extend_from_slice(&self.sender_index.to_le_bytes());
        out.extend_from_slice(&self.receiver_index.to_le_bytes());
        out.extend_from_slice(self.noise);
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(CtlResp {
            sender_index: r.u32_le()?,
            receiver_index: r.u32_le()?,
            noise: r.take(CTL_NOISE_RESP_LEN)?,
        })
    }
}

/// Size of a key query: header and 32 zero bytes, so that the reply (header and key) is no larger.
pub const KEY_QUERY_LEN: usize = super::HEADER_LEN + 32;

/// Encodes a key query: "which public key do you have?" (trust on first use; see PROTOCOL.md).
pub fn encode_key_query(out: &mut Vec<u8>) {
    put_header(out, MsgType::KeyQuery, 0);
    out.extend_from_slice(&[0u8; 32]);
}

/// Reads a key query's padding (which must be all there: a shorter query gets no answer).
pub(super) fn read_key_query(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    r.take(32)?;
    r.finish()
}

/// Supernode to edge: the supernode's static public key, unauthenticated by nature (see PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyReply {
    /// The key.
    pub key: PublicKey,
}

impl KeyReply {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }
}

/// Layout: header, key.
impl Codec<'_> for KeyReply {
    fn encode(&self, out: &mut Vec<u8>) {
        put_header(out, MsgType::KeyReply, 0);
        self.key.encode(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(KeyReply { key: r.read()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::roundtrip;
    use crate::wire::{decode, Message, HEADER_LEN};

    #[test]
    fn ctl_handshake_roundtrip_and_sizes() {
        let noise = [7u8; CTL_NOISE_INIT_LEN];
        let m = CtlInit {
            sender_index: 0x0102_0304,
            noise: &noise,
            mac: [9; CTL_MAC_LEN],
            mac2: [8; MAC_LEN],
        };
        let mut b = Vec::new();
        m.encode(&mut b);
        assert_eq!(b.len(), CtlInit::mac2_input_len() + MAC_LEN);
        assert_eq!(b.len(), 144, "PROTOCOL.md 2.13");
        assert_eq!(roundtrip(&b), Message::CtlInit(m));
        assert_eq!(decode(&b[..b.len() - 1]), Err(DecodeError::Truncated));

        let noise = [8u8; CTL_NOISE_RESP_LEN];
        let r = CtlResp {
            sender_index: 5,
            receiver_index: 6,
            noise: &noise,
        };
        let mut rb = Vec::new();
        r.encode(&mut rb);
        assert_eq!(roundtrip(&rb), Message::CtlResp(r));
        assert_eq!(rb.len(), 60, "PROTOCOL.md 2.13");
        // No amplification: the answer is smaller than the question.
        assert!(rb.len() < b.len(), "{} >= {}", rb.len(), b.len());
    }

    #[test]
    fn key_query_is_as_large_as_its_reply() {
        let mut q = Vec::new();
        encode_key_query(&mut q);
        assert_eq!(q.len(), KEY_QUERY_LEN);
        assert_eq!(roundtrip(&q), Message::KeyQuery);
        // A short query is not a query.
        assert_eq!(decode(&q[..HEADER_LEN + 8]), Err(DecodeError::Truncated));
        let mut r = Vec::new();
        KeyReply {
            key: PublicKey([3; 32]),
        }
        .encode(&mut r);
        assert!(r.len() <= q.len());
        assert_eq!(
            roundtrip(&r),
            Message::KeyReply(KeyReply {
                key: PublicKey([3; 32])
            })
        );
    }
}
