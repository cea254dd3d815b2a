//! The edge-to-supernode control channel's handshake: Noise `IK` over X25519, ChaChaPoly and BLAKE2s
//! (through `snow`, as the edge-to-edge handshake), in which the edge knows the supernode's static key.
//!
//! Message 1 proves the edge's static key to the supernode (and is readable only by the holder of the
//! supernode's private key); message 2 proves the supernode's key to the edge. The session it yields
//! carries every control message in both directions, sealed, so nothing an on-path host forges or
//! replays is believed by either side, and what an edge registers (its addresses, its description, its
//! community) is hidden from the path.
//!
//! Message 1 carries the edge's 8-byte timestamp (growing per edge identity) so that a supernode can
//! ignore a replayed initiation, and a MAC keyed by the supernode's public key that is checked before any
//! Diffie-Hellman: bytes from a sender that does not know whom it addresses cost the supernode one hash;
//! and, under load, a MAC2 keyed by a cookie (as for edge handshakes, `handshake_mac`), so that a flood
//! of initiations from spoofed sources costs the supernode no Diffie-Hellman either.
//!
//! Federation links between supernodes use the same handshake with another [`Purpose`]: its own prologue
//! and MAC label, so a message of one can never be taken for a message of the other (the supernode
//! module's `fed_channel` drives it; there both sides prove their static keys, which the responder checks
//! against the keys of its configured peers).

use std::time::Instant;

use snow::params::NoiseParams;

use crate::handshake::{HandshakeError, Resolver, Responded, TransportKeys};
use crate::handshake_mac::{MacKeys, ReceivedCookie};
use crate::keys::{PublicKey, StaticKeypair};
use crate::wire::{CtlInit, CTL_MAC_LEN, CTL_NOISE_INIT_LEN, CTL_NOISE_RESP_LEN, MAC_LEN};

// The control response has the edge handshake's layout, so they share `handshake::answer`.
const _: () = assert!(CTL_NOISE_RESP_LEN == crate::wire::NOISE_RESP_LEN);

const PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";

/// What a handshake of this pattern is for. Each purpose has its own prologue (which binds the handshake
/// to this protocol, version and purpose: an edge-to-edge handshake message, a control one and a
/// federation one can never be taken for each other) and its own initiation MAC label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The edge-to-supernode control channel (CTL_INIT, CTL_RESP).
    Control,
    /// A federation link between two supernodes (FED_INIT, FED_RESP).
    Federation,
}

impl Purpose {
    fn prologue(self) -> &'static [u8] {
        match self {
            Purpose::Control => b"weft/v2 control channel",
            Purpose::Federation => b"weft/v2 federation link",
        }
    }

    fn mac_label(self) -> &'static [u8] {
        match self {
            Purpose::Control => b"weft/v2 control mac",
            Purpose::Federation => b"weft/v2 federation mac",
        }
    }

    /// The MAC1 and cookie keys of initiations of this purpose to `responder`.
    pub fn mac_keys(self, responder: &PublicKey) -> MacKeys {
        MacKeys::for_responder(self.mac_label(), responder)
    }

    /// Length of a whole initiation: a control one carries MAC2 for cookies under load; a federation one
    /// comes only from configured peer addresses and has none.
    fn initiation_len(self) -> usize {
        match self {
            Purpose::Control => CtlInit::mac2_input_len() + MAC_LEN,
            Purpose::Federation => CtlInit::signed_len() + CTL_MAC_LEN,
        }
    }
}

fn builder(purpose: Purpose, seed: [u8; 32], local: &StaticKeypair) -> snow::Builder<'_> {
    let params: NoiseParams = PATTERN.parse().expect("valid Noise pattern name");
    snow::Builder::with_resolver(params, Box::new(Resolver { seed }))
        .local_private_key(&local.private)
        .expect("32-byte X25519 key")
        .prologue(purpose.prologue())
        .expect("prologue set once")
}

/// MAC1 of a control initiation whose bytes before it are `signed`.
pub fn initiation_mac(supernode: &PublicKey, signed: &[u8]) -> [u8; CTL_MAC_LEN] {
    initiation_mac_for(Purpose::Control, supernode, signed)
}

/// MAC1 of an initiation of `purpose` to `responder` over `signed` (the bytes before the MAC).
pub fn initiation_mac_for(
    purpose: Purpose,
    responder: &PublicKey,
    signed: &[u8],
) -> [u8; CTL_MAC_LEN] {
    purpose.mac_keys(responder).mac1(responder, signed)
}

