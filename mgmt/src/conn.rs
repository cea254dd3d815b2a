//! Serving HTTP/1.1 on one accepted connection.
//!
//! Each connection runs in its own task so a slow client never delays another. On shutdown the
//! connection is asked to finish gracefully: an in-flight request still gets its answer, an idle
//! keep-alive connection is closed at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;

use crate::listener::{Io, Peer};
use crate::routes::App;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `io` until the client goes away or `shutdown` flips to true.
pub(crate) async fn serve(
    io: Box<dyn Io>,
    peer: Peer,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = service_fn(move |mut req| {
        let app = app.clone();
        req.extensions_mut().insert(peer.clone());
        async move { Ok::<_, Infallible>(app.handle(req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
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
