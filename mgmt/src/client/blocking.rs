//! The blocking transport: a hand-written HTTP/1.1 exchange over a std unix or TCP stream.
//!
//! Deliberately tiny: one request with `Connection: close`, one response. Every step (connect,
//! each write, each read) gets the time left until one deadline, so the caller's timeout bounds
//! the whole call even against a daemon that accepts but never answers. The event stream reuses
//! the same pieces but reads its (endless) body incrementally, see [`super::events`].

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{ClientError, Target};

/// Responses larger than this are refused; management answers are small.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A connected byte stream, whatever the transport.
pub(super) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub(super) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// One HTTP request.
pub(super) struct Request<'a> {
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    /// Extra header lines, e.g. `("Authorization", "Bearer …")`.
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: &'a [u8],
}

impl Request<'_> {
    fn encode(&self, host: &str) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
            self.method, self.path
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.body.is_empty() || self.method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body);
        bytes
    }
}

/// POST `body` to `/v1` on the socket at `path` within `timeout`; returns status and body.
pub(super) fn post(
    path: &Path,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), ClientError> {
    let req = Request {
        method: "POST",
        path: "/v1",
        headers: vec![("Content-Type", "application/json".to_owned())],
        body,
    };
    exchange(&Target::Unix(path.to_owned()), &req, timeout)
}

/// Send `req` to `target` and read the whole response within `timeout`.
pub(super) fn exchange(
    target: &Target,
    req: &Request<'_>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), ClientError> {
    let deadline = Deadline::new(timeout);
    let mut stream = send(target, req, &deadline)?;
    read_response(&mut stream, &deadline)
}

/// Connect to `target` and send `req`, within `deadline`.
pub(super) fn send(
    target: &Target,
    req: &Request<'_>,
    deadline: &Deadline,
) -> Result<Stream, ClientError> {
    let (mut stream, host) = match target {
        Target::Unix(path) => {
            let stream = connect(path, deadline.remaining()?).map_err(|source| {
                if is_timeout(&source) {
                    ClientError::Timeout(deadline.total)
                } else {
                    ClientError::Connect {
                        path: path.to_owned(),
                        source,
                    }
                }
            })?;
            (Stream::Unix(stream), "localhost".to_owned())
        }
        Target::Tcp(url) => {
            let authority = super::authority(url)?;
            let stream = connect_tcp(&authority, deadline)?;
            (Stream::Tcp(stream), authority)
        }
    };
    match write_all(&mut stream, &req.encode(&host), deadline) {
        Ok(()) => {}
        // The server may refuse a request early (413) and close; its answer can still be read.
        Err(ClientError::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) => {}
        Err(e) => return Err(e),
    }
    Ok(stream)
}

/// Connect over TCP to `authority` (`host:port`), trying each address it resolves to.
fn connect_tcp(authority: &str, deadline: &Deadline) -> Result<TcpStream, ClientError> {
    let connect_err = |source| ClientError::ConnectTcp {
        addr: authority.to_owned(),
        source,
    };
    let addrs = authority.to_socket_addrs().map_err(connect_err)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, deadline.remaining()?) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) if is_timeout(&e) => return Err(ClientError::Timeout(deadline.total)),
            Err(e) => last = e,
        }
    }
    Err(connect_err(last))
}

