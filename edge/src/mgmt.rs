//! The edge's management API (methods: docs/api.md), and its metrics (the control methods
//! `set_verbose`, `reload` and `stop` are `weft_daemon::control`); served by `weft-mgmt` on the unix socket and optional loopback TCP.
//!
//! Status methods ask the event loop for one snapshot over a channel, so the state machine stays owned by
//! one task and a slow client never holds it.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use weft_daemon::metrics::{Kind, MetricsText};
use weft_daemon::Page;
use weft_mgmt::jsonrpsee::types::ErrorObjectOwned;
use weft_mgmt::jsonrpsee::RpcModule;
use weft_proto::edge::{Path, PeerState, PeerStatus};

use crate::datapath::{Query, Remote, Snapshot};
use crate::events::ms_since;

/// What the management methods need besides the loop's snapshots.
pub struct Context {
    pub session: String,
    pub community: String,
    pub community_id: String,
    pub description: String,
    pub tap: String,
    pub bind: String,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub queries: Remote,
}

fn internal(msg: impl ToString) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, msg.to_string(), None::<()>)
}

impl Context {
    async fn snapshot(&self) -> Result<Snapshot, ErrorObjectOwned> {
        self.queries
            .request(Query::Snapshot)
            .await
            .map_err(|_| internal("the edge is shutting down"))
    }

