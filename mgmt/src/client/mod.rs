//! Client side of the management protocol, the one HTTP client of the project: `weftctl` and the
//! tests use it for everything they ask a daemon.
//!
//! [`Client`] talks to a [`Target`] (the unix socket or a TCP URL), optionally with the management
//! password: JSON-RPC calls ([`Client::call`], [`Client::call_blocking`]), any other request
//! ([`Client::send`], [`Client::send_blocking`]; `GET /metrics`, `GET /`), and the event feed
//! ([`Client::events_blocking`]). [`call`] and [`call_blocking`] are the unix-socket shortcuts.
//! Every exchange (connect, send, receive) is bounded by the client's timeout.
//!
//! # Why hyper
//!
//! The HTTP/1.1 work (request framing, `Content-Length` and chunked bodies, the streamed event
//! feed) is hyper's, the crate the server is already built on: one well-kept HTTP implementation
//! for both sides, and no new dependency. hyper's client connection runs over any tokio
//! `AsyncRead + AsyncWrite`, so a tokio `UnixStream` serves the daemon's unix socket as well as a
//! `TcpStream` serves its loopback listener. The higher-level clients do not fit: `ureq` (blocking,
//! small) and `reqwest` speak TCP/TLS only, with no unix-socket transport, and `reqwest` would add
//! a TLS stack and a connection pool that a one-request-per-connection local API has no use for.
//! The blocking methods, for `weftctl` and the tests, run the same async code on a current-thread
//! runtime of their own; timeouts are `tokio::time::timeout`s.

mod blocking;
mod error;
mod events;
mod request;
mod transport;

use std::fmt;
use std::fs;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use serde_json::{json, Value};

pub use error::{ClientError, RpcError};
pub use events::EventStream;
pub use request::{Request, Response};

/// Responses larger than this are refused; management answers are small.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Default bound on one exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a daemon's management server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Its unix socket, e.g. `/run/weft/home/mgmt`.
    Unix(PathBuf),
    /// Its TCP listener as a URL, `http://host:port` (a trailing `/` is allowed).
    Tcp(String),
}

impl Target {
    /// A TCP target from a URL, checked: `http://host:port` or `http://[v6]:port` (port 80 when
    /// omitted). `https` is not spoken.
    pub fn from_url(url: &str) -> Result<Target, ClientError> {
        authority(url)?;
        Ok(Target::Tcp(url.to_owned()))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
            Target::Tcp(url) => f.write_str(url),
        }
    }
}

