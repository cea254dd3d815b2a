//! End-to-end scenarios: real `weft-supernode` and `weft-edge` processes in network namespaces.
//!
//! Needs root (network namespaces), `ip`, `nft` and `ping`, and the daemon binaries built
//! (`cargo build --workspace`). Each test builds its own topology with unique names, so they run
//! in parallel; each is bounded by its time budget. Figures (time to first ping, to a direct
//! path, ...) are printed, never asserted, except scenario b's "first ping within 5 s".

use anyhow::{ensure, Context, Result};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use weft_e2e::daemon::{first_ping, peer_tables, wait_paths};
use weft_e2e::nsnet::{self, Capture, XorShift};
use weft_e2e::wait::{sleep, Fatal};
use weft_e2e::{
    ping, run_e2e, secs, BackgroundPing, Edge, EdgeConfig, Nat, Supernode, SupernodeConfig,
    Testbed, COMMUNITY, SECRET,
};

const BUDGET: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// helpers

fn start_sn(tb: &Testbed, host: &weft_e2e::Host, cfg: &SupernodeConfig) -> Result<Supernode> {
    let sn = tb.start_supernode(host, cfg)?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    Ok(sn)
}

fn static_edge(tb: &Testbed, host: &weft_e2e::Host, sn: &Supernode, cidr: &str) -> Result<Edge> {
    tb.start_edge(
        host,
        &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()).static_ip(cidr),
    )
}

/// Pings `count` times (ending early after `count` replies), requiring all of them.
fn ping_all(from: &Edge, to: Ipv4Addr, count: u32, extra: &[&str]) -> Result<weft_e2e::PingStats> {
    let p = ping(&from.ns, &to.to_string(), count, 0.2, count / 2 + 5, extra)?;
    ensure!(
        p.received >= count,
        "{} -> {to}: only {} of {count} replies ({} sent):\n{}",
        from.role,
        p.received,
        p.transmitted,
        p.output
    );
    Ok(p)
}

// ---------------------------------------------------------------------------------------------
// a. flat mesh

#[test]
fn flat_mesh() {
    run_e2e("e2e::flat_mesh", BUDGET, flat_mesh_body);
}

