//! The authenticated edge-to-supernode channel end to end (issue 12): an on-path host forges the
//! supernode's replies to an edge; edges pin the supernode's key (configured, learned on first use, or
//! wrong); a stranger registers under another edge's key.
//!
//! Needs root (network namespaces) and the daemon binaries built, like `e2e.rs`.

mod attack;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use weft_e2e::daemon::first_ping;
use weft_e2e::{
    find_bin, ping, run_e2e, EdgeConfig, Nat, SupernodeConfig, Testbed, COMMUNITY, SECRET,
};
use weft_proto::keys::{CommunityId, PublicKey, StaticKeypair};
use weft_proto::wire::{
    Ipv4Net, MacAddr, NakReason, PeerInfo, PeerRevoked, Register, RegisterAck, RegisterNak,
    SupernodePong, ADMISSION_TAG_LEN,
};

const BUDGET: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(50);

#[test]
fn forged_supernode_replies_from_the_path_are_ignored() {
    run_e2e(
        "control_channel::forged_supernode_replies_from_the_path_are_ignored",
        BUDGET,
        forged_replies,
    );
}

fn port_of(bind: &Option<String>) -> Result<u16> {
    let b = bind.as_deref().context("no bind address in get_info")?;
    Ok(b.parse::<SocketAddr>()?.port())
}

fn forged_replies(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let sn = tb.start_supernode(&sn_host, &SupernodeConfig::default())?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let a_host = tb.add_nat_host("a", Nat::Cone, false)?;
    let b_host = tb.add_nat_host("b", Nat::Cone, false)?;
    let a = tb.start_edge(&a_host, &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()))?;
    let b = tb.start_edge(&b_host, &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()))?;
    a.wait_registered(tb, Duration::from_secs(15))?;
    b.wait_registered(tb, Duration::from_secs(15))?;
    let a_info = a.info()?;
    let b_info = b.info()?;
    let a_ip = a_info.ipv4().context("A has no address")?;
    let b_ip = b_info.ipv4().context("B has no address")?;
    first_ping(tb, &a, b_ip, Duration::from_secs(15))?;

    // A's NAT router is on the path: it speaks for the supernode, to A's LAN address and port.
    let router = a_host.router_ns.clone().context("A has no router")?;
    let sn_addr: SocketAddr = sn.addr().parse()?;
    let a_lan = SocketAddr::from((a_host.ip, port_of(&a_info.bind)?));
    let community = CommunityId::from_name(COMMUNITY);
    let ka: PublicKey = a_info.public_key.parse().map_err(anyhow::Error::msg)?;
    let kb: PublicKey = b_info.public_key.parse().map_err(anyhow::Error::msg)?;
    let evil: SocketAddr = "203.0.113.99:4444".parse()?;
    let mut forged = Vec::new();
    let mut m = Vec::new();
    RegisterAck {
        community,
        public_key: ka,
        counter: u64::MAX,
        observed: evil,
        assigned_ip: Some(Ipv4Net {
            addr: Ipv4Addr::new(10, 66, 66, 66),
            prefix: 8,
        }),
        lifetime_secs: 65,
        boot_id: 999,
        introduced_only: false,
    }
    .encode(&mut m);
    forged.push(m);
    let mut m = Vec::new();
    RegisterNak {
        community,
        public_key: ka,
        counter: u64::MAX,
        reason: NakReason::KeyNotAllowed,
    }
    .encode(&mut m);
    forged.push(m);
    let mut m = Vec::new();
    PeerInfo {
        community,
        punch: true,
        public_key: kb,
        mac: MacAddr([2, 6, 6, 6, 6, 6]),
        ip: None,
        observed: evil,
        local_addrs: vec![evil],
        description: "evil".into(),
    }
    .encode(&mut m);
    forged.push(m);
    let mut m = Vec::new();
    PeerRevoked {
        community,
        public_key: kb,
    }
    .encode(&mut m);
    forged.push(m);
    let mut m = Vec::new();
    SupernodePong {
        nonce: 0,
        boot_id: 999,
        load_permille: 1000,
    }
    .encode(&mut m);
    forged.push(m);
    let before = a.info()?.stats.dropped_unauthenticated;
    attack::spoof(&router, sn_addr, a_lan, &forged)?;
    tb.step(&format!(
        "{} forged supernode replies sent to A from its router as {sn_addr}",
        forged.len()
    ));
    tb.wait_until(
        "A to count the forgeries",
        Duration::from_secs(5),
        POLL,
        || Ok(a.info()?.stats.dropped_unauthenticated >= before + forged.len() as u64),
    )?;
    let after = a.info()?;
    ensure!(
        after.stats.dropped_unauthenticated == before + forged.len() as u64,
        "A counted {} forgeries, {} were sent",
        after.stats.dropped_unauthenticated - before,
        forged.len()
    );
    ensure!(after.registered, "a forged NAK cut A off");
    ensure!(
        after.ipv4() == Some(a_ip),
        "a forged ACK moved A's address from {a_ip} to {:?}",
        after.ip
    );
    let addr = weft_e2e::cmd::run(
        "ip",
        &["-n", &a_host.ns, "-4", "addr", "show", "dev", "wft0"],
        Duration::from_secs(5),
    )?;
    ensure!(
        addr.stdout.contains(&a_ip.to_string()) && !addr.stdout.contains("10.66.66.66"),
        "A's TAP device: {}",
        addr.stdout
    );
    let peers = a.peers()?;
    let pb = peers
        .iter()
        .find(|p| p.public_key == b_info.public_key)
        .context("a forged PEER_REVOKED made A forget B")?;
    ensure!(
        pb.description != "evil",
        "a forged PEER_INFO renamed B: {pb:?}"
    );
    let p = ping(&a.ns, &b_ip.to_string(), 20, 0.05, 10, &[])?;
    ensure!(
        p.received == 20,
        "A -> B after the forgeries: {} of 20 replies",
        p.received
    );
    let log = std::fs::read_to_string(a.log_path())?;
    for bad in [
        "revoked",
        "refused registration",
        "restarted",
        "10.66.66.66",
    ] {
        ensure!(
            !log.contains(bad),
            "A's log shows a forgery was believed ({bad}):\n{}",
            a.log_tail(20)
        );
    }
    tb.figure(&format!(
        "{} forged replies from the path: all counted, none believed; A -> B 20/20",
        forged.len()
    ));
    Ok(())
}

