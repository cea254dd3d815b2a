//! Several supernodes: federation, failover and stable addresses (issue 5's scenarios a, b, d, e).
//!
//! Real daemons in network namespaces, each edge behind its own NAT router (nftables), as in `e2e.rs`.
//! Needs root; without it each test prints a SKIP line.

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use weft_e2e::daemon::{first_ping, wait_paths};
use weft_e2e::wait::sleep;
use weft_e2e::{
    run_e2e, secs, BackgroundPing, Edge, EdgeConfig, Host, Nat, Supernode, SupernodeConfig,
    Testbed, COMMUNITY, SECRET,
};

/// A supernode federated with `peers`: each host's address with the key of the supernode there (or, for
/// a host given with `Some(role)`, the key of `role`'s identity instead, which that host does not hold).
fn fed_sn(tb: &Testbed, host: &Host, peers: &[(&Host, Option<&str>)]) -> Result<Supernode> {
    let mut cfg = SupernodeConfig::default();
    for (p, key_of) in peers {
        let key = match key_of {
            None => tb.supernode_key(p)?,
            Some(role) => tb.supernode_key_at(role)?,
        };
        cfg.overrides
            .push(format!("supernode.peer={}:7700 {key}", p.public_ip));
    }
    let sn = tb.start_supernode(host, &cfg)?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    Ok(sn)
}

/// Two supernodes, sn1 and sn2, each on its own public host and federated with the other.
fn federated_pair(tb: &Testbed) -> Result<(Supernode, Supernode)> {
    let h_sn1 = tb.add_public_host("sn1", false)?;
    let h_sn2 = tb.add_public_host("sn2", false)?;
    let sn1 = fed_sn(tb, &h_sn1, &[(&h_sn2, None)])?;
    let sn2 = fed_sn(tb, &h_sn2, &[(&h_sn1, None)])?;
    Ok((sn1, sn2))
}

fn edge_on(tb: &Testbed, host: &Host, sns: &[&Supernode], cidr: Option<&str>) -> Result<Edge> {
    let mut cfg = EdgeConfig::new(COMMUNITY, SECRET, &sns[0].addr());
    cfg.supernodes = sns.iter().map(|s| s.addr()).collect();
    if let Some(c) = cidr {
        cfg = cfg.static_ip(c);
    }
    tb.start_edge(host, &cfg)
}

/// The edge's `get_supernodes`.
fn supernodes(e: &Edge) -> Result<Vec<Value>> {
    let v = e.call("get_supernodes", json!({}))?;
    Ok(v.as_array()
        .context("get_supernodes: not an array")?
        .clone())
}

/// The address of the supernode the edge uses (the `active` one), if any.
fn active_supernode(e: &Edge) -> Result<Option<String>> {
    Ok(supernodes(e)?
        .iter()
        .find(|s| s["active"] == json!(true))
        .and_then(|s| s["addr"].as_str().map(str::to_string)))
}

fn sn_stat(sn: &Supernode, name: &str) -> Result<u64> {
    let v = sn.call("get_packetstats", json!({}))?;
    v[name]
        .as_u64()
        .with_context(|| format!("get_packetstats has no {name}: {v}"))
}

// ---------------------------------------------------------------------------------------------
// a. edges on different federated supernodes find each other and go direct

#[test]
fn federated_edges_go_direct() {
    run_e2e(
        "federation::federated_edges_go_direct",
        Duration::from_secs(60),
        federated_body,
    );
}

