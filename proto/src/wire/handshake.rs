//! The handshake messages edges exchange: Noise IKpsk2 messages 1 and 2, each with the session indices the
//! two sides will put on their data packets and the MACs that let a receiver drop a stranger's message
//! before any Diffie-Hellman (`crate::handshake_mac`), and the cookie reply a loaded responder sends
//! instead of doing that work.
//!
//! The MACs cover the bytes before them, so the encoders take the MAC functions and write each MAC over
//! the bytes already encoded; a receiver finds the covered bytes with [`HandshakeInit::mac1_input`],
//! [`HandshakeInit::mac2_input`] and [`HandshakeResp::mac1_input`].

use super::codec::{put_header, Codec, Reader};
use super::{DecodeError, MsgType, HEADER_LEN, NOISE_INIT_LEN, NOISE_RESP_LEN};

/// Length of MAC1 and MAC2.
pub const MAC_LEN: usize = 16;
/// Length of a cookie (the key of MAC2).
pub const COOKIE_LEN: usize = 16;
/// Length of the random nonce of a cookie reply (XChaCha20-Poly1305).
pub const COOKIE_NONCE_LEN: usize = 24;
/// Length of the sealed cookie in a cookie reply: the cookie and its Poly1305 tag.
pub const SEALED_COOKIE_LEN: usize = COOKIE_LEN + 16;

/// Where MAC1 sits in an initiation: it covers the bytes before it.
const INIT_MAC1_AT: usize = HEADER_LEN + 4 + NOISE_INIT_LEN;
/// Where MAC2 sits in an initiation: it covers the bytes before it (MAC1 included).
const INIT_MAC2_AT: usize = INIT_MAC1_AT + MAC_LEN;
/// Where MAC1 sits in a response.
const RESP_MAC1_AT: usize = HEADER_LEN + 8 + NOISE_RESP_LEN;

/// Edge to edge, Noise message 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInit<'a> {
    /// The index the initiator wants the responder to put on packets for the new session.
    pub sender_index: u32,
    /// The Noise message, exactly [`NOISE_INIT_LEN`] bytes.
    pub noise: &'a [u8],
    /// MAC1: keyed by the community's handshake MAC key, over the responder's public key and every
    /// byte before it.
    pub mac1: [u8; MAC_LEN],
    /// MAC2: keyed by a cookie the responder gave, over every byte before it; zeros without a cookie.
    pub mac2: [u8; MAC_LEN],
}

impl HandshakeInit<'_> {
    /// The bytes MAC1 covers in `datagram`, the encoded initiation (empty if it is too short).
    pub fn mac1_input(datagram: &[u8]) -> &[u8] {
        datagram.get(..INIT_MAC1_AT).unwrap_or_default()
    }

    /// The bytes MAC2 covers in `datagram`, the encoded initiation (empty if it is too short).
    pub fn mac2_input(datagram: &[u8]) -> &[u8] {
        datagram.get(..INIT_MAC2_AT).unwrap_or_default()
    }
}

/// Layout: header, sender index (little-endian), Noise message, MAC1, MAC2.
impl<'a> Codec<'a> for HandshakeInit<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.noise.len(), NOISE_INIT_LEN);
        put_header(out, MsgType::HandshakeInit, 0);
        out.extend_from_slice(&self.sender_index.to_le_bytes());
        out.extend_from_slice(self.noise);
        out.extend_from_slice(&self.mac1);
        out.extend_from_slice(&self.mac2);
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(HandshakeInit {
            sender_index: r.u32_le()?,
            noise: r.take(NOISE_INIT_LEN)?,
            mac1: r.array()?,
            mac2: r.array()?,
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
    /// MAC1: keyed by the community's handshake MAC key, over the initiator's public key and every byte
    /// before it.
    pub mac1: [u8; MAC_LEN],
}

impl HandshakeResp<'_> {
    /// The bytes MAC1 covers in `datagram`, the encoded response (empty if it is too short).
    pub fn mac1_input(datagram: &[u8]) -> &[u8] {
        datagram.get(..RESP_MAC1_AT).unwrap_or_default()
    }
}

/// Layout: header, sender index, receiver index (both little-endian), Noise message, MAC1.
impl<'a> Codec<'a> for HandshakeResp<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.noise.len(), NOISE_RESP_LEN);
        put_header(out, MsgType::HandshakeResp, 0);
        out.extend_from_slice(&self.sender_index.to_le_bytes());
        out.extend_from_slice(&self.receiver_index.to_le_bytes());
        out.extend_from_slice(self.noise);
        out.extend_from_slice(&self.mac1);
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(HandshakeResp {
            sender_index: r.u32_le()?,
            receiver_index: r.u32_le()?,
            noise: r.take(NOISE_RESP_LEN)?,
            mac1: r.array()?,
        })
    }
}

/// Edge to edge: a loaded responder's answer to an initiation without a valid MAC2. It carries the
/// cookie for the initiator's source, sealed so that only a holder of the community secret who sent
/// that very initiation can read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieReply {
    /// The initiation's sender index.
    pub receiver_index: u32,
    /// The XChaCha20-Poly1305 nonce (random).
    pub nonce: [u8; COOKIE_NONCE_LEN],
    /// The cookie, sealed (the initiation's MAC1 as associated data).
    pub sealed: [u8; SEALED_COOKIE_LEN],
}

