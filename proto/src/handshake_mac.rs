//! MAC1, MAC2 and cookies on the edge-to-edge handshake: what lets an edge drop a stranger's handshake
//! message before any Diffie-Hellman, and shed a flood of valid-looking initiations under load. The
//! scheme is WireGuard's, keyed by the community secret instead of the responder's public key.
//!
//! - **MAC1** ends every initiation and response: HMAC-SHA256 (truncated to 16 bytes) under a key derived
//!   from the community secret, over the receiver's public key and the message before it. Without the
//!   secret a message fails MAC1, and the edge drops it silently: no Diffie-Hellman, no peer state, no
//!   answer, so nothing a stranger sends gets a reply that depends on the secret (the Noise response was
//!   an offline guessing oracle for the passphrase). Binding the receiver's key means an initiation seen
//!   on the wire cannot be aimed at another edge to cost it a Diffie-Hellman.
//! - **Cookies**: an edge that receives more initiations per second than its limit answers one without a
//!   valid MAC2 with a cookie reply instead of a Noise response. The cookie is a MAC of the initiation's
//!   source (address, and the relay's sender tag) under a secret that changes every two minutes, so it
//!   costs the edge no state; it travels sealed with XChaCha20-Poly1305 under a key derived from the MAC1
//!   key, with the initiation's MAC1 as associated data, so only the sender of that initiation can read
//!   it, and only once it knows the secret. The initiator keeps it and puts **MAC2** (keyed by the
//!   cookie) on its next initiations: proof that it receives at the address it sends from, which a
//!   flood of spoofed sources cannot give. Under load, initiations with a valid MAC2 are also rate
//!   limited per source.
//!
//! Responses get no cookie path: a response costs a Diffie-Hellman only when its receiver index names a
//! handshake this edge has pending, and each pending attempt reads at most one response.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use hmac::{Hmac, Mac};
use rand_chacha::rand_core::RngCore;
use sha2::Sha256;

use crate::bucket::TokenBucket;
use crate::keys::{CommunityKeys, PeerTag, PublicKey};
use crate::wire::{COOKIE_LEN, COOKIE_NONCE_LEN, MAC_LEN, SEALED_COOKIE_LEN};

/// A cookie secret is replaced after this long; an initiator stops using a cookie a little earlier.
pub const COOKIE_SECRET_LIFETIME: Duration = Duration::from_secs(120);
/// How much earlier than the secret's lifetime an initiator stops using a cookie (it was made some time
/// before it arrived).
const COOKIE_LATENCY: Duration = Duration::from_secs(5);
/// At most this many sources are rate limited at once (the table is swept when full).
const MAX_LIMITED_SOURCES: usize = 4096;
/// Initiations per second and burst allowed per source under load.
const SOURCE_RATE: f64 = 20.0;
const SOURCE_BURST: f64 = 5.0;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac
}

fn truncated(mac: HmacSha256) -> [u8; MAC_LEN] {
    let full = mac.finalize().into_bytes();
    let mut t = [0u8; MAC_LEN];
    t.copy_from_slice(&full[..MAC_LEN]);
    t
}

/// The keys derived from the community's handshake MAC key.
#[derive(Clone)]
pub struct MacKeys {
    mac1: [u8; 32],
    cookie_seal: [u8; 32],
}

impl MacKeys {
    /// The keys of `community`.
    pub fn of(community: &CommunityKeys) -> MacKeys {
        MacKeys::new(&community.handshake_mac)
    }

    /// The keys of initiations to the holder of `responder` (the control channel's, a federation link's:
    /// `label` tells them apart): MAC1 and the cookie sealing key come from its public key (as WireGuard
    /// keys them from the responder's), so anyone who knows whom it addresses can compute them.
    pub fn for_responder(label: &[u8], responder: &PublicKey) -> MacKeys {
        let base: [u8; 32] = hmac(label, &[&responder.0]).finalize().into_bytes().into();
        MacKeys::new(&base)
    }

    /// The control channel's keys with the supernode whose static key is `supernode`.
    pub fn for_supernode(supernode: &PublicKey) -> MacKeys {
        crate::control::Purpose::Control.mac_keys(supernode)
    }

    /// The keys derived from the community's handshake MAC key.
    fn new(handshake_mac: &[u8; 32]) -> MacKeys {
        let derive = |label: &[u8]| -> [u8; 32] {
            hmac(handshake_mac, &[label]).finalize().into_bytes().into()
        };
        MacKeys {
            mac1: derive(b"weft mac1"),
            cookie_seal: derive(b"weft cookie reply"),
        }
    }

