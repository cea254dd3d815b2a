//! JSON-RPC 2.0 dispatch of a request body through the daemon's jsonrpsee methods.
//!
//! jsonrpsee's `raw_json_request` executes exactly one well-formed call. Everything around it that
//! the JSON-RPC 2.0 spec requires of a server — parse errors, invalid requests, batches and
//! notifications — is done here, independent of HTTP, so any transport can reuse it.

use std::collections::HashSet;

use jsonrpsee::Methods;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::auth::{UNAUTHORIZED_CODE, UNAUTHORIZED_MESSAGE};

/// JSON-RPC "Parse error": the body is not JSON.
pub(crate) const PARSE_ERROR: i32 = -32700;
/// JSON-RPC "Invalid request": JSON, but not a request object.
pub(crate) const INVALID_REQUEST: i32 = -32600;

/// What the caller of a request may do.
pub(crate) struct Access<'a> {
    /// Whether write methods may run.
    pub(crate) may_write: bool,
    /// Which methods are write methods.
    pub(crate) write_methods: &'a HashSet<String>,
}

impl Access<'_> {
    /// Whether `call` names a method this caller may not run.
    fn refuses(&self, call: &Value) -> bool {
        !self.may_write
            && call
                .get("method")
                .and_then(Value::as_str)
                .is_some_and(|m| self.write_methods.contains(m))
    }
}

/// Run a request body (single request or batch) and return the response text, or `None` when the
/// spec says nothing is to be returned (a notification, or a batch of only notifications).
///
/// Write methods the caller may not run are answered with error -32001 (and not run), each call of
/// a batch on its own.
pub(crate) async fn dispatch(
    methods: &Methods,
    body: &[u8],
    access: &Access<'_>,
) -> Option<String> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Some(error_response(Value::Null, PARSE_ERROR, "Parse error"));
    };
    if text.trim_start().starts_with('[') {
        let Ok(calls) = serde_json::from_str::<Vec<&RawValue>>(text) else {
            return Some(error_response(Value::Null, PARSE_ERROR, "Parse error"));
        };
        if calls.is_empty() {
            return Some(error_response(
                Value::Null,
                INVALID_REQUEST,
                "Invalid request",
            ));
        }
        tracing::debug!(calls = calls.len(), "JSON-RPC batch");
        let mut answers = Vec::with_capacity(calls.len());
        // Sequentially: management calls are cheap, and ordered execution is easier to reason
        // about for an operator sending e.g. "stop peer X" then "list peers" in one batch.
        for call in calls {
            if let Some(answer) = dispatch_one(methods, call.get(), access).await {
                answers.push(answer);
            }
        }
        if answers.is_empty() {
            None
        } else {
            Some(format!("[{}]", answers.join(",")))
        }
    } else {
        let Ok(call) = serde_json::from_str::<&RawValue>(text) else {
            return Some(error_response(Value::Null, PARSE_ERROR, "Parse error"));
        };
        dispatch_one(methods, call.get(), access).await
    }
}

/// Run one syntactically valid JSON value as a call.
async fn dispatch_one(methods: &Methods, call: &str, access: &Access<'_>) -> Option<String> {
    let value: Value = serde_json::from_str(call).unwrap_or(Value::Null);
    if access.refuses(&value) {
        tracing::debug!(request = call, "unauthorised JSON-RPC call refused");
        return value.get("id").map(|id| {
            let id = match id {
                Value::Number(_) | Value::String(_) => id.clone(),
                _ => Value::Null,
            };
            error_response(id, UNAUTHORIZED_CODE, UNAUTHORIZED_MESSAGE)
        });
    }
    // Subscriptions are not offered over HTTP; their channel is dropped right away.
    if let Ok((answer, _subscription)) = methods.raw_json_request(call, 1).await {
        tracing::debug!(request = call, response = answer.get(), "JSON-RPC call");
        return Some(answer.get().to_owned());
    }
    // Not a request jsonrpsee accepts: either a notification (no "id") or invalid.
    match as_notification(&value) {
        Some(as_request) => {
            // The spec says notifications are executed but never answered.
            tracing::debug!(request = call, "JSON-RPC notification");
            let _ = methods.raw_json_request(&as_request, 1).await;
            None
        }
        None => {
            tracing::debug!(request = call, "invalid JSON-RPC request");
            let id = match value.get("id") {
                Some(id @ (Value::Number(_) | Value::String(_))) => id.clone(),
                _ => Value::Null,
            };
            Some(error_response(id, INVALID_REQUEST, "Invalid request"))
        }
    }
}

