//! Reading a request body with a size and a time bound.
//!
//! The management socket is reachable by every member of the admin group (and later by loopback
//! TCP), so one slow or huge request must not tie up daemon memory or a task forever.

use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_LENGTH;
use hyper::Request;

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Longer than the limit (declared or actual) → 413.
    TooLarge,
    /// Not complete within the time bound → 408.
    Timeout,
    /// The connection failed mid-body or the framing was invalid → 400.
    Broken,
}

/// Collect the whole body of `req`, at most `limit` bytes, within `timeout`.
pub(crate) async fn read_bounded(
    req: Request<Incoming>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    // Refuse on the declared length before reading anything.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge);
    }

    // Chunked bodies have no declared length: enforce the limit while reading.
    let limited = Limited::new(req.into_body(), limit);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Broken),
    }
}
