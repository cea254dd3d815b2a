//! Federation: what supernodes tell each other about their edges, authenticated under the federation
//! key and ordered by a counter per sender. (Relayed packets between supernodes are in `relay`.)

use super::codec::{put_header, Codec, Reader};
use super::{DecodeError, Message, MsgType, PeerInfo, ADMISSION_TAG_LEN, HEADER_LEN};
use crate::keys::{CommunityId, PublicKey};

/// Length of the authentication tag of federation control messages.
pub const FED_TAG_LEN: usize = ADMISSION_TAG_LEN;

/// A federation control message: what one supernode tells the others. Authenticated by an HMAC under
/// the federation key over the whole encoded message, and ordered by a strictly increasing counter per
/// sender (wall-clock based, as registrations), so a replay is ignored.
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
    /// Encodes the message with the sender's `counter` and signs it with `key`.
    ///
    /// Layout: header (type by variant, `introduce` in aux bit 0), counter, body, tag over all before it.
    pub fn encode(&self, counter: u64, key: &crate::keys::FederationKey, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            FedMessage::Edge { info, introduce } => {
                put_header(out, MsgType::FedEdge, *introduce as u8);
                out.extend_from_slice(&counter.to_be_bytes());
                info.encode_body(out);
            }
            FedMessage::Gone { community, key } => {
                put_header(out, MsgType::FedGone, 0);
                out.extend_from_slice(&counter.to_be_bytes());
                community.encode(out);
                key.encode(out);
            }
            FedMessage::Punch {
                community,
                from,
                target,
            } => {
                put_header(out, MsgType::FedPunch, 0);
                out.extend_from_slice(&counter.to_be_bytes());
                community.encode(out);
                from.encode(out);
                target.encode(out);
            }
        }
        let tag = key.0.tag(&out[start..]);
        out.extend_from_slice(&tag);
    }
}

/// Decodes a signed federation message of type `t` (one of the three above) from the whole datagram:
/// the tag is split off the end, and what it covers is kept for the receiver to verify.
pub(super) fn decode_signed(t: MsgType, buf: &[u8]) -> Result<Message<'_>, DecodeError> {
    if buf.len() < HEADER_LEN + 8 + FED_TAG_LEN {
        return Err(DecodeError::Truncated);
    }
    let (signed, tag) = buf.split_at(buf.len() - FED_TAG_LEN);
    let mut r = Reader::after_header(signed)?;
    let counter = r.u64_be()?;
    let msg = match t {
        MsgType::FedEdge => FedMessage::Edge {
            introduce: r.aux() & 1 != 0,
            info: PeerInfo::read_body(&mut r, false)?,
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
    Ok(Message::Fed {
        msg,
        counter,
        signed,
        tag: tag.try_into().expect("split at the tag length"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode, Ipv4Net, MacAddr};

    #[test]
    fn federation_messages_round_trip_and_need_the_right_key() {
        use crate::keys::FederationKey;
        let key = FederationKey::derive(b"fed secret");
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
        for (i, m) in msgs.iter().enumerate() {
            let mut buf = Vec::new();
            m.encode(1000 + i as u64, &key, &mut buf);
            let Ok(Message::Fed {
                msg,
                counter,
                signed,
                tag,
            }) = decode(&buf)
            else {
                panic!("decodes: {m:?}");
            };
            assert_eq!(&msg, m);
            assert_eq!(counter, 1000 + i as u64);
            assert!(key.0.verify(signed, &tag));
            assert!(!FederationKey::derive(b"wrong").0.verify(signed, &tag));
            let mut flipped = buf.clone();
            flipped[HEADER_LEN + 9] ^= 1;
            let Ok(Message::Fed { signed, tag, .. }) = decode(&flipped) else {
                panic!("still decodes");
            };
            assert!(!key.0.verify(signed, &tag), "a changed byte fails the tag");
        }
    }
}