    /// MAC1 of a message to `receiver` whose bytes before MAC1 are `msg`.
    pub fn mac1(&self, receiver: &PublicKey, msg: &[u8]) -> [u8; MAC_LEN] {
        truncated(hmac(&self.mac1, &[&receiver.0, msg]))
    }

    /// Checks MAC1 (in constant time) of a message to `receiver`.
    pub fn verify_mac1(&self, receiver: &PublicKey, msg: &[u8], mac: &[u8; MAC_LEN]) -> bool {
        hmac(&self.mac1, &[&receiver.0, msg])
            .verify_truncated_left(mac)
            .is_ok()
    }

    /// Seals `cookie` for the sender of the initiation whose MAC1 is `mac1`.
    pub fn seal_cookie(
        &self,
        cookie: &[u8; COOKIE_LEN],
        mac1: &[u8; MAC_LEN],
        nonce: &[u8; COOKIE_NONCE_LEN],
    ) -> [u8; SEALED_COOKIE_LEN] {
        let mut out = [0u8; SEALED_COOKIE_LEN];
        out[..COOKIE_LEN].copy_from_slice(cookie);
        let tag = XChaCha20Poly1305::new((&self.cookie_seal).into())
            .encrypt_in_place_detached(nonce.into(), mac1, &mut out[..COOKIE_LEN])
            .expect("a 16-byte message is within the AEAD's limits");
        out[COOKIE_LEN..].copy_from_slice(&tag);
        out
    }

    /// Opens a sealed cookie answering the initiation whose MAC1 is `mac1`; None when it was not sealed
    /// with our key for that very initiation.
    pub fn open_cookie(
        &self,
        sealed: &[u8; SEALED_COOKIE_LEN],
        mac1: &[u8; MAC_LEN],
        nonce: &[u8; COOKIE_NONCE_LEN],
    ) -> Option<[u8; COOKIE_LEN]> {
        let mut cookie = [0u8; COOKIE_LEN];
        cookie.copy_from_slice(&sealed[..COOKIE_LEN]);
        XChaCha20Poly1305::new((&self.cookie_seal).into())
            .decrypt_in_place_detached(
                nonce.into(),
                mac1,
                &mut cookie,
                (&sealed[COOKIE_LEN..]).into(),
            )
            .ok()?;
        Some(cookie)
    }
}

/// MAC2 of an initiation whose bytes before MAC2 are `msg`, under `cookie`.
pub fn mac2(cookie: &[u8; COOKIE_LEN], msg: &[u8]) -> [u8; MAC_LEN] {
    truncated(hmac(cookie, &[msg]))
}

/// A cookie an initiator received, and when.
#[derive(Clone, Copy)]
pub struct ReceivedCookie {
    cookie: [u8; COOKIE_LEN],
    at: Instant,
}

impl ReceivedCookie {
    /// A cookie received at `at`.
    pub fn new(cookie: [u8; COOKIE_LEN], at: Instant) -> ReceivedCookie {
        ReceivedCookie { cookie, at }
    }

    /// MAC2 for an initiation sent at `now` (zeros once the cookie is too old to be valid).
    pub fn mac2(&self, msg: &[u8], now: Instant) -> [u8; MAC_LEN] {
        if now.saturating_duration_since(self.at) < COOKIE_SECRET_LIFETIME - COOKIE_LATENCY {
            mac2(&self.cookie, msg)
        } else {
            [0; MAC_LEN]
        }
    }
}

/// Where an initiation came from, as far as cookies go: the address it arrived from and, when a
/// supernode relayed it, the sender tag the supernode vouches for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Source {
    /// The address the datagram came from (the supernode's when relayed).
    pub addr: SocketAddr,
    /// The relayed sender's tag.
    pub tag: Option<PeerTag>,
}

/// What a responder does with an initiation whose MAC1 is valid.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Answer it (the Noise work).
    Process,
    /// Answer with this cookie instead (under load, no valid MAC2).
    Cookie([u8; COOKIE_LEN]),
    /// Drop it: under load, and its source is over its rate.
    RateLimited,
}

/// The responder's side: its load, its rotating cookie secret, and the per-source rate limit. Bounded:
/// one secret, one counter, at most [`MAX_LIMITED_SOURCES`] buckets.
pub struct CookieChecker {
    secret: [u8; 32],
    secret_born: Option<Instant>,
    window_start: Option<Instant>,
    window_count: u32,
    threshold: u32,
    buckets: HashMap<Source, TokenBucket>,
}

