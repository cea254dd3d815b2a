//! The edge's options (the `help config` table) and their translation into typed settings.
//!
//! Option names follow n3n's where the meaning is the same, so an n3n user's file mostly carries over.

// Config errors carry their origin by value and are built once per start: size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use weft_config::{Config, ConfigError, Schema};
use weft_daemon::{Common, MgmtSettings};
use weft_proto::keys::PublicKey;
use weft_proto::secret::{CommunitySecret, KdfCost};
use weft_proto::wire::{Ipv4Net, MacAddr};

/// The UDP port supernodes listen on unless told otherwise (n3n uses 7654; we differ on purpose).
pub const DEFAULT_SUPERNODE_PORT: u16 = 7700;

/// Every option weft-edge understands: its own and the daemons' common ones.
pub static SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| weft_daemon::schema("weft-edge", weft_daemon::options::EDGE_OPTIONS));

/// How the TAP gets its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressMode {
    Static(Ipv4Net),
    Auto,
    Dhcp,
}

/// Typed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub session: String,
    pub community: String,
    /// `key` or `key_file`: a generated key or a passphrase.
    pub secret: CommunitySecret,
    /// `kdf_memory` and `kdf_passes`: Argon2id's cost for a passphrase.
    pub kdf: KdfCost,
    pub supernodes: Vec<SupernodeSpec>,
    /// `allow_peer`: the only peer keys this edge accepts; None (the option unset) accepts every key
    /// the community's supernodes admit.
    pub allow_peers: Option<BTreeSet<PublicKey>>,
    pub tap_name: String,
    pub address: AddressMode,
    pub mac: Option<MacAddr>,
    pub mtu: u16,
    pub offload: bool,
    pub description: String,
    pub bind: SocketAddr,
    pub allow_p2p: bool,
    pub register_interval: Duration,
    pub advertise: Vec<Advertised>,
    /// `[daemon]` and `[logging]`.
    pub common: Common,
    /// `[management]`.
    pub mgmt: MgmtSettings,
}

/// An advertised local address, with or without a port (without: the bound port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertised {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl std::str::FromStr for Advertised {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(Advertised {
                ip: sa.ip(),
                port: Some(sa.port()),
            });
        }
        s.parse::<IpAddr>()
            .map(|ip| Advertised { ip, port: None })
            .map_err(|_| "expected an IP address or ip:port".to_string())
    }
}

/// One `allow_peer` value: an edge's public key, as `weft-edge show-key` prints it.
struct AllowedPeer(PublicKey);

impl std::str::FromStr for AllowedPeer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<PublicKey>().map(AllowedPeer).map_err(|e| {
            format!("a peer's key must be 64 hex digits (weft-edge show-key on that edge prints it): {e}")
        })
    }
}

/// `allow_peer`, repeatable: None when not given at all.
fn allow_peers(cfg: &Config) -> Result<Option<BTreeSet<PublicKey>>, ConfigError> {
    let keys: Vec<AllowedPeer> = cfg.parse_all("community", "allow_peer")?;
    Ok((!keys.is_empty()).then(|| keys.into_iter().map(|k| k.0).collect()))
}

