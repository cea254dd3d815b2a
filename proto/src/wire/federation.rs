//! Federation: the handshake of a link between two supernodes (FED_INIT, FED_RESP: Noise IK, as the
//! control channel, in which both sides prove their static keys), and what supernodes tell each other about
//! their edges (FED_EDGE, FED_GONE, FED_PUNCH), which travels only sealed in the link's session as a data
//! packet of kind [`super::DataKind::Federation`], whose plaintext is the message's encoding below.
//! (Relayed packets between supernodes are in `relay`.)

use super::codec::{put_header, Codec, Reader};
use super::{DecodeError, Message, MsgType, PeerInfo, CTL_MAC_LEN, CTL_NOISE_INIT_LEN};
use super::{CTL_NOISE_RESP_LEN, HEADER_LEN};
use crate::keys::{CommunityId, PublicKey};

/// A federation control message: what one supernode tells the others. Believed only when it arrives
/// sealed in the federation session with the peer that sent it (the session proved the peer's key and
/// its replay window orders the messages); in the clear it is counted and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FedMessage {
    /// An edge is registered with the sender, as the sender sees it. `introduce`: it is new or moved, so
    /// the receiver introduces it to its own edges of the community, asking both sides to punch.
    Edge {
        /// The edge, as a peer info (community, key, MAC, virtual IP, public and local addresses).
        info: PeerInfo,
        /// Introduce it now.
        introduce: bool,
    },
    /// An edge expired or was dropped at the sender.
    Gone {
        /// Its community.
        community: CommunityId,
        /// Its key.
        key: PublicKey,
    },
    /// The sender's edge `from` asked to punch towards the receiver's edge `target`.
    Punch {
        /// The community.
        community: CommunityId,
        /// The requesting edge (registered with the sender).
        from: PublicKey,
        /// The edge registered with the receiver.
        target: PublicKey,
    },
}

impl FedMessage {
    /// Encodes the message (the plaintext of a sealed federation packet).
    ///
    /// Layout: header (type by variant, `introduce` in aux bit 0), body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            FedMessage::Edge { info, introduce } => {
                put_header(out, MsgType::FedEdge, *introduce as u8);
                info.encode_body(out);
            }
            FedMessage::Gone { community, key } => {
                put_header(out, MsgType::FedGone, 0);
                community.encode(out);
                key.encode(out);
            }
            FedMessage::Punch {
                community,
                from,
                target,
            } => {
                put_header(out, MsgType::FedPunch, 0);
                community.encode(out);
                from.encode(out);
                target.encode(out);
            }
        }
    }
}

/// Decodes the body of a federation message of type `t` (one of the three above).
pub(super) fn read_fed<'a>(t: MsgType, r: &mut Reader<'a>) -> Result<Message<'a>, DecodeError> {
    let msg = match t {
        MsgType::FedEdge => FedMessage::Edge {
            introduce: r.aux() & 1 != 0,
            info: PeerInfo::read_body(r, false)?,
        },
        MsgType::FedGone => FedMessage::Gone {
            community: r.read()?,
            key: r.read()?,
        },
        _ => FedMessage::Punch {
            community: r.read()?,
            from: r.read()?,
            target: r.read()?,
        },
    };
    r.finish()?;
    Ok(Message::Fed(msg))
}

/// Supernode to supernode, Noise IK message 1 of a federation link: proves the initiator's static key to
/// the peer whose key it knows. The layout of [`super::CtlInit`] under its own type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FedInit<'a> {
    /// The index the initiator wants the responder to put on packets of the new session.
    pub sender_index: u32,
    /// The Noise message, exactly [`CTL_NOISE_INIT_LEN`] bytes.
    pub noise: &'a [u8],
    /// Keyed by the responder's public key over all preceding bytes: checked before any Diffie-Hellman.
    pub mac: [u8; CTL_MAC_LEN],
}

/// Size of a FED_INIT datagram.
pub const FED_INIT_LEN: usize = HEADER_LEN + 4 + CTL_NOISE_INIT_LEN + CTL_MAC_LEN;
/// Size of a FED_RESP datagram: smaller than the initiation it answers.
pub const FED_RESP_LEN: usize = HEADER_LEN + 8 + CTL_NOISE_RESP_LEN;
const _: () = assert!(FED_RESP_LEN < FED_INIT_LEN);

