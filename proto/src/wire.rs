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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::keys::{CommunityId, PeerTag, PublicKey};

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
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
/// Whole handshake initiation datagram.
pub const HANDSHAKE_INIT_LEN: usize = HEADER_LEN + 4 + NOISE_INIT_LEN;
/// Whole handshake response datagram.
pub const HANDSHAKE_RESP_LEN: usize = HEADER_LEN + 4 + 4 + NOISE_RESP_LEN;
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
    /// Supernode to supernode: an edge registered with me (authenticated).
    FedEdge = 0x38,
    /// Supernode to supernode: an edge is no longer registered with me (authenticated).
    FedGone = 0x39,
    /// Supernode to supernode: my edge asked to punch towards your edge (authenticated).
    FedPunch = 0x3a,
    /// Supernode to supernode: an edge-to-edge packet for your edge.
    FedRelay = 0x3b,
}

impl MsgType {
    fn from_u8(b: u8) -> Option<MsgType> {
        use MsgType::*;
        Some(match b {
            0x01 => HandshakeInit,
            0x02 => HandshakeResp,
            0x03 => Data,
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
            0x38 => FedEdge,
            0x39 => FedGone,
            0x3a => FedPunch,
            0x3b => FedRelay,
            _ => return None,
        })
    }
}

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
}

impl DataKind {
    fn from_u8(b: u8) -> Option<DataKind> {
        Some(match b {
            0 => DataKind::Frame,
            1 => DataKind::Keepalive,
            2 => DataKind::Probe,
            3 => DataKind::ProbeReply,
            _ => return None,
        })
    }
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NakReason {
    /// The supernode serves a fixed list of communities and this is not one of them.
    CommunityNotAllowed = 1,
    /// The admission proof did not verify: the edge does not know the community secret.
    BadAdmissionProof = 2,
    /// The supernode is full.
    NoCapacity = 3,
    /// The address pool of the community is exhausted.
    PoolExhausted = 4,
    /// The community lists the edge keys it allows, and this edge's key is not one of them (or no longer).
    KeyNotAllowed = 5,
    /// The supernode does not know this community id but admits communities by name pattern: register
    /// again with the community name included (REGISTER flag bit 2).
    NameRequired = 6,
    /// A reason this version does not know.
    Other = 255,
}

impl NakReason {
    fn from_u8(b: u8) -> NakReason {
        match b {
            1 => NakReason::CommunityNotAllowed,
            2 => NakReason::BadAdmissionProof,
            3 => NakReason::NoCapacity,
            4 => NakReason::PoolExhausted,
            5 => NakReason::KeyNotAllowed,
            6 => NakReason::NameRequired,
            _ => NakReason::Other,
        }
    }

    /// What the reason means, in words for a log line or a status page.
    pub fn explain(&self) -> &'static str {
        match self {
            NakReason::CommunityNotAllowed => "the supernode does not serve this community",
            NakReason::BadAdmissionProof => {
                "the admission proof did not verify: the community secret is not the one the supernode expects"
            }
            NakReason::NoCapacity => "the supernode is full",
            NakReason::PoolExhausted => "no free address is left in the community's address pool",
            NakReason::KeyNotAllowed => {
                "this edge's key is not on the community's list of allowed keys"
            }
            NakReason::NameRequired => "the supernode needs the community name to match its patterns",
            NakReason::Other => "a reason this version does not know",
        }
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

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Group addresses (broadcast and multicast) have the low bit of the first octet set.
    pub fn is_group(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// A locally administered unicast address derived from `seed`, so an edge keeps its MAC across restarts
    /// without configuration (it is derived from the edge's public key).
    pub fn local_from_seed(seed: &[u8]) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&seed[..6]);
        m[0] = (m[0] & 0xfc) | 0x02;
        MacAddr(m)
    }
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl std::fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for MacAddr {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut m = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in m.iter_mut() {
            let p = parts
                .next()
                .ok_or("expected six hex octets like 02:00:00:00:00:01")?;
            if p.len() != 2 {
                return Err("expected six hex octets like 02:00:00:00:00:01");
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| "not a hex octet")?;
        }
        if parts.next().is_some() {
            return Err("expected six hex octets like 02:00:00:00:00:01");
        }
        Ok(MacAddr(m))
    }
}

