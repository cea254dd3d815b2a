//! The async transport: hyper's HTTP/1.1 client over a tokio unix or TCP stream.

use std::path::Path;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::{ClientError, Target};

/// POST `body` to `/v1` on the socket at `path`; returns status and response body.
pub(super) async fn post(path: &Path, body: String) -> Result<(u16, Bytes), ClientError> {
    post_to(&Target::Unix(path.to_owned()), body, None).await
}

/// POST `body` to `/v1` at `target`, with an optional `Authorization` value.
pub(super) async fn post_to(
    target: &Target,
    body: String,
    authorization: Option<String>,
) -> Result<(u16, Bytes), ClientError> {
    match target {
        Target::Unix(path) => {
            let stream =
                UnixStream::connect(path)
                    .await
                    .map_err(|source| ClientError::Connect {
                        path: path.to_owned(),
                        source,
                    })?;
            exchange(stream, "localhost", body, authorization).await
        }
        Target::Tcp(url) => {
            let authority = super::authority(url)?;
            let stream = TcpStream::connect(authority.as_str())
                .await
                .map_err(|source| ClientError::ConnectTcp {
                    addr: authority.clone(),
                    source,
                })?;
            let _ = stream.set_nodelay(true);
            exchange(stream, &authority, body, authorization).await
        }
    }
}

async fn exchange<S>(
    stream: S,
    host: &str,
    body: String,
    authorization: Option<String>,
) -> Result<(u16, Bytes), ClientError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    // The connection future does the actual I/O; it ends once the exchange is over and `sender`
    // is dropped (or the server closes the connection).
    let conn = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "management client connection error");
        }
    });

    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/v1")
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/json");
    if let Some(auth) = authorization {
        req = req.header(AUTHORIZATION, auth);
    }
    let req = req
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
