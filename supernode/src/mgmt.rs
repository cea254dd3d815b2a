//! The supernode's management API (methods: docs/api.md), and its metrics (the control methods
//! `set_verbose`, `reload` and `stop` are `weft_daemon::control`).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use weft_daemon::metrics::{Kind, MetricsText};
use weft_daemon::Page;
use weft_mgmt::jsonrpsee::types::ErrorObjectOwned;
use weft_mgmt::jsonrpsee::RpcModule;
use weft_proto::supernode::{EdgeRecord, Supernode, SupernodeStats};

use crate::Query;

/// What the loop hands the management server.
pub struct Snapshot {
    now: Instant,
    stats: SupernodeStats,
    /// (id, name if listed, edge count)
    communities: Vec<(String, Option<String>, usize)>,
    edges: Vec<(EdgeRecord, String)>,
    last_registration: Option<Instant>,
    peers: Vec<weft_proto::supernode::FedPeerStatus>,
}

impl Snapshot {
    /// A copy of what the status methods report.
    pub fn of(sn: &Supernode) -> Snapshot {
        let label = |id: &weft_proto::keys::CommunityId| {
            sn.community_name(id)
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string())
        };
        Snapshot {
            now: Instant::now(),
            stats: sn.stats(),
            peers: sn.federation_peers(),
            communities: sn
                .communities()
                .into_iter()
                .map(|(id, n)| {
                    (
                        id.to_string(),
                        sn.community_name(&id).map(str::to_string),
                        n,
                    )
                })
                .collect(),
            edges: sn
                .edges()
                .into_iter()
                .map(|e| {
                    let l = label(&e.community);
                    (e, l)
                })
                .collect(),
            last_registration: sn.last_registration(),
        }
    }
}

/// What the management methods need besides the loop's snapshots.
pub struct Context {
    pub session: String,
    pub bind: String,
    /// The supernode's public key (what edges pin).
    pub public_key: String,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub queries: crate::datapath::Remote,
}

fn internal(msg: impl ToString) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, msg.to_string(), None::<()>)
}

impl Context {
    async fn snapshot(&self) -> Result<Snapshot, ErrorObjectOwned> {
        self.queries
            .request(Query::Snapshot)
            .await
            .map_err(|_| internal("the supernode is shutting down"))
    }

