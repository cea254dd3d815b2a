//! The supernode's options (the `help config` table) and their typed form.

// Config errors carry their origin by value and are built once per start: size does not matter.
#![allow(clippy::result_large_err)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use weft_config::{Config, ConfigError, Schema};
use weft_daemon::{Common, MgmtSettings};
use weft_proto::keys::PublicKey;
use weft_proto::supernode::FedPeer;

/// Every option weft-supernode understands: its own and the daemons' common ones.
pub static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    weft_daemon::schema("weft-supernode", weft_daemon::options::SUPERNODE_OPTIONS)
});

/// Typed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub session: String,
    pub bind: SocketAddr,
    pub community_file: Option<PathBuf>,
    pub pool_min: Ipv4Addr,
    pub pool_max: Ipv4Addr,
    /// How long an address stays leased to an edge that stopped registering.
    pub lease_time: Duration,
    /// Control handshakes a second above which initiations need a cookie.
    pub handshake_load: u32,
    /// Federation peers, resolved at start, each with the key it must prove.
    pub peers: Vec<FedPeer>,
    /// `[supernode] federation` is set: ignored since federation links are authenticated by the
    /// supernodes' keys (the daemon warns).
    pub federation_secret_ignored: bool,
    /// `[daemon]` and `[logging]`.
    pub common: Common,
    /// `[management]`.
    pub mgmt: MgmtSettings,
}

impl Settings {
    /// Typed settings from a loaded configuration.
    pub fn from_config(cfg: &Config) -> Result<Settings, ConfigError> {
        let session = cfg.session().to_string();
        let pool_min: Ipv4Addr = cfg.require("supernode", "auto_ip_min")?;
        let pool_max: Ipv4Addr = cfg.require("supernode", "auto_ip_max")?;
        if u32::from(pool_max) < u32::from(pool_min) {
            return Err(cfg.invalid("supernode", "auto_ip_max", "is below auto_ip_min"));
        }
        let lease_secs: u64 = cfg.require("supernode", "lease_time")?;
        if !(600..=31_536_000).contains(&lease_secs) {
            return Err(cfg.invalid(
                "supernode",
                "lease_time",
                "must be between 600 seconds (10 minutes) and 31536000 (a year)",
            ));
        }
        let handshake_load: u32 = cfg.require("supernode", "handshake_load")?;
        let mut peers: Vec<FedPeer> = Vec::new();
        for spec in cfg.parse_all::<PeerSpec>("supernode", "peer")? {
            let addr =
                resolve_peer(&spec.name).map_err(|why| cfg.invalid("supernode", "peer", &why))?;
            if peers.iter().any(|p| p.addr == addr) {
                return Err(cfg.invalid("supernode", "peer", format!("{addr} is listed twice")));
            }
            peers.push(FedPeer {
                addr,
                key: spec.key,
            });
        }
        let federation_secret_ignored = cfg
            .get("supernode", "federation")
            .is_some_and(|s| !s.value.is_empty())
            || std::env::var_os("WEFT_FEDERATION").is_some_and(|v| !v.is_empty());
        Ok(Settings {
            peers,
            federation_secret_ignored,
            bind: cfg.require("connection", "bind")?,
            community_file: cfg.parse("supernode", "community_file")?,
            pool_min,
            pool_max,
            lease_time: Duration::from_secs(lease_secs),
            handshake_load,
            common: Common::from_config(cfg)?,
            mgmt: MgmtSettings::from_config(cfg)?,
            session,
        })
    }
}

/// One `peer` value: `HOST[:PORT] KEY`, the key as `weft-supernode show-key` prints it on that peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub name: String,
    pub key: PublicKey,
}

impl std::str::FromStr for PeerSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split_whitespace();
        let name = words.next().ok_or("empty")?.to_string();
        let key = words
            .next()
            .ok_or(
                "expected HOST[:PORT] KEY: the peer's public key (64 hex digits, as \
                 `weft-supernode show-key` prints it there) is required",
            )?
            .parse::<PublicKey>()
            .map_err(|e| {
                format!("the peer's key must be 64 hex digits (weft-supernode show-key): {e}")
            })?;
        if words.next().is_some() {
            return Err("expected HOST[:PORT] and one key after it".into());
        }
        Ok(PeerSpec { name, key })
    }
}

