//! Doing things inside a network namespace from this process: a short-lived thread `setns`es
//! into the namespace and runs a closure there. A socket created in that thread belongs to the
//! namespace for its whole life and can then be used from any thread.

use crate::cmd;
use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;
use std::fs::File;
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

fn enter(ns: &str) -> Result<()> {
    let path = format!("/run/netns/{ns}");
    let f = File::open(&path).with_context(|| format!("opening {path}"))?;
    // SAFETY: setns on a valid fd; it affects only the calling thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        bail!("setns({path}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a thread that has entered network namespace `ns`.
pub fn in_netns<T, F>(ns: &str, f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send,
    T: Send,
{
    thread::scope(|s| {
        s.spawn(|| {
            enter(ns)?;
            f()
        })
        .join()
        .map_err(|_| anyhow!("thread in namespace {ns} panicked"))?
    })
}

/// Writes a sysctl of namespace `ns`: `key` is the path under /proc/sys, e.g.
/// `net/ipv4/ip_forward`.
pub fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    in_netns(ns, || {
        let p = format!("/proc/sys/{key}");
        std::fs::write(&p, value).with_context(|| format!("writing {value} to {p} in {ns}"))
    })
}

/// Reads a sysctl of namespace `ns`.
pub fn sysctl_get(ns: &str, key: &str) -> Result<String> {
    in_netns(ns, || {
        let p = format!("/proc/sys/{key}");
        Ok(std::fs::read_to_string(&p)
            .with_context(|| format!("reading {p} in {ns}"))?
            .trim()
            .to_string())
    })
}

/// A UDP socket bound to `bind` inside namespace `ns`.
pub fn udp_socket_in(ns: &str, bind: &str) -> Result<UdpSocket> {
    let bind = bind.to_string();
    in_netns(ns, move || {
        UdpSocket::bind(&bind).with_context(|| format!("binding UDP {bind} in {ns}"))
    })
}

/// A UDP "what is my address" server: answers every datagram with the sender's address as
/// text (`ip:port`), as the server sees it. Stops on drop.
pub struct UdpEcho {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEcho {
    pub fn start(ns: &str, bind: &str) -> Result<UdpEcho> {
        let sock = udp_socket_in(ns, bind)?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = sock.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::SeqCst) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(from.to_string().as_bytes(), from);
                }
            }
        });
        Ok(UdpEcho {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Asks a [`UdpEcho`] at `server` how it sees `sock` (retries a few times, bounded).
pub fn mapped_addr(sock: &UdpSocket, server: SocketAddr) -> Result<SocketAddr> {
    sock.set_read_timeout(Some(Duration::from_millis(300)))?;
    let mut buf = [0u8; 256];
    for _ in 0..5 {
        sock.send_to(b"?", server)?;
        let end = Instant::now() + Duration::from_millis(300);
        while Instant::now() < end {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if from == server => {
                    let text = std::str::from_utf8(&buf[..n])?;
                    return text
                        .parse()
                        .with_context(|| format!("echo server answered {text:?}"));
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    bail!("no answer from the UDP echo server at {server}")
}

/// Receives datagrams on `sock` for up to `window`; returns the senders seen with payloads.
pub fn recv_for(sock: &UdpSocket, window: Duration) -> Result<Vec<(SocketAddr, Vec<u8>)>> {
    let end = Instant::now() + window;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(got);
        }
        sock.set_read_timeout(Some((end - now).max(Duration::from_millis(1))))?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => got.push((from, buf[..n].to_vec())),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Ok(got)
            }
            // ICMP errors reported on the socket: ignore, keep listening
            Err(_) => continue,
        }
    }
}

/// Result of a [`Capture`].
#[derive(Debug, Clone, Default)]
pub struct CaptureResult {
    /// Frames seen on the device (both directions).
    pub frames: u64,
    /// Frames that contained the pattern.
    pub matches: u64,
}

/// Captures frames on one device of a namespace with an `AF_PACKET` socket (no tcpdump needed)
/// and counts those containing a byte pattern.
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<CaptureResult>>,
}

