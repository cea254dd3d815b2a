//! JSON-RPC 2.0 dispatch of a request body through the daemon's jsonrpsee methods.
//!
//! jsonrpsee's `raw_json_request` executes exactly one well-formed call. Everything around it that
//! the JSON-RPC 2.0 spec requires of a server — parse errors, invalid requests, batches and
//! notifications — is done here, independent of HTTP, so any transport can reuse it.
//!
//! Authorisation decides on exactly what is executed: the body's nesting depth is bounded first
//! ([`depth`]), each call is parsed once into its typed parts ([`call`]), the method is checked on
//! the parsed name, and jsonrpsee is handed request text written from those same parts, never the
//! client's bytes. Anything that does not parse is answered with an error and runs nothing.
//! Batches are bounded in length and their answers in total size, so the memory one request can
//! make the daemon spend does not grow with the daemon's tables times the client's wishes.

mod call;
mod depth;

use std::collections::HashSet;

use jsonrpsee::types::error::{OVERSIZED_RESPONSE_CODE, OVERSIZED_RESPONSE_MSG};
use jsonrpsee::Methods;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::auth::{UNAUTHORIZED_CODE, UNAUTHORIZED_MESSAGE};
use call::{Call, Parsed};

/// JSON-RPC "Parse error": the body is not JSON.
pub(crate) const PARSE_ERROR: i32 = -32700;
/// JSON-RPC "Invalid request": JSON, but not a request object.
pub(crate) const INVALID_REQUEST: i32 = -32600;

/// Deepest nesting of arrays and objects a request body may have, a batch's brackets included.
///
/// Real management calls nest three or four levels (batch, call, params, a value); 32 leaves room
/// for any sensible parameter while keeping every parser far from its own limit (serde_json's
/// `Value` stops at 128) and from deep recursion.
pub(crate) const MAX_DEPTH: usize = 32;

/// Most calls one batch may hold; a longer batch is refused whole with one "Invalid request".
///
/// A management tool sends a handful of calls at once; without a bound, one 1 MiB body of short
/// calls asks for tens of thousands of answers.
pub(crate) const MAX_BATCH: usize = 32;

/// Most bytes of answers a batch may collect (4 MiB).
///
/// Once the answers so far and the next one would exceed it, that call is answered with error
/// -32008 ("Response is too big") instead, and the calls after it are not run and get the same
/// error (notifications: nothing). The first answer is always kept whole: a lone call's answer is
/// as large as the daemon's tables make it (e.g. `get_edges` of a big supernode), which the client
/// cannot multiply. So a batch costs at most one answer plus 4 MiB plus small error answers.
pub(crate) const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// What the caller of a request may do.
pub(crate) struct Access<'a> {
    /// Whether write methods may run.
    pub(crate) may_write: bool,
    /// Which methods are write methods.
    pub(crate) write_methods: &'a HashSet<String>,
}