/// A virtual IPv4 address with its prefix length; `0.0.0.0/0` on the wire means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub prefix: u8,
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Ipv4Net {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .split_once('/')
            .ok_or("expected address/prefix, e.g. 10.0.0.1/24")?;
        let addr: Ipv4Addr = a.parse().map_err(|_| "not an IPv4 address")?;
        let prefix: u8 = p.parse().map_err(|_| "prefix is not a number")?;
        if prefix > 32 {
            return Err("prefix longer than 32");
        }
        Ok(Ipv4Net { addr, prefix })
    }
}

/// Edge to edge, Noise message 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInit<'a> {
    /// The index the initiator wants the responder to put on packets for the new session.
    pub sender_index: u32,
    /// The Noise message, exactly [`NOISE_INIT_LEN`] bytes.
    pub noise: &'a [u8],
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
    pub fn write(&self, out: &mut [u8; DATA_HEADER_LEN]) {
        out[0] = VERSION;
        out[1] = MsgType::Data as u8;
        out[2] = self.kind as u8;
        out[3] = 0;
        out[4..8].copy_from_slice(&self.receiver_index.to_le_bytes());
        out[8..16].copy_from_slice(&self.counter.to_le_bytes());
    }
}

/// Edge to supernode: join the community or refresh the registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// Which community (derived from its name, see `keys`).
    pub community: CommunityId,
    /// The edge's static public key: its identity.
    pub public_key: PublicKey,
    /// Strictly increasing per edge identity (wall-clock based): a replayed registration is ignored.
    pub counter: u64,
    /// The edge's TAP MAC address.
    pub mac: MacAddr,
    /// Ask the supernode to assign a virtual IPv4 address (flag bit 0).
    pub wants_ip: bool,
    /// Ask for peer info about every edge of the community (flag bit 1): set on the first registration
    /// with a supernode and whenever the edge forgot peers, so it never depends on having heard every change.
    pub wants_peers: bool,
    /// The statically configured virtual address, if any, so peers can show it.
    pub static_ip: Option<Ipv4Net>,
    /// The edge's own socket addresses on its local networks (candidates for a direct path).
    pub local_addrs: Vec<SocketAddr>,
    /// A human description (host name by default).
    pub description: String,
    /// The community's name (flag bit 2), sent only to a supernode that asked for it with
    /// [`NakReason::NameRequired`] (it admits communities by name pattern). Reveals the name to that
    /// supernode and to the path.
    pub name: Option<String>,
    /// HMAC-SHA256 under the admission key over all preceding bytes, truncated.
    pub admission_tag: [u8; ADMISSION_TAG_LEN],
}

/// Supernode to edge: registration accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterAck {
    /// Echo of the registration's community.
    pub community: CommunityId,
    /// Echo of the registration's public key.
    pub public_key: PublicKey,
    /// Echo of the registration's counter, so the edge can match acknowledgement to request.
    pub counter: u64,
    /// The address the registration arrived from: the edge's public (server-reflexive) address.
    pub observed: SocketAddr,
    /// The virtual address assigned when the edge asked for one.
    pub assigned_ip: Option<Ipv4Net>,
    /// Seconds until the supernode forgets the registration unless refreshed.
    pub lifetime_secs: u16,
    /// Random at every supernode start: a change tells the edge that the supernode restarted.
    pub boot_id: u64,
    /// The community lists the edge keys it allows (header aux bit 0): the edge answers handshake
    /// initiations only from peers the supernode introduced with peer info.
    pub introduced_only: bool,
}

/// Supernode to edge: registration refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterNak {
    /// Echo of the registration's community.
    pub community: CommunityId,
    /// Echo of the registration's public key.
    pub public_key: PublicKey,
    /// Echo of the registration's counter.
    pub counter: u64,
    /// Why.
    pub reason: NakReason,
}