/// `host:port` of an `http://` URL.
fn authority(url: &str) -> Result<String, ClientError> {
    let bad = |why: &str| ClientError::InvalidTarget(format!("{url}: {why}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs are supported"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(bad("expected http://host:port"));
    }
    let has_port = match rest.rfind(']') {
        Some(close) => rest[close..].contains(':'),
        None => rest.contains(':'),
    };
    let authority = if has_port {
        rest.to_owned()
    } else {
        format!("{rest}:80")
    };
    let port = authority.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
    if port.parse::<u16>().is_err() {
        return Err(bad("bad port"));
    }
    Ok(authority)
}

/// A management client for one target.
#[derive(Clone)]
pub struct Client {
    target: Target,
    password: Option<String>,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A client for `target`, without password, with [`DEFAULT_TIMEOUT`].
    pub fn new(target: Target) -> Self {
        Self {
            target,
            password: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Send the management password (`Authorization: Bearer …`) with every request.
    pub fn with_password(mut self, password: Option<String>) -> Self {
        self.password = password.filter(|p| !p.is_empty());
        self
    }

    /// Bound each exchange (connect, send, receive) by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Where this client connects.
    pub fn target(&self) -> &Target {
        &self.target
    }

    fn authorization(&self) -> Option<String> {
        self.password.as_ref().map(|p| format!("Bearer {p}"))
    }

    /// Send `req` and read the whole response, bounded by the client's timeout.
    pub async fn send(&self, req: &Request) -> Result<Response, ClientError> {
        let authorization = self.authorization();
        self.bounded(async {
            let response = transport::send(&self.target, req, authorization.as_deref()).await?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| match e.downcast::<hyper::Error>() {
                    Ok(e) => ClientError::Http(*e),
                    Err(e) => ClientError::InvalidResponse(format!("response body: {e}")),
                })?
                .to_bytes();
            Ok(Response {
                status: head.status.as_u16(),
                headers: head.headers,
                body: body.to_vec(),
            })
        })
        .await
    }

    /// [`Client::send`] with blocking I/O, on the calling thread.
    pub fn send_blocking(&self, req: &Request) -> Result<Response, ClientError> {
        blocking::run(self.send(req))
    }

    /// One JSON-RPC call, bounded by the client's timeout.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let response = self
            .send(&Request::post_json("/v1", request_body(method, params)))
            .await?;
        interpret(response.status, &response.body)
    }

    /// [`Client::call`] with blocking I/O, on the calling thread.
    pub fn call_blocking(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        blocking::run(self.call(method, params))
    }

    /// `GET path` with blocking I/O (e.g. `/metrics`): the body of a 200 answer, otherwise
    /// [`ClientError::Status`].
    pub fn get_blocking(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        match self.send_blocking(&Request::get(path))? {
            Response {
                status: 200, body, ..
            } => Ok(body),
            other => Err(ClientError::Status {
                status: other.status,
                body: other.text().trim().to_owned(),
            }),
        }
    }

    /// Open `GET /events` with blocking I/O (the client's timeout bounds getting the answer's
    /// head); the stream then yields `(kind, data)` pairs and fails with
    /// [`ClientError::Timeout`] if the server sends nothing (not even its keepalive) for
    /// `read_timeout`.
    pub fn events_blocking(&self, read_timeout: Duration) -> Result<EventStream, ClientError> {
        EventStream::open(
            &self.target,
            self.authorization().as_deref(),
            self.timeout,
            read_timeout,
        )
    }

    /// `future` bounded by the client's timeout.
    async fn bounded<T>(
        &self,
        future: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout(self.timeout, future)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }
}

/// One JSON-RPC call over the unix socket: POST /v1, returns `result` or a ClientError carrying
/// the JSON-RPC error.
///
/// `params` must be an array or object (JSON-RPC 2.0); `Value::Null` sends no params. Bounded by
/// [`DEFAULT_TIMEOUT`].
pub async fn call(path: &Path, method: &str, params: Value) -> Result<Value, ClientError> {
    Client::new(Target::Unix(path.to_owned()))
        .call(method, params)
        .await
}

/// The same with blocking I/O on the calling thread, for tests and simple tools; the whole
/// exchange (connect, send, receive) is bounded by `timeout`.
pub fn call_blocking(
    path: &Path,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, ClientError> {
    Client::new(Target::Unix(path.to_owned()))
        .with_timeout(timeout)
        .call_blocking(method, params)
}

/// A session found under a runtime directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session name (its directory's name).
    pub name: String,
    /// Its management socket, `<runtime_dir>/<name>/mgmt`.
    pub socket: PathBuf,
}

/// Sessions with a live management socket under `runtime_dir` (normally
/// [`crate::DEFAULT_RUNTIME_DIR`]), sorted by name.
///
/// A socket counts as live when a connection to it succeeds, or when it cannot be checked for
/// lack of permission (connecting will then explain); sockets left behind by a daemon that is gone
/// (connection refused) are skipped. A missing `runtime_dir` means no sessions.
pub fn running_sessions(runtime_dir: &Path) -> io::Result<Vec<Session>> {
    let entries = match fs::read_dir(runtime_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut sessions = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let socket = crate::socket_path(runtime_dir, &name);
        let live = match fs::symlink_metadata(&socket) {
            Ok(meta) if meta.file_type().is_socket() => match probe(&socket) {
                Ok(()) => true,
                Err(e) => matches!(
                    e.kind(),
                    io::ErrorKind::PermissionDenied
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ),
            },
            Ok(_) => false,
            Err(e) => e.kind() == io::ErrorKind::PermissionDenied,
        };
        if live {
            sessions.push(Session { name, socket });
        }
    }
    sessions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(sessions)
}

/// Whether a connection to the unix socket at `path` succeeds within a second (a full backlog
/// counts as a timeout).
fn probe(path: &Path) -> io::Result<()> {
    let runtime = blocking::runtime().map_err(|e| io::Error::other(e.to_string()))?;
    runtime.block_on(async {
        match tokio::time::timeout(Duration::from_secs(1), transport::connect_unix(path)).await {
            Ok(stream) => stream.map(drop),
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    })
}

/// The request object. Each call has its own connection, so a constant id is unambiguous.
fn request_body(method: &str, params: Value) -> String {
    let mut req = json!({ "jsonrpc": "2.0", "id": 1, "method": method });
    if !params.is_null() {
        req["params"] = params;
    }
    req.to_string()
}

/// Turn an HTTP status and body into the call's outcome.
fn interpret(status: u16, body: &[u8]) -> Result<Value, ClientError> {
    if status != 200 {
        return Err(ClientError::Status {
            status,
            body: String::from_utf8_lossy(body).trim().to_owned(),
        });
    }
    let mut resp: Value = serde_json::from_slice(body)
        .map_err(|e| ClientError::InvalidResponse(format!("not JSON: {e}")))?;
    if let Some(error) = resp.get("error") {
        let error: RpcError = serde_json::from_value(error.clone())
            .map_err(|e| ClientError::InvalidResponse(format!("bad error object: {e}")))?;
        return Err(ClientError::Rpc(error));
    }
    match resp.get_mut("result") {
        Some(result) => Ok(result.take()),
        None => Err(ClientError::InvalidResponse(
            "neither result nor error in response".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_omits_null_params() {
        let v: Value = serde_json::from_str(&request_body("m", Value::Null)).unwrap();
        assert!(v.get("params").is_none());
        let v: Value = serde_json::from_str(&request_body("m", json!([1]))).unwrap();
        assert_eq!(v["params"], json!([1]));
    }

    #[test]
    fn interpret_outcomes() {
        assert_eq!(
            interpret(200, br#"{"jsonrpc":"2.0","id":1,"result":5}"#).unwrap(),
            json!(5)
        );
        match interpret(
            200,
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}"#,
        ) {
            Err(ClientError::Rpc(e)) => assert_eq!(e.code, -32601),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            interpret(413, b"too big"),
            Err(ClientError::Status { status: 413, .. })
        ));
        assert!(matches!(
            interpret(200, b"nope"),
            Err(ClientError::InvalidResponse(_))
        ));
    }

    #[test]
    fn urls() {
        assert_eq!(
            authority("http://127.0.0.1:5644").unwrap(),
            "127.0.0.1:5644"
        );
        assert_eq!(
            authority("http://127.0.0.1:5644/").unwrap(),
            "127.0.0.1:5644"
        );
        assert_eq!(authority("http://[::1]:7").unwrap(), "[::1]:7");
        assert_eq!(authority("http://[::1]").unwrap(), "[::1]:80");
        assert_eq!(authority("http://localhost").unwrap(), "localhost:80");
        for bad in [
            "https://127.0.0.1:1",
            "127.0.0.1:1",
            "http://",
            "http://h:1/v1",
            "http://h:x",
            "http://h:99999",
        ] {
            assert!(
                matches!(authority(bad), Err(ClientError::InvalidTarget(_))),
                "{bad}"
            );
        }
        assert!(Target::from_url("http://127.0.0.1:1").is_ok());
        assert_eq!(
            Target::Unix("/run/weft/a/mgmt".into()).to_string(),
            "unix:/run/weft/a/mgmt"
        );
    }
}