impl Access<'_> {
    /// Whether `method` is one this caller may not run.
    fn refuses(&self, method: &str) -> bool {
        !self.may_write && self.write_methods.contains(method)
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
    // Before any parser: see depth.rs for why.
    if depth::exceeds(text.as_bytes(), MAX_DEPTH) {
        tracing::debug!(
            max = MAX_DEPTH,
            "JSON-RPC request nested too deeply; refused"
        );
        return Some(error_response(
            Value::Null,
            INVALID_REQUEST,
            &format!("Invalid request: nested deeper than {MAX_DEPTH} levels"),
        ));
    }
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
        if calls.len() > MAX_BATCH {
            tracing::debug!(
                calls = calls.len(),
                max = MAX_BATCH,
                "JSON-RPC batch too long; refused"
            );
            return Some(error_response(
                Value::Null,
                INVALID_REQUEST,
                &format!("Invalid request: batch of more than {MAX_BATCH} calls"),
            ));
        }
        tracing::debug!(calls = calls.len(), "JSON-RPC batch");
        let answers = run_batch(methods, &calls, access).await;
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

/// Run the calls of a batch in order within [`MAX_RESPONSE_BYTES`]; the answers to return.
///
/// Sequentially: management calls are cheap, and ordered execution is easier to reason about for
/// an operator sending e.g. "stop peer X" then "list peers" in one batch.
async fn run_batch(methods: &Methods, calls: &[&RawValue], access: &Access<'_>) -> Vec<String> {
    let mut answers: Vec<String> = Vec::with_capacity(calls.len());
    let mut size = 0usize;
    let mut full = false;
    for call in calls {
        if full {
            // Not run: its answer would have nowhere to go.
            if let Some(answer) = oversized(call.get()) {
                answers.push(answer);
            }
            continue;
        }
        let Some(answer) = dispatch_one(methods, call.get(), access).await else {
            continue;
        };
        if !answers.is_empty() && size.saturating_add(answer.len()) > MAX_RESPONSE_BYTES {
            tracing::debug!(
                max = MAX_RESPONSE_BYTES,
                "JSON-RPC batch answers too large; the rest is not run"
            );
            full = true;
            answers.extend(oversized(call.get()));
            continue;
        }
        size += answer.len();
        answers.push(answer);
    }
    answers
}

/// The answer to a call of a batch past [`MAX_RESPONSE_BYTES`]: error -32008 for a request,
/// "Invalid request" for what is not one, nothing for a notification.
fn oversized(text: &str) -> Option<String> {
    match call::parse(text) {
        Parsed::Call(call) if call.is_notification() => None,
        Parsed::Call(call) => Some(error_response(
            call.answer_id(),
            OVERSIZED_RESPONSE_CODE,
            OVERSIZED_RESPONSE_MSG,
        )),
        Parsed::Invalid { id } => Some(invalid_request(id)),
    }
}

/// Run one syntactically valid, depth-bounded JSON value as a call.
async fn dispatch_one(methods: &Methods, text: &str, access: &Access<'_>) -> Option<String> {
    let call = match call::parse(text) {
        Parsed::Call(call) => call,
        Parsed::Invalid { id } => {
            tracing::debug!(request = text, "invalid JSON-RPC request");
            return Some(invalid_request(id));
        }
    };
    if access.refuses(&call.method) {
        tracing::debug!(method = %call.method, "unauthorised JSON-RPC call refused");
        return (!call.is_notification())
            .then(|| error_response(call.answer_id(), UNAUTHORIZED_CODE, UNAUTHORIZED_MESSAGE));
    }
    execute(methods, &call).await
}

/// Run an authorised call: jsonrpsee gets the canonical text of exactly the call checked.
async fn execute(methods: &Methods, call: &Call<'_>) -> Option<String> {
    let request = call.canonical();
    // Subscriptions are not offered over HTTP; their channel is dropped right away.
    match methods.raw_json_request(&request, 1).await {
        Ok(_) if call.is_notification() => {
            // The spec says notifications are executed but never answered.
            tracing::debug!(%request, "JSON-RPC notification");
            None
        }
        Ok((answer, _subscription)) => {
            tracing::debug!(%request, response = answer.get(), "JSON-RPC call");
            Some(answer.get().to_owned())
        }
        Err(_) => {
            // jsonrpsee takes fewer ids than the spec (e.g. no negative or fractional numbers).
            tracing::debug!(%request, "JSON-RPC request jsonrpsee does not accept");
            Some(invalid_request(call.answer_id()))
        }
    }
}

/// The "Invalid request" answer.
fn invalid_request(id: Value) -> String {
    error_response(id, INVALID_REQUEST, "Invalid request")
}

/// A JSON-RPC error response produced by this layer (not by a method).
fn error_response(id: Value, code: i32, message: &str) -> String {
    json!({ "jsonrpc": "2.0", "error": { "code": code, "message": message }, "id": id }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonrpsee::RpcModule;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

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

    /// Methods with a write method `stop` that counts its runs, and `big` that answers a string
    /// of the requested length.
    fn recording() -> (Methods, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let stops = Arc::new(AtomicUsize::new(0));
        let bigs = Arc::new(AtomicUsize::new(0));
        let mut m = RpcModule::new(());
        let ran = stops.clone();
        m.register_method("stop", move |_, _, _| {
            ran.fetch_add(1, Ordering::SeqCst);
            json!({ "stopping": true })
        })
        .unwrap();
        let ran = bigs.clone();
        m.register_method("big", move |p, _, _| {
            ran.fetch_add(1, Ordering::SeqCst);
            let (len,): (usize,) = p.parse().unwrap();
            "x".repeat(len)
        })
        .unwrap();
        m.register_method("echo", |p, _, _| p.parse::<Value>().unwrap_or(Value::Null))
            .unwrap();
        (m.into(), stops, bigs)
    }

    fn writes() -> HashSet<String> {
        ["stop".to_owned()].into()
    }

    async fn run_as(methods: &Methods, body: &str, may_write: bool) -> Option<Value> {
        let writes = writes();
        let access = Access {
            may_write,
            write_methods: &writes,
        };
        dispatch(methods, body.as_bytes(), &access)
            .await
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// The attack: a `stop` whose nesting one parser could not read and another could. Nothing
    /// that deep runs, with or without the password.
    #[tokio::test]
    async fn deep_nesting_anywhere_runs_nothing() {
        let (methods, stops, _) = recording();
        for depth in [MAX_DEPTH, 129, 200, 10_000] {
            let deep = nested(depth);
            let deep_object = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
            for body in [
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":"stop","params":{deep}}}"#),
                format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"stop","params":{{"x":{deep_object}}}}}"#
                ),
                format!(r#"{{"jsonrpc":"2.0","id":{deep},"method":"stop"}}"#),
                format!(r#"{{"jsonrpc":"2.0","id":1,"method":"stop","x":{deep}}}"#),
                format!(r#"{{"x":{deep},"jsonrpc":"2.0","id":1,"method":"stop"}}"#),
                format!(r#"{{"jsonrpc":"2.0","method":"stop","params":{deep}}}"#),
                format!(r#"[{{"jsonrpc":"2.0","id":1,"method":"stop","params":{deep}}}]"#),
                format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"stop","params":{}"#,
                    "[".repeat(depth)
                ),
            ] {
                for may_write in [false, true] {
                    let r = run_as(&methods, &body, may_write).await.unwrap();
                    let code = &r["error"]["code"];
                    assert!(
                        *code == json!(INVALID_REQUEST) || *code == json!(PARSE_ERROR),
                        "depth {depth}: {r}"
                    );
                    assert_eq!(r["id"], Value::Null);
                }
            }
        }
        assert_eq!(stops.load(Ordering::SeqCst), 0, "a deeply nested stop ran");
    }

    #[tokio::test]
    async fn nesting_up_to_the_limit_still_works() {
        let (methods, stops, _) = recording();
        // Call object + params array + 30 more levels = MAX_DEPTH.
        let params = format!("[{}]", nested(MAX_DEPTH - 2));
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"echo","params":{params}}}"#);
        let r = run_as(&methods, &body, false).await.unwrap();
        assert_eq!(r["result"], serde_json::from_str::<Value>(&params).unwrap());
        // Without the password the same depth of `stop` is refused as unauthorised, with it, runs.
        let body = format!(r#"{{"jsonrpc":"2.0","id":2,"method":"stop","params":{params}}}"#);
        let r = run_as(&methods, &body, false).await.unwrap();
        assert_eq!(r["error"]["code"], json!(UNAUTHORIZED_CODE));
        assert_eq!(stops.load(Ordering::SeqCst), 0);
        let r = run_as(&methods, &body, true).await.unwrap();
        assert_eq!(r["result"], json!({ "stopping": true }));
        assert_eq!(stops.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn brackets_in_strings_are_not_nesting() {
        let (methods, _, _) = recording();
        let text = format!("{}\"{}", "[{".repeat(300), "]}".repeat(300));
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "echo", "params": [text] });
        let r = run_as(&methods, &body.to_string(), false).await.unwrap();
        assert_eq!(r["result"], json!([text]));
    }

    /// serde_json's `Value` keeps the last of two equal keys; another parser might keep the first.
    /// Any duplicate is refused, so the method checked and the method run cannot differ.
    #[tokio::test]
    async fn duplicate_method_keys_run_nothing() {
        let (methods, stops, _) = recording();
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"echo","method":"stop"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"stop","method":"echo"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"echo","\u006dethod":"stop"}"#,
            r#"{"jsonrpc":"2.0","method":"echo","method":"stop"}"#,
        ] {
            for may_write in [false, true] {
                let r = run_as(&methods, body, may_write).await.unwrap();
                assert_eq!(r["error"]["code"], json!(INVALID_REQUEST), "{body}");
            }
        }
        assert_eq!(stops.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn escaped_method_names_are_authorised_as_unescaped() {
        let (methods, stops, _) = recording();
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"st\u006fp"}"#;
        let r = run_as(&methods, body, false).await.unwrap();
        assert_eq!(r["error"]["code"], json!(UNAUTHORIZED_CODE));
        // A notification is refused silently.
        let body = r#"{"jsonrpc":"2.0","method":"\u0073top"}"#;
        assert_eq!(run_as(&methods, body, false).await, None);
        assert_eq!(stops.load(Ordering::SeqCst), 0);
        assert_eq!(run_as(&methods, body, true).await, None);
        assert_eq!(
            stops.load(Ordering::SeqCst),
            1,
            "an authorised notification runs"
        );
    }

    #[tokio::test]
    async fn unknown_members_are_invalid() {
        let (methods, stops, _) = recording();
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"stop","x":1}"#;
        let r = run_as(&methods, body, true).await.unwrap();
        assert_eq!(r["error"]["code"], json!(INVALID_REQUEST));
        assert_eq!(r["id"], json!(1));
        assert_eq!(stops.load(Ordering::SeqCst), 0);
    }

    /// Ids the spec allows but jsonrpsee does not take (negative, fractional) never reach a
    /// method: the canonical request fails to parse in jsonrpsee, and that is "Invalid request".
    #[tokio::test]
    async fn ids_jsonrpsee_refuses_run_nothing() {
        let (methods, stops, _) = recording();
        for (id, echoed) in [("-1", json!(-1)), ("1.5", json!(1.5)), ("{}", Value::Null)] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"stop"}}"#);
            let r = run_as(&methods, &body, true).await.unwrap();
            assert_eq!(r["error"]["code"], json!(INVALID_REQUEST), "{body}");
            assert_eq!(r["id"], echoed);
        }
        assert_eq!(stops.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn batch_over_the_limit_runs_nothing() {
        let (methods, stops, _) = recording();
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"stop"}"#;
        let batch = |n: usize| format!("[{}]", vec![call; n].join(","));
        for n in [MAX_BATCH + 1, 10_000] {
            let r = run_as(&methods, &batch(n), true).await.unwrap();
            assert_eq!(r["error"]["code"], json!(INVALID_REQUEST), "{n} calls");
            assert_eq!(r["id"], Value::Null);
        }
        assert_eq!(stops.load(Ordering::SeqCst), 0);
        let r = run_as(&methods, &batch(MAX_BATCH), true).await.unwrap();
        assert_eq!(r.as_array().unwrap().len(), MAX_BATCH);
        assert_eq!(stops.load(Ordering::SeqCst), MAX_BATCH);
    }

    #[tokio::test]
    async fn batch_answers_stop_at_the_size_limit() {
        let (methods, stops, bigs) = recording();
        let mib = 1024 * 1024;
        let mut calls: Vec<String> = (0..8)
            .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"big","params":[{mib}]}}"#))
            .collect();
        calls.push(r#"{"jsonrpc":"2.0","method":"stop"}"#.to_owned());
        calls.push(r#"{"jsonrpc":"2.0","id":"s","method":"stop"}"#.to_owned());
        calls.push("7".to_owned());
        let body = format!("[{}]", calls.join(","));
        let text = {
            let writes = writes();
            let access = Access {
                may_write: true,
                write_methods: &writes,
            };
            dispatch(&methods, body.as_bytes(), &access).await.unwrap()
        };
        assert!(
            text.len() <= MAX_RESPONSE_BYTES + 1024,
            "{} bytes",
            text.len()
        );
        let r: Value = serde_json::from_str(&text).unwrap();
        let answers = r.as_array().unwrap();
        // Three 1 MiB answers fit in 4 MiB; the fourth ran but its answer did not fit; the rest
        // did not run. The notification gets no answer, the non-call its usual error.
        assert_eq!(answers.len(), 10, "{}", answers.len());
        for (i, a) in answers[..3].iter().enumerate() {
            assert_eq!(a["id"], json!(i));
            assert_eq!(a["result"].as_str().unwrap().len(), mib);
        }
        for (i, a) in answers[3..8].iter().enumerate() {
            assert_eq!(a["id"], json!(i + 3));
            assert_eq!(a["error"]["code"], json!(OVERSIZED_RESPONSE_CODE));
        }
        assert_eq!(answers[8]["id"], json!("s"));
        assert_eq!(answers[8]["error"]["code"], json!(OVERSIZED_RESPONSE_CODE));
        assert_eq!(answers[9]["error"]["code"], json!(INVALID_REQUEST));
        assert_eq!(bigs.load(Ordering::SeqCst), 4);
        assert_eq!(stops.load(Ordering::SeqCst), 0);
    }

    /// A lone call (or a batch's first answer) is answered whole: its size is the daemon's, not
    /// the client's, to choose.
    #[tokio::test]
    async fn a_first_answer_is_never_cut() {
        let (methods, _, _) = recording();
        let len = MAX_RESPONSE_BYTES + 1;
        for body in [
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"big","params":[{len}]}}"#),
            format!(r#"[{{"jsonrpc":"2.0","id":1,"method":"big","params":[{len}]}}]"#),
        ] {
            let r = run_as(&methods, &body, false).await.unwrap();
            let r = if r.is_array() { r[0].clone() } else { r };
            assert_eq!(r["result"].as_str().unwrap().len(), len);
        }
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
