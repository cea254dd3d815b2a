//! The edge's management methods, served by `weft-web` on `/run/weft/<session>/mgmt`.
//!
//! Each method asks the event loop for a snapshot over a channel, so the state machine stays owned by one
//! task and a slow client never holds it.

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use weft_proto::edge::{Path, PeerState};
use weft_web::jsonrpsee::types::ErrorObjectOwned;
use weft_web::jsonrpsee::RpcModule;

use crate::driver::{ms_since, Query};

/// Static facts `get_info` reports besides the loop's snapshot.
#[derive(Clone)]
pub struct Facts {
    pub session: String,
    pub community: String,
    pub tap: String,
    pub bind: String,
}

fn gone() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, "the edge is shutting down", None::<()>)
}

async fn ask<T>(
    tx: &mpsc::Sender<Query>,
    make: impl FnOnce(oneshot::Sender<T>) -> Query,
) -> Result<T, ErrorObjectOwned> {
    let (reply, rx) = oneshot::channel();
    tx.send(make(reply)).await.map_err(|_| gone())?;
    rx.await.map_err(|_| gone())
}

/// The RPC module with `get_info` and `get_edges`.
pub fn module(tx: mpsc::Sender<Query>, facts: Facts) -> anyhow::Result<RpcModule<()>> {
    let mut m = RpcModule::new(());
    let t = tx.clone();
    m.register_async_method("get_info", move |_, _, _| {
        let tx = t.clone();
        let facts = facts.clone();
        async move {
            let i = ask(&tx, Query::Info).await?;
            let s = i.stats;
            Ok::<Value, ErrorObjectOwned>(json!({
                "version": env!("CARGO_PKG_VERSION"),
                "session": facts.session,
                "community": facts.community,
                "public_key": i.public_key,
                "mac": i.mac,
                "ip": i.ip.map(|n| n.to_string()),
                "tap": facts.tap,
                "bind": facts.bind,
                "registered": i.registered,
                "public_addr": i.observed.map(|a| a.to_string()),
                "supernodes": i.supernodes.iter().map(|sn| json!({
                    "addr": sn.addr.to_string(),
                    "registered": sn.registered,
                    "last_ack_ms": ms_since(i.now, sn.last_ack),
                })).collect::<Vec<_>>(),
                "stats": {
                    "rx_packets": s.rx_packets,
                    "tx_packets": s.tx_packets,
                    "rx_bytes": s.rx_bytes,
                    "tx_bytes": s.tx_bytes,
                    "handshakes_completed": s.handshakes_completed,
                    "handshakes_rejected": s.handshakes_rejected,
                    "dropped_malformed": s.dropped_malformed,
                    "dropped_auth": s.dropped_auth,
                    "dropped_replay": s.dropped_replay,
                    "dropped_unknown_session": s.dropped_unknown_session,
                    "dropped_not_from_supernode": s.dropped_not_from_supernode,
                    "dropped_no_route": s.dropped_no_route,
                    "dropped_no_capacity": s.dropped_no_capacity,
                    "tx_direct_frames": s.tx_direct_frames,
                    "tx_relayed_frames": s.tx_relayed_frames,
                },
            }))
        }
    })?;
    m.register_async_method("get_edges", move |_, _, _| {
        let tx = tx.clone();
        async move {
            let (now, peers) = ask(&tx, Query::Peers).await?;
            let list: Vec<Value> = peers
                .iter()
                .map(|p| {
                    let (path, addr) = match p.path {
                        Path::Direct(a) => ("direct", Some(a.to_string())),
                        Path::Relayed(_) => ("relayed", None),
                        Path::None => ("none", None),
                    };
                    json!({
                        "public_key": p.public_key.to_string(),
                        "description": p.description,
                        "mac": p.mac.map(|m| m.to_string()),
                        "learned_macs": p.learned_macs.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                        "ip": p.ip.map(|n| n.to_string()),
                        "state": match p.state { PeerState::Up => "up", PeerState::Connecting => "connecting" },
                        "path": path,
                        "addr": addr,
                        "relay": match p.path { Path::Relayed(sn) => Some(sn.to_string()), _ => None },
                        "why_not_direct": p.why_not_direct,
                        "rtt_ms": p.rtt.map(|d| d.as_secs_f64() * 1000.0),
                        "last_seen_ms": ms_since(now, p.last_seen),
                        "rx_packets": p.counters.rx_packets,
                        "tx_packets": p.counters.tx_packets,
                        "rx_bytes": p.counters.rx_bytes,
                        "tx_bytes": p.counters.tx_bytes,
                    })
                })
                .collect();
            Ok::<Value, ErrorObjectOwned>(Value::Array(list))
        }
    })?;
    Ok(m)
}
