//! End-to-end tests of the management server and client over a real unix socket in a temp dir.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use weft_mgmt::client::{self, Client, ClientError, Request, Target};
use weft_mgmt::jsonrpsee::types::ErrorObjectOwned;
use weft_mgmt::jsonrpsee::RpcModule;
use weft_mgmt::{socket_path, MgmtServer, WebError};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Commands a fake daemon event loop understands; `peers` is answered by the loop, the way a real
/// daemon answers questions about its state.
enum Command {
    Peers(oneshot::Sender<Vec<String>>),
}

fn module(events: mpsc::Sender<Command>) -> RpcModule<()> {
    let mut m = RpcModule::new(());
    m.register_method("echo", |params, _, _| {
        params.parse::<Value>().unwrap_or(Value::Null)
    })
    .unwrap();
    m.register_method("add", |params, _, _| {
        let (a, b): (i64, i64) = params.parse()?;
        Ok::<_, ErrorObjectOwned>(a + b)
    })
    .unwrap();
    m.register_method("fail", |_, _, _| {
        Err::<(), _>(ErrorObjectOwned::owned(
            4242,
            "peer table locked",
            Some(json!({ "retry": true })),
        ))
    })
    .unwrap();
    m.register_async_method("peers", move |_, _, _| {
        let events = events.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            let unavailable = || ErrorObjectOwned::owned(-32000, "event loop gone", None::<()>);
            events
                .send(Command::Peers(tx))
                .await
                .map_err(|_| unavailable())?;
            rx.await.map_err(|_| unavailable())
        }
    })
    .unwrap();
    m
}

/// A running server plus the handles to stop it.
struct Running {
    /// Keeps the temp dir alive when the test did not create its own.
    _dir: Option<tempfile::TempDir>,
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), WebError>>,
}

impl Running {
    async fn shutdown(mut self) -> Result<(), WebError> {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(TIMEOUT, &mut self.task)
            .await
            .expect("server did not stop")
            .unwrap()
    }
}

async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path(), "test0");
    let running = start_at(&path).await;
    Running {
        _dir: Some(dir),
        ..running
    }
}

async fn start_at(path: &Path) -> Running {
    let (events_tx, mut events_rx) = mpsc::channel(8);
    // The fake event loop.
    tokio::spawn(async move {
        while let Some(Command::Peers(reply)) = events_rx.recv().await {
            let _ = reply.send(vec!["alice".to_owned(), "bob".to_owned()]);
        }
    });
    let server = MgmtServer::bind_unix(path, module(events_tx))
        .await
        .unwrap()
        .with_daemon_name("weft-test");
    assert_eq!(server.socket_path(), Some(path));
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Running {
        _dir: None,
        path: path.to_owned(),
        stop: Some(stop),
        task,
    }
}

async fn blocking(path: &Path, method: &str, params: Value) -> Result<Value, ClientError> {
    let path = path.to_owned();
    let method = method.to_owned();
    tokio::task::spawn_blocking(move || client::call_blocking(&path, &method, params, TIMEOUT))
        .await
        .unwrap()
}

/// A response: status, headers, body as text.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// Send `request` over the unix socket with the management client.
async fn send(path: &Path, request: Request) -> Answer {
    let r = Client::new(Target::Unix(path.to_owned()))
        .with_timeout(TIMEOUT)
        .send(&request)
        .await
        .unwrap_or_else(|e| panic!("{request:?}: {e}"));
    Answer {
        status: r.status,
        body: r.text(),
        headers: r.headers,
    }
}

fn post(body: &str) -> Request {
    Request::post_json("/v1", body)
}

fn simple(method: &str, path: &str) -> Request {
    Request::new(method, path)
}

/// Send bytes no well-behaved client would send (the server is under test here, not a client)
/// and return the status line of the answer. Write errors are ignored: the server may answer and
/// close before reading everything (413).
async fn attack(path: &Path, request: Vec<u8>) -> String {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
        let _ = s.write_all(&request);
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        while !answer.contains(&b'\n') {
            let n = s.read(&mut chunk).expect("read the answer");
            assert!(n > 0, "connection closed without an answer");
            answer.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        text.lines().next().unwrap_or_default().to_owned()
    })
    .await
    .unwrap()
}

/// A kept-alive connection to the socket through hyper's client connection (the management
/// client opens one connection per request, so it cannot show reuse); the task ends when the
/// server closes the connection.
async fn keep_alive(path: &Path) -> (SendRequest<Full<Bytes>>, JoinHandle<hyper::Result<()>>) {
    let stream = tokio::net::UnixStream::connect(path).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    (sender, tokio::spawn(conn))
}

