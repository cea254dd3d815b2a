//! Blocking reader of the `GET /events` server-sent-events stream.
//!
//! hyper delivers the body de-chunked; this module only splits the `text/event-stream` text into
//! events, which is the SSE format's business, not HTTP's.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::runtime::Runtime;

use super::{blocking, transport, ClientError, Request, Target};

/// Longest event accepted; events are one-line JSON objects, far smaller.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// An open event stream; each [`EventStream::next_event`] yields the next `(kind, data)`.
///
/// Also an iterator of `Result<(kind, data), ClientError>` that ends when the server ends the
/// stream (e.g. on daemon shutdown). It owns the current-thread runtime its connection runs on,
/// so it can be moved between threads and dropped anywhere, async code included.
pub struct EventStream {
    /// `None` only while being dropped.
    body: Option<Incoming>,
    /// `None` only while being dropped.
    runtime: Option<Runtime>,
    /// Received body text not yet split into events.
    text: Vec<u8>,
    read_timeout: Duration,
    ended: bool,
}

impl EventStream {
    /// Send `GET /events` and read the response head within `timeout`.
    pub(super) fn open(
        target: &Target,
        authorization: Option<&str>,
        timeout: Duration,
        read_timeout: Duration,
    ) -> Result<EventStream, ClientError> {
        let runtime = blocking::runtime()?;
        let req = Request::get("/events").header("Accept", "text/event-stream");
        let body = runtime.block_on(async {
            tokio::time::timeout(timeout, async {
                let response = transport::send(target, &req, authorization).await?;
                let (head, body) = response.into_parts();
                if head.status != 200 {
                    let body = body.collect().await?.to_bytes();
                    return Err(ClientError::Status {
                        status: head.status.as_u16(),
                        body: String::from_utf8_lossy(&body).trim().to_owned(),
                    });
                }
                let content_type = head
                    .headers
                    .get(hyper::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !content_type.starts_with("text/event-stream") {
                    return Err(ClientError::InvalidResponse(format!(
                        "expected an event stream, got content type {content_type:?}"
                    )));
                }
                Ok(body)
            })
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
        })?;
        Ok(EventStream {
            body: Some(body),
            runtime: Some(runtime),
            text: Vec::new(),
            read_timeout,
            ended: false,
        })
    }

    /// The next event as `(kind, data)`; `Ok(None)` once the server has ended the stream.
    ///
    /// Fails with [`ClientError::Timeout`] when nothing at all (not even a keepalive comment)
    /// arrives for the read timeout given when opening the stream.
    pub fn next_event(&mut self) -> Result<Option<(String, String)>, ClientError> {
        loop {
            if let Some(event) = self.take_event() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            if self.text.len() > MAX_EVENT_BYTES {
                return Err(ClientError::InvalidResponse("event too large".to_owned()));
            }
            self.fill()?;
        }
    }

    /// Wait for the next piece of the body.
    fn fill(&mut self) -> Result<(), ClientError> {
        let (Some(body), Some(runtime)) = (self.body.as_mut(), self.runtime.as_ref()) else {
            self.ended = true;
            return Ok(());
        };
        let read_timeout = self.read_timeout;
        let frame = runtime
            .block_on(async { tokio::time::timeout(read_timeout, body.frame()).await })
            .map_err(|_| ClientError::Timeout(read_timeout))?;
        match frame {
            None => self.ended = true,
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    self.text.extend_from_slice(&data);
                }
            }
        }
        Ok(())
    }

    /// Split the first complete event block off `text`; comments and empty blocks are skipped.
    fn take_event(&mut self) -> Option<(String, String)> {
        loop {
            // Normalise CRLF line ends on the fly: look for a blank line either way.
            let text = &self.text;
            let end = text
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| (p, p + 2))
                .into_iter()
                .chain(
                    text.windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|p| (p, p + 4)),
                )
                .min_by_key(|(p, _)| *p)?;
            let block: Vec<u8> = self.text.drain(..end.1).collect();
            let block = String::from_utf8_lossy(&block[..end.0]).into_owned();
            if let Some(event) = parse_block(&block) {
                return Some(event);
            }
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        // The body first, which tells the connection to close; then the runtime, without waiting
        // for its tasks, which is allowed in any context (a plain drop is not, inside async code).
        drop(self.body.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Iterator for EventStream {
    type Item = Result<(String, String), ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}

/// One SSE event block → `(kind, data)`; `None` for a block of only comments.
fn parse_block(block: &str) -> Option<(String, String)> {
    let mut kind = None;
    let mut data: Option<String> = None;
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    if kind.is_none() && data.is_none() {
        return None;
    }
    Some((
        kind.unwrap_or_else(|| "message".to_owned()),
        data.unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        assert_eq!(parse_block(": keepalive"), None);
        assert_eq!(
            parse_block("event: peer_up\ndata: {\"a\":1}"),
            Some(("peer_up".to_owned(), "{\"a\":1}".to_owned()))
        );
        assert_eq!(
            parse_block("data: a\ndata: b\nid: 3"),
            Some(("message".to_owned(), "a\nb".to_owned()))
        );
    }
}
