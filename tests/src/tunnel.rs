//! A point-to-point tunnel between two namespaces, as another VPN would put beside Weft: a TUN device
//! in each (IFF_POINTOPOINT, like OpenVPN's or a work VPN's), with its own small MTU, and this process
//! carrying IP packets between the two. Stopped (and the devices gone) on drop.

use crate::nsnet;
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// `TUNSETIFF` (`_IOW('T', 202, int)`).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

/// The running tunnel.
pub struct Tunnel {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Opens TUN device `name` in namespace `ns` (created by the open, gone when the file is closed).
fn open_tun(ns: &str, name: &str) -> Result<File> {
    if name.len() >= libc::IFNAMSIZ {
        bail!("interface name {name} too long");
    }
    nsnet::in_netns(ns, || {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .context("opening /dev/net/tun")?;
        // struct ifreq: the name, then the flags (a short) in the union.
        let mut ifr = [0u8; 40];
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        ifr[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI).to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes a struct ifreq, for which `ifr` is large enough.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF as _, ifr.as_mut_ptr()) };
        if rc != 0 {
            bail!("TUNSETIFF {name}: {}", std::io::Error::last_os_error());
        }
        Ok(f)
    })
}

/// Waits up to 100 ms for `f` to be readable.
fn readable(f: &File) -> bool {
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 100) };
    n > 0 && p.revents & libc::POLLIN != 0
}

/// Copies packets from `from` to `to` until `stop`.
fn pump(mut from: File, mut to: File, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        if !readable(&from) {
            continue;
        }
        match from.read(&mut buf) {
            Ok(n) if n > 0 => {
                let _ = to.write(&buf[..n]);
            }
            _ => {}
        }
    }
}

impl Tunnel {
    /// A TUN device `dev` in `ns_a` with address `addr_a` and one in `ns_b` with `addr_b` (both CIDR,
    /// in one subnet), MTU `mtu`, up, and the packets carried between them.
    pub fn start(
        ns_a: &str,
        addr_a: &str,
        ns_b: &str,
        addr_b: &str,
        dev: &str,
        mtu: u16,
    ) -> Result<Tunnel> {
        let a = open_tun(ns_a, dev)?;
        let b = open_tun(ns_b, dev)?;
        for (ns, addr) in [(ns_a, addr_a), (ns_b, addr_b)] {
            let mtu = mtu.to_string();
            crate::cmd::run_ok("ip", &["-n", ns, "link", "set", dev, "mtu", &mtu, "up"])?;
            crate::cmd::run_ok("ip", &["-n", ns, "addr", "add", addr, "dev", dev])?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (from, to) in [(a.try_clone()?, b.try_clone()?), (b, a)] {
            let stop = stop.clone();
            threads.push(thread::spawn(move || pump(from, to, stop)));
        }
        Ok(Tunnel { stop, threads })
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
