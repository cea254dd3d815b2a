//! HTTP response building blocks shared by all routes.
//!
//! The body type is boxed so that the streaming route (server-sent events) returns a different
//! body implementation through the same router as the in-memory ones.

use std::convert::Infallible;

use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// Body of every response the server produces.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// A complete in-memory response body.
pub(crate) fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).boxed()
}

/// A response with the given status, content type and body.
pub(crate) fn with_body(
    status: StatusCode,
    content_type: &'static str,
    data: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(full(data));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// `text/plain` response; used for everything that is not JSON-RPC.
pub(crate) fn text(status: StatusCode, line: impl Into<String>) -> Response<Body> {
    with_body(status, "text/plain; charset=utf-8", line.into())
}

/// `application/json` response.
pub(crate) fn json(body: String) -> Response<Body> {
    with_body(StatusCode::OK, "application/json", body)
}

/// An empty body.
pub(crate) fn empty_body() -> Body {
    Empty::new().boxed()
}

/// Empty response (e.g. 204 for a JSON-RPC notification).
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(empty_body());
    *resp.status_mut() = status;
    resp
}

/// Error response that also ends the connection: after a refused or unreadable body, the rest of
/// that body may still be in flight and the connection cannot be reused safely.
pub(crate) fn closing(status: StatusCode, line: impl Into<String>) -> Response<Body> {
    let mut resp = text(status, line);
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}
