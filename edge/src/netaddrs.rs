//! The local addresses an edge offers peers as direct-path candidates.
//!
//! By default every IPv4 address of an interface that is up, except those of interfaces that are not a
//! way to reach the peer's machine on its own network: loopback, our own TAP, other tunnels (TUN/TAP
//! devices of other VPNs, WireGuard, anything point-to-point, IP-in-IP and GRE devices) and the bridges
//! container and VM managers create (docker0, br-<id>, virbr*, cni*, ...) and their ports. Two edges
//! behind the same NAT then find each other on their LAN, and never on another VPN's tunnel, whose
//! smaller MTU or policy would silently lose full-size frames. `[connection] advertise` replaces the
//! list, for hosts where a skipped address is wanted (a container bridge) or an offered one is not.
//!
//! The kind of an interface comes from sysfs (`/sys/class/net/<if>/`), which `if-addrs` does not read:
//! `flags` (IFF_POINTOPOINT), `type` (ARPHRD_*), `tun_flags` (present for TUN/TAP), `uevent` (DEVTYPE),
//! `bridge/` and `brport/`. Reading files needs no unsafe code and lets the tests use a fake tree.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::settings::Advertised;

/// Where the kernel lists network interfaces.
pub const SYSFS_NET: &str = "/sys/class/net";

/// `IFF_LOOPBACK` in an interface's `flags`.
const IFF_LOOPBACK: u32 = 0x8;
/// `IFF_POINTOPOINT` in an interface's `flags`.
const IFF_POINTOPOINT: u32 = 0x10;

/// ARPHRD_* link types of tunnels (their addresses reach the far end of a tunnel, not a network):
/// PPP, IP-in-IP, IPv6-in-IPv6, SIT, GRE, IPv6 GRE, and "none" (TUN devices, WireGuard).
const TUNNEL_TYPES: [(u32, &str); 7] = [
    (512, "PPP"),
    (768, "IP-in-IP tunnel"),
    (769, "IPv6 tunnel"),
    (776, "SIT tunnel"),
    (778, "GRE tunnel"),
    (823, "IPv6 GRE tunnel"),
    (65534, "layer-3 tunnel"),
];

/// Name prefixes of the bridges container and VM managers create. `br-` is docker's only when a
/// 12-digit hex network id follows (`br-lan` on a router is its real LAN).
const MANAGED_BRIDGES: [&str; 7] = [
    "docker", "virbr", "cni", "podman", "lxcbr", "lxdbr", "cilium",
];

/// The candidates to offer, and the interfaces whose addresses were left out, with why.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    /// The addresses, with the bound port filled in where none was given.
    pub addrs: Vec<SocketAddr>,
    /// Interface name → why its addresses are not offered.
    pub skipped: BTreeMap<String, &'static str>,
    /// The networks of the skipped interfaces that have an address (a peer address in one of them is
    /// reached through that interface, so it is not a useful direct path either).
    pub avoid: Vec<(Ipv4Addr, u8)>,
}

/// The candidate addresses: the configured ones, or those of the host's interfaces (sysfs under
/// `sysfs_net`) minus the skipped kinds.
pub fn local_candidates(
    advertise: &[Advertised],
    port: u16,
    tap_name: &str,
    sysfs_net: &Path,
) -> Candidates {
    if !advertise.is_empty() {
        return Candidates {
            addrs: advertise
                .iter()
                .map(|a| SocketAddr::new(a.ip, a.port.unwrap_or(port)))
                .collect(),
            ..Candidates::default()
        };
    }
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        return Candidates::default();
    };
    let mut out = Candidates::default();
    for i in ifaces {
        let if_addrs::IfAddr::V4(v4) = &i.addr else {
            continue;
        };
        if let Some(why) = skip_reason(sysfs_net, &i.name, tap_name) {
            if !v4.ip.is_loopback() {
                out.avoid.push((v4.ip, v4.prefixlen));
                out.skipped.insert(i.name.clone(), why);
            }
            continue;
        }
        let ip = v4.ip;
        if !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified() {
            out.addrs.push(SocketAddr::new(IpAddr::V4(ip), port));
        }
    }
    out.addrs.sort();
    out.addrs.dedup();
    out.addrs.truncate(weft_proto::wire::MAX_LOCAL_ADDRS);
    out.avoid.sort();
    out.avoid.dedup();
    out
}

