//! The management surface against running daemons in the namespace mesh: every JSON-RPC method and its
//! documented schema (docs/api.md is parsed and compared field by field), authorisation of the methods that
//! change state, JSON-RPC error codes for malformed requests, `/metrics` through `promtool check metrics`,
//! the `/events` stream, and `weftctl` (tables, `--json`, exit codes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use weft_e2e::cmd::ns_run;
use weft_e2e::daemon::{find_bin, wait_paths};
use weft_e2e::nsnet::in_netns;
use weft_e2e::{run_e2e, Daemon, EdgeConfig, SupernodeConfig, Testbed, COMMUNITY, SECRET};
use weft_mgmt::client::{Client, ClientError, Request, Target};

const BUDGET: Duration = Duration::from_secs(90);
const PORT: u16 = 5650;

// ---------------------------------------------------------------------------------------------
// docs/api.md as a schema

/// (method, role) → documented (field path, type) pairs.
type Docs = BTreeMap<(String, String), Vec<(String, String)>>;

/// (method, role) → documented (field path, type) pairs. A heading `### name (role)` is role-specific,
/// `### name` applies to both.
fn documented() -> Result<Docs> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let mut out: Docs = BTreeMap::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            let (name, role) = match h.split_once(" (") {
                Some((n, r)) => (n.trim(), Some(r.trim_end_matches(')').to_string())),
                None => (h.trim(), None),
            };
            current = match role {
                Some(r) => vec![(name.to_string(), r)],
                None => vec![
                    (name.to_string(), "edge".to_string()),
                    (name.to_string(), "supernode".to_string()),
                ],
            };
            for k in &current {
                out.entry(k.clone()).or_default();
            }
            continue;
        }
        if line.starts_with("## ") {
            current.clear();
            continue;
        }
        // `\|` inside a cell is an escaped bar (as in `string\|null`), not a column separator.
        let unescaped = line.replace("\\|", "\u{1}");
        let cells: Vec<&str> = unescaped.split('|').map(str::trim).collect();
        if cells.len() >= 4 && cells[1].starts_with('`') && !current.is_empty() {
            let field = cells[1].trim_matches('`').to_string();
            let ty = cells[2].replace('\u{1}', "|");
            for k in &current {
                out.get_mut(k)
                    .expect("inserted")
                    .push((field.clone(), ty.clone()));
            }
        }
    }
    Ok(out)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Flattens a result into leaf paths (`a.b`, `[].x`, `list[].y`); arrays of scalars are leaves of type
/// `array`. Returns the leaves and the prefixes of empty arrays of objects (whose fields may be absent).
fn flatten(
    prefix: &str,
    v: &Value,
    leaves: &mut Vec<(String, &'static str)>,
    empty: &mut Vec<String>,
) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, leaves, empty);
            }
        }
        Value::Array(a)
            if a.iter().any(Value::is_object) || (a.is_empty() && prefix.is_empty()) =>
        {
            let p = format!("{prefix}[]");
            if a.is_empty() {
                empty.push(p.clone());
            }
            for e in a {
                flatten(&p, e, leaves, empty);
            }
        }
        other => leaves.push((prefix.to_string(), json_type(other))),
    }
}

fn type_ok(doc: &str, actual: &str) -> bool {
    doc.split('|').any(|t| {
        let t = t.trim();
        t == actual || (t == "number" && actual == "integer")
    })
}

