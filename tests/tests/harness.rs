//! Self-test of the harness: needs no daemon. Builds an internet with two servers, two hosts
//! behind cone NAT and one behind symmetric NAT, and checks that the NAT routers behave as the
//! scenarios assume (reachability, endpoint-independent vs per-destination mappings, filtering of
//! unsolicited packets, and hole punching between two cone NATs).

use anyhow::{ensure, Result};
use std::net::SocketAddr;
use std::time::Duration;
use weft_e2e::nsnet::{link_stats, mapped_addr, recv_for, udp_socket_in, Capture, UdpEcho};
use weft_e2e::{ping, run_e2e, Nat, Testbed};

fn from(got: &[(SocketAddr, Vec<u8>)], who: SocketAddr) -> usize {
    got.iter().filter(|(a, _)| *a == who).count()
}

#[test]
fn nat_topology() {
    run_e2e("harness::nat_topology", Duration::from_secs(45), body);
}

fn body(tb: &Testbed) -> Result<()> {
    let srv = tb.add_public_host("srv", false)?;
    let srv2 = tb.add_public_host("srv2", false)?;
    let a = tb.add_nat_host("a", Nat::Cone, false)?;
    let c = tb.add_nat_host("c", Nat::Cone, false)?;
    let b = tb.add_nat_host("b", Nat::Symmetric, true)?;

    // ICMP across the internet and out through a NAT
    let p = ping(&srv.ns, &srv2.ip.to_string(), 2, 0.2, 3, &[])?;
    ensure!(p.received == 2, "srv -> srv2: {}", p.output);
    let p = ping(&a.ns, &srv.ip.to_string(), 2, 0.2, 3, &[])?;
    ensure!(p.received == 2, "a (behind cone NAT) -> srv: {}", p.output);
    let p = ping(&b.ns, &srv.ip.to_string(), 2, 0.2, 3, &[])?;
    ensure!(
        p.received == 2,
        "b (behind symmetric NAT) -> srv: {}",
        p.output
    );
    // ... but not in from the internet
    // (an error here is "Network is unreachable": no route, as it should be)
    if let Ok(p) = ping(&srv.ns, &a.ip.to_string(), 2, 0.2, 2, &[]) {
        ensure!(
            p.received == 0,
            "srv reached a's private address: {}",
            p.output
        );
    }
    tb.step("ICMP: inside -> internet ok, internet -> inside blocked");

    // the AF_PACKET capture used to look for a ping payload on a TAP device
    let pattern = [0xc0, 0xff, 0xee, 0x15, 0xba, 0xd0, 0xbe, 0xef];
    let cap = Capture::start(&srv.ns, "eth0", &pattern)?;
    let l0 = link_stats(&srv.ns, "eth0")?;
    let p = ping(
        &srv2.ns,
        &srv.ip.to_string(),
        3,
        0.2,
        3,
        &["-p", "c0ffee15bad0beef"],
    )?;
    ensure!(p.received == 3, "srv2 -> srv with a pattern: {}", p.output);
    let seen = cap.finish();
    let l1 = link_stats(&srv.ns, "eth0")?;
    ensure!(
        seen.matches >= 6,
        "capture on srv eth0 saw {} frames, {} with the pattern (expected 3 requests + 3 replies)",
        seen.frames,
        seen.matches
    );
    ensure!(
        l1.rx_packets >= l0.rx_packets + 3,
        "rx counter did not grow: {l0:?} -> {l1:?}"
    );
    tb.step(&format!(
        "capture: {} frames, {} with the pattern",
        seen.frames, seen.matches
    ));

    let echo1 = UdpEcho::start(&srv.ns, &format!("{}:3478", srv.ip))?;
    let echo2 = UdpEcho::start(&srv2.ns, &format!("{}:3478", srv2.ip))?;

    // cone: one mapping for all destinations, source port kept
    let sa = udp_socket_in(&a.ns, "0.0.0.0:40001")?;
    let ma = mapped_addr(&sa, echo1.addr)?;
    let ma2 = mapped_addr(&sa, echo2.addr)?;
    tb.step(&format!(
        "cone NAT: a's socket seen as {ma} by srv and {ma2} by srv2"
    ));
    ensure!(
        ma.ip() == std::net::IpAddr::V4(a.public_ip),
        "a mapped to {ma}, expected its router {}",
        a.public_ip
    );
    ensure!(
        ma == ma2,
        "cone NAT gave different mappings per destination: {ma} vs {ma2}"
    );
    ensure!(
        ma.port() == 40001,
        "cone NAT did not keep the source port: {ma}"
    );

    // filtering: an unsolicited packet from another internet host is dropped
    let stranger = udp_socket_in(&srv2.ns, &format!("{}:5000", srv2.ip))?;
    stranger.send_to(b"unsolicited", ma)?;
    let got = recv_for(&sa, Duration::from_millis(400))?;
    ensure!(
        from(&got, stranger.local_addr()?) == 0,
        "cone NAT let an unsolicited packet from {} through to a",
        stranger.local_addr()?
    );
    tb.step("cone NAT: unsolicited packet from a third host dropped");

    // symmetric: a new public port per destination
    let sb = udp_socket_in(&b.ns, "0.0.0.0:40002")?;
    let mb1 = mapped_addr(&sb, echo1.addr)?;
    let mb2 = mapped_addr(&sb, echo2.addr)?;
    tb.step(&format!(
        "symmetric NAT: b's socket seen as {mb1} by srv and {mb2} by srv2"
    ));
    ensure!(
        mb1.ip() == std::net::IpAddr::V4(b.public_ip),
        "b mapped to {mb1}"
    );
    ensure!(
        mb1.port() != mb2.port(),
        "symmetric NAT kept one port for two destinations: {mb1} / {mb2}"
    );

    // hole punching between two cone NATs, the peer punching first (the trap in the notes:
    // its early packet must be dropped by a's router, not confirm a conntrack entry that
    // would later give a's own packet a different public port)
    let sc = udp_socket_in(&c.ns, "0.0.0.0:40003")?;
    let mc = mapped_addr(&sc, echo1.addr)?;
    sc.send_to(b"punch from c", ma)?;
    let got = recv_for(&sa, Duration::from_millis(300))?;
    ensure!(
        from(&got, mc) == 0,
        "a's router let c's first (unsolicited) punch through"
    );
    sa.send_to(b"punch from a", mc)?;
    let got = recv_for(&sc, Duration::from_millis(500))?;
    ensure!(
        from(&got, ma) >= 1,
        "c did not get a's punch from a's mapped address {ma}; got from {:?}",
        got.iter().map(|g| g.0).collect::<Vec<_>>()
    );
    sc.send_to(b"hello a", ma)?;
    let got = recv_for(&sa, Duration::from_millis(500))?;
    ensure!(
        from(&got, mc) >= 1,
        "a did not get c's packet through the punched hole"
    );
    tb.step(&format!(
        "hole punching between cone NATs: {ma} <-> {mc} ok"
    ));

    // IPv6 stays on in a namespace asked for it, off on its underlay link
    ensure!(
        weft_e2e::nsnet::sysctl_get(&b.ns, "net/ipv6/conf/default/disable_ipv6")? == "0",
        "IPv6 should stay enabled in b's namespace"
    );
    ensure!(
        weft_e2e::nsnet::sysctl_get(&b.ns, "net/ipv6/conf/eth0/disable_ipv6")? == "1",
        "IPv6 should be disabled on b's underlay link"
    );
    Ok(())
}

#[test]
fn missing_daemon_binary_is_a_clear_error() {
    // no root needed: only the lookup
    let exe = std::path::Path::new("/nonexistent/target/debug/deps/e2e-0123");
    let err = weft_e2e::daemon::locate_bin("weft-edge", None, exe)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cargo build --workspace"), "{err}");
    let dir = std::path::Path::new("/nonexistent-bin-dir");
    let err = weft_e2e::daemon::locate_bin("weft-edge", Some(dir), exe)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("WEFT_BIN_DIR") && err.contains("cargo build --workspace"),
        "{err}"
    );
}
