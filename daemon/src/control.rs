//! The management methods that change a daemon's state, the same in both daemons: `get_verbose`,
//! `set_verbose`, `reload` and `stop` (schemas: docs/api.md). Which callers may use the last three is the
//! management server's business (`weft_mgmt`'s write-method authorisation), not this module's.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use weft_mgmt::jsonrpsee::types::{ErrorObjectOwned, Params};
use weft_mgmt::jsonrpsee::RpcModule;

use crate::{Logging, ReloadFn};

/// What the control methods act on.
pub struct Controls {
    /// The process's logging.
    pub logging: Arc<Logging>,
    /// Asks the daemon to stop.
    pub stop: mpsc::Sender<()>,
    /// Re-reads the configuration.
    pub reload: ReloadFn,
}

fn internal(msg: impl ToString) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, msg.to_string(), None::<()>)
}

/// `set_verbose` params: `[n]` or `{"verbose": n}`, n from 0 to 4.
fn parse_verbose(params: &Params) -> Result<u8, ErrorObjectOwned> {
    let bad = || {
        ErrorObjectOwned::owned(
            -32602,
            "expected [n] or {\"verbose\": n} with n from 0 to 4",
            None::<()>,
        )
    };
    let v: Value = params.parse().map_err(|_| bad())?;
    let n = match &v {
        Value::Array(a) if a.len() == 1 => a[0].as_u64(),
        Value::Object(o) => o.get("verbose").and_then(Value::as_u64),
        _ => None,
    };
    match n {
        Some(n) if n <= 4 => Ok(n as u8),
        _ => Err(bad()),
    }
}

/// The control methods, to merge into a daemon's module.
pub fn module(controls: Controls) -> anyhow::Result<RpcModule<Controls>> {
    let mut m = RpcModule::new(controls);
    m.register_method("get_verbose", |_, c, _| {
        Ok::<Value, ErrorObjectOwned>(json!({ "verbose": c.logging.verbose() }))
    })?;
    m.register_method("set_verbose", |params, c, _| {
        let v = parse_verbose(&params)?;
        c.logging.set_verbose(v).map_err(internal)?;
        tracing::info!("log level set to {v} through the management API");
        Ok::<Value, ErrorObjectOwned>(json!({ "verbose": v }))
    })?;
    m.register_method("reload", |_, c, _| {
        let (reloaded, restart_needed) =
            (c.reload)(&c.logging).map_err(|e| internal(format!("{e:#}")))?;
        Ok::<Value, ErrorObjectOwned>(
            json!({ "reloaded": reloaded, "restart_needed": restart_needed }),
        )
    })?;
    m.register_method("stop", |_, c, _| {
        tracing::info!("stop requested through the management API");
        let _ = c.stop.try_send(());
        Ok::<Value, ErrorObjectOwned>(json!({ "stopping": true }))
    })?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_params_in_both_forms_and_bounds() {
        let ok = |s: &str| parse_verbose(&Params::new(Some(s)));
        assert_eq!(ok("[3]").unwrap(), 3);
        assert_eq!(ok("{\"verbose\": 0}").unwrap(), 0);
        for bad in ["[5]", "[]", "[1,2]", "{\"level\":1}", "\"x\"", "[-1]"] {
            assert_eq!(ok(bad).unwrap_err().code(), -32602, "{bad}");
        }
    }
}
