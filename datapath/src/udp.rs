//! Batched UDP I/O for both daemons: many datagrams per system call in each direction.
//!
//! Receiving uses `recvmmsg` with UDP GRO (the kernel hands over runs of same-size datagrams from one sender
//! as one buffer with a stride); sending coalesces runs of datagrams to the same destination and of the same
//! size into one `sendmsg` with UDP GSO (the kernel splits them again). Both are probed at start by
//! `quinn-udp` (the UDP layer of quinn, well kept and used in production), with a clean fallback to one
//! datagram per call where the kernel lacks them. Per-packet system calls were what bounded the data path
//! (a reference n2n-lineage VPN, one system call per packet, carried about 1.2 Gbit/s of TCP on the 2-core
//! benchmark machine with its sending daemon at 97 % of a core); this module is where that cost is paid
//! once per batch instead. On that machine's kernel both offloads work with 64 segments per buffer.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsFd;

use anyhow::Context as _;
use quinn_udp::{RecvMeta, Transmit as UdpTransmit, UdpSockRef, UdpSocketState};

use crate::send_failures::{advice, SendFailures};

/// A non-blocking UDP socket with deliberately sized kernel buffers: almost every TCP retransmission
/// measured through user-space VPNs on the benchmark machine was a datagram dropped because the receiving
/// daemon's socket buffer was full (`RcvbufErrors` matched the retransmit count). Bound before the tokio
/// runtime exists, so that it can happen before dropping root while the process has one thread.
pub fn bind_udp(addr: SocketAddr, buffer_bytes: usize) -> anyhow::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = sock.set_recv_buffer_size(buffer_bytes);
    let _ = sock.set_send_buffer_size(buffer_bytes);
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // `[::]` serves IPv4 too (mapped addresses, which `BatchedUdp` turns back into IPv4 both ways),
        // whatever the host's net.ipv6.bindv6only says.
        let _ = sock.set_only_v6(false);
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("cannot bind UDP {addr}"))?;
    Ok(sock.into())
}

/// Buffers per `recvmmsg`.
const RX_BATCH: usize = 16;
/// Bytes per receive buffer: a whole GRO run of datagrams fits.
const RX_BUF: usize = 65536;
/// A GSO send stays below this (the kernel refuses more than 64 KiB per call).
const MAX_GSO_BYTES: usize = 60000;

/// Receive buffers, probed offload state and the gather buffer.
struct Batches {
    state: UdpSocketState,
    rx: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
    tx: Vec<u8>,
}

impl Batches {
    fn new(sock: UdpSockRef<'_>) -> io::Result<Batches> {
        Ok(Batches {
            state: UdpSocketState::new(sock)?,
            rx: (0..RX_BATCH).map(|_| vec![0u8; RX_BUF]).collect(),
            meta: vec![RecvMeta::default(); RX_BATCH],
            tx: Vec::with_capacity(65536),
        })
    }

