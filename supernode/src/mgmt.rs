//! The supernode's management methods, served by `weft-web` on `/run/weft/<session>/mgmt`.

use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use weft_proto::supernode::{EdgeRecord, Supernode, SupernodeStats};
use weft_web::jsonrpsee::types::ErrorObjectOwned;
use weft_web::jsonrpsee::RpcModule;

use crate::Query;

/// What the loop hands the management server.
pub struct Snapshot {
    now: Instant,
    stats: SupernodeStats,
    communities: Vec<(String, Option<String>, usize)>,
    edges: Vec<EdgeRecord>,
}

impl Snapshot {
    /// A copy of what the status methods report.
    pub fn of(sn: &Supernode) -> Snapshot {
        Snapshot {
            now: Instant::now(),
            stats: sn.stats(),
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
            edges: sn.edges(),
        }
    }
}

async fn snapshot(tx: &mpsc::Sender<Query>) -> Result<Snapshot, ErrorObjectOwned> {
    let gone = || ErrorObjectOwned::owned(-32000, "the supernode is shutting down", None::<()>);
    let (reply, rx) = oneshot::channel();
    tx.send(Query::Info(reply)).await.map_err(|_| gone())?;
    rx.await.map_err(|_| gone())
}

/// The RPC module with `get_info`, `get_edges` and `get_communities`.
pub fn module(
    tx: mpsc::Sender<Query>,
    session: String,
    bind: String,
) -> anyhow::Result<RpcModule<()>> {
    let mut m = RpcModule::new(());
    let t = tx.clone();
    m.register_async_method("get_info", move |_, _, _| {
        let tx = t.clone();
        let (session, bind) = (session.clone(), bind.clone());
        async move {
            let s = snapshot(&tx).await?;
            let st = s.stats;
            Ok::<Value, ErrorObjectOwned>(json!({
                "version": env!("CARGO_PKG_VERSION"),
                "session": session,
                "bind": bind,
                "communities": s.communities.len(),
                "edges": s.edges.len(),
                "stats": {
                    "relayed_packets": st.relayed_packets,
                    "relayed_bytes": st.relayed_bytes,
                    "registrations": st.registrations,
                    "rejected_registrations": st.rejected_registrations,
                    "dropped_packets": st.dropped_packets,
                    "punches": st.punches,
                },
            }))
        }
    })?;
    let t = tx.clone();
    m.register_async_method("get_edges", move |_, _, _| {
        let tx = t.clone();
        async move {
            let s = snapshot(&tx).await?;
            let list: Vec<Value> = s
                .edges
                .iter()
                .map(|e| {
                    json!({
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
        }
    })?;
    m.register_async_method("get_communities", move |_, _, _| {
        let tx = tx.clone();
        async move {
            let s = snapshot(&tx).await?;
            let list: Vec<Value> = s
                .communities
                .iter()
                .map(|(id, name, n)| json!({ "community_id": id, "name": name, "edges": n }))
                .collect();
            Ok::<Value, ErrorObjectOwned>(Value::Array(list))
        }
    })?;
    Ok(m)
}
