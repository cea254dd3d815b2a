//! The wire format: every datagram Weft sends, as plain structs, with a codec that never panics and never
//! allocates more than the datagram it was given.
//!
//! `PROTOCOL.md` beside this crate is the normative description; the layouts here must match it byte for
//! byte (the round-trip tests and the size constants keep the two honest).
//!
//! Every datagram starts with the same four bytes: `version | type | aux | reserved`. `aux` carries the
//! inner kind of a data packet or the flags of a peer-info message, so the hot data path needs no extra
//! byte. Decoders ignore `reserved` (so it can gain a meaning later without a version bump) and reject an
//! unknown version outright.
//!
//! One file per message family, each message's encoding and decoding side by side (`codec.rs` holds the
//! shared pieces): `handshake.rs`, `data.rs`, `relay.rs`, `register.rs`, `peers.rs`, `ping.rs`,
//! `control.rs`, `federation.rs`. [`packet`] holds views of the Ethernet, IP, TCP and UDP headers inside the frames the
//! edge carries, so that nothing outside this module reads a frame by byte offset.

mod addr;
mod codec;
mod control;
mod data;
mod federation;
mod handshake;
pub mod packet;
mod peers;
mod ping;
mod register;
mod relay;

pub use addr::{Ipv4Net, MacAddr};
pub use codec::truncate_utf8;
pub use control::{encode_key_query, CtlInit, CtlResp, KeyReply, KEY_QUERY_LEN};
pub use data::{DataHeader, DataKind};
pub use federation::{FedInit, FedMessage, FedResp, FED_INIT_LEN, FED_RESP_LEN};
pub use handshake::{
    encode_cookie_reply, encode_handshake_init, encode_handshake_resp, CookieReply, HandshakeInit,
    HandshakeResp, COOKIE_LEN, COOKIE_NONCE_LEN, MAC_LEN, SEALED_COOKIE_LEN,
};
pub use peers::{encode_unknown_sender, PeerInfo, PeerRevoked, PunchRequest};
pub use ping::{encode_supernode_ping, SupernodePong};
pub use register::{NakReason, Register, RegisterAck, RegisterNak};
pub use relay::{encode_fed_relay_header, encode_relay_header, RelayPacket};

use crate::keys::{CommunityId, PeerTag};
use codec::Reader;

/// The protocol version this crate speaks.
pub const VERSION: u8 = 2;
/// Size of the common header.
pub const HEADER_LEN: usize = 4;
/// Size of a data packet's header: common header, receiver index, counter. Also the AEAD's associated data.
pub const DATA_HEADER_LEN: usize = 16;
/// Size of the Poly1305 tag that follows every sealed payload.
pub const TAG_LEN: usize = 16;
/// Size of the relay header the supernode path adds in front of an edge-to-edge packet.
pub const RELAY_HEADER_LEN: usize = HEADER_LEN + 8;
/// Noise IKpsk2 first message with an 8-byte payload: e (32) + encrypted s (32+16) + encrypted payload (8+16).
pub const NOISE_INIT_LEN: usize = 104;
/// Noise IKpsk2 second message with an empty payload: e (32) + empty encrypted payload (16).
pub const NOISE_RESP_LEN: usize = 48;
/// Whole handshake initiation datagram (MAC1 and MAC2 last).
pub const HANDSHAKE_INIT_LEN: usize = HEADER_LEN + 4 + NOISE_INIT_LEN + 2 * MAC_LEN;
/// Whole handshake response datagram (MAC1 last).
pub const HANDSHAKE_RESP_LEN: usize = HEADER_LEN + 4 + 4 + NOISE_RESP_LEN + MAC_LEN;
/// Whole cookie reply datagram: smaller than the initiation it answers.
pub const COOKIE_REPLY_LEN: usize = HEADER_LEN + 4 + COOKIE_NONCE_LEN + SEALED_COOKIE_LEN;
// No amplification: a forged source address gets back fewer bytes than were sent in its name.
const _: () = assert!(COOKIE_REPLY_LEN < HANDSHAKE_INIT_LEN);
/// Noise IK first message of the control channel with an 8-byte payload: e (32) + encrypted s (32+16) +
/// encrypted payload (8+16).
pub const CTL_NOISE_INIT_LEN: usize = 104;
/// Noise IK second message of the control channel with an empty payload: e (32) + tag (16).
pub const CTL_NOISE_RESP_LEN: usize = 48;
/// Length of the MAC on a control channel initiation.
pub const CTL_MAC_LEN: usize = 16;
/// Length of the admission proof on a registration.
pub const ADMISSION_TAG_LEN: usize = 16;
/// At most this many local addresses are carried in a registration or peer info.
pub const MAX_LOCAL_ADDRS: usize = 8;
/// At most this many bytes of description.
pub const MAX_DESCRIPTION_LEN: usize = 64;