/// The end of the time budget.
pub(super) struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    pub(super) fn new(total: Duration) -> Self {
        Self {
            at: Instant::now() + total,
            total,
        }
    }

    /// Time left, or `Timeout` when none (std socket timeouts cannot be zero).
    pub(super) fn remaining(&self) -> Result<Duration, ClientError> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(ClientError::Timeout(self.total))
        } else {
            Ok(left)
        }
    }

    pub(super) fn map_io(&self, e: io::Error) -> ClientError {
        if is_timeout(&e) {
            ClientError::Timeout(self.total)
        } else {
            ClientError::Io(e)
        }
    }
}

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connect with a bound on the wait. `UnixStream::connect` blocks without limit when the
/// listener's backlog is full; on Linux a unix-socket connect waits at most `SO_SNDTIMEO`, which
/// std can only set after connecting, hence the socket is created by hand.
pub(super) fn connect(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid (empty) value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "invalid unix socket path (empty, too long or containing NUL)",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;

    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    stream.set_write_timeout(Some(timeout))?;
    loop {
        // SAFETY: `addr` is a properly initialised sockaddr_un and `len` does not exceed it.
        let rc = unsafe {
            libc::connect(
                fd,
                (&addr as *const libc::sockaddr_un).cast::<libc::sockaddr>(),
                len,
            )
        };
        if rc == 0 {
            return Ok(stream);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn write_all(stream: &mut Stream, mut data: &[u8], deadline: &Deadline) -> Result<(), ClientError> {
    while !data.is_empty() {
        stream.set_write_timeout(Some(deadline.remaining()?))?;
        match stream.write(data) {
            Ok(0) => return Err(ClientError::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.map_io(e)),
        }
    }
    Ok(())
}

/// Read until the response is complete according to its framing.
fn read_response(stream: &mut Stream, deadline: &Deadline) -> Result<(u16, Vec<u8>), ClientError> {
    read_response_from(stream, Vec::with_capacity(4096), deadline)
}

/// The same, with `buf` already holding the first bytes of the response.
pub(super) fn read_response_from(
    stream: &mut Stream,
    mut buf: Vec<u8>,
    deadline: &Deadline,
) -> Result<(u16, Vec<u8>), ClientError> {
    let mut chunk = [0u8; 8192];
    let mut head: Option<Head> = None;
    loop {
        if head.is_none() {
            head = parse_head(&buf)?;
        }
        if let Some(h) = &head {
            if let Some(body) = h.complete_body(&buf[h.len..])? {
                return Ok((h.status, body));
            }
        }
        if buf.len() > MAX_RESPONSE_BYTES {
            return Err(ClientError::InvalidResponse(
                "response too large".to_owned(),
            ));
        }
        stream.set_read_timeout(Some(deadline.remaining()?))?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return match head {
                    Some(h) if h.framing == Framing::UntilClose => {
                        Ok((h.status, buf[h.len..].to_vec()))
                    }
                    _ => Err(ClientError::InvalidResponse(
                        "connection closed before the response was complete".to_owned(),
                    )),
                };
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.map_io(e)),
        }
    }
}

/// How the end of the body is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Status line and headers of a response.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) status: u16,
    /// Bytes of the head including the blank line.
    pub(super) len: usize,
    pub(super) framing: Framing,
    /// Value of `Content-Type`, if any.
    pub(super) content_type: Option<String>,
}

impl Head {
    /// The body if all of it is in `data`.
    fn complete_body(&self, data: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        match self.framing {
            Framing::Length(n) if data.len() >= n => Ok(Some(data[..n].to_vec())),
            Framing::Length(_) | Framing::UntilClose => Ok(None),
            Framing::Chunked => decode_chunked(data),
        }
    }
}

/// Parse the head once it is complete (`None` until then).
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<Head>, ClientError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            return Err(ClientError::InvalidResponse(
                "response head too large".to_owned(),
            ));
        }
        return Ok(None);
    };
    let bad = |what: &str| ClientError::InvalidResponse(what.to_owned());
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(bad("not an HTTP/1 response"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;

    let mut framing = Framing::UntilClose;
    let mut content_type = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("bad header line"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = value.parse().map_err(|_| bad("bad Content-Length"))?;
            framing = Framing::Length(n);
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        }
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    Ok(Some(Head {
        status,
        len: end + 4,
        framing,
        content_type,
    }))
}

/// Decode a chunked body if it is complete (`None` while more data is needed).
fn decode_chunked(mut data: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap_or("");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ClientError::InvalidResponse("bad chunk size".to_owned()))?;
        data = &data[line_end + 2..];
        if size == 0 {
            // Trailers (ignored) end with an empty line.
            let done = data.starts_with(b"\r\n") || data.windows(4).any(|w| w == b"\r\n\r\n");
            return Ok(done.then_some(body));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_framing() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.framing, h.len), (200, Framing::Length(3), 38));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
        let h = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
    }

    #[test]
    fn chunked() {
        assert_eq!(
            decode_chunked(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            Some(b"abcde".to_vec())
        );
        assert_eq!(decode_chunked(b"3\r\nab").unwrap(), None);
        assert_eq!(decode_chunked(b"3\r\nabc\r\n0\r\n").unwrap(), None);
        assert!(decode_chunked(b"zz\r\n").is_err());
    }
}
