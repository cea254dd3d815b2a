//! The management surface beyond plain JSON-RPC on the unix socket: the TCP listener, password
//! authorisation, `/metrics`, `/events` and the status page. Only loopback addresses are bound.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::broadcast;
use weft_mgmt::client::{self, Client, ClientError, Target};

use weft_mgmt::{MetricsFn, MgmtServer, ServerEvent, WebError};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn with_tcp_and_password(s: MgmtServer) -> MgmtServer {
    s.with_password(PASSWORD.to_owned())
        .with_tcp(loopback(), false)
        .await
        .unwrap()
}

fn metrics_text(text: &'static str) -> MetricsFn {
    Arc::new(move || Box::pin(async move { text.to_owned() }))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::time::timeout(TIMEOUT * 2, tokio::task::spawn_blocking(f))
        .await
        .expect("blocking client took too long")
        .unwrap()
}

#[tokio::test]
async fn unix_socket_peer_running_as_root_or_daemon_user_may_write() {
    // The test process is both the daemon and the client: its uid is the daemon's (and 0 here).
    let s = start("u", module("edge"), async |s| {
        s.with_password(PASSWORD.to_owned())
    })
    .await;
    let sock = s.sock.clone();
    let r =
        blocking(move || client::call_blocking(&sock, "set_verbose", json!([3]), TIMEOUT)).await;
    assert_eq!(r.unwrap(), json!({ "verbose": 3 }));
    assert_eq!(
        client::call(&s.sock, "stop", Value::Null).await.unwrap(),
        json!({ "stopping": true })
    );
    s.shutdown().await;
}

#[tokio::test]
async fn tcp_loopback_write_methods_need_the_password() {
    let s = start("t", module("edge"), with_tcp_and_password).await;
    let addr = s.tcp[0];
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    let target = Target::from_url(&s.url()).unwrap();

    // Read methods need nothing.
    let anon = Client::new(target.clone()).with_timeout(TIMEOUT);
    let c = anon.clone();
    let info = blocking(move || c.call_blocking("get_info", Value::Null)).await;
    assert_eq!(info.unwrap()["role"], json!("edge"));
    assert_eq!(
        anon.call("get_verbose", Value::Null).await.unwrap(),
        json!({"verbose": 2})
    );

    // Write methods without, or with a wrong, password: -32001.
    for client in [
        anon.clone(),
        anon.clone().with_password(Some("wrong".to_owned())),
        anon.clone().with_password(Some("correct hors".to_owned())),
    ] {
        let c = client.clone();
        let err = blocking(move || c.call_blocking("set_verbose", json!([4])))
            .await
            .unwrap_err();
        assert_eq!(err.rpc_code(), Some(-32001), "{err}");
        assert!(err.is_unauthorized());
        match &err {
            ClientError::Rpc(e) => assert_eq!(
                e.message,
                "unauthorized: this method needs the management password"
            ),
            other => panic!("{other:?}"),
        }
        let err = client.call("stop", Value::Null).await.unwrap_err();
        assert_eq!(err.rpc_code(), Some(-32001), "{err}");
    }
    assert_eq!(
        anon.call("get_verbose", Value::Null).await.unwrap(),
        json!({"verbose": 2})
    );

    // Bearer (the client's way), async and blocking.
    let authed = anon.clone().with_password(Some(PASSWORD.to_owned()));
    let c = authed.clone();
    let r = blocking(move || c.call_blocking("set_verbose", json!([4]))).await;
    assert_eq!(r.unwrap(), json!({"verbose": 4}));
    assert_eq!(
        authed.call("reload", Value::Null).await.unwrap()["reloaded"],
        json!(["communities"])
    );

    // Basic, any user name (base64 of "admin:correct horse" and ":correct horse").
    for basic in ["YWRtaW46Y29ycmVjdCBob3JzZQ==", "OmNvcnJlY3QgaG9yc2U="] {
        let r = tcp(
            addr,
            request(
                "POST",
                "/v1",
                &[&format!("Authorization: Basic {basic}")],
                &call_body("stop"),
            ),
        )
        .await;
        assert_eq!(r.json()["result"], json!({"stopping": true}), "{}", r.body);
    }
    // Basic with a wrong password (base64 of "admin:wrong").
    let r = tcp(
        addr,
        request(
            "POST",
            "/v1",
            &["Authorization: Basic YWRtaW46d3Jvbmc="],
            &call_body("stop"),
        ),
    )
    .await;
    assert_eq!(r.json()["error"]["code"], json!(-32001));

    // Batches: each call on its own; refused notifications are neither run nor answered.
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"get_verbose"},
                    {"jsonrpc":"2.0","id":2,"method":"set_verbose","params":[0]},
                    {"jsonrpc":"2.0","method":"set_verbose","params":[1]},
                    {"jsonrpc":"2.0","id":3,"method":"get_verbose"}]"#;
    let r = tcp(addr, request("POST", "/v1", &[], batch)).await;
    let v = r.json();
    assert_eq!(v.as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v[0]["result"], json!({"verbose": 4}));
    assert_eq!(v[1]["error"]["code"], json!(-32001));
    assert_eq!(v[1]["id"], json!(2));
    assert_eq!(v[2]["result"], json!({"verbose": 4}));
    s.shutdown().await;
}

