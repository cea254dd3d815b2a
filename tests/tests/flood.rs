//! Floods a stranger can send, end to end: each must cost the daemon little and leave its log readable.
//!
//! Needs root (network namespaces) and the daemon binaries built, like `e2e.rs`.

mod attack;

use anyhow::{ensure, Result};
use std::net::SocketAddr;
use std::time::Duration;
use weft_e2e::daemon::first_ping;
use weft_e2e::{
    nsnet, run_e2e, BackgroundPing, EdgeConfig, Nat, SupernodeConfig, Testbed, COMMUNITY, SECRET,
};
use weft_proto::control;
use weft_proto::keys::{CommunityId, PublicKey, StaticKeypair};
use weft_proto::wire::{MacAddr, Register, ADMISSION_TAG_LEN};

const BUDGET: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// Strangers that register with a guessed secret.
const N: u64 = 1_000;
/// Clear-text registrations (version 1's kind): dropped and counted, never answered nor logged.
const CLEAR: u64 = 5_000;

#[test]
fn refused_registration_flood_is_logged_in_bursts() {
    run_e2e(
        "flood::refused_registration_flood_is_logged_in_bursts",
        BUDGET,
        registration_flood,
    );
}

/// A REGISTER for the community under test from `key`, with an admission tag that is not the
/// secret's: what someone guessing the secret, or flooding, sends.
fn bad_register(i: u64, key: PublicKey) -> Vec<u8> {
    let mut buf = Vec::new();
    Register {
        community: CommunityId::from_name(COMMUNITY),
        public_key: key,
        counter: 1_000 + i,
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        wants_ip: true,
        wants_peers: true,
        static_ip: None,
        local_addrs: Vec::new(),
        description: format!("intruder {i}"),
        name: None,
        admission_tag: [0; ADMISSION_TAG_LEN],
    }
    .encode_unsigned(&mut buf);
    buf.extend_from_slice(&[0xa5; ADMISSION_TAG_LEN]);
    buf
}

fn identity(i: u64) -> StaticKeypair {
    let mut k = [0x5au8; 32];
    k[..8].copy_from_slice(&i.to_le_bytes());
    StaticKeypair::from_private(k)
}