fn flat_mesh_body(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let hosts: Vec<_> = (1..=3)
        .map(|i| tb.add_public_host(&format!("e{i}"), false))
        .collect::<Result<_>>()?;
    let sn = start_sn(tb, &sn_host, &SupernodeConfig::default())?;
    let t0 = Instant::now();
    let ips: Vec<Ipv4Addr> = (1..=3).map(|i| Ipv4Addr::new(10, 200, 0, i)).collect();
    let edges: Vec<Edge> = hosts
        .iter()
        .zip(&ips)
        .map(|(h, ip)| static_edge(tb, h, &sn, &format!("{ip}/24")))
        .collect::<Result<_>>()?;
    for e in &edges {
        e.wait_registered(tb, Duration::from_secs(15))?;
    }
    tb.figure(&format!(
        "time to all 3 edges registered {}",
        secs(t0.elapsed())
    ));

    let mut first = None;
    for (i, from) in edges.iter().enumerate() {
        for (j, to) in ips.iter().enumerate() {
            if i == j {
                continue;
            }
            first_ping(tb, from, *to, Duration::from_secs(15))?;
            first.get_or_insert(t0.elapsed());
            let p = ping_all(from, *to, 3, &[])?;
            tb.step(&format!(
                "{} -> {} ({to}): {}",
                from.role,
                edges[j].role,
                p.summary()
            ));
        }
    }
    if let Some(f) = first {
        tb.figure(&format!("time to first ping {}", secs(f)));
    }
    tb.figure(&format!(
        "all 6 ordered pairs pinged after {}",
        secs(t0.elapsed())
    ));

    let refs: Vec<&Edge> = edges.iter().collect();
    wait_paths(tb, &refs, "direct", Duration::from_secs(20))?;
    tb.figure(&format!("time to all paths direct {}", secs(t0.elapsed())));
    tb.step(&format!("peer tables:\n{}", peer_tables(&refs)));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// b. two cone NATs, auto addresses

#[test]
fn cone_nat_auto_address() {
    run_e2e("e2e::cone_nat_auto_address", BUDGET, cone_nat_body);
}

fn cone_nat_body(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    // IPv6 off: the TAP's router solicitations / MLD reports (multicast) could legitimately go
    // through the supernode and disturb the relayed_packets check below.
    let h1 = tb.add_nat_host("e1", Nat::Cone, false)?;
    let h2 = tb.add_nat_host("e2", Nat::Cone, false)?;
    let sn = start_sn(tb, &sn_host, &SupernodeConfig::default())?;

    let t0 = Instant::now();
    let cfg = EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()); // address_mode = auto
    let e1 = tb.start_edge(&h1, &cfg)?;
    let e2 = tb.start_edge(&h2, &cfg)?;
    let ip1 = e1.wait_vpn_ip(tb, Duration::from_secs(15))?;
    let ip2 = e2.wait_vpn_ip(tb, Duration::from_secs(15))?;
    tb.figure(&format!(
        "auto addresses e1 {ip1}, e2 {ip2} after {}",
        secs(t0.elapsed())
    ));
    ensure!(ip1 != ip2, "both edges were given {ip1}");
    let pool = Ipv4Addr::new(10, 128, 0, 0)..=Ipv4Addr::new(10, 255, 255, 0);
    ensure!(
        pool.contains(&ip1) && pool.contains(&ip2),
        "auto addresses {ip1}, {ip2} outside the default pool 10.128.0.0-10.255.255.0"
    );
    ensure!(
        ip1.octets()[..3] == ip2.octets()[..3],
        "auto addresses {ip1}, {ip2} are not in one /24 (one /24 per community)"
    );

    first_ping(tb, &e1, ip2, Duration::from_secs(15))?;
    let to_first = t0.elapsed();
    tb.figure(&format!(
        "time to first ping {} (requirement: 5 s)",
        secs(to_first)
    ));
    ensure!(
        to_first <= Duration::from_secs(5),
        "first ping over the VPN took {} after starting the edges; required within 5 s",
        secs(to_first)
    );
    ping_all(&e2, ip1, 3, &[])?;

    wait_paths(tb, &[&e1, &e2], "direct", Duration::from_secs(20))?;
    tb.figure(&format!("time to direct path {}", secs(t0.elapsed())));
    // the direct address must be the peer's public (NAT) address
    for (e, other) in [(&e1, &h2), (&e2, &h1)] {
        let peers = e.peers()?;
        let p = peers
            .iter()
            .find(|p| p.is_direct())
            .context("no direct peer")?;
        let addr: SocketAddr = p
            .addr
            .as_deref()
            .context("direct peer without addr")?
            .parse()
            .context("peer addr is not ip:port")?;
        tb.step(&format!(
            "{} reaches {} directly at {addr}",
            e.role,
            p.name()
        ));
        ensure!(
            addr.ip() == std::net::IpAddr::V4(other.public_ip),
            "{}'s direct path to {} uses {addr}, expected the NAT address {}",
            e.role,
            other.role,
            other.public_ip
        );
    }

    let before = sn.info()?.stats;
    let p = ping_all(&e1, ip2, 20, &[])?;
    let after = sn.info()?.stats;
    tb.figure(&format!(
        "20 pings on the direct path: {}, supernode relayed_packets {} -> {}",
        p.summary(),
        before.relayed_packets,
        after.relayed_packets
    ));
    ensure!(
        after.relayed_packets == before.relayed_packets,
        "the supernode relayed {} packets while 20 pings crossed a direct path",
        after.relayed_packets - before.relayed_packets
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// c. two symmetric NATs: relayed

#[test]
fn symmetric_nat_relayed() {
    run_e2e("e2e::symmetric_nat_relayed", BUDGET, symmetric_body);
}

fn symmetric_body(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let h1 = tb.add_nat_host("e1", Nat::Symmetric, false)?;
    let h2 = tb.add_nat_host("e2", Nat::Symmetric, false)?;
    let sn = start_sn(tb, &sn_host, &SupernodeConfig::default())?;
    let t0 = Instant::now();
    let e1 = static_edge(tb, &h1, &sn, "10.200.0.1/24")?;
    let e2 = static_edge(tb, &h2, &sn, "10.200.0.2/24")?;
    let (ip1, ip2) = (Ipv4Addr::new(10, 200, 0, 1), Ipv4Addr::new(10, 200, 0, 2));
    e1.wait_registered(tb, Duration::from_secs(15))?;
    e2.wait_registered(tb, Duration::from_secs(15))?;
    first_ping(tb, &e1, ip2, Duration::from_secs(20))?;
    tb.figure(&format!("time to first ping {}", secs(t0.elapsed())));
    ping_all(&e2, ip1, 3, &[])?;

    wait_paths(tb, &[&e1, &e2], "relayed", Duration::from_secs(15))?;
    tb.figure(&format!("path relayed after {}", secs(t0.elapsed())));

    let before = sn.info()?.stats;
    let p = ping_all(&e1, ip2, 20, &[])?;
    let after = sn.info()?.stats;
    let grew = after.relayed_packets.saturating_sub(before.relayed_packets);
    tb.figure(&format!(
        "20 pings relayed: {}, supernode relayed_packets +{grew}",
        p.summary()
    ));
    ensure!(
        grew >= 20,
        "supernode relayed_packets grew by only {grew} while 20 pings (40 packets) crossed"
    );
    // still relayed: symmetric NATs cannot be punched
    for e in [&e1, &e2] {
        for p in e.peers()? {
            ensure!(
                p.path == "relayed",
                "{} lists {} with path {} behind two symmetric NATs:\n{}",
                e.role,
                p.name(),
                p.path,
                peer_tables(&[&e1, &e2])
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// d. supernode restart under a continuous ping

#[test]
fn supernode_restart() {
    run_e2e(
        "e2e::supernode_restart",
        Duration::from_secs(80),
        restart_body,
    );
}

fn restart_body(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let h1 = tb.add_nat_host("e1", Nat::Cone, false)?;
    let h2 = tb.add_nat_host("e2", Nat::Cone, false)?;
    let sn = start_sn(tb, &sn_host, &SupernodeConfig::default())?;
    let e1 = static_edge(tb, &h1, &sn, "10.200.0.1/24")?;
    let e2 = static_edge(tb, &h2, &sn, "10.200.0.2/24")?;
    e1.wait_registered(tb, Duration::from_secs(15))?;
    e2.wait_registered(tb, Duration::from_secs(15))?;
    first_ping(
        tb,
        &e1,
        Ipv4Addr::new(10, 200, 0, 2),
        Duration::from_secs(15),
    )?;
    wait_paths(tb, &[&e1, &e2], "direct", Duration::from_secs(20))?;
    let keys = [e1.info()?.public_key, e2.info()?.public_key];

    let bg = BackgroundPing::start(&e1.ns, "10.200.0.2", 75, 0.2, 30, &[])?;
    sleep(Duration::from_secs(2))?;
    tb.step("stopping the supernode (SIGTERM)");
    let stopped = sn.stop()?;
    tb.figure(&format!(
        "supernode exited {} after SIGTERM",
        secs(stopped.took)
    ));
    ensure!(
        !stopped.killed,
        "the supernode did not exit within 2 s of SIGTERM (had to SIGKILL it)"
    );
    ensure!(
        stopped.status.is_some_and(|s| s.success()),
        "the supernode did not exit cleanly on SIGTERM: {:?}",
        stopped.status
    );
    ensure!(
        !sn.socket().exists(),
        "the supernode left its socket {} behind",
        sn.socket().display()
    );
    sleep(Duration::from_secs(3))?;
    tb.step("starting the supernode again with the same config");
    let restarted = Instant::now();
    sn.start()?;
    sn.wait_ready(tb, Duration::from_secs(10))?;

    let wait_start = restarted.elapsed();
    let rereg = tb.wait_until(
        "both edges to be registered with the new supernode",
        Duration::from_secs(30).saturating_sub(restarted.elapsed()),
        Duration::from_millis(200),
        || {
            if !(e1.info()?.registered && e2.info()?.registered) {
                return Ok(false);
            }
            let listed = sn.edges()?;
            Ok(keys
                .iter()
                .all(|k| listed.iter().any(|x| &x.public_key == k)))
        },
    )?;
    tb.figure(&format!(
        "edges re-registered {} after the supernode restarted",
        secs(wait_start + rereg)
    ));

    let p = bg.finish()?;
    tb.figure(&format!(
        "continuous ping across the restart: {} sent, {} received, missing seqs {:?}",
        p.transmitted,
        p.received,
        p.missing_seqs()
    ));
    ensure!(
        p.lost() <= 1 && p.received >= 74,
        "pings lost across the supernode restart: {} of {} (missing seqs {:?})",
        p.lost(),
        p.transmitted,
        p.missing_seqs()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// e. IPv6 link-local (neighbour discovery = multicast) across the mesh

#[test]
fn ipv6_link_local_multicast() {
    run_e2e("e2e::ipv6_link_local_multicast", BUDGET, ipv6_body);
}

fn ipv6_body(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let h1 = tb.add_public_host("e1", true)?;
    let h2 = tb.add_public_host("e2", true)?;
    let sn = start_sn(tb, &sn_host, &SupernodeConfig::default())?;
    let e1 = static_edge(tb, &h1, &sn, "10.200.0.1/24")?;
    let e2 = static_edge(tb, &h2, &sn, "10.200.0.2/24")?;
    e1.wait_registered(tb, Duration::from_secs(15))?;
    e2.wait_registered(tb, Duration::from_secs(15))?;
    first_ping(
        tb,
        &e1,
        Ipv4Addr::new(10, 200, 0, 2),
        Duration::from_secs(15),
    )?;

    let mut lls = Vec::new();
    for e in [&e1, &e2] {
        let mut got = None;
        let took = tb.wait_until(
            &format!(
                "a non-tentative link-local address on {}'s {}",
                e.role,
                e.tap()
            ),
            Duration::from_secs(15),
            POLL,
            || {
                e.ensure_running()?;
                match nsnet::link_local(&e.ns, e.tap())? {
                    Some((a, true)) => {
                        got = Some(a);
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            },
        )?;
        let a = got.expect("set");
        tb.step(&format!(
            "{} {}: {a} (DAD done after {})",
            e.role,
            e.tap(),
            secs(took)
        ));
        lls.push(a);
    }
    let t = Instant::now();
    for (from, to) in [(&e1, lls[1]), (&e2, lls[0])] {
        let target = to.to_string();
        let p = ping(&from.ns, &target, 3, 0.2, 10, &["-6", "-I", from.tap()])?;
        ensure!(
            p.received >= 3,
            "IPv6 link-local ping {} -> {target}%{}: {} (neighbour discovery multicast not \
             carried?)\n{}",
            from.role,
            from.tap(),
            p.summary(),
            p.output
        );
        tb.step(&format!("{} -> {target}: {}", from.role, p.summary()));
    }
    tb.figure(&format!(
        "IPv6 link-local pings both ways done in {}",
        secs(t.elapsed())
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// f. wrong secret

/// The rogue's secret: a passphrase, so its edge derives its keys through Argon2id at the default cost
/// (64 MiB, 3 passes): the one scenario that runs the default-cost path.
const ROGUE_KEY: &str = "not-the-secret";

/// The closed community's secret in (1): a passphrase, at the lowest cost allowed, given to the edges
/// (kdf_memory, kdf_passes) and to `weft-edge admission-key` alike: both sides must derive the same
/// admission key.
const PASSPHRASE: &str = "a passphrase for the closed community, tested at the floor cost";
const LOW_COST: [&str; 2] = ["community.kdf_memory=8192", "community.kdf_passes=1"];

fn rogue_edge(tb: &Testbed, host: &weft_e2e::Host, sn: &Supernode) -> Result<Edge> {
    tb.start_edge(
        host,
        &EdgeConfig::new(COMMUNITY, ROGUE_KEY, &sn.addr())
            .static_ip("10.200.0.66/24")
            .description("rogue"),
    )
}

/// (1) closed community: the supernode checks the admission key. The good edges' secret is a
/// passphrase with a cost of their own, and the admission key made with that cost admits them.
#[test]
fn wrong_secret_closed_community() {
    run_e2e("e2e::wrong_secret_closed_community", BUDGET, closed_body);
}

fn closed_body(tb: &Testbed) -> Result<()> {
    let key = weft_e2e::daemon::admission_key_with(
        COMMUNITY,
        PASSPHRASE,
        &["--kdf-memory", "8192", "--kdf-passes", "1"],
    )?;
    let passphrase_edge = |host: &weft_e2e::Host, sn: &Supernode, cidr: &str| {
        let mut cfg = EdgeConfig::new(COMMUNITY, PASSPHRASE, &sn.addr()).static_ip(cidr);
        cfg.overrides.extend(LOW_COST.iter().map(|o| o.to_string()));
        tb.start_edge(host, &cfg)
    };
    let file = tb.dir().join("communities");
    std::fs::write(&file, format!("# e2e test\n{COMMUNITY} {key}\n"))?;
    let sn_host = tb.add_public_host("sn", false)?;
    let h1 = tb.add_public_host("e1", false)?;
    let h2 = tb.add_public_host("e2", false)?;
    let hr = tb.add_public_host("rogue", false)?;
    let sn = start_sn(
        tb,
        &sn_host,
        &SupernodeConfig {
            community_file: Some(file),
            ..Default::default()
        },
    )?;
    let e1 = passphrase_edge(&h1, &sn, "10.200.0.1/24")?;
    let e2 = passphrase_edge(&h2, &sn, "10.200.0.2/24")?;
    let rogue = rogue_edge(tb, &hr, &sn)?;
    rogue.wait_ready(tb, Duration::from_secs(10))?;
    e1.wait_registered(tb, Duration::from_secs(15))?;
    e2.wait_registered(tb, Duration::from_secs(15))?;
    first_ping(
        tb,
        &e1,
        Ipv4Addr::new(10, 200, 0, 2),
        Duration::from_secs(15),
    )?;
    ping_all(&e2, Ipv4Addr::new(10, 200, 0, 1), 3, &[])?;

    let rogue_key = rogue.info()?.public_key;
    let check_rogue_out = || -> Result<()> {
        let i = rogue.info()?;
        if i.registered || i.supernodes.iter().any(|s| s.registered) {
            return Err(Fatal(format!(
                "the rogue edge (wrong secret) is registered: {:?}",
                i.supernodes
            ))
            .into());
        }
        if sn.edges()?.iter().any(|x| x.public_key == rogue_key) {
            return Err(Fatal("the supernode lists the rogue edge".into()).into());
        }
        Ok(())
    };
    tb.wait_until(
        "the supernode to reject the rogue's registration",
        Duration::from_secs(15),
        POLL,
        || {
            check_rogue_out()?;
            Ok(sn.info()?.stats.rejected_registrations >= 1)
        },
    )?;
    // and it stays out
    for _ in 0..10 {
        check_rogue_out()?;
        sleep(Duration::from_millis(300))?;
    }
    let st = sn.info()?.stats;
    tb.figure(&format!(
        "rogue kept out: rejected_registrations {}, registrations {}",
        st.rejected_registrations, st.registrations
    ));
    let good: Vec<_> = sn.edges()?;
    ensure!(
        good.len() == 2,
        "the supernode lists {} edges, expected the 2 good ones",
        good.len()
    );
    // the good edges still talk
    ping_all(&e1, Ipv4Addr::new(10, 200, 0, 2), 3, &[])?;
    Ok(())
}

/// (2) open supernode: the rogue registers, but the edges' end-to-end authentication keeps it
/// out, and forged packets are dropped without disturbing the good edges.
#[test]
fn wrong_secret_open_community() {
    run_e2e("e2e::wrong_secret_open_community", BUDGET, open_body);
}

/// A distinctive ping payload (`ping -p`), looked for on the rogue's TAP.
const PATTERN_HEX: &str = "c0ffee15bad0beef";
const PATTERN: [u8; 8] = [0xc0, 0xff, 0xee, 0x15, 0xba, 0xd0, 0xbe, 0xef];

fn open_body(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let h1 = tb.add_public_host("e1", false)?;
    let h2 = tb.add_public_host("e2", false)?;
    let hr = tb.add_public_host("rogue", false)?;
    let sn = start_sn(tb, &sn_host, &SupernodeConfig::default())?;
    let e1 = tb.start_edge(
        &h1,
        &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr())
            .static_ip("10.200.0.1/24")
            .bind("0.0.0.0:7801"),
    )?;
    let e2 = static_edge(tb, &h2, &sn, "10.200.0.2/24")?;
    let (ip1, ip2) = (Ipv4Addr::new(10, 200, 0, 1), Ipv4Addr::new(10, 200, 0, 2));
    e1.wait_registered(tb, Duration::from_secs(15))?;
    e2.wait_registered(tb, Duration::from_secs(15))?;
    first_ping(tb, &e1, ip2, Duration::from_secs(15))?;
    ping_all(&e2, ip1, 3, &[])?;
    wait_paths(tb, &[&e1, &e2], "direct", Duration::from_secs(20))?;
    // the rogue's handshakes must show up as bad MACs (dropped unanswered), rejected handshakes or
    // authentication drops
    let auth_refused = |e: &Edge| -> Result<u64> {
        let st = e.info()?.stats;
        Ok(st.dropped_bad_mac + st.handshakes_rejected + st.dropped_auth)
    };
    let refused0 = auth_refused(&e1)? + auth_refused(&e2)?;

    tb.step("starting the rogue edge (same community, wrong secret)");
    let rogue = rogue_edge(tb, &hr, &sn)?;
    rogue.wait_registered(tb, Duration::from_secs(15))?;
    let rogue_key = rogue.info()?.public_key;
    let good = [&e1, &e2];
    let check_not_up = || -> Result<()> {
        for e in good {
            if let Some(p) = e.peers()?.iter().find(|p| p.public_key == rogue_key) {
                if p.is_up() {
                    return Err(Fatal(format!(
                        "{} lists the rogue edge as up (path {})",
                        e.role, p.path
                    ))
                    .into());
                }
            }
        }
        if let Some(p) = rogue.peers()?.iter().find(|p| p.is_up()) {
            return Err(Fatal(format!(
                "the rogue lists {} as up (path {})",
                p.name(),
                p.path
            ))
            .into());
        }
        Ok(())
    };
    tb.wait_until(
        "the rogue to learn the good edges from the supernode",
        Duration::from_secs(15),
        POLL,
        || {
            check_not_up()?;
            Ok(rogue.peers()?.len() >= 2)
        },
    )
    .with_context(|| format!("rogue's peers: {}", peer_tables(&[&rogue])))?;
    tb.wait_until(
        "the good edges' dropped_bad_mac, handshakes_rejected or dropped_auth to grow",
        Duration::from_secs(15),
        POLL,
        || {
            check_not_up()?;
            Ok(auth_refused(&e1)? + auth_refused(&e2)? > refused0)
        },
    )?;
    for ip in [ip1, ip2] {
        let p = ping(&rogue.ns, &ip.to_string(), 3, 0.2, 3, &[])?;
        ensure!(
            p.received == 0,
            "the rogue pinged {ip} over the VPN: {}",
            p.summary()
        );
    }
    check_not_up()?;
    tb.step("rogue cannot ping the good edges");

    // forged packets at e1's UDP port while e1 and e2 ping with a distinctive payload
    let capture = Capture::start(&rogue.ns, rogue.tap(), &PATTERN)?;
    let link0 = nsnet::link_stats(&rogue.ns, rogue.tap())?;
    let before = e1.info()?.stats;
    let bg = BackgroundPing::start(&e1.ns, &ip2.to_string(), 50, 0.1, 20, &["-p", PATTERN_HEX])?;
    let sock = nsnet::udp_socket_in(&rogue.ns, "0.0.0.0:0")?;
    let target = SocketAddr::from((h1.ip, 7801));
    let mut rng = XorShift::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    );
    const N: u64 = 50;
    for _ in 0..N {
        let len = 1 + (rng.next_u64() % 200) as usize;
        let mut junk = vec![0u8; len];
        rng.fill(&mut junk);
        sock.send_to(&junk, target)?;
        std::thread::sleep(Duration::from_millis(2));
    }
    for i in 0..N {
        // version 1, type 3 (DATA), 2 bytes, 4-byte receiver index, 8-byte counter, junk
        let mut pkt = vec![1u8, 3, 0, 0];
        pkt.extend_from_slice(&(rng.next_u64() as u32).to_le_bytes());
        pkt.extend_from_slice(&(i + 1).to_le_bytes());
        let mut junk = [0u8; 64];
        rng.fill(&mut junk);
        pkt.extend_from_slice(&junk);
        sock.send_to(&pkt, target)?;
        std::thread::sleep(Duration::from_millis(2));
    }
    tb.wait_until(
        "e1 to count the forged packets as dropped",
        Duration::from_secs(10),
        POLL,
        || {
            check_not_up()?;
            Ok(e1.info()?.stats.refused() >= before.refused() + 2 * N)
        },
    )
    .with_context(|| {
        format!(
            "e1 stats before {:?}, now {:?}",
            before,
            e1.info().map(|i| i.stats)
        )
    })?;
    let after = e1.info()?.stats;
    tb.figure(&format!(
        "{} forged packets: e1 dropped_malformed +{}, dropped_auth +{}, dropped_unknown_session +{}, \
         dropped_replay +{}, handshakes_rejected +{}",
        2 * N,
        after.dropped_malformed - before.dropped_malformed,
        after.dropped_auth - before.dropped_auth,
        after.dropped_unknown_session - before.dropped_unknown_session,
        after.dropped_replay - before.dropped_replay,
        after.handshakes_rejected - before.handshakes_rejected
    ));
    let p = bg.finish()?;
    tb.figure(&format!(
        "continuous ping during the forgery: {}",
        p.summary()
    ));
    ensure!(
        p.lost() == 0 && p.received >= 50,
        "the good edges lost pings during the forgery: {} of {} (missing {:?})",
        p.lost(),
        p.transmitted,
        p.missing_seqs()
    );
    let cap = capture.finish();
    let link1 = nsnet::link_stats(&rogue.ns, rogue.tap())?;
    tb.figure(&format!(
        "rogue TAP during the good edges' ping: {} frames captured, {} with the payload pattern, \
         rx_packets +{}",
        cap.frames,
        cap.matches,
        link1.rx_packets - link0.rx_packets
    ));
    ensure!(
        cap.matches == 0,
        "the rogue's TAP saw {} frames with the good edges' ping payload",
        cap.matches
    );
    check_not_up()?;
    Ok(())
}