/// Checks MAC1 of a whole control initiation datagram in constant time.
pub fn verify_initiation_mac(supernode: &PublicKey, datagram: &[u8]) -> bool {
    verify_initiation_mac_for(Purpose::Control, supernode, datagram)
}

/// Checks MAC1 of a whole initiation datagram of `purpose` (CTL_INIT and FED_INIT share the layout up to
/// it) addressed to `responder`, in constant time.
pub fn verify_initiation_mac_for(purpose: Purpose, responder: &PublicKey, datagram: &[u8]) -> bool {
    let n = CtlInit::signed_len();
    if datagram.len() != purpose.initiation_len() {
        return false;
    }
    let mut mac = [0u8; CTL_MAC_LEN];
    mac.copy_from_slice(&datagram[n..n + CTL_MAC_LEN]);
    purpose
        .mac_keys(responder)
        .verify_mac1(responder, &datagram[..n], &mac)
}

/// A whole control initiation datagram from `local` to the supernode whose key is `supernode`: the state
/// to finish it with, the datagram, and its MAC1 (which a cookie reply to it is bound to). With a
/// `cookie` the supernode sent (under load), MAC2 proves that we receive at our address.
pub fn initiation(
    local: &StaticKeypair,
    supernode: &PublicKey,
    sender_index: u32,
    timestamp: u64,
    seed: [u8; 32],
    cookie: Option<(&ReceivedCookie, Instant)>,
) -> Result<(CtlInitiator, Vec<u8>, [u8; CTL_MAC_LEN]), HandshakeError> {
    let (init, noise) = CtlInitiator::start(local, supernode, timestamp, seed)?;
    let mut m = CtlInit {
        sender_index,
        noise: &noise,
        mac: [0; CTL_MAC_LEN],
        mac2: [0; MAC_LEN],
    };
    let mut b = Vec::with_capacity(CtlInit::mac2_input_len() + MAC_LEN);
    m.encode(&mut b);
    m.mac = initiation_mac(supernode, &b[..CtlInit::signed_len()]);
    b.clear();
    m.encode(&mut b);
    if let Some((c, now)) = cookie {
        let n = CtlInit::mac2_input_len();
        let mac2 = c.mac2(&b[..n], now);
        b[n..].copy_from_slice(&mac2);
    }
    Ok((init, b, m.mac))
}

/// A control initiation in flight, waiting for the supernode's response.
pub struct CtlInitiator {
    state: snow::HandshakeState,
}

impl CtlInitiator {
    /// Starts a handshake with the supernode whose key is `supernode`: the state and the Noise message.
    pub fn start(
        local: &StaticKeypair,
        supernode: &PublicKey,
        timestamp: u64,
        seed: [u8; 32],
    ) -> Result<(CtlInitiator, [u8; CTL_NOISE_INIT_LEN]), HandshakeError> {
        Self::start_for(Purpose::Control, local, supernode, timestamp, seed)
    }

    /// Starts a handshake of `purpose` with the holder of `responder`: the state and the Noise message.
    pub fn start_for(
        purpose: Purpose,
        local: &StaticKeypair,
        responder: &PublicKey,
        timestamp: u64,
        seed: [u8; 32],
    ) -> Result<(CtlInitiator, [u8; CTL_NOISE_INIT_LEN]), HandshakeError> {
        let mut state = builder(purpose, seed, local)
            .remote_public_key(&responder.0)?
            .build_initiator()?;
        let mut msg = [0u8; CTL_NOISE_INIT_LEN];
        let n = state.write_message(&timestamp.to_be_bytes(), &mut msg)?;
        debug_assert_eq!(n, CTL_NOISE_INIT_LEN);
        Ok((CtlInitiator { state }, msg))
    }

    /// Completes the handshake with the supernode's message: fails unless it holds the pinned key.
    pub fn finish(self, msg: &[u8]) -> Result<TransportKeys, HandshakeError> {
        crate::handshake::complete(self.state, msg)
    }
}

/// What a responder learns from a valid initiation: the initiator's proven key, its timestamp, the
/// response and the session keys (the layout of the edge handshake's, whose code it shares).
pub type CtlResponded = Responded;

