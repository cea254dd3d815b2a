//! The management API's request path (`POST /v1` bodies through the JSON-RPC layer) on arbitrary bytes,
//! for a caller without the password: never a panic, a write method never runs, and the answer stays
//! within the size limit whatever the body.
#![no_main]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weft_mgmt::jsonrpsee::{Methods, RpcModule};

static STOPPED: AtomicBool = AtomicBool::new(false);

struct Api {
    rt: tokio::runtime::Runtime,
    methods: Methods,
    writes: HashSet<String>,
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let mut m = RpcModule::new(());
        m.register_method("stop", |_, _, _| {
            STOPPED.store(true, Ordering::SeqCst);
            serde_json::json!({"stopping": true})
        })
        .expect("register");
        m.register_method("get_edges", |_, _, _| {
            // A large answer, as a big peer table gives.
            serde_json::Value::String("x".repeat(300_000))
        })
        .expect("register");
        m.register_method("echo", |p, _, _| {
            p.parse::<serde_json::Value>()
                .unwrap_or(serde_json::Value::Null)
        })
        .expect("register");
        Api {
            rt: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime"),
            methods: m.into(),
            writes: ["stop".to_owned()].into(),
        }
    })
}

fuzz_target!(|body: &[u8]| {
    let api = api();
    let answer = api.rt.block_on(weft_mgmt::dispatch_request(
        &api.methods,
        &api.writes,
        false,
        body,
    ));
    assert!(
        !STOPPED.load(Ordering::SeqCst),
        "a write method ran without the password: {:?}",
        String::from_utf8_lossy(body)
    );
    if let Some(a) = answer {
        // One answer may exceed the batch limit on its own; 300 kB here, so the bound is the limit plus
        // one answer plus the error answers of at most 32 calls.
        assert!(
            a.len() <= weft_mgmt::MAX_RESPONSE_BYTES + 300_100 + 32 * 200,
            "answer of {} bytes",
            a.len()
        );
    }
});
