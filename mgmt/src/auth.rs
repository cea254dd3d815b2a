//! Who may do what.
//!
//! Two questions are answered here, both per request:
//! - may this request be served at all? On a listener bound to a non-loopback address every request
//!   needs the management password (HTTP 401 otherwise); on TCP listeners, requests that a web
//!   browser was tricked into sending (another site's `Origin`, or on a loopback listener a
//!   DNS-rebound `Host`) are refused with 403;
//! - may it run state-changing ("write") methods? A unix-socket peer running as root or as the
//!   daemon's own user may; anybody else needs the password.
//!
//! Before either, [`PasswordGuard::screen`] rate-limits wrong passwords per client, once per
//! request, so that the password cannot be guessed at speed through any of these checks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine};
use hyper::header::{HeaderValue, AUTHORIZATION, HOST, ORIGIN, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Response, StatusCode};

use crate::listener::Peer;
use crate::response::{self, Body};
use crate::stats::MgmtStats;
use crate::throttle::{PasswordThrottle, Verdict};

/// JSON-RPC error code for a write method called without authorisation.
pub(crate) const UNAUTHORIZED_CODE: i32 = -32001;
/// Its message.
pub(crate) const UNAUTHORIZED_MESSAGE: &str =
    "unauthorized: this method needs the management password";

/// The server's access policy.
#[derive(Debug)]
pub(crate) struct Policy {
    /// The management password, if one is configured.
    pub(crate) password: Option<String>,
    /// Methods that change state and so need authorisation.
    pub(crate) write_methods: HashSet<String>,
    /// The daemon's effective uid: a unix peer with this uid (or 0) is trusted.
    pub(crate) daemon_uid: u32,
}

impl Policy {
    /// Whether the request's `Authorization` header carries the password.
    pub(crate) fn has_password(&self, headers: &HeaderMap) -> bool {
        self.password
            .as_deref()
            .is_some_and(|expected| carries_password(headers, expected))
    }

    /// Whether the request may call write methods.
    pub(crate) fn may_write(&self, peer: Option<&Peer>, headers: &HeaderMap) -> bool {
        if peer.is_some_and(|p| is_trusted(p, self.daemon_uid)) {
            return true;
        }
        self.has_password(headers)
    }

    /// Refuse a request before routing, or let it through (`Ok`).
    #[allow(clippy::result_large_err)]
    pub(crate) fn gate(
        &self,
        peer: Option<&Peer>,
        headers: &HeaderMap,
    ) -> Result<(), Response<Body>> {
        let Some(Peer::Tcp { remote, .. }) = peer else {
            return Ok(());
        };
        if *remote && !self.has_password(headers) {
            let mut resp = response::text(
                StatusCode::UNAUTHORIZED,
                "this management listener needs the management password\n",
            );
            resp.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"weft\""),
            );
            return Err(resp);
        }
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        if !*remote && host.is_some_and(is_rebound_host) {
            return Err(response::text(
                StatusCode::FORBIDDEN,
                "this listener only answers to loopback host names (localhost, 127.0.0.1, [::1]); \
                 a domain name in the Host header looks like DNS rebinding\n",
            ));
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let same = origin
                .to_str()
                .ok()
                .and_then(|o| o.strip_prefix("http://"))
                .zip(host)
                .is_some_and(|(o, h)| o.eq_ignore_ascii_case(h));
            if !same {
                return Err(response::text(
                    StatusCode::FORBIDDEN,
                    "cross-origin requests are not accepted\n",
                ));
            }
        }
        Ok(())
    }
}

/// Whether `peer` is root or the daemon's own user on the unix socket: trusted without a password.
pub(crate) fn is_trusted(peer: &Peer, daemon_uid: u32) -> bool {
    matches!(peer, Peer::Unix { uid: Some(uid), .. } if *uid == 0 || *uid == daemon_uid)
}

/// Whether any `Authorization` header in `headers` carries `expected`.
fn carries_password(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(presented_password)
        .any(|given| constant_time_eq(given.as_bytes(), expected.as_bytes()))
}

/// Rate-limits wrong passwords, per client, before any other check sees the request.
#[derive(Debug)]
pub(crate) struct PasswordGuard {
    password: Option<String>,
    daemon_uid: u32,
    throttle: PasswordThrottle,
    stats: Arc<MgmtStats>,
}

impl PasswordGuard {
    pub(crate) fn new(
        password: Option<String>,
        daemon_uid: u32,
        throttle: PasswordThrottle,
        stats: Arc<MgmtStats>,
    ) -> Self {
        Self {
            password,
            daemon_uid,
            throttle,
            stats,
        }
    }

    /// Look at the password a request from `peer` carries, once per request.
    ///
    /// A wrong one is counted against the client (a burst that starts a lock-out is logged once).
    /// While the client is locked out its password is not checked at all: on a remote listener,
    /// where nothing is served without the password, the answer is HTTP 429 (returned here);
    /// elsewhere the `Authorization` header is removed and the request goes on as one without a
    /// password, so reads still work and write methods get error -32001. Requests without a
    /// password, with no password configured, or from peers that need none are left alone.
    pub(crate) fn screen(&self, peer: &Peer, headers: &mut HeaderMap) -> Option<Response<Body>> {
        let expected = self.password.as_deref()?;
        if !headers.contains_key(AUTHORIZATION) || is_trusted(peer, self.daemon_uid) {
            return None;
        }
        let client = peer.client();
        let now = Instant::now();
        if let Verdict::Locked { retry_after } = self.throttle.check(client, now) {
            self.stats.count_throttled();
            if matches!(peer, Peer::Tcp { remote: true, .. }) {
                return Some(too_many_attempts(retry_after.as_secs() + 1));
            }
            headers.remove(AUTHORIZATION);
            return None;
        }
        if carries_password(headers, expected) {
            return None;
        }
        self.stats.count_password_failure();
        if let Some(burst) = self.throttle.failed(client, now) {
            self.stats.count_password_burst();
            tracing::warn!(
                %client,
                failures = burst.failures,
                over_ms = burst.over.as_millis() as u64,
                lockout_s = burst.lockout.as_secs(),
                refused_in_previous_lockout = burst.refused_before,
                "management API: {} wrong passwords from {client} in {:.1} s; its password attempts \
                 are refused unchecked for {} s. If this is not an attack, a tool at that address \
                 (or run by that user) has an old management password",
                burst.failures,
                burst.over.as_secs_f64(),
                burst.lockout.as_secs(),
            );
        }
        None
    }
}