fn registration_flood(tb: &Testbed) -> Result<()> {
    let admission = weft_e2e::daemon::admission_key(COMMUNITY, SECRET)?;
    let sn_host = tb.add_public_host("sn", false)?;
    let attacker = tb.add_public_host("attacker", false)?;
    let file = tb.dir().join("communities");
    std::fs::write(&file, format!("{COMMUNITY} key={admission}\n"))?;
    let sn = tb.start_supernode(
        &sn_host,
        &SupernodeConfig {
            community_file: Some(file),
            // A thousand handshakes from one address in a second or two: this test is about the log,
            // so no load shedding (the next test is about that).
            overrides: vec!["supernode.handshake_load=100000".into()],
            ..Default::default()
        },
    )?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let info = sn.info()?;
    let sn_key: PublicKey = info.public_key.parse().map_err(anyhow::Error::msg)?;
    let before = info.stats;

    let sock = nsnet::udp_socket_in(&attacker.ns, "0.0.0.0:0")?;
    let target: SocketAddr = sn.addr().parse()?;
    // Clear-text registrations: counted, not answered, not logged.
    for i in 0..CLEAR {
        sock.send_to(&bad_register(i, identity(i).public), target)?;
        if i % 200 == 199 {
            // Paced so the supernode's receive buffer takes them all: the test counts them.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    tb.wait_until(
        "the supernode to count every clear-text registration",
        Duration::from_secs(15),
        POLL,
        || Ok(sn.info()?.stats.unauthenticated >= before.unauthenticated + CLEAR),
    )?;
    let answers = nsnet::recv_for(&sock, Duration::from_millis(300))?;
    ensure!(
        answers.is_empty(),
        "{} answers to clear-text registrations",
        answers.len()
    );
    // Strangers with their own sessions and a wrong secret: each refused, in its session.
    for i in 0..N {
        let me = identity(CLEAR + i);
        let mut s = attack::handshake(&sock, target, &sn_key, &me, 1 + i)?;
        sock.send_to(&attack::sealed(&mut s, &bad_register(i, me.public)), target)?;
    }
    tb.wait_until(
        "the supernode to refuse every stranger",
        Duration::from_secs(15),
        POLL,
        || Ok(sn.info()?.stats.rejected_registrations >= before.rejected_registrations + N),
    )?;
    let refused = sn.info()?.stats.rejected_registrations - before.rejected_registrations;
    let summary = "more refused registrations in the last";
    tb.wait_until(
        "one line counting the refusals that were not logged",
        Duration::from_secs(25),
        POLL,
        || Ok(std::fs::read_to_string(sn.log_path())?.contains(summary)),
    )?;
    let log = std::fs::read_to_string(sn.log_path())?;
    let lines = log
        .lines()
        .filter(|l| l.contains("refused registration of edge"))
        .count() as u64;
    let counted: u64 = log
        .lines()
        .filter(|l| l.contains(summary))
        .filter_map(|l| {
            let (before, _) = l.split_once(summary)?;
            before.split_whitespace().last()?.parse::<u64>().ok()
        })
        .sum();
    tb.figure(&format!(
        "{CLEAR} clear-text registrations counted and ignored; {N} strangers with a wrong secret: \
         {refused} refused, {lines} logged one by one, {counted} counted in summary lines; log {} bytes",
        log.len()
    ));
    ensure!(
        (1..=20).contains(&lines),
        "{lines} refusal lines for {N} refused registrations: the log is not bounded"
    );
    ensure!(
        lines + counted == refused,
        "every refusal is either logged or counted: {lines} logged + {counted} counted != {refused}"
    );
    ensure!(
        log.len() < 64 * 1024,
        "the supernode wrote {} bytes of log for the flood",
        log.len()
    );
    ensure!(sn.info().is_ok(), "the supernode stopped answering");
    Ok(())
}

/// Control initiations a second in the flood, and for how long.
const FLOOD_RATE: u64 = 5_000;
const FLOOD_SECS: u64 = 5;

#[test]
fn control_handshake_flood_does_not_disturb_relayed_traffic() {
    run_e2e(
        "flood::control_handshake_flood_does_not_disturb_relayed_traffic",
        BUDGET,
        handshake_flood,
    );
}

/// Valid control initiations (the supernode's key is public, so MAC1 is right) from 100 spoofed sources
/// at 5,000 a second while two edges behind symmetric NATs ping each other through the supernode's relay.
fn handshake_flood(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let attacker = tb.add_public_host("attacker", false)?;
    let sn = tb.start_supernode(&sn_host, &SupernodeConfig::default())?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let sn_key: PublicKey = sn.info()?.public_key.parse().map_err(anyhow::Error::msg)?;
    let h1 = tb.add_nat_host("e1", Nat::Symmetric, false)?;
    let h2 = tb.add_nat_host("e2", Nat::Symmetric, false)?;
    let e1 = tb.start_edge(
        &h1,
        &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()).static_ip("10.200.0.1/24"),
    )?;
    let e2 = tb.start_edge(
        &h2,
        &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()).static_ip("10.200.0.2/24"),
    )?;
    e1.wait_registered(tb, Duration::from_secs(15))?;
    e2.wait_registered(tb, Duration::from_secs(15))?;
    first_ping(tb, &e1, "10.200.0.2".parse()?, Duration::from_secs(20))?;

    // 2,000 distinct initiations (a real key pair each), sent round robin from 100 forged sources.
    let inits: Vec<Vec<u8>> = (0..2_000u64)
        .map(|i| {
            let me = identity(1_000_000 + i);
            control::initiation(&me, &sn_key, i as u32, 1 + i, [7; 32], None).map(|(_, d, _)| d)
        })
        .collect::<Result<_, _>>()?;
    let sources: Vec<SocketAddr> = (0..100u16)
        .map(|i| SocketAddr::from(([203, 0, 113, 150 + (i % 100) as u8], 40_000 + i)))
        .collect();
    let socks = attack::spoofed_sockets(&attacker.ns, &sources)?;
    let target: SocketAddr = sn.addr().parse()?;
    let before = sn.info()?.stats;
    let pings = 200;
    let ping = BackgroundPing::start(&e1.ns, "10.200.0.2", pings, 0.025, 20, &[])?;
    let t0 = std::time::Instant::now();
    let mut sent = 0u64;
    while t0.elapsed() < Duration::from_secs(FLOOD_SECS) {
        let due = (t0.elapsed().as_secs_f64() * FLOOD_RATE as f64) as u64;
        while sent < due {
            let i = sent as usize;
            let _ = socks[i % socks.len()].send_to(&inits[i % inits.len()], &target.into());
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let p = ping.finish()?;
    let after = sn.info()?.stats;
    let handshakes = after.ctl_handshakes - before.ctl_handshakes;
    let cookies = after.ctl_cookies_sent - before.ctl_cookies_sent;
    tb.figure(&format!(
        "{sent} control initiations in {FLOOD_SECS} s from {} spoofed sources: {handshakes} handshakes \
         done, {cookies} cookies sent, {} rate limited; relayed ping {}",
        sources.len(),
        after.ctl_rate_limited - before.ctl_rate_limited,
        p.summary()
    ));
    ensure!(
        p.received * 100 >= p.transmitted * 99 && p.transmitted >= pings - 1,
        "relayed ping lost more than 1 % under the flood: {}",
        p.summary()
    );
    let limited = after.ctl_rate_limited - before.ctl_rate_limited;
    ensure!(
        (cookies + limited) * 10 > sent * 8,
        "the supernode shed only {cookies} (cookies) + {limited} (rate limited) of {sent} initiations"
    );
    ensure!(
        handshakes < sent / 10,
        "the supernode did {handshakes} handshakes for {sent} spoofed initiations"
    );
    ensure!(e1.info()?.registered && e2.info()?.registered);
    // One warning for the whole flood, saying what to check; not one line per initiation.
    let log = std::fs::read_to_string(sn.log_path())?;
    let warned = log
        .lines()
        .filter(|l| l.contains("control handshakes a second: answering them with cookies"))
        .count();
    ensure!(
        warned == 1 && log.contains("raise [supernode] handshake_load"),
        "{warned} load warnings in the supernode's log:\n{}",
        sn.log_tail(20)
    );
    Ok(())
}