/// Checks a result against its documented table, both ways.
fn check_schema(docs: &Docs, method: &str, role: &str, result: &Value) -> Result<()> {
    let Some(fields) = docs.get(&(method.to_string(), role.to_string())) else {
        bail!("{method} ({role}) is not documented in docs/api.md");
    };
    ensure!(
        !fields.is_empty(),
        "{method} ({role}) has no field table in docs/api.md"
    );
    let mut leaves = Vec::new();
    let mut empty = Vec::new();
    flatten("", result, &mut leaves, &mut empty);
    for (path, ty) in &leaves {
        let doc = fields.iter().find(|(f, _)| {
            f == path
                || f.strip_suffix(".*")
                    .is_some_and(|p| path.starts_with(&format!("{p}.")))
        });
        match doc {
            Some((_, dt)) => ensure!(
                type_ok(dt, ty),
                "{method} ({role}): field {path} is {ty}, documented as {dt}"
            ),
            None => {
                bail!("{method} ({role}): field {path} ({ty}) is not documented in docs/api.md")
            }
        }
    }
    for (f, _) in fields {
        if let Some(p) = f.strip_suffix(".*") {
            ensure!(
                leaves.iter().any(|(l, _)| l.starts_with(&format!("{p}."))),
                "{method} ({role}): documented {f} but no such fields returned"
            );
            continue;
        }
        let under_empty = empty.iter().any(|e| f.starts_with(e.as_str()));
        ensure!(
            under_empty || leaves.iter().any(|(l, _)| l == f),
            "{method} ({role}): documented field {f} is missing from the result {result}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HTTP inside a namespace

/// One request to 127.0.0.1:`port` in `ns` with the management client; returns (status, the
/// head as text, body).
fn http(ns: &str, port: u16, req: Request) -> Result<(u16, String, String)> {
    let client = Client::new(Target::from_url(&format!("http://127.0.0.1:{port}"))?)
        .with_timeout(Duration::from_secs(5));
    let r = in_netns(ns, move || {
        Ok(client.send_blocking(&req.header("Host", "weft"))?)
    })?;
    let mut head = format!("HTTP {}\r\n", r.status);
    for (name, value) in &r.headers {
        head.push_str(&format!(
            "{name}: {}\r\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    Ok((r.status, head, r.text()))
}

fn post(ns: &str, port: u16, body: &str, auth: Option<&str>) -> Result<(u16, Value)> {
    let mut req = Request::post_json("/v1", body);
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    let (status, _, body) = http(ns, port, req)?;
    let v = serde_json::from_str(&body).with_context(|| format!("not JSON: {body}"))?;
    Ok((status, v))
}

fn get(ns: &str, port: u16, path: &str) -> Result<(u16, String, String)> {
    http(ns, port, Request::get(path))
}

fn rpc_error_code(v: &Value) -> Option<i64> {
    v.get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64)
}

fn password(tb: &Testbed, role: &str) -> Result<String> {
    let p: PathBuf = tb
        .dir()
        .join("state")
        .join(role)
        .join("management.password");
    Ok(std::fs::read_to_string(&p)
        .with_context(|| format!("{}", p.display()))?
        .trim()
        .to_string())
}

fn weftctl(ns: &str, args: &[&str]) -> Result<(i32, String, String)> {
    let bin = find_bin("weftctl")?;
    let mut full = vec![bin.to_str().context("utf-8 path")?];
    full.extend_from_slice(args);
    let out = ns_run(ns, &full, Duration::from_secs(10))?;
    Ok((
        out.status.code().unwrap_or(-1),
        out.stdout.clone(),
        out.stderr.clone(),
    ))
}

// ---------------------------------------------------------------------------------------------

#[test]
fn management_api() {
    run_e2e("api::management_api", BUDGET, body);
}

fn with_port<T: Into<String>>(mut overrides: Vec<String>, extra: T) -> Vec<String> {
    overrides.push(extra.into());
    overrides
}

fn body(tb: &Testbed) -> Result<()> {
    let docs = documented()?;
    let sn_host = tb.add_public_host("sn", false)?;
    let h1 = tb.add_public_host("e1", false)?;
    let h2 = tb.add_public_host("e2", false)?;
    let mut sn_cfg = SupernodeConfig::default();
    sn_cfg.overrides = with_port(sn_cfg.overrides, format!("management.port={PORT}"));
    let sn = tb.start_supernode(&sn_host, &sn_cfg)?;
    sn.wait_ready(tb, Duration::from_secs(10))?;
    let mut c1 = EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()).static_ip("10.201.0.1/24");
    c1.overrides = with_port(c1.overrides, format!("management.port={PORT}"));
    let e1 = tb.start_edge(&h1, &c1)?;
    e1.d.wait_ready(tb, Duration::from_secs(10))?;

    // Events: subscribe on e1 before e2 exists, then expect e2's peer_up.
    let ns1 = e1.ns.clone();
    let events = std::thread::spawn(move || -> Result<Vec<String>> {
        in_netns(&ns1, || {
            let client = Client::new(Target::from_url(&format!("http://127.0.0.1:{PORT}"))?)
                .with_timeout(Duration::from_secs(5));
            let mut events = client.events_blocking(Duration::from_secs(1))?;
            let mut lines = Vec::new();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(20) {
                match events.next_event() {
                    Ok(None) => break,
                    Ok(Some((kind, data))) => {
                        lines.push(format!("event: {kind}\ndata: {data}\n"));
                        if kind == "peer_up" {
                            break;
                        }
                    }
                    // Silence (the keepalive comes every 15 s): keep waiting until the deadline.
                    Err(ClientError::Timeout(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(lines)
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut c2 = EdgeConfig::new(COMMUNITY, SECRET, &sn.addr()).static_ip("10.201.0.2/24");
    c2.overrides = with_port(c2.overrides, format!("management.port={PORT}"));
    let e2 = tb.start_edge(&h2, &c2)?;
    e2.d.wait_ready(tb, Duration::from_secs(10))?;
    wait_paths(tb, &[&e1, &e2], "direct", Duration::from_secs(20))?;
    let lines = events.join().expect("event reader")?;
    let text = lines.concat();
    ensure!(
        text.contains("event: peer_up") && text.contains("\"path\":") && text.contains("time_ms"),
        "no peer_up event on /events; got:\n{text}"
    );
    tb.step("events: peer_up arrived on /events");

    // Every read method, both daemons, against the documented schema (over the unix socket).
    let reads = [
        "get_info",
        "get_edges",
        "get_supernodes",
        "get_communities",
        "get_packetstats",
        "get_timestamps",
        "get_verbose",
    ];
    for (d, role) in [(&e1.d, "edge"), (&sn.d, "supernode")] {
        for m in reads {
            let r = d.call(m, Value::Null)?;
            check_schema(&docs, m, role, &r).with_context(|| format!("{role} {m}"))?;
        }
        ensure!(
            d.call("get_info", Value::Null)?["role"] == role,
            "role of {}",
            d.label
        );
    }
    let peers = e1.d.call("get_edges", Value::Null)?;
    ensure!(
        peers.as_array().map(Vec::len) == Some(1),
        "e1 sees one peer: {peers}"
    );
    let paged = e1.d.call("get_edges", json!({"offset": 1, "limit": 5}))?;
    ensure!(paged == json!([]), "second page is empty: {paged}");
    let sn_edges = sn.d.call("get_edges", json!({"limit": 1}))?;
    ensure!(
        sn_edges.as_array().map(Vec::len) == Some(1),
        "limit 1: {sn_edges}"
    );

    // Writes over the unix socket as root are authorised.
    let r = e1.d.call("set_verbose", json!([3]))?;
    check_schema(&docs, "set_verbose", "edge", &r)?;
    ensure!(
        e1.d.call("get_verbose", Value::Null)?["verbose"] == 3,
        "verbose applied"
    );
    let r = e1.d.call("reload", Value::Null)?;
    check_schema(&docs, "reload", "edge", &r)?;
    let r = sn.d.call("reload", Value::Null)?;
    check_schema(&docs, "reload", "supernode", &r)?;

    // Over TCP: writes need the password; reads do not.
    for (ns, role) in [(&e1.ns, "e1"), (&sn_host.ns, "sn")] {
        let pw = password(tb, role)?;
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"set_verbose","params":[2]}"#;
        let (_, v) = post(ns, PORT, call, None)?;
        ensure!(
            rpc_error_code(&v) == Some(-32001),
            "{role}: write without password: {v}"
        );
        let (_, v) = post(ns, PORT, call, Some("Bearer wrong"))?;
        ensure!(
            rpc_error_code(&v) == Some(-32001),
            "{role}: write with a wrong password: {v}"
        );
        let (_, v) = post(ns, PORT, call, Some(&format!("Bearer {pw}")))?;
        ensure!(
            v["result"]["verbose"] == 2,
            "{role}: write with Bearer: {v}"
        );
        let basic = base64(&format!("admin:{pw}"));
        let (_, v) = post(ns, PORT, call, Some(&format!("Basic {basic}")))?;
        ensure!(v["result"]["verbose"] == 2, "{role}: write with Basic: {v}");
        let (_, v) = post(
            ns,
            PORT,
            r#"{"jsonrpc":"2.0","id":1,"method":"get_info"}"#,
            None,
        )?;
        ensure!(
            v["result"]["version"].is_string(),
            "{role}: read without password: {v}"
        );

        // Malformed JSON-RPC gets the standard codes.
        for (body, code) in [
            ("{not json", -32700),
            (r#"{"jsonrpc":"2.0","id":1}"#, -32600),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"no_such_method"}"#,
                -32601,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"get_edges","params":{"offset":"x"}}"#,
                -32602,
            ),
        ] {
            let (_, v) = post(ns, PORT, body, None)?;
            ensure!(
                rpc_error_code(&v) == Some(code),
                "{role}: {body} -> {v}, wanted {code}"
            );
        }

        // Deeply nested write calls without the password are refused and run nothing (the check
        // once read a request its own way and jsonrpsee another), and a batch of thousands of
        // calls is refused whole; the daemon stays up with its verbosity unchanged.
        for depth in [129, 200, 10_000] {
            let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            for body in [
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":"stop","params":{deep}}}"#),
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":"reload","x":{deep}}}"#),
                format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"set_verbose","params":[5],"x":{deep}}}"#
                ),
                format!(r#"{{"jsonrpc":"2.0","method":"stop","params":{deep}}}"#),
            ] {
                let (_, v) = post(ns, PORT, &body, None)?;
                ensure!(
                    rpc_error_code(&v).is_some() && v.get("result").is_none(),
                    "{role}: deeply nested write call at depth {depth} answered {v}"
                );
            }
        }
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"get_edges"}"#;
        let batch = format!("[{}]", vec![call; 10_000].join(","));
        let (_, v) = post(ns, PORT, &batch, None)?;
        ensure!(
            rpc_error_code(&v) == Some(-32600),
            "{role}: a batch of 10,000 calls answered {}",
            v.to_string().chars().take(200).collect::<String>()
        );
        let (_, v) = post(
            ns,
            PORT,
            r#"{"jsonrpc":"2.0","id":1,"method":"get_verbose"}"#,
            None,
        )?;
        ensure!(
            v["result"]["verbose"] == 2,
            "{role}: still up, verbosity unchanged: {v}"
        );

        // /metrics passes promtool, and has the families the docs promise.
        let (status, head, metrics) = get(ns, PORT, "/metrics")?;
        ensure!(
            status == 200 && head.to_ascii_lowercase().contains("text/plain"),
            "{role} /metrics: {head}"
        );
        for family in [
            "weft_build_info",
            "weft_uptime_seconds",
            "weft_dropped_packets_total",
        ] {
            ensure!(
                metrics.contains(family),
                "{role} /metrics lacks {family}:\n{metrics}"
            );
        }
        promtool_check(&metrics).with_context(|| format!("{role} /metrics"))?;
        // The wrong password sent above is counted where an operator's monitoring sees it.
        let failures = metrics
            .lines()
            .find_map(|l| l.strip_prefix("weft_mgmt_password_failures_total "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        ensure!(
            failures.is_some_and(|n| n >= 1),
            "{role} /metrics: weft_mgmt_password_failures_total {failures:?} after a wrong password"
        );

        // The status page is served, self-contained.
        let (status, head, page) = get(ns, PORT, "/")?;
        ensure!(
            status == 200 && head.to_ascii_lowercase().contains("text/html"),
            "{role} /: {head}"
        );
        // Self-contained: no external scripts, styles, images or fonts (the SVG namespace URI is a name).
        for pattern in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "src='http",
            "href='http",
        ] {
            ensure!(
                !page.contains(pattern),
                "{role}: the page loads something from elsewhere ({pattern})"
            );
        }
        tb.figure(&format!(
            "{role}: status page {} bytes, /metrics {} bytes",
            page.len(),
            metrics.len()
        ));
    }
    let (_, _, m) = get(&e1.ns, PORT, "/metrics")?;
    ensure!(
        m.contains("weft_peers{state=\"up\",path=\"direct\"} 1"),
        "e1 counts its direct peer:\n{m}"
    );
    ensure!(
        m.contains("weft_frames_total{direction=\"tx\",path=\"direct\"}"),
        "frames by path"
    );

    // weftctl: tables, --json, exit codes.
    let sock1 = e1.d.socket();
    let sock1 = sock1.to_str().context("utf-8")?;
    let (code, out, err) = weftctl(&e1.ns, &["--socket", sock1, "edges"])?;
    ensure!(code == 0, "weftctl edges: {code} {err}");
    ensure!(
        out.contains("e2") && out.contains("direct") && out.contains("10.201.0.2"),
        "weftctl edges table:\n{out}"
    );
    let (code, out, _) = weftctl(&e1.ns, &["--socket", sock1, "--json", "edges"])?;
    ensure!(code == 0, "weftctl --json edges exit {code}");
    let v: Value = serde_json::from_str(&out).with_context(|| format!("weftctl --json: {out}"))?;
    ensure!(
        v.as_array().map(Vec::len) == Some(1) && v[0]["path"] == "direct",
        "weftctl --json: {v}"
    );
    let (code, out, _) = weftctl(&e1.ns, &["--socket", sock1, "info"])?;
    ensure!(code == 0 && out.contains(COMMUNITY), "weftctl info:\n{out}");
    let url = format!("http://127.0.0.1:{PORT}");
    let (code, _, err) = weftctl(&e1.ns, &["--url", &url, "stop"])?;
    ensure!(
        code == 4,
        "weftctl stop without password must exit 4, got {code}: {err}"
    );
    let (code, _, err) = weftctl(&e1.ns, &["--session", "no-such-session-here", "info"])?;
    ensure!(
        code == 3,
        "weftctl on a missing session must exit 3, got {code}: {err}"
    );
    let (code, _, _) = weftctl(&e1.ns, &["--socket", sock1, "no-such-command"])?;
    ensure!(code == 2, "weftctl usage error must exit 2, got {code}");

    // stop, authorised: e2 exits by itself.
    let pw2 = password(tb, "e2")?;
    let (code, out, err) = weftctl(
        &e2.ns,
        &["--url", &url, &format!("--password={pw2}"), "stop"],
    )?;
    ensure!(code == 0, "weftctl stop with password: {code} {out} {err}");
    wait_exit(&e2.d, Duration::from_secs(10))?;
    tb.step("weftctl stop: e2 exited");
    Ok(())
}

fn wait_exit(d: &Daemon, timeout: Duration) -> Result<()> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if d.ensure_running().is_err() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{} still running {timeout:?} after stop", d.label)
}

fn promtool_check(metrics: &str) -> Result<()> {
    let out = weft_e2e::cmd::run_with(
        "promtool",
        &["check", "metrics"],
        Some(metrics),
        &[],
        Duration::from_secs(10),
    )
    .context("promtool (Debian package prometheus) must be installed")?;
    let text = format!("{}{}", out.stdout, out.stderr);
    ensure!(
        out.status.success(),
        "promtool check metrics failed:\n{text}\n--- metrics:\n{metrics}"
    );
    Ok(())
}

fn base64(s: &str) -> String {
    use base64::engine::{general_purpose::STANDARD, Engine};
    STANDARD.encode(s)
}

#[test]
fn docs_api_parses_and_base64_is_right() {
    let d = documented().unwrap();
    for m in [
        "get_info",
        "get_edges",
        "get_supernodes",
        "get_communities",
        "get_packetstats",
        "get_timestamps",
    ] {
        for role in ["edge", "supernode"] {
            assert!(
                d.get(&(m.to_string(), role.to_string()))
                    .is_some_and(|f| !f.is_empty()),
                "{m} {role}"
            );
        }
    }
    assert_eq!(base64("admin:pw"), "YWRtaW46cHc=");
    assert_eq!(base64("ab"), "YWI=");
    // The checker itself catches undocumented and missing fields.
    let mut docs = BTreeMap::new();
    docs.insert(
        ("m".to_string(), "edge".to_string()),
        vec![
            ("a".to_string(), "integer".to_string()),
            ("b".to_string(), "string|null".to_string()),
        ],
    );
    assert!(check_schema(&docs, "m", "edge", &json!({"a": 1, "b": null})).is_ok());
    assert!(check_schema(&docs, "m", "edge", &json!({"a": 1})).is_err());
    assert!(check_schema(&docs, "m", "edge", &json!({"a": 1, "b": "x", "c": 2})).is_err());
    assert!(check_schema(&docs, "m", "edge", &json!({"a": "1", "b": "x"})).is_err());
}