/// If `value` is a well-formed notification, the same call as a request (id null) that jsonrpsee
/// can execute.
fn as_notification(value: &Value) -> Option<String> {
    let obj = value.as_object()?;
    if obj.contains_key("id") || obj.get("jsonrpc")? != "2.0" {
        return None;
    }
    let method = obj.get("method")?.as_str()?;
    let mut request = json!({ "jsonrpc": "2.0", "id": null, "method": method });
    if let Some(params) = obj.get("params") {
        request["params"] = params.clone();
    }
    Some(request.to_string())
}

/// A JSON-RPC error response produced by this layer (not by a method).
fn error_response(id: Value, code: i32, message: &str) -> String {
    json!({ "jsonrpc": "2.0", "error": { "code": code, "message": message }, "id": id }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonrpsee::RpcModule;

    fn methods() -> Methods {
        let mut m = RpcModule::new(());
        m.register_method("echo", |p, _, _| p.parse::<Value>().unwrap_or(Value::Null))
            .unwrap();
        m.into()
    }

    fn open() -> HashSet<String> {
        HashSet::new()
    }

    async fn run(body: &str) -> Option<Value> {
        let writes = open();
        let access = Access {
            may_write: true,
            write_methods: &writes,
        };
        dispatch(&methods(), body.as_bytes(), &access)
            .await
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[tokio::test]
    async fn single_call() {
        let r = run(r#"{"jsonrpc":"2.0","id":7,"method":"echo","params":[1]}"#)
            .await
            .unwrap();
        assert_eq!(r["result"], json!([1]));
        assert_eq!(r["id"], json!(7));
    }

    #[tokio::test]
    async fn garbage_is_parse_error() {
        for body in ["{", "", "\u{0}", "[1,"] {
            let r = run(body).await.unwrap();
            assert_eq!(r["error"]["code"], json!(PARSE_ERROR), "{body:?}");
            assert_eq!(r["id"], Value::Null);
        }
        let writes = open();
        let access = Access {
            may_write: false,
            write_methods: &writes,
        };
        let r = dispatch(&methods(), b"\xff\xfe", &access).await.unwrap();
        assert!(r.contains("-32700"));
    }

    #[tokio::test]
    async fn invalid_requests() {
        let r = run(r#"{"jsonrpc":"1.0","id":"a","method":"echo"}"#)
            .await
            .unwrap();
        assert_eq!(r["error"]["code"], json!(INVALID_REQUEST));
        assert_eq!(r["id"], json!("a"));
        let r = run("42").await.unwrap();
        assert_eq!(r["error"]["code"], json!(INVALID_REQUEST));
        let r = run("[]").await.unwrap();
        assert_eq!(r["error"]["code"], json!(INVALID_REQUEST));
    }

    #[tokio::test]
    async fn notifications_get_no_answer() {
        assert_eq!(
            run(r#"{"jsonrpc":"2.0","method":"echo","params":[1]}"#).await,
            None
        );
        assert_eq!(run(r#"[{"jsonrpc":"2.0","method":"echo"}]"#).await, None);
    }

    #[tokio::test]
    async fn batch_mixes_answers_and_errors() {
        let r = run(r#"[{"jsonrpc":"2.0","id":1,"method":"echo","params":["x"]},
                        {"jsonrpc":"2.0","method":"echo"},
                        5,
                        {"jsonrpc":"2.0","id":2,"method":"nope"}]"#)
        .await
        .unwrap();
        let answers = r.as_array().unwrap();
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0]["result"], json!(["x"]));
        assert_eq!(answers[1]["error"]["code"], json!(INVALID_REQUEST));
        assert_eq!(answers[2]["error"]["code"], json!(-32601));
    }

    #[tokio::test]
    async fn write_methods_need_access() {
        let writes: HashSet<String> = ["echo".to_owned()].into();
        let denied = Access {
            may_write: false,
            write_methods: &writes,
        };
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]},
                        {"jsonrpc":"2.0","method":"echo","params":[2]},
                        {"jsonrpc":"2.0","id":"x","method":"nope"}]"#;
        let r: Value =
            serde_json::from_str(&dispatch(&methods(), body, &denied).await.unwrap()).unwrap();
        let answers = r.as_array().unwrap();
        assert_eq!(answers.len(), 2, "{r}");
        assert_eq!(answers[0]["error"]["code"], json!(-32001));
        assert_eq!(answers[0]["id"], json!(1));
        assert_eq!(
            answers[0]["error"]["message"],
            json!("unauthorized: this method needs the management password")
        );
        assert_eq!(answers[1]["error"]["code"], json!(-32601));
        let allowed = Access {
            may_write: true,
            write_methods: &writes,
        };
        let r: Value =
            serde_json::from_str(&dispatch(&methods(), body, &allowed).await.unwrap()).unwrap();
        assert_eq!(r[0]["result"], json!([1]));
    }
}
