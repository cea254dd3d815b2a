//! Batched UDP I/O for both daemons: many datagrams per system call in each direction.
//!
//! Receiving uses `recvmmsg` with UDP GRO (the kernel hands over runs of same-size datagrams from one sender
//! as one buffer with a stride); sending coalesces runs of datagrams to the same destination and of the same
//! size into one `sendmsg` with UDP GSO (the kernel splits them again). Both are probed at start by
//! `quinn-udp` (the UDP layer of quinn, well kept and used in production), with a clean fallback to one
//! datagram per call where the kernel lacks them. Per-packet system calls were what bounded the data path
//! (shared/testbed/NOTES.md); this module is where that cost is paid once per batch instead.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::ops::Range;

use quinn_udp::{RecvMeta, Transmit as UdpTransmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Buffers per `recvmmsg`.
const RX_BATCH: usize = 16;
/// Bytes per receive buffer: a whole GRO run of datagrams fits.
const RX_BUF: usize = 65536;
/// A GSO send stays below this (the kernel refuses more than 64 KiB per call).
const MAX_GSO_BYTES: usize = 60000;

/// A UDP socket with batched receive and coalesced send.
pub struct BatchedUdp {
    sock: UdpSocket,
    state: UdpSocketState,
    rx: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
    tx: Vec<u8>,
}

impl BatchedUdp {
    /// Wraps a bound, non-blocking tokio socket; probes GSO and GRO.
    pub fn new(sock: UdpSocket) -> io::Result<BatchedUdp> {
        let state = UdpSocketState::new((&sock).into())?;
        Ok(BatchedUdp {
            sock,
            state,
            rx: (0..RX_BATCH).map(|_| vec![0u8; RX_BUF]).collect(),
            meta: vec![RecvMeta::default(); RX_BATCH],
            tx: Vec::with_capacity(65536),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// How many datagrams one send may carry (1 without GSO).
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// How many datagrams one receive buffer may carry (1 without GRO).
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Waits until the socket is readable.
    pub async fn readable(&self) -> io::Result<()> {
        self.sock.readable().await
    }

    /// Receives what is queued without waiting (one `recvmmsg`), calling `each` per datagram in order.
    /// Returns the number of datagrams, or `WouldBlock` when nothing was queued.
    pub fn try_recv(&mut self, mut each: impl FnMut(SocketAddr, &mut [u8])) -> io::Result<usize> {
        let BatchedUdp {
            sock,
            state,
            rx,
            meta,
            ..
        } = self;
        let n = {
            // On the stack: a receive call allocates nothing.
            let mut bufs = rx.iter_mut();
            let mut iov: [IoSliceMut<'_>; RX_BATCH] = std::array::from_fn(|_| {
                IoSliceMut::new(bufs.next().expect("RX_BATCH receive buffers"))
            });
            let sock: &UdpSocket = sock;
            sock.try_io(Interest::READABLE, || {
                state.recv(sock.into(), &mut iov, &mut meta[..])
            })?
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

    /// Sends `datagrams`, each a range of `bytes`, in order. Runs to one destination of equal size (the
    /// last of a run may be shorter) go out as one GSO send, straight from `bytes` when they lie back to
    /// back there (as the protocol core's output queue lays them out), else gathered into a buffer first.
    /// Send errors are logged at debug level and the datagram dropped, as the network may drop it anyway
    /// (the protocol's timers recover).
    pub async fn send_all(&mut self, bytes: &[u8], datagrams: &[(SocketAddr, Range<usize>)]) {
        let max_segs = self.state.max_gso_segments().max(1);
        let mut i = 0;
        while i < datagrams.len() {
            let (dest, first) = (datagrams[i].0, datagrams[i].1.clone());
            let size = first.len();
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
            let run = &datagrams[i..j];
            if j - i == 1 {
                self.send_one(dest, &bytes[first], None).await;
            } else if contiguous {
                let all = first.start..run[run.len() - 1].1.end;
                if !self.send_one(dest, &bytes[all], Some(size)).await {
                    self.send_each(bytes, run).await;
                }
            } else {
                let mut buf = std::mem::take(&mut self.tx);
                buf.clear();
                for (_, r) in run {
                    buf.extend_from_slice(&bytes[r.clone()]);
                }
                if !self.send_one(dest, &buf, Some(size)).await {
                    self.send_each(bytes, run).await;
                }
                self.tx = buf;
            }
            i = j;
        }
    }

    /// One datagram per call: the fallback when the kernel refuses a GSO send (e.g. a device without
    /// checksum offload).
    async fn send_each(&self, bytes: &[u8], run: &[(SocketAddr, Range<usize>)]) {
        for (dest, r) in run {
            self.send_one(*dest, &bytes[r.clone()], None).await;
        }
    }

    async fn send_one(
        &self,
        dest: SocketAddr,
        contents: &[u8],
        segment_size: Option<usize>,
    ) -> bool {
        let t = UdpTransmit {
            destination: dest,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        match self
            .sock
            .async_io(Interest::WRITABLE, || {
                self.state.try_send((&self.sock).into(), &t)
            })
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("udp send to {dest} ({} bytes): {e}", contents.len());
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_arrive_complete_and_in_order() {
        let a = BatchedUdp::new(crate::bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap());
        let mut a = a.unwrap();
        let mut b =
            BatchedUdp::new(crate::bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap())
                .unwrap();
        let dest = b.local_addr().unwrap();
        // 40 equal datagrams, a shorter one, then 5 more: GSO runs, a run end, and a new run.
        let mut sent = Vec::new();
        for i in 0..46u32 {
            let len = if i == 40 { 300 } else { 1200 };
            let mut d = vec![(i % 251) as u8; len];
            d[..4].copy_from_slice(&i.to_be_bytes());
            sent.push((dest, d));
        }
        // Laid out as the protocol core does: back to back, except one gap (a gathered run).
        let mut bytes = Vec::new();
        let mut ranges = Vec::new();
        for (i, (dest, d)) in sent.iter().enumerate() {
            if i == 20 {
                bytes.extend_from_slice(b"gap");
            }
            ranges.push((*dest, bytes.len()..bytes.len() + d.len()));
            bytes.extend_from_slice(d);
        }
        a.send_all(&bytes, &ranges).await;
        let mut got: Vec<Vec<u8>> = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < sent.len() && std::time::Instant::now() < deadline {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), b.readable()).await;
            let _ = b.try_recv(|from, d| {
                assert_eq!(from, a.local_addr().unwrap());
                got.push(d.to_vec());
            });
        }
        let want: Vec<Vec<u8>> = sent.into_iter().map(|(_, d)| d).collect();
        assert_eq!(got.len(), want.len());
        assert_eq!(got, want);
    }
}