/// Message types (the second byte of every datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    /// Edge to edge: Noise IKpsk2 message 1.
    HandshakeInit = 0x01,
    /// Edge to edge: Noise IKpsk2 message 2.
    HandshakeResp = 0x02,
    /// Edge to edge: a sealed transport packet.
    Data = 0x03,
    /// Edge to edge: a loaded responder's cookie, instead of an answer to an initiation.
    CookieReply = 0x04,
    /// Edge to supernode: join or refresh.
    Register = 0x10,
    /// Supernode to edge: registration accepted.
    RegisterAck = 0x11,
    /// Supernode to edge: registration refused.
    RegisterNak = 0x12,
    /// Supernode to edge: what it knows about another edge of the community.
    PeerInfo = 0x13,
    /// Edge to supernode: please make this peer and me punch towards each other now.
    PunchRequest = 0x14,
    /// Supernode to edge: a packet came from an address that holds no registration.
    UnknownSender = 0x15,
    /// Supernode to edge: another edge of the community was cut off (its key is no longer allowed).
    PeerRevoked = 0x16,
    /// Edge to supernode: forward the enclosed edge-to-edge packet to the edge with this tag.
    Relay = 0x20,
    /// Supernode to edge: an edge-to-edge packet forwarded from the edge with this tag.
    Relayed = 0x21,
    /// Edge to supernode: are you there? (liveness, every second or so, much lighter than a registration)
    SupernodePing = 0x30,
    /// Supernode to edge: the answer to a ping.
    SupernodePong = 0x31,
    /// Edge to supernode: Noise IK message 1 of the control channel.
    CtlInit = 0x40,
    /// Supernode to edge: Noise IK message 2 of the control channel.
    CtlResp = 0x41,
    /// Edge to supernode: which static key do you have? (trust on first use)
    KeyQuery = 0x42,
    /// Supernode to edge: my static key.
    KeyReply = 0x43,
    /// Supernode to supernode: an edge registered with me (only sealed in a federation session).
    FedEdge = 0x38,
    /// Supernode to supernode: an edge is no longer registered with me (only sealed).
    FedGone = 0x39,
    /// Supernode to supernode: my edge asked to punch towards your edge (only sealed).
    FedPunch = 0x3a,
    /// Supernode to supernode: an edge-to-edge packet for your edge.
    FedRelay = 0x3b,
    /// Supernode to supernode: Noise IK message 1 of a federation link.
    FedInit = 0x3c,
    /// Supernode to supernode: Noise IK message 2 of a federation link.
    FedResp = 0x3d,
}

impl MsgType {
    #[inline]
    fn from_u8(b: u8) -> Option<MsgType> {
        use MsgType::*;
        Some(match b {
            0x01 => HandshakeInit,
            0x02 => HandshakeResp,
            0x03 => Data,
            0x04 => CookieReply,
            0x10 => Register,
            0x11 => RegisterAck,
            0x12 => RegisterNak,
            0x13 => PeerInfo,
            0x14 => PunchRequest,
            0x15 => UnknownSender,
            0x16 => PeerRevoked,
            0x20 => Relay,
            0x21 => Relayed,
            0x30 => SupernodePing,
            0x31 => SupernodePong,
            0x40 => CtlInit,
            0x41 => CtlResp,
            0x42 => KeyQuery,
            0x43 => KeyReply,
            0x38 => FedEdge,
            0x39 => FedGone,
            0x3a => FedPunch,
            0x3b => FedRelay,
            0x3c => FedInit,
            0x3d => FedResp,
            _ => return None,
        })
    }
}

/// Why a datagram could not be decoded. Every variant is a reason to count and drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its layout requires.
    #[error("truncated datagram")]
    Truncated,
    /// A version this implementation does not speak.
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// An unknown message type.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// A field holds a value its layout forbids.
    #[error("invalid field: {0}")]
    Invalid(&'static str),
    /// Bytes left over after a fixed-size message.
    #[error("trailing bytes")]
    Trailing,
}

