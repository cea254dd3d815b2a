//! Community secrets, and how one becomes the key material that [`crate::keys::CommunityKeys`] expands.
//!
//! Anything derived from the secret (an admission tag on every REGISTER, every handshake) lets whoever
//! captured it test guesses of the secret offline, as fast as the derivation runs. So there are two kinds
//! of secret, told apart by their text:
//!
//! - a **generated key** (`weft-edge new-community-key`): 256 random bits written as
//!   `weftkey1-` followed by 72 hex digits (the key, then a 4-byte checksum that catches a mistyped or
//!   truncated copy). It is already uniformly random, so its 32 bytes go straight into HKDF: guessing it
//!   is hopeless however fast the derivation is. This is the documented default.
//! - anything else is a **passphrase**: it goes through Argon2id (memory-hard, so each guess costs an
//!   attacker the configured memory and passes, on a GPU as on a CPU) before HKDF. The salt is a
//!   protocol label and the community name, so one precomputed table cannot serve every community.
//!
//! The derivation runs once when a daemon starts (or a command runs), never per packet.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};

/// How a generated key's text starts; `1` is the format's version.
pub const GENERATED_PREFIX: &str = "weftkey1-";

/// The label before the community name in Argon2id's salt (protocol version 2).
pub const PASSPHRASE_SALT_LABEL: &[u8] = b"weft/v2 community passphrase\0";

/// What goes wrong with a secret or a cost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret is empty.
    #[error("the secret is empty")]
    Empty,
    /// The text starts like a generated key but is not a valid one.
    #[error("looks like a generated key (it starts with 'weftkey') but {0}; copy the whole line `weft-edge new-community-key` printed")]
    MalformedGeneratedKey(&'static str),
    /// A cost parameter below the floor (an attacker's guessing would be too cheap) or above the ceiling.
    #[error("{what} must be between {min} and {max}, not {value}")]
    CostOutOfRange {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: u32,
        /// The floor.
        min: u32,
        /// The ceiling.
        max: u32,
    },
}

/// A generated community key: 256 uniformly random bits.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey([u8; 32]);

impl GeneratedKey {
    /// The key with these bytes; they must come from a cryptographic random source (the caller's: this
    /// crate has none).
    pub fn from_bytes(bytes: [u8; 32]) -> GeneratedKey {
        GeneratedKey(bytes)
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn checksum(&self) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update(b"weft generated key checksum\0");
        h.update(self.0);
        let d = h.finalize();
        [d[0], d[1], d[2], d[3]]
    }
}

impl fmt::Display for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(GENERATED_PREFIX)?;
        for b in self.0.iter().chain(self.checksum().iter()) {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key itself: settings and errors get printed.
        f.write_str("GeneratedKey(..)")
    }
}

impl std::str::FromStr for GeneratedKey {
    type Err = SecretError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let Some(hex) = s.strip_prefix(GENERATED_PREFIX) else {
            return Err(SecretError::MalformedGeneratedKey(
                "it does not start with 'weftkey1-' (the only version there is)",
            ));
        };
        let mut raw = [0u8; 36];
        crate::keys::decode_hex(hex, &mut raw).map_err(|_| {
            SecretError::MalformedGeneratedKey("it is not 72 hex digits after 'weftkey1-'")
        })?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&raw[..32]);
        let key = GeneratedKey(key);
        if key.checksum() != raw[32..] {
            return Err(SecretError::MalformedGeneratedKey(
                "its checksum does not match (a digit was changed)",
            ));
        }
        Ok(key)
    }
}

/// A community secret as configured: a generated key or a passphrase.
#[derive(Clone, PartialEq, Eq)]
pub enum CommunitySecret {
    /// See [`GeneratedKey`]; goes straight into HKDF.
    Generated(GeneratedKey),
    /// Anything else; goes through Argon2id first.
    Passphrase(Vec<u8>),
}

impl CommunitySecret {
    /// Reads a secret from its configured text: text starting with `weftkey` (any case) must be a valid
    /// generated key, anything else non-empty is a passphrase. Surrounding whitespace is not part of a
    /// generated key; a passphrase is taken as it is.
    pub fn parse(text: &str) -> Result<CommunitySecret, SecretError> {
        if text.is_empty() {
            return Err(SecretError::Empty);
        }
        let trimmed = text.trim();
        let looks_generated = trimmed
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("weftkey"));
        if looks_generated {
            return trimmed.parse().map(CommunitySecret::Generated);
        }
        Ok(CommunitySecret::Passphrase(text.as_bytes().to_vec()))
    }

    /// Whether this is a passphrase (which Argon2id stretches and which may be weak).
    pub fn is_passphrase(&self) -> bool {
        matches!(self, CommunitySecret::Passphrase(_))
    }
}