/// Layout: header, receiver index (little-endian), nonce, sealed cookie.
impl<'a> Codec<'a> for CookieReply {
    fn encode(&self, out: &mut Vec<u8>) {
        put_header(out, MsgType::CookieReply, 0);
        out.extend_from_slice(&self.receiver_index.to_le_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.sealed);
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(CookieReply {
            receiver_index: r.u32_le()?,
            nonce: r.array()?,
            sealed: r.array()?,
        })
    }
}

/// Encodes a handshake initiation: `mac1` is given the bytes MAC1 covers, `mac2` those MAC2 covers (it
/// returns zeros when there is no cookie). Returns MAC1 (a cookie reply to this initiation is sealed
/// with it as associated data).
pub fn encode_handshake_init(
    sender_index: u32,
    noise: &[u8],
    out: &mut Vec<u8>,
    mac1: impl FnOnce(&[u8]) -> [u8; MAC_LEN],
    mac2: impl FnOnce(&[u8]) -> [u8; MAC_LEN],
) -> [u8; MAC_LEN] {
    debug_assert_eq!(noise.len(), NOISE_INIT_LEN);
    let start = out.len();
    put_header(out, MsgType::HandshakeInit, 0);
    out.extend_from_slice(&sender_index.to_le_bytes());
    out.extend_from_slice(noise);
    let m1 = mac1(&out[start..]);
    out.extend_from_slice(&m1);
    let m2 = mac2(&out[start..]);
    out.extend_from_slice(&m2);
    m1
}

/// Encodes a handshake response: `mac1` is given the bytes MAC1 covers.
pub fn encode_handshake_resp(
    sender_index: u32,
    receiver_index: u32,
    noise: &[u8],
    out: &mut Vec<u8>,
    mac1: impl FnOnce(&[u8]) -> [u8; MAC_LEN],
) {
    debug_assert_eq!(noise.len(), NOISE_RESP_LEN);
    let start = out.len();
    put_header(out, MsgType::HandshakeResp, 0);
    out.extend_from_slice(&sender_index.to_le_bytes());
    out.extend_from_slice(&receiver_index.to_le_bytes());
    out.extend_from_slice(noise);
    let m1 = mac1(&out[start..]);
    out.extend_from_slice(&m1);
}

/// Encodes a cookie reply.
pub fn encode_cookie_reply(reply: &CookieReply, out: &mut Vec<u8>) {
    reply.encode(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::roundtrip;
    use crate::wire::{Message, COOKIE_REPLY_LEN, HANDSHAKE_INIT_LEN, HANDSHAKE_RESP_LEN};

    #[test]
    fn handshake_roundtrip() {
        let noise = [9u8; NOISE_INIT_LEN];
        let mut b = Vec::new();
        let mut covered = (0, 0);
        let m1 = encode_handshake_init(
            77,
            &noise,
            &mut b,
            |c| {
                covered.0 = c.len();
                [1; MAC_LEN]
            },
            |c| {
                covered.1 = c.len();
                [2; MAC_LEN]
            },
        );
        assert_eq!(m1, [1; MAC_LEN]);
        assert_eq!(b.len(), HANDSHAKE_INIT_LEN);
        assert_eq!(covered, (HANDSHAKE_INIT_LEN - 32, HANDSHAKE_INIT_LEN - 16));
        assert_eq!(HandshakeInit::mac1_input(&b), &b[..covered.0]);
        assert_eq!(HandshakeInit::mac2_input(&b), &b[..covered.1]);
        assert_eq!(
            roundtrip(&b),
            Message::HandshakeInit(HandshakeInit {
                sender_index: 77,
                noise: &noise,
                mac1: [1; MAC_LEN],
                mac2: [2; MAC_LEN],
            })
        );
        let noise = [8u8; NOISE_RESP_LEN];
        let mut b = vec![0xee; 3]; // a relay header before it must not be covered
        encode_handshake_resp(1, 2, &noise, &mut b, |c| {
            assert_eq!(c.len(), HANDSHAKE_RESP_LEN - MAC_LEN);
            [3; MAC_LEN]
        });
        let b = &b[3..];
        assert_eq!(b.len(), HANDSHAKE_RESP_LEN);
        assert_eq!(HandshakeResp::mac1_input(b), &b[..HANDSHAKE_RESP_LEN - 16]);
        assert_eq!(
            roundtrip(b),
            Message::HandshakeResp(HandshakeResp {
                sender_index: 1,
                receiver_index: 2,
                noise: &noise,
                mac1: [3; MAC_LEN],
            })
        );
        let reply = CookieReply {
            receiver_index: 5,
            nonce: [6; COOKIE_NONCE_LEN],
            sealed: [7; SEALED_COOKIE_LEN],
        };
        let mut b = Vec::new();
        encode_cookie_reply(&reply, &mut b);
        assert_eq!(b.len(), COOKIE_REPLY_LEN);
        assert_eq!(roundtrip(&b), Message::CookieReply(reply));
    }

    #[test]
    fn mac_inputs_of_short_datagrams_are_empty() {
        assert!(HandshakeInit::mac1_input(&[1, 1, 0, 0]).is_empty());
        assert!(HandshakeInit::mac2_input(&[1; 120]).is_empty());
        assert!(HandshakeResp::mac1_input(&[1; 10]).is_empty());
    }
}