/// Supernode to edge: another edge of the same community.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The community both edges are in.
    pub community: CommunityId,
    /// Punch now: the supernode sent the mirror of this message to the other edge at the same moment.
    pub punch: bool,
    /// The other edge's identity.
    pub public_key: PublicKey,
    /// Its TAP MAC address.
    pub mac: MacAddr,
    /// Its virtual address, if known.
    pub ip: Option<Ipv4Net>,
    /// Where its registrations come from (its public address).
    pub observed: SocketAddr,
    /// Its own local addresses.
    pub local_addrs: Vec<SocketAddr>,
    /// Its description.
    pub description: String,
}

/// Edge to supernode: make `target` and me punch towards each other now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PunchRequest {
    /// The community.
    pub community: CommunityId,
    /// The requester (must be registered from the datagram's source address).
    pub from: PublicKey,
    /// The peer to punch towards.
    pub target: PublicKey,
}

/// Supernode to edge: answer to [`MsgType::SupernodePing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupernodePong {
    /// The ping's nonce, echoed.
    pub nonce: u64,
    /// The supernode's boot id (as in registration acknowledgements): a new one means it restarted.
    pub boot_id: u64,
    /// How full it is: registered edges per thousand of its capacity (`max_edges`).
    pub load_permille: u16,
}

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

/// Supernode to edge: `public_key` was cut off from the community (its key is no longer allowed): drop
/// every session with it and forget it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRevoked {
    /// The community.
    pub community: CommunityId,
    /// The revoked edge.
    pub public_key: PublicKey,
}

/// A decoded datagram. Borrowed variants point into the input buffer: decoding copies only small fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// See [`HandshakeInit`].
    HandshakeInit(HandshakeInit<'a>),
    /// See [`HandshakeResp`].
    HandshakeResp(HandshakeResp<'a>),
    /// A data packet: the header and the sealed payload (ciphertext and tag).
    Data(DataHeader, &'a [u8]),
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
    /// A federation control message, not yet authenticated: the receiver checks `tag` over `signed`
    /// with its federation key, then `counter` against the sender's last.
    Fed {
        /// The message.
        msg: FedMessage,
        /// The sender's counter.
        counter: u64,
        /// The bytes the tag covers.
        signed: &'a [u8],
        /// The tag.
        tag: [u8; FED_TAG_LEN],
    },
    /// An edge-to-edge packet relayed between supernodes: from the sender's edge `src` to the receiver's
    /// edge `dest`, in `community`. Accepted only from a configured federation peer's address.
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

/// A bounds-checked cursor: every read either succeeds or returns [`DecodeError::Truncated`].
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// The body of a peer info (also the body of a federation edge announcement).
    fn peer_info(&mut self, punch: bool) -> Result<PeerInfo, DecodeError> {
        Ok(PeerInfo {
            community: CommunityId(self.array()?),
            public_key: PublicKey(self.array()?),
            mac: MacAddr(self.array()?),
            ip: self.ipv4_net()?,
            observed: self.socket_addr()?,
            local_addrs: self.addr_list()?,
            description: self.description()?,
            punch,
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing)
        }
    }
    fn socket_addr(&mut self) -> Result<SocketAddr, DecodeError> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            _ => return Err(DecodeError::Invalid("address family")),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }
    fn addr_list(&mut self) -> Result<Vec<SocketAddr>, DecodeError> {
        let n = self.u8()? as usize;
        if n > MAX_LOCAL_ADDRS {
            return Err(DecodeError::Invalid("too many local addresses"));
        }
        // Bounded by MAX_LOCAL_ADDRS, never by what the sender claims.
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.socket_addr()?);
        }
        Ok(v)
    }
    fn description(&mut self) -> Result<String, DecodeError> {
        let n = self.u8()? as usize;
        if n > MAX_DESCRIPTION_LEN {
            return Err(DecodeError::Invalid("description too long"));
        }
        // Invalid bytes become U+FFFD, three bytes each: cut the result back to the length it had on the
        // wire, so a description never outgrows its datagram or MAX_DESCRIPTION_LEN, and a decoded
        // message re-encodes to itself (the encoder would cut a longer one).
        let s = String::from_utf8_lossy(self.take(n)?);
        Ok(truncate_utf8(&s, n).to_string())
    }
    fn ipv4_net(&mut self) -> Result<Option<Ipv4Net>, DecodeError> {
        let addr = Ipv4Addr::from(self.array::<4>()?);
        let prefix = self.u8()?;
        if prefix > 32 {
            return Err(DecodeError::Invalid("prefix length"));
        }
        if addr.is_unspecified() && prefix == 0 {
            Ok(None)
        } else {
            Ok(Some(Ipv4Net { addr, prefix }))
        }
    }
}