async fn keep_alive_send(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    body: &str,
) -> (u16, String) {
    let req = hyper::Request::builder()
        .method(method)
        .uri(if method == "POST" { "/v1" } else { "/" })
        .header("Host", "x")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = tokio::time::timeout(TIMEOUT, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn method_answers_through_both_clients() {
    let s = start().await;
    let params = json!({ "peer": "alice", "n": [1, 2] });
    assert_eq!(
        client::call(&s.path, "echo", params.clone()).await.unwrap(),
        params
    );
    assert_eq!(
        blocking(&s.path, "echo", params.clone()).await.unwrap(),
        params
    );
    assert_eq!(
        client::call(&s.path, "add", json!([2, 3])).await.unwrap(),
        json!(5)
    );
    assert_eq!(
        blocking(&s.path, "add", json!([2, 3])).await.unwrap(),
        json!(5)
    );
    // Null params are omitted from the request.
    assert_eq!(
        client::call(&s.path, "echo", Value::Null).await.unwrap(),
        Value::Null
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn async_method_queries_event_loop() {
    let s = start().await;
    assert_eq!(
        client::call(&s.path, "peers", Value::Null).await.unwrap(),
        json!(["alice", "bob"])
    );
    assert_eq!(
        blocking(&s.path, "peers", Value::Null).await.unwrap(),
        json!(["alice", "bob"])
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn jsonrpc_errors_become_client_errors() {
    let s = start().await;
    for result in [
        client::call(&s.path, "fail", json!([])).await,
        blocking(&s.path, "fail", json!([])).await,
    ] {
        match result {
            Err(ClientError::Rpc(e)) => {
                assert_eq!(e.code, 4242);
                assert_eq!(e.message, "peer table locked");
                assert_eq!(e.data, Some(json!({ "retry": true })));
            }
            other => panic!("expected an RPC error, got {other:?}"),
        }
    }
    let err = client::call(&s.path, "no_such_method", json!([]))
        .await
        .unwrap_err();
    assert_eq!(err.rpc_code(), Some(-32601), "{err}");
    let err = blocking(&s.path, "no_such_method", json!([]))
        .await
        .unwrap_err();
    assert_eq!(err.rpc_code(), Some(-32601), "{err}");
    let err = client::call(&s.path, "add", json!(["x"]))
        .await
        .unwrap_err();
    assert_eq!(err.rpc_code(), Some(-32602), "{err}");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_json_is_parse_error() {
    let s = start().await;
    for body in [r#"{"jsonrpc":"2.0","id":1,"method":"echo""#, "", "not json"] {
        let r = send(&s.path, post(body)).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json")
        );
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["error"]["code"], json!(-32700), "{body:?} → {v}");
        assert_eq!(v["id"], Value::Null);
    }
    // Still alive.
    assert_eq!(
        client::call(&s.path, "add", json!([1, 1])).await.unwrap(),
        json!(2)
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn batch_request() {
    let s = start().await;
    let batch = r#"[
        {"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]},
        {"jsonrpc":"2.0","method":"echo","params":["notification"]},
        {"jsonrpc":"2.0","id":"two","method":"nope"},
        {"jsonrpc":"2.0","id":3,"method":"peers"}
    ]"#;
    let r = send(&s.path, post(batch)).await;
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let answers = v.as_array().unwrap();
    assert_eq!(answers.len(), 3, "{v}");
    assert_eq!(answers[0]["id"], json!(1));
    assert_eq!(answers[0]["result"], json!(3));
    assert_eq!(answers[1]["id"], json!("two"));
    assert_eq!(answers[1]["error"]["code"], json!(-32601));
    assert_eq!(answers[2]["result"], json!(["alice", "bob"]));

    // A lone notification is executed but not answered.
    let r = send(
        &s.path,
        post(r#"{"jsonrpc":"2.0","method":"echo","params":[]}"#),
    )
    .await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_routes() {
    let s = start().await;
    let r = send(&s.path, simple("GET", "/")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(r.body, include_str!("../assets/status.html"));

    let r = send(&s.path, simple("GET", "/nope")).await;
    assert_eq!(r.status, 404);
    let r = send(&s.path, simple("GET", "/v1")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("POST"));
    let r = send(&s.path, simple("DELETE", "/")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD"));
    // Routes the daemon did not ask for do not exist.
    assert_eq!(send(&s.path, simple("GET", "/metrics")).await.status, 404);
    assert_eq!(send(&s.path, simple("GET", "/events")).await.status, 404);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn keep_alive_serves_several_requests_per_connection() {
    let s = start().await;
    let (mut sender, _conn) = keep_alive(&s.path).await;
    for i in 0..3 {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"add","params":[{i},1]}}"#);
        let (status, body) = keep_alive_send(&mut sender, "POST", &body).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["result"], json!(i + 1));
    }
    // An idle keep-alive connection (one answered request, then silence) must not hold up
    // shutdown: it is closed at once rather than waited for.
    let (mut idle_sender, idle) = keep_alive(&s.path).await;
    assert_eq!(keep_alive_send(&mut idle_sender, "GET", "").await.0, 200);
    let started = std::time::Instant::now();
    s.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The server closed the idle connection: its connection task ends.
    tokio::time::timeout(TIMEOUT, idle)
        .await
        .expect("server closed the idle connection")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn oversized_body_is_413() {
    let s = start().await;
    let big = "x".repeat(weft_mgmt::MAX_BODY_BYTES + 1);

    // Through the clients: the server refuses on Content-Length, before reading the body.
    let err = blocking(&s.path, "echo", json!([big])).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Status { status: 413, .. }),
        "{err}"
    );
    let err = client::call(&s.path, "echo", json!([big]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Status { status: 413, .. }),
        "{err}"
    );

    // Declared length too large, body never sent.
    let head = format!(
        "POST /v1 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        weft_mgmt::MAX_BODY_BYTES + 1
    );
    let status = attack(&s.path, head.into_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");

    // Chunked, so the limit is only noticed while reading.
    let mut req = b"POST /v1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = "y".repeat(64 * 1024);
    for _ in 0..((weft_mgmt::MAX_BODY_BYTES / chunk.len()) + 2) {
        req.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let status = attack(&s.path, req).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");

    // Exactly at the limit is fine (it is valid JSON-RPC-wise garbage: a parse error, not 413).
    let at_limit = " ".repeat(weft_mgmt::MAX_BODY_BYTES);
    let r = send(&s.path, post(&at_limit)).await;
    assert_eq!(r.status, 200);

    assert_eq!(
        client::call(&s.path, "add", json!([1, 1])).await.unwrap(),
        json!(2)
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path(), "stale");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A socket file nobody listens on any more, as a crashed daemon leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    let s = start_at(&path).await;
    assert_eq!(
        client::call(&s.path, "add", json!([4, 4])).await.unwrap(),
        json!(8)
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn second_server_on_live_socket_is_refused() {
    let s = start().await;
    let err = MgmtServer::bind_unix(&s.path, RpcModule::new(()))
        .await
        .unwrap_err();
    assert!(matches!(err, WebError::AlreadyRunning { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("another weft daemon is using session test0"),
        "{msg}"
    );
    // The first server is untouched, socket file included.
    assert_eq!(
        blocking(&s.path, "add", json!([1, 2])).await.unwrap(),
        json!(3)
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn non_socket_file_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path(), "file");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "precious").unwrap();
    let err = MgmtServer::bind_unix(&path, RpcModule::new(()))
        .await
        .unwrap_err();
    assert!(matches!(err, WebError::NotASocket(_)), "{err:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[tokio::test]
async fn socket_removed_after_shutdown() {
    let s = start().await;
    let path = s.path.clone();
    assert!(path.exists());
    s.shutdown().await.unwrap();
    assert!(!path.exists());
    let err = client::call(&path, "echo", json!([])).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    let err = blocking(&path, "echo", json!([])).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn dropping_unserved_server_removes_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path(), "unserved");
    let server = MgmtServer::bind_unix(&path, RpcModule::new(()))
        .await
        .unwrap();
    assert!(path.exists());
    drop(server);
    assert!(!path.exists());
}

#[tokio::test]
async fn socket_and_directory_modes() {
    let dir = tempfile::tempdir().unwrap();
    // Missing intermediate directories are created too.
    let path = socket_path(&dir.path().join("run").join("weft"), "modes");
    let s = start_at(&path).await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&path), 0o660);
    assert_eq!(mode(path.parent().unwrap()), 0o750);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn blocking_client_times_out_on_silent_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent");
    // Accepts (via the backlog) but never answers.
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let started = std::time::Instant::now();
    let err = tokio::task::spawn_blocking(move || {
        client::call_blocking(&path, "echo", json!([]), Duration::from_millis(300))
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
