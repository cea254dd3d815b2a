//! Human-readable output: aligned tables for lists, `key: value` lines for objects.
//!
//! Works on the JSON results as they come (see docs/api.md) and tolerates absent fields: a column
//! none of the rows has is left out, a missing or null cell shows `-`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Order in which known fields are shown (the JSON maps come sorted by key); others follow,
/// alphabetically.
const FIELD_ORDER: &[&str] = &[
    // events, list entries
    "peer",
    "supernode",
    "edge",
    "addr",
    // get_info
    "role",
    "version",
    "session",
    "community",
    "community_id",
    "name",
    "description",
    "public_key",
    "mac",
    "ip",
    "tap",
    "bind",
    "registered",
    "public_addr",
    "uptime_s",
    "peers",
    "communities",
    "edges",
    "supernodes",
    // events
    "path",
    "reason",
    "moved",
    "missed",
    // get_packetstats (edge)
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_frames_direct",
    "rx_frames_relayed",
    "tx_frames_direct",
    "tx_frames_relayed",
    "rx_bytes_direct",
    "rx_bytes_relayed",
    "tx_bytes_direct",
    "tx_bytes_relayed",
    "handshakes_completed",
    "handshakes_rejected",
    "dropped_malformed",
    "dropped_auth",
    "dropped_replay",
    "dropped_unknown_session",
    "dropped_not_from_supernode",
    "dropped_unauthenticated",
    "dropped_no_route",
    "dropped_no_capacity",
    "dropped_not_allowed",
    "unconfirmed_dropped",
    "dropped_bad_mac",
    "dropped_handshake_rate",
    "dropped_bad_cookie",
    "cookie_replies_sent",
    "cookies_received",
    // get_packetstats (supernode)
    "relayed_packets",
    "relayed_bytes",
    "registrations",
    "rejected_registrations",
    "dropped_packets",
    "punches",
    "ctl_handshakes",
    "ctl_rejected",
    "unauthenticated",
    "key_queries",
    "ctl_cookies_sent",
    "ctl_rate_limited",
    // reload
    "reloaded",
    "restart_needed",
    "stats",
];

/// The entries of `map` in display order.
fn ordered(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let rank = |k: &str| {
        FIELD_ORDER
            .iter()
            .position(|f| *f == k)
            .unwrap_or(usize::MAX)
    };
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)).then_with(|| a.0.cmp(b.0)));
    entries
}

/// A table column: header, alignment, the fields it shows, and how a row becomes its cell.
struct Column {
    header: &'static str,
    right: bool,
    fields: &'static [&'static str],
    cell: fn(&Map<String, Value>) -> String,
}

const fn col(
    header: &'static str,
    right: bool,
    fields: &'static [&'static str],
    cell: fn(&Map<String, Value>) -> String,
) -> Column {
    Column {
        header,
        right,
        fields,
        cell,
    }
}

