//! A minimal exact-path HTTP router.
//!
//! The management server has a handful of fixed paths (`/v1` now; `/`, `/metrics`, `/events`
//! later), so exact matching on (method, path) is enough and keeps 404 vs. 405 right: a known path
//! with the wrong method is 405 with an `Allow` header, an unknown path is 404. Adding a page is
//! one `route` call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW};
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

    /// Answer one request.
    pub(crate) async fn dispatch(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path();
        let mut allowed: Vec<&str> = Vec::new();
        let mut found = None;
        for route in self.routes.iter().filter(|r| r.path == path) {
            if route.method == req.method() {
                found = Some(route.handler.clone());
                break;
            }
            allowed.push(route.method.as_str());
        }
        tracing::debug!(method = %req.method(), path, "HTTP request");
        if let Some(handler) = found {
            return handler(req).await;
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
