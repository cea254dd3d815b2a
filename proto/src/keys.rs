//! Keys and identities, and how they are derived from a community's name and secret.
//!
//! The trust model in one paragraph: a community is a name plus a secret. The secret first becomes 32 bytes
//! of key material ([`crate::secret`]: a generated key as it is, a passphrase through Argon2id). From them
//! every edge derives three independent values with HKDF-SHA256 (distinct labels, so none says anything
//! about another):
//! - the **community id**, 8 bytes on the wire instead of the name; derived from the name alone so that a
//!   supernode can serve a community it was never told about;
//! - the **admission key**, which an edge uses to prove to a supernode that it knows the secret; a supernode
//!   that restricts a community is given this key and nothing more;
//! - the **edge PSK**, mixed into every edge-to-edge Noise handshake, so that only holders of the secret can
//!   complete one; the supernode never has it, so it can neither read nor forge edge traffic.
//!
//! Each edge also has its own static X25519 key pair: its identity, kept in its state directory.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::{key_material, CommunitySecret, KdfCost};
use crate::wire::ADMISSION_TAG_LEN;

/// Domain separation for the derivation that does not involve the community secret (the community id):
/// unchanged since protocol version 1.
const KDF_SALT: &[u8] = b"weft/v1";

/// Domain separation for the keys derived from a community secret, protocol version 2 (the secret
/// became key material: a generated key, or Argon2id over a passphrase). Version 1 expanded the secret
/// itself with salt `weft/v1`; those derivations are gone.
const SECRET_KDF_SALT: &[u8] = b"weft/v2";

/// The on-wire name of a community.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommunityId(pub [u8; 8]);

impl CommunityId {
    /// The id of the community called `name`.
    pub fn from_name(name: &str) -> CommunityId {
        let mut id = [0u8; 8];
        Hkdf::<Sha256>::new(Some(KDF_SALT), name.as_bytes())
            .expand(b"community-id", &mut id)
            .expect("8 bytes is a valid HKDF output length");
        CommunityId(id)
    }
}

/// An edge's static X25519 public key: its identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The short tag the relay header carries instead of the whole key.
    pub fn tag(&self) -> PeerTag {
        let mut t = [0u8; 8];
        t.copy_from_slice(&self.0[..8]);
        PeerTag(t)
    }
}

/// The first 8 bytes of an edge's public key: enough to name it within one community on the relay path
/// (a deliberate collision would need about 2^64 key generations) while keeping the relay header small.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PeerTag(pub [u8; 8]);

macro_rules! hex_display {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                for b in self.0.iter() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // Short form: enough to tell edges apart in logs.
                for b in self.0.iter().take(4) {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
        impl std::str::FromStr for $t {
            type Err = &'static str;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = Self(Default::default());
                decode_hex(s.trim(), &mut out.0)?;
                Ok(out)
            }
        }
    };
}
hex_display!(CommunityId);
hex_display!(PublicKey);
hex_display!(AdmissionKey);

/// Decodes `s` as exactly `out.len()` bytes of hex.
pub fn decode_hex(s: &str, out: &mut [u8]) -> Result<(), &'static str> {
    if s.len() != out.len() * 2 || !s.is_ascii() {
        return Err("wrong length of hex string");
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| "not a hex string")?;
    }
    Ok(())
}

/// What a supernode needs to check that an edge knows a community's secret, and nothing more.
#[derive(Clone, PartialEq, Eq)]
pub struct AdmissionKey(pub [u8; 32]);