    fn uptime_s(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

fn path_parts(p: &Path) -> (&'static str, Option<String>, Option<String>) {
    match p {
        Path::Direct(a) => ("direct", Some(a.to_string()), None),
        Path::Relayed(sn) => ("relayed", None, Some(sn.to_string())),
        Path::None => ("none", None, None),
    }
}

fn peer_json(now: Instant, p: &PeerStatus) -> Value {
    let (path, addr, relay) = path_parts(&p.path);
    json!({
        "public_key": p.public_key.to_string(),
        "description": p.description,
        "mac": p.mac.map(|m| m.to_string()),
        "learned_macs": p.learned_macs.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "ip": p.ip.map(|n| n.to_string()),
        "state": match p.state { PeerState::Up => "up", PeerState::Connecting => "connecting" },
        "path": path,
        "addr": addr,
        "relay": relay,
        "why_not_direct": p.why_not_direct,
        "rtt_ms": p.rtt.map(|d| d.as_secs_f64() * 1000.0),
        "last_seen_ms": ms_since(now, p.last_seen),
        "rx_packets": p.counters.rx_packets,
        "tx_packets": p.counters.tx_packets,
        "rx_bytes": p.counters.rx_bytes,
        "tx_bytes": p.counters.tx_bytes,
    })
}

fn packetstats(s: &Snapshot) -> Value {
    let st = &s.stats;
    json!({
        "rx_packets": st.rx_packets,
        "tx_packets": st.tx_packets,
        "rx_bytes": st.rx_bytes,
        "tx_bytes": st.tx_bytes,
        "rx_frames_direct": st.rx_direct_frames,
        "rx_frames_relayed": st.rx_relayed_frames,
        "tx_frames_direct": st.tx_direct_frames,
        "tx_frames_relayed": st.tx_relayed_frames,
        "rx_bytes_direct": st.rx_direct_bytes,
        "rx_bytes_relayed": st.rx_relayed_bytes,
        "tx_bytes_direct": st.tx_direct_bytes,
        "tx_bytes_relayed": st.tx_relayed_bytes,
        "handshakes_completed": st.handshakes_completed,
        "handshakes_rejected": st.handshakes_rejected,
        "dropped_malformed": st.dropped_malformed,
        "dropped_auth": st.dropped_auth,
        "dropped_replay": st.dropped_replay,
        "dropped_unknown_session": st.dropped_unknown_session,
        "dropped_not_from_supernode": st.dropped_not_from_supernode,
        "dropped_unauthenticated": st.dropped_unauthenticated,
        "dropped_no_route": st.dropped_no_route,
        "dropped_no_capacity": st.dropped_no_capacity,
        "dropped_not_allowed": st.dropped_not_allowed,
        "unconfirmed_dropped": st.unconfirmed_dropped,
        "dropped_bad_mac": st.dropped_bad_mac,
        "dropped_handshake_rate": st.dropped_handshake_rate,
        "dropped_bad_cookie": st.dropped_bad_cookie,
        "cookie_replies_sent": st.cookie_replies_sent,
        "cookies_received": st.cookies_received,
    })
}

fn unix_s_of(ctx: &Context, now: Instant, t: Option<Instant>) -> Option<u64> {
    // Instants have no calendar: place them relative to the wall clock at start.
    t.map(|t| {
        (ctx.started_unix_ms + t.saturating_duration_since(ctx.started).as_millis() as u64) / 1000
    })
    .filter(|_| now >= ctx.started)
}

/// Renders `/metrics`.
pub fn metrics(ctx: &Context, s: &Snapshot) -> String {
    let st = &s.stats;
    let mut m = MetricsText::default();
    m.process("edge", ctx.uptime_s()).single(
        "weft_registered",
        Kind::Gauge,
        "1 when at least one supernode holds a current registration.",
        s.registered as u8,
    );
    m.family(
        "weft_datagrams_total",
        Kind::Counter,
        "UDP datagrams by direction.",
    )
    .sample(
        "weft_datagrams_total",
        &[("direction", "rx")],
        st.rx_packets,
    )
    .sample(
        "weft_datagrams_total",
        &[("direction", "tx")],
        st.tx_packets,
    );
    m.family(
        "weft_datagram_bytes_total",
        Kind::Counter,
        "UDP payload bytes by direction.",
    )
    .sample(
        "weft_datagram_bytes_total",
        &[("direction", "rx")],
        st.rx_bytes,
    )
    .sample(
        "weft_datagram_bytes_total",
        &[("direction", "tx")],
        st.tx_bytes,
    );
    m.family(
        "weft_frames_total",
        Kind::Counter,
        "Ethernet frames carried, by direction and path.",
    )
    .sample(
        "weft_frames_total",
        &[("direction", "rx"), ("path", "direct")],
        st.rx_direct_frames,
    )
    .sample(
        "weft_frames_total",
        &[("direction", "rx"), ("path", "relayed")],
        st.rx_relayed_frames,
    )
    .sample(
        "weft_frames_total",
        &[("direction", "tx"), ("path", "direct")],
        st.tx_direct_frames,
    )
    .sample(
        "weft_frames_total",
        &[("direction", "tx"), ("path", "relayed")],
        st.tx_relayed_frames,
    );
    m.family(
        "weft_frame_bytes_total",
        Kind::Counter,
        "Ethernet frame bytes carried, by direction and path.",
    )
    .sample(
        "weft_frame_bytes_total",
        &[("direction", "rx"), ("path", "direct")],
        st.rx_direct_bytes,
    )
    .sample(
        "weft_frame_bytes_total",
        &[("direction", "rx"), ("path", "relayed")],
        st.rx_relayed_bytes,
    )
    .sample(
        "weft_frame_bytes_total",
        &[("direction", "tx"), ("path", "direct")],
        st.tx_direct_bytes,
    )
    .sample(
        "weft_frame_bytes_total",
        &[("direction", "tx"), ("path", "relayed")],
        st.tx_relayed_bytes,
    );
    m.family(
        "weft_handshakes_total",
        Kind::Counter,
        "Edge-to-edge handshakes by outcome.",
    )
    .sample(
        "weft_handshakes_total",
        &[("outcome", "completed")],
        st.handshakes_completed,
    )
    .sample(
        "weft_handshakes_total",
        &[("outcome", "rejected")],
        st.handshakes_rejected,
    )
    .sample(
        "weft_handshakes_total",
        &[("outcome", "cookie_sent")],
        st.cookie_replies_sent,
    )
    .sample(
        "weft_handshakes_total",
        &[("outcome", "cookie_received")],
        st.cookies_received,
    )
    .sample(
        "weft_handshakes_total",
        &[("outcome", "unconfirmed")],
        st.unconfirmed_dropped,
    );
    m.family(
        "weft_dropped_packets_total",
        Kind::Counter,
        "Datagrams or frames dropped, by reason.",
    );
    for (reason, v) in [
        ("malformed", st.dropped_malformed),
        ("auth", st.dropped_auth),
        ("replay", st.dropped_replay),
        ("unknown_session", st.dropped_unknown_session),
        ("not_from_supernode", st.dropped_not_from_supernode),
        ("unauthenticated", st.dropped_unauthenticated),
        ("no_route", st.dropped_no_route),
        ("no_capacity", st.dropped_no_capacity),
        ("not_allowed", st.dropped_not_allowed),
        ("bad_mac", st.dropped_bad_mac),
        ("handshake_rate", st.dropped_handshake_rate),
        ("bad_cookie", st.dropped_bad_cookie),
    ] {
        m.sample("weft_dropped_packets_total", &[("reason", reason)], v);
    }
    let count = |f: &dyn Fn(&PeerStatus) -> bool| s.peers.iter().filter(|p| f(p)).count();
    m.family("weft_peers", Kind::Gauge, "Known peers by state and path.");
    for (state, path) in [("up", "direct"), ("up", "relayed"), ("connecting", "none")] {
        let n = count(&|p: &PeerStatus| {
            let st = if p.state == PeerState::Up {
                "up"
            } else {
                "connecting"
            };
            let pa = match (p.state, p.path) {
                (PeerState::Up, Path::Direct(_)) => "direct",
                (PeerState::Up, _) => "relayed",
                _ => "none",
            };
            st == state && pa == path
        });
        m.sample("weft_peers", &[("state", state), ("path", path)], n);
    }
    m.family(
        "weft_supernode_registered",
        Kind::Gauge,
        "1 while the supernode holds a current registration.",
    );
    for sn in &s.supernodes {
        m.sample(
            "weft_supernode_registered",
            &[("supernode", &sn.addr.to_string())],
            sn.registered as u8,
        );
    }
    m.family(
        "weft_supernode_rtt_seconds",
        Kind::Gauge,
        "Round-trip time of the last acknowledged registration.",
    );
    for sn in &s.supernodes {
        if let Some(rtt) = sn.rtt {
            m.sample(
                "weft_supernode_rtt_seconds",
                &[("supernode", &sn.addr.to_string())],
                rtt.as_secs_f64(),
            );
        }
    }
    m.finish()
}

/// The RPC module with every method of docs/api.md for an edge.
pub fn module(ctx: Arc<Context>) -> anyhow::Result<RpcModule<Arc<Context>>> {
    let mut m = RpcModule::new(ctx);
    m.register_async_method("get_info", |_, ctx, _| async move {
        let s = ctx.snapshot().await?;
        let st = packetstats(&s);
        Ok::<Value, ErrorObjectOwned>(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "role": "edge",
            "session": ctx.session,
            "community": ctx.community,
            "description": ctx.description,
            "public_key": s.public_key,
            "mac": s.mac,
            "ip": s.ip.map(|n| n.to_string()),
            "tap": ctx.tap,
            "bind": ctx.bind,
            "registered": s.registered,
            "public_addr": s.observed.map(|a| a.to_string()),
            "uptime_s": ctx.uptime_s(),
            "peers": s.peers.len(),
            "supernodes": s.supernodes.iter().map(|sn| json!({
                "addr": sn.addr.to_string(),
                "registered": sn.registered,
            })).collect::<Vec<_>>(),
            "stats": st,
        }))
    })?;
    m.register_async_method("get_edges", |params, ctx, _| async move {
        let page = Page::from_params(&params)?;
        let s = ctx.snapshot().await?;
        let list: Vec<Value> = page
            .apply(&s.peers)
            .iter()
            .map(|p| peer_json(s.now, p))
            .collect();
        Ok::<Value, ErrorObjectOwned>(Value::Array(list))
    })?;
    m.register_async_method("get_supernodes", |params, ctx, _| async move {
        let page = Page::from_params(&params)?;
        let s = ctx.snapshot().await?;
        let list: Vec<Value> = page
            .apply(&s.supernodes)
            .iter()
            .map(|sn| {
                json!({
                    "addr": sn.addr.to_string(),
                    "state": if sn.registered { "registered" } else if sn.refused { "refused" } else { "connecting" },
                    "rtt_ms": sn.rtt.map(|d| d.as_secs_f64() * 1000.0),
                    "last_seen_ms": ms_since(s.now, sn.last_ack),
                    "active": sn.active,
                    "refused_reason": sn.refusal.filter(|_| sn.refused).map(|r| format!("{r:?}")),
                    "refused_explanation": sn.refusal.filter(|_| sn.refused).map(|r| r.explain()),
                    "key": sn.key.map(|k| k.to_string()),
                    "key_mismatch": sn.key_mismatch.map(|k| k.to_string()),
                    "session": sn.session,
                })
            })
            .collect();
        Ok::<Value, ErrorObjectOwned>(Value::Array(list))
    })?;
    m.register_async_method("get_communities", |_, ctx, _| async move {
        let s = ctx.snapshot().await?;
        Ok::<Value, ErrorObjectOwned>(json!([{
            "community_id": ctx.community_id,
            "name": ctx.community,
            "edges": s.peers.len() + 1,
        }]))
    })?;
    m.register_async_method("get_packetstats", |_, ctx, _| async move {
        let s = ctx.snapshot().await?;
        Ok::<Value, ErrorObjectOwned>(packetstats(&s))
    })?;
    m.register_async_method("get_timestamps", |_, ctx, _| async move {
        let s = ctx.snapshot().await?;
        let last_reg = s.supernodes.iter().filter_map(|sn| sn.last_ack).max();
        Ok::<Value, ErrorObjectOwned>(json!({
            "started": ctx.started_unix_ms / 1000,
            "uptime_s": ctx.uptime_s(),
            "last_registration": unix_s_of(&ctx, s.now, last_reg),
            "last_peer_rx": unix_s_of(&ctx, s.now, s.last_peer_rx),
        }))
    })?;
    Ok(m)
}

/// `/metrics`, as the management server's callback.
pub async fn render_metrics(ctx: Arc<Context>) -> String {
    match ctx.snapshot().await {
        Ok(s) => metrics(&ctx, &s),
        Err(_) => String::new(),
    }
}