impl fmt::Debug for CommunitySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommunitySecret::Generated(_) => f.write_str("Generated(..)"),
            CommunitySecret::Passphrase(p) => write!(f, "Passphrase({} bytes)", p.len()),
        }
    }
}

/// Argon2id's cost for passphrases: memory in KiB and passes over it (one lane). Every edge of a
/// community, and the `weft-edge admission-key` run that makes the supernode's admission key, must use the
/// same cost, or they derive different keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    memory_kib: u32,
    passes: u32,
}

impl KdfCost {
    /// 64 MiB and 3 passes (the second recommendation of RFC 9106): a few hundred milliseconds once at
    /// start-up, and the same for every single guess of an attacker.
    pub const DEFAULT: KdfCost = KdfCost {
        memory_kib: 65536,
        passes: 3,
    };
    /// Below 8 MiB, GPUs guess cheaply: no configuration may go lower.
    pub const MIN_MEMORY_KIB: u32 = 8192;
    /// 4 GiB: more is surely a typing mistake, and would stop a small machine from starting.
    pub const MAX_MEMORY_KIB: u32 = 4 << 20;
    /// At least one pass over the memory.
    pub const MIN_PASSES: u32 = 1;
    /// Far beyond any sensible start-up time.
    pub const MAX_PASSES: u32 = 64;

    /// A cost within the floor and ceiling, else an error saying which parameter is out of range.
    pub fn new(memory_kib: u32, passes: u32) -> Result<KdfCost, SecretError> {
        if !(Self::MIN_MEMORY_KIB..=Self::MAX_MEMORY_KIB).contains(&memory_kib) {
            return Err(SecretError::CostOutOfRange {
                what: "the memory (KiB)",
                value: memory_kib,
                min: Self::MIN_MEMORY_KIB,
                max: Self::MAX_MEMORY_KIB,
            });
        }
        if !(Self::MIN_PASSES..=Self::MAX_PASSES).contains(&passes) {
            return Err(SecretError::CostOutOfRange {
                what: "the number of passes",
                value: passes,
                min: Self::MIN_PASSES,
                max: Self::MAX_PASSES,
            });
        }
        Ok(KdfCost { memory_kib, passes })
    }

    /// Memory in KiB.
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Passes over the memory.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    fn argon2(&self) -> Argon2<'static> {
        let params = Params::new(self.memory_kib, self.passes, 1, Some(32))
            .expect("KdfCost::new keeps the parameters within Argon2's limits");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }
}