/// Resolves `host[:port]` (port 7700 when omitted) once, at start.
fn resolve_peer(name: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = name.parse::<SocketAddr>() {
        return Ok(a);
    }
    let with_port = match name.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => name.to_string(),
        _ => format!("{name}:7700"),
    };
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{name}': {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("'{name}' resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Result<Settings, ConfigError> {
        let cfg = Config::from_bytes(
            &SCHEMA,
            "sn",
            Some((Path::new("/etc/weft/sn.conf"), text.as_bytes())),
            &[],
        )?;
        Settings::from_config(&cfg)
    }

    #[test]
    fn schema_is_consistent_and_defaults_apply() {
        SCHEMA.check().unwrap();
        let s = load("").unwrap();
        assert_eq!(s.bind, "0.0.0.0:7700".parse().unwrap());
        assert_eq!(s.community_file, None);
        assert_eq!(s.common.state_dir, PathBuf::from("/var/lib/weft/sn"));
        assert_eq!(s.lease_time, Duration::from_secs(86400));
        let s = load("[supernode]\nlease_time=3600\n").unwrap();
        assert_eq!(s.lease_time, Duration::from_secs(3600));
        assert_eq!(s.handshake_load, 200);
        let s = load("[supernode]\nhandshake_load=50\n").unwrap();
        assert_eq!(s.handshake_load, 50);
        let e = load("[supernode]\nhandshake_load=lots\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("handshake_load"), "{e}");
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/examples/supernode.conf");
        let cfg = Config::load(&SCHEMA, "supernode", Some(&path), &[]).unwrap();
        assert_eq!(Settings::from_config(&cfg).unwrap().bind.port(), 7700);
        let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/examples/communities");
        let policy = crate::communities::load(&list).unwrap();
        assert!(!policy.open);
    }

    #[test]
    fn bad_values_name_their_line() {
        let e = load("[supernode]\nauto_ip_min=10.0.0.9\nauto_ip_max=10.0.0.1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sn.conf:3") && e.contains("auto_ip_max"), "{e}");
        let e = load("[supernode]\nlease_time=60\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sn.conf:2") && e.contains("lease_time"), "{e}");
        let e = load("[supernode]\n\nlease_time=a day\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sn.conf:3") && e.contains("lease_time"), "{e}");
        let e = load("[connection]\nbind=nope\n").unwrap_err().to_string();
        assert!(e.contains("sn.conf:2") && e.contains("bind"), "{e}");
    }

    #[test]
    fn peers_need_their_key() {
        let key = "ab".repeat(32);
        let s = load(&format!(
            "[supernode]\npeer = 192.0.2.1 {key}\npeer = 192.0.2.2:7800 {key}\n"
        ))
        .unwrap();
        assert_eq!(s.peers.len(), 2);
        assert_eq!(s.peers[0].addr, "192.0.2.1:7700".parse().unwrap());
        assert_eq!(s.peers[1].addr, "192.0.2.2:7800".parse().unwrap());
        assert_eq!(s.peers[0].key, key.parse().unwrap());
        assert!(!s.federation_secret_ignored);
        // No key, a bad key, two keys: each error names the file, line and option.
        for (line, bad) in [
            "peer = 192.0.2.1".to_string(),
            "peer = 192.0.2.1 abcd".to_string(),
            format!("peer = 192.0.2.1 {key} {key}"),
        ]
        .iter()
        .map(|l| (3, l))
        {
            let e = load(&format!("[supernode]\n\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("sn.conf:{line}")) && e.contains("peer"),
                "{e}"
            );
        }
        let e = load(&format!(
            "[supernode]\npeer = 192.0.2.1 {key}\npeer = 192.0.2.1:7700 {key}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("listed twice"), "{e}");
        // The shared secret of earlier versions is still accepted, and ignored (with a warning).
        let s = load(&format!(
            "[supernode]\npeer = 192.0.2.1 {key}\nfederation = old secret\n"
        ))
        .unwrap();
        assert!(s.federation_secret_ignored);
        assert_eq!(s.peers.len(), 1);
    }
}