impl AdmissionKey {
    /// The admission proof for a registration: HMAC-SHA256 over its encoded bytes, truncated to 16 bytes.
    pub fn tag(&self, message: &[u8]) -> [u8; ADMISSION_TAG_LEN] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(message);
        let full = mac.finalize().into_bytes();
        let mut t = [0u8; ADMISSION_TAG_LEN];
        t.copy_from_slice(&full[..ADMISSION_TAG_LEN]);
        t
    }

    /// Checks a proof in constant time.
    pub fn verify(&self, message: &[u8], tag: &[u8; ADMISSION_TAG_LEN]) -> bool {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(message);
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// Everything an edge derives from its community's name and secret.
#[derive(Clone)]
pub struct CommunityKeys {
    /// The community's name (never sent on the wire).
    pub name: String,
    /// See [`CommunityId`].
    pub id: CommunityId,
    /// See [`AdmissionKey`].
    pub admission: AdmissionKey,
    /// Mixed into edge-to-edge handshakes; never leaves the edge.
    pub(crate) edge_psk: [u8; 32],
    /// Keys the MAC1 of every handshake message and the cookie replies (`crate::handshake_mac`), so that
    /// an edge drops a stranger's handshake before any Diffie-Hellman; never leaves the edge.
    pub(crate) handshake_mac: [u8; 32],
}

impl CommunityKeys {
    /// Derives the keys of community `name` from its configured secret; a passphrase costs one Argon2id run
    /// at `cost` (so call this once, at start-up).
    pub fn derive(name: &str, secret: &CommunitySecret, cost: &KdfCost) -> CommunityKeys {
        Self::from_key_material(name, &key_material(name, secret, cost))
    }

    /// The HKDF step alone, from key material that is already uniformly random (a generated key, or what
    /// Argon2id made of a passphrase). A passphrase given here directly would be open to fast offline
    /// guessing: that is what [`CommunityKeys::derive`] is for. Tests and benchmarks use this with fixed
    /// bytes.
    pub fn from_key_material(name: &str, material: &[u8]) -> CommunityKeys {
        let hk = Hkdf::<Sha256>::new(Some(SECRET_KDF_SALT), material);
        let mut admission = [0u8; 32];
        let mut edge_psk = [0u8; 32];
        hk.expand_multi_info(&[b"admission\0", name.as_bytes()], &mut admission)
            .expect("32 bytes is a valid HKDF output length");
        hk.expand_multi_info(&[b"edge-psk\0", name.as_bytes()], &mut edge_psk)
            .expect("32 bytes is a valid HKDF output length");
        let mut handshake_mac = [0u8; 32];
        hk.expand_multi_info(&[b"handshake-mac\0", name.as_bytes()], &mut handshake_mac)
            .expect("32 bytes is a valid HKDF output length");
        CommunityKeys {
            name: name.to_string(),
            id: CommunityId::from_name(name),
            admission: AdmissionKey(admission),
            edge_psk,
            handshake_mac,
        }
    }
}

/// An edge's static key pair.
#[derive(Clone)]
pub struct StaticKeypair {
    pub(crate) private: [u8; 32],
    /// The public half: the edge's identity.
    pub public: PublicKey,
}

impl StaticKeypair {
    /// The key pair with this private key (clamping is done by X25519 itself).
    pub fn from_private(private: [u8; 32]) -> StaticKeypair {
        use snow::resolvers::CryptoResolver;
        let mut dh = snow::resolvers::DefaultResolver
            .resolve_dh(&snow::params::DHChoice::Curve25519)
            .expect("the default resolver has X25519");
        dh.set(&private);
        let mut public = [0u8; 32];
        public.copy_from_slice(dh.pubkey());
        StaticKeypair {
            private,
            public: PublicKey(public),
        }
    }

    /// The private key bytes, for storing the identity.
    pub fn private_bytes(&self) -> &[u8; 32] {
        &self.private
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::secret::GeneratedKey;

    fn low() -> KdfCost {
        KdfCost::new(KdfCost::MIN_MEMORY_KIB, 1).unwrap()
    }

    fn passphrase(p: &str) -> CommunitySecret {
        CommunitySecret::Passphrase(p.as_bytes().to_vec())
    }

    /// Version 1's derivation: the secret's bytes straight into HKDF (what made offline guessing cheap).
    fn plain_hkdf_v1(name: &str, secret: &[u8]) -> [u8; 32] {
        let mut k = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"weft/v1"), secret)
            .expand_multi_info(&[b"admission\0", name.as_bytes()], &mut k)
            .unwrap();
        k
    }

    #[test]
    fn derivations_are_independent_and_stable() {
        let a = CommunityKeys::from_key_material("home", b"secret");
        let b = CommunityKeys::from_key_material("home", b"other secret");
        let c = CommunityKeys::from_key_material("work", b"secret");
        // The id depends on the name only.
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
        // Admission and PSK depend on both, and differ from each other.
        assert!(a.admission != b.admission && a.admission != c.admission);
        assert_ne!(a.edge_psk, b.edge_psk);
        assert_ne!(a.edge_psk, a.admission.0);
        // Stable across versions of this code: a changed derivation would split existing networks.
        assert_eq!(a.id.to_string(), CommunityId::from_name("home").to_string());
        assert_eq!(a.id.to_string().len(), 16);
    }

    #[test]
    fn passphrases_and_generated_keys_derive_apart_from_plain_hkdf() {
        let k = GeneratedKey::from_bytes([0x42; 32]);
        let text = k.to_string();
        let generated =
            CommunityKeys::derive("home", &CommunitySecret::Generated(k.clone()), &low());
        let same_text = CommunityKeys::derive("home", &passphrase(&text), &low());
        // A generated key and a passphrase with the same text are different secrets.
        assert!(generated.admission != same_text.admission);
        assert_ne!(generated.edge_psk, same_text.edge_psk);
        // Neither is version 1's plain HKDF of the text (or of the key bytes).
        for derived in [&generated, &same_text] {
            assert_ne!(derived.admission.0, plain_hkdf_v1("home", text.as_bytes()));
            assert_ne!(derived.admission.0, plain_hkdf_v1("home", k.bytes()));
        }
        // A generated key is the HKDF input as it is; a passphrase is not.
        assert!(
            generated.admission == CommunityKeys::from_key_material("home", k.bytes()).admission
        );
        let p = CommunityKeys::derive("home", &passphrase("summer2023"), &low());
        assert_ne!(p.admission.0, plain_hkdf_v1("home", b"summer2023"));
        assert!(p.admission != CommunityKeys::from_key_material("home", b"summer2023").admission);
    }

    #[test]
    fn version_2_derivations_are_pinned() {
        // A changed derivation would split every existing network: these values must never move.
        let p = CommunityKeys::derive("home", &passphrase("summer2023"), &low());
        assert_eq!(
            p.admission.to_string(),
            "4965748cba0c56a4dce0699088f974897ec59c37bc96a32cb4e8411d06a02c79"
        );
        let g = CommunitySecret::Generated(GeneratedKey::from_bytes([0x42; 32]));
        assert_eq!(
            CommunityKeys::derive("home", &g, &KdfCost::default())
                .admission
                .to_string(),
            "17655bbd486f2c28ede3ee587a78f897ef63fe515898fb72d2aca9500b2ff1a1"
        );
    }

    #[test]
    fn a_wrong_passphrase_or_cost_derives_other_keys() {
        let right = CommunityKeys::derive("home", &passphrase("summer2023"), &low());
        let again = CommunityKeys::derive("home", &passphrase("summer2023"), &low());
        assert!(right.admission == again.admission && right.edge_psk == again.edge_psk);
        for (secret, cost) in [
            (passphrase("summer2024"), low()),
            (passphrase("summer2023 "), low()),
            (
                passphrase("summer2023"),
                KdfCost::new(KdfCost::MIN_MEMORY_KIB, 2).unwrap(),
            ),
        ] {
            let wrong = CommunityKeys::derive("home", &secret, &cost);
            assert!(wrong.admission != right.admission, "{secret:?} {cost:?}");
            assert_ne!(wrong.edge_psk, right.edge_psk);
            let t = right.admission.tag(b"register");
            assert!(!wrong.admission.verify(b"register", &t));
        }
    }

    #[test]
    fn admission_tag_verifies_only_with_the_key() {
        let k = CommunityKeys::from_key_material("home", b"secret").admission;
        let other = CommunityKeys::from_key_material("home", b"guess").admission;
        let t = k.tag(b"register bytes");
        assert!(k.verify(b"register bytes", &t));
        assert!(!k.verify(b"register bytez", &t));
        assert!(!other.verify(b"register bytes", &t));
    }

    #[test]
    fn x25519_public_key_matches_rfc7748_vector() {
        // RFC 7748 section 6.1, Alice's key pair.
        let mut private = [0u8; 32];
        decode_hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
            &mut private,
        )
        .unwrap();
        let kp = StaticKeypair::from_private(private);
        assert_eq!(
            kp.public.to_string(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn hex_parse() {
        let k: PublicKey = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
            .parse()
            .unwrap();
        assert_eq!(k.0[0], 0x85);
        assert!("zz".parse::<CommunityId>().is_err());
        assert!("00".parse::<CommunityId>().is_err());
    }
}
