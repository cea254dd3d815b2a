//! The management server under abuse: slow and idle connections, connection floods, password
//! guessing. Limits are shrunk ([`Limits`]) so every test takes seconds; bounds on time are
//! generous and only prove "cut off" or "not refused".
//!
//! Attackers connect from other loopback addresses (127.0.0.2 and up; all of 127/8 is local on
//! Linux) so that the server tells them apart from the legitimate client on 127.0.0.1.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use weft_mgmt::client::{self, Client, Target};
use weft_mgmt::{Limits, MgmtServer};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Loopback address `127.0.0.<n>`, for an attacker.
fn attacker(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// A TCP connection to `to` from address `from`.
async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    tokio::time::timeout(TIMEOUT, socket.connect(to))
        .await
        .expect("connect timed out")
        .unwrap()
}

/// Send `request` (a whole HTTP/1.1 request with `Connection: close`) from `from` and return the
/// status and the whole answer; status 0 when the server closed without answering.
async fn raw(from: IpAddr, to: SocketAddr, request: &str) -> (u16, String) {
    let mut c = connect_from(from, to).await;
    let _ = c.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, c.read_to_end(&mut answer))
        .await
        .expect("no answer in time");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// A JSON-RPC call of `method` with `Authorization: Bearer <password>`, as raw HTTP.
fn rpc_with_password(method: &str, password: &str) -> String {
    let body = call_body(method);
    format!(
        "POST /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {password}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Open `n` connections from `from` that send half a request head and then hold still.
async fn slow_connections(from: IpAddr, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = connect_from(from, to).await;
        // The server may already have closed it (over quota): that is fine, keep it anyway.
        let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
        held.push(c);
    }
    held
}

/// The unix socket still answers a read call promptly.
async fn unix_answers(sock: &std::path::Path) {
    let info = tokio::time::timeout(TIMEOUT, client::call(sock, "get_info", Value::Null))
        .await
        .expect("unix socket did not answer in time")
        .unwrap();
    assert_eq!(info["role"], json!("edge"));
}

/// A legitimate TCP client on 127.0.0.1 gets an answer.
async fn tcp_answers(url: &str) -> Result<Value, weft_mgmt::client::ClientError> {
    Client::new(Target::from_url(url).unwrap())
        .with_timeout(TIMEOUT)
        .call("get_info", Value::Null)
        .await
}

#[tokio::test]
async fn slow_connections_from_one_address_leave_room_for_everybody_else() {
    let mut stats = None;
    let s = start("slow", module("edge"), async |s: MgmtServer| {
        let s = s.with_tcp(loopback(), false).await.unwrap();
        stats = Some(s.stats());
        s
    })
    .await;
    let stats = stats.unwrap();
    let addr = s.tcp[0];
    let held = slow_connections(attacker(2), addr, 200).await;

    // Answers, not refusals, for the client on another address and for the unix socket.
    let started = Instant::now();
    assert_eq!(tcp_answers(&s.url()).await.unwrap()["role"], json!("edge"));
    unix_answers(&s.sock).await;
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());

    // The attacker got its share (16 by default) and no more. Connections are accepted in order,
    // so all 200 were seen before the legitimate one was answered.
    let refused = stats.refused_connections();
    assert_eq!(
        refused,
        200 - Limits::default().max_tcp_per_ip as u64,
        "refused {refused}"
    );
    drop(held);
    s.shutdown().await;
}

