//! The JSON-RPC layer's limits against a real server over TCP: a deeply nested write call without
//! the password is refused and does not run (it once did: the check and jsonrpsee parsed the same
//! bytes differently), batches are bounded, and the server keeps serving afterwards.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use serde_json::{json, Value};
use weft_mgmt::jsonrpsee::RpcModule;
use weft_mgmt::MgmtServer;

async fn with_tcp_and_password(s: MgmtServer) -> MgmtServer {
    s.with_password(PASSWORD.to_owned())
        .with_tcp("127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap()
}

/// The fake edge, with a `stop` that counts its runs.
fn recording_edge() -> (RpcModule<()>, Arc<AtomicUsize>) {
    let mut m = module("edge");
    m.remove_method("stop");
    let stops = Arc::new(AtomicUsize::new(0));
    let ran = stops.clone();
    m.register_method("stop", move |_, _, _| {
        ran.fetch_add(1, Ordering::SeqCst);
        json!({ "stopping": true })
    })
    .unwrap();
    (m, stops)
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn is_refusal(v: &Value) -> bool {
    let code = v["error"]["code"].as_i64();
    matches!(code, Some(-32001 | -32600 | -32700)) && v.get("result").is_none()
}

#[tokio::test]
async fn deeply_nested_write_calls_without_the_password_do_not_run() {
    let (m, stops) = recording_edge();
    let s = start("deep", m, with_tcp_and_password).await;
    let addr = s.tcp[0];
    for depth in [129, 200, 10_000] {
        let deep = nested(depth);
        for body in [
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"stop","params":{deep}}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"stop","x":{deep}}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":{deep},"method":"stop"}}"#),
            format!(r#"{{"jsonrpc":"2.0","method":"stop","params":{deep}}}"#),
            format!(r#"[{{"jsonrpc":"2.0","id":1,"method":"stop","params":{deep}}}]"#),
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"set_verbose","params":[7],"x":{deep}}}"#),
        ] {
            let r = tcp(addr, request("POST", "/v1", &[], &body)).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert!(is_refusal(&r.json()), "depth {depth}: {}", r.body);
        }
    }
    assert_eq!(stops.load(Ordering::SeqCst), 0, "a deeply nested stop ran");
    // set_verbose did not run either, and the server still answers.
    let r = tcp(addr, request("POST", "/v1", &[], &call_body("get_verbose"))).await;
    assert_eq!(r.json()["result"], json!({ "verbose": 2 }));
    // With the password, an ordinary stop runs: the refusals above were not a broken method.
    let auth = format!("Authorization: Bearer {PASSWORD}");
    let r = tcp(addr, request("POST", "/v1", &[&auth], &call_body("stop"))).await;
    assert_eq!(r.json()["result"], json!({ "stopping": true }));
    assert_eq!(stops.load(Ordering::SeqCst), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn huge_batches_are_refused_whole() {
    let s = start("batch", module("edge"), with_tcp_and_password).await;
    let addr = s.tcp[0];
    // The attack's shape: a body near the 1 MiB limit full of get_edges calls.
    let call = call_body("get_edges");
    let n = (weft_mgmt::MAX_BODY_BYTES - 2) / (call.len() + 1);
    let body = format!("[{}]", vec![call.as_str(); n].join(","));
    let r = tcp(addr, request("POST", "/v1", &[], &body)).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["error"]["code"], json!(-32600), "{}", r.body);
    assert!(r.body.len() < 200, "{} bytes", r.body.len());
    // A batch of the size tools send still works.
    let body = format!("[{}]", [call.as_str(); 4].join(","));
    let r = tcp(addr, request("POST", "/v1", &[], &body)).await;
    assert_eq!(r.json().as_array().unwrap().len(), 4);
    assert_eq!(r.json()[3]["result"], edge_peers());
    s.shutdown().await;
}