/// Reads the secret: command line / environment / file value of `key`, else `key_file`. A text that
/// starts like a generated key but is not one is an error naming the option it came from.
fn secret(cfg: &Config) -> Result<CommunitySecret, ConfigError> {
    if let Some(s) = cfg.get("community", "key") {
        return CommunitySecret::parse(&s.value)
            .map_err(|e| cfg.invalid("community", "key", e.to_string()));
    }
    if let Some(path) = cfg.parse::<PathBuf>("community", "key_file")? {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            cfg.invalid(
                "community",
                "key_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let line = text.lines().next().unwrap_or("").trim_end();
        if line.is_empty() {
            return Err(cfg.invalid(
                "community",
                "key_file",
                format!("{} holds no secret", path.display()),
            ));
        }
        return CommunitySecret::parse(line).map_err(|e| {
            cfg.invalid(
                "community",
                "key_file",
                format!("the secret in {}: {e}", path.display()),
            )
        });
    }
    Err(ConfigError::Missing {
        section: "community".into(),
        option: "key".into(),
    })
}

/// Argon2id's cost: `kdf_memory` and `kdf_passes`, each refused outside its limits by name.
fn kdf_cost(cfg: &Config) -> Result<KdfCost, ConfigError> {
    let memory: u32 = cfg.require("community", "kdf_memory")?;
    let passes: u32 = cfg.require("community", "kdf_passes")?;
    KdfCost::new(memory, KdfCost::DEFAULT.passes())
        .map_err(|e| cfg.invalid("community", "kdf_memory", e.to_string()))?;
    KdfCost::new(memory, passes).map_err(|e| cfg.invalid("community", "kdf_passes", e.to_string()))
}

fn default_tap_name(session: &str) -> String {
    let mut n = format!("weft-{session}");
    n.truncate(15);
    n
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Settings {
    /// Typed settings from a loaded configuration; every error names where the bad value came from.
    pub fn from_config(cfg: &Config) -> Result<Settings, ConfigError> {
        let session = cfg.session().to_string();
        let community: String = cfg.require("community", "name")?;
        if community.is_empty() || community.len() > 64 {
            return Err(cfg.invalid("community", "name", "must be 1 to 64 bytes long"));
        }
        let secret = secret(cfg)?;
        let kdf = kdf_cost(cfg)?;
        let supernodes: Vec<SupernodeSpec> = cfg.parse_all("community", "supernode")?;
        if supernodes.is_empty() {
            return Err(ConfigError::Missing {
                section: "community".into(),
                option: "supernode".into(),
            });
        }
        let allow_peers = allow_peers(cfg)?;
        let tap_name = cfg
            .parse::<String>("tuntap", "name")?
            .unwrap_or_else(|| default_tap_name(&session));
        if tap_name.is_empty() || tap_name.len() > 15 || tap_name.contains(['/', ' ']) {
            return Err(cfg.invalid(
                "tuntap",
                "name",
                "must be 1 to 15 characters, no '/' or spaces",
            ));
        }
        let static_addr: Option<Ipv4Net> = cfg.parse("tuntap", "address")?;
        let address = match cfg.parse::<String>("tuntap", "address_mode")?.as_deref() {
            None => match static_addr {
                Some(n) => AddressMode::Static(n),
                None => AddressMode::Auto,
            },
            Some("static") => match static_addr {
                Some(n) => AddressMode::Static(n),
                None => {
                    return Err(cfg.invalid(
                        "tuntap",
                        "address_mode",
                        "static needs [tuntap] address",
                    ))
                }
            },
            Some("auto") => AddressMode::Auto,
            Some("dhcp") => AddressMode::Dhcp,
            Some(_) => {
                return Err(cfg.invalid("tuntap", "address_mode", "expected static, auto or dhcp"))
            }
        };
        let mtu: u16 = cfg.require("tuntap", "mtu")?;
        if !(576..=9000).contains(&mtu) {
            return Err(cfg.invalid("tuntap", "mtu", "must be between 576 and 9000"));
        }
        let register_secs: u64 = cfg.require("connection", "register_interval")?;
        if !(5..=3600).contains(&register_secs) {
            return Err(cfg.invalid(
                "connection",
                "register_interval",
                "must be between 5 and 3600 seconds",
            ));
        }
        Ok(Settings {
            community,
            secret,
            kdf,
            supernodes,
            allow_peers,
            tap_name,
            address,
            mac: cfg.parse("tuntap", "macaddr")?,
            mtu,
            offload: cfg.parse_bool("tuntap", "offload")?.unwrap_or(true),
            description: cfg
                .parse::<String>("tuntap", "description")?
                .unwrap_or_else(host_name),
            bind: cfg.require("connection", "bind")?,
            allow_p2p: cfg.parse_bool("connection", "allow_p2p")?.unwrap_or(true),
            register_interval: Duration::from_secs(register_secs),
            advertise: cfg.parse_all("connection", "advertise")?,
            common: Common::from_config(cfg)?,
            mgmt: MgmtSettings::from_config(cfg)?,
            session,
        })
    }
}

/// One `supernode` value: `HOST[:PORT] [KEY]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupernodeSpec {
    /// `host` or `host:port`.
    pub name: String,
    /// Its pinned public key, if given.
    pub key: Option<PublicKey>,
}

impl std::str::FromStr for SupernodeSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split_whitespace();
        let name = words.next().ok_or("empty")?.to_string();
        let key = match words.next() {
            None => None,
            Some(k) => Some(k.parse::<PublicKey>().map_err(|e| {
                format!("the supernode's key must be 64 hex digits (weft-supernode show-key): {e}")
            })?),
        };
        if words.next().is_some() {
            return Err("expected HOST[:PORT] and at most one key after it".into());
        }
        Ok(SupernodeSpec { name, key })
    }
}

