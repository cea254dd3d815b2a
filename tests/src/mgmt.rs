//! The daemons' management API as the tests use it: JSON-RPC 2.0 calls on the unix socket
//! `/run/weft/<session>/mgmt` through the project's management client
//! ([`weft_mgmt::client`]), plus the response types of the contract.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use weft_mgmt::client;

/// Where a session's management socket lives.
pub fn socket_path(session: &str) -> PathBuf {
    weft_mgmt::socket_path(Path::new(weft_mgmt::DEFAULT_RUNTIME_DIR), session)
}

/// Calls `method` on the socket; returns the JSON-RPC `result` or an error carrying the
/// JSON-RPC `error`.
pub fn call(socket: &Path, method: &str, params: Value, timeout: Duration) -> Result<Value> {
    client::call_blocking(socket, method, params, timeout)
        .with_context(|| format!("{method} on {}", socket.display()))
}

/// Calls `method` and decodes its result as `T`; errors quote the raw result.
pub fn call_as<T: DeserializeOwned>(socket: &Path, method: &str, timeout: Duration) -> Result<T> {
    let v = call(socket, method, Value::Null, timeout)?;
    serde_json::from_value(v.clone())
        .with_context(|| format!("{method}: result does not match the contract: {v}"))
}

/// Edge `get_info`.
#[derive(Debug, Clone, Deserialize)]
pub struct EdgeInfo {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub session: String,
    #[serde(default)]
    pub community: String,
    pub public_key: String,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub tap: Option<String>,
    #[serde(default)]
    pub bind: Option<String>,
    pub registered: bool,
    #[serde(default)]
    pub supernodes: Vec<SupernodeStatus>,
    pub stats: EdgeStats,
}

impl EdgeInfo {
    /// The VPN address without its prefix length.
    pub fn ipv4(&self) -> Option<std::net::Ipv4Addr> {
        self.ip
            .as_deref()
            .and_then(|s| s.split('/').next())
            .and_then(|s| s.parse().ok())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SupernodeStatus {
    pub addr: String,
    pub registered: bool,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct EdgeStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub handshakes_completed: u64,
    pub handshakes_rejected: u64,
    pub dropped_malformed: u64,
    pub dropped_auth: u64,
    pub dropped_replay: u64,
    pub dropped_unknown_session: u64,
    pub dropped_unauthenticated: u64,
    pub dropped_bad_mac: u64,
    pub dropped_handshake_rate: u64,
    pub cookie_replies_sent: u64,
    pub dropped_not_allowed: u64,
    pub unconfirmed_dropped: u64,
}

impl EdgeStats {
    /// Everything counted as refused: rejected handshakes and all drop counters.
    pub fn refused(&self) -> u64 {
        self.handshakes_rejected
            + self.dropped_malformed
            + self.dropped_auth
            + self.dropped_replay
            + self.dropped_unknown_session
            + self.dropped_bad_mac
            + self.dropped_handshake_rate
    }
}

/// One entry of edge `get_edges`.
#[derive(Debug, Clone, Deserialize)]
pub struct Peer {
    pub public_key: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    pub state: String,
    pub path: String,
    #[serde(default)]
    pub addr: Option<String>,
    #[serde(default)]
    pub last_seen_ms: Option<u64>,
    #[serde(default)]
    pub rx_packets: u64,
    #[serde(default)]
    pub tx_packets: u64,
    #[serde(default)]
    pub rx_bytes: u64,
    #[serde(default)]
    pub tx_bytes: u64,
}

impl Peer {
    pub fn is_up(&self) -> bool {
        self.state == "up"
    }
    pub fn is_direct(&self) -> bool {
        self.is_up() && self.path == "direct"
    }
    pub fn is_relayed(&self) -> bool {
        self.is_up() && self.path == "relayed"
    }
    /// A short name: the description, else the start of the key.
    pub fn name(&self) -> String {
        if self.description.is_empty() {
            short_key(&self.public_key)
        } else {
            self.description.clone()
        }
    }
}

/// First 12 hex digits of a key, for messages.
pub fn short_key(k: &str) -> String {
    k.chars().take(12).collect()
}

/// Supernode `get_info`.
#[derive(Debug, Clone, Deserialize)]
pub struct SnInfo {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub session: String,
    #[serde(default)]
    pub bind: String,
    #[serde(default)]
    pub public_key: String,
    #[serde(default)]
    pub communities: u64,
    #[serde(default)]
    pub edges: u64,
    pub stats: SnStats,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct SnStats {
    pub relayed_packets: u64,
    pub relayed_bytes: u64,
    pub registrations: u64,
    pub rejected_registrations: u64,
    pub dropped_packets: u64,
    pub ctl_handshakes: u64,
    pub ctl_rejected: u64,
    pub unauthenticated: u64,
    pub ctl_cookies_sent: u64,
    pub ctl_rate_limited: u64,
}

/// One entry of supernode `get_edges`.
#[derive(Debug, Clone, Deserialize)]
pub struct SnEdge {
    #[serde(default)]
    pub community_id: String,
    pub public_key: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub addr: Option<String>,
    #[serde(default)]
    pub last_seen_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_contract_examples() {
        let info: EdgeInfo = serde_json::from_value(json!({
            "version": "0.1.0", "session": "e1", "community": "e2e", "public_key": "ab",
            "mac": "02:00:00:00:00:01", "ip": "10.200.0.1/24", "tap": "wft0",
            "bind": "0.0.0.0:7801", "registered": true,
            "supernodes": [{"addr": "203.0.113.1:7700", "registered": true}],
            "stats": {"rx_packets": 1, "tx_packets": 2, "handshakes_completed": 3,
                      "handshakes_rejected": 4, "dropped_malformed": 5, "dropped_auth": 6,
                      "dropped_replay": 7, "dropped_unknown_session": 8}
        }))
        .unwrap();
        assert_eq!(info.ipv4(), Some("10.200.0.1".parse().unwrap()));
        assert_eq!(info.stats.refused(), 4 + 5 + 6 + 7 + 8);
        let peers: Vec<Peer> = serde_json::from_value(json!([{
            "public_key": "cd", "description": "e2", "mac": null, "ip": null,
            "state": "up", "path": "direct", "addr": "203.0.113.2:7801",
            "last_seen_ms": 12, "rx_packets": 1, "tx_packets": 1, "rx_bytes": 84, "tx_bytes": 84
        }]))
        .unwrap();
        assert!(peers[0].is_direct());
        let sn: SnInfo = serde_json::from_value(json!({
            "version": "0.1.0", "session": "sn", "bind": "0.0.0.0:7700", "communities": 1,
            "edges": 2, "stats": {"relayed_packets": 0, "relayed_bytes": 0, "registrations": 2,
            "rejected_registrations": 0, "dropped_packets": 0}
        }))
        .unwrap();
        assert_eq!(sn.stats.registrations, 2);
        let _: Vec<SnEdge> = serde_json::from_value(json!([{
            "community_id": "00", "public_key": "ab", "description": "e1", "mac": "02:..",
            "ip": "10.200.0.1/24", "addr": "203.0.113.21:7801", "last_seen_ms": 5
        }]))
        .unwrap();
    }
}