impl FedInit<'_> {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }

    /// The bytes the MAC covers: everything before it.
    pub fn signed_len() -> usize {
        FED_INIT_LEN - CTL_MAC_LEN
    }
}

/// Layout: header, sender index (little-endian), Noise message, MAC.
impl<'a> Codec<'a> for FedInit<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.noise.len(), CTL_NOISE_INIT_LEN);
        put_header(out, MsgType::FedInit, 0);
        out.extend_from_slice(&self.sender_index.to_le_bytes());
        out.extend_from_slice(self.noise);
        out.extend_from_slice(&self.mac);
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(FedInit {
            sender_index: r.u32_le()?,
            noise: r.take(CTL_NOISE_INIT_LEN)?,
            mac: r.array()?,
        })
    }
}

/// Supernode to supernode, Noise IK message 2 of a federation link: proves the responder's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FedResp<'a> {
    /// The responder's index for the new session.
    pub sender_index: u32,
    /// The initiator's index, from the initiation.
    pub receiver_index: u32,
    /// The Noise message, exactly [`CTL_NOISE_RESP_LEN`] bytes.
    pub noise: &'a [u8],
}

impl FedResp<'_> {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }
}

/// Layout: header, sender index, receiver index (both little-endian), Noise message.
impl<'a> Codec<'a> for FedResp<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.noise.len(), CTL_NOISE_RESP_LEN);
        put_header(out, MsgType::FedResp, 0);
        out.extend_from_slice(&self.sender_index.to_le_bytes());
        out.extend_from_slice(&self.receiver_index.to_le_bytes());
        out.extend_from_slice(self.noise);
    }

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(FedResp {
            sender_index: r.u32_le()?,
            receiver_index: r.u32_le()?,
            noise: r.take(CTL_NOISE_RESP_LEN)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::roundtrip;
    use crate::wire::{decode, Ipv4Net, MacAddr};

    #[test]
    fn federation_messages_round_trip() {
        let info = PeerInfo {
            community: CommunityId([1; 8]),
            punch: false,
            public_key: PublicKey([2; 32]),
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ip: Some(Ipv4Net {
                addr: std::net::Ipv4Addr::new(10, 1, 2, 3),
                prefix: 24,
            }),
            observed: "198.51.100.7:4000".parse().unwrap(),
            local_addrs: vec!["192.168.1.5:4000".parse().unwrap()],
            description: "laptop".into(),
        };
        let msgs = [
            FedMessage::Edge {
                info,
                introduce: true,
            },
            FedMessage::Gone {
                community: CommunityId([1; 8]),
                key: PublicKey([3; 32]),
            },
            FedMessage::Punch {
                community: CommunityId([1; 8]),
                from: PublicKey([3; 32]),
                target: PublicKey([4; 32]),
            },
        ];
        for m in &msgs {
            let mut buf = Vec::new();
            m.encode(&mut buf);
            assert_eq!(roundtrip(&buf), Message::Fed(m.clone()));
            assert!(decode(&buf[..buf.len() - 1]).is_err());
            buf.push(0);
            assert_eq!(decode(&buf), Err(DecodeError::Trailing));
        }
    }

    #[test]
    fn fed_handshake_roundtrip_and_sizes() {
        let noise = [7u8; CTL_NOISE_INIT_LEN];
        let m = FedInit {
            sender_index: 0x0102_0304,
            noise: &noise,
            mac: [9; CTL_MAC_LEN],
        };
        let mut b = Vec::new();
        m.encode(&mut b);
        assert_eq!(b.len(), FED_INIT_LEN);
        assert_eq!(b.len(), 128, "PROTOCOL.md 2.12");
        assert_eq!(FedInit::signed_len(), crate::wire::CtlInit::signed_len());
        assert_eq!(roundtrip(&b), Message::FedInit(m));
        assert_eq!(decode(&b[..b.len() - 1]), Err(DecodeError::Truncated));
        let noise = [8u8; CTL_NOISE_RESP_LEN];
        let r = FedResp {
            sender_index: 5,
            receiver_index: 6,
            noise: &noise,
        };
        let mut rb = Vec::new();
        r.encode(&mut rb);
        assert_eq!(rb.len(), FED_RESP_LEN);
        assert_eq!(rb.len(), 60, "PROTOCOL.md 2.12");
        assert_eq!(roundtrip(&rb), Message::FedResp(r));
    }
}
