//! A tiny std-only client for the daemons' management API: JSON-RPC 2.0 in an HTTP/1.1
//! `POST /v1` on the unix socket `/run/weft/<session>/mgmt`, `Connection: close`; plus the
//! response types of the contract.

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where a session's management socket lives.
pub fn socket_path(session: &str) -> PathBuf {
    Path::new("/run/weft").join(session).join("mgmt")
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Calls `method` on the socket; returns the JSON-RPC `result` or an error carrying the
/// JSON-RPC `error`.
pub fn call(socket: &Path, method: &str, params: Value, timeout: Duration) -> Result<Value> {
    let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
    let mut req = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if !params.is_null() {
        req["params"] = params;
    }
    let body = serde_json::to_vec(&req)?;
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let head = format!(
        "POST /v1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(&body)?;
    s.flush()?;
    // read until the response is complete (or the server closes the connection)
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s
            .read(&mut buf)
            .with_context(|| format!("reading the answer to {method} from {}", socket.display()))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if response_complete(&raw) {
            break;
        }
    }
    let (status, body) = parse_http(&raw)?;
    let v: Value = serde_json::from_slice(&body).with_context(|| {
        format!(
            "{method}: HTTP {status} with a body that is not JSON: {:?}",
            String::from_utf8_lossy(&body)
        )
    })?;
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        bail!("{method}: JSON-RPC error {err}");
    }
    if !(200..300).contains(&status) {
        bail!("{method}: HTTP {status}: {v}");
    }
    v.get("result")
        .cloned()
        .ok_or_else(|| anyhow!("{method}: answer has no result: {v}"))
}

/// Calls `method` and decodes its result as `T`; errors quote the raw result.
pub fn call_as<T: DeserializeOwned>(socket: &Path, method: &str, timeout: Duration) -> Result<T> {
    let v = call(socket, method, Value::Null, timeout)?;
    serde_json::from_value(v.clone())
        .with_context(|| format!("{method}: result does not match the contract: {v}"))
}

/// Splits an HTTP/1.1 response into status code and body (Content-Length, chunked, or
/// read-to-close).
pub fn parse_http(raw: &[u8]) -> Result<(u16, Vec<u8>)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            anyhow!(
                "incomplete HTTP response: {:?}",
                String::from_utf8_lossy(raw)
            )
        })?;
    let head = std::str::from_utf8(&raw[..split]).context("HTTP head is not UTF-8")?;
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad HTTP status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        if rest.len() < n {
            bail!("HTTP body shorter ({}) than Content-Length {n}", rest.len());
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

/// Whether `raw` holds a whole response (by Content-Length or the last chunk).
fn response_complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    for l in head.split("\r\n") {
        if let Some(v) = l.strip_prefix("content-length:") {
            return v.trim().parse::<usize>().is_ok_and(|n| body.len() >= n);
        }
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            return body.ends_with(b"0\r\n\r\n");
        }
    }
    false
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("truncated chunked body"))?;
        let size_s = std::str::from_utf8(&data[..eol])?;
        let size = usize::from_str_radix(size_s.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size_s:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size..];
        if data.starts_with(b"\r\n") {
            data = &data[2..];
        }
    }
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
}

impl EdgeStats {
    /// Everything counted as refused: rejected handshakes and all drop counters.
    pub fn refused(&self) -> u64 {
        self.handshakes_rejected
            + self.dropped_malformed
            + self.dropped_auth
            + self.dropped_replay
            + self.dropped_unknown_session
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

    #[test]
    fn parses_content_length_and_chunked() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloXX";
        assert_eq!(parse_http(r).unwrap(), (200, b"hello".to_vec()));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(parse_http(r).unwrap(), (200, b"hello".to_vec()));
        let r = b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n{}";
        assert_eq!(parse_http(r).unwrap(), (404, b"{}".to_vec()));
        assert!(response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{}"
        ));
        assert!(!response_complete(b"HTTP/1.1 200 OK\r\nContent-Le"));
    }

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