#[tokio::test]
async fn a_full_tcp_pool_leaves_the_unix_socket_free_and_drains_after_the_timeout() {
    let mut limits = Limits::default();
    // Long enough that the first slow connection is still held when the last one is opened.
    limits.header_read_timeout = Duration::from_secs(4);
    let s = start("pool", module("edge"), async |s: MgmtServer| {
        s.with_limits(limits)
            .with_tcp(loopback(), false)
            .await
            .unwrap()
    })
    .await;
    let addr = s.tcp[0];
    // Five addresses × 40 slow connections: more than the whole TCP pool (64).
    let mut held = Vec::new();
    for n in 2..7 {
        held.extend(slow_connections(attacker(n), addr, 40).await);
    }
    // The TCP pool is full, so this client is turned away...
    assert!(tcp_answers(&s.url()).await.is_err());
    // ...but the unix socket has its own pool.
    unix_answers(&s.sock).await;

    // The slow connections are cut off after the header timeout; then TCP answers again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if tcp_answers(&s.url()).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "TCP never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(held);
    s.shutdown().await;
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_off() {
    let mut limits = Limits::default();
    limits.header_read_timeout = Duration::from_secs(2);
    let s = start("trickle", module("edge"), async |s: MgmtServer| {
        s.with_limits(limits)
            .with_tcp(loopback(), false)
            .await
            .unwrap()
    })
    .await;
    let c = connect_from(attacker(2), s.tcp[0]).await;
    let (mut rd, mut wr) = c.into_split();
    let started = Instant::now();
    // One header byte per second; the whole head would take 40 s.
    let writer = tokio::spawn(async move {
        let head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaa\r\n\r\n";
        for (i, byte) in head.iter().enumerate() {
            if wr.write_all(&[*byte]).await.is_err() {
                return i;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        head.len()
    });
    // The server ends the connection (an error response or none at all, then EOF).
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut answer))
        .await
        .expect("trickling client was not cut off")
        .ok();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(6),
        "cut off after {elapsed:?}"
    );
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
    writer.abort();
    s.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_but_event_streams_live_on() {
    let mut limits = Limits::default();
    limits.header_read_timeout = Duration::from_secs(1);
    let (tx, _) = tokio::sync::broadcast::channel(8);
    let s = start("idle", module("edge"), async |s: MgmtServer| {
        s.with_limits(limits)
            .with_events(tx)
            .with_event_keepalive(Duration::from_millis(200))
            .with_tcp(loopback(), false)
            .await
            .unwrap()
    })
    .await;
    let addr = s.tcp[0];

    // A keep-alive connection that got its answer and then idles is closed after the timeout.
    let mut c = connect_from(attacker(2), addr).await;
    c.write_all(b"GET /events-not-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(8), c.read_to_end(&mut answer))
        .await
        .expect("idle keep-alive connection was not closed")
        .ok();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 404"));
    assert!(started.elapsed() >= Duration::from_millis(800));

    // An event stream is a response in progress, not an idle connection: still open and fed
    // long after the header timeout.
    let mut e = connect_from(attacker(2), addr).await;
    e.write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    while started.elapsed() < Duration::from_secs(3) {
        let n = tokio::time::timeout(TIMEOUT, e.read(&mut chunk))
            .await
            .expect("event stream went silent")
            .unwrap();
        assert!(n > 0, "event stream closed after {:?}", started.elapsed());
        seen.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains(": keepalive"));
    s.shutdown().await;
}

/// Log lines the server writes while `f` runs, as text. The server runs on this test's
/// single-threaded runtime, so a thread-local subscriber sees all of them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn password_guessing_is_locked_out_and_logged_once_per_burst() {
    let log = Captured::default();
    let _guard = log.install();
    let mut limits = Limits::default();
    // Long enough that the whole burst below falls inside it.
    limits.lockout = Duration::from_secs(60);
    let mut stats = None;
    let s = start("guess", module("edge"), async |s: MgmtServer| {
        let s = s
            .with_password(PASSWORD.to_owned())
            .with_limits(limits)
            .with_tcp_as_remote(loopback())
            .await
            .unwrap();
        stats = Some(s.stats());
        s
    })
    .await;
    let stats = stats.unwrap();
    let addr = s.tcp[0];
    let guesser = attacker(2);

    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    let mut retry_after = None;
    for i in 0..1000 {
        let (status, answer) = raw(
            guesser,
            addr,
            &rpc_with_password("stop", &format!("guess{i}")),
        )
        .await;
        *statuses.entry(status).or_default() += 1;
        if status == 429 && retry_after.is_none() {
            retry_after = answer
                .lines()
                .find_map(|l| l.strip_prefix("retry-after: "))
                .map(str::to_owned);
        }
    }
    // Ten guesses were checked (401: this listener needs the password), the rest refused unchecked.
    assert_eq!(statuses, [(401, 10), (429, 990)].into(), "{statuses:?}");
    let retry_after: u64 = retry_after
        .expect("429 without Retry-After")
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry_after), "{retry_after}");

    // Even the right password is not checked for the guesser while it is locked out...
    let (status, _) = raw(guesser, addr, &rpc_with_password("get_info", PASSWORD)).await;
    assert_eq!(status, 429);
    // ...while another client's right password works, and so does the unix socket.
    let (status, answer) = raw(attacker(1), addr, &rpc_with_password("get_info", PASSWORD)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"role\":\"edge\""), "{answer}");
    unix_answers(&s.sock).await;

    assert_eq!(stats.password_failures(), 10);
    assert_eq!(stats.password_bursts(), 1);
    assert_eq!(stats.throttled_attempts(), 991);

    // One warn line for the burst, naming the client and the count; not one per attempt.
    let text = log.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("wrong passwords"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    assert!(
        lines[0].contains("10 wrong passwords from 127.0.0.2"),
        "{}",
        lines[0]
    );
    assert!(text.len() < 4096, "{} bytes of log", text.len());
    s.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_locked_out_client_keeps_reading_and_may_write_again_after_the_cool_down() {
    let mut limits = Limits::default();
    limits.max_password_failures = 3;
    limits.lockout = Duration::from_secs(1);
    let s = start("cool", module("edge"), async |s: MgmtServer| {
        s.with_password(PASSWORD.to_owned())
            .with_limits(limits)
            .with_tcp(loopback(), false)
            .await
            .unwrap()
    })
    .await;
    let target = Target::from_url(&s.url()).unwrap();
    let wrong = Client::new(target.clone())
        .with_timeout(TIMEOUT)
        .with_password(Some("wrong".to_owned()));
    let right = Client::new(target)
        .with_timeout(TIMEOUT)
        .with_password(Some(PASSWORD.to_owned()));
    for _ in 0..3 {
        let err = wrong.call("set_verbose", json!([1])).await.unwrap_err();
        assert_eq!(err.rpc_code(), Some(-32001));
    }
    // Locked out (this listener is loopback, so every local TCP client is the same client): the
    // password is not checked, so even the right one cannot write, but reads are served as ever.
    let err = right.call("set_verbose", json!([1])).await.unwrap_err();
    assert_eq!(err.rpc_code(), Some(-32001));
    assert_eq!(
        right.call("get_verbose", Value::Null).await.unwrap(),
        json!({"verbose": 2})
    );
    // Root on the unix socket is never throttled.
    assert_eq!(
        client::call(&s.sock, "set_verbose", json!([5]))
            .await
            .unwrap(),
        json!({"verbose": 5})
    );

    // After the cool-down the right password works again.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        right.call("set_verbose", json!([3])).await.unwrap(),
        json!({"verbose": 3})
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_client_that_does_not_read_its_responses_is_cut_off() {
    let mut limits = Limits::default();
    limits.write_stall_timeout = Duration::from_secs(1);
    let s = start("stall", module("edge"), async |s: MgmtServer| {
        s.with_limits(limits)
            .with_tcp(loopback(), false)
            .await
            .unwrap()
    })
    .await;
    // A small receive buffer, so that the answers fill it soon.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(SocketAddr::new(attacker(2), 0)).unwrap();
    let c = socket.connect(s.tcp[0]).await.unwrap();
    let (mut rd, mut wr) = c.into_split();
    // 2,000 pipelined requests for the status page (about 60 MB of answers), none of them read.
    const REQUESTS: usize = 2000;
    let writer = tokio::spawn(async move {
        let requests = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(REQUESTS);
        let _ = wr.write_all(requests.as_bytes()).await;
        wr
    });
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Reading now finds the connection ended well before all the answers were written.
    let mut answers = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut answers))
        .await
        .expect("connection still open: the stalled write was not cut off");
    let answered = String::from_utf8_lossy(&answers)
        .matches("HTTP/1.1 200 OK")
        .count();
    assert!(answered < REQUESTS, "{answered} answers");
    writer.abort();
    // The server is fine.
    assert!(tcp_answers(&s.url()).await.is_ok());
    s.shutdown().await;
}
