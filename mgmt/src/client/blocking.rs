//! The blocking facade: each blocking call runs the async client on a current-thread tokio
//! runtime of its own, on the calling thread.
//!
//! On the calling thread matters: sockets are created by the thread that calls, so a caller that
//! has entered a network namespace (the end-to-end tests do) connects inside it. A current-thread
//! runtime starts no threads; building one costs an epoll descriptor and a timer wheel, nothing
//! next to a management call.

use std::future::Future;

use tokio::runtime::{Builder, Runtime};

use super::ClientError;

/// A runtime for one blocking call or one event stream.
pub(super) fn runtime() -> Result<Runtime, ClientError> {
    Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ClientError::Io)
}

/// Run `future` to completion on a fresh runtime.
///
/// Panics when called from inside an async task, as any blocking call on a runtime thread would
/// stall it: async code uses the async methods, or `spawn_blocking`.
pub(super) fn run<T>(
    future: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    runtime()?.block_on(future)
}
