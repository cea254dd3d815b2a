//! Supernode liveness: an edge's ping and the supernode's pong, much lighter than a registration.

use super::codec::{put_header, Codec, Reader};
use super::{DecodeError, MsgType};

/// Encodes a supernode liveness ping: header, nonce.
pub fn encode_supernode_ping(nonce: u64, out: &mut Vec<u8>) {
    put_header(out, MsgType::SupernodePing, 0);
    out.extend_from_slice(&nonce.to_be_bytes());
}

/// Reads a ping's nonce.
pub(super) fn read_ping(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    let nonce = r.u64_be()?;
    r.finish()?;
    Ok(nonce)
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

impl SupernodePong {
    /// Encodes the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Codec::encode(self, out)
    }
}

/// Layout: header, nonce, boot id, load.
impl Codec<'_> for SupernodePong {
    fn encode(&self, out: &mut Vec<u8>) {
        put_header(out, MsgType::SupernodePong, 0);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.extend_from_slice(&self.boot_id.to_be_bytes());
        out.extend_from_slice(&self.load_permille.to_be_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SupernodePong {
            nonce: r.u64_be()?,
            boot_id: r.u64_be()?,
            load_permille: r.u16_be()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::roundtrip;
    use crate::wire::Message;

    #[test]
    fn ping_pong_roundtrip() {
        let mut b = Vec::new();
        encode_supernode_ping(0x0102_0304_0506_0708, &mut b);
        assert_eq!(b.len(), 4 + 8);
        assert_eq!(roundtrip(&b), Message::SupernodePing(0x0102_0304_0506_0708));
        let pong = SupernodePong {
            nonce: 7,
            boot_id: u64::MAX,
            load_permille: 999,
        };
        let mut b = Vec::new();
        pong.encode(&mut b);
        assert_eq!(b.len(), 4 + 8 + 8 + 2);
        assert_eq!(roundtrip(&b), Message::SupernodePong(pong));
    }
}