/// Appends fields in wire order.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    /// The body of a peer info (also the body of a federation edge announcement).
    fn peer_info(&mut self, p: &PeerInfo) {
        self.bytes(&p.community.0);
        self.bytes(&p.public_key.0);
        self.bytes(&p.mac.0);
        self.ipv4_net(&p.ip);
        self.socket_addr(&p.observed);
        self.addr_list(&p.local_addrs);
        self.description(&p.description);
    }
    fn header(&mut self, t: MsgType, aux: u8) {
        self.out.extend_from_slice(&[VERSION, t as u8, aux, 0]);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }
    fn socket_addr(&mut self, a: &SocketAddr) {
        match a.ip() {
            IpAddr::V4(ip) => {
                self.u8(4);
                self.bytes(&ip.octets());
            }
            IpAddr::V6(ip) => {
                self.u8(6);
                self.bytes(&ip.octets());
            }
        }
        self.u16(a.port());
    }
    fn addr_list(&mut self, v: &[SocketAddr]) {
        let v = &v[..v.len().min(MAX_LOCAL_ADDRS)];
        self.u8(v.len() as u8);
        for a in v {
            self.socket_addr(a);
        }
    }
    fn description(&mut self, s: &str) {
        let b = truncate_utf8(s, MAX_DESCRIPTION_LEN).as_bytes();
        self.u8(b.len() as u8);
        self.bytes(b);
    }
    fn ipv4_net(&mut self, n: &Option<Ipv4Net>) {
        match n {
            Some(n) => {
                self.bytes(&n.addr.octets());
                self.u8(n.prefix);
            }
            None => self.bytes(&[0; 5]),
        }
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

/// Reads only the message type, for a receiver that dispatches before decoding.
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
    let aux = buf[2];
    let mut r = Reader {
        buf: &buf[HEADER_LEN..],
    };
    let msg = match t {
        MsgType::HandshakeInit => {
            let sender_index = r.u32()?;
            let noise = r.take(NOISE_INIT_LEN)?;
            r.finish()?;
            Message::HandshakeInit(HandshakeInit {
                sender_index,
                noise,
            })
        }
        MsgType::HandshakeResp => {
            let sender_index = r.u32()?;
            let receiver_index = r.u32()?;
            let noise = r.take(NOISE_RESP_LEN)?;
            r.finish()?;
            Message::HandshakeResp(HandshakeResp {
                sender_index,
                receiver_index,
                noise,
            })
        }
        MsgType::Data => {
            let kind = DataKind::from_u8(aux).ok_or(DecodeError::Invalid("data kind"))?;
            let receiver_index = r.u32()?;
            let counter = u64::from_le_bytes(r.array()?);
            let sealed = r.rest();
            if sealed.len() < TAG_LEN {
                return Err(DecodeError::Truncated);
            }
            Message::Data(
                DataHeader {
                    kind,
                    receiver_index,
                    counter,
                },
                sealed,
            )
        }
        MsgType::Register => {
            let community = CommunityId(r.array()?);
            let public_key = PublicKey(r.array()?);
            let counter = r.u64()?;
            let mac = MacAddr(r.array()?);
            let flags = r.u8()?;
            let static_ip = r.ipv4_net()?;
            let local_addrs = r.addr_list()?;
            let description = r.description()?;
            let name = if flags & 4 != 0 {
                Some(r.description()?)
            } else {
                None
            };
            let admission_tag = r.array()?;
            r.finish()?;
            Message::Register(Register {
                community,
                public_key,
                counter,
                mac,
                wants_ip: flags & 1 != 0,
                wants_peers: flags & 2 != 0,
                static_ip,
                local_addrs,
                description,
                name,
                admission_tag,
            })
        }
        MsgType::RegisterAck => {
            let community = CommunityId(r.array()?);
            let public_key = PublicKey(r.array()?);
            let counter = r.u64()?;
            let observed = r.socket_addr()?;
            let assigned_ip = r.ipv4_net()?;
            let lifetime_secs = r.u16()?;
            let boot_id = r.u64()?;
            r.finish()?;
            Message::RegisterAck(RegisterAck {
                community,
                public_key,
                counter,
                observed,
                assigned_ip,
                lifetime_secs,
                boot_id,
                introduced_only: aux & 1 != 0,
            })
        }
        MsgType::RegisterNak => {
            let community = CommunityId(r.array()?);
            let public_key = PublicKey(r.array()?);
            let counter = r.u64()?;
            let reason = NakReason::from_u8(r.u8()?);
            r.finish()?;
            Message::RegisterNak(RegisterNak {
                community,
                public_key,
                counter,
                reason,
            })
        }
        MsgType::PeerInfo => {
            let info = r.peer_info(aux & 1 != 0)?;
            r.finish()?;
            Message::PeerInfo(info)
        }
        MsgType::PunchRequest => {
            let community = CommunityId(r.array()?);
            let from = PublicKey(r.array()?);
            let target = PublicKey(r.array()?);
            r.finish()?;
            Message::PunchRequest(PunchRequest {
                community,
                from,
                target,
            })
        }
        MsgType::UnknownSender => {
            r.finish()?;
            Message::UnknownSender
        }
        MsgType::SupernodePing => {
            let nonce = r.u64()?;
            r.finish()?;
            Message::SupernodePing(nonce)
        }
        MsgType::SupernodePong => {
            let nonce = r.u64()?;
            let boot_id = r.u64()?;
            let load_permille = r.u16()?;
            r.finish()?;
            Message::SupernodePong(SupernodePong {
                nonce,
                boot_id,
                load_permille,
            })
        }
        MsgType::FedEdge | MsgType::FedGone | MsgType::FedPunch => {
            if buf.len() < HEADER_LEN + 8 + FED_TAG_LEN {
                return Err(DecodeError::Truncated);
            }
            let (signed, tag) = buf.split_at(buf.len() - FED_TAG_LEN);
            let mut r = Reader {
                buf: &signed[HEADER_LEN..],
            };
            let counter = r.u64()?;
            let msg = match t {
                MsgType::FedEdge => FedMessage::Edge {
                    info: r.peer_info(false)?,
                    introduce: aux & 1 != 0,
                },
                MsgType::FedGone => FedMessage::Gone {
                    community: CommunityId(r.array()?),
                    key: PublicKey(r.array()?),
                },
                _ => FedMessage::Punch {
                    community: CommunityId(r.array()?),
                    from: PublicKey(r.array()?),
                    target: PublicKey(r.array()?),
                },
            };
            r.finish()?;
            Message::Fed {
                msg,
                counter,
                signed,
                tag: tag.try_into().expect("split at the tag length"),
            }
        }
        MsgType::FedRelay => {
            let community = CommunityId(r.array()?);
            let src = PeerTag(r.array()?);
            let dest = PeerTag(r.array()?);
            let inner = r.rest();
            if inner.len() < HEADER_LEN {
                return Err(DecodeError::Truncated);
            }
            Message::FedRelay {
                community,
                src,
                dest,
                inner,
            }
        }
        MsgType::PeerRevoked => {
            let community = CommunityId(r.array()?);
            let public_key = PublicKey(r.array()?);
            r.finish()?;
            Message::PeerRevoked(PeerRevoked {
                community,
                public_key,
            })
        }
        MsgType::Relay | MsgType::Relayed => {
            let tag = PeerTag(r.array()?);
            let inner = r.rest();
            if inner.len() < HEADER_LEN {
                return Err(DecodeError::Truncated);
            }
            if t == MsgType::Relay {
                Message::Relay { dest: tag, inner }
            } else {
                Message::Relayed { src: tag, inner }
            }
        }
    };
    Ok(msg)
}

