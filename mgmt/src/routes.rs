//! The management server's pages: which path does what.
//!
//! Handlers live here and only here; the router and the connection code know nothing about
//! JSON-RPC. [`App::handle`] first applies the listener-wide access checks ([`Policy::gate`]), then
//! routes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use hyper::{Method, Request, Response, StatusCode};
use jsonrpsee::Methods;
use tokio::sync::watch;

use crate::auth::Policy;
use crate::body::{self, BodyError};
use crate::events::EventSource;
use crate::jsonrpc;
use crate::listener::Peer;
use crate::response::{self, Body};
use crate::router::Router;

/// How long a client may take to send its request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The status page, one self-contained file shared by both daemons.
const STATUS_PAGE: &str = include_str!("../assets/status.html");

/// What the status page may load: only itself and this server.
const STATUS_PAGE_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:";

/// `Content-Type` of the Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the Prometheus metrics text.
pub type MetricsFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// What the handlers need from the daemon.
pub(crate) struct AppState {
    /// The daemon's JSON-RPC methods.
    pub(crate) methods: Methods,
    /// Who may do what.
    pub(crate) policy: Policy,
    /// Renders `/metrics`, if the daemon has metrics.
    pub(crate) metrics: Option<MetricsFn>,
    /// Feeds `/events`, if the daemon has events.
    pub(crate) events: Option<EventSource>,
    /// Flips to true on server shutdown (ends event streams).
    pub(crate) stop: watch::Receiver<bool>,
}

/// Access checks plus the route table: what a connection hands every request to.
pub(crate) struct App {
    state: Arc<AppState>,
    router: Router,
}

impl App {
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        let router = build(&state);
        Self { state, router }
    }

    /// Answer one request.
    pub(crate) async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if let Err(refused) = self
            .state
            .policy
            .gate(req.extensions().get::<Peer>(), req.headers())
        {
            tracing::debug!(method = %req.method(), path = req.uri().path(), status = %refused.status(), "HTTP request refused");
            return refused;
        }
        self.router.dispatch(req).await
    }
}

/// The route table of the management server.
fn build(state: &Arc<AppState>) -> Router {
    let rpc_state = state.clone();
    let mut router = Router::new()
        .route(Method::GET, "/", |_req| async { status_page() })
        .route(Method::POST, "/v1", move |req| {
            let state = rpc_state.clone();
            async move { rpc(&state, req).await }
        });
    if state.metrics.is_some() {
        let state = state.clone();
        router = router.route(Method::GET, "/metrics", move |_req| {
            let state = state.clone();
            async move { metrics(&state).await }
        });
    }
    if state.events.is_some() {
        let state = state.clone();
        router = router.route(Method::GET, "/events", move |_req| {
            let state = state.clone();
            async move {
                match &state.events {
                    Some(events) => events.open(state.stop.clone()),
                    None => response::text(StatusCode::NOT_FOUND, "not found\n"),
                }
            }
        });
    }
    router
}

/// `GET /`: the status page.
fn status_page() -> Response<Body> {
    let mut resp = response::with_body(StatusCode::OK, "text/html; charset=utf-8", STATUS_PAGE);
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(STATUS_PAGE_CSP),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}

/// `GET /metrics`: Prometheus text from the daemon's callback.
async fn metrics(state: &AppState) -> Response<Body> {
    let Some(render) = &state.metrics else {
        return response::text(StatusCode::NOT_FOUND, "not found\n");
    };
    let text = render().await;
    let mut resp = response::with_body(StatusCode::OK, METRICS_CONTENT_TYPE, text);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `POST /v1`: a JSON-RPC 2.0 request or batch in, the response out.
async fn rpc(state: &AppState, req: Request<Incoming>) -> Response<Body> {
    let may_write = state
        .policy
        .may_write(req.extensions().get::<Peer>(), req.headers());
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
    let access = jsonrpc::Access {
        may_write,
        write_methods: &state.policy.write_methods,
    };
    match jsonrpc::dispatch(&state.methods, &body, &access).await {
        Some(answer) => response::json(answer),
        None => response::empty(StatusCode::NO_CONTENT),
    }
}
