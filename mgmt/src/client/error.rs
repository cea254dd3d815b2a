//! What can go wrong on the client side of a management call.
//!
//! JSON-RPC errors returned by the daemon ([`ClientError::Rpc`]) are kept apart from transport
//! failures, because callers react differently: a -32602 is the user's fault, a refused connection
//! means the daemon is not running.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// A JSON-RPC 2.0 error object as returned by the daemon.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RpcError {
    /// JSON-RPC error code, e.g. -32601 (method not found) or a daemon-defined code.
    pub code: i32,
    pub message: String,
    #[serde(default)]
    pub data: Option<Value>,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (JSON-RPC error {})", self.message, self.code)?;
        if let Some(data) = &self.data {
            write!(f, ": {data}")?;
        }
        Ok(())
    }
}

/// Why a management call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon could be reached at the socket path (missing file, refused, no permission).
    #[error("cannot connect to management socket {path}: {source}")]
    Connect { path: PathBuf, source: io::Error },

    /// No daemon could be reached at the TCP address (refused, unreachable, unresolvable).
    #[error("cannot connect to management address {addr}: {source}")]
    ConnectTcp { addr: String, source: io::Error },

    /// The target (e.g. a URL) is not usable.
    #[error("invalid management address {0}")]
    InvalidTarget(String),

    /// The request cannot be sent as given (e.g. a header value with a line break).
    #[error("invalid management request: {0}")]
    InvalidRequest(String),

    /// A local I/O failure (e.g. no runtime could be set up for a blocking call).
    #[error("management connection failed: {0}")]
    Io(#[from] io::Error),

    /// The whole exchange did not complete in time.
    #[error("management call timed out after {0:?}")]
    Timeout(Duration),

    /// The connection broke, or the server's answer was not valid HTTP.
    #[error("management HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),

    /// The server answered with a non-200 status (e.g. 413 for an oversized request).
    #[error("management server answered HTTP {status}: {body}")]
    Status { status: u16, body: String },

    /// The answer was not a JSON-RPC 2.0 response.
    #[error("malformed management response: {0}")]
    InvalidResponse(String),

    /// The daemon answered with a JSON-RPC error.
    #[error("{0}")]
    Rpc(RpcError),
}

impl ClientError {
    /// The JSON-RPC error code, if the daemon answered with an error.
    pub fn rpc_code(&self) -> Option<i32> {
        match self {
            ClientError::Rpc(e) => Some(e.code),
            _ => None,
        }
    }

    /// Whether the daemon refused for lack of the password: HTTP 401, or JSON-RPC error -32001.
    pub fn is_unauthorized(&self) -> bool {
        match self {
            ClientError::Status { status, .. } => *status == 401,
            ClientError::Rpc(e) => e.code == crate::UNAUTHORIZED_CODE,
            _ => false,
        }
    }

    /// Whether no daemon could be reached at all (nothing listening, no permission, timeout).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. } | ClientError::ConnectTcp { .. } | ClientError::Timeout(_)
        )
    }
}
