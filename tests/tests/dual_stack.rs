//! A dual-stack supernode (`bind = [::]:7700`) and an edge on a dual-stack socket (`bind = [::]:0`) with
//! IPv4 peers (issue 13, dual stack): IPv4 addresses stay IPv4 everywhere (no `::ffff:` mapped forms in
//! registrations, introductions and paths), so IPv4 pairs behind cone NATs go direct, and the edge on
//! `[::]` registers with an IPv4 supernode address.
//!
//! Needs root (network namespaces) and the daemon binaries built, like `e2e.rs`.

use anyhow::{ensure, Context, Result};
use std::time::Duration;
use weft_e2e::daemon::first_ping;
use weft_e2e::{run_e2e, EdgeConfig, Nat, SupernodeConfig, Testbed, COMMUNITY, SECRET};

const BUDGET: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

#[test]
fn ipv4_edges_go_direct_through_a_dual_stack_supernode() {
    run_e2e(
        "dual_stack::ipv4_edges_go_direct_through_a_dual_stack_supernode",
        BUDGET,
        body,
    );
}

fn body(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let sn = tb.start_supernode(
        &sn_host,
        &SupernodeConfig {
            overrides: vec!["connection.bind=[::]:7700".into()],
            ..Default::default()
        },
    )?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let h1 = tb.add_nat_host("e1", Nat::Cone, false)?;
    let h2 = tb.add_nat_host("e2", Nat::Cone, false)?;
    let e1 = tb.start_edge(
        &h1,
        &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()).static_ip("10.200.0.1/24"),
    )?;
    // e2 on a dual-stack socket, talking to the IPv4 address of the supernode.
    let e2 = tb.start_edge(
        &h2,
        &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr())
            .static_ip("10.200.0.2/24")
            .bind("[::]:0"),
    )?;
    e1.wait_registered(tb, Duration::from_secs(15))?;
    e2.wait_registered(tb, Duration::from_secs(15))?;
    let edges = sn.edges()?;
    for e in &edges {
        let addr = e.addr.as_deref().unwrap_or("");
        ensure!(
            !addr.contains("::ffff:") && addr.starts_with("203.0.113."),
            "the supernode names an IPv4 edge {addr}"
        );
    }
    first_ping(tb, &e1, "10.200.0.2".parse()?, Duration::from_secs(15))?;
    tb.wait_until(
        "both paths to go direct",
        Duration::from_secs(20),
        POLL,
        || {
            let mut direct = true;
            for e in [&e1, &e2] {
                let peers = e.peers()?;
                direct &= !peers.is_empty() && peers.iter().all(|p| p.is_direct());
            }
            Ok(direct)
        },
    )?;
    for e in [&e1, &e2] {
        for p in e.peers()? {
            let a = p.addr.context("a direct path has an address")?;
            ensure!(!a.contains("::ffff:"), "{} reaches its peer at {a}", e.role);
        }
    }
    tb.figure(&format!(
        "dual-stack supernode: edges registered as {:?}; both paths direct",
        edges.iter().map(|e| e.addr.clone()).collect::<Vec<_>>()
    ));
    Ok(())
}
