//! Serving HTTP/1.1 on one accepted connection.
//!
//! Each connection runs in its own task so a slow client never delays another. On shutdown the
//! connection is asked to finish gracefully: an in-flight request still gets its answer, an idle
//! keep-alive connection is closed at once.
//!
//! Slow clients are cut off by hyper's header read timeout, which runs from the moment the
//! connection is ready for a request (after accept, or after the previous response on a
//! keep-alive connection) until the request's headers are complete: it bounds both a client that
//! trickles headers and an idle keep-alive connection, and never a response being streamed
//! (`/events`). Bodies have their own deadline where they are read (`body::read_bounded`). A client
//! that does not read its responses is cut off by [`WriteStall`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;

use crate::auth::PasswordGuard;
use crate::listener::{Io, Peer};
use crate::quota::Permit;
use crate::routes::App;
use crate::stall::WriteStall;

/// What every connection of a server shares.
pub(crate) struct Shared {
    /// Routes and their access checks.
    pub(crate) app: Arc<App>,
    /// Failed-password rate limiting, applied to each request first.
    pub(crate) guard: PasswordGuard,
    /// See [`crate::Limits::header_read_timeout`].
    pub(crate) header_read_timeout: Duration,
    /// See [`crate::Limits::write_stall_timeout`].
    pub(crate) write_stall_timeout: Duration,
}

/// Serve `io` until the client goes away or `shutdown` flips to true. `permit` is the connection's
/// slot in its listener's pool, held until the connection ends.
pub(crate) async fn serve(
    io: Box<dyn Io>,
    peer: Peer,
    permit: Permit,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let header_read_timeout = shared.header_read_timeout;
    let io = WriteStall::new(io, shared.write_stall_timeout);
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let shared = shared.clone();
        let peer = peer.clone();
        async move {
            if let Some(refused) = shared.guard.screen(&peer, req.headers_mut()) {
                return Ok::<_, Infallible>(refused);
            }
            req.extensions_mut().insert(peer);
            Ok(shared.app.handle(req).await)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);

    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    drop(permit);
    match result {
        Ok(()) => tracing::debug!("management connection closed"),
        Err(e) => tracing::debug!(error = %e, "management connection ended with an error"),
    }
}

/// Resolves once the server is told to stop (or the stop sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The returned guard is dropped here: it must not live across an await in a spawned task.
    let _ = stop.wait_for(|stop| *stop).await;
}
