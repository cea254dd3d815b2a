//! Shared by the integration tests (weft-cli's weftctl tests too): a fake daemon's methods, a server
//! started in a temp dir, requests through the management client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_mgmt::client::{Client, Request, Response, Target};
use weft_mgmt::jsonrpsee::types::ErrorObjectOwned;
use weft_mgmt::jsonrpsee::RpcModule;
use weft_mgmt::{socket_path, MgmtServer, WebError};

pub const TIMEOUT: Duration = Duration::from_secs(5);

pub const PASSWORD: &str = "correct horse";

/// `get_edges` of the fake edge.
pub fn edge_peers() -> Value {
    json!([
        {"public_key": "Zm9vYmFyYmF6cXV4cXV1eGZvb2Jhcg", "description": "laptop",
         "mac": "86:25:62:76:d5:6e", "learned_macs": [], "ip": "10.130.70.249", "state": "up",
         "path": "direct", "addr": "203.0.113.22:45944", "relay": null, "why_not_direct": null,
         "rtt_ms": 0.6, "last_seen_ms": 2000, "rx_packets": 900, "tx_packets": 300,
         "rx_bytes": 1_200_000, "tx_bytes": 310_000},
        {"public_key": "YmF6cXV4Zm9vYmFycXV1eGJhenF1eA", "description": "nas",
         "mac": "be:ac:10:f4:21:60", "learned_macs": [], "ip": "10.130.70.207", "state": "up",
         "path": "relayed", "addr": null, "relay": "198.51.100.1:7654",
         "why_not_direct": "symmetric NAT", "rtt_ms": null, "last_seen_ms": 1000,
         "rx_packets": 40, "tx_packets": 41, "rx_bytes": 48_000, "tx_bytes": 51_000}
    ])
}

/// `get_edges` of the fake supernode.
pub fn supernode_edges() -> Value {
    json!([
        {"community": "home", "community_id": "c0ffee", "public_key": "a2V5MQ",
         "description": "laptop", "mac": "86:25:62:76:d5:6e", "ip": "10.130.70.249",
         "addr": "203.0.113.22:45944", "local_addrs": ["192.168.1.5:45944"], "last_seen_ms": 3000}
    ])
}

/// The methods of a fake daemon of `role` ("edge" or "supernode"); `set_verbose` really sets the
/// level that `get_verbose` reports.
pub fn module(role: &'static str) -> RpcModule<()> {
    let mut m = RpcModule::new(());
    let verbose = Arc::new(AtomicU64::new(2));
    m.register_method("get_info", move |_, _, _| {
        if role == "edge" {
            json!({"version": "0.1.0", "role": "edge", "session": "home", "community": "home",
                   "description": "desk", "public_key": "c2VsZg", "mac": "02:00:00:00:00:01",
                   "ip": "10.130.70.1", "tap": "weft0", "bind": "0.0.0.0:0", "registered": true,
                   "public_addr": "198.51.100.7:4000", "uptime_s": 3723, "peers": 2,
                   "supernodes": [{"addr": "198.51.100.1:7654", "registered": true}],
                   "stats": {"rx_bytes": 1_248_000, "tx_bytes": 361_000}})
        } else {
            json!({"version": "0.1.0", "role": "supernode", "session": "sn", "bind": "0.0.0.0:7654",
                   "uptime_s": 60, "communities": 1, "edges": 1,
                   "stats": {"relayed_packets": 5, "relayed_bytes": 5000, "registrations": 3,
                             "rejected_registrations": 0, "dropped_packets": 0, "punches": 1}})
        }
    })
    .unwrap();
    m.register_method("get_edges", move |_, _, _| {
        if role == "edge" {
            edge_peers()
        } else {
            supernode_edges()
        }
    })
    .unwrap();
    if role == "edge" {
        m.register_method("get_supernodes", |_, _, _| {
            json!([{"addr": "198.51.100.1:7654", "state": "registered", "rtt_ms": 12.5,
                    "last_seen_ms": 4000}])
        })
        .unwrap();
    }
    m.register_method(
        "get_communities",
        move |_, _, _| json!([{"community_id": "c0ffee", "name": "home", "edges": 3}]),
    )
    .unwrap();
    m.register_method("get_packetstats", |_, _, _| {
        json!({"rx_packets": 940, "tx_packets": 341, "rx_bytes": 1_248_000, "tx_bytes": 361_000,
               "dropped_auth": 0})
    })
    .unwrap();
    let v = verbose.clone();
    m.register_method(
        "get_verbose",
        move |_, _, _| json!({ "verbose": v.load(Ordering::Relaxed) }),
    )
    .unwrap();
    let v = verbose.clone();
    m.register_method("set_verbose", move |params, _, _| {
        let (n,): (u64,) = params.parse()?;
        v.store(n, Ordering::Relaxed);
        Ok::<_, ErrorObjectOwned>(json!({ "verbose": n }))
    })
    .unwrap();
    m.register_method(
        "reload",
        |_, _, _| json!({"reloaded": ["communities"], "restart_needed": ["tap"]}),
    )
    .unwrap();
    m.register_method("stop", |_, _, _| json!({ "stopping": true }))
        .unwrap();
    m
}

