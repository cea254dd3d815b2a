//! weft-demo: a small Weft mesh on this machine, for a newcomer to watch.
//!
//! Builds a tiny "internet" out of network namespaces (a supernode on it, three edges each
//! behind its own cone NAT router), starts the real daemons, waits until every pair of edges is
//! connected directly (hole punching), pings every pair over the VPN, prints each edge's peer
//! table, and cleans everything up (also on Ctrl-C or an error). Ends by itself within about a
//! minute; `--keep` leaves the mesh up until Ctrl-C.
//!
//! Needs root, `ip`, `nft` and `ping`, and the daemons built first (`cargo build`).

use anyhow::{Context, Result};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use weft_e2e::daemon::{find_bin, first_ping, wait_paths};
use weft_e2e::mgmt::short_key;
use weft_e2e::{ping, secs, Edge, EdgeConfig, Nat, SupernodeConfig, Testbed};

const COMMUNITY: &str = "demo";

fn usage() {
    println!(
        "usage: weft-demo [--keep]\n\n\
         Sets up a supernode and three edges behind NAT routers in network namespaces, shows\n\
         them connecting directly and pinging each other over the VPN, then cleans up.\n\
         Needs root and the daemons built (cargo build).\n\n\
         --keep   leave the mesh running until Ctrl-C (to look around with ip netns exec)"
    );
}

fn main() {
    let mut keep = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--keep" => keep = true,
            "-h" | "--help" => {
                usage();
                return;
            }
            other => {
                eprintln!("weft-demo: unknown option {other}");
                usage();
                std::process::exit(2);
            }
        }
    }
    if let Some(why) = weft_e2e::root_problem() {
        eprintln!("weft-demo: {why}.\nRun it as root, e.g.: sudo target/debug/weft-demo");
        std::process::exit(1);
    }
    for b in ["weft-supernode", "weft-edge"] {
        if let Err(e) = find_bin(b) {
            eprintln!("weft-demo: {e:#}");
            std::process::exit(1);
        }
    }
    weft_e2e::install_interrupt_handler();

    let tb = match Testbed::new("weft-demo", Duration::from_secs(60)) {
        Ok(tb) => tb,
        Err(e) => {
            eprintln!("weft-demo: {e:#}");
            std::process::exit(1);
        }
    };
    tb.set_echo(false);
    let code = match demo(&tb, keep) {
        Ok(()) => 0,
        Err(e) if weft_e2e::interrupted() => {
            println!("\nInterrupted ({e:#}).");
            130
        }
        Err(e) => {
            eprintln!("\nweft-demo: {e:#}");
            tb.fail_report();
            1
        }
    };
    println!(
        "Cleaning up: daemons stopped, deleting the namespaces {}-*.",
        tb.id
    );
    drop(tb);
    println!("Done.");
    std::process::exit(code);
}