/// Encodes a handshake initiation.
pub fn encode_handshake_init(sender_index: u32, noise: &[u8], out: &mut Vec<u8>) {
    debug_assert_eq!(noise.len(), NOISE_INIT_LEN);
    let mut w = Writer { out };
    w.header(MsgType::HandshakeInit, 0);
    w.u32(sender_index);
    w.bytes(noise);
}

/// Encodes a handshake response.
pub fn encode_handshake_resp(
    sender_index: u32,
    receiver_index: u32,
    noise: &[u8],
    out: &mut Vec<u8>,
) {
    debug_assert_eq!(noise.len(), NOISE_RESP_LEN);
    let mut w = Writer { out };
    w.header(MsgType::HandshakeResp, 0);
    w.u32(sender_index);
    w.u32(receiver_index);
    w.bytes(noise);
}

impl Register {
    /// Encodes everything but the admission tag: the bytes the tag authenticates.
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) {
        let mut w = Writer { out };
        w.header(MsgType::Register, 0);
        w.bytes(&self.community.0);
        w.bytes(&self.public_key.0);
        w.u64(self.counter);
        w.bytes(&self.mac.0);
        w.u8(self.wants_ip as u8
            | (self.wants_peers as u8) << 1
            | (self.name.is_some() as u8) << 2);
        w.ipv4_net(&self.static_ip);
        w.addr_list(&self.local_addrs);
        w.description(&self.description);
        if let Some(name) = &self.name {
            w.description(name);
        }
    }
    /// Encodes the whole message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_unsigned(out);
        out.extend_from_slice(&self.admission_tag);
    }
}

