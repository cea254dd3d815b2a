//! The supernode's events in words: a log line for each, and its `/events` form (kinds and fields:
//! docs/api.md).

use std::time::Instant;

use weft_daemon::logbudget::LogBudget;
use weft_proto::supernode::{Supernode, SupernodeEvent};

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The `/events` form of an event (kinds and fields: docs/api.md).
pub fn server_event(sn: &Supernode, ev: &SupernodeEvent) -> weft_mgmt::ServerEvent {
    use serde_json::json;
    let (kind, mut data) = match ev {
        SupernodeEvent::EdgeRegistered {
            community,
            edge,
            addr,
            moved,
        } => (
            "edge_registered",
            json!({"community": community_label(sn, community), "edge": edge.to_string(), "addr": addr.to_string(), "moved": moved}),
        ),
        SupernodeEvent::EdgeExpired { community, edge } => (
            "edge_expired",
            json!({"community": community_label(sn, community), "edge": edge.to_string()}),
        ),
        SupernodeEvent::RegistrationRefused {
            community,
            edge,
            addr,
            reason,
        } => (
            "registration_refused",
            json!({"community": community_label(sn, community), "edge": edge.to_string(), "addr": addr.to_string(), "reason": format!("{reason:?}")}),
        ),
        SupernodeEvent::EdgeRevoked {
            community,
            edge,
            reason,
        } => (
            "edge_revoked",
            json!({"community": community_label(sn, community), "edge": edge.to_string(), "reason": format!("{reason:?}")}),
        ),
        SupernodeEvent::FederationPeerUp { peer } => {
            ("federation_peer_up", json!({"peer": peer.to_string()}))
        }
        SupernodeEvent::HandshakeLoad {
            under_load,
            threshold,
        } => (
            "handshake_load",
            json!({"under_load": under_load, "threshold": threshold}),
        ),
        SupernodeEvent::FederationKeyMismatch { peer, key } => (
            "federation_key_mismatch",
            json!({"peer": peer.to_string(), "key": key.to_string()}),
        ),
    };
    data["time_ms"] = json!(unix_ms());
    weft_mgmt::ServerEvent {
        kind: kind.to_string(),
        data: data.to_string(),
    }
}

fn community_label(sn: &Supernode, id: &weft_proto::keys::CommunityId) -> String {
    match sn.community_name(id) {
        Some(n) => n.to_string(),
        None => id.to_string(),
    }
}

/// One log line for an event; refused registrations (which a stranger can cause at will, one spoofed
/// datagram each) only while `refusals` admits them.
pub fn log_event(sn: &Supernode, ev: &SupernodeEvent, refusals: &mut LogBudget) {
    if let SupernodeEvent::RegistrationRefused { reason, .. } = ev {
        if *reason != weft_proto::wire::NakReason::NameRequired && !refusals.admit(Instant::now()) {
            return;
        }
    }
    match ev {
        SupernodeEvent::EdgeRegistered {
            community,
            edge,
            addr,
            moved,
        } => tracing::info!(
            "edge {edge:?} {} community {} from {addr}",
            if *moved { "moved in" } else { "joined" },
            community_label(sn, community)
        ),
        SupernodeEvent::RegistrationRefused {
            community,
            edge,
            addr,
            reason,
        } => match reason {
            // Asked for the name; the edge sends it at once: not worth a warning.
            weft_proto::wire::NakReason::NameRequired => tracing::debug!(
                "asked edge {edge:?} at {addr} for the name of community {}",
                community_label(sn, community)
            ),
            _ => tracing::warn!(
                "refused registration of edge {edge} from {addr} for community {}: {} ({reason:?})",
                community_label(sn, community),
                reason.explain()
            ),
        },
        SupernodeEvent::EdgeRevoked {
            community,
            edge,
            reason,
        } => tracing::warn!(
            "edge {edge} cut off from community {}: {} ({reason:?}); registration dropped, its peers told",
            community_label(sn, community),
            reason.explain()
        ),
        SupernodeEvent::EdgeExpired { community, edge } => tracing::info!(
            "edge {edge:?} of community {} expired (no refresh)",
            community_label(sn, community)
        ),
        SupernodeEvent::FederationPeerUp { peer } => {
            tracing::info!("federation session with peer {peer} made (its key proven)")
        }
        SupernodeEvent::HandshakeLoad {
            under_load: true,
            threshold,
        } => tracing::warn!(
            "more than {threshold} control handshakes a second: answering them with cookies and limiting each address (a flood, perhaps from spoofed addresses; if this many edges are real, raise [supernode] handshake_load); ctl_cookies_sent and ctl_rate_limited in `weftctl stats` count them"
        ),
        SupernodeEvent::HandshakeLoad {
            under_load: false,
            threshold,
        } => tracing::info!("control handshakes back under {threshold} a second"),
        SupernodeEvent::FederationKeyMismatch { peer, key } => tracing::warn!(
            "federation peer {peer} proved key {key}, not the one its peer line gives: refused; check the \
             key in `peer = {peer} KEY` against `weft-supernode show-key` on that supernode"
        ),
    }
}

/// The line that stands for the refused registrations `refusals` held back, once their window is over.
pub fn log_held_back_refusals(refusals: &mut LogBudget) {
    if let Some(n) = refusals.take_report(Instant::now()) {
        tracing::warn!(
            "{n} more refused registrations in the last {} s were not logged (a flood, or many misconfigured edges); rejected_registrations in `weftctl stats` counts them all",
            refusals.window().as_secs()
        );
    }
}
