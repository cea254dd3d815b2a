//! Blocking reader of the `GET /events` server-sent-events stream.

use std::io::{self, Read};
use std::time::Duration;

use super::blocking::{self, Deadline, Framing, Request, Stream};
use super::{ClientError, Target};

/// Longest event (or chunk header) accepted; events are one-line JSON objects, far smaller.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// An open event stream; each [`EventStream::next_event`] yields the next `(kind, data)`.
///
/// Also an iterator of `Result<(kind, data), ClientError>` that ends when the server ends the
/// stream (e.g. on daemon shutdown).
pub struct EventStream {
    stream: Stream,
    /// Received bytes not decoded yet (chunk framing included).
    raw: Vec<u8>,
    /// Decoded body text not yet split into events.
    text: Vec<u8>,
    framing: Framing,
    /// Bytes of a `Content-Length` body still to come.
    left: usize,
    read_timeout: Duration,
    ended: bool,
}

impl EventStream {
    /// Send `GET /events` and read the response head within `timeout`.
    pub(super) fn open(
        target: &Target,
        authorization: Option<String>,
        timeout: Duration,
        read_timeout: Duration,
    ) -> Result<EventStream, ClientError> {
        let deadline = Deadline::new(timeout);
        let mut headers = vec![("Accept", "text/event-stream".to_owned())];
        if let Some(auth) = authorization {
            headers.push(("Authorization", auth));
        }
        let req = Request {
            method: "GET",
            path: "/events",
            headers,
            body: &[],
        };
        let mut stream = blocking::send(target, &req, &deadline)?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        let head = loop {
            if let Some(head) = blocking::parse_head(&buf)? {
                break head;
            }
            stream.set_read_timeout(Some(deadline.remaining()?))?;
            match stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(ClientError::InvalidResponse(
                        "connection closed before the response head".to_owned(),
                    ))
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(deadline.map_io(e)),
            }
        };
        if head.status != 200 {
            let (status, body) = blocking::read_response_from(&mut stream, buf, &deadline)?;
            return Err(ClientError::Status {
                status,
                body: String::from_utf8_lossy(&body).trim().to_owned(),
            });
        }
        if !head
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("text/event-stream"))
        {
            return Err(ClientError::InvalidResponse(format!(
                "expected an event stream, got content type {:?}",
                head.content_type.unwrap_or_default()
            )));
        }
        let raw = buf.split_off(head.len);
        Ok(EventStream {
            stream,
            raw,
            text: Vec::new(),
            framing: head.framing,
            left: match head.framing {
                Framing::Length(n) => n,
                _ => 0,
            },
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
            self.decode()?;
            if let Some(event) = self.take_event() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            if self.text.len() > MAX_EVENT_BYTES || self.raw.len() > MAX_EVENT_BYTES {
                return Err(ClientError::InvalidResponse("event too large".to_owned()));
            }
            self.fill()?;
        }
    }

    /// Read more bytes from the socket.
    fn fill(&mut self) -> Result<(), ClientError> {
        let mut chunk = [0u8; 8192];
        self.stream.set_read_timeout(Some(self.read_timeout))?;
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    if self.framing == Framing::UntilClose {
                        self.ended = true;
                        return Ok(());
                    }
                    return Err(ClientError::InvalidResponse(
                        "event stream closed in the middle of a chunk".to_owned(),
                    ));
                }
                Ok(n) => {
                    self.raw.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if blocking::is_timeout(&e) => {
                    return Err(ClientError::Timeout(self.read_timeout))
                }
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }

    /// Move whatever complete body data `raw` holds into `text`.
    fn decode(&mut self) -> Result<(), ClientError> {
        match self.framing {
            Framing::UntilClose => self.text.append(&mut self.raw),
            Framing::Length(_) => {
                let n = self.left.min(self.raw.len());
                self.text.extend(self.raw.drain(..n));
                self.left -= n;
                if self.left == 0 {
                    self.ended = true;
                }
            }
            Framing::Chunked => loop {
                let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(());
                };
                let size_text = std::str::from_utf8(&self.raw[..line_end]).unwrap_or("");
                let size_text = size_text.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| ClientError::InvalidResponse("bad chunk size".to_owned()))?;
                if size == 0 {
                    self.raw.clear();
                    self.ended = true;
                    return Ok(());
                }
                if size > MAX_EVENT_BYTES {
                    return Err(ClientError::InvalidResponse("chunk too large".to_owned()));
                }
                let start = line_end + 2;
                if self.raw.len() < start + size + 2 {
                    return Ok(());
                }
                self.text.extend_from_slice(&self.raw[start..start + size]);
                self.raw.drain(..start + size + 2);
            },
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