/// A decoded datagram. Borrowed variants point into the input buffer: decoding copies only small fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// See [`HandshakeInit`].
    HandshakeInit(HandshakeInit<'a>),
    /// See [`HandshakeResp`].
    HandshakeResp(HandshakeResp<'a>),
    /// See [`CookieReply`].
    CookieReply(CookieReply),
    /// A data packet: the header and the sealed payload (ciphertext and tag).
    Data(DataHeader, &'a [u8]),
    /// See [`CtlInit`].
    CtlInit(CtlInit<'a>),
    /// See [`CtlResp`].
    CtlResp(CtlResp<'a>),
    /// A key query (see [`encode_key_query`]).
    KeyQuery,
    /// See [`KeyReply`].
    KeyReply(KeyReply),
    /// See [`Register`].
    Register(Register),
    /// See [`RegisterAck`].
    RegisterAck(RegisterAck),
    /// See [`RegisterNak`].
    RegisterNak(RegisterNak),
    /// See [`PeerInfo`].
    PeerInfo(PeerInfo),
    /// See [`PunchRequest`].
    PunchRequest(PunchRequest),
    /// See [`PeerRevoked`].
    PeerRevoked(PeerRevoked),
    /// The sender of our last datagram holds no registration at the supernode.
    UnknownSender,
    /// Forward `inner` to the edge with tag `dest`.
    Relay {
        /// The destination edge's tag.
        dest: PeerTag,
        /// The edge-to-edge packet, untouched.
        inner: &'a [u8],
    },
    /// `inner` was forwarded from the edge with tag `src`.
    Relayed {
        /// The source edge's tag.
        src: PeerTag,
        /// The edge-to-edge packet, untouched.
        inner: &'a [u8],
    },
    /// A liveness ping with its nonce.
    SupernodePing(u64),
    /// See [`SupernodePong`].
    SupernodePong(SupernodePong),
    /// A federation control message: believed only as the plaintext of a sealed federation packet.
    Fed(FedMessage),
    /// See [`FedInit`].
    FedInit(FedInit<'a>),
    /// See [`FedResp`].
    FedResp(FedResp<'a>),
    /// An edge-to-edge packet relayed between supernodes: from the sender's edge `src` to the receiver's
    /// edge `dest`, in `community`. Accepted only from the address of a federation peer with a live
    /// session.
    FedRelay {
        /// The community.
        community: CommunityId,
        /// The source edge's tag.
        src: PeerTag,
        /// The destination edge's tag.
        dest: PeerTag,
        /// The edge-to-edge packet, untouched.
        inner: &'a [u8],
    },
}

/// Reads only the message type, for a receiver that dispatches before decoding.
#[inline]
pub fn peek_type(buf: &[u8]) -> Result<MsgType, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    if buf[0] != VERSION {
        return Err(DecodeError::Version(buf[0]));
    }
    MsgType::from_u8(buf[1]).ok_or(DecodeError::UnknownType(buf[1]))
}

/// Decodes one datagram.
pub fn decode(buf: &[u8]) -> Result<Message<'_>, DecodeError> {
    let t = peek_type(buf)?;
    let mut r = Reader::after_header(buf)?;
    Ok(match t {
        MsgType::HandshakeInit => Message::HandshakeInit(r.read_all()?),
        MsgType::HandshakeResp => Message::HandshakeResp(r.read_all()?),
        MsgType::CookieReply => Message::CookieReply(r.read_all()?),
        MsgType::Data => {
            let (h, sealed) = data::read_sealed(&mut r)?;
            Message::Data(h, sealed)
        }
        MsgType::CtlInit => Message::CtlInit(r.read_all()?),
        MsgType::CtlResp => Message::CtlResp(r.read_all()?),
        MsgType::KeyQuery => {
            control::read_key_query(&mut r)?;
            Message::KeyQuery
        }
        MsgType::KeyReply => Message::KeyReply(r.read_all()?),
        MsgType::Register => Message::Register(r.read_all()?),
        MsgType::RegisterAck => Message::RegisterAck(r.read_all()?),
        MsgType::RegisterNak => Message::RegisterNak(r.read_all()?),
        MsgType::PeerInfo => Message::PeerInfo(r.read_all()?),
        MsgType::PunchRequest => Message::PunchRequest(r.read_all()?),
        MsgType::PeerRevoked => Message::PeerRevoked(r.read_all()?),
        MsgType::UnknownSender => {
            r.finish()?;
            Message::UnknownSender
        }
        MsgType::Relay | MsgType::Relayed => relay::read_relay(t, &mut r)?,
        MsgType::SupernodePing => Message::SupernodePing(ping::read_ping(&mut r)?),
        MsgType::SupernodePong => Message::SupernodePong(r.read_all()?),
        MsgType::FedEdge | MsgType::FedGone | MsgType::FedPunch => federation::read_fed(t, &mut r)?,
        MsgType::FedInit => Message::FedInit(r.read_all()?),
        MsgType::FedResp => Message::FedResp(r.read_all()?),
        MsgType::FedRelay => relay::read_fed_relay(&mut r)?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::SocketAddr;

    /// Two local addresses, one of each family.
    pub(crate) fn sample_addrs() -> Vec<SocketAddr> {
        vec![
            "10.1.0.2:7801".parse().unwrap(),
            "[fd00::1]:65535".parse().unwrap(),
        ]
    }

    /// Decodes what must decode.
    pub(crate) fn roundtrip(bytes: &[u8]) -> Message<'_> {
        decode(bytes).expect("decodes")
    }

    #[test]
    fn rejects_bad_version_type_and_trailing() {
        // Version 1 is not spoken any more (PROTOCOL.md, "Versions").
        assert_eq!(decode(&[1, 0x15, 0, 0]), Err(DecodeError::Version(1)));
        assert_eq!(decode(&[3, 1, 0, 0]), Err(DecodeError::Version(3)));
        assert_eq!(
            decode(&[2, 0x7f, 0, 0]),
            Err(DecodeError::UnknownType(0x7f))
        );
        assert_eq!(decode(&[2, 0x15, 0, 0, 0]), Err(DecodeError::Trailing));
        assert_eq!(decode(&[2]), Err(DecodeError::Truncated));
    }
}
