//! One HTTP/1.1 exchange with a management server: connect (unix socket or TCP), hand the stream
//! to hyper's client connection, send one request, return the response head and its body.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, HOST};
use hyper::{Method, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use super::{ClientError, Request, Target};

/// Pause between connect attempts while a unix socket's backlog is full.
const BACKLOG_RETRY: Duration = Duration::from_millis(10);

/// Connect to `target`, send `req` (with `authorization` unless the request sets its own) and
/// return the response once its head has arrived. Not bounded in time: callers wrap it in
/// `tokio::time::timeout`.
pub(super) async fn send(
    target: &Target,
    req: &Request,
    authorization: Option<&str>,
) -> Result<Response<Incoming>, ClientError> {
    match target {
        Target::Unix(path) => {
            let stream = connect_unix(path)
                .await
                .map_err(|source| ClientError::Connect {
                    path: path.to_owned(),
                    source,
                })?;
            exchange(stream, "localhost", req, authorization).await
        }
        Target::Tcp(url) => {
            let authority = super::authority(url)?;
            let stream = connect_tcp(&authority).await?;
            exchange(stream, &authority, req, authorization).await
        }
    }
}

/// Connect to a unix socket. A non-blocking connect to a listener whose backlog is full fails with
/// `EAGAIN` at once (a blocking one would wait for a slot), so it is retried until the caller's
/// timeout ends the wait.
pub(super) async fn connect_unix(path: &Path) -> io::Result<UnixStream> {
    loop {
        match UnixStream::connect(path).await {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::sleep(BACKLOG_RETRY).await
            }
            other => return other,
        }
    }
}

/// Connect over TCP to `authority` (`host:port`), trying each address it resolves to. An address
/// literal is not looked up (a lookup would run on another thread, possibly in another network
/// namespace than the caller's).
async fn connect_tcp(authority: &str) -> Result<TcpStream, ClientError> {
    let connect_err = |source| ClientError::ConnectTcp {
        addr: authority.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = match authority.parse() {
        Ok(addr) => vec![addr],
        Err(_) => tokio::net::lookup_host(authority)
            .await
            .map_err(connect_err)?
            .collect(),
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(connect_err(last))
}

async fn exchange<S>(
    stream: S,
    host: &str,
    req: &Request,
    authorization: Option<&str>,
) -> Result<Response<Incoming>, ClientError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let stream = EarlyAnswer {
        inner: stream,
        peer_closed: false,
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    // The connection future does the actual I/O; it ends once the response body has been read (or
    // dropped) and `sender` is gone, or when the server closes the connection. Dropping the
    // runtime it runs on (the blocking facade's) closes the connection too.
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "management client connection error");
        }
    });
    let response = sender
        .send_request(build(req, host, authorization)?)
        .await?;
    Ok(response)
}

/// The hyper request for `req`: its own headers first, then `Host` and `Authorization` unless it
/// set them.
fn build(
    req: &Request,
    host: &str,
    authorization: Option<&str>,
) -> Result<hyper::Request<Full<Bytes>>, ClientError> {
    let invalid = |what: String| ClientError::InvalidRequest(what);
    let method = Method::from_bytes(req.method.as_bytes())
        .map_err(|_| invalid(format!("bad method {:?}", req.method)))?;
    let mut out = hyper::Request::builder()
        .method(method)
        .uri(req.path.as_str())
        .body(Full::new(Bytes::from(req.body.clone())))
        .map_err(|e| invalid(format!("{} {}: {e}", req.method, req.path)))?;
    let headers = out.headers_mut();
    for (name, value) in &req.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("bad header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("bad value for header {name}")))?;
        headers.append(name, value);
    }
    if !headers.contains_key(HOST) {
        let host =
            HeaderValue::from_str(host).map_err(|_| invalid(format!("bad host {host:?}")))?;
        headers.insert(HOST, host);
    }
    if let Some(auth) = authorization {
        if !headers.contains_key(AUTHORIZATION) {
            let auth = HeaderValue::from_str(auth)
                .map_err(|_| invalid("the password is not a valid header value".to_owned()))?;
            headers.insert(AUTHORIZATION, auth);
        }
    }
    Ok(out)
}

/// A stream whose writes succeed (discarding the bytes) once the peer has stopped reading.
///
/// The server refuses an oversized request (413) from its head, answers and closes without
/// reading the body; a client still writing the body then gets `EPIPE`, and hyper would report
/// that write error instead of the answer already waiting in the receive buffer. Swallowing the
/// write error lets hyper read the answer; if there is none, the read sees the end of the stream
/// and hyper reports an incomplete message.
struct EarlyAnswer<S> {
    inner: S,
    peer_closed: bool,
}

impl<S: AsyncRead + Unpin> AsyncRead for EarlyAnswer<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for EarlyAnswer<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.peer_closed {
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if peer_stopped_reading(&e) => {
                self.peer_closed = true;
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.peer_closed {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.peer_closed {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn peer_stopped_reading(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}
