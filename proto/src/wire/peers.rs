//! What a supernode tells an edge about the other edges of its community (PEER_INFO, PEER_REVOKED,
//! UNKNOWN_SENDER), and an edge's request to punch towards one of them (PUNCH_REQUEST).

use std::net::SocketAddr;

use super::codec::{put_header, Codec, Reader};
use super::{DecodeError, Ipv4Net, MacAddr, MsgType};
use crate::keys::{CommunityId, PublicKey};

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

impl PeerInfo {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }

    /// The body: community, key, MAC, virtual address, observed address, local addresses, description.
    /// Also the body of a federation edge announcement, whose header has no punch flag.
    pub(super) fn encode_body(&self, out: &mut Vec<u8>) {
        self.community.encode(out);
        self.public_key.encode(out);
        self.mac.encode(out);
        self.ip.encode(out);
        self.observed.encode(out);
        self.local_addrs.encode(out);
        self.description.encode(out);
    }

    /// Reads the body written by [`PeerInfo::encode_body`].
    pub(super) fn read_body(r: &mut Reader<'_>, punch: bool) -> Result<PeerInfo, DecodeError> {
        Ok(PeerInfo {
            community: r.read()?,
            public_key: r.read()?,
            mac: r.read()?,
            ip: r.read()?,
            observed: r.read()?,
            local_addrs: r.read()?,
            description: r.read()?,
            punch,
        })
    }
}

/// Layout: header with `punch` in aux bit 0, then the body.
impl Codec<'_> for PeerInfo {
    fn encode(&self, out: &mut Vec<u8>) {
        put_header(out, MsgType::PeerInfo, self.punch as u8);
        self.encode_body(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let punch = r.aux() & 1 != 0;
        PeerInfo::read_body(r, punch)
    }
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

impl PunchRequest {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }
}

/// Layout: header, community, requester's key, target's key.
impl Codec<'_> for PunchRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        put_header(out, MsgType::PunchRequest, 0);
        self.community.encode(out);
        self.from.encode(out);
        self.target.encode(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PunchRequest {
            community: r.read()?,
            from: r.read()?,
            target: r.read()?,
        })
    }
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

impl PeerRevoked {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }
}

/// Layout: header, community, revoked key.
impl Codec<'_> for PeerRevoked {
    fn encode(&self, out: &mut Vec<u8>) {
        put_header(out, MsgType::PeerRevoked, 0);
        self.community.encode(out);
        self.public_key.encode(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PeerRevoked {
            community: r.read()?,
            public_key: r.read()?,
        })
    }
}

/// Encodes an unknown-sender notice: the header alone.
pub fn encode_unknown_sender(out: &mut Vec<u8>) {
    put_header(out, MsgType::UnknownSender, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{roundtrip, sample_addrs};
    use crate::wire::Message;

    #[test]
    fn peerinfo_punch_revoked_roundtrip() {
        let rv = PeerRevoked {
            community: CommunityId([1; 8]),
            public_key: PublicKey([3; 32]),
        };
        let mut b = Vec::new();
        rv.encode(&mut b);
        assert_eq!(b.len(), 44);
        assert_eq!(roundtrip(&b), Message::PeerRevoked(rv));

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
}