    /// One `recvmmsg` through `call`, then `each` per datagram in order.
    fn recv(
        &mut self,
        call: impl FnOnce(&UdpSocketState, &mut [IoSliceMut<'_>], &mut [RecvMeta]) -> io::Result<usize>,
        mut each: impl FnMut(SocketAddr, &mut [u8]),
    ) -> io::Result<usize> {
        let Batches {
            state, rx, meta, ..
        } = self;
        let n = {
            // On the stack: a receive call allocates nothing.
            let mut bufs = rx.iter_mut();
            let mut iov: [IoSliceMut<'_>; RX_BATCH] = std::array::from_fn(|_| {
                IoSliceMut::new(bufs.next().expect("RX_BATCH receive buffers"))
            });
            call(state, &mut iov, &mut meta[..])?
        };
        let mut count = 0;
        for (m, buf) in meta.iter().zip(rx.iter_mut()).take(n) {
            let stride = if m.stride == 0 { m.len } else { m.stride };
            for seg in buf[..m.len].chunks_mut(stride.max(1)) {
                each(m.addr, seg);
                count += 1;
            }
        }
        Ok(count)
    }

    /// Copies a run that does not lie back to back into the gather buffer.
    fn gather(&mut self, bytes: &[u8], run: &[(SocketAddr, Range<usize>)]) {
        self.tx.clear();
        for (_, r) in run {
            self.tx.extend_from_slice(&bytes[r.clone()]);
        }
    }
}

/// One GSO send's worth of `datagrams`, starting at `i`: datagrams to one destination, of equal size (the
/// last may be shorter), at most `max_segs` and [`MAX_GSO_BYTES`]. Returns where the run ends and whether
/// its datagrams lie back to back in the buffer.
fn next_run(datagrams: &[(SocketAddr, Range<usize>)], i: usize, max_segs: usize) -> (usize, bool) {
    let (dest, size) = (datagrams[i].0, datagrams[i].1.len());
    let mut j = i + 1;
    let mut total = size;
    let mut contiguous = true;
    if max_segs > 1 && size > 0 {
        while j < datagrams.len()
            && j - i < max_segs
            && datagrams[j].0 == dest
            && datagrams[j].1.len() <= size
            && total + datagrams[j].1.len() <= MAX_GSO_BYTES
        {
            contiguous &= datagrams[j].1.start == datagrams[j - 1].1.end;
            total += datagrams[j].1.len();
            let shorter = datagrams[j].1.len() < size;
            j += 1;
            if shorter {
                break; // only the last segment may be shorter
            }
        }
    }
    (j, contiguous)
}

/// How a run of datagrams goes out.
enum RunSend {
    /// One datagram.
    Single,
    /// One GSO send straight from the caller's buffer.
    InPlace(Range<usize>),
    /// One GSO send from the gather buffer.
    Gathered,
}

fn plan(run: &[(SocketAddr, Range<usize>)], contiguous: bool) -> RunSend {
    if run.len() == 1 {
        RunSend::Single
    } else if contiguous {
        RunSend::InPlace(run[0].1.start..run[run.len() - 1].1.end)
    } else {
        RunSend::Gathered
    }
}

fn transmit(dest: SocketAddr, contents: &[u8], segment_size: Option<usize>) -> UdpTransmit<'_> {
    UdpTransmit {
        destination: dest,
        ecn: None,
        contents,
        segment_size,
        src_ip: None,
    }
}

/// How long a send waits for room in a full socket buffer before the datagram is dropped.
const SEND_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// A non-blocking std UDP socket with batched receive and coalesced send, for a loop on its own thread
/// that waits in epoll itself (the data path's loop): no runtime between the kernel's wake-up and the
/// packet. Sends that find the socket buffer full wait for room (up to [`SEND_WAIT`]), which keeps the
/// back-pressure the kernel gives instead of dropping.
pub struct BatchedUdp {
    sock: std::net::UdpSocket,
    b: Batches,
    /// Destinations our sends fail to: logged once per state change.
    failures: SendFailures,
    /// The socket is IPv6 (dual stack when bound to `[::]`): IPv4 peers appear to it as mapped addresses.
    v6: bool,
}

/// The address as the rest of Weft names it: an IPv4-mapped IPv6 address (what a dual-stack socket reports
/// for an IPv4 peer) becomes the IPv4 address, so the same peer has one address whatever the socket.
#[inline]
pub fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        SocketAddr::V4(_) => a,
    }
}

/// The address to hand an IPv6 socket for `a`: IPv4 destinations as mapped addresses.
#[inline]
fn on_v6_socket(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(v4) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
        SocketAddr::V6(_) => a,
    }
}

impl BatchedUdp {
    /// Wraps a bound socket (made non-blocking); probes GSO and GRO.
    pub fn new(sock: std::net::UdpSocket) -> io::Result<BatchedUdp> {
        sock.set_nonblocking(true)?;
        let b = Batches::new((&sock).into())?;
        let v6 = sock.local_addr()?.is_ipv6();
        Ok(BatchedUdp {
            sock,
            b,
            failures: SendFailures::default(),
            v6,
        })
    }

    /// The socket, to register with a poller.
    pub fn socket(&self) -> &std::net::UdpSocket {
        &self.sock
    }

    /// How many datagrams one send may carry (1 without GSO).
    pub fn max_gso_segments(&self) -> usize {
        self.b.state.max_gso_segments()
    }

    /// How many datagrams one receive buffer may carry (1 without GRO).
    pub fn gro_segments(&self) -> usize {
        self.b.state.gro_segments()
    }