impl RegisterAck {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer { out };
        w.header(MsgType::RegisterAck, self.introduced_only as u8);
        w.bytes(&self.community.0);
        w.bytes(&self.public_key.0);
        w.u64(self.counter);
        w.socket_addr(&self.observed);
        w.ipv4_net(&self.assigned_ip);
        w.u16(self.lifetime_secs);
        w.u64(self.boot_id);
    }
}

impl RegisterNak {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer { out };
        w.header(MsgType::RegisterNak, 0);
        w.bytes(&self.community.0);
        w.bytes(&self.public_key.0);
        w.u64(self.counter);
        w.u8(self.reason as u8);
    }
}

impl PeerInfo {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer { out };
        w.header(MsgType::PeerInfo, self.punch as u8);
        w.peer_info(self);
    }
}

impl PunchRequest {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer { out };
        w.header(MsgType::PunchRequest, 0);
        w.bytes(&self.community.0);
        w.bytes(&self.from.0);
        w.bytes(&self.target.0);
    }
}

impl PeerRevoked {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer { out };
        w.header(MsgType::PeerRevoked, 0);
        w.bytes(&self.community.0);
        w.bytes(&self.public_key.0);
    }
}

/// Encodes an unknown-sender notice.
pub fn encode_unknown_sender(out: &mut Vec<u8>) {
    Writer { out }.header(MsgType::UnknownSender, 0);
}

/// Encodes a supernode liveness ping.
pub fn encode_supernode_ping(nonce: u64, out: &mut Vec<u8>) {
    let mut w = Writer { out };
    w.header(MsgType::SupernodePing, 0);
    w.u64(nonce);
}

impl SupernodePong {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer { out };
        w.header(MsgType::SupernodePong, 0);
        w.u64(self.nonce);
        w.u64(self.boot_id);
        w.u16(self.load_permille);
    }
}

