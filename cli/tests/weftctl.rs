//! `weftctl` against fake daemons: tables, `--json`, `watch`, exit codes and session discovery.

// The fake daemons and the server harness are the management crate's own test fixtures.
#[path = "../../mgmt/tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use weft_mgmt::{socket_path, ServerEvent};

/// What a weftctl run produced.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Start weftctl with `args`, `WEFT_RUNTIME_DIR=runtime_dir` and no `WEFT_PASSWORD`.
fn spawn(runtime_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weftctl"));
    cmd.args(args)
        .env("WEFT_RUNTIME_DIR", runtime_dir)
        .env_remove("WEFT_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start weftctl")
}

/// Wait (at most 10 s, then kill) for `child` and collect its output.
fn finish(mut child: Child) -> Out {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("weftctl did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Out {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Run weftctl to completion, off the runtime's thread (the server runs on it).
async fn weftctl_env(runtime_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let dir = runtime_dir.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        finish(spawn(&dir, &args, &env))
    })
    .await
    .unwrap()
}

async fn weftctl(runtime_dir: &Path, args: &[&str]) -> Out {
    weftctl_env(runtime_dir, args, &[]).await
}

fn ok(out: &Out) -> &str {
    assert_eq!(out.code, 0, "{out:?}");
    &out.stdout
}