impl CookieChecker {
    /// A checker that is under load above `threshold` MAC1-valid initiations per second.
    pub fn new(threshold: u32) -> CookieChecker {
        CookieChecker {
            secret: [0; 32],
            secret_born: None,
            window_start: None,
            window_count: 0,
            threshold,
            buckets: HashMap::new(),
        }
    }

    /// Whether the edge is under load now (more than the threshold in the current one-second window).
    pub fn under_load(&self) -> bool {
        self.window_count > self.threshold
    }

    /// Whether the load is still current at `now` (its one-second window not yet over).
    pub fn still_under_load(&self, now: Instant) -> bool {
        self.under_load()
            && self
                .window_start
                .is_some_and(|s| now.saturating_duration_since(s) < Duration::from_secs(2))
    }

    /// The cookie of `source` now (the secret is renewed from `rng` when it is due).
    fn cookie(
        &mut self,
        source: &Source,
        now: Instant,
        rng: &mut impl RngCore,
    ) -> [u8; COOKIE_LEN] {
        if self
            .secret_born
            .is_none_or(|b| now.saturating_duration_since(b) >= COOKIE_SECRET_LIFETIME)
        {
            rng.fill_bytes(&mut self.secret);
            self.secret_born = Some(now);
        }
        let (family, ip): (u8, Vec<u8>) = match source.addr {
            SocketAddr::V4(a) => (4, a.ip().octets().to_vec()),
            SocketAddr::V6(a) => (6, a.ip().octets().to_vec()),
        };
        let tag = source.tag.map(|t| t.0);
        let mut c = [0u8; COOKIE_LEN];
        c.copy_from_slice(
            &truncated(hmac(
                &self.secret,
                &[
                    &[family],
                    &ip,
                    &source.addr.port().to_be_bytes(),
                    tag.as_ref().map_or(&[][..], |t| &t[..]),
                ],
            ))[..COOKIE_LEN],
        );
        c
    }

    /// Decides about an initiation from `source` whose MAC1 verified; `mac2_input` and `mac2` are the
    /// bytes MAC2 covers and MAC2 itself.
    pub fn admit(
        &mut self,
        source: &Source,
        mac2_input: &[u8],
        mac2_got: &[u8; MAC_LEN],
        now: Instant,
        rng: &mut impl RngCore,
    ) -> Admit {
        match self.window_start {
            Some(s) if now.saturating_duration_since(s) < Duration::from_secs(1) => {
                self.window_count = self.window_count.saturating_add(1)
            }
            _ => {
                self.window_start = Some(now);
                self.window_count = 1;
            }
        }
        if !self.under_load() {
            return Admit::Process;
        }
        if !self.allow(source, now) {
            return Admit::RateLimited;
        }
        let cookie = self.cookie(source, now, rng);
        if hmac(&cookie, &[mac2_input])
            .verify_truncated_left(mac2_got)
            .is_ok()
        {
            Admit::Process
        } else {
            Admit::Cookie(cookie)
        }
    }

