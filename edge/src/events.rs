//! The edge's events in words: one log line per state change worth knowing, and the `/events` form of
//! each (kinds and fields: docs/api.md).

use std::time::{Duration, Instant};

use weft_proto::edge::{Edge, Event, Path};

fn peer_name(edge: &Edge, key: &weft_proto::keys::PublicKey) -> String {
    let desc = edge
        .peers()
        .into_iter()
        .find(|p| &p.public_key == key)
        .map(|p| p.description)
        .unwrap_or_default();
    if desc.is_empty() {
        format!("{key:?}")
    } else {
        format!("{desc} ({key:?})")
    }
}

fn path_text(p: &Path) -> String {
    match p {
        Path::Direct(a) => format!("direct {a}"),
        Path::Relayed(sn) => format!("relayed via supernode {sn}"),
        Path::None => "none".into(),
    }
}

/// One line per state change worth knowing.
pub fn log_event(edge: &Edge, ev: &Event) {
    match ev {
        Event::Registered {
            supernode,
            observed,
        } => tracing::info!("registered with supernode {supernode}, public address {observed}"),
        Event::SupernodeRestarted { supernode } => {
            tracing::info!("supernode {supernode} restarted; registered again")
        }
        Event::RegistrationLost { supernode } => {
            tracing::warn!("supernode {supernode} stopped answering")
        }
        Event::RegistrationRefused { supernode, reason } => {
            use weft_proto::wire::NakReason;
            let name = &edge.config().community.name;
            match reason {
                NakReason::KeyNotAllowed => tracing::error!(
                    "supernode {supernode} refused registration: this edge's key ({}) is not on the allowed list of community '{name}'; ask the supernode's administrator to add it (weft-edge show-key prints it). Retrying every {} s",
                    edge.public_key(),
                    edge.config().timers.register_interval.as_secs()
                ),
                NakReason::CommunityNotAllowed => tracing::error!(
                    "supernode {supernode} refused registration: it does not serve community '{name}'; check [community] name, or ask its administrator to add the community to its community file"
                ),
                NakReason::BadAdmissionProof => tracing::error!(
                    "supernode {supernode} refused registration: the admission proof did not verify, so [community] key is not the secret the supernode expects for community '{name}'; check the key (and the name)"
                ),
                NakReason::NoCapacity => tracing::warn!(
                    "supernode {supernode} refused registration: it is full (too many edges or communities); retrying"
                ),
                NakReason::PoolExhausted => tracing::error!(
                    "supernode {supernode} refused registration: no free address is left in the pool of community '{name}' (address_mode=auto); ask its administrator to enlarge the pool, or configure a static address"
                ),
                NakReason::Busy => tracing::warn!(
                    "supernode {supernode} is busy: too many edges are joining community '{name}' at this moment; registering again shortly"
                ),
                NakReason::NameRequired => tracing::error!(
                    "supernode {supernode} refused registration: it asked for the community name again although this edge sent it"
                ),
                NakReason::Other => tracing::error!(
                    "supernode {supernode} refused registration for a reason this version does not know (a newer supernode?)"
                ),
            }
        }
        Event::SupernodeChanged { from, to } => match from {
            Some(from) => tracing::info!("now using supernode {to} (was {from})"),
            None => tracing::info!("now using supernode {to}"),
        },
        Event::AddressAssigned(net) => tracing::info!("virtual address {net} assigned"),
        Event::PeerUp { peer, path, .. } => {
            tracing::info!(
                "peer {} up, path {}",
                peer_name(edge, peer),
                path_text(path)
            )
        }
        Event::PathChanged { peer, path } => {
            tracing::info!("peer {} path {}", peer_name(edge, peer), path_text(path))
        }
        Event::PeerDown { peer } => {
            tracing::info!("peer {} down (session expired)", peer_name(edge, peer))
        }
        Event::PeerGone { peer } => tracing::info!("peer {peer:?} gone"),
        Event::PeerRevoked { peer } => tracing::warn!(
            "peer {peer:?} revoked: the supernode says its key is no longer allowed in the community; sessions with it dropped"
        ),
        Event::PeerNotAllowed { peer } => tracing::warn!(
            "peer {peer} refused: its key is not on this edge's [community] allow_peer list, although the community admits it (further refusals of this key are only counted, in dropped_not_allowed). If it belongs, add 'allow_peer = {peer}' (weft-edge show-key on that edge prints its key) and reload; if not, ask the supernode's administrator why it is admitted"
        ),
        Event::SupernodeSilent { supernode, secs } => tracing::warn!(
            "supernode {supernode} has not answered for {secs} s: check its address and port in [community] supernode, that UDP to it is not blocked (a firewall, or a network that lets no UDP out), and that it runs; still trying"
        ),
        Event::SupernodeKeyLearned { supernode, key } => tracing::warn!(
            "supernode {supernode} has key {key}: trusted on first use and stored in the state directory, since the configuration pins none. Check it against `weft-supernode show-key` on the supernode, and pin it with 'supernode = {supernode} {key}'"
        ),
        Event::SupernodeKeyMismatch {
            supernode,
            pinned,
            presented,
        } => tracing::error!(
            "supernode {supernode} does not answer to the pinned key {pinned} and presents key {presented}: not used. If its key was changed on purpose, update the pin ([community] supernode, or the state directory's supernode-keys file); if not, something else answers at its address"
        ),
    }
}