fn c_community(r: &Map<String, Value>) -> String {
    text(r.get("community"))
}
fn c_description(r: &Map<String, Value>) -> String {
    match r.get("description").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => d.to_owned(),
        _ => match r.get("public_key").and_then(Value::as_str) {
            Some(k) if k.chars().count() > 12 => {
                format!("{}…", k.chars().take(12).collect::<String>())
            }
            Some(k) if !k.is_empty() => k.to_owned(),
            _ => "-".to_owned(),
        },
    }
}
fn c_ip(r: &Map<String, Value>) -> String {
    text(r.get("ip"))
}
fn c_mac(r: &Map<String, Value>) -> String {
    text(r.get("mac"))
}
fn c_active(r: &Map<String, Value>) -> String {
    if r.get("active").and_then(Value::as_bool) == Some(true) {
        "yes".to_owned()
    } else {
        String::new()
    }
}
fn c_state(r: &Map<String, Value>) -> String {
    text(r.get("state"))
}
fn c_path(r: &Map<String, Value>) -> String {
    text(r.get("path"))
}
fn c_address(r: &Map<String, Value>) -> String {
    match (r.get("addr"), r.get("relay").and_then(Value::as_str)) {
        (Some(a), _) if !a.is_null() => text(Some(a)),
        (_, Some(relay)) => format!("via {relay}"),
        _ => "-".to_owned(),
    }
}
fn c_rtt(r: &Map<String, Value>) -> String {
    r.get("rtt_ms")
        .and_then(Value::as_f64)
        .map_or("-".to_owned(), rtt)
}
fn c_last_seen(r: &Map<String, Value>) -> String {
    r.get("last_seen_ms")
        .and_then(Value::as_f64)
        .map_or("-".to_owned(), |ms| age(ms as u64))
}
fn c_rx(r: &Map<String, Value>) -> String {
    r.get("rx_bytes")
        .and_then(Value::as_u64)
        .map_or("-".to_owned(), size)
}
fn c_tx(r: &Map<String, Value>) -> String {
    r.get("tx_bytes")
        .and_then(Value::as_u64)
        .map_or("-".to_owned(), size)
}
fn c_name(r: &Map<String, Value>) -> String {
    text(r.get("name"))
}
fn c_id(r: &Map<String, Value>) -> String {
    text(r.get("community_id"))
}
fn c_edges(r: &Map<String, Value>) -> String {
    text(r.get("edges"))
}

const DESCRIPTION: Column = col(
    "DESCRIPTION",
    false,
    &["description", "public_key"],
    c_description,
);
const COMMUNITY: Column = col("COMMUNITY", false, &["community"], c_community);
const IP: Column = col("IP", false, &["ip"], c_ip);
const MAC: Column = col("MAC", false, &["mac"], c_mac);
const STATE: Column = col("STATE", false, &["state"], c_state);
const PATH: Column = col("PATH", false, &["path"], c_path);
const ADDRESS: Column = col("ADDRESS", false, &["addr", "relay"], c_address);
const RTT: Column = col("RTT", true, &["rtt_ms"], c_rtt);
const LAST_SEEN: Column = col("LAST SEEN", false, &["last_seen_ms"], c_last_seen);
const RX: Column = col("RX", true, &["rx_bytes"], c_rx);
const TX: Column = col("TX", true, &["tx_bytes"], c_tx);

/// `get_edges`: an edge's peers, or the edges registered at a supernode.
pub(crate) fn edges(result: &Value, role: Option<&str>) -> String {
    let columns: &[Column] = match role {
        Some("edge") => &[
            DESCRIPTION,
            IP,
            MAC,
            STATE,
            PATH,
            ADDRESS,
            RTT,
            LAST_SEEN,
            RX,
            TX,
        ],
        Some("supernode") => &[COMMUNITY, DESCRIPTION, IP, MAC, ADDRESS, LAST_SEEN],
        _ => &[
            COMMUNITY,
            DESCRIPTION,
            IP,
            MAC,
            STATE,
            PATH,
            ADDRESS,
            RTT,
            LAST_SEEN,
            RX,
            TX,
        ],
    };
    let empty = match role {
        Some("supernode") => "no edges registered",
        _ => "no peers",
    };
    list(result, columns, empty)
}

/// A supernode's state, with the reason when it refused us or presents another key than the pinned one.
fn c_sn_state(r: &Map<String, Value>) -> String {
    if let Some(other) = r.get("key_mismatch").and_then(Value::as_str) {
        return format!(
            "{} (presents key {other}, not the pinned one: see the log)",
            text(r.get("state"))
        );
    }
    match r.get("refused_explanation").and_then(Value::as_str) {
        Some(why) => format!("{} ({why})", text(r.get("state"))),
        None => text(r.get("state")),
    }
}

/// `get_supernodes`.
pub(crate) fn supernodes(result: &Value) -> String {
    let columns = [
        col("ADDRESS", false, &["addr"], c_address),
        col("STATE", false, &["state"], c_sn_state),
        col("IN USE", false, &["active"], c_active),
        RTT,
        LAST_SEEN,
        col("EDGES", true, &["edges"], c_edges),
        col("KEY", false, &["key"], |r| text(r.get("key"))),
    ];
    list(result, &columns, "no supernodes")
}

