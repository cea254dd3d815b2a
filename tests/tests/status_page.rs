//! The status page (`GET /` of the management server, `mgmt/assets/status.html`) in a real
//! browser: headless Chromium runs inside an edge's and the supernode's namespace against the
//! daemon's loopback TCP management port, and the test reads the live DOM over the DevTools
//! protocol (see `weft_e2e::browser` for why not `--dump-dom`).
//!
//! Topology: a supernode and `cloud-vm` on the internet, `home-nas` and `laptop <anna>` behind
//! symmetric NATs, so home-nas sees laptop relayed and (normally) cloud-vm direct. Checks:
//! - the served page: HTTP 200, `text/html`, self-contained (no external scripts, styles or
//!   images), its size printed;
//! - home-nas's page: role `edge`, one row `data-peer=<public key>` per peer of `get_edges`,
//!   each row's `data-path` badge equal to the path `get_edges` reports (`connecting` while a
//!   peer is not up), the description shown as text (a `<tag>` in it must not become markup),
//!   `why_not_direct` shown on a relayed row, no unreachable banner, `#updated` advancing (the
//!   2 s poll), no uncaught script exception;
//! - the supernode's page: role `supernode`, one row per edge of its `get_edges`.
//!
//! Screenshots go to `target/e2e-artifacts/status-page-{edge,edge-mobile,edge-dark,supernode}.png`;
//! with `WEFT_UPDATE_DOCS=1` the edge screenshot is also copied to `docs/status-page.png`.

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use weft_e2e::browser::{self, Browser};
use weft_e2e::daemon::{first_ping, peer_tables, wait_paths};
use weft_e2e::wait::sleep;
use weft_e2e::{
    report, run_e2e, secs, BackgroundPing, Edge, EdgeConfig, Nat, Peer, SnEdge, SupernodeConfig,
    Testbed, COMMUNITY, SECRET,
};

const TEST: &str = "status_page::status_page_in_headless_chromium";
const MGMT_PORT: u16 = 5640;
const POLL: Duration = Duration::from_millis(250);
/// The page polls every 2 s; give it a few rounds.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// What the page shows, read from the live DOM: only rows of the visible view count.
const DOM_SNAPSHOT: &str = r#"(() => {
  const q = (s) => document.querySelector(s);
  const txt = (e) => (e ? e.textContent : null);
  const banner = q('#banner');
  return {
    role: txt(q('#role')),
    updated: txt(q('#updated')),
    banner: banner && !banner.hidden ? banner.textContent : null,
    live: txt(q('#livetxt')),
    hidden: document.hidden,
    events: Array.from(document.querySelectorAll('[data-log] li[data-kind]'))
      .filter((li) => li.offsetParent !== null)
      .map((li) => ({ kind: li.getAttribute('data-kind'), text: li.textContent })),
    rows: Array.from(document.querySelectorAll('tr[data-peer]'))
      .filter((r) => r.offsetParent !== null)
      .map((r) => {
        const badge = r.querySelector('[data-path]');
        return {
          peer: r.getAttribute('data-peer'),
          path: badge ? badge.getAttribute('data-path') : null,
          name: txt(r.querySelector('.name')),
          text: r.textContent,
        };
      }),
  };
})()"#;