#[test]
fn supernode_key_is_pinned_learned_and_checked() {
    run_e2e(
        "control_channel::supernode_key_is_pinned_learned_and_checked",
        BUDGET,
        pinning,
    );
}

/// `weft-supernode show-key --state-dir DIR`.
fn show_key(dir: &std::path::Path) -> Result<String> {
    let out = std::process::Command::new(find_bin("weft-supernode")?)
        .args(["show-key", "--state-dir", dir.to_str().expect("utf-8")])
        .output()?;
    ensure!(out.status.success(), "show-key: {out:?}");
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

fn pinning(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let sn = tb.start_supernode(&sn_host, &SupernodeConfig::default())?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let key = sn.info()?.public_key;
    let shown = show_key(&tb.dir().join("state").join("sn"))?;
    ensure!(
        key == shown && key.len() == 64,
        "get_info says {key}, show-key says {shown}"
    );
    tb.step(&format!("the supernode's key: {key}"));

    // Pinned in the configuration: registers, and says nothing about trusting on first use.
    let h1 = tb.add_public_host("pinned", false)?;
    let pinned = tb.start_edge(
        &h1,
        &EdgeConfig::new(COMMUNITY, SECRET, &format!("{} {key}", sn.addr())),
    )?;
    pinned.wait_registered(tb, Duration::from_secs(15))?;
    let log = std::fs::read_to_string(pinned.log_path())?;
    ensure!(
        !log.contains("trusted on first use"),
        "a pinned edge trusted on first use:\n{}",
        pinned.log_tail(10)
    );

    // Unpinned: learns the key, says so loudly, stores it.
    let h2 = tb.add_public_host("tofu", false)?;
    let tofu = tb.start_edge(&h2, &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()))?;
    tofu.wait_registered(tb, Duration::from_secs(15))?;
    let log = std::fs::read_to_string(tofu.log_path())?;
    ensure!(
        log.contains("trusted on first use") && log.contains(&key),
        "no warning about the key learned on first use:\n{}",
        tofu.log_tail(10)
    );
    let stored =
        std::fs::read_to_string(tb.dir().join("state").join("tofu").join("supernode-keys"))?;
    ensure!(
        stored.contains(&format!("{} {key}", sn.addr())),
        "stored keys: {stored}"
    );
    let sns = tofu.call("get_supernodes", json!({}))?;
    ensure!(
        sns[0]["key"] == key.as_str() && sns[0]["session"] == true,
        "get_supernodes: {sns}"
    );

    // Pinned to a wrong key: never registers, says which key it saw and what to check.
    let wrong = StaticKeypair::from_private([0x42; 32]).public.to_string();
    let h3 = tb.add_public_host("wrong", false)?;
    let bad = tb.start_edge(
        &h3,
        &EdgeConfig::new(COMMUNITY, SECRET, &format!("{} {wrong}", sn.addr())),
    )?;
    tb.wait_until(
        "the wrongly pinned edge to report the mismatch",
        Duration::from_secs(30),
        POLL,
        || {
            let sns = bad.call("get_supernodes", json!({}))?;
            Ok(sns[0]["key_mismatch"] == key.as_str())
        },
    )?;
    ensure!(!bad.info()?.registered, "registered with a wrong pin");
    let log = std::fs::read_to_string(bad.log_path())?;
    ensure!(
        log.contains("does not answer to the pinned key") && log.contains(&key),
        "no error about the mismatch:\n{}",
        bad.log_tail(10)
    );
    ensure!(
        !sn.edges()?.iter().any(|e| e.description == "wrong"),
        "the supernode lists the wrongly pinned edge"
    );
    // A bad key in the configuration is refused at start, naming file, line and option.
    let h4 = tb.add_public_host("typo", false)?;
    let typo = tb.start_edge(
        &h4,
        &EdgeConfig::new(COMMUNITY, SECRET, &format!("{} not-a-key", sn.addr())),
    )?;
    tb.wait_until(
        "the edge with a malformed key to exit",
        Duration::from_secs(10),
        POLL,
        || Ok(typo.ensure_running().is_err()),
    )?;
    let msg = std::fs::read_to_string(typo.log_path())?;
    ensure!(
        msg.contains("[community] supernode") && msg.contains("64 hex digits"),
        "a malformed key was not refused clearly:\n{msg}"
    );
    Ok(())
}