#[tokio::test]
async fn write_methods_are_configurable() {
    let s = start("w", module("edge"), async |s| {
        with_tcp_and_password(s)
            .await
            .with_write_methods(&["get_verbose"])
    })
    .await;
    let anon = Client::new(Target::from_url(&s.url()).unwrap());
    let err = anon.call("get_verbose", Value::Null).await.unwrap_err();
    assert_eq!(err.rpc_code(), Some(-32001));
    assert_eq!(
        anon.call("set_verbose", json!([1])).await.unwrap(),
        json!({"verbose": 1})
    );
    s.shutdown().await;
}

#[tokio::test]
async fn non_loopback_addresses_need_allow_remote_and_a_password() {
    // Nothing here is bound: the checks come first.
    let dir = tempfile::tempdir().unwrap();
    let sock = weft_mgmt::socket_path(dir.path(), "r");
    for addr in ["192.0.2.1:5644", "0.0.0.0:5644", "[2001:db8::1]:5644"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let server = MgmtServer::bind_unix(&sock, module("edge")).await.unwrap();
        let err = server.with_tcp(addr, false).await.unwrap_err();
        assert!(matches!(err, WebError::RemoteNotAllowed { .. }), "{err:?}");
        assert!(
            err.to_string().contains(
                "binding a non-loopback management address needs [management] allow_remote = true"
            ),
            "{err}"
        );
        let server = MgmtServer::bind_unix(&sock, module("edge")).await.unwrap();
        let err = server.with_tcp(addr, true).await.unwrap_err();
        assert!(
            matches!(err, WebError::RemoteWithoutPassword { .. }),
            "{err:?}"
        );
    }
    // An empty password is no password.
    let server = MgmtServer::bind_unix(&sock, module("edge")).await.unwrap();
    let err = server
        .with_password(String::new())
        .with_tcp_as_remote(loopback())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebError::RemoteWithoutPassword { .. }),
        "{err:?}"
    );
    // Loopback needs neither.
    let server = MgmtServer::bind_unix(&sock, module("edge")).await.unwrap();
    let server = server.with_tcp("[::1]:0".parse().unwrap(), false).await;
    // (IPv6 may be disabled on the machine; then only the bind fails.)
    if let Err(e) = &server {
        assert!(matches!(e, WebError::TcpBind { .. }), "{e:?}");
    }
}

#[tokio::test]
async fn remote_listener_needs_the_password_on_every_route() {
    let (tx, _rx) = broadcast::channel(8);
    let s = start("r", module("edge"), async |s| {
        s.with_password(PASSWORD.to_owned())
            .with_metrics(metrics_text("weft_up 1\n"))
            .with_events(tx)
            .with_tcp_as_remote(loopback())
            .await
            .unwrap()
    })
    .await;
    let addr = s.tcp[0];
    for (method, path) in [
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/metrics"),
        ("GET", "/events"),
        ("POST", "/v1"),
        ("GET", "/nope"),
    ] {
        let body = if method == "POST" {
            call_body("get_info")
        } else {
            String::new()
        };
        let r = tcp(addr, request(method, path, &[], &body)).await;
        assert_eq!(r.status, 401, "{method} {path}");
        assert_eq!(
            r.header("www-authenticate").as_deref(),
            Some("Basic realm=\"weft\"")
        );
        let r = tcp(
            addr,
            request(method, path, &["Authorization: Bearer nope"], &body),
        )
        .await;
        assert_eq!(r.status, 401, "{method} {path} with a wrong password");
    }
    // With it: everything, write methods included.
    let auth = "Authorization: Basic dXNlcjpjb3JyZWN0IGhvcnNl"; // user:correct horse
    let r = tcp(addr, request("GET", "/", &[auth], "")).await;
    assert_eq!(r.status, 200);
    let r = tcp(addr, request("GET", "/metrics", &[auth], "")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "weft_up 1\n"));
    let r = tcp(addr, request("GET", "/nope", &[auth], "")).await;
    assert_eq!(r.status, 404);
    let client =
        Client::new(Target::from_url(&s.url()).unwrap()).with_password(Some(PASSWORD.to_owned()));
    assert_eq!(
        client.call("stop", Value::Null).await.unwrap(),
        json!({"stopping": true})
    );
    let err = Client::new(Target::from_url(&s.url()).unwrap())
        .call("get_info", Value::Null)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Status { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.is_unauthorized());
    // The unix socket is unaffected.
    assert_eq!(
        client::call(&s.sock, "get_info", Value::Null)
            .await
            .unwrap()["role"],
        json!("edge")
    );
    s.shutdown().await;
}