fn path_json(p: &Path) -> (&'static str, Option<String>) {
    match p {
        Path::Direct(a) => ("direct", Some(a.to_string())),
        Path::Relayed(_) => ("relayed", None),
        Path::None => ("none", None),
    }
}

fn description(edge: &Edge, key: &weft_proto::keys::PublicKey) -> String {
    edge.peers()
        .into_iter()
        .find(|p| &p.public_key == key)
        .map(|p| p.description)
        .unwrap_or_default()
}

/// The `/events` form of an event (kinds and fields: docs/api.md).
pub fn server_event(edge: &Edge, ev: &Event) -> weft_mgmt::ServerEvent {
    use serde_json::json;
    let (kind, mut data) = match ev {
        Event::Registered {
            supernode,
            observed,
        } => (
            "registered",
            json!({"supernode": supernode.to_string(), "public_addr": observed.to_string()}),
        ),
        Event::SupernodeRestarted { supernode } => (
            "supernode_restarted",
            json!({"supernode": supernode.to_string()}),
        ),
        Event::RegistrationLost { supernode } => (
            "registration_lost",
            json!({"supernode": supernode.to_string()}),
        ),
        Event::RegistrationRefused { supernode, reason } => (
            "registration_refused",
            json!({"supernode": supernode.to_string(), "reason": format!("{reason:?}"), "explanation": reason.explain()}),
        ),
        Event::SupernodeChanged { from, to } => (
            "supernode_changed",
            json!({"from": from.map(|a| a.to_string()), "to": to.to_string()}),
        ),
        Event::AddressAssigned(net) => ("address_assigned", json!({"ip": net.to_string()})),
        Event::SupernodeSilent { supernode, secs } => (
            "supernode_silent",
            json!({"supernode": supernode.to_string(), "secs": secs}),
        ),
        Event::SupernodeKeyLearned { supernode, key } => (
            "supernode_key_learned",
            json!({"supernode": supernode.to_string(), "key": key.to_string()}),
        ),
        Event::SupernodeKeyMismatch {
            supernode,
            pinned,
            presented,
        } => (
            "supernode_key_mismatch",
            json!({"supernode": supernode.to_string(), "pinned": pinned.to_string(), "presented": presented.to_string()}),
        ),
        Event::PeerUp { peer, path, .. } | Event::PathChanged { peer, path } => {
            let (p, addr) = path_json(path);
            (
                if matches!(ev, Event::PeerUp { .. }) {
                    "peer_up"
                } else {
                    "path_changed"
                },
                json!({"peer": peer.to_string(), "description": description(edge, peer), "path": p, "addr": addr}),
            )
        }
        Event::PeerDown { peer } => (
            "peer_down",
            json!({"peer": peer.to_string(), "description": description(edge, peer)}),
        ),
        Event::PeerGone { peer } => ("peer_gone", json!({"peer": peer.to_string()})),
        Event::PeerRevoked { peer } => ("peer_revoked", json!({"peer": peer.to_string()})),
        Event::PeerNotAllowed { peer } => ("peer_not_allowed", json!({"peer": peer.to_string()})),
    };
    data["time_ms"] = json!(unix_ms());
    weft_mgmt::ServerEvent {
        kind: kind.to_string(),
        data: data.to_string(),
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    wall_clock_us() / 1000
}

/// Milliseconds since `t`, for status output.
pub fn ms_since(now: Instant, t: Option<Instant>) -> Option<u64> {
    t.map(|t| now.saturating_duration_since(t).as_millis() as u64)
}

/// Wall-clock microseconds since the Unix epoch, for the protocol's monotonic counters.
pub fn wall_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros() as u64
}
