//! Handshake initiations from someone without the community secret, end to end: an edge drops them on
//! their MAC1 before any Diffie-Hellman, keeps no state for them and never answers, so a flood neither
//! fills its peer table nor disturbs the traffic of real peers, and a stranger learns nothing to test a
//! guessed passphrase against. Someone with the secret, flooding from made-up identities, is answered
//! but makes no peer either (no session is ever confirmed).
//!
//! Needs root (network namespaces) and the daemon binaries built, like `e2e.rs`.

use anyhow::{ensure, Context, Result};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use weft_e2e::daemon::{first_ping, wait_paths};
use weft_e2e::nsnet::{self, XorShift};
use weft_e2e::{
    run_e2e, BackgroundPing, Edge, EdgeConfig, SupernodeConfig, Testbed, COMMUNITY, SECRET,
};
use weft_proto::handshake;
use weft_proto::keys::{CommunityKeys, PublicKey, StaticKeypair};
use weft_proto::secret::{CommunitySecret, KdfCost};
use weft_proto::wire::{self, MsgType, HANDSHAKE_INIT_LEN};

const BUDGET: Duration = Duration::from_secs(90);
/// The flood: initiations per second, for how long.
const RATE: u64 = 5_000;
const FLOOD: Duration = Duration::from_secs(5);
/// The legitimate ping during the flood: count and interval.
const PINGS: u32 = 250;
const PING_INTERVAL: f64 = 0.02;
const E2_PORT: u16 = 7802;

#[test]
fn handshake_flood_without_the_secret_is_shed() {
    run_e2e(
        "handshake_flood::handshake_flood_without_the_secret_is_shed",
        BUDGET,
        flood_body,
    );
}

#[test]
fn stranger_initiation_gets_no_reply() {
    run_e2e(
        "handshake_flood::stranger_initiation_gets_no_reply",
        BUDGET,
        stranger_body,
    );
}

#[test]
fn insider_flood_from_made_up_identities_makes_no_peers() {
    run_e2e(
        "handshake_flood::insider_flood_from_made_up_identities_makes_no_peers",
        BUDGET,
        insider_body,
    );
}

/// A supernode and two edges on the internet segment (e2 on a known UDP port), pinging each other
/// directly, and an attacker host beside them.
struct Mesh {
    e1: Edge,
    e2: Edge,
    ip2: Ipv4Addr,
    target: SocketAddr,
    target_key: PublicKey,
    attacker_ns: String,
    _sn: weft_e2e::Supernode,
}

fn mesh(tb: &Testbed) -> Result<Mesh> {
    let sn_host = tb.add_public_host("sn", false)?;
    let h1 = tb.add_public_host("e1", false)?;
    let h2 = tb.add_public_host("e2", false)?;
    let attacker = tb.add_public_host("attacker", false)?;
    // An open supernode: the attacker could even register and learn the edges' keys and addresses.
    let sn = tb.start_supernode(&sn_host, &SupernodeConfig::default())?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let e1 = tb.start_edge(
        &h1,
        &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()).static_ip("10.210.0.1/24"),
    )?;
    let e2 = tb.start_edge(
        &h2,
        &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr())
            .static_ip("10.210.0.2/24")
            .bind(&format!("0.0.0.0:{E2_PORT}")),
    )?;
    let ip2 = Ipv4Addr::new(10, 210, 0, 2);
    e1.wait_registered(tb, Duration::from_secs(15))?;
    e2.wait_registered(tb, Duration::from_secs(15))?;
    first_ping(tb, &e1, ip2, Duration::from_secs(15))?;
    wait_paths(tb, &[&e1, &e2], "direct", Duration::from_secs(20))?;
    let target_key: PublicKey = e2
        .info()?
        .public_key
        .parse()
        .map_err(|e| anyhow::anyhow!("e2's public key: {e}"))?;
    Ok(Mesh {
        target: SocketAddr::from((h2.ip, E2_PORT)),
        target_key,
        ip2,
        attacker_ns: attacker.ns.clone(),
        e1,
        e2,
        _sn: sn,
    })
}

