//! Community policy end to end (issue 5, test c): a supernode whose community file lists the allowed
//! edge keys; one key is removed and the supernode reloads; that edge is cut off within seconds and
//! refused with a clear reason, while the others go on.
//!
//! Needs root (network namespaces) and the daemon binaries built, like `e2e.rs`.

use anyhow::{ensure, Context, Result};
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};
use weft_e2e::daemon::first_ping;
use weft_e2e::{
    find_bin, ping, run_e2e, secs, Edge, EdgeConfig, SupernodeConfig, Testbed, COMMUNITY, SECRET,
};

const BUDGET: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(50);

/// `weft-edge keygen --state-dir DIR` (and `show-key`, which must agree): the edge's public key.
fn keygen(dir: &Path) -> Result<String> {
    let bin = find_bin("weft-edge")?;
    let run = |args: &[&str]| -> Result<std::process::Output> {
        std::process::Command::new(&bin)
            .args(args)
            .output()
            .with_context(|| format!("running weft-edge {args:?}"))
    };
    let d = dir.to_str().expect("utf-8 path");
    let out = run(&["keygen", "--state-dir", d])?;
    ensure!(out.status.success(), "keygen: {out:?}");
    let key = String::from_utf8(out.stdout)?.trim().to_string();
    ensure!(
        key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "keygen printed {key:?}"
    );
    let again = run(&["keygen", "--state-dir", d])?;
    ensure!(
        !again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--force"),
        "a second keygen must refuse to overwrite: {again:?}"
    );
    let shown = run(&["show-key", "--state-dir", d])?;
    ensure!(
        shown.status.success() && String::from_utf8(shown.stdout)?.trim() == key,
        "show-key disagrees with keygen"
    );
    Ok(key)
}

fn community_file(admission: &str, keys: &[(&str, &String)]) -> String {
    let mut s = format!("# e2e policy test\n{COMMUNITY} key={admission}\n");
    for (who, k) in keys {
        s.push_str(&format!("    allow={k}   # {who}\n"));
    }
    s
}

fn ping_ok(from: &Edge, to: Ipv4Addr, count: u32) -> Result<()> {
    let p = ping(&from.ns, &to.to_string(), count, 0.2, count / 2 + 5, &[])?;
    ensure!(
        p.received >= count,
        "{} -> {to}: only {} of {count} replies:\n{}",
        from.role,
        p.received,
        p.output
    );
    Ok(())
}

fn ping_fails(from: &Edge, to: Ipv4Addr) -> Result<()> {
    let p = ping(&from.ns, &to.to_string(), 5, 0.2, 3, &[])?;
    ensure!(
        p.received == 0,
        "{} -> {to} still answered ({} of {}) after the revocation",
        from.role,
        p.received,
        p.transmitted
    );
    Ok(())
}

fn knows(e: &Edge, key: &str) -> Result<bool> {
    Ok(e.peers()?.iter().any(|p| p.public_key == key))
}

#[test]
fn revoked_key_is_cut_off() {
    run_e2e("policy::revoked_key_is_cut_off", BUDGET, revoke_body);
}