#[tokio::test]
async fn browsers_cannot_be_used_against_the_loopback_listener() {
    let s = start("b", module("edge"), with_tcp_and_password).await;
    let addr = s.tcp[0];
    let host = format!("Host: {addr}");
    let r = tcp(
        addr,
        request(
            "POST",
            "/v1",
            &["Origin: http://evil.example"],
            &call_body("get_info"),
        ),
    )
    .await;
    assert_eq!(r.status, 403);
    // A page of a rebound domain.
    let r = tcp(addr, request("GET", "/", &["Host: rebind.example:80"], "")).await;
    assert_eq!(r.status, 403);
    // The status page itself (same origin) is fine.
    let same = format!("Origin: http://{addr}");
    let r = tcp(
        addr,
        request("POST", "/v1", &[&same, &host], &call_body("get_info")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.shutdown().await;
}

#[tokio::test]
async fn metrics_come_from_the_callback() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = calls.clone();
    let s = start("m", module("edge"), async move |s| {
        s.with_metrics(Arc::new(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            Box::pin(async move { format!("# TYPE weft_scrapes counter\nweft_scrapes {n}\n") })
        }))
        .with_tcp(loopback(), false)
        .await
        .unwrap()
    })
    .await;
    for n in 1..=2 {
        let r = tcp(s.tcp[0], request("GET", "/metrics", &[], "")).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert_eq!(
            r.body,
            format!("# TYPE weft_scrapes counter\nweft_scrapes {n}\n")
        );
    }
    // Through the blocking client, on the unix socket too.
    let c = Client::new(Target::Unix(s.sock.clone()));
    let body = blocking(move || c.get_blocking("/metrics")).await.unwrap();
    assert!(String::from_utf8(body)
        .unwrap()
        .ends_with("weft_scrapes 3\n"));
    let r = tcp(s.tcp[0], request("POST", "/metrics", &[], "")).await;
    assert_eq!(r.status, 405);
    s.shutdown().await;
}

#[tokio::test]
async fn status_page_is_served_with_its_csp() {
    let s = start("p", module("edge"), async |s| {
        s.with_tcp(loopback(), false).await.unwrap()
    })
    .await;
    let page = include_str!("../assets/status.html");
    let r = tcp(s.tcp[0], request("GET", "/", &[], "")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, page);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        r.header("content-security-policy").as_deref(),
        Some(
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:"
        )
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    // HEAD: same head, no body.
    let r = tcp(s.tcp[0], request("HEAD", "/", &[], "")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(page.len().to_string()));
    assert!(r.body.is_empty());
    s.shutdown().await;
}

/// A server with events whose keepalive is `keepalive`, on the unix socket only.
async fn with_events(
    capacity: usize,
    keepalive: Duration,
) -> (Running, broadcast::Sender<ServerEvent>) {
    let (tx, _) = broadcast::channel(capacity);
    let events = tx.clone();
    let s = start("e", module("edge"), async move |s| {
        s.with_events(events).with_event_keepalive(keepalive)
    })
    .await;
    (s, tx)
}

#[tokio::test]
async fn events_arrive_in_order_and_end_with_the_server() {
    let (s, tx) = with_events(64, Duration::from_secs(60)).await;
    let client = Client::new(Target::Unix(s.sock.clone()));
    let mut stream = blocking(move || client.events_blocking(TIMEOUT))
        .await
        .unwrap();
    assert_eq!(tx.receiver_count(), 1);
    let sent: Vec<ServerEvent> = (0..20)
        .map(|i| {
            ServerEvent::json(
                if i % 2 == 0 { "peer_up" } else { "peer_down" },
                json!({ "peer": i }),
            )
        })
        .collect();
    for e in &sent {
        tx.send(e.clone()).unwrap();
    }
    let (got, mut stream) = blocking(move || {
        let got: Vec<(String, String)> = (0..20)
            .map(|_| stream.next_event().unwrap().unwrap())
            .collect();
        (got, stream)
    })
    .await;
    for (e, (kind, data)) in sent.iter().zip(&got) {
        assert_eq!((&e.kind, &e.data), (kind, data));
        let v: Value = serde_json::from_str(data).unwrap();
        assert!(v["time_ms"].as_u64().is_some(), "{data}");
    }
    // Shutdown ends the stream cleanly.
    let reader = tokio::task::spawn_blocking(move || stream.next_event());
    s.shutdown().await;
    let end = tokio::time::timeout(TIMEOUT, reader)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
    assert_eq!(tx.receiver_count(), 0);
}