impl FedMessage {
    /// Encodes the message with the sender's `counter` and signs it with `key`.
    pub fn encode(&self, counter: u64, key: &crate::keys::FederationKey, out: &mut Vec<u8>) {
        let start = out.len();
        let mut w = Writer { out };
        match self {
            FedMessage::Edge { info, introduce } => {
                w.header(MsgType::FedEdge, *introduce as u8);
                w.u64(counter);
                w.peer_info(info);
            }
            FedMessage::Gone { community, key } => {
                w.header(MsgType::FedGone, 0);
                w.u64(counter);
                w.bytes(&community.0);
                w.bytes(&key.0);
            }
            FedMessage::Punch {
                community,
                from,
                target,
            } => {
                w.header(MsgType::FedPunch, 0);
                w.u64(counter);
                w.bytes(&community.0);
                w.bytes(&from.0);
                w.bytes(&target.0);
            }
        }
        let tag = key.0.tag(&out[start..]);
        out.extend_from_slice(&tag);
    }
}

/// Encodes the header of a relayed packet between supernodes; the caller appends the inner packet.
pub fn encode_fed_relay_header(
    community: CommunityId,
    src: PeerTag,
    dest: PeerTag,
    out: &mut Vec<u8>,
) {
    let mut w = Writer { out };
    w.header(MsgType::FedRelay, 0);
    w.bytes(&community.0);
    w.bytes(&src.0);
    w.bytes(&dest.0);
}