#[test]
fn status_page_in_headless_chromium() {
    if let Some(why) = browser::chromium_problem() {
        assert!(
            !weft_e2e::required(),
            "{TEST}: {why}, and WEFT_E2E_REQUIRED is set: not skipping"
        );
        report(&format!("SKIP {TEST}: {why}"));
        return;
    }
    run_e2e(TEST, Duration::from_secs(150), body);
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The path badge the page must show for a peer of `get_edges`.
fn expected_badge(p: &Peer) -> &str {
    if p.state != "up" {
        "connecting"
    } else {
        &p.path
    }
}

fn rows(dom: &Value) -> Vec<&Value> {
    dom["rows"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn row<'a>(dom: &'a Value, key: &str) -> Option<&'a Value> {
    rows(dom).into_iter().find(|r| r["peer"] == key)
}

/// Ok when the page's rows match `get_edges` (one row per peer, same path badge).
fn compare_edge_page(dom: &Value, peers: &[Peer], why: &[(String, String)]) -> Result<()> {
    ensure!(
        dom["role"] == "edge",
        "#role is {}, expected edge",
        dom["role"]
    );
    if let Some(b) = dom["banner"].as_str() {
        bail!("the page shows the unreachable banner: {b}");
    }
    for p in peers {
        let Some(r) = row(dom, &p.public_key) else {
            bail!("no row data-peer={} ({})", p.public_key, p.name());
        };
        let want = expected_badge(p);
        ensure!(
            r["path"] == want,
            "row of {} has data-path {}, get_edges says state {} path {}",
            p.name(),
            r["path"],
            p.state,
            p.path
        );
        if !p.description.is_empty() {
            ensure!(
                r["name"] == p.description.as_str(),
                "row of {} shows the name {} (descriptions must be inserted as text)",
                p.public_key,
                r["name"]
            );
        }
    }
    for (key, text) in why {
        if let Some(r) = row(dom, key) {
            let shown = r["text"].as_str().unwrap_or_default();
            ensure!(
                shown.contains(text.as_str()),
                "the relayed row {key} does not show why_not_direct {text:?}: {shown:?}"
            );
        }
    }
    let extra: Vec<&str> = rows(dom)
        .iter()
        .filter_map(|r| r["peer"].as_str())
        .filter(|k| !peers.iter().any(|p| p.public_key == *k))
        .collect();
    ensure!(extra.is_empty(), "rows for unknown peers {extra:?}");
    Ok(())
}

fn compare_sn_page(dom: &Value, edges: &[SnEdge]) -> Result<()> {
    ensure!(
        dom["role"] == "supernode",
        "#role is {}, expected supernode",
        dom["role"]
    );
    if let Some(b) = dom["banner"].as_str() {
        bail!("the page shows the unreachable banner: {b}");
    }
    for e in edges {
        let Some(r) = row(dom, &e.public_key) else {
            bail!("no row data-peer={} ({})", e.public_key, e.description);
        };
        if !e.description.is_empty() {
            ensure!(
                r["name"] == e.description.as_str(),
                "row of {} shows the name {}",
                e.public_key,
                r["name"]
            );
        }
    }
    ensure!(
        rows(dom).len() == edges.len(),
        "{} rows for {} edges",
        rows(dom).len(),
        edges.len()
    );
    Ok(())
}

/// Short form of the page state for error messages.
fn describe_dom(dom: &Value) -> String {
    let rows: Vec<String> = rows(dom)
        .iter()
        .map(|r| {
            format!(
                "[{} {} {}]",
                r["name"].as_str().unwrap_or("?"),
                r["peer"]
                    .as_str()
                    .map(|k| &k[..k.len().min(12)])
                    .unwrap_or("?"),
                r["path"].as_str().unwrap_or("-")
            )
        })
        .collect();
    format!(
        "role {} updated {} banner {} rows {}",
        dom["role"],
        dom["updated"],
        dom["banner"],
        rows.join(" ")
    )
}

fn edge_cfg(sn: &str, ip: &str, description: &str) -> EdgeConfig {
    let mut c = EdgeConfig::new(COMMUNITY, SECRET, sn)
        .static_ip(ip)
        .description(description);
    c.overrides.push(format!("management.port={MGMT_PORT}"));
    c
}

fn body(tb: &Testbed) -> Result<()> {
    let sn_host = tb.add_public_host("sn", false)?;
    let h1 = tb.add_nat_host("e1", Nat::Symmetric, false)?;
    let h2 = tb.add_nat_host("e2", Nat::Symmetric, false)?;
    let h3 = tb.add_public_host("e3", false)?;
    let sn = tb.start_supernode(
        &sn_host,
        &SupernodeConfig {
            overrides: vec![format!("management.port={MGMT_PORT}")],
            ..SupernodeConfig::default()
        },
    )?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, MGMT_PORT));
    let url = format!("http://{loopback}/");

    // Both pages are opened before the peers come up, so their event logs see them arrive.
    let mut sn_page = Browser::launch(&sn.ns, &tb.dir().join("chromium-sn"), 1280, 900)?;
    sn_page.navigate(&url)?;
    wait_page(tb, &mut sn_page, "the supernode's page to load", |dom| {
        ensure!(dom["role"] == "supernode", "#role is {}", dom["role"]);
        Ok(())
    })?;
    let e1 = tb.start_edge(&h1, &edge_cfg(&sn.addr(), "10.200.0.1/24", "home-nas"))?;
    e1.wait_registered(tb, Duration::from_secs(15))?;
    let page = served_page(tb, &e1, loopback)?;
    let t = Instant::now();
    let mut edge_page = Browser::launch(&e1.ns, &tb.dir().join("chromium-e1"), 1280, 900)?;
    edge_page.navigate(&url)?;
    wait_page(tb, &mut edge_page, "home-nas's page to load", |dom| {
        ensure!(dom["role"] == "edge", "#role is {}", dom["role"]);
        Ok(())
    })?;
    tb.figure(&format!(
        "edge page loaded {} after launching chromium",
        secs(t.elapsed())
    ));

    let t0 = Instant::now();
    // markup in a description: the page must show it as text
    let e2 = tb.start_edge(&h2, &edge_cfg(&sn.addr(), "10.200.0.2/24", "laptop <anna>"))?;
    let e3 = tb.start_edge(&h3, &edge_cfg(&sn.addr(), "10.200.0.3/24", "cloud-vm"))?;
    let edges = [&e1, &e2, &e3];
    for e in edges {
        e.wait_registered(tb, Duration::from_secs(15))?;
    }
    let ip = |n: u8| Ipv4Addr::new(10, 200, 0, n);
    // sessions come up with traffic
    for (from, to) in [(&e1, 2), (&e1, 3), (&e2, 3)] {
        first_ping(tb, from, ip(to), Duration::from_secs(20))?;
    }
    wait_paths(tb, &[&e1, &e2], "relayed", Duration::from_secs(15))?;
    let k3 = e3.info()?.public_key;
    tb.wait_until(
        "home-nas to see every peer up",
        Duration::from_secs(15),
        POLL,
        || Ok(e1.peers()?.iter().all(Peer::is_up)),
    )
    .with_context(|| format!("peer tables now:\n{}", peer_tables(&edges)))?;
    match tb.wait_until(
        "home-nas to reach cloud-vm directly",
        Duration::from_secs(20),
        POLL,
        || {
            Ok(e1
                .peers()?
                .iter()
                .any(|p| p.public_key == k3 && p.is_direct()))
        },
    ) {
        Ok(_) => tb.figure(&format!(
            "home-nas: laptop relayed, cloud-vm direct after {}",
            secs(t0.elapsed())
        )),
        Err(e) => tb.figure(&format!(
            "home-nas does not reach cloud-vm directly ({e:#}); the page shows what get_edges says"
        )),
    }
    tb.step(&format!("peer tables:\n{}", peer_tables(&edges)));

    // some traffic for the charts (relayed through the supernode to the laptop, direct to the VM)
    let _traffic = [
        BackgroundPing::start(&e1.ns, "10.200.0.2", 600, 0.2, 120, &["-s", "1000"])?,
        BackgroundPing::start(&e1.ns, "10.200.0.3", 600, 0.2, 120, &["-s", "600"])?,
    ];

    let artifacts = workspace_root().join("target").join("e2e-artifacts");
    let edge_png = artifacts.join("status-page-edge.png");
    check_edge_page(tb, &e1, &mut edge_page, &artifacts, &edge_png)?;
    edge_page.close();
    check_supernode_page(tb, &sn, &mut sn_page, &artifacts)?;
    sn_page.close();

    if std::env::var("WEFT_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        let docs = workspace_root().join("docs").join("status-page.png");
        std::fs::copy(&edge_png, &docs)
            .with_context(|| format!("copying {} to {}", edge_png.display(), docs.display()))?;
        tb.figure(&format!("WEFT_UPDATE_DOCS=1: updated {}", docs.display()));
    }
    tb.figure(&format!("served page: {} bytes", page.len()));
    Ok(())
}