/// Initiations to `target` from random identities, none with the community secret: a third are real
/// Noise initiations with MAC1 under a guessed secret (someone who knows the community's name),
/// a third under a random community, a third random bytes behind a valid header.
fn stranger_initiations(target: &PublicKey, n: usize, rng: &mut XorShift) -> Result<Vec<Vec<u8>>> {
    let guessed = CommunityKeys::derive(
        COMMUNITY,
        &CommunitySecret::parse("a guess")?,
        &KdfCost::default(),
    );
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut private = [0u8; 32];
        rng.fill(&mut private);
        let me = StaticKeypair::from_private(private);
        let mut seed = [0u8; 32];
        rng.fill(&mut seed);
        let mut b = Vec::new();
        match i % 3 {
            0 => {
                handshake::initiation(&guessed, &me, target, i as u32, 1, seed, None, &mut b)
                    .context("building an initiation")?;
            }
            1 => {
                let other =
                    CommunityKeys::from_key_material(&format!("c{}", rng.next_u64()), &seed);
                handshake::initiation(&other, &me, target, i as u32, 1, seed, None, &mut b)
                    .context("building an initiation")?;
            }
            _ => {
                b = vec![0u8; HANDSHAKE_INIT_LEN];
                rng.fill(&mut b);
                b[..4].copy_from_slice(&[wire::VERSION, MsgType::HandshakeInit as u8, 0, 0]);
            }
        }
        ensure!(
            b.len() == HANDSHAKE_INIT_LEN,
            "initiation of {} bytes",
            b.len()
        );
        out.push(b);
    }
    Ok(out)
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