#[tokio::test]
async fn events_wire_format_and_keepalives() {
    let (tx, _) = broadcast::channel(8);
    let events = tx.clone();
    let s = start("k", module("edge"), async move |s| {
        s.with_events(events)
            .with_event_keepalive(Duration::from_millis(100))
            .with_tcp(loopback(), false)
            .await
            .unwrap()
    })
    .await;
    let addr = s.tcp[0];
    // Raw bytes on purpose: this checks the SSE wire format itself (keepalive comments included),
    // which an event-stream client by design hides.
    let reader = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        c.set_read_timeout(Some(TIMEOUT)).unwrap();
        c.write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let wanted = |b: &[u8]| {
            let t = String::from_utf8_lossy(b);
            t.contains("event: peer_up\ndata: {\"peer\":\"p1\"}\n\n")
                && t.matches(": keepalive\n\n").count() >= 2
        };
        while !wanted(&buf) {
            let n = c.read(&mut chunk).unwrap();
            assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8(buf).unwrap()
    });
    // Wait until the client is subscribed, then send.
    tokio::time::timeout(TIMEOUT, async {
        while tx.receiver_count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    tx.send(ServerEvent::new("peer_up", r#"{"peer":"p1"}"#))
        .unwrap();
    let text = tokio::time::timeout(TIMEOUT * 2, reader)
        .await
        .unwrap()
        .unwrap();
    let lower = text.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200"), "{text}");
    assert!(
        lower.contains("content-type: text/event-stream\r\n"),
        "{text}"
    );
    assert!(lower.contains("cache-control: no-cache\r\n"), "{text}");
    s.shutdown().await;
}

#[tokio::test]
async fn lagging_clients_skip_and_are_told() {
    let (s, tx) = with_events(4, Duration::from_secs(60)).await;
    let client = Client::new(Target::Unix(s.sock.clone()));
    let mut stream = blocking(move || client.events_blocking(TIMEOUT))
        .await
        .unwrap();
    // All sent before the stream's task gets to run (this runtime has one thread): it falls 6
    // behind on the 4-slot channel.
    for i in 0..10 {
        tx.send(ServerEvent::new("tick", format!(r#"{{"n":{i}}}"#)))
            .unwrap();
    }
    let got = blocking(move || {
        (0..5)
            .map(|_| stream.next_event().unwrap().unwrap())
            .collect::<Vec<_>>()
    })
    .await;
    assert_eq!(got[0].0, "lagged");
    let v: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(v["missed"], json!(6), "{v}");
    let ns: Vec<&str> = got[1..].iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(ns, [r#"{"n":6}"#, r#"{"n":7}"#, r#"{"n":8}"#, r#"{"n":9}"#]);
    s.shutdown().await;
}

#[tokio::test]
async fn event_streams_are_bounded() {
    let (tx, _) = broadcast::channel::<ServerEvent>(8);
    let events = tx.clone();
    let s = start("n", module("edge"), async move |s| {
        s.with_events(events).with_max_event_streams(2)
    })
    .await;
    let target = Target::Unix(s.sock.clone());
    let c = Client::new(target.clone());
    let open = blocking(move || {
        (
            c.events_blocking(TIMEOUT).unwrap(),
            c.events_blocking(TIMEOUT).unwrap(),
        )
    })
    .await;
    let c = Client::new(target.clone());
    let err = blocking(move || c.events_blocking(TIMEOUT))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ClientError::Status { status: 503, .. }),
        "{err:?}"
    );
    // Closing one frees its slot.
    drop(open.0);
    let c = Client::new(target);
    let reopened = tokio::time::timeout(TIMEOUT, async {
        loop {
            let c = c.clone();
            match blocking(move || c.events_blocking(TIMEOUT)).await {
                Ok(stream) => break stream,
                Err(ClientError::Status { status: 503, .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await
    .unwrap();
    drop((reopened, open.1));
    s.shutdown().await;
}

#[tokio::test]
async fn client_targets_and_errors() {
    // Nothing listening on the port: a connect error.
    let url = format!("http://127.0.0.1:{}", closed_port());
    let c = Client::new(Target::from_url(&url).unwrap()).with_timeout(TIMEOUT);
    let c2 = c.clone();
    let err = blocking(move || c2.call_blocking("get_info", Value::Null))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::ConnectTcp { .. }), "{err:?}");
    assert!(err.is_unreachable());
    let err = c.call("get_info", Value::Null).await.unwrap_err();
    assert!(matches!(err, ClientError::ConnectTcp { .. }), "{err:?}");
    assert!(matches!(
        Target::from_url("https://127.0.0.1:1"),
        Err(ClientError::InvalidTarget(_))
    ));
}