    /// The token bucket of `source`: whether one more initiation from it may be handled now.
    fn allow(&mut self, source: &Source, now: Instant) -> bool {
        if self.buckets.len() >= MAX_LIMITED_SOURCES && !self.buckets.contains_key(source) {
            // Sweep what has refilled (idle for a second or more); if the table is still full, start over
            // rather than grow: a flood of distinct sources then goes unlimited per source for a moment,
            // but it still needs MAC2 and is counted as load.
            self.buckets.retain(|_, b| {
                now.saturating_duration_since(b.last_used()) < Duration::from_secs(1)
            });
            if self.buckets.len() >= MAX_LIMITED_SOURCES {
                self.buckets.clear();
            }
        }
        self.buckets
            .entry(*source)
            .or_insert(TokenBucket::full(SOURCE_BURST, now))
            .take(now, SOURCE_RATE, SOURCE_BURST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn keys(b: u8) -> MacKeys {
        MacKeys::new(&[b; 32])
    }

    fn src(port: u16) -> Source {
        Source {
            addr: SocketAddr::from(([192, 0, 2, 1], port)),
            tag: None,
        }
    }

    #[test]
    fn mac1_binds_key_receiver_and_message() {
        let (k, other) = (keys(1), keys(2));
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let m = k.mac1(&a, b"message");
        assert!(k.verify_mac1(&a, b"message", &m));
        assert!(!other.verify_mac1(&a, b"message", &m));
        assert!(!k.verify_mac1(&b, b"message", &m));
        assert!(!k.verify_mac1(&a, b"messagf", &m));
    }

    #[test]
    fn sealed_cookie_opens_only_for_its_initiation_and_key() {
        let k = keys(1);
        let cookie = [7u8; COOKIE_LEN];
        let (mac1, nonce) = ([3u8; MAC_LEN], [4u8; COOKIE_NONCE_LEN]);
        let sealed = k.seal_cookie(&cookie, &mac1, &nonce);
        assert_eq!(k.open_cookie(&sealed, &mac1, &nonce), Some(cookie));
        assert_eq!(k.open_cookie(&sealed, &[5; MAC_LEN], &nonce), None);
        assert_eq!(keys(2).open_cookie(&sealed, &mac1, &nonce), None);
        let mut forged = sealed;
        forged[0] ^= 1;
        assert_eq!(k.open_cookie(&forged, &mac1, &nonce), None);
    }

    #[test]
    fn under_load_asks_for_cookie_then_accepts_mac2() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        let mut c = CookieChecker::new(3);
        let t0 = Instant::now();
        let msg = b"initiation before mac2";
        for port in 0..3 {
            assert_eq!(
                c.admit(&src(port), msg, &[0; MAC_LEN], t0, &mut rng),
                Admit::Process
            );
        }
        let Admit::Cookie(cookie) = c.admit(&src(9), msg, &[0; MAC_LEN], t0, &mut rng) else {
            panic!("a fourth initiation within the second must get a cookie");
        };
        let good = mac2(&cookie, msg);
        assert_eq!(c.admit(&src(9), msg, &good, t0, &mut rng), Admit::Process);
        // The cookie is bound to the source.
        assert!(matches!(
            c.admit(&src(10), msg, &good, t0, &mut rng),
            Admit::Cookie(_)
        ));
        // A second later the window restarts: not under load.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            c.admit(&src(11), msg, &[0; MAC_LEN], t1, &mut rng),
            Admit::Process
        );
    }

    #[test]
    fn cookie_secret_rotates() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        let mut c = CookieChecker::new(0);
        let t0 = Instant::now();
        let a = c.cookie(&src(1), t0, &mut rng);
        assert_eq!(
            a,
            c.cookie(&src(1), t0 + Duration::from_secs(119), &mut rng)
        );
        assert_ne!(a, c.cookie(&src(1), t0 + COOKIE_SECRET_LIFETIME, &mut rng));
        let relayed = Source {
            tag: Some(PeerTag([1; 8])),
            ..src(1)
        };
        assert_ne!(
            c.cookie(&src(1), t0, &mut rng),
            c.cookie(&relayed, t0, &mut rng)
        );
    }

    #[test]
    fn received_cookie_expires() {
        let t0 = Instant::now();
        let r = ReceivedCookie::new([1; COOKIE_LEN], t0);
        assert_eq!(r.mac2(b"m", t0), mac2(&[1; COOKIE_LEN], b"m"));
        assert_eq!(r.mac2(b"m", t0 + COOKIE_SECRET_LIFETIME), [0; MAC_LEN]);
    }

    #[test]
    fn per_source_rate_limit_under_load() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        let mut c = CookieChecker::new(0);
        let t0 = Instant::now();
        let limited = (0..50)
            .filter(|_| c.admit(&src(1), b"m", &[0; MAC_LEN], t0, &mut rng) == Admit::RateLimited)
            .count();
        assert_eq!(limited, 50 - SOURCE_BURST as usize);
        // Another source is not affected; the first one refills with time.
        assert!(matches!(
            c.admit(&src(2), b"m", &[0; MAC_LEN], t0, &mut rng),
            Admit::Cookie(_)
        ));
        assert!(matches!(
            c.admit(
                &src(1),
                b"m",
                &[0; MAC_LEN],
                t0 + Duration::from_millis(100),
                &mut rng
            ),
            Admit::Cookie(_)
        ));
    }

    #[test]
    fn rate_limit_table_is_bounded() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        let mut c = CookieChecker::new(0);
        let t0 = Instant::now();
        for port in 0..(MAX_LIMITED_SOURCES as u16 + 100) {
            c.admit(&src(port), b"m", &[0; MAC_LEN], t0, &mut rng);
        }
        assert!(c.buckets.len() <= MAX_LIMITED_SOURCES);
    }
}