fn flood_body(tb: &Testbed) -> Result<()> {
    let m = mesh(tb)?;
    let mut rng = XorShift::new(seed());
    let packets = stranger_initiations(&m.target_key, 900, &mut rng)?;
    let peers0 = m.e2.peers()?.len();
    let before = m.e2.info()?.stats;
    tb.step("flooding e2 with initiations while e1 pings it");

    let bg = BackgroundPing::start(
        &m.e1.ns,
        &m.ip2.to_string(),
        PINGS,
        PING_INTERVAL,
        (PINGS as f64 * PING_INTERVAL) as u32 + 15,
        &[],
    )?;
    let sock = nsnet::udp_socket_in(&m.attacker_ns, "0.0.0.0:0")?;
    let cpu0 = cpu_seconds(&m.e2);
    // Paced in bursts every 10 ms, so the rate holds without a busy loop.
    let start = Instant::now();
    let per_tick = RATE / 100;
    let mut sent = 0u64;
    let mut tick = 0u32;
    let mut max_peers = peers0;
    while start.elapsed() < FLOOD {
        for _ in 0..per_tick {
            let p = &packets[sent as usize % packets.len()];
            // A full send buffer is not the edge's doing: count only what left.
            if sock.send_to(p, m.target).is_ok() {
                sent += 1;
            }
        }
        tick += 1;
        if tick.is_multiple_of(50) {
            max_peers = max_peers.max(m.e2.peers()?.len());
        }
        let next = start + Duration::from_millis(10) * tick;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let flood_time = start.elapsed();
    let cpu = cpu_seconds(&m.e2).zip(cpu0).map(|(b, a)| b - a);
    let p = bg.finish()?;
    // What reached e2 is counted once its loop has read it all.
    let mut after = m.e2.info()?.stats;
    tb.wait_until(
        "e2's dropped_bad_mac to stop growing",
        Duration::from_secs(10),
        Duration::from_millis(300),
        || {
            let now = m.e2.info()?.stats;
            let done = now.dropped_bad_mac == after.dropped_bad_mac;
            after = now;
            Ok(done)
        },
    )?;
    let peers1 = m.e2.peers()?.len();
    max_peers = max_peers.max(peers1);
    let dropped = after.dropped_bad_mac - before.dropped_bad_mac;
    tb.figure(&format!(
        "{sent} stranger initiations in {:.1} s ({:.0}/s) at e2: dropped_bad_mac +{dropped}, \
         handshakes_rejected +{}, cookie replies +{}; peer table {peers0} -> {peers1} (max {max_peers}); \
         e1 -> e2 ping during the flood: {} lost of {} ({}); e2's CPU during the flood: {}",
        flood_time.as_secs_f64(),
        sent as f64 / flood_time.as_secs_f64(),
        after.handshakes_rejected - before.handshakes_rejected,
        after.cookie_replies_sent - before.cookie_replies_sent,
        p.lost(),
        p.transmitted,
        p.summary(),
        cpu.map_or("unknown".to_string(), |c| format!(
            "{c:.2} s in {:.1} s ({:.0} %, a debug build)",
            flood_time.as_secs_f64(),
            100.0 * c / flood_time.as_secs_f64()
        ))
    ));
    ensure!(
        p.transmitted >= PINGS * 9 / 10,
        "the ping sent only {} of {PINGS}",
        p.transmitted
    );
    ensure!(
        p.lost() * 100 < p.transmitted,
        "the flood cost {} of {} pings (missing {:?})",
        p.lost(),
        p.transmitted,
        p.missing_seqs()
    );
    ensure!(
        max_peers == peers0,
        "e2's peer table grew from {peers0} to {max_peers} under the flood"
    );
    // Most of the flood reaches e2 (UDP may drop some on a loaded machine); all of it is dropped on MAC1.
    ensure!(
        dropped >= sent / 2,
        "e2 counted {dropped} bad MACs for {sent} initiations sent"
    );
    ensure!(
        after.handshakes_rejected == before.handshakes_rejected
            && after.cookie_replies_sent == before.cookie_replies_sent,
        "a stranger's initiation got past MAC1: {before:?} -> {after:?}"
    );
    ensure!(
        nsnet::recv_for(&sock, Duration::from_millis(500))?.is_empty(),
        "the attacker got answers"
    );
    Ok(())
}

fn stranger_body(tb: &Testbed) -> Result<()> {
    let m = mesh(tb)?;
    let mut rng = XorShift::new(seed());
    let sock = nsnet::udp_socket_in(&m.attacker_ns, "0.0.0.0:0")?;
    let before = m.e2.info()?.stats;
    let packets = stranger_initiations(&m.target_key, 30, &mut rng)?;
    for p in &packets {
        sock.send_to(p, m.target)?;
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = nsnet::recv_for(&sock, Duration::from_secs(2))?;
    let after = m.e2.info()?.stats;
    tb.figure(&format!(
        "{} stranger initiations: {} replies, e2 dropped_bad_mac +{}",
        packets.len(),
        got.len(),
        after.dropped_bad_mac - before.dropped_bad_mac
    ));
    ensure!(
        got.is_empty(),
        "a stranger got {} replies, the first of type {:?}",
        got.len(),
        got.first().map(|(_, d)| wire::peek_type(d))
    );
    ensure!(
        after.dropped_bad_mac >= before.dropped_bad_mac + packets.len() as u64,
        "e2 did not count the initiations: {before:?} -> {after:?}"
    );

    // The control, which shows the capture works: the same socket, an identity of its own, and the
    // community secret (an insider) does get an answer.
    let insider = CommunityKeys::derive(
        COMMUNITY,
        &CommunitySecret::parse(SECRET)?,
        &KdfCost::default(),
    );
    let mut private = [0u8; 32];
    rng.fill(&mut private);
    let mut b = Vec::new();
    handshake::initiation(
        &insider,
        &StaticKeypair::from_private(private),
        &m.target_key,
        7,
        1,
        [7; 32],
        None,
        &mut b,
    )
    .context("building the insider's initiation")?;
    sock.send_to(&b, m.target)?;
    let got = nsnet::recv_for(&sock, Duration::from_secs(3))?;
    ensure!(
        got.iter()
            .any(|(_, d)| wire::peek_type(d) == Ok(MsgType::HandshakeResp)),
        "the insider's initiation got no response ({} datagrams): the capture is broken",
        got.len()
    );
    Ok(())
}

/// Someone with the community secret floods e2 with initiations from made-up identities, just under the
/// load threshold (so each costs e2 a Noise response, the most an insider gets): each is answered, but no
/// peer is made, since none is confirmed with a packet under the session keys.
fn insider_body(tb: &Testbed) -> Result<()> {
    const INSIDER_RATE: u64 = 150;
    const INSIDER_FLOOD: Duration = Duration::from_secs(4);
    let m = mesh(tb)?;
    let mut rng = XorShift::new(seed());
    let insider = CommunityKeys::derive(
        COMMUNITY,
        &CommunitySecret::parse(SECRET)?,
        &KdfCost::default(),
    );
    let n = (INSIDER_RATE * INSIDER_FLOOD.as_secs()) as usize;
    let mut packets = Vec::with_capacity(n);
    for i in 0..n {
        let mut private = [0u8; 32];
        rng.fill(&mut private);
        let mut seed = [0u8; 32];
        rng.fill(&mut seed);
        let mut b = Vec::new();
        handshake::initiation(
            &insider,
            &StaticKeypair::from_private(private),
            &m.target_key,
            i as u32,
            1,
            seed,
            None,
            &mut b,
        )
        .context("building an initiation")?;
        packets.push(b);
    }
    let peers0 = m.e2.peers()?.len();
    let before = m.e2.info()?.stats;
    tb.step("an insider floods e2 with made-up identities while e1 pings it");
    let bg = BackgroundPing::start(
        &m.e1.ns,
        &m.ip2.to_string(),
        PINGS,
        PING_INTERVAL,
        (PINGS as f64 * PING_INTERVAL) as u32 + 15,
        &[],
    )?;
    let sock = nsnet::udp_socket_in(&m.attacker_ns, "0.0.0.0:0")?;
    let start = Instant::now();
    let mut sent = 0usize;
    let mut max_peers = peers0;
    let mut tick = 0u32;
    let mut answers = 0usize;
    let responses = |got: Vec<(SocketAddr, Vec<u8>)>| {
        got.iter()
            .filter(|(_, d)| wire::peek_type(d) == Ok(MsgType::HandshakeResp))
            .count()
    };
    while sent < packets.len() {
        // Paced in 10 ms ticks: INSIDER_RATE / 100 a tick (1.5: alternately 1 and 2).
        let due = ((tick as u64 + 1) * INSIDER_RATE / 100) as usize;
        while sent < due.min(packets.len()) {
            if sock.send_to(&packets[sent], m.target).is_ok() {
                sent += 1;
            } else {
                break;
            }
        }
        tick += 1;
        if tick.is_multiple_of(50) {
            max_peers = max_peers.max(m.e2.peers()?.len());
        }
        // Wait for the next tick reading the answers (the socket's buffer would overflow otherwise).
        let next = start + Duration::from_millis(10) * tick;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            answers += responses(nsnet::recv_for(&sock, d)?);
        }
    }
    let flood_time = start.elapsed();
    answers += responses(nsnet::recv_for(&sock, Duration::from_millis(500))?);
    let p = bg.finish()?;
    let after = m.e2.info()?.stats;
    let peers1 = m.e2.peers()?.len();
    max_peers = max_peers.max(peers1);
    tb.figure(&format!(
        "{sent} insider initiations from made-up identities in {:.1} s ({:.0}/s) at e2: {answers} answered, \
         peer table {peers0} -> {peers1} (max {max_peers}), unconfirmed sessions dropped +{}, \
         handshakes_rejected +{}, cookie replies +{}; e1 -> e2 ping during the flood: {} lost of {} ({})",
        flood_time.as_secs_f64(),
        sent as f64 / flood_time.as_secs_f64(),
        after.unconfirmed_dropped - before.unconfirmed_dropped,
        after.handshakes_rejected - before.handshakes_rejected,
        after.cookie_replies_sent - before.cookie_replies_sent,
        p.lost(),
        p.transmitted,
        p.summary()
    ));
    // The control: the initiations got past MAC1 and Noise (an insider is answered)...
    ensure!(
        answers >= sent / 2,
        "only {answers} of {sent} insider initiations were answered: the flood did not reach Noise"
    );
    // ... and still made no peer; the unconfirmed sessions are bounded (256), so most were dropped.
    ensure!(
        max_peers == peers0,
        "e2's peer table grew from {peers0} to {max_peers} under the insider flood"
    );
    ensure!(
        after.unconfirmed_dropped - before.unconfirmed_dropped
            >= (sent as u64).saturating_sub(256) / 2,
        "e2 dropped only {} unconfirmed sessions of {sent}",
        after.unconfirmed_dropped - before.unconfirmed_dropped
    );
    ensure!(
        p.lost() * 100 < p.transmitted.max(1),
        "the insider flood cost {} of {} pings",
        p.lost(),
        p.transmitted
    );
    Ok(())
}

/// CPU seconds (user and system) the daemon used so far, from /proc (a figure, not a test).
fn cpu_seconds(d: &weft_e2e::Edge) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", d.pid()?)).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