fn revoke_body(tb: &Testbed) -> Result<()> {
    let admission = weft_e2e::daemon::admission_key(COMMUNITY, SECRET)?;
    let sn_host = tb.add_public_host("sn", false)?;
    let hosts: Vec<_> = ["ea", "eb", "ec"]
        .iter()
        .map(|r| tb.add_public_host(r, false))
        .collect::<Result<_>>()?;
    // The harness gives each edge the state directory <dir>/state/<role>: create the identities there.
    let keys: Vec<String> = hosts
        .iter()
        .map(|h| keygen(&tb.dir().join("state").join(&h.role)))
        .collect::<Result<_>>()?;
    tb.step(&format!(
        "edge keys: A {} B {} C {}",
        keys[0], keys[1], keys[2]
    ));
    let file = tb.dir().join("communities");
    let all = [("A", &keys[0]), ("B", &keys[1]), ("C", &keys[2])];
    std::fs::write(&file, community_file(&admission, &all))?;
    let sn = tb.start_supernode(
        &sn_host,
        &SupernodeConfig {
            community_file: Some(file.clone()),
            ..Default::default()
        },
    )?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let ips: Vec<Ipv4Addr> = (1..=3).map(|i| Ipv4Addr::new(10, 200, 0, i)).collect();
    let edges: Vec<Edge> = hosts
        .iter()
        .zip(&ips)
        .map(|(h, ip)| {
            tb.start_edge(
                h,
                &EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()).static_ip(&format!("{ip}/24")),
            )
        })
        .collect::<Result<_>>()?;
    let (a, b, c) = (&edges[0], &edges[1], &edges[2]);
    for e in &edges {
        e.wait_registered(tb, Duration::from_secs(15))?;
    }
    ensure!(b.info()?.public_key == keys[1], "B runs with another key");
    first_ping(tb, a, ips[1], Duration::from_secs(15))?;
    first_ping(tb, c, ips[1], Duration::from_secs(15))?;
    first_ping(tb, a, ips[2], Duration::from_secs(15))?;
    tb.step("A, B and C ping each other");

    // Remove B's key and reload over JSON-RPC.
    std::fs::write(&file, community_file(&admission, &[all[0], all[2]]))?;
    let t0 = Instant::now();
    let r = sn.call("reload", json!({}))?;
    tb.step(&format!("reload: {r}"));
    tb.wait_until("A and C to drop B", Duration::from_secs(10), POLL, || {
        Ok(!knows(a, &keys[1])? && !knows(c, &keys[1])?)
    })?;
    tb.figure(&format!(
        "reload to B dropped by A and C {}",
        secs(t0.elapsed())
    ));
    ensure!(
        !sn.edges()?.iter().any(|e| e.public_key == keys[1]),
        "the supernode still lists B"
    );
    ping_fails(a, ips[1])?;
    ping_fails(c, ips[1])?;
    ping_ok(a, ips[2], 3)?;
    ping_ok(c, ips[0], 3)?;
    tb.figure(&format!(
        "A->B and C->B fail, A<->C works, {} after the reload",
        secs(t0.elapsed())
    ));

    // B says why, in its status and in its log.
    let sns = b.call("get_supernodes", json!({}))?;
    ensure!(
        sns[0]["state"] == "refused" && sns[0]["refused_reason"] == "KeyNotAllowed",
        "B's get_supernodes: {sns}"
    );
    let log = std::fs::read_to_string(b.log_path())?;
    ensure!(
        log.contains("is not on the allowed list") && log.contains("weft-edge show-key"),
        "B's log does not say why:\n{}",
        b.log_tail(20)
    );
    ensure!(
        std::fs::read_to_string(sn.log_path())?.contains("cut off"),
        "the supernode's log does not mention the revocation"
    );
    // B's next attempt (after its 20 s retry interval) is refused too.
    let before = sn.info()?.stats.rejected_registrations;
    tb.wait_until(
        "B's next registration to be refused",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || Ok(sn.info()?.stats.rejected_registrations > before),
    )?;
    ensure!(!b.info()?.registered, "B registered again");
    ensure!(!knows(a, &keys[1])? && !knows(c, &keys[1])?, "B came back");
    ping_fails(a, ips[1])?;
    tb.figure(&format!(
        "B's re-registration refused {} after the reload",
        secs(t0.elapsed())
    ));

    // Put B's key back and reload with SIGHUP this time: B is admitted at its next attempt (every
    // 20 s while refused) and pings again.
    std::fs::write(&file, community_file(&admission, &all))?;
    let t1 = Instant::now();
    let pid = sn.pid().context("the supernode's pid")?;
    // The pid is the daemon's own (`ip netns exec` execs it) and this test started it.
    let st = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()?;
    ensure!(st.success(), "kill -HUP {pid} failed");
    tb.wait_until(
        "B to be admitted again",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || Ok(b.info()?.registered),
    )?;
    first_ping(tb, a, ips[1], Duration::from_secs(15))?;
    ping_ok(c, ips[1], 3)?;
    tb.figure(&format!(
        "key re-added (SIGHUP): B pings again {} later",
        secs(t1.elapsed())
    ));
    Ok(())
}

/// An edge's own `allow_peer` list (issue 12): in an open community (the supernode admits and
/// introduces everyone), edge A lists only B. A pings B; A and C cannot reach each other, A says why
/// once in its log and counts every refusal; B and C are unaffected. A reload that lists C too lets C in
/// without a restart.
#[test]
fn allow_peer_limits_whom_an_edge_talks_to() {
    run_e2e(
        "policy::allow_peer_limits_whom_an_edge_talks_to",
        BUDGET,
        allow_peer_body,
    );
}