/// Why the addresses of interface `name` are not offered as candidates, or None when they are. An
/// interface sysfs does not describe (not mounted, gone meanwhile) is offered, as before.
pub fn skip_reason(sysfs_net: &Path, name: &str, tap_name: &str) -> Option<&'static str> {
    if name == tap_name {
        return Some("Weft's own TAP device");
    }
    // A name that could leave the directory is not an interface.
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    let dir = sysfs_net.join(name);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let flags = read("flags")
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    if flags & IFF_LOOPBACK != 0 {
        return Some("loopback");
    }
    if dir.join("tun_flags").exists() {
        return Some("TUN/TAP device (another VPN's tunnel)");
    }
    let devtype = read("uevent").and_then(|u| {
        u.lines()
            .find_map(|l| l.strip_prefix("DEVTYPE=").map(|t| t.trim().to_string()))
    });
    if devtype.as_deref() == Some("wireguard") {
        return Some("WireGuard tunnel");
    }
    if flags & IFF_POINTOPOINT != 0 {
        return Some("point-to-point link (a tunnel)");
    }
    let kind = read("type").and_then(|t| t.trim().parse::<u32>().ok());
    if let Some((_, what)) = TUNNEL_TYPES.iter().find(|(t, _)| Some(*t) == kind) {
        return Some(what);
    }
    let is_bridge = devtype.as_deref() == Some("bridge") || dir.join("bridge").is_dir();
    if is_bridge && managed_bridge_name(name) {
        return Some("container or VM bridge (list it in [connection] advertise to offer it)");
    }
    if dir.join("brport").is_dir() {
        return Some("port of a bridge");
    }
    None
}

