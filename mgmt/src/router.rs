//! A minimal exact-path HTTP router.
//!
//! The management server has a handful of fixed paths (`/v1`, `/`, `/metrics`, `/events`), so exact matching on (method, path) is enough and keeps 404 vs. 405 right: a known path
//! with the wrong method is 405 with an `Allow` header, an unknown path is 404. Adding a page is
//! one `route` call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH};
use hyper::{Method, Request, Response, StatusCode};

use crate::response::{self, Body};

/// Future returned by a handler.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// A route's handler: owns whatever state it needs (cloned `Arc`s), takes the whole request.
type Handler = Arc<dyn Fn(Request<Incoming>) -> HandlerFuture + Send + Sync>;

struct Route {
    method: Method,
    path: &'static str,
    handler: Handler,
}

/// Table of routes; cheap to share between connections behind an `Arc`.
#[derive(Default)]
pub(crate) struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Serve `method path` with `handler`.
    pub(crate) fn route<F, Fut>(mut self, method: Method, path: &'static str, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)) as HandlerFuture);
        self.routes.push(Route {
            method,
            path,
            handler,
        });
        self
    }

    /// Answer one request. `HEAD` on a path with a `GET` route runs that route and drops the
    /// body (keeping its headers).
    pub(crate) async fn dispatch(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path();
        let head = req.method() == Method::HEAD;
        let mut allowed: Vec<&str> = Vec::new();
        let mut found = None;
        for route in self.routes.iter().filter(|r| r.path == path) {
            if route.method == req.method() || (head && route.method == Method::GET) {
                found = Some(route.handler.clone());
                break;
            }
            allowed.push(route.method.as_str());
            if route.method == Method::GET {
                allowed.push(Method::HEAD.as_str());
            }
        }
        tracing::debug!(method = %req.method(), path, "HTTP request");
        if let Some(handler) = found {
            let resp = handler(req).await;
            return if head { without_body(resp) } else { resp };
        }
        if allowed.is_empty() {
            return response::text(StatusCode::NOT_FOUND, "not found\n");
        }
        let mut resp = response::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
            resp.headers_mut().insert(ALLOW, allow);
        }
        resp
    }
}

/// The answer to a `HEAD`: the `GET` response's head, with the length its body would have had.
fn without_body(resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    if let Some(len) = body.size_hint().exact() {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    // Dropping the body also ends whatever fed it (e.g. an event stream's task).
    drop(body);
    Response::from_parts(parts, response::empty_body())
}
