//! Another VPN beside Weft on both machines: a point-to-point TUN tunnel between the two hosts with a
//! small MTU (1300), as a work VPN or a second mesh would add. With the default configuration, Weft's
//! direct path must stay on the real underlay: the tunnel's addresses are not offered, not probed, not
//! taken as a path, and full-size frames (which the tunnel could not carry) cross the overlay.
//!
//! Needs root, `ip` and `ping`, and the daemons built (`cargo build --workspace`).

use anyhow::{ensure, Context, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use weft_e2e::daemon::{first_ping, peer_tables, wait_paths};
use weft_e2e::tunnel::Tunnel;
use weft_e2e::{
    ping, run_e2e, secs, Edge, EdgeConfig, SupernodeConfig, Testbed, COMMUNITY, SECRET,
};

const BUDGET: Duration = Duration::from_secs(90);
/// The other VPN's tunnel: device, addresses, MTU.
const DEV: &str = "vpn9";
const TUN_A: &str = "10.99.0.1";
const TUN_B: &str = "10.99.0.2";
const TUN_MTU: u16 = 1300;
/// How long the path is watched under pings.
const WATCH: Duration = Duration::from_secs(20);

#[test]
fn second_tunnel_is_not_taken_as_the_path() {
    run_e2e(
        "second_tunnel_is_not_taken_as_the_path",
        BUDGET,
        second_tunnel_body,
    );
}

/// The direct address `e` uses for its one peer.
fn direct_addr(e: &Edge) -> Result<Option<SocketAddr>> {
    let peers = e.peers()?;
    let Some(p) = peers.iter().find(|p| p.is_direct()) else {
        return Ok(None);
    };
    let a = p.addr.as_deref().context("direct peer without addr")?;
    Ok(Some(a.parse().context("peer addr is not ip:port")?))
}

fn second_tunnel_body(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let h1 = tb.add_public_host("e1", false)?;
    let h2 = tb.add_public_host("e2", false)?;
    let _tunnel = Tunnel::start(
        &h1.ns,
        &format!("{TUN_A}/30"),
        &h2.ns,
        &format!("{TUN_B}/30"),
        DEV,
        TUN_MTU,
    )?;
    // The tunnel works, and cannot carry a 1400-byte packet: the test means something.
    let small = ping(&h1.ns, TUN_B, 2, 0.2, 5, &[])?;
    ensure!(
        small.received >= 1,
        "the tunnel does not carry pings:\n{}",
        small.output
    );
    let big = ping(&h1.ns, TUN_B, 1, 0.2, 2, &["-s", "1372", "-M", "do"])?;
    ensure!(
        big.received == 0,
        "a 1400-byte packet crossed the 1300-MTU tunnel"
    );
    tb.step(&format!(
        "tunnel {DEV} {TUN_A} <-> {TUN_B}, MTU {TUN_MTU}, up"
    ));

    let sn = tb.start_supernode(&sn_host, &SupernodeConfig::default())?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let (ip1, ip2) = (Ipv4Addr::new(10, 210, 0, 1), Ipv4Addr::new(10, 210, 0, 2));
    let start = |h, ip: Ipv4Addr| {
        tb.start_edge(
            h,
            &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()).static_ip(&format!("{ip}/24")),
        )
    };
    let e1 = start(&h1, ip1)?;
    let e2 = start(&h2, ip2)?;
    for e in [&e1, &e2] {
        e.wait_registered(tb, Duration::from_secs(15))?;
    }
    first_ping(tb, &e1, ip2, Duration::from_secs(10))?;
    let t0 = Instant::now();
    wait_paths(tb, &[&e1, &e2], "direct", Duration::from_secs(20))?;
    tb.figure(&format!("time to direct path {}", secs(t0.elapsed())));

    // For WATCH, under pings both ways: the path stays direct at the other host's underlay address.
    let watch_end = Instant::now() + WATCH;
    let mut checks = 0;
    while Instant::now() < watch_end {
        for (e, other, to) in [(&e1, &h2, ip2), (&e2, &h1, ip1)] {
            let p = ping(&e.ns, &to.to_string(), 2, 0.2, 3, &[])?;
            ensure!(
                p.received >= 1,
                "{} -> {to}: no reply:\n{}",
                e.role,
                p.output
            );
            let addr = direct_addr(e)?;
            ensure!(
                addr.map(|a| a.ip()) == Some(IpAddr::V4(other.ip)),
                "{}'s path to {} is {addr:?}, expected direct at the underlay {}\n{}",
                e.role,
                other.role,
                other.ip,
                peer_tables(&[&e1, &e2])
            );
            checks += 1;
        }
    }
    tb.step(&format!(
        "{checks} checks over {}: both paths direct at the underlay",
        secs(WATCH)
    ));

    // Full-size frames cross the overlay (they could not cross the tunnel).
    for (e, to) in [(&e1, ip2), (&e2, ip1)] {
        let p = ping(
            &e.ns,
            &to.to_string(),
            5,
            0.2,
            8,
            &["-s", "1300", "-M", "do"],
        )?;
        ensure!(
            p.received >= 5,
            "{} -> {to}: {} of 5 1328-byte don't-fragment pings came back:\n{}",
            e.role,
            p.received,
            p.output
        );
    }
    tb.step("1328-byte don't-fragment pings cross the overlay both ways");

    // Each edge said at start-up that it leaves the tunnel out.
    for e in [&e1, &e2] {
        let log = std::fs::read_to_string(e.log_path()).unwrap_or_default();
        ensure!(
            log.contains(&format!("not offering the addresses of {DEV}")),
            "{} did not log that it skips {DEV}:\n{}",
            e.role,
            e.log_tail(30)
        );
    }
    Ok(())
}