/// `get_communities`.
pub(crate) fn communities(result: &Value) -> String {
    let columns = [
        col("COMMUNITY", false, &["name"], c_name),
        col("ID", false, &["community_id"], c_id),
        col("EDGES", true, &["edges"], c_edges),
    ];
    list(result, &columns, "no communities")
}

/// `stop`.
pub(crate) fn stop(result: &Value) -> String {
    if result.get("stopping").and_then(Value::as_bool) == Some(true) {
        "the daemon is stopping".to_owned()
    } else {
        object(result)
    }
}

/// A list result as a table (or, if it is not a list of objects, as anything else).
fn list(result: &Value, columns: &[Column], empty: &str) -> String {
    let Some(items) = result.as_array() else {
        return object(result);
    };
    if items.is_empty() {
        return empty.to_owned();
    }
    let rows: Vec<&Map<String, Value>> = items.iter().filter_map(Value::as_object).collect();
    if rows.len() != items.len() {
        return object(result);
    }
    let shown: Vec<&Column> = columns
        .iter()
        .filter(|c| {
            rows.iter()
                .any(|r| c.fields.iter().any(|f| r.contains_key(*f)))
        })
        .collect();
    let mut table: Vec<Vec<String>> = vec![shown.iter().map(|c| c.header.to_owned()).collect()];
    for row in &rows {
        table.push(shown.iter().map(|c| (c.cell)(row)).collect());
    }
    let right: Vec<bool> = shown.iter().map(|c| c.right).collect();
    format_table(&table, &right)
}

/// Align `table` (first row: headers) in columns two spaces apart.
fn format_table(table: &[Vec<String>], right: &[bool]) -> String {
    let width = |s: &str| s.chars().count();
    let ncols = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..ncols)
        .map(|i| table.iter().map(|r| width(&r[i])).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(widths[i] - width(cell));
            if right[i] {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i + 1 < ncols {
                    line.push_str(&pad);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// An object as aligned `key: value` lines; nested objects indented below their key.
pub(crate) fn object(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) => write_object(&mut out, map, 0),
        Value::Array(items) if items.is_empty() => out.push_str("(none)\n"),
        Value::Array(items) => {
            for item in items {
                out.push_str(&inline(None, item));
                out.push('\n');
            }
        }
        other => {
            out.push_str(&scalar(None, other));
            out.push('\n');
        }
    }
    out
}

fn write_object(out: &mut String, map: &Map<String, Value>, indent: usize) {
    let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    let pad = " ".repeat(indent);
    for (key, value) in ordered(map) {
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push_str(&format!("{pad}{key}:\n"));
                write_object(out, inner, indent + 2);
            }
            Value::Array(items) if items.iter().any(Value::is_object) => {
                out.push_str(&format!("{pad}{key}:\n"));
                for item in items {
                    out.push_str(&format!("{pad}  {}\n", inline(None, item)));
                }
            }
            _ => {
                let key_pad = " ".repeat(width - key.chars().count());
                out.push_str(&format!(
                    "{pad}{key}:{key_pad} {}\n",
                    scalar(Some(key), value)
                ));
            }
        }
    }
}

