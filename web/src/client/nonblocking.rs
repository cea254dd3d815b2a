//! The async transport: hyper's HTTP/1.1 client over a tokio unix stream.

use std::path::Path;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use super::ClientError;

/// POST `body` to `/v1` on the socket at `path`; returns status and response body.
pub(super) async fn post(path: &Path, body: String) -> Result<(u16, Bytes), ClientError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| ClientError::Connect {
            path: path.to_owned(),
            source,
        })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    // The connection future does the actual I/O; it ends once the exchange is over and `sender`
    // is dropped (or the server closes the connection).
    let conn = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "management client connection error");
        }
    });

    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1")
        .header(HOST, "localhost")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ClientError::InvalidResponse(format!("cannot build request: {e}")))?;
    let result = async {
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok::<_, ClientError>((status, bytes))
    }
    .await;
    drop(sender);
    if result.is_err() {
        conn.abort();
    }
    result
}
