//! The management server's pages: which path does what.
//!
//! Handlers live here and only here; the router and the connection code know nothing about
//! JSON-RPC. The status page, `/metrics` and the event stream are future entries in [`build`].

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use jsonrpsee::Methods;

use crate::body::{self, BodyError};
use crate::jsonrpc;
use crate::response::{self, Body};
use crate::router::Router;

/// How long a client may take to send its request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers need from the daemon.
pub(crate) struct AppState {
    /// The daemon's JSON-RPC methods.
    pub(crate) methods: Methods,
    /// Which daemon and session this is, for `GET /`.
    pub(crate) banner: String,
}

/// The route table of the management server.
pub(crate) fn build(state: Arc<AppState>) -> Router {
    let rpc_state = state.clone();
    Router::new()
        .route(Method::GET, "/", move |_req| {
            let banner = state.banner.clone();
            async move { response::text(StatusCode::OK, banner) }
        })
        .route(Method::POST, "/v1", move |req| {
            let state = rpc_state.clone();
            async move { rpc(&state, req).await }
        })
}

/// `POST /v1`: a JSON-RPC 2.0 request or batch in, the response out.
async fn rpc(state: &AppState, req: Request<Incoming>) -> Response<Body> {
    let body = match body::read_bounded(req, crate::MAX_BODY_BYTES, BODY_READ_TIMEOUT).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            tracing::debug!("request body too large");
            return response::closing(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {} bytes\n", crate::MAX_BODY_BYTES),
            );
        }
        Err(BodyError::Timeout) => {
            tracing::debug!("request body timed out");
            return response::closing(StatusCode::REQUEST_TIMEOUT, "request body too slow\n");
        }
        Err(BodyError::Broken) => {
            tracing::debug!("request body unreadable");
            return response::closing(StatusCode::BAD_REQUEST, "unreadable request body\n");
        }
    };
    match jsonrpc::dispatch(&state.methods, &body).await {
        Some(answer) => response::json(answer),
        None => response::empty(StatusCode::NO_CONTENT),
    }
}
