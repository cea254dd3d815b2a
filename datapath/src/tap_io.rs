//! The TAP device as the data path reads and writes it ([`Tap`]): reads cut into wire-size frames by
//! [`crate::offload`] when the device has offload, and writes straight from a state machine's output
//! queue, runs of one TCP stream coalesced into one large segment. Creating the device: [`crate::tap`].

use std::io::{self, IoSlice};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use tun_rs::SyncDevice;
use weft_proto::queue::PacketQueue;

use crate::offload;

/// Largest frame we read (a jumbo TAP MTU plus headers), or with offload the largest segment.
const MAX_FRAME: usize = 65536;

/// How long a TAP write waits for room before the frame is dropped.
const TAP_WAIT: Duration = Duration::from_millis(100);

/// The TAP device as the data path uses it, with or without the virtio-net header of offload: reads cut
/// into wire-size frames, and writes straight from a state machine's output queue (runs of one TCP stream
/// coalesced into one large segment when offload is on). Its buffers are reused, so reading and writing
/// allocate nothing after warm-up.
pub struct Tap {
    dev: SyncDevice,
    vnet: bool,
    /// One read.
    rx: Vec<u8>,
    /// Where [`offload::split`] builds a segment's headers.
    scratch: Vec<u8>,
    /// The places of the frames of one flush in the output queue.
    frames: Vec<Range<usize>>,
    /// One write (virtio-net header and frame, or a coalesced run), as a gather list.
    write: offload::TapWrite,
}

impl Tap {
    /// Wraps a device created by [`crate::tap::create`] (made non-blocking); `vnet` says whether it was created with
    /// offload, so that its frames carry a virtio-net header.
    pub fn new(dev: SyncDevice, vnet: bool) -> io::Result<Tap> {
        dev.set_nonblocking(true)?;
        Ok(Tap {
            dev,
            vnet,
            rx: vec![0u8; MAX_FRAME + offload::VNET_HDR_LEN],
            scratch: Vec::with_capacity(2048),
            frames: Vec::new(),
            write: offload::TapWrite::default(),
        })
    }

    /// The device.
    pub fn device(&self) -> &SyncDevice {
        &self.dev
    }

    /// One read, calling `each` with the wire-size frames it held (a frame given as head and tail), or
    /// `WouldBlock` when nothing was queued. A frame the offload code cannot cut is dropped (logged at
    /// debug level).
    pub fn recv(&mut self, each: impl FnMut(&[u8], &[u8])) -> io::Result<()> {
        let n = self.dev.recv(&mut self.rx)?;
        let buf = &mut self.rx[..n];
        if !self.vnet {
            let mut each = each;
            each(buf, &[]);
        } else if let Err(e) = offload::split(buf, &mut self.scratch, each) {
            tracing::debug!("tap frame dropped: {e}");
        }
        Ok(())
    }

    /// Writes every frame of `queue`, in order, and returns how many there were. With offload, runs of
    /// one TCP stream go to the kernel as one large segment (user-space GRO); each write is one vectored
    /// write straight from the queue.
    pub fn send_all(&mut self, queue: &PacketQueue<()>) -> usize {
        self.frames.clear();
        self.frames.extend(queue.iter().map(|(_, r)| r));
        let frames = queue.bytes();
        if self.vnet {
            let mut i = 0;
            while i < self.frames.len() {
                i = offload::coalesce_next(frames, &self.frames, i, &mut self.write);
                let w = &self.write;
                let mut iov = [IoSlice::new(&[]); offload::MAX_RUN + 1];
                iov[0] = IoSlice::new(&w.head);
                for (slot, r) in iov[1..].iter_mut().zip(&w.pieces) {
                    *slot = IoSlice::new(&frames[r.clone()]);
                }
                write(&self.dev, &iov[..1 + w.pieces.len()]);
            }
        } else {
            for r in &self.frames {
                write(&self.dev, &[IoSlice::new(&frames[r.clone()])]);
            }
        }
        self.frames.len()
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }
}

/// One write; a full device queue (rare: the kernel queues TAP writes on the receive backlog) is waited
/// out briefly, like a full socket buffer.
fn write(dev: &SyncDevice, bufs: &[IoSlice<'_>]) {
    let mut waited = false;
    loop {
        match dev.send_vectored(bufs) {
            Ok(_) => return,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !waited => {
                waited = true;
                crate::udp::wait_writable(dev, TAP_WAIT);
            }
            Err(e) => {
                tracing::debug!("tap send: {e}");
                return;
            }
        }
    }
}