/// HTTP 429 for a client whose password attempts are refused for `retry_after_s` seconds more.
fn too_many_attempts(retry_after_s: u64) -> Response<Body> {
    let mut resp = response::closing(
        StatusCode::TOO_MANY_REQUESTS,
        "too many wrong management passwords from this address; try again later\n",
    );
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_s));
    resp
}

/// Standard base64 as the `Basic` scheme carries it, decoded leniently (padding optional, as
/// clients differ on it).
const BASIC_CREDENTIALS: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The password in an `Authorization: Bearer <pw>` or `Authorization: Basic base64(user:pw)`.
fn presented_password(value: &HeaderValue) -> Option<String> {
    let value = value.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.to_owned())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASIC_CREDENTIALS.decode(rest).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        Some(password.to_owned())
    } else {
        None
    }
}

/// Compare without an early exit, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// Whether a `Host` header on a loopback listener names a domain (a dotted name other than
/// `localhost` or `*.localhost`): a web page that re-pointed its own domain at 127.0.0.1 (DNS
/// rebinding) sends such a header. IP literals and single-label names (`localhost`, the machine's
/// own host name) are fine.
fn is_rebound_host(host: &str) -> bool {
    if host.starts_with('[') {
        return false;
    }
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.parse::<std::net::IpAddr>().is_ok() || !name.contains('.') {
        return false;
    }
    !(name == "localhost" || name.ends_with(".localhost"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            password: Some("s3cret".to_owned()),
            write_methods: HashSet::new(),
            daemon_uid: 1000,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn password_schemes() {
        let p = policy();
        assert!(p.has_password(&headers(&[("authorization", "Bearer s3cret")])));
        assert!(p.has_password(&headers(&[("authorization", "bearer  s3cret ")])));
        // base64("admin:s3cret")
        assert!(p.has_password(&headers(&[("authorization", "Basic YWRtaW46czNjcmV0")])));
        // base64(":s3cret")
        assert!(p.has_password(&headers(&[("authorization", "Basic OnMzY3JldA==")])));
        assert!(!p.has_password(&headers(&[("authorization", "Bearer s3cre")])));
        assert!(!p.has_password(&headers(&[("authorization", "Bearer s3cret1")])));
        assert!(!p.has_password(&headers(&[("authorization", "Basic czNjcmV0")])));
        assert!(!p.has_password(&headers(&[("authorization", "Digest s3cret")])));
        assert!(!p.has_password(&HeaderMap::new()));
        let none = Policy {
            password: None,
            ..policy()
        };
        assert!(!none.has_password(&headers(&[("authorization", "Bearer ")])));
    }

    #[test]
    fn unix_peers() {
        let p = policy();
        let h = HeaderMap::new();
        let unix = |uid| Peer::Unix {
            uid: Some(uid),
            pid: None,
        };
        assert!(p.may_write(Some(&unix(0)), &h));
        assert!(p.may_write(Some(&unix(1000)), &h));
        assert!(!p.may_write(Some(&unix(1001)), &h));
        assert!(p.may_write(
            Some(&unix(1001)),
            &headers(&[("authorization", "Bearer s3cret")])
        ));
        let tcp = Peer::Tcp {
            addr: "127.0.0.1:1".parse().unwrap(),
            remote: false,
        };
        assert!(!p.may_write(Some(&tcp), &h));
    }

    #[test]
    fn hosts_and_origins() {
        for fine in [
            "localhost",
            "localhost:8080",
            "weft",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:80",
            "10.0.0.1:80",
            "status.localhost:80",
        ] {
            assert!(!is_rebound_host(fine), "{fine}");
        }
        for rebound in ["evil.example:80", "evil.example", "a.b.c.example.:1"] {
            assert!(is_rebound_host(rebound), "{rebound}");
        }

        let p = policy();
        let local = Peer::Tcp {
            addr: "127.0.0.1:1".parse().unwrap(),
            remote: false,
        };
        let ok = |h: &[(&'static str, &str)]| p.gate(Some(&local), &headers(h)).is_ok();
        assert!(ok(&[]));
        assert!(ok(&[("host", "127.0.0.1:9")]));
        assert!(ok(&[
            ("host", "127.0.0.1:9"),
            ("origin", "http://127.0.0.1:9")
        ]));
        assert!(!ok(&[("host", "rebound.example:9")]));
        assert!(!ok(&[
            ("host", "127.0.0.1:9"),
            ("origin", "http://evil.example")
        ]));
        assert!(!ok(&[("host", "127.0.0.1:9"), ("origin", "null")]));
        // The unix socket is not reachable from a browser.
        let unix = Peer::Unix {
            uid: None,
            pid: None,
        };
        assert!(p
            .gate(Some(&unix), &headers(&[("origin", "http://evil.example")]))
            .is_ok());
    }

    #[test]
    fn constant_time() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
