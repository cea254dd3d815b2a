//! `GET /events`: the daemon's event broadcast as a server-sent-events stream.
//!
//! Each client gets its own broadcast receiver and a small task that turns events into SSE text
//! and feeds the response body through a bounded channel. A client that reads too slowly falls
//! behind on the broadcast channel; it then skips what it missed and is told how much with an
//! `event: lagged`, instead of slowing the daemon down or growing a queue without bound.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::MissedTickBehavior;

use crate::conn;
use crate::response::{self, Body};

/// Default interval of `: keepalive` comments; they keep proxies and idle timeouts from closing
/// the stream and let a client notice a dead daemon.
pub(crate) const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// Default bound on concurrent event streams.
pub(crate) const DEFAULT_MAX_STREAMS: usize = 32;

/// Frames buffered per client between its task and its connection.
const CLIENT_QUEUE: usize = 16;

/// One event of the daemon, as sent on `GET /events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    /// Event kind, e.g. `peer_up` (the SSE `event:` field).
    pub kind: String,
    /// One-line JSON object (the SSE `data:` field).
    pub data: String,
}

impl ServerEvent {
    /// An event from its kind and its (one-line JSON) data.
    pub fn new(kind: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            data: data.into(),
        }
    }

    /// An event whose data is `data` serialised; a `time_ms` field (now, unix milliseconds) is
    /// added when `data` is an object without one.
    pub fn json(kind: impl Into<String>, mut data: serde_json::Value) -> Self {
        if let Some(obj) = data.as_object_mut() {
            obj.entry("time_ms").or_insert_with(|| now_ms().into());
        }
        Self::new(kind, data.to_string())
    }

    /// The SSE text of this event.
    fn to_sse(&self) -> String {
        // A newline in the kind would end the field early; in the data, each line needs its own
        // `data:` prefix (the client joins them with newlines again).
        let kind: String = self
            .kind
            .chars()
            .filter(|c| *c != '\n' && *c != '\r')
            .collect();
        let mut out = format!("event: {kind}\n");
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line.strip_suffix('\r').unwrap_or(line));
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

/// Milliseconds since the unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the `/events` route needs.
pub(crate) struct EventSource {
    pub(crate) sender: broadcast::Sender<ServerEvent>,
    pub(crate) keepalive: Duration,
    pub(crate) slots: Arc<Semaphore>,
}

impl EventSource {
    pub(crate) fn new(
        sender: broadcast::Sender<ServerEvent>,
        keepalive: Duration,
        max_streams: usize,
    ) -> Self {
        Self {
            sender,
            keepalive,
            slots: Arc::new(Semaphore::new(max_streams)),
        }
    }

    /// Open a stream for one client; it ends when the client goes away or `stop` flips.
    pub(crate) fn open(&self, stop: watch::Receiver<bool>) -> Response<Body> {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!("too many management event streams; refusing another");
            let mut resp = response::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many event streams are open\n",
            );
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from_static("10"));
            return resp;
        };
        // Subscribe before answering, so the client sees every event sent after its response
        // head (and the opening comment) arrived.
        let events = self.sender.subscribe();
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        tokio::spawn(pump(events, tx, self.keepalive, stop));

        let mut resp = Response::new(
            ChannelBody {
                rx,
                _permit: permit,
            }
            .boxed(),
        );
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        resp
    }
}

/// Move events (and keepalives) into one client's body until it goes away or the server stops.
async fn pump(
    mut events: broadcast::Receiver<ServerEvent>,
    tx: mpsc::Sender<Bytes>,
    keepalive: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut next = Some(Bytes::from_static(b": connected\n\n"));
    loop {
        if let Some(frame) = next.take() {
            tokio::select! {
                biased;
                () = conn::stopped(&mut stop) => break,
                sent = tx.send(frame) => if sent.is_err() { break },
            }
        }
        next = tokio::select! {
            biased;
            () = conn::stopped(&mut stop) => break,
            () = tx.closed() => break,
            received = events.recv() => match received {
                Ok(event) => Some(Bytes::from(event.to_sse())),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "event stream client lagged");
                    let data = format!(r#"{{"missed":{missed},"time_ms":{}}}"#, now_ms());
                    Some(Bytes::from(ServerEvent::new("lagged", data).to_sse()))
                }
                Err(RecvError::Closed) => break,
            },
            _ = ticker.tick() => Some(Bytes::from_static(b": keepalive\n\n")),
        };
    }
    tracing::debug!("event stream closed");
}

/// A response body fed through a channel; holds one of the bounded stream slots while alive.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    _permit: OwnedSemaphorePermit,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|frame| frame.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_text() {
        assert_eq!(
            ServerEvent::new("peer_up", r#"{"a":1}"#).to_sse(),
            "event: peer_up\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            ServerEvent::new("x\ny", "a\r\nb").to_sse(),
            "event: xy\ndata: a\ndata: b\n\n"
        );
        let e = ServerEvent::json("k", serde_json::json!({ "peer": "p" }));
        let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        assert!(v["time_ms"].as_u64().unwrap() > 1_600_000_000_000);
        let e = ServerEvent::json("k", serde_json::json!({ "time_ms": 5 }));
        assert_eq!(e.data, r#"{"time_ms":5}"#);
    }
}