/// Answers a control initiation (after its MAC was checked).
pub fn respond(
    local: &StaticKeypair,
    msg: &[u8],
    seed: [u8; 32],
) -> Result<CtlResponded, HandshakeError> {
    respond_for(Purpose::Control, local, msg, seed)
}

/// Answers an initiation of `purpose` (after its MAC was checked). The caller decides whether to keep
/// the session: `remote` is the initiator's proven static key.
pub fn respond_for(
    purpose: Purpose,
    local: &StaticKeypair,
    msg: &[u8],
    seed: [u8; 32],
) -> Result<CtlResponded, HandshakeError> {
    crate::handshake::answer(builder(purpose, seed, local).build_responder()?, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(b: u8) -> StaticKeypair {
        StaticKeypair::from_private([b; 32])
    }

    #[test]
    fn handshake_completes_only_with_the_pinned_key() {
        let (edge, sn, other) = (kp(1), kp(2), kp(3));
        let (init, m1) = CtlInitiator::start(&edge, &sn.public, 77, [3; 32]).unwrap();
        let r = respond(&sn, &m1, [4; 32]).unwrap();
        assert_eq!(r.remote, edge.public);
        assert_eq!(r.timestamp, 77);
        let k = init.finish(&r.msg).unwrap();
        assert_eq!(k.send, r.keys.recv);
        assert_eq!(k.recv, r.keys.send);
        // A supernode with another key cannot read the initiation.
        assert!(respond(&other, &m1, [4; 32]).is_err());
        // An impostor that answers with its own key is refused by the edge.
        let (init, _) = CtlInitiator::start(&edge, &sn.public, 78, [5; 32]).unwrap();
        let (_, m1_for_other) = CtlInitiator::start(&edge, &other.public, 78, [5; 32]).unwrap();
        let forged = respond(&other, &m1_for_other, [6; 32]).unwrap();
        assert!(init.finish(&forged.msg).is_err());
    }

    #[test]
    fn edge_handshake_messages_are_not_control_ones() {
        // Same keys, the edge-to-edge pattern: the prologue and pattern differ, so it does not decrypt.
        let (edge, sn) = (kp(1), kp(2));
        let (_, m1) =
            crate::handshake::Initiator::start(&edge, &sn.public, &[0; 32], 1, [3; 32]).unwrap();
        assert!(respond(&sn, &m1, [4; 32]).is_err());
    }

    #[test]
    fn federation_and_control_handshakes_do_not_mix() {
        let (a, b) = (kp(1), kp(2));
        let (fi, m1) =
            CtlInitiator::start_for(Purpose::Federation, &a, &b.public, 9, [3; 32]).unwrap();
        // A federation initiation is not a control one, and the reverse.
        assert!(respond(&b, &m1, [4; 32]).is_err());
        let r = respond_for(Purpose::Federation, &b, &m1, [4; 32]).unwrap();
        assert_eq!((r.remote, r.timestamp), (a.public, 9));
        assert!(fi.finish(&r.msg).is_ok());
        let (_, c1) = CtlInitiator::start(&a, &b.public, 9, [3; 32]).unwrap();
        assert!(respond_for(Purpose::Federation, &b, &c1, [4; 32]).is_err());
        // Nor are their MACs.
        let signed = [7u8; 112];
        let mut d = signed.to_vec();
        d.extend_from_slice(&initiation_mac_for(Purpose::Federation, &b.public, &signed));
        assert!(verify_initiation_mac_for(
            Purpose::Federation,
            &b.public,
            &d
        ));
        d.extend_from_slice(&[0; MAC_LEN]);
        assert!(!verify_initiation_mac(&b.public, &d));
    }

    #[test]
    fn mac_checks_the_whole_initiation() {
        let (edge, sn, other) = (kp(1), kp(2), kp(3));
        let (_, b, _) = initiation(&edge, &sn.public, 9, 1, [3; 32], None).unwrap();
        assert_eq!(b.len(), 144);
        assert!(verify_initiation_mac(&sn.public, &b));
        assert!(!verify_initiation_mac(&other.public, &b));
        // MAC1 covers everything before it; MAC2 (the last 16 bytes) is not its business.
        for i in 0..CtlInit::mac2_input_len() {
            let mut t = b.clone();
            t[i] ^= 0x10;
            assert!(!verify_initiation_mac(&sn.public, &t), "flip at {i}");
        }
        assert!(!verify_initiation_mac(&sn.public, &b[..b.len() - 1]));
    }
}