    /// Receives what is queued (one `recvmmsg`), calling `each` per datagram in order. Returns the number
    /// of datagrams, or `WouldBlock` when nothing was queued.
    pub fn try_recv(&mut self, mut each: impl FnMut(SocketAddr, &mut [u8])) -> io::Result<usize> {
        let sock = &self.sock;
        self.b.recv(
            |state, iov, meta| state.recv(sock.into(), iov, meta),
            |from, d| each(canonical(from), d),
        )
    }

    /// Sends `datagrams`, each a range of `bytes`, in order. Runs to one destination of equal size (the
    /// last of a run may be shorter) go out as one GSO send, straight from `bytes` when they lie back to
    /// back there (as the protocol core's output queue lays them out), else gathered into a buffer first.
    /// A send that finds the socket buffer full waits for room; other errors drop the datagram, as the
    /// network may drop it anyway (the protocol's timers recover), and are logged once per destination
    /// and state change, with what to check.
    pub fn send_all(&mut self, bytes: &[u8], datagrams: &[(SocketAddr, Range<usize>)]) {
        let max_segs = self.b.state.max_gso_segments().max(1);
        let mut i = 0;
        while i < datagrams.len() {
            let (j, contiguous) = next_run(datagrams, i, max_segs);
            let run = &datagrams[i..j];
            let (dest, size) = (run[0].0, run[0].1.len());
            let sent = match plan(run, contiguous) {
                RunSend::Single => {
                    self.send_one(dest, &bytes[run[0].1.clone()], None);
                    true
                }
                RunSend::InPlace(all) => self.send_one(dest, &bytes[all], Some(size)),
                RunSend::Gathered => {
                    self.b.gather(bytes, run);
                    let buf = std::mem::take(&mut self.b.tx);
                    let ok = self.send_one(dest, &buf, Some(size));
                    self.b.tx = buf;
                    ok
                }
            };
            if !sent {
                for (dest, r) in run {
                    self.send_one(*dest, &bytes[r.clone()], None);
                }
            }
            i = j;
        }
    }