fn allow_peer_body(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let hosts: Vec<_> = ["ea", "eb", "ec"]
        .iter()
        .map(|r| tb.add_public_host(r, false))
        .collect::<Result<_>>()?;
    let keys: Vec<String> = hosts
        .iter()
        .map(|h| keygen(&tb.dir().join("state").join(&h.role)))
        .collect::<Result<_>>()?;
    tb.step(&format!(
        "edge keys: A {} B {} C {}",
        keys[0], keys[1], keys[2]
    ));
    let sn = tb.start_supernode(&sn_host, &SupernodeConfig::default())?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let ips: Vec<Ipv4Addr> = (1..=3).map(|i| Ipv4Addr::new(10, 201, 0, i)).collect();
    let edges: Vec<Edge> = hosts
        .iter()
        .zip(&ips)
        .enumerate()
        .map(|(i, (h, ip))| {
            let mut cfg =
                EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()).static_ip(&format!("{ip}/24"));
            if i == 0 {
                cfg.allow_peers = vec![keys[1].clone()];
            }
            tb.start_edge(h, &cfg)
        })
        .collect::<Result<_>>()?;
    let (a, b, c) = (&edges[0], &edges[1], &edges[2]);
    for e in &edges {
        e.wait_registered(tb, Duration::from_secs(15))?;
    }
    first_ping(tb, a, ips[1], Duration::from_secs(15))?;
    first_ping(tb, c, ips[1], Duration::from_secs(15))?;
    tb.step("A <-> B and C <-> B ping");

    // A refuses C both ways: C's introduction, C's handshakes (C keeps retrying), A's own traffic.
    ping_fails(a, ips[2])?;
    ping_fails(c, ips[0])?;
    ensure!(!knows(a, &keys[2])?, "A made a peer of C");
    let stats = a.call("get_packetstats", json!({}))?;
    let refused = stats["dropped_not_allowed"].as_u64().unwrap_or(0);
    ensure!(
        refused >= 2,
        "A counted {refused} refusals of C (an introduction and C's handshakes): {stats}"
    );
    let log = std::fs::read_to_string(a.log_path())?;
    let line = format!("peer {} refused", keys[2]);
    ensure!(
        log.matches(&line).count() == 1 && log.contains("allow_peer") && log.contains("show-key"),
        "A's log should say once why C is refused ({refused} refusals):\n{}",
        a.log_tail(30)
    );
    ensure!(
        !log.contains(&format!("peer {} refused", keys[1])),
        "A refused B"
    );
    ensure!(
        b.call("get_packetstats", json!({}))?["dropped_not_allowed"] == 0
            && c.call("get_packetstats", json!({}))?["dropped_not_allowed"] == 0,
        "B or C refused someone without a list"
    );
    ping_ok(a, ips[1], 3)?;
    tb.figure(&format!(
        "A lists only B: A<->B works, A<->C fails, {refused} refusals counted, one log line"
    ));

    // List C too and reload: applied at once, no restart; A asks for the peers again and pings C.
    let conf = std::fs::read_to_string(a.conf_path())?;
    let widened = conf.replacen(
        &format!("allow_peer = {}\n", keys[1]),
        &format!("allow_peer = {}\nallow_peer = {}\n", keys[1], keys[2]),
        1,
    );
    ensure!(
        widened != conf,
        "A's config has no allow_peer line:\n{conf}"
    );
    std::fs::write(a.conf_path(), widened)?;
    let t0 = Instant::now();
    let r = a.call("reload", json!({}))?;
    ensure!(
        r["reloaded"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == "community.allow_peer"))
            && r["restart_needed"].as_array().is_some_and(|v| v.is_empty()),
        "reload did not apply allow_peer: {r}"
    );
    first_ping(tb, a, ips[2], Duration::from_secs(15))?;
    ping_ok(c, ips[0], 3)?;
    ping_ok(a, ips[1], 3)?;
    tb.figure(&format!(
        "C listed at reload: A pings C {} later",
        secs(t0.elapsed())
    ));
    Ok(())
}