/// Whether a bridge's name is one a container or VM manager gives its bridges.
fn managed_bridge_name(name: &str) -> bool {
    if let Some(id) = name.strip_prefix("br-") {
        return id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit());
    }
    MANAGED_BRIDGES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    /// A fake `/sys/class/net` in a temp dir, removed on drop.
    struct FakeSys(PathBuf);

    impl FakeSys {
        fn new(tag: &str) -> FakeSys {
            let dir =
                std::env::temp_dir().join(format!("weft-netaddrs-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            FakeSys(dir)
        }

        /// An interface with these `flags`, `type`, uevent DEVTYPE and extra entries (dirs end in '/').
        fn iface(&self, name: &str, flags: &str, kind: u32, devtype: Option<&str>, extra: &[&str]) {
            let d = self.0.join(name);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("flags"), format!("{flags}\n")).unwrap();
            fs::write(d.join("type"), format!("{kind}\n")).unwrap();
            let mut uevent = format!("INTERFACE={name}\nIFINDEX=3\n");
            if let Some(t) = devtype {
                uevent.push_str(&format!("DEVTYPE={t}\n"));
            }
            fs::write(d.join("uevent"), uevent).unwrap();
            for e in extra {
                if let Some(sub) = e.strip_suffix('/') {
                    fs::create_dir_all(d.join(sub)).unwrap();
                } else {
                    fs::write(d.join(e), "0x1002\n").unwrap();
                }
            }
        }
    }

    impl Drop for FakeSys {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn configured_addresses_win_and_get_the_port() {
        let adv = vec![
            "10.1.0.2".parse::<Advertised>().unwrap(),
            "10.9.0.1:99".parse::<Advertised>().unwrap(),
        ];
        let c = local_candidates(&adv, 7801, "tap0", Path::new(SYSFS_NET));
        assert_eq!(
            c.addrs,
            vec![
                "10.1.0.2:7801".parse::<SocketAddr>().unwrap(),
                "10.9.0.1:99".parse().unwrap()
            ]
        );
        assert!(c.skipped.is_empty() && c.avoid.is_empty());
    }

    #[test]
    fn discovered_addresses_exclude_loopback() {
        for a in local_candidates(&[], 1, "tap0", Path::new(SYSFS_NET)).addrs {
            assert!(!a.ip().is_loopback());
            assert_eq!(a.port(), 1);
        }
    }

    #[test]
    fn tunnels_own_tap_and_managed_bridges_are_skipped() {
        let sys = FakeSys::new("skip");
        // What the kernel shows for each kind (flags and type as in sysfs).
        sys.iface("weft0", "0x1003", 1, None, &["tun_flags"]);
        sys.iface("tun0", "0x1091", 65534, None, &["tun_flags"]);
        sys.iface("tap1", "0x1003", 1, None, &["tun_flags"]);
        sys.iface("wg0", "0x91", 65534, Some("wireguard"), &[]);
        sys.iface("ppp0", "0x1091", 512, None, &[]);
        sys.iface("ipip0", "0x80", 768, None, &[]);
        sys.iface("gre1", "0x80", 778, None, &[]);
        sys.iface("docker0", "0x1003", 1, Some("bridge"), &["bridge/"]);
        sys.iface("br-0123456789ab", "0x1003", 1, Some("bridge"), &["bridge/"]);
        sys.iface("virbr0", "0x1003", 1, Some("bridge"), &["bridge/"]);
        sys.iface("cni0", "0x1003", 1, Some("bridge"), &["bridge/"]);
        sys.iface("vethab12", "0x1003", 1, None, &["brport/"]);
        sys.iface("lo", "0x9", 772, None, &[]);
        let p = sys.0.as_path();
        let want = [
            ("weft0", "Weft's own TAP device"),
            ("tun0", "TUN/TAP device (another VPN's tunnel)"),
            ("tap1", "TUN/TAP device (another VPN's tunnel)"),
            ("wg0", "WireGuard tunnel"),
            ("ppp0", "point-to-point link (a tunnel)"),
            ("ipip0", "IP-in-IP tunnel"),
            ("gre1", "GRE tunnel"),
            (
                "docker0",
                "container or VM bridge (list it in [connection] advertise to offer it)",
            ),
            (
                "br-0123456789ab",
                "container or VM bridge (list it in [connection] advertise to offer it)",
            ),
            (
                "virbr0",
                "container or VM bridge (list it in [connection] advertise to offer it)",
            ),
            (
                "cni0",
                "container or VM bridge (list it in [connection] advertise to offer it)",
            ),
            ("vethab12", "port of a bridge"),
            ("lo", "loopback"),
        ];
        for (name, why) in want {
            assert_eq!(skip_reason(p, name, "weft0"), Some(why), "{name}");
        }
    }

    #[test]
    fn real_networks_are_offered() {
        let sys = FakeSys::new("keep");
        sys.iface("eth0", "0x1003", 1, None, &[]);
        sys.iface("wlp2s0", "0x1003", 1, Some("wlan"), &[]);
        // A bridge that is the host's LAN (VM hosts, routers) is not a container bridge.
        sys.iface("br0", "0x1003", 1, Some("bridge"), &["bridge/"]);
        sys.iface("br-lan", "0x1003", 1, Some("bridge"), &["bridge/"]);
        sys.iface("eth0.10", "0x1003", 1, Some("vlan"), &[]);
        // A veth with an address (the host side of a namespace's link, as in the test bed).
        sys.iface("veth0", "0x1003", 1, None, &[]);
        let p = sys.0.as_path();
        for name in ["eth0", "wlp2s0", "br0", "br-lan", "eth0.10", "veth0"] {
            assert_eq!(skip_reason(p, name, "weft0"), None, "{name}");
        }
    }

    #[test]
    fn odd_or_missing_sysfs_entries_do_not_skip_or_escape() {
        let sys = FakeSys::new("odd");
        let p = sys.0.as_path();
        // Not in sysfs at all: offered, as without sysfs.
        assert_eq!(skip_reason(p, "eth9", "weft0"), None);
        // Garbage in flags and type: no kind is guessed from it.
        let d = p.join("eth1");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("flags"), "zz\n").unwrap();
        fs::write(d.join("type"), "-1\n").unwrap();
        fs::write(d.join("uevent"), "DEVTYPE\n").unwrap();
        assert_eq!(skip_reason(p, "eth1", "weft0"), None);
        // A name with a path in it is not looked up outside the tree.
        sys.iface("tun0", "0x1091", 65534, None, &["tun_flags"]);
        assert_eq!(skip_reason(&p.join("eth1"), "../tun0", "weft0"), None);
        // A bridge named like docker's but with a short id, and a device named docker but not a bridge.
        sys.iface("br-abc", "0x1003", 1, Some("bridge"), &["bridge/"]);
        sys.iface("docker-net", "0x1003", 1, None, &[]);
        assert_eq!(skip_reason(p, "br-abc", "weft0"), None);
        assert_eq!(skip_reason(p, "docker-net", "weft0"), None);
    }
}