fn federated_body(tb: &Testbed) -> Result<()> {
    let (sn1, sn2) = federated_pair(tb)?;
    let ha = tb.add_nat_host("a", Nat::Cone, false)?;
    let hb = tb.add_nat_host("b", Nat::Cone, false)?;
    let t0 = Instant::now();
    let a = edge_on(tb, &ha, &[&sn1], Some("10.200.0.1/24"))?;
    let b = edge_on(tb, &hb, &[&sn2], Some("10.200.0.2/24"))?;
    first_ping(
        tb,
        &a,
        Ipv4Addr::new(10, 200, 0, 2),
        Duration::from_secs(20),
    )?;
    tb.figure(&format!(
        "A (on sn1 only) pings B (on sn2 only) {} after the edges started",
        secs(t0.elapsed())
    ));
    wait_paths(tb, &[&a, &b], "direct", Duration::from_secs(20))?;
    tb.figure(&format!("direct path {}", secs(t0.elapsed())));
    let listed = sn1.call("get_supernodes", json!({}))?;
    ensure!(
        listed[0]["state"] == json!("up") && listed[0]["edges"].as_u64() >= Some(1),
        "sn1 should see sn2 up with B announced: {listed}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// b. losing a supernode: the direct path carries on, edges move to the other one, newcomers still join

#[test]
fn supernode_failover() {
    run_e2e(
        "federation::supernode_failover",
        Duration::from_secs(90),
        failover_body,
    );
}

fn failover_body(tb: &Testbed) -> Result<()> {
    let (sn1, sn2) = federated_pair(tb)?;
    let ha = tb.add_nat_host("a", Nat::Cone, false)?;
    let hb = tb.add_nat_host("b", Nat::Cone, false)?;
    let hc = tb.add_nat_host("c", Nat::Cone, false)?;
    let a = edge_on(tb, &ha, &[&sn1, &sn2], Some("10.200.0.1/24"))?;
    let b = edge_on(tb, &hb, &[&sn1, &sn2], Some("10.200.0.2/24"))?;
    first_ping(
        tb,
        &a,
        Ipv4Addr::new(10, 200, 0, 2),
        Duration::from_secs(20),
    )?;
    wait_paths(tb, &[&a, &b], "direct", Duration::from_secs(20))?;
    tb.wait_until(
        "both edges registered with both supernodes",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            for e in [&a, &b] {
                if supernodes(e)?
                    .iter()
                    .any(|s| s["state"] != json!("registered"))
                {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )?;
    // Each edge keeps the supernode it picked first while RTTs are alike, so which one A uses depends on
    // which answered first: the one A uses is the one that dies (B may use either).
    let before = [active_supernode(&a)?, active_supernode(&b)?];
    tb.step(&format!("supernodes in use before: {before:?}"));
    let (dying, survivor, dying_name, survivor_name) = match &before[0] {
        Some(x) if *x == sn1.addr() => (&sn1, &sn2, "sn1", "sn2"),
        Some(x) if *x == sn2.addr() => (&sn2, &sn1, "sn2", "sn1"),
        other => anyhow::bail!("A reports no supernode in use before the failover: {other:?}"),
    };

    // 20 s of pings every 50 ms; A's supernode dies 5 s in.
    let bg = BackgroundPing::start(&a.ns, "10.200.0.2", 400, 0.05, 30, &[])?;
    sleep(Duration::from_secs(5))?;
    tb.step(&format!("killing {dying_name}, the supernode A uses"));
    let killed = Instant::now();
    dying.stop()?;
    tb.wait_until(
        &format!("both edges to use {survivor_name}"),
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            Ok(active_supernode(&a)? == Some(survivor.addr())
                && active_supernode(&b)? == Some(survivor.addr()))
        },
    )?;
    let failover = killed.elapsed();
    tb.figure(&format!(
        "A used {dying_name} (B {}); both edges report {survivor_name} as their supernode {} after {dying_name} was killed (required: 5 s)",
        if before[1] == before[0] { "too" } else { "already the other" },
        secs(failover)
    ));
    let p = bg.finish()?;
    let lost = p.transmitted.saturating_sub(p.received);
    tb.figure(&format!(
        "continuous ping A -> B every 50 ms across the failover: {} ({} lost = {} ms)",
        p.summary(),
        lost,
        lost * 50
    ));
    ensure!(
        failover <= Duration::from_secs(5),
        "the edges took {} to move to {survivor_name} (at most 5 s)",
        secs(failover)
    );
    ensure!(
        lost <= 20,
        "{lost} pings lost (at most 1 s of pings, 20 at 50 ms, may be lost)"
    );
    wait_paths(tb, &[&a, &b], "direct", Duration::from_secs(5))?;

    tb.step(&format!("a new edge C joins through {survivor_name}"));
    let c = edge_on(tb, &hc, &[survivor], Some("10.200.0.3/24"))?;
    first_ping(
        tb,
        &c,
        Ipv4Addr::new(10, 200, 0, 1),
        Duration::from_secs(20),
    )?;
    first_ping(
        tb,
        &c,
        Ipv4Addr::new(10, 200, 0, 2),
        Duration::from_secs(20),
    )?;
    tb.figure(&format!(
        "C (joined through {survivor_name} after the failover) reaches A and B"
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// d. an auto-assigned address stays put

#[test]
fn auto_address_is_stable() {
    run_e2e(
        "federation::auto_address_is_stable",
        Duration::from_secs(90),
        stable_ip_body,
    );
}

fn stable_ip_body(tb: &Testbed) -> Result<()> {
    let (sn1, sn2) = federated_pair(tb)?;
    let ha = tb.add_nat_host("a", Nat::Cone, false)?;
    let a = edge_on(tb, &ha, &[&sn1], None)?;
    let ip = a.wait_vpn_ip(tb, Duration::from_secs(15))?;
    tb.step(&format!("A was given {ip} by sn1"));

    tb.step("restarting A");
    a.stop()?;
    a.start()?;
    let again = a.wait_vpn_ip(tb, Duration::from_secs(15))?;
    ensure!(again == ip, "after an edge restart A got {again}, was {ip}");

    tb.step("restarting sn1");
    sn1.stop()?;
    sn1.start()?;
    sn1.wait_ready(tb, Duration::from_secs(10))?;
    a.stop()?;
    a.start()?;
    let again = a.wait_vpn_ip(tb, Duration::from_secs(15))?;
    ensure!(
        again == ip,
        "after a supernode restart A got {again}, was {ip}"
    );
    drop(a);

    tb.step("the same edge (same key) now registers with sn2 only");
    let a2 = edge_on(tb, &ha, &[&sn2], None)?;
    let again = a2.wait_vpn_ip(tb, Duration::from_secs(15))?;
    ensure!(again == ip, "through sn2 A got {again}, through sn1 {ip}");
    tb.figure(&format!(
        "A keeps {ip} across an edge restart, a supernode restart and moving to the other supernode"
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// e. a supernode that cannot prove the key it is configured with is not a peer

#[test]
fn wrong_federation_key_is_ignored() {
    run_e2e(
        "federation::wrong_federation_key_is_ignored",
        Duration::from_secs(60),
        wrong_key_body,
    );
}

fn wrong_key_body(tb: &Testbed) -> Result<()> {
    let h_sn1 = tb.add_public_host("sn1", false)?;
    let h_bad = tb.add_public_host("bad", false)?;
    let ha = tb.add_nat_host("a", Nat::Cone, false)?;
    let hm = tb.add_nat_host("m", Nat::Cone, false)?;
    // sn1 lists the impostor's address as a peer, with the key of a supernode that is not there (so only
    // the key keeps it out); the impostor lists sn1 with sn1's real key.
    let sn1 = fed_sn(tb, &h_sn1, &[(&h_bad, Some("sn-elsewhere"))])?;
    let bad = fed_sn(tb, &h_bad, &[(&h_sn1, None)])?;
    let a = edge_on(tb, &ha, &[&sn1], Some("10.200.0.1/24"))?;
    let m = edge_on(tb, &hm, &[&bad], Some("10.200.0.9/24"))?;
    a.wait_registered(tb, Duration::from_secs(15))?;
    m.wait_registered(tb, Duration::from_secs(15))?;
    let rejected = tb.wait_until(
        "sn1 to reject the impostor's announcements",
        Duration::from_secs(15),
        Duration::from_millis(200),
        || Ok(sn_stat(&sn1, "federation_rejected")? > 0),
    );
    rejected?;
    sleep(Duration::from_secs(2))?;
    ensure!(
        sn_stat(&sn1, "federation_received")? == 0,
        "sn1 accepted a message from a supernode without the configured key"
    );
    ensure!(
        sn_stat(&sn1, "federation_handshakes")? == 0
            && sn_stat(&bad, "federation_handshakes")? == 0,
        "a federation session was made with the impostor"
    );
    let peers = sn1.call("get_supernodes", json!({}))?;
    ensure!(
        peers[0]["state"] == json!("unknown") && peers[0]["edges"] == json!(0),
        "sn1 must not count the impostor as a peer: {peers}"
    );
    ensure!(
        a.peers()?.is_empty(),
        "A learned about the impostor's edge: {:?}",
        a.peers()?
    );
    tb.figure(&format!(
        "sn1 rejected {} federation packets from a supernode without the configured key; A knows no peer",
        sn_stat(&sn1, "federation_rejected")?
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// a'. when direct cannot work, relaying crosses the federation

#[test]
fn relay_across_supernodes() {
    run_e2e(
        "federation::relay_across_supernodes",
        Duration::from_secs(60),
        relay_across_body,
    );
}

fn relay_across_body(tb: &Testbed) -> Result<()> {
    let (sn1, sn2) = federated_pair(tb)?;
    let ha = tb.add_nat_host("a", Nat::Symmetric, false)?;
    let hb = tb.add_nat_host("b", Nat::Symmetric, false)?;
    let a = edge_on(tb, &ha, &[&sn1], Some("10.200.0.1/24"))?;
    let b = edge_on(tb, &hb, &[&sn2], Some("10.200.0.2/24"))?;
    let t0 = Instant::now();
    first_ping(
        tb,
        &a,
        Ipv4Addr::new(10, 200, 0, 2),
        Duration::from_secs(20),
    )?;
    tb.figure(&format!(
        "A (sn1, symmetric NAT) pings B (sn2, symmetric NAT) after {}",
        secs(t0.elapsed())
    ));
    wait_paths(tb, &[&a, &b], "relayed", Duration::from_secs(15))?;
    let before = [
        sn_stat(&sn1, "relayed_packets")?,
        sn_stat(&sn2, "relayed_packets")?,
    ];
    let p = weft_e2e::ping(&a.ns, "10.200.0.2", 20, 0.1, 15, &[])?;
    let after = [
        sn_stat(&sn1, "relayed_packets")?,
        sn_stat(&sn2, "relayed_packets")?,
    ];
    ensure!(
        p.received == 20,
        "only {} of 20 pings crossed the federation:\n{}",
        p.received,
        p.output
    );
    let grew = [after[0] - before[0], after[1] - before[1]];
    tb.figure(&format!(
        "20 pings relayed A -> sn1 -> sn2 -> B and back: {}; relayed_packets sn1 +{}, sn2 +{}",
        p.summary(),
        grew[0],
        grew[1]
    ));
    ensure!(
        grew[0] >= 40 && grew[1] >= 40,
        "each supernode should relay both directions of 20 pings (40 packets), got {grew:?}"
    );
    Ok(())
}