/// Resolves `host[:port]` supernode names (port 7700 when omitted), keeping each one's pinned key.
pub async fn resolve_supernodes(
    specs: &[SupernodeSpec],
) -> Result<Vec<(SocketAddr, Option<PublicKey>)>> {
    let mut out = Vec::new();
    for spec in specs {
        let name = &spec.name;
        let with_port = if name.parse::<SocketAddr>().is_ok() || has_port(name) {
            name.clone()
        } else {
            format!("{name}:{DEFAULT_SUPERNODE_PORT}")
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("cannot resolve supernode '{name}'"))?
            .collect();
        // Prefer IPv4: the edge binds one socket, 0.0.0.0 by default.
        match addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
            Some(a) => out.push((*a, spec.key)),
            None => bail!("supernode '{name}' resolves to no address"),
        }
    }
    Ok(out)
}

fn has_port(name: &str) -> bool {
    match name.rsplit_once(':') {
        Some((host, port)) => !host.contains(':') && port.parse::<u16>().is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str, overrides: &[&str]) -> Result<Settings, ConfigError> {
        let ov: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let cfg = Config::from_bytes(
            &SCHEMA,
            "home",
            Some((Path::new("/etc/weft/home.conf"), text.as_bytes())),
            &ov,
        )?;
        Settings::from_config(&cfg)
    }

    const MIN: &str = "[community]\nname=home\nkey=s3cret\nsupernode=sn.example:7700\n";

    #[test]
    fn schema_is_consistent() {
        SCHEMA.check().unwrap();
    }

    #[test]
    fn minimal_file_gives_defaults() {
        let s = load(MIN, &[]).unwrap();
        assert_eq!(s.tap_name, "weft-home");
        assert_eq!(s.address, AddressMode::Auto);
        assert_eq!(s.mtu, 1400);
        assert_eq!(s.common.state_dir, PathBuf::from("/var/lib/weft/home"));
        assert!(s.allow_p2p);
        assert_eq!(s.secret, CommunitySecret::Passphrase(b"s3cret".to_vec()));
        assert_eq!(s.kdf, KdfCost::DEFAULT);
    }

    #[test]
    fn generated_keys_are_recognised_and_malformed_ones_refused_by_option() {
        let key = weft_proto::secret::GeneratedKey::from_bytes([9; 32]);
        let text = MIN.replace("s3cret", &key.to_string());
        let s = load(&text, &[]).unwrap();
        assert_eq!(s.secret, CommunitySecret::Generated(key.clone()));
        // One digit lost in copying: an error naming the file, line and option, not a passphrase.
        let cut = key.to_string();
        let e = load(&MIN.replace("s3cret", &cut[..cut.len() - 1]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/weft/home.conf:3") && e.contains("key") && e.contains("generated key"),
            "{e}"
        );
        let e = load(MIN, &["community.key=weftkey1-00"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("key") && e.contains("generated key"), "{e}");
        // The same from key_file, naming key_file.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("home.key");
        std::fs::write(&file, format!("{}\n", &cut[..cut.len() - 2])).unwrap();
        let text = format!(
            "[community]\nname=home\nkey_file={}\nsupernode=sn\n",
            file.display()
        );
        let e = load(&text, &[]).unwrap_err().to_string();
        assert!(
            e.contains(":3") && e.contains("key_file") && e.contains("generated key"),
            "{e}"
        );
        std::fs::write(&file, format!("{key}\n")).unwrap();
        assert_eq!(
            load(&text, &[]).unwrap().secret,
            CommunitySecret::Generated(key)
        );
    }

    #[test]
    fn kdf_cost_options_and_their_floor() {
        let s = load(&format!("{MIN}kdf_memory=16384\nkdf_passes=2\n"), &[]).unwrap();
        assert_eq!(s.kdf, KdfCost::new(16384, 2).unwrap());
        let e = load(&format!("{MIN}kdf_memory=4096\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/weft/home.conf:5") && e.contains("kdf_memory") && e.contains("8192"),
            "{e}"
        );
        let e = load(&format!("{MIN}kdf_passes=0\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains(":5") && e.contains("kdf_passes"), "{e}");
        let e = load(MIN, &["community.kdf_memory=lots"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("kdf_memory"), "{e}");
    }

    #[test]
    fn allow_peer_is_repeatable_and_names_a_bad_key() {
        assert_eq!(load(MIN, &[]).unwrap().allow_peers, None);
        let (k1, k2) = ("ab".repeat(32), "CD".repeat(32));
        let s = load(&format!("{MIN}allow_peer = {k1}\nallow_peer={k2}\n"), &[]).unwrap();
        let want: BTreeSet<PublicKey> = [k1.parse().unwrap(), k2.parse().unwrap()].into();
        assert_eq!(s.allow_peers, Some(want));
        // One digit lost in copying: the error names the file, the line and the option.
        let e = load(
            &format!("{MIN}allow_peer={k1}\nallow_peer={}\n", &k2[1..]),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/etc/weft/home.conf:6")
                && e.contains("allow_peer")
                && e.contains("show-key"),
            "{e}"
        );
        let e = load(MIN, &["community.allow_peer=nope"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow_peer"), "{e}");
    }

    #[test]
    fn static_address_and_overrides() {
        let s = load(
            &format!("{MIN}[tuntap]\naddress=10.0.0.1/24\n"),
            &["tuntap.mtu=1300", "connection.allow_p2p=false"],
        )
        .unwrap();
        assert_eq!(
            s.address,
            AddressMode::Static("10.0.0.1/24".parse().unwrap())
        );
        assert_eq!(s.mtu, 1300);
        assert!(!s.allow_p2p);
    }

    #[test]
    fn errors_name_file_line_and_option() {
        let e = load(&format!("{MIN}[tuntap]\nmtu=12\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/weft/home.conf:6") && e.contains("mtu"),
            "{e}"
        );
        let e = load(&format!("{MIN}[tuntap]\naddress_mode=static\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("address_mode") && e.contains(":6"), "{e}");
        let e = load("[community]\nname=x\nkey=k\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("supernode"), "{e}");
        let e = load("[community]\nname=x\nsupernode=a\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("key"), "{e}");
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/examples/edge.conf");
        let cfg = Config::load(&SCHEMA, "home", Some(&path), &[]).unwrap();
        let s = Settings::from_config(&cfg).unwrap();
        assert_eq!(s.community, "home");
        assert_eq!(s.address, AddressMode::Auto);
        // The example shows the documented default: a generated key, not a passphrase.
        assert!(matches!(s.secret, CommunitySecret::Generated(_)));
    }

    #[test]
    fn advertise_parses_ip_and_ip_port() {
        assert_eq!("10.0.0.1".parse::<Advertised>().unwrap().port, None);
        assert_eq!("10.0.0.1:9".parse::<Advertised>().unwrap().port, Some(9));
        assert!("nope".parse::<Advertised>().is_err());
        assert!(has_port("sn.example:7700"));
        assert!(!has_port("sn.example"));
    }
}
