//! Registration: an edge joins a community at a supernode (REGISTER) and is accepted (REGISTER_ACK) or
//! refused with a reason (REGISTER_NAK).

use std::net::SocketAddr;

use super::codec::{put_header, Codec, Reader};
use super::{DecodeError, Ipv4Net, MacAddr, MsgType, ADMISSION_TAG_LEN};
use crate::keys::{CommunityId, PublicKey};

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

/// REGISTER flag bits (the byte after the MAC address).
const WANTS_IP: u8 = 1;
const WANTS_PEERS: u8 = 2;
const HAS_NAME: u8 = 4;

impl Register {
    /// Encodes everything but the admission tag: the bytes the tag authenticates.
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) {
        put_header(out, MsgType::Register, 0);
        self.community.encode(out);
        self.public_key.encode(out);
        out.extend_from_slice(&self.counter.to_be_bytes());
        self.mac.encode(out);
        let mut flags = 0;
        if self.wants_ip {
            flags |= WANTS_IP;
        }
        if self.wants_peers {
            flags |= WANTS_PEERS;
        }
        if self.name.is_some() {
            flags |= HAS_NAME;
        }
        out.push(flags);
        self.static_ip.encode(out);
        self.local_addrs.encode(out);
        self.description.encode(out);
        if let Some(name) = &self.name {
            name.encode(out);
        }
    }

    /// Encodes the whole message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }
}

/// Layout: header, community, key, counter, MAC, flags, static address, local addresses, description,
/// the name if flag bit 2 is set, admission tag.
impl Codec<'_> for Register {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_unsigned(out);
        out.extend_from_slice(&self.admission_tag);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let community = r.read()?;
        let public_key = r.read()?;
        let counter = r.u64_be()?;
        let mac = r.read()?;
        let flags = r.u8()?;
        Ok(Register {
            community,
            public_key,
            counter,
            mac,
            wants_ip: flags & WANTS_IP != 0,
            wants_peers: flags & WANTS_PEERS != 0,
            static_ip: r.read()?,
            local_addrs: r.read()?,
            description: r.read()?,
            name: if flags & HAS_NAME != 0 {
                Some(r.read()?)
            } else {
                None
            },
            admission_tag: r.array()?,
        })
    }
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

impl RegisterAck {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }
}

/// Layout: header with `introduced_only` in aux bit 0, community, key, counter, observed address,
/// assigned address, lifetime, boot id.
impl Codec<'_> for RegisterAck {
    fn encode(&self, out: &mut Vec<u8>) {
        put_header(out, MsgType::RegisterAck, self.introduced_only as u8);
        self.community.encode(out);
        self.public_key.encode(out);
        out.extend_from_slice(&self.counter.to_be_bytes());
        self.observed.encode(out);
        self.assigned_ip.encode(out);
        out.extend_from_slice(&self.lifetime_secs.to_be_bytes());
        out.extend_from_slice(&self.boot_id.to_be_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RegisterAck {
            community: r.read()?,
            public_key: r.read()?,
            counter: r.u64_be()?,
            observed: r.read()?,
            assigned_ip: r.read()?,
            lifetime_secs: r.u16_be()?,
            boot_id: r.u64_be()?,
            introduced_only: r.aux() & 1 != 0,
        })
    }
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

impl RegisterNak {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }
}

/// Layout: header, community, key, counter, reason.
impl Codec<'_> for RegisterNak {
    fn encode(&self, out: &mut Vec<u8>) {
        put_header(out, MsgType::RegisterNak, 0);
        self.community.encode(out);
        self.public_key.encode(out);
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.push(self.reason as u8);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RegisterNak {
            community: r.read()?,
            public_key: r.read()?,
            counter: r.u64_be()?,
            reason: NakReason::from_u8(r.u8()?),
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
    /// Too many edges are joining the community at this moment (introductions are paced): register again
    /// after the usual back-off.
    Busy = 7,
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
            7 => NakReason::Busy,
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
            NakReason::Busy => {
                "too many edges are joining the community at this moment; registering again shortly"
            }
            NakReason::Other => "a reason this version does not know",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{roundtrip, sample_addrs};
    use crate::wire::Message;

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
    fn ack_nak_roundtrip() {
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
    }
}