impl Default for KdfCost {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The 32 bytes HKDF expands into the community's keys: a generated key's bytes as they are; for a
/// passphrase, Argon2id(passphrase, salt = [`PASSPHRASE_SALT_LABEL`] ‖ name) at `cost`.
pub fn key_material(name: &str, secret: &CommunitySecret, cost: &KdfCost) -> [u8; 32] {
    match secret {
        CommunitySecret::Generated(k) => k.0,
        CommunitySecret::Passphrase(p) => {
            let mut salt = Vec::with_capacity(PASSPHRASE_SALT_LABEL.len() + name.len());
            salt.extend_from_slice(PASSPHRASE_SALT_LABEL);
            salt.extend_from_slice(name.as_bytes());
            let mut out = [0u8; 32];
            cost.argon2()
                .hash_password_into(p, &salt, &mut out)
                .expect("the salt is longer than 8 bytes and the output 32 bytes");
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cheapest cost allowed: what tests use unless they test the cost.
    fn low() -> KdfCost {
        KdfCost::new(KdfCost::MIN_MEMORY_KIB, 1).unwrap()
    }

    #[test]
    fn generated_keys_print_and_parse_back() {
        let k = GeneratedKey::from_bytes([0xa5; 32]);
        let text = k.to_string();
        assert!(text.starts_with("weftkey1-"), "{text}");
        assert_eq!(text.len(), 9 + 72);
        assert_eq!(text.parse::<GeneratedKey>().unwrap(), k);
        assert_eq!(
            CommunitySecret::parse(&format!(" {text}\n")).unwrap(),
            CommunitySecret::Generated(k.clone())
        );
        // Upper-case hex is the same key.
        let upper = format!("weftkey1-{}", text[9..].to_uppercase());
        assert_eq!(upper.parse::<GeneratedKey>().unwrap(), k);
        // Never printed by Debug.
        assert!(!format!("{:?}", CommunitySecret::Generated(k)).contains("a5a5"));
    }

    #[test]
    fn malformed_generated_keys_are_refused() {
        let good = GeneratedKey::from_bytes([7; 32]).to_string();
        let mut typo = good.clone().into_bytes();
        let last = typo.len() - 20;
        typo[last] = if typo[last] == b'0' { b'1' } else { b'0' };
        let typo = String::from_utf8(typo).unwrap();
        for bad in [
            &good[..good.len() - 1],                   // truncated
            &format!("{good}0"),                       // one digit too many
            &good.replace("weftkey1-", "weftkey2-"),   // unknown version
            &format!("{}zz", &good[..good.len() - 2]), // not hex
            &typo,                                     // checksum
            "WEFTKEY1-",
            "weftkey",
        ] {
            let e = CommunitySecret::parse(bad).unwrap_err();
            assert!(
                matches!(e, SecretError::MalformedGeneratedKey(_)),
                "{bad}: {e:?}"
            );
            assert!(e.to_string().contains("generated key"), "{e}");
        }
        assert!(CommunitySecret::parse(&typo)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        assert_eq!(CommunitySecret::parse(""), Err(SecretError::Empty));
        // Text that does not start like a generated key is a passphrase, spaces included.
        assert_eq!(
            CommunitySecret::parse(" a weftkey1- b").unwrap(),
            CommunitySecret::Passphrase(b" a weftkey1- b".to_vec())
        );
    }

    #[test]
    fn kdf_is_argon2id_with_the_configured_cost() {
        let cost = KdfCost::new(9000, 2).unwrap();
        let secret = CommunitySecret::Passphrase(b"summer2023".to_vec());
        let got = key_material("home", &secret, &cost);
        let mut salt = PASSPHRASE_SALT_LABEL.to_vec();
        salt.extend_from_slice(b"home");
        let expect = |alg, m, t| {
            let mut out = [0u8; 32];
            Argon2::new(alg, Version::V0x13, Params::new(m, t, 1, Some(32)).unwrap())
                .hash_password_into(b"summer2023", &salt, &mut out)
                .unwrap();
            out
        };
        assert_eq!(got, expect(Algorithm::Argon2id, 9000, 2));
        // Not another variant, not another cost.
        assert_ne!(got, expect(Algorithm::Argon2i, 9000, 2));
        assert_ne!(got, expect(Algorithm::Argon2d, 9000, 2));
        assert_ne!(got, expect(Algorithm::Argon2id, 9000, 1));
        assert_ne!(got, expect(Algorithm::Argon2id, 8192, 2));
        // The name is in the salt: another community, other material.
        assert_ne!(got, key_material("work", &secret, &cost));
    }

    #[test]
    fn default_cost_is_64_mib_and_3_passes() {
        let d = KdfCost::default();
        assert_eq!((d.memory_kib(), d.passes()), (65536, 3));
        let secret = CommunitySecret::Passphrase(b"p".to_vec());
        let mut salt = PASSPHRASE_SALT_LABEL.to_vec();
        salt.extend_from_slice(b"home");
        let mut expect = [0u8; 32];
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(65536, 3, 1, Some(32)).unwrap(),
        )
        .hash_password_into(b"p", &salt, &mut expect)
        .unwrap();
        assert_eq!(key_material("home", &secret, &d), expect);
    }

    #[test]
    fn generated_keys_skip_argon2() {
        let k = GeneratedKey::from_bytes([3; 32]);
        let secret = CommunitySecret::Generated(k.clone());
        assert_eq!(key_material("home", &secret, &low()), [3; 32]);
        // The cost does not matter for a generated key.
        assert_eq!(
            key_material("home", &secret, &low()),
            key_material("home", &secret, &KdfCost::new(9000, 2).unwrap())
        );
        // Its text taken as a passphrase is something else.
        let as_text = CommunitySecret::Passphrase(k.to_string().into_bytes());
        assert_ne!(key_material("home", &as_text, &low()), [3; 32]);
    }

    #[test]
    fn costs_outside_the_limits_are_refused() {
        assert!(KdfCost::new(KdfCost::MIN_MEMORY_KIB, KdfCost::MIN_PASSES).is_ok());
        let e = KdfCost::new(KdfCost::MIN_MEMORY_KIB - 1, 3).unwrap_err();
        assert!(
            matches!(
                e,
                SecretError::CostOutOfRange {
                    value: 8191,
                    min: 8192,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("memory"), "{e}");
        let e = KdfCost::new(65536, 0).unwrap_err();
        assert!(e.to_string().contains("passes"), "{e}");
        assert!(KdfCost::new(KdfCost::MAX_MEMORY_KIB + 1, 3).is_err());
        assert!(KdfCost::new(65536, KdfCost::MAX_PASSES + 1).is_err());
    }
}