/// A running server plus the handles to stop it.
pub struct Running {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub tcp: Vec<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), WebError>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.tcp[0])
    }

    pub async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(TIMEOUT, &mut self.task)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
    }
}

/// Serve `module` on `<fresh temp dir>/<session>/mgmt`, configured by `configure`.
pub async fn start(
    session: &str,
    module: RpcModule<()>,
    configure: impl AsyncFnOnce(MgmtServer) -> MgmtServer,
) -> Running {
    let dir = tempfile::tempdir().unwrap();
    start_in(dir, session, module, configure).await
}

/// The same in a given runtime directory.
pub async fn start_in(
    dir: tempfile::TempDir,
    session: &str,
    module: RpcModule<()>,
    configure: impl AsyncFnOnce(MgmtServer) -> MgmtServer,
) -> Running {
    let sock = socket_path(dir.path(), session);
    let server = configure(MgmtServer::bind_unix(&sock, module).await.unwrap()).await;
    let tcp = server.tcp_addrs();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    Running {
        dir,
        sock,
        tcp,
        stop: Some(stop),
        task,
    }
}

/// A response as the tests look at it: status, the head as text, the body as text.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

impl From<Response> for Raw {
    fn from(r: Response) -> Self {
        let mut head = format!("HTTP {}", r.status);
        for (name, value) in &r.headers {
            head.push_str(&format!(
                "\r\n{name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        Raw {
            status: r.status,
            body: r.text(),
            head,
        }
    }
}

/// Send `request` to `target` (no password) and read the whole answer.
pub async fn send(target: Target, request: Request) -> Raw {
    Client::new(target)
        .with_timeout(TIMEOUT)
        .send(&request)
        .await
        .unwrap_or_else(|e| panic!("{request:?}: {e}"))
        .into()
}

/// Send `request` over TCP to `addr`.
pub async fn tcp(addr: SocketAddr, request: Request) -> Raw {
    send(
        Target::from_url(&format!("http://{addr}")).unwrap(),
        request,
    )
    .await
}

/// A request with optional extra `Name: value` header lines and body (JSON for a POST).
pub fn request(method: &str, path: &str, headers: &[&str], body: &str) -> Request {
    let mut r = Request::new(method, path);
    for h in headers {
        let (name, value) = h.split_once(':').expect("a `Name: value` header line");
        r = r.header(name.trim(), value.trim());
    }
    if method == "POST" {
        r = r
            .header("Content-Type", "application/json")
            .body(body.as_bytes());
    }
    r
}

/// A JSON-RPC call body.
pub fn call_body(method: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}"}}"#)
}

/// A TCP port on 127.0.0.1 with nothing listening (bound, then closed).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
