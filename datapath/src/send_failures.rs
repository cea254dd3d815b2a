//! Which destinations our UDP sends fail to, so that a failure is visible at the default log level once
//! per state change, with what to check, instead of once per datagram at debug level (on an IPv6-only
//! network an IPv4-bound edge failed every send with "address family not supported", and nothing said so
//! unless the log was at its most verbose).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

/// At most this many failing destinations are remembered (then the table starts over: a flood of
/// failures to many destinations costs a few more log lines, never memory).
const MAX_FAILING: usize = 256;

/// What a send error most likely means, for the log line.
pub fn advice(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(97) => {
            "the socket's address family cannot reach it: set [connection] bind to [::]:PORT to serve both \
             IPv4 and IPv6, or use an address of the socket's family"
        }
        Some(101) | Some(113) => {
            "this host has no route to it: check its network connection and default route"
        }
        Some(90) => "the datagram is larger than the interface MTU: lower [tuntap] mtu",
        Some(1) | Some(13) => {
            "a local firewall rule refuses it: check nftables/iptables rules for UDP to that address"
        }
        _ => "check this host's network connection",
    }
}

/// The failing destinations and how many sends to each failed since the first.
#[derive(Default)]
pub struct SendFailures {
    failing: HashMap<SocketAddr, u64>,
}

impl SendFailures {
    /// Whether nothing is failing (the common case; checked on every send, so it must stay this cheap).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.failing.is_empty()
    }

    /// A send to `dest` failed with `e`: true when this is the first failure since sends to it worked
    /// (the caller logs it).
    pub fn failed(&mut self, dest: SocketAddr) -> bool {
        if self.failing.len() >= MAX_FAILING && !self.failing.contains_key(&dest) {
            self.failing.clear();
        }
        let n = self.failing.entry(dest).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Whether sends to `dest` are failing.
    pub fn contains(&self, dest: &SocketAddr) -> bool {
        self.failing.contains_key(dest)
    }

    /// A send to `dest` worked: how many had failed before it, if it was failing (the caller logs that it
    /// recovered).
    pub fn succeeded(&mut self, dest: SocketAddr) -> Option<u64> {
        self.failing.remove(&dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_state_change_and_bounded() {
        let mut f = SendFailures::default();
        let a: SocketAddr = "192.0.2.1:7700".parse().unwrap();
        assert!(f.is_empty());
        assert!(f.failed(a));
        assert!(!f.failed(a));
        assert!(!f.failed(a));
        assert_eq!(f.succeeded(a), Some(3));
        assert_eq!(f.succeeded(a), None);
        assert!(f.failed(a), "failing again is a new state change");
        for i in 0..1000u16 {
            f.failed(SocketAddr::from(([198, 51, 100, 1], i)));
        }
        assert!(f.failing.len() <= MAX_FAILING);
    }

    #[test]
    fn advice_names_the_likely_cause() {
        let fam = io::Error::from_raw_os_error(97);
        assert!(advice(&fam).contains("bind"));
        assert!(advice(&io::Error::from_raw_os_error(101)).contains("route"));
        assert!(advice(&io::Error::from_raw_os_error(90)).contains("mtu"));
        assert!(advice(&io::Error::from_raw_os_error(1)).contains("firewall"));
    }
}