    fn uptime_s(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

fn stats_json(st: &SupernodeStats) -> Value {
    json!({
        "relayed_packets": st.relayed_packets,
        "relayed_bytes": st.relayed_bytes,
        "registrations": st.registrations,
        "rejected_registrations": st.rejected_registrations,
        "dropped_packets": st.dropped_packets,
        "punches": st.punches,
        "pings": st.pings,
        "federation_sent": st.federation_sent,
        "federation_received": st.federation_received,
        "federation_rejected": st.federation_rejected,
        "federation_unauthenticated": st.federation_unauthenticated,
        "federation_handshakes": st.federation_handshakes,
        "revoked": st.revoked,
        "ctl_handshakes": st.ctl_handshakes,
        "ctl_rejected": st.ctl_rejected,
        "unauthenticated": st.unauthenticated,
        "key_queries": st.key_queries,
        "ctl_cookies_sent": st.ctl_cookies_sent,
        "ctl_rate_limited": st.ctl_rate_limited,
    })
}

/// Renders `/metrics`.
pub fn metrics(ctx: &Context, s: &Snapshot) -> String {
    let st = &s.stats;
    let mut m = MetricsText::default();
    m.process("supernode", ctx.uptime_s())
        .single(
            "weft_registrations_total",
            Kind::Counter,
            "Registrations accepted, refreshes included.",
            st.registrations,
        )
        .single(
            "weft_registrations_rejected_total",
            Kind::Counter,
            "Registrations refused.",
            st.rejected_registrations,
        )
        .single(
            "weft_relayed_packets_total",
            Kind::Counter,
            "Edge-to-edge packets relayed.",
            st.relayed_packets,
        )
        .single(
            "weft_relayed_bytes_total",
            Kind::Counter,
            "Bytes of edge-to-edge packets relayed.",
            st.relayed_bytes,
        )
        .single(
            "weft_punches_total",
            Kind::Counter,
            "Hole punches coordinated.",
            st.punches,
        );
    m.family(
        "weft_federation_messages_total",
        Kind::Counter,
        "Federation packets: sent and received (sealed in a peer's session), rejected (a handshake not from a configured peer or proving another key, a forged or replayed one, a sealed packet that did not open, a relayed packet from an address without a session), unauthenticated (a federation message in the clear), handshakes (sessions made).",
    );
    for (outcome, n) in [
        ("sent", st.federation_sent),
        ("received", st.federation_received),
        ("rejected", st.federation_rejected),
        ("unauthenticated", st.federation_unauthenticated),
        ("handshakes", st.federation_handshakes),
    ] {
        m.sample("weft_federation_messages_total", &[("outcome", outcome)], n);
    }
    m.family(
        "weft_control_channel_total",
        Kind::Counter,
        "Control channel: handshakes answered, key queries answered, packets refused (bad MAC, failed or replayed handshake, no session, did not open).",
    );
    for (outcome, n) in [
        ("handshake", st.ctl_handshakes),
        ("key_query", st.key_queries),
        ("rejected", st.ctl_rejected),
        ("cookie_sent", st.ctl_cookies_sent),
        ("rate_limited", st.ctl_rate_limited),
    ] {
        m.sample("weft_control_channel_total", &[("outcome", outcome)], n);
    }
    m.family(
        "weft_dropped_packets_total",
        Kind::Counter,
        "Datagrams dropped, by reason.",
    )
    .sample(
        "weft_dropped_packets_total",
        &[("reason", "invalid")],
        st.dropped_packets,
    )
    .sample(
        "weft_dropped_packets_total",
        &[("reason", "unauthenticated")],
        st.unauthenticated,
    )
    .single(
        "weft_communities",
        Kind::Gauge,
        "Communities with at least one edge.",
        s.communities.len(),
    );
    m.family("weft_edges", Kind::Gauge, "Registered edges, by community.");
    for (id, name, n) in &s.communities {
        m.sample(
            "weft_edges",
            &[("community", name.as_deref().unwrap_or(id))],
            n,
        );
    }
    m.finish()
}

/// The RPC module with every method of docs/api.md for a supernode.
pub fn module(ctx: Arc<Context>) -> anyhow::Result<RpcModule<Arc<Context>>> {
    let mut m = RpcModule::new(ctx);
    m.register_async_method("get_info", |_, ctx, _| async move {
        let s = ctx.snapshot().await?;
        Ok::<Value, ErrorObjectOwned>(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "role": "supernode",
            "session": ctx.session,
            "bind": ctx.bind,
            "public_key": ctx.public_key,
            "uptime_s": ctx.uptime_s(),
            "communities": s.communities.len(),
            "edges": s.edges.len(),
            "stats": stats_json(&s.stats),
        }))
    })?;
    m.register_async_method("get_edges", |params, ctx, _| async move {
        let page = Page::from_params(&params)?;
        let s = ctx.snapshot().await?;
        let list: Vec<Value> = page
            .apply(&s.edges)
            .iter()
            .map(|(e, community)| {
                json!({
                    "community": community,
                    "community_id": e.community.to_string(),
                    "public_key": e.key.to_string(),
                    "description": e.description,
                    "mac": e.mac.to_string(),
                    "ip": e.ip.map(|n| n.to_string()),
                    "addr": e.addr.to_string(),
                    "local_addrs": e.local_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "last_seen_ms": s.now.saturating_duration_since(e.last_seen).as_millis() as u64,
                })
            })
            .collect();
        Ok::<Value, ErrorObjectOwned>(Value::Array(list))
    })?;
    m.register_async_method("get_communities", |params, ctx, _| async move {
        let page = Page::from_params(&params)?;
        let s = ctx.snapshot().await?;
        let list: Vec<Value> = page
            .apply(&s.communities)
            .iter()
            .map(|(id, name, n)| json!({ "community_id": id, "name": name, "edges": n }))
            .collect();
        Ok::<Value, ErrorObjectOwned>(Value::Array(list))
    })?;
    m.register_async_method("get_supernodes", |params, ctx, _| async move {
        let page = Page::from_params(&params)?;
        let s = ctx.snapshot().await?;
        let up_within = weft_proto::supernode::SYNC_INTERVAL * 3;
        let list: Vec<Value> = page
            .apply(&s.peers)
            .iter()
            .map(|p| {
                let up = p.up
                    && p.last_heard
                        .is_some_and(|t| s.now.saturating_duration_since(t) < up_within);
                json!({
                    "addr": p.addr.to_string(),
                    "key": p.key.to_string(),
                    "state": if up { "up" } else if p.last_heard.is_some() { "down" } else { "unknown" },
                    "last_seen_ms": p.last_heard.map(|t| s.now.saturating_duration_since(t).as_millis() as u64),
                    "edges": p.edges,
                })
            })
            .collect();
        Ok::<Value, ErrorObjectOwned>(Value::Array(list))
    })?;
    m.register_async_method("get_packetstats", |_, ctx, _| async move {
        let s = ctx.snapshot().await?;
        Ok::<Value, ErrorObjectOwned>(stats_json(&s.stats))
    })?;
    m.register_async_method("get_timestamps", |_, ctx, _| async move {
        let s = ctx.snapshot().await?;
        let unix = |t: Instant| {
            (ctx.started_unix_ms + t.saturating_duration_since(ctx.started).as_millis() as u64)
                / 1000
        };
        Ok::<Value, ErrorObjectOwned>(json!({
            "started": ctx.started_unix_ms / 1000,
            "uptime_s": ctx.uptime_s(),
            "last_registration": s.last_registration.map(unix),
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