/// Encodes the relay header; the caller appends the inner packet.
pub fn encode_relay_header(t: MsgType, tag: PeerTag, out: &mut Vec<u8>) {
    debug_assert!(matches!(t, MsgType::Relay | MsgType::Relayed));
    let mut w = Writer { out };
    w.header(t, 0);
    w.bytes(&tag.0);
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn sample_addrs() -> Vec<SocketAddr> {
        vec![
            "10.1.0.2:7801".parse().unwrap(),
            "[fd00::1]:65535".parse().unwrap(),
        ]
    }

    fn roundtrip(bytes: &[u8]) -> Message<'_> {
        decode(bytes).expect("decodes")
    }

    #[test]
    fn register_roundtrip_and_size() {
        let m = Register {
            community: CommunityId([1; 8]),
            public_key: PublicKey([2; 32]),
            counter: 0x0102_0304_0506_0708,
            mac: MacAddr([2, 0, 0, 0, 0, 9]),
            wants_ip: true,
            wants_peers: true,
            static_ip: Some("10.0.0.1/24".parse().unwrap()),
            local_addrs: sample_addrs(),
            description: "héllo".into(),
            name: None,
            admission_tag: [7; 16],
        };
        let mut b = Vec::new();
        m.encode(&mut b);
        // 4 hdr + 8 + 32 + 8 + 6 + 1 + 5 + (1 + 7 + 19) + (1 + 6) + 16
        assert_eq!(b.len(), 4 + 8 + 32 + 8 + 6 + 1 + 5 + 27 + 7 + 16);
        assert_eq!(roundtrip(&b), Message::Register(m.clone()));
        // With the community name (flag bit 2): 1 + 9 more bytes, before the tag.
        let named = Register {
            name: Some("office-42".into()),
            ..m
        };
        let mut b = Vec::new();
        named.encode(&mut b);
        assert_eq!(b.len(), 4 + 8 + 32 + 8 + 6 + 1 + 5 + 27 + 7 + 10 + 16);
        assert_eq!(b[4 + 8 + 32 + 8 + 6] & 4, 4);
        assert_eq!(roundtrip(&b), Message::Register(named));
    }

    #[test]
    fn ack_nak_peerinfo_punch_roundtrip() {
        let ack = RegisterAck {
            community: CommunityId([1; 8]),
            public_key: PublicKey([3; 32]),
            counter: 9,
            observed: "203.0.113.5:40000".parse().unwrap(),
            assigned_ip: None,
            lifetime_secs: 65,
            boot_id: 42,
            introduced_only: false,
        };
        let mut b = Vec::new();
        ack.encode(&mut b);
        assert_eq!(b.len(), 4 + 8 + 32 + 8 + 7 + 5 + 2 + 8);
        assert_eq!(roundtrip(&b), Message::RegisterAck(ack.clone()));
        let restricted = RegisterAck {
            introduced_only: true,
            ..ack
        };
        let mut b = Vec::new();
        restricted.encode(&mut b);
        assert_eq!(b[2], 1, "the flag is aux bit 0");
        assert_eq!(roundtrip(&b), Message::RegisterAck(restricted));

        let rv = PeerRevoked {
            community: CommunityId([1; 8]),
            public_key: PublicKey([3; 32]),
        };
        let mut b = Vec::new();
        rv.encode(&mut b);
        assert_eq!(b.len(), 44);
        assert_eq!(roundtrip(&b), Message::PeerRevoked(rv));
        for reason in [NakReason::KeyNotAllowed, NakReason::NameRequired] {
            let nak = RegisterNak {
                community: CommunityId([1; 8]),
                public_key: PublicKey([3; 32]),
                counter: 9,
                reason,
            };
            let mut b = Vec::new();
            nak.encode(&mut b);
            assert_eq!(roundtrip(&b), Message::RegisterNak(nak));
        }

        let nak = RegisterNak {
            community: CommunityId([1; 8]),
            public_key: PublicKey([3; 32]),
            counter: 9,
            reason: NakReason::BadAdmissionProof,
        };
        let mut b = Vec::new();
        nak.encode(&mut b);
        assert_eq!(b.len(), 4 + 8 + 32 + 8 + 1);
        assert_eq!(roundtrip(&b), Message::RegisterNak(nak));

        for punch in [false, true] {
            let pi = PeerInfo {
                community: CommunityId([1; 8]),
                punch,
                public_key: PublicKey([4; 32]),
                mac: MacAddr([2, 1, 2, 3, 4, 5]),
                ip: Some("10.128.0.7/24".parse().unwrap()),
                observed: "[2001:db8::1]:7".parse().unwrap(),
                local_addrs: sample_addrs(),
                description: "laptop".into(),
            };
            let mut b = Vec::new();
            pi.encode(&mut b);
            assert_eq!(roundtrip(&b), Message::PeerInfo(pi));
        }

        let pr = PunchRequest {
            community: CommunityId([1; 8]),
            from: PublicKey([5; 32]),
            target: PublicKey([6; 32]),
        };
        let mut b = Vec::new();
        pr.encode(&mut b);
        assert_eq!(b.len(), 4 + 8 + 64);
        assert_eq!(roundtrip(&b), Message::PunchRequest(pr));

        let mut b = Vec::new();
        encode_unknown_sender(&mut b);
        assert_eq!(roundtrip(&b), Message::UnknownSender);
    }

    #[test]
    fn handshake_and_data_roundtrip() {
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
    }

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
    fn rejects_bad_version_type_and_trailing() {
        assert_eq!(decode(&[2, 1, 0, 0]), Err(DecodeError::Version(2)));
        assert_eq!(
            decode(&[1, 0x7f, 0, 0]),
            Err(DecodeError::UnknownType(0x7f))
        );
        assert_eq!(decode(&[1, 0x15, 0, 0, 0]), Err(DecodeError::Trailing));
        assert_eq!(decode(&[1]), Err(DecodeError::Truncated));
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
    fn mac_and_net_parse() {
        let m: MacAddr = "02:aa:bb:cc:dd:0e".parse().unwrap();
        assert_eq!(m.to_string(), "02:aa:bb:cc:dd:0e");
        assert!("02:aa:bb:cc:dd".parse::<MacAddr>().is_err());
        assert!("02:aa:bb:cc:dd:ee:ff".parse::<MacAddr>().is_err());
        assert!(MacAddr::BROADCAST.is_group());
        let l = MacAddr::local_from_seed(&[0xff; 32]);
        assert!(!l.is_group());
        assert_eq!(l.0[0] & 2, 2);
        assert!("10.0.0.1/33".parse::<Ipv4Net>().is_err());
        assert_eq!(truncate_utf8("héllo", 2), "h");
    }
}
