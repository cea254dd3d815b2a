//! The local addresses an edge offers peers as direct-path candidates.
//!
//! By default every IPv4 address of an interface that is up, except loopback and our own TAP: two edges
//! behind the same NAT then find each other on their LAN. `[connection] advertise` replaces the list, for
//! hosts where some addresses must not be used (another VPN's tunnel, a container bridge).

use std::net::{IpAddr, SocketAddr};

use crate::settings::Advertised;

/// The candidate addresses with the bound port filled in where none was given.
pub fn local_candidates(advertise: &[Advertised], port: u16, tap_name: &str) -> Vec<SocketAddr> {
    if !advertise.is_empty() {
        return advertise
            .iter()
            .map(|a| SocketAddr::new(a.ip, a.port.unwrap_or(port)))
            .collect();
    }
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut out: Vec<SocketAddr> = ifaces
        .into_iter()
        .filter(|i| i.name != tap_name && !i.is_loopback())
        .filter_map(|i| match i.ip() {
            IpAddr::V4(v4) if !v4.is_link_local() && !v4.is_unspecified() => {
                Some(SocketAddr::new(IpAddr::V4(v4), port))
            }
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out.truncate(weft_proto::wire::MAX_LOCAL_ADDRS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_addresses_win_and_get_the_port() {
        let adv = vec![
            "10.1.0.2".parse::<Advertised>().unwrap(),
            "10.9.0.1:99".parse::<Advertised>().unwrap(),
        ];
        let c = local_candidates(&adv, 7801, "tap0");
        assert_eq!(
            c,
            vec![
                "10.1.0.2:7801".parse::<SocketAddr>().unwrap(),
                "10.9.0.1:99".parse().unwrap()
            ]
        );
    }

    #[test]
    fn discovered_addresses_exclude_loopback() {
        for a in local_candidates(&[], 1, "tap0") {
            assert!(!a.ip().is_loopback());
            assert_eq!(a.port(), 1);
        }
    }
}