    fn send_one(&mut self, dest: SocketAddr, contents: &[u8], segment_size: Option<usize>) -> bool {
        let to = if self.v6 { on_v6_socket(dest) } else { dest };
        let t = transmit(to, contents, segment_size);
        let mut waited = false;
        loop {
            match self.b.state.try_send((&self.sock).into(), &t) {
                Ok(()) => {
                    if !self.failures.is_empty() {
                        if let Some(n) = self.failures.succeeded(dest) {
                            tracing::info!("sending to {dest} works again ({n} sends had failed)");
                        }
                    }
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !waited => {
                    waited = true;
                    wait_writable(&self.sock, SEND_WAIT);
                }
                Err(e) => {
                    if self.failures.failed(dest) {
                        tracing::warn!(
                            "cannot send to {dest}: {e}; {}. Further failures to it are not logged until a send succeeds",
                            advice(&e)
                        );
                    } else {
                        tracing::debug!("udp send to {dest} ({} bytes): {e}", contents.len());
                    }
                    return false;
                }
            }
        }
    }

    /// Whether sends to `dest` are failing now.
    pub fn is_failing(&self, dest: &SocketAddr) -> bool {
        self.failures.contains(dest)
    }
}

/// Waits (at most `limit`) until `fd` has room to write.
pub fn wait_writable(fd: &impl AsFd, limit: std::time::Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = u16::try_from(limit.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
    let _ = poll(&mut fds, PollTimeout::from(ms));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40 equal datagrams, a shorter one, then 5 more (GSO runs, a run end, and a new run), laid out as the
    /// protocol core does: back to back, except one gap (a gathered run).
    type Datagrams = Vec<(SocketAddr, Range<usize>)>;

    fn workload(dest: SocketAddr) -> (Vec<Vec<u8>>, Vec<u8>, Datagrams) {
        let mut sent = Vec::new();
        for i in 0..46u32 {
            let len = if i == 40 { 300 } else { 1200 };
            let mut d = vec![(i % 251) as u8; len];
            d[..4].copy_from_slice(&i.to_be_bytes());
            sent.push(d);
        }
        let mut bytes = Vec::new();
        let mut ranges = Vec::new();
        for (i, d) in sent.iter().enumerate() {
            if i == 20 {
                bytes.extend_from_slice(b"gap");
            }
            ranges.push((dest, bytes.len()..bytes.len() + d.len()));
            bytes.extend_from_slice(d);
        }
        (sent, bytes, ranges)
    }

    #[test]
    fn a_dual_stack_socket_names_ipv4_peers_by_their_ipv4_address() {
        let sock = bind_udp("[::]:0".parse().unwrap(), 1 << 16).unwrap();
        let port = sock.local_addr().unwrap().port();
        let mut udp = BatchedUdp::new(sock).unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        peer.send_to(b"hello", ("127.0.0.1", port)).unwrap();
        let mut from = None;
        for _ in 0..200 {
            match udp.try_recv(|f, d| {
                assert_eq!(d, b"hello");
                from = Some(f);
            }) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("{e}"),
            }
        }
        // Not ::ffff:127.0.0.1: the address the peer has everywhere else.
        assert_eq!(from, Some(peer.local_addr().unwrap()));
        // And an IPv4 destination is reached from the IPv6 socket.
        udp.send_all(b"back", &[(peer.local_addr().unwrap(), 0..4)]);
        let mut buf = [0u8; 16];
        let (n, src) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], src.port()), (&b"back"[..], port));
        assert_eq!(
            canonical("[::ffff:192.0.2.1]:7".parse().unwrap()),
            "192.0.2.1:7".parse::<SocketAddr>().unwrap()
        );
        let v6: SocketAddr = "[2001:db8::1]:7".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn a_send_to_the_wrong_family_is_recorded_once_and_not_fatal() {
        // A real IPv4 socket sending to an IPv6 address: the kernel refuses every send (EAFNOSUPPORT), as
        // it did for an IPv4-bound edge on an IPv6-only network.
        let sock = bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 16).unwrap();
        let mut udp = BatchedUdp::new(sock).unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let bytes = vec![0u8; 100];
        udp.send_all(&bytes, &[(v6, 0..100), (v6, 0..100)]);
        assert!(udp.is_failing(&v6));
        // An IPv4 destination still works and is not marked.
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let ok = rx.local_addr().unwrap();
        udp.send_all(&bytes, &[(ok, 0..100)]);
        assert!(!udp.is_failing(&ok));
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 200];
        assert_eq!(rx.recv(&mut buf).unwrap(), 100);
    }

    #[test]
    fn udp_socket_binds_an_ephemeral_port() {
        let s = bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        assert_ne!(s.local_addr().unwrap().port(), 0);
    }

    #[test]
    fn batches_arrive_complete_and_in_order() {
        let bind = || super::bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let mut a = BatchedUdp::new(bind()).unwrap();
        let mut b = BatchedUdp::new(bind()).unwrap();
        let from_a = a.socket().local_addr().unwrap();
        let (want, bytes, ranges) = workload(b.socket().local_addr().unwrap());
        a.send_all(&bytes, &ranges);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < want.len() && std::time::Instant::now() < deadline {
            match b.try_recv(|from, d| {
                assert_eq!(from, from_a);
                got.push(d.to_vec());
            }) {
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
        assert_eq!(got.len(), want.len());
        assert_eq!(got, want);
    }

    #[test]
    fn waiting_for_room_returns_once_the_reader_drains() {
        // A datagram socket pair filled until the kernel refuses more (on loopback UDP never does: the
        // sender's buffer is released at transmit).
        let (tx, rx) = std::os::unix::net::UnixDatagram::pair().unwrap();
        tx.set_nonblocking(true).unwrap();
        let mut queued = 0;
        while tx.send(&[0u8; 1024]).is_ok() {
            queued += 1;
        }
        assert!(queued > 0);
        let reader = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut buf = [0u8; 1024];
            for _ in 0..queued {
                rx.recv(&mut buf).unwrap();
            }
            rx
        });
        wait_writable(&tx, std::time::Duration::from_secs(30));
        tx.send(&[1u8; 1024])
            .expect("room after the wait (it returned only when the reader had drained)");
        let _rx = reader.join().unwrap();
    }
}