/// A value on one line: objects as `key=value` pairs.
fn inline(key: Option<&str>, value: &Value) -> String {
    match value {
        Value::Object(map) => ordered(map)
            .into_iter()
            .map(|(k, v)| format!("{k}={}", inline(Some(k), v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => {
            let s = scalar(key, other);
            if s.contains(char::is_whitespace) && !matches!(other, Value::Number(_)) {
                Value::String(s).to_string()
            } else {
                s
            }
        }
    }
}

/// A value for a human, formatted by what its key says it is.
fn scalar(key: Option<&str>, value: &Value) -> String {
    let key = key.unwrap_or("");
    match value {
        Value::Null => "-".to_owned(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            if key.contains("bytes") {
                if let Some(b) = n.as_u64() {
                    return if b >= 1000 {
                        format!("{} ({b})", size(b))
                    } else {
                        size(b)
                    };
                }
            }
            if key == "uptime_s" {
                if let Some(s) = n.as_u64() {
                    return duration(s);
                }
            }
            if key == "rtt_ms" {
                if let Some(ms) = n.as_f64() {
                    return rtt(ms);
                }
            }
            if key == "last_seen_ms" {
                if let Some(ms) = n.as_u64() {
                    return age(ms);
                }
            }
            n.to_string()
        }
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items
            .iter()
            .map(|v| inline(Some(key), v))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(_) => inline(Some(key), value),
    }
}

/// A cell's text: strings as they are, null or absent as `-`.
fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) if s.is_empty() => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Bytes in SI units: `512 B`, `1.2 kB`, `310 kB`, `4.0 MB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value < 9.95 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// A round-trip time in milliseconds: `0.6 ms`, `23 ms`.
pub(crate) fn rtt(ms: f64) -> String {
    if ms < 9.95 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// How long ago, from milliseconds: `now`, `2 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
pub(crate) fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => "now".to_owned(),
        1..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

/// A duration in seconds, two largest units: `42 s`, `5 min 3 s`, `2 h 5 min`, `3 d 2 h`.
pub(crate) fn duration(s: u64) -> String {
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    let (major, minor) = if d > 0 {
        ((d, "d"), (h, "h"))
    } else if h > 0 {
        ((h, "h"), (m, "min"))
    } else if m > 0 {
        ((m, "min"), (sec, "s"))
    } else {
        return format!("{sec} s");
    };
    if minor.0 == 0 {
        format!("{} {}", major.0, major.1)
    } else {
        format!("{} {} {} {}", major.0, major.1, minor.0, minor.1)
    }
}

/// One event for `watch`: `HH:MM:SS  kind  key=value …` (local time of the event).
pub(crate) fn event(kind: &str, data: &str) -> String {
    let parsed: Option<Map<String, Value>> = serde_json::from_str(data).ok();
    let time_ms = parsed
        .as_ref()
        .and_then(|m| m.get("time_ms"))
        .and_then(Value::as_u64)
        .unwrap_or_else(now_ms);
    let details = match &parsed {
        Some(map) => ordered(map)
            .into_iter()
            .filter(|(k, _)| k.as_str() != "time_ms")
            .map(|(k, v)| format!("{k}={}", inline(Some(k), v)))
            .collect::<Vec<_>>()
            .join(" "),
        None => data.to_owned(),
    };
    format!("{}  {kind:<20} {details}", clock(time_ms))
        .trim_end()
        .to_owned()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `HH:MM:SS` in local time (`TZ`, else the system's zone, as libc's `localtime` would choose).
fn clock(unix_ms: u64) -> String {
    let local = i64::try_from(unix_ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_zoned(jiff::tz::TimeZone::system()));
    match local {
        Some(t) => format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
        None => {
            let s = unix_ms / 1000 % 86400;
            format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1200), "1.2 kB");
        assert_eq!(size(310_000), "310 kB");
        assert_eq!(size(999_999), "1.0 MB");
        assert_eq!(size(1_234_567), "1.2 MB");
        assert_eq!(rtt(0.6), "0.6 ms");
        assert_eq!(rtt(23.4), "23 ms");
        assert_eq!(age(999), "now");
        assert_eq!(age(2000), "2 s ago");
        assert_eq!(age(600_000), "10 min ago");
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(3723), "1 h 2 min");
        assert_eq!(duration(90_000), "1 d 1 h");
        assert_eq!(duration(60), "1 min");
    }

    #[test]
    fn edge_table() {
        let rows = json!([
            {"public_key": "AAAABBBBCCCCDDDD", "description": "laptop", "mac": "86:25:62:76:d5:6e",
             "ip": "10.0.0.2", "state": "up", "path": "direct", "addr": "203.0.113.22:45944",
             "relay": null, "rtt_ms": 0.6, "last_seen_ms": 2000, "rx_bytes": 1_200_000, "tx_bytes": 310_000},
            {"public_key": "EEEEFFFFGGGGHHHH", "description": "", "mac": null, "ip": null,
             "state": "connecting", "path": "relayed", "addr": null, "relay": "198.51.100.1:7654",
             "rtt_ms": null, "last_seen_ms": null, "rx_bytes": 48_000, "tx_bytes": 5}
        ]);
        let t = edges(&rows, Some("edge"));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("DESCRIPTION    IP        MAC"), "{t}");
        assert!(lines[0].ends_with("LAST SEEN      RX      TX"), "{t}");
        assert!(
            lines[1].contains("laptop")
                && lines[1].contains("1.2 MB")
                && lines[1].contains("0.6 ms"),
            "{t}"
        );
        assert!(
            lines[2].contains("EEEEFFFFGGGG…") && lines[2].contains("via 198.51.100.1:7654"),
            "{t}"
        );
        // Columns line up: every line has its IP where the header has it.
        let at = lines[0].find("  IP ").unwrap() + 2;
        assert_eq!(&lines[1][at..at + 8], "10.0.0.2");

        // A supernode's edges: community column, no state/path/rtt/traffic.
        let rows = json!([{"community": "home", "community_id": "ab12", "public_key": "K",
            "description": "nas", "mac": "aa:bb:cc:dd:ee:ff", "ip": null, "addr": "192.0.2.1:1",
            "local_addrs": [], "last_seen_ms": 500}]);
        let t = edges(&rows, Some("supernode"));
        assert!(t.starts_with("COMMUNITY  DESCRIPTION  IP  MAC"), "{t}");
        assert!(!t.contains("STATE") && !t.contains("RX"), "{t}");
        // Unknown role: columns by presence.
        let t = edges(&json!([{"description": "x", "state": "up"}]), None);
        assert_eq!(t, "DESCRIPTION  STATE\nx            up\n");
        assert_eq!(edges(&json!([]), Some("edge")), "no peers");
    }

    #[test]
    fn objects() {
        let info = json!({"role": "edge", "ip": null, "registered": true, "uptime_s": 75,
            "supernodes": [{"addr": "198.51.100.1:7654", "registered": true}],
            "stats": {"rx_bytes": 2_500_000, "dropped_auth": 0}, "tags": ["a", "b"]});
        let t = object(&info);
        assert!(t.contains("role:       edge\n"), "{t}");
        assert!(t.contains("ip:         -\n"), "{t}");
        assert!(t.contains("registered: yes\n"), "{t}");
        assert!(t.contains("uptime_s:   1 min 15 s\n"), "{t}");
        assert!(
            t.contains("supernodes:\n  addr=198.51.100.1:7654 registered=yes\n"),
            "{t}"
        );
        assert!(
            t.contains("stats:\n  rx_bytes:     2.5 MB (2500000)\n  dropped_auth: 0\n"),
            "{t}"
        );
        assert!(t.starts_with("role:"), "{t}");
        assert!(t.contains("tags:       a, b\n"), "{t}");
    }

    #[test]
    fn events() {
        let line = event(
            "peer_up",
            r#"{"peer":"K","description":"my laptop","path":"direct","time_ms":0}"#,
        );
        assert!(line.contains("peer_up"), "{line}");
        assert!(
            line.ends_with(r#"peer=K description="my laptop" path=direct"#),
            "{line}"
        );
        let line = event("lagged", r#"{"missed":3}"#);
        assert!(line.ends_with("lagged               missed=3"), "{line}");
        assert_eq!(line.as_bytes()[2], b':');
    }

    #[test]
    fn refused_supernode_says_why() {
        let t = supernodes(&json!([
            {"addr": "198.51.100.1:7700", "state": "refused", "rtt_ms": null, "last_seen_ms": null,
             "refused_reason": "KeyNotAllowed",
             "refused_explanation": "this edge's key is not on the community's list of allowed keys"},
            {"addr": "198.51.100.2:7700", "state": "registered", "rtt_ms": 1.0, "last_seen_ms": 10,
             "refused_reason": null, "refused_explanation": null}
        ]));
        assert!(
            t.contains("refused (this edge's key is not on the community's list of allowed keys)"),
            "{t}"
        );
        assert!(t.contains("  registered  "), "{t}");
    }
}