impl Capture {
    pub fn start(ns: &str, dev: &str, pattern: &[u8]) -> Result<Capture> {
        ensure!(!pattern.is_empty(), "empty capture pattern");
        let dev_s = dev.to_string();
        let fd: OwnedFd = in_netns(ns, move || {
            let cdev = std::ffi::CString::new(dev_s.clone())?;
            // SAFETY: plain libc calls with valid arguments; the fd is owned right away.
            unsafe {
                let ifindex = libc::if_nametoindex(cdev.as_ptr());
                ensure!(ifindex != 0, "no device {dev_s}");
                let proto = (libc::ETH_P_ALL as u16).to_be();
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32);
                ensure!(
                    fd >= 0,
                    "AF_PACKET socket: {}",
                    std::io::Error::last_os_error()
                );
                let fd = OwnedFd::from_raw_fd(fd);
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_protocol = proto;
                sll.sll_ifindex = ifindex as i32;
                let rc = libc::bind(
                    fd.as_raw_fd(),
                    &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                ensure!(
                    rc == 0,
                    "bind AF_PACKET to {dev_s}: {}",
                    std::io::Error::last_os_error()
                );
                let tv = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 100_000,
                };
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    &tv as *const libc::timeval as *const libc::c_void,
                    std::mem::size_of::<libc::timeval>() as u32,
                );
                Ok(fd)
            }
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let pattern = pattern.to_vec();
        let thread = thread::spawn(move || {
            let mut res = CaptureResult::default();
            let mut buf = vec![0u8; 65536];
            // after the stop request, drain what is already queued (bounded)
            let mut drain_until: Option<Instant> = None;
            loop {
                if drain_until.is_none() && stop2.load(Ordering::SeqCst) {
                    drain_until = Some(Instant::now() + Duration::from_millis(300));
                }
                if drain_until.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
                // SAFETY: recv into a buffer we own, of its length.
                let n = unsafe {
                    libc::recv(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr() as *mut libc::c_void,
                        buf.len(),
                        if drain_until.is_some() {
                            libc::MSG_DONTWAIT
                        } else {
                            0
                        },
                    )
                };
                if n <= 0 {
                    if drain_until.is_some() {
                        break; // queue empty
                    }
                    continue;
                }
                let frame = &buf[..n as usize];
                res.frames += 1;
                if frame
                    .windows(pattern.len())
                    .any(|w| w == pattern.as_slice())
                {
                    res.matches += 1;
                }
            }
            res
        });
        Ok(Capture {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops capturing and returns what was seen.
    pub fn finish(mut self) -> CaptureResult {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Interface counters from `ip -s -j link show dev DEV`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

pub fn link_stats(ns: &str, dev: &str) -> Result<LinkStats> {
    let out = cmd::run_ok("ip", &["-n", ns, "-s", "-j", "link", "show", "dev", dev])?;
    let v: Value = serde_json::from_str(&out).context("parsing ip -j output")?;
    let s = &v[0]["stats64"];
    let get = |dir: &str, k: &str| s[dir][k].as_u64().unwrap_or(0);
    Ok(LinkStats {
        rx_packets: get("rx", "packets"),
        rx_bytes: get("rx", "bytes"),
        tx_packets: get("tx", "packets"),
        tx_bytes: get("tx", "bytes"),
    })
}

/// The IPv6 link-local address of `dev` and whether duplicate address detection is finished
/// (not tentative). None when the device has none (yet).
pub fn link_local(ns: &str, dev: &str) -> Result<Option<(Ipv6Addr, bool)>> {
    let out = cmd::run_ok("ip", &["-n", ns, "-6", "-j", "addr", "show", "dev", dev])?;
    let v: Value = serde_json::from_str(&out).context("parsing ip -j output")?;
    let infos = v[0]["addr_info"].as_array().cloned().unwrap_or_default();
    for a in infos {
        if a["scope"] == "link" {
            if let Some(local) = a["local"].as_str() {
                let addr: Ipv6Addr = local.parse()?;
                let tentative = a["tentative"].as_bool().unwrap_or(false);
                let failed = a["dadfailed"].as_bool().unwrap_or(false);
                ensure!(!failed, "DAD failed for {addr} on {dev} in {ns}");
                return Ok(Some((addr, !tentative)));
            }
        }
    }
    Ok(None)
}

/// Whether device `dev` exists in `ns`.
pub fn has_device(ns: &str, dev: &str) -> bool {
    cmd::run("ip", &["-n", ns, "link", "show", "dev", dev], cmd::QUICK)
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A small deterministic xorshift generator for junk packets (no rand dependency).
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}