/// The value of `key` in weftctl's `key: value` output.
fn kv<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::trim))
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn edge_tables_and_json() {
    let s = start("home", module("edge"), async |s| s).await;
    let rt = s.dir.path();
    let sock = s.sock.to_str().unwrap();

    // The only session: found by itself.
    let out = weftctl(rt, &["edges"]).await;
    let table = ok(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "DESCRIPTION",
            "IP",
            "MAC",
            "STATE",
            "PATH",
            "ADDRESS",
            "RTT",
            "LAST",
            "SEEN",
            "RX",
            "TX"
        ],
        "{table}"
    );
    for (line, want) in lines[1..].iter().zip([
        [
            "laptop",
            "10.130.70.249",
            "86:25:62:76:d5:6e",
            "up",
            "direct",
            "203.0.113.22:45944",
            "0.6 ms",
            "2 s ago",
            "1.2 MB",
            "310 kB",
        ],
        [
            "nas",
            "10.130.70.207",
            "be:ac:10:f4:21:60",
            "up",
            "relayed",
            "via 198.51.100.1:7654",
            "-",
            "1 s ago",
            "48 kB",
            "51 kB",
        ],
    ]) {
        for cell in want {
            assert!(line.contains(cell), "{cell:?} missing in {line:?}\n{table}");
        }
    }
    // Columns are aligned.
    let col = lines[0].find("STATE").unwrap();
    assert!(
        lines[1..].iter().all(|l| &l[col..col + 2] == "up"),
        "{table}"
    );

    // --json: exactly the method's result.
    for (cmd, method_result) in [
        ("edges", edge_peers()),
        (
            "communities",
            json!([{"community_id": "c0ffee", "name": "home", "edges": 3}]),
        ),
        ("stop", json!({"stopping": true})),
    ] {
        let out = weftctl(rt, &["--socket", sock, "--json", cmd]).await;
        let v: Value = serde_json::from_str(ok(&out)).unwrap();
        assert_eq!(v, method_result, "{cmd}");
    }
    let out = weftctl(rt, &["--json", "info"]).await;
    let v: Value = serde_json::from_str(ok(&out)).unwrap();
    assert_eq!(v["role"], json!("edge"));

    // Objects as key: value lines.
    let out = weftctl(rt, &["--session", "home", "info"]).await;
    let info = ok(&out);
    assert!(info.starts_with("role:"), "{info}");
    assert_eq!(kv(info, "session"), Some("home"), "{info}");
    assert_eq!(kv(info, "registered"), Some("yes"), "{info}");
    assert_eq!(kv(info, "uptime_s"), Some("1 h 2 min"), "{info}");
    assert!(
        info.contains("\n  addr=198.51.100.1:7654 registered=yes\n"),
        "{info}"
    );
    let out = weftctl(rt, &["stats"]).await;
    assert_eq!(
        kv(ok(&out), "rx_bytes"),
        Some("1.2 MB (1248000)"),
        "{}",
        out.stdout
    );
    let out = weftctl(rt, &["supernodes"]).await;
    let t = ok(&out);
    assert!(t.starts_with("ADDRESS"), "{t}");
    assert!(
        t.contains("198.51.100.1:7654") && t.contains("registered") && t.contains("12 ms"),
        "{t}"
    );
    let out = weftctl(rt, &["communities"]).await;
    assert!(ok(&out).contains("home"), "{}", out.stdout);

    // verbose: read, set (root on the unix socket may), read back.
    assert_eq!(ok(&weftctl(rt, &["verbose"]).await), "verbose: 2\n");
    assert_eq!(ok(&weftctl(rt, &["verbose", "3"]).await), "verbose: 3\n");
    assert_eq!(ok(&weftctl(rt, &["verbose"]).await), "verbose: 3\n");
    let out = weftctl(rt, &["reload"]).await;
    assert_eq!(
        kv(ok(&out), "reloaded"),
        Some("communities"),
        "{}",
        out.stdout
    );
    assert_eq!(
        kv(ok(&out), "restart_needed"),
        Some("tap"),
        "{}",
        out.stdout
    );
    assert_eq!(
        ok(&weftctl(rt, &["stop"]).await),
        "the daemon is stopping\n"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn supernode_edges_have_their_own_columns() {
    let s = start("sn", module("supernode"), async |s| s).await;
    let out = weftctl(s.dir.path(), &["edges"]).await;
    let t = ok(&out);
    let header: Vec<&str> = t.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "COMMUNITY",
            "DESCRIPTION",
            "IP",
            "MAC",
            "ADDRESS",
            "LAST",
            "SEEN"
        ],
        "{t}"
    );
    assert!(
        t.contains("home") && t.contains("203.0.113.22:45944") && t.contains("3 s ago"),
        "{t}"
    );
    let out = weftctl(s.dir.path(), &["info"]).await;
    assert_eq!(kv(ok(&out), "role"), Some("supernode"), "{}", out.stdout);
    assert_eq!(kv(ok(&out), "uptime_s"), Some("1 min"), "{}", out.stdout);
    // A method the daemon does not have: the daemon's error, exit 1.
    let out = weftctl(s.dir.path(), &["supernodes"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("-32601"), "{out:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn tcp_password_and_exit_codes() {
    let s = start("pw", module("edge"), async |s| {
        s.with_password(PASSWORD.to_owned())
            .with_tcp(loopback(), false)
            .await
            .unwrap()
    })
    .await;
    let rt_dir = tempfile::tempdir().unwrap();
    let rt = rt_dir.path();
    let url = s.url();

    // Reading needs no password.
    let out = weftctl(rt, &["--url", &url, "--json", "edges"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(ok(&out)).unwrap(),
        edge_peers()
    );
    // Writing does: 4 without, or with a wrong one.
    let out = weftctl(rt, &["--url", &url, "stop"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("unauthorized"), "{out:?}");
    let out = weftctl(rt, &["--url", &url, "--password", "wrong", "verbose", "1"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    // With it, on the command line, from the environment or from a file.
    let out = weftctl(rt, &["--url", &url, "--password", PASSWORD, "stop"]).await;
    assert_eq!(ok(&out), "the daemon is stopping\n");
    let out = weftctl_env(
        rt,
        &["--url", &url, "verbose", "1"],
        &[("WEFT_PASSWORD", PASSWORD)],
    )
    .await;
    assert_eq!(ok(&out), "verbose: 1\n");
    let file = rt.join("management.password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let out = weftctl(
        rt,
        &[
            "--url",
            &url,
            "--password-file",
            file.to_str().unwrap(),
            "reload",
        ],
    )
    .await;
    ok(&out);
    s.shutdown().await;

    // A remote-mode listener: even reading needs the password (HTTP 401 → 4).
    let s = start("remote", module("edge"), async |s| {
        s.with_password(PASSWORD.to_owned())
            .with_tcp_as_remote(loopback())
            .await
            .unwrap()
    })
    .await;
    let url = s.url();
    let out = weftctl(rt, &["--url", &url, "info"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    let out = weftctl(rt, &["--url", &url, "--password", PASSWORD, "info"]).await;
    assert!(ok(&out).contains("role:"), "{out:?}");
    s.shutdown().await;

    // Nothing there: 3.
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let out = weftctl(rt, &["--url", &closed, "info"]).await;
    assert_eq!(out.code, 3, "{out:?}");
    let out = weftctl(
        rt,
        &["--socket", rt.join("nope/mgmt").to_str().unwrap(), "info"],
    )
    .await;
    assert_eq!(out.code, 3, "{out:?}");
    let out = weftctl(rt, &["--session", "nope", "info"]).await;
    assert_eq!(out.code, 3, "{out:?}");

    // Usage errors: 2.
    for args in [
        &["frobnicate"][..],
        &[][..],
        &["verbose", "9"][..],
        &["--url", "https://127.0.0.1:1", "info"][..],
        &["--url", "http://127.0.0.1:1", "--socket", "/x", "info"][..],
        &["--session", "../etc", "info"][..],
    ] {
        let out = weftctl(rt, args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
    }
    let out = weftctl(rt, &["--help"]).await;
    assert!(ok(&out).contains("watch"), "{out:?}");
}

#[tokio::test]
async fn session_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let rt = dir.path().to_owned();

    // None running (and a missing runtime dir is the same).
    let out = weftctl(&rt.join("missing"), &["info"]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("no running weft daemon found under"),
        "{out:?}"
    );
    // A stale socket (its daemon is gone) does not count.
    let stale = socket_path(&rt, "stale");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let out = weftctl(&rt, &["info"]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "weftctl: no running weft daemon found under {}\n",
            rt.display()
        )
    );

    // One running: used.
    let a = start_in(dir, "alpha", module("edge"), async |s| s).await;
    let out = weftctl(&rt, &["--json", "get_info"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    let out = weftctl(&rt, &["--json", "info"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(ok(&out)).unwrap()["session"],
        json!("home")
    );

    // Two: the user must choose.
    let b_dir = tempfile::tempdir().unwrap();
    let b_sock = socket_path(&rt, "beta");
    let b = {
        // Serve "beta" in the same runtime dir (its TempDir only keeps the handle).
        let server = weft_mgmt::MgmtServer::bind_unix(&b_sock, module("supernode"))
            .await
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        (stop, task, b_dir)
    };
    let out = weftctl(&rt, &["info"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("several sessions are running: alpha, beta; choose one with --session"),
        "{out:?}"
    );
    let out = weftctl(&rt, &["--session", "beta", "--json", "info"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(ok(&out)).unwrap()["role"],
        json!("supernode")
    );
    let out = weftctl(&rt, &["--session", "alpha", "--json", "info"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(ok(&out)).unwrap()["role"],
        json!("edge")
    );

    b.0.send(()).unwrap();
    tokio::time::timeout(TIMEOUT, b.1)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    a.shutdown().await;
}

/// Start `weftctl watch` and wait until it is subscribed.
async fn watching(
    rt: &Path,
    args: &[&str],
    tx: &broadcast::Sender<ServerEvent>,
) -> tokio::task::JoinHandle<Out> {
    let before = tx.receiver_count();
    let child = spawn(rt, args, &[]);
    let handle = tokio::task::spawn_blocking(move || finish(child));
    tokio::time::timeout(TIMEOUT, async {
        while tx.receiver_count() == before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("weftctl watch did not subscribe");
    handle
}

#[tokio::test]
async fn watch_follows_events_until_the_daemon_stops() {
    let (tx, _) = broadcast::channel(64);
    let events = tx.clone();
    let s = start("w", module("edge"), async move |s| {
        s.with_events(events)
            .with_event_keepalive(Duration::from_millis(50))
    })
    .await;
    let rt = s.dir.path().to_owned();
    let json_watch = watching(&rt, &["--json", "watch"], &tx).await;
    let human_watch = watching(&rt, &["watch"], &tx).await;
    let sent = [
        ServerEvent::json(
            "peer_up",
            json!({"peer": "K1", "description": "laptop", "path": "direct", "addr": "203.0.113.22:1", "time_ms": 0}),
        ),
        ServerEvent::json(
            "path_changed",
            json!({"peer": "K1", "description": "laptop", "path": "relayed", "addr": null}),
        ),
        ServerEvent::json("peer_down", json!({"peer": "K1", "description": "laptop"})),
    ];
    for e in &sent {
        tx.send(e.clone()).unwrap();
    }
    // Let the keepalives flow a little; they are not printed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.shutdown().await;

    let out = tokio::time::timeout(TIMEOUT * 2, json_watch)
        .await
        .unwrap()
        .unwrap();
    let lines: Vec<&str> = ok(&out).lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    for (line, e) in lines.iter().zip(&sent) {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["event"], json!(e.kind));
        assert_eq!(v["data"], serde_json::from_str::<Value>(&e.data).unwrap());
    }
    let out = tokio::time::timeout(TIMEOUT * 2, human_watch)
        .await
        .unwrap()
        .unwrap();
    let lines: Vec<&str> = ok(&out).lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(
        lines[0].contains("peer_up")
            && lines[0].contains("peer=K1")
            && lines[0].contains("path=direct"),
        "{out:?}"
    );
    assert!(
        lines[1].contains("path_changed") && lines[1].contains("addr=-"),
        "{out:?}"
    );
    assert!(lines[2].contains("peer_down"), "{out:?}");
    assert!(out.stderr.contains("closed the event stream"), "{out:?}");
}