/// A plain GET of the page inside `edge`'s namespace; checks it is the self-contained HTML page.
fn served_page(tb: &Testbed, edge: &Edge, addr: SocketAddr) -> Result<Vec<u8>> {
    let mut got = None;
    tb.wait_until(
        &format!("GET / on {addr} in {}", edge.ns),
        Duration::from_secs(10),
        POLL,
        || {
            edge.ensure_running()?;
            got = Some(browser::http_get(
                &edge.ns,
                addr,
                "/",
                Duration::from_secs(3),
            )?);
            Ok(true)
        },
    )?;
    let r = got.expect("set when the wait succeeded");
    ensure!(
        r.status == 200,
        "GET / answered HTTP {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let ctype = r.header("content-type").unwrap_or_default();
    ensure!(
        ctype.starts_with("text/html"),
        "GET / has Content-Type {ctype:?}, expected text/html"
    );
    let html = String::from_utf8_lossy(&r.body);
    ensure!(
        html.contains("id=\"role\"") && html.contains("EventSource"),
        "GET / is not the status page: {:?}",
        &html[..html.len().min(300)]
    );
    // self-contained: no external script, style sheet, image or font
    for bad in [
        "<script src",
        " src=\"http",
        "rel=\"stylesheet\"",
        "@import",
        "url(http",
    ] {
        ensure!(
            !html.contains(bad),
            "the status page loads something external ({bad:?})"
        );
    }
    let asset = include_str!("../../mgmt/assets/status.html");
    if r.body != asset.as_bytes() {
        tb.figure(&format!(
            "note: the served page ({} bytes) differs from mgmt/assets/status.html ({} bytes): \
             daemons built from an older copy?",
            r.body.len(),
            asset.len()
        ));
    }
    Ok(r.body)
}

/// Waits until `b`'s page satisfies `check` (fed a fresh DOM snapshot each round).
fn wait_page<F>(tb: &Testbed, b: &mut Browser, what: &str, mut check: F) -> Result<Value>
where
    F: FnMut(&Value) -> Result<()>,
{
    let mut last = String::from("(no snapshot yet)");
    let mut snap = Value::Null;
    let res = tb.wait_until(what, PAGE_WAIT, POLL, || {
        let dom = b.eval(DOM_SNAPSHOT)?;
        let r = check(&dom);
        last = match &r {
            Ok(()) => String::new(),
            Err(e) => format!("{e:#}; page: {}", describe_dom(&dom)),
        };
        snap = dom;
        Ok(r.is_ok())
    });
    b.drain_events();
    res.with_context(|| {
        format!(
            "last difference: {last}\nscript exceptions: {:?}\nconsole errors: {:?}\nchromium log:\n{}",
            b.exceptions,
            b.console_errors,
            b.log_tail(10)
        )
    })?;
    Ok(snap)
}

/// The kinds of the events in the page's log.
fn event_kinds(dom: &Value) -> Vec<&str> {
    dom["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect()
}

fn check_edge_page(
    tb: &Testbed,
    e1: &Edge,
    b: &mut Browser,
    artifacts: &std::path::Path,
    png: &std::path::Path,
) -> Result<()> {
    let dom = wait_page(
        tb,
        b,
        "home-nas's page to list every peer with its path",
        |dom| {
            let peers = e1.peers()?;
            let why: Vec<(String, String)> = e1
                .call("get_edges", Value::Null)?
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["path"] == "relayed")
                .filter_map(|p| {
                    Some((
                        p["public_key"].as_str()?.to_string(),
                        p["why_not_direct"].as_str()?.to_string(),
                    ))
                })
                .collect();
            compare_edge_page(dom, &peers, &why)
        },
    )?;
    tb.figure(&format!("edge page: {}", describe_dom(&dom)));
    ensure!(
        dom["hidden"] == false,
        "document.hidden is true in headless chromium: the page would not poll"
    );
    // the live event stream: the peers came up while the page was open
    let dom = wait_page(tb, b, "home-nas's event log to show peer_up", |dom| {
        ensure!(dom["live"] == "live", "#livetxt is {}", dom["live"]);
        ensure!(
            event_kinds(dom).contains(&"peer_up"),
            "events {:?}",
            event_kinds(dom)
        );
        Ok(())
    })?;
    tb.figure(&format!("edge page events: {:?}", event_kinds(&dom)));
    // the 2 s poll keeps #updated moving
    let first = dom["updated"].as_str().unwrap_or_default().to_string();
    ensure!(
        first.starts_with("updated "),
        "#updated shows {first:?}, expected \"updated HH:MM:SS\""
    );
    wait_page(tb, b, "#updated to advance", |dom| {
        ensure!(
            dom["updated"].as_str() != Some(first.as_str()),
            "#updated still {first:?}"
        );
        Ok(())
    })?;
    // some chart history, then the screenshots
    sleep(Duration::from_secs(8))?;
    b.drain_events();
    ensure!(
        b.exceptions.is_empty(),
        "the page threw: {:?}",
        b.exceptions
    );
    if !b.console_errors.is_empty() {
        tb.figure(&format!("edge page console errors: {:?}", b.console_errors));
    }
    let n = b.screenshot(png)?;
    tb.figure(&format!("screenshot {} ({n} bytes)", png.display()));
    b.viewport(390, 844, true)?;
    sleep(Duration::from_millis(500))?;
    b.screenshot(&artifacts.join("status-page-edge-mobile.png"))?;
    b.viewport(1280, 900, false)?;
    b.dark(true)?;
    sleep(Duration::from_millis(500))?;
    b.screenshot(&artifacts.join("status-page-edge-dark.png"))?;
    b.drain_events();
    ensure!(
        b.exceptions.is_empty(),
        "the page threw: {:?}",
        b.exceptions
    );
    Ok(())
}

fn check_supernode_page(
    tb: &Testbed,
    sn: &weft_e2e::Supernode,
    b: &mut Browser,
    artifacts: &std::path::Path,
) -> Result<()> {
    let dom = wait_page(tb, b, "the supernode's page to list every edge", |dom| {
        compare_sn_page(dom, &sn.edges()?)?;
        ensure!(
            event_kinds(dom).contains(&"edge_registered"),
            "events {:?}",
            event_kinds(dom)
        );
        Ok(())
    })?;
    tb.figure(&format!(
        "supernode page: {}; events {:?}",
        describe_dom(&dom),
        event_kinds(&dom)
    ));
    b.drain_events();
    ensure!(
        b.exceptions.is_empty(),
        "the supernode page threw: {:?}",
        b.exceptions
    );
    let png = artifacts.join("status-page-supernode.png");
    let n = b.screenshot(&png)?;
    tb.figure(&format!("screenshot {} ({n} bytes)", png.display()));
    Ok(())
}
