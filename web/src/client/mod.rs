//! Client side of the management protocol: one JSON-RPC call per connection to a daemon's socket.
//!
//! Two flavours with the same semantics: [`call`] for async code (the daemons, the CLI), and
//! [`call_blocking`] using only std I/O, so tests and small tools need no tokio runtime. Both send
//! `POST /v1` and turn the JSON-RPC response into `Ok(result)` or [`ClientError::Rpc`].

mod blocking;
mod error;
mod nonblocking;

use serde_json::{json, Value};

pub use error::{ClientError, RpcError};

use std::path::Path;
use std::time::Duration;

/// One JSON-RPC call over the unix socket: POST /v1, returns `result` or a ClientError carrying
/// the JSON-RPC error.
///
/// `params` must be an array or object (JSON-RPC 2.0); `Value::Null` sends no params. There is no
/// built-in timeout; wrap the call in `tokio::time::timeout` if the daemon may be wedged.
pub async fn call(path: &Path, method: &str, params: Value) -> Result<Value, ClientError> {
    let body = request_body(method, params);
    let (status, bytes) = nonblocking::post(path, body).await?;
    interpret(status, &bytes)
}

/// The same with std blocking I/O only (no tokio runtime needed), for tests and simple tools;
/// the whole exchange (connect, send, receive) is bounded by `timeout`.
pub fn call_blocking(
    path: &Path,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, ClientError> {
    let body = request_body(method, params);
    let (status, bytes) = blocking::post(path, body.as_bytes(), timeout)?;
    interpret(status, &bytes)
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
}