#[test]
fn a_stranger_cannot_register_as_another_edge() {
    run_e2e(
        "control_channel::a_stranger_cannot_register_as_another_edge",
        BUDGET,
        impersonation,
    );
}

fn impersonation(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let sn = tb.start_supernode(&sn_host, &SupernodeConfig::default())?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let sn_key: PublicKey = sn.info()?.public_key.parse().map_err(anyhow::Error::msg)?;
    let a_host = tb.add_nat_host("a", Nat::Cone, false)?;
    let b_host = tb.add_nat_host("b", Nat::Cone, false)?;
    let a = tb.start_edge(&a_host, &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()))?;
    let b = tb.start_edge(&b_host, &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()))?;
    a.wait_registered(tb, Duration::from_secs(15))?;
    b.wait_registered(tb, Duration::from_secs(15))?;
    let a_key = a.info()?.public_key;
    let ka: PublicKey = a_key.parse().map_err(anyhow::Error::msg)?;
    let a_addr = |sn: &weft_e2e::Supernode| -> Result<Option<String>> {
        Ok(sn
            .edges()?
            .into_iter()
            .find(|e| e.public_key == a_key)
            .and_then(|e| e.addr))
    };
    let before_addr = a_addr(&sn)?.context("A not registered")?;
    let attacker = tb.add_public_host("attacker", false)?;
    let sock = weft_e2e::nsnet::udp_socket_in(&attacker.ns, "0.0.0.0:0")?;
    let sn_addr: SocketAddr = sn.addr().parse()?;
    let register = |key: PublicKey, counter: u64| {
        let mut b = Vec::new();
        Register {
            community: CommunityId::from_name(COMMUNITY),
            public_key: key,
            counter,
            mac: MacAddr([2, 6, 6, 6, 6, 6]),
            wants_ip: true,
            wants_peers: true,
            static_ip: None,
            local_addrs: vec![],
            description: "impostor".into(),
            name: None,
            admission_tag: [0; ADMISSION_TAG_LEN],
        }
        .encode_unsigned(&mut b);
        b.extend_from_slice(&[0; ADMISSION_TAG_LEN]);
        b
    };
    let st0 = sn.info()?.stats;
    // In the clear, as version 1 allowed: 100 registrations of A's key.
    for i in 0..100 {
        sock.send_to(&register(ka, u64::MAX - i), sn_addr)?;
    }
    // In the attacker's own authenticated session, claiming A's key.
    let me = StaticKeypair::from_private([0x66; 32]);
    let mut s = attack::handshake(&sock, sn_addr, &sn_key, &me, 1)?;
    sock.send_to(&attack::sealed(&mut s, &register(ka, u64::MAX)), sn_addr)?;
    tb.wait_until(
        "the supernode to count the impostor's registrations",
        Duration::from_secs(5),
        POLL,
        || {
            let st = sn.info()?.stats;
            Ok(st.unauthenticated >= st0.unauthenticated + 100
                && st.dropped_packets > st0.dropped_packets)
        },
    )?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(
        a_addr(&sn)?.as_deref() == Some(before_addr.as_str()),
        "A's registration moved to {:?}",
        a_addr(&sn)?
    );
    ensure!(
        !sn.edges()?.iter().any(|e| e.description == "impostor"),
        "the impostor is registered"
    );
    ensure!(a.info()?.registered && b.info()?.registered);
    let b_ip = b.info()?.ipv4().context("B has no address")?;
    let p = ping(&a.ns, &b_ip.to_string(), 10, 0.1, 10, &[])?;
    ensure!(p.received == 10, "A -> B: {} of 10", p.received);
    tb.figure("101 registrations of A's key by a stranger: none taken, A unaffected");
    Ok(())
}