fn demo(tb: &Testbed, keep: bool) -> Result<()> {
    let t0 = Instant::now();
    println!("Weft demo: a supernode and three edges, each edge behind its own NAT router.\n");
    println!(
        "1. Building a small internet inside network namespaces (names start with {}-):",
        tb.id
    );
    let sn_host = tb.add_public_host("sn", false)?;
    println!("   the supernode host is on the internet at {}", sn_host.ip);
    let mut hosts = Vec::new();
    for i in 1..=3 {
        let h = tb.add_nat_host(&format!("e{i}"), Nat::Cone, false)?;
        println!(
            "   edge e{i} sits at {} in its own LAN; its NAT router's public address is {}",
            h.ip, h.public_ip
        );
        hosts.push(h);
    }

    println!("\n2. Starting weft-supernode on {}:7700.", sn_host.ip);
    let sn = tb.start_supernode(&sn_host, &SupernodeConfig::default())?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    // Its public key, which the edges pin next to its address (`weft-supernode show-key` prints it too).
    let sn_key = sn.info()?.public_key;
    println!(
        "   its public key is {}...: the edges pin it, so nobody else can speak for it",
        &sn_key[..16]
    );

    // The community's key, made the way the README says: 256 random bits, so nobody can guess it.
    let edge_bin = find_bin("weft-edge")?;
    let secret =
        weft_e2e::cmd::run_ok_with(&edge_bin.to_string_lossy(), &["new-community-key"], None)?
            .trim()
            .to_string();
    println!(
        "3. Starting three weft-edge daemons in community \"{COMMUNITY}\" with address_mode=auto\n   \
         (the supernode hands out the VPN addresses); their shared key comes from\n   \
         `weft-edge new-community-key`: {}...",
        &secret[..17]
    );
    let cfg = EdgeConfig::new(COMMUNITY, &secret, &format!("{} {sn_key}", sn.addr()));
    let edges: Vec<Edge> = hosts
        .iter()
        .map(|h| tb.start_edge(h, &cfg))
        .collect::<Result<_>>()?;
    let mut ips = Vec::new();
    for e in &edges {
        let ip = e.wait_vpn_ip(tb, Duration::from_secs(15))?;
        println!(
            "   {} got VPN address {ip} on its TAP device {}",
            e.role,
            e.tap()
        );
        ips.push(ip);
    }

    println!(
        "\n4. Waiting until every edge reaches every other one directly (NAT hole punching)..."
    );
    first_ping(tb, &edges[0], ips[1], Duration::from_secs(15))?;
    let refs: Vec<&Edge> = edges.iter().collect();
    wait_paths(tb, &refs, "direct", Duration::from_secs(30))?;
    println!(
        "   all 6 paths are direct, {} after starting the edges.",
        secs(t0.elapsed())
    );

    println!("\n5. Pinging every pair over the VPN (3 pings each):");
    for (i, from) in edges.iter().enumerate() {
        for (j, to) in ips.iter().enumerate() {
            if i == j {
                continue;
            }
            let deadline = tb.remaining().as_secs().clamp(1, 5) as u32;
            let p = ping(&from.ns, &to.to_string(), 3, 0.2, deadline, &[])?;
            let rtt = match (p.avg_ms(), min_max(&p.rtts_ms)) {
                (Some(avg), Some((lo, hi))) => {
                    format!("rtt avg {avg:.3} ms (min {lo:.3}, max {hi:.3})")
                }
                _ => "no reply".to_string(),
            };
            println!(
                "   {} -> {} ({to}): {}/{} replies, {rtt}",
                from.role, edges[j].role, p.received, p.transmitted
            );
        }
    }

    println!("\n6. Each edge's peer table (from its management API, get_edges):");
    for (e, ip) in edges.iter().zip(&ips) {
        println!("\n   {} ({ip}):", e.role);
        print_peer_table(e)?;
    }

    if keep {
        println!("\nThe mesh stays up until you press Ctrl-C. Look around, e.g.:");
        for e in &edges {
            println!("   sudo ip netns exec {} ip addr show {}", e.ns, e.tap());
        }
        println!(
            "   sudo ip netns exec {} ping {}",
            edges[0].ns,
            ips.get(1).copied().unwrap_or(Ipv4Addr::UNSPECIFIED)
        );
        while !weft_e2e::interrupted() {
            std::thread::sleep(Duration::from_millis(200));
            for e in &edges {
                e.ensure_running()?;
            }
        }
        println!();
    }
    println!(
        "\nThe demo took {}. Stopping the daemons.",
        secs(t0.elapsed())
    );
    Ok(())
}

fn min_max(v: &[f64]) -> Option<(f64, f64)> {
    let lo = v.iter().copied().reduce(f64::min)?;
    let hi = v.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

fn print_peer_table(e: &Edge) -> Result<()> {
    let peers = e.peers().context("get_edges")?;
    let mut rows = vec![[
        "PEER".to_string(),
        "VPN IP".to_string(),
        "STATE".to_string(),
        "PATH".to_string(),
        "ADDRESS".to_string(),
        "PUBLIC KEY".to_string(),
    ]];
    for p in &peers {
        rows.push([
            p.name(),
            p.ip.clone().unwrap_or_else(|| "-".into()),
            p.state.clone(),
            p.path.clone(),
            p.addr.clone().unwrap_or_else(|| "-".into()),
            format!("{}...", short_key(&p.public_key)),
        ]);
    }
    let mut width = [0usize; 6];
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("   {}", line.join("  ").trim_end());
    }
    if peers.is_empty() {
        println!("   (no peers)");
    }
    Ok(())
}