#[test]
fn a_supernode_that_never_answers_is_reported_once() {
    run_e2e(
        "control_channel::a_supernode_that_never_answers_is_reported_once",
        BUDGET,
        silent_supernode,
    );
}

/// An edge configured with a supernode address where nothing answers (a host with no supernode): one
/// warning at the default level saying what to check, the state in `get_supernodes`, no line per retry.
fn silent_supernode(tb: &Testbed) -> Result<()> {
    let nobody = tb.add_public_host("nobody", false)?;
    let h = tb.add_public_host("lonely", false)?;
    let mut cfg = EdgeConfig::new(COMMUNITY, SECRET, &format!("{}:7700", nobody.ip));
    cfg.verbose = 2;
    let e = tb.start_edge(&h, &cfg)?;
    let line = "has not answered for";
    tb.wait_until(
        "the edge to report the silent supernode",
        Duration::from_secs(20),
        POLL,
        || Ok(std::fs::read_to_string(e.log_path())?.contains(line)),
    )?;
    // Several more retries go unanswered meanwhile.
    std::thread::sleep(Duration::from_secs(10));
    let log = std::fs::read_to_string(e.log_path())?;
    let n = log.lines().filter(|l| l.contains(line)).count();
    ensure!(
        n == 1,
        "{n} lines about the silent supernode:\n{}",
        e.log_tail(20)
    );
    ensure!(
        log.contains("UDP to it is not blocked"),
        "the line does not say what to check:\n{}",
        e.log_tail(10)
    );
    let sns = e.call("get_supernodes", json!({}))?;
    ensure!(sns[0]["state"] == "connecting", "get_supernodes: {sns}");
    Ok(())
}
