//! The testbed: network namespaces, the "internet" bridge, NAT routers, and cleanup.
//!
//! Addressing (documentation ranges, all inside our namespaces):
//! - the internet is 203.0.113.0/24 on bridge `sw0` in namespace `<id>-inet`; hosts put straight
//!   on it get .1, .2, ... in creation order; NAT routers get .21, .22, ...
//! - the n-th NAT router serves LAN 10.n.0.0/24: router .1 (`lan`), its host .2 (`eth0`)
//!
//! Namespace names are `<id>-<role>` with `<id>` = `wf<pid>t<counter>`, unique per test and per
//! process, so tests run in parallel; interface names are fixed (`eth0`, `wan`, `lan`) inside
//! each namespace, and `p-<role>` for the bridge ports in the internet namespace.

use crate::cmd::{self, run_ok, run_ok_with};
use crate::nsnet;
use anyhow::{bail, ensure, Context, Result};
use std::cell::{Cell, RefCell};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The NAT behaviour of a router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// `masquerade`: keeps the source port, endpoint-independent mapping, port-restricted
    /// filtering. Hole punching works.
    Cone,
    /// `masquerade fully-random`: a new random public port per flow. Hole punching fails.
    Symmetric,
}

/// A host (a namespace with one uplink) in the testbed.
#[derive(Clone, Debug)]
pub struct Host {
    pub role: String,
    pub ns: String,
    /// Its own underlay address (on `eth0`).
    pub ip: Ipv4Addr,
    /// The address the internet sees: the router's WAN address when behind NAT, else `ip`.
    pub public_ip: Ipv4Addr,
    /// The namespace of its NAT router, if any.
    pub router_ns: Option<String>,
    pub nat: Option<Nat>,
}

/// Prefix of the internet segment.
pub const INET_PREFIX: [u8; 3] = [203, 0, 113];

static COUNTER: AtomicU32 = AtomicU32::new(0);
static STALE_CLEANUP: Once = Once::new();

/// Everything one test creates. Dropping it kills what still runs in its namespaces, deletes the
/// namespaces and the runtime directories of its daemon sessions, and removes its temp dir
/// (kept, with its path printed, when the test failed or `WEFT_E2E_KEEP` is set).
pub struct Testbed {
    pub name: String,
    pub id: String,
    dir: PathBuf,
    started: Instant,
    deadline: Instant,
    namespaces: RefCell<Vec<String>>,
    routers: RefCell<Vec<String>>,
    logs: RefCell<Vec<(String, PathBuf)>>,
    sessions: RefCell<Vec<String>>,
    inet: RefCell<Option<String>>,
    next_host: Cell<u8>,
    next_lan: Cell<u8>,
    failed: Cell<bool>,
    echo: Cell<bool>,
}

impl Testbed {
    /// A new, empty testbed for test `name` whose waits all end within `budget` of now.
    pub fn new(name: &str, budget: Duration) -> Result<Testbed> {
        cmd::check_tools()?;
        STALE_CLEANUP.call_once(cleanup_stale);
        let id = format!(
            "wf{}t{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(format!("weft-e2e-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let now = Instant::now();
        Ok(Testbed {
            name: name.to_string(),
            id,
            dir,
            started: now,
            deadline: now + budget,
            namespaces: RefCell::new(Vec::new()),
            routers: RefCell::new(Vec::new()),
            logs: RefCell::new(Vec::new()),
            sessions: RefCell::new(Vec::new()),
            inet: RefCell::new(None),
            next_host: Cell::new(1),
            next_lan: Cell::new(1),
            failed: Cell::new(false),
            echo: Cell::new(true),
        })
    }

    /// The temp dir holding configs, state dirs and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Time since the testbed was created.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Time left of the test's budget.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Whether [`Testbed::step`] prints (on by default; the demo turns it off).
    pub fn set_echo(&self, on: bool) {
        self.echo.set(on);
    }

    /// Prints a progress line (captured by libtest: shown when the test fails).
    pub fn step(&self, msg: &str) {
        if self.echo.get() {
            println!("[{:6.2}s] {msg}", self.elapsed().as_secs_f64());
        }
    }

    /// Prints a measured figure, visible even in a passing `cargo test` run.
    pub fn figure(&self, msg: &str) {
        crate::report(&format!("{}: {msg}", self.name));
    }

    /// [`crate::wait_until`] with the timeout clipped to the test's remaining budget.
    pub fn wait_until<F>(
        &self,
        what: &str,
        timeout: Duration,
        poll: Duration,
        cond: F,
    ) -> Result<Duration>
    where
        F: FnMut() -> Result<bool>,
    {
        let rem = self.remaining();
        if rem.is_zero() {
            return Err(crate::Fatal(format!(
                "the test's time budget is used up (before waiting for {what})"
            ))
            .into());
        }
        crate::wait_until(what, timeout.min(rem), poll, cond)
    }

    /// A name for a daemon session (also the config file stem and `/run/weft/<session>`).
    pub fn session_name(&self, role: &str) -> String {
        format!("{}-{role}", self.id)
    }

    pub(crate) fn register_daemon(&self, label: &str, session: &str, log: &Path) {
        self.logs
            .borrow_mut()
            .push((label.to_string(), log.to_path_buf()));
        let mut s = self.sessions.borrow_mut();
        if !s.iter().any(|x| x == session) {
            s.push(session.to_string());
        }
    }

    fn new_ns(&self, role: &str, ipv6: bool) -> Result<String> {
        ensure!(
            !role.is_empty()
                && role.len() <= 10
                && role
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "role {role:?}: use 1-10 characters a-z0-9"
        );
        let ns = format!("{}-{role}", self.id);
        run_ok("ip", &["netns", "add", &ns])?;
        self.namespaces.borrow_mut().push(ns.clone());
        run_ok("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        if !ipv6 {
            nsnet::sysctl(&ns, "net/ipv6/conf/all/disable_ipv6", "1")?;
            nsnet::sysctl(&ns, "net/ipv6/conf/default/disable_ipv6", "1")?;
        }
        Ok(ns)
    }

    /// The internet namespace (created on first use): a bridge `sw0`.
    pub fn internet(&self) -> Result<String> {
        if let Some(ns) = self.inet.borrow().clone() {
            return Ok(ns);
        }
        let ns = self.new_ns("inet", false)?;
        run_ok("ip", &["-n", &ns, "link", "add", "sw0", "type", "bridge"])?;
        run_ok("ip", &["-n", &ns, "link", "set", "sw0", "up"])?;
        *self.inet.borrow_mut() = Some(ns.clone());
        Ok(ns)
    }

    /// Connects interface `ifname` of namespace `ns` to the internet bridge (port `p-<role>`)
    /// with address `ip`/24.
    fn attach_internet(&self, ns: &str, role: &str, ifname: &str, ip: Ipv4Addr) -> Result<()> {
        let inet = self.internet()?;
        let port = format!("p-{role}");
        run_ok(
            "ip",
            &[
                "-n", &inet, "link", "add", &port, "type", "veth", "peer", "name", ifname, "netns",
                ns,
            ],
        )?;
        run_ok(
            "ip",
            &["-n", &inet, "link", "set", &port, "master", "sw0", "up"],
        )?;
        self.underlay_if_up(ns, ifname, &format!("{ip}/24"))
    }

    fn underlay_if_up(&self, ns: &str, ifname: &str, cidr: &str) -> Result<()> {
        // IPv6 stays off on underlay links (where it is still enabled in the namespace).
        let v6 = format!("net/ipv6/conf/{ifname}/disable_ipv6");
        if Path::new("/proc/sys/net/ipv6").exists() {
            nsnet::sysctl(ns, &v6, "1")?;
        }
        run_ok("ip", &["-n", ns, "addr", "add", cidr, "dev", ifname])?;
        run_ok("ip", &["-n", ns, "link", "set", ifname, "up"])?;
        Ok(())
    }

    fn next_public(&self) -> Result<Ipv4Addr> {
        let n = self.next_host.get();
        ensure!(n <= 20, "at most 20 hosts directly on the internet");
        self.next_host.set(n + 1);
        Ok(Ipv4Addr::new(
            INET_PREFIX[0],
            INET_PREFIX[1],
            INET_PREFIX[2],
            n,
        ))
    }

    /// A host directly on the internet (203.0.113.1, .2, ... in creation order). With `ipv6`
    /// false IPv6 is disabled in the namespace; with true it stays enabled (except on the
    /// underlay link), so a TAP device created there gets a link-local address.
    pub fn add_public_host(&self, role: &str, ipv6: bool) -> Result<Host> {
        let ip = self.next_public()?;
        self.step(&format!("host {role}: on the internet at {ip}"));
        let ns = self.new_ns(role, ipv6)?;
        self.attach_internet(&ns, role, "eth0", ip)?;
        Ok(Host {
            role: role.to_string(),
            ns,
            ip,
            public_ip: ip,
            router_ns: None,
            nat: None,
        })
    }

    /// A host behind its own NAT router: router namespace `r<role>` with `wan` on the internet
    /// (203.0.113.21, .22, ...) and `lan` 10.n.0.1/24; the host is 10.n.0.2 with a default route
    /// via the router. The router forwards, masquerades (cone or symmetric), and drops
    /// unsolicited packets arriving on `wan` both for itself (input) and for the LAN (forward):
    /// see the testbed notes on why a router that accepts them turns a cone NAT symmetric.
    pub fn add_nat_host(&self, role: &str, nat: Nat, ipv6: bool) -> Result<Host> {
        let n = self.next_lan.get();
        ensure!(n <= 50, "at most 50 NAT routers");
        self.next_lan.set(n + 1);
        let public = Ipv4Addr::new(INET_PREFIX[0], INET_PREFIX[1], INET_PREFIX[2], 20 + n);
        let lan_router = Ipv4Addr::new(10, n, 0, 1);
        let lan_host = Ipv4Addr::new(10, n, 0, 2);
        self.step(&format!(
            "host {role}: {lan_host} behind a {} NAT router at {public}",
            match nat {
                Nat::Cone => "cone",
                Nat::Symmetric => "symmetric",
            }
        ));
        let rrole = format!("r{role}");
        let rns = self.new_ns(&rrole, false)?;
        self.routers.borrow_mut().push(rns.clone());
        self.attach_internet(&rns, &rrole, "wan", public)?;
        let hns = self.new_ns(role, ipv6)?;
        run_ok(
            "ip",
            &[
                "-n", &rns, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns",
                &hns,
            ],
        )?;
        self.underlay_if_up(&rns, "lan", &format!("{lan_router}/24"))?;
        self.underlay_if_up(&hns, "eth0", &format!("{lan_host}/24"))?;
        run_ok(
            "ip",
            &[
                "-n",
                &hns,
                "route",
                "add",
                "default",
                "via",
                &lan_router.to_string(),
            ],
        )?;
        nsnet::sysctl(&rns, "net/ipv4/ip_forward", "1")?;
        let flags = match nat {
            Nat::Cone => "",
            Nat::Symmetric => " fully-random",
        };
        let ruleset = format!(
            r#"table ip wfnat {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" masquerade{flags}
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "wan" ct state established,related accept
        iifname "wan" counter drop comment "unsolicited to LAN"
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "wan" ct state established,related accept
        iifname "wan" icmp type echo-request accept
        iifname "wan" counter drop comment "unsolicited to router"
    }}
}}
"#
        );
        run_ok_with(
            "ip",
            &["netns", "exec", &rns, "nft", "-f", "-"],
            Some(&ruleset),
        )
        .context("loading the NAT ruleset (is nftables installed?)")?;
        Ok(Host {
            role: role.to_string(),
            ns: hns,
            ip: lan_host,
            public_ip: public,
            router_ns: Some(rns),
            nat: Some(nat),
        })
    }

    /// Prints, for a failed test, the tail of every daemon log and the NAT routers' drop
    /// counters, and keeps the temp dir.
    pub fn fail_report(&self) {
        self.failed.set(true);
        println!(
            "==== {}: failed after {:.1} s; logs and configs kept in {}",
            self.name,
            self.elapsed().as_secs_f64(),
            self.dir.display()
        );
        for (label, path) in self.logs.borrow().iter() {
            let text =
                std::fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"));
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(60);
            println!(
                "---- {label}: last {} of {} lines of {}",
                lines.len() - from,
                lines.len(),
                path.display()
            );
            for l in &lines[from..] {
                println!("  {l}");
            }
        }
        for r in self.routers.borrow().iter() {
            if let Ok(o) = cmd::ns_run(r, &["nft", "list", "table", "ip", "wfnat"], cmd::QUICK) {
                let drops: Vec<&str> = o
                    .stdout
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.contains("drop"))
                    .collect();
                println!("---- router {r}: {}", drops.join(" | ").trim());
            }
        }
    }

    /// Deletes everything now (also done on drop).
    fn teardown(&self) {
        let sessions: Vec<String> = self.sessions.borrow_mut().drain(..).collect();
        let namespaces: Vec<String> = self.namespaces.borrow_mut().drain(..).collect();
        for ns in namespaces.iter().rev() {
            if let Err(e) = delete_ns(ns) {
                eprintln!("{}: cleanup of namespace {ns}: {e:#}", self.name);
            }
        }
        for s in sessions {
            let _ = std::fs::remove_dir_all(Path::new("/run/weft").join(s));
        }
        let keep = self.failed.get() || std::env::var_os("WEFT_E2E_KEEP").is_some();
        if !keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Kills (TERM, up to 2 s, then KILL) whatever still runs in `ns`, then deletes it.
pub fn delete_ns(ns: &str) -> Result<()> {
    let pids = ns_pids(ns);
    if !pids.is_empty() {
        for &p in &pids {
            // SAFETY: plain kill(2) on pids that live in our own namespace.
            unsafe {
                libc::kill(p, libc::SIGTERM);
            }
        }
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end && !ns_pids(ns).is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in ns_pids(ns) {
            // SAFETY: as above.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
    let o = cmd::run("ip", &["netns", "del", ns], cmd::QUICK)?;
    if !o.status.success() && Path::new("/run/netns").join(ns).exists() {
        bail!("ip netns del {ns}: {}", o.stderr.trim());
    }
    Ok(())
}

fn ns_pids(ns: &str) -> Vec<i32> {
    match cmd::run("ip", &["netns", "pids", ns], cmd::QUICK) {
        Ok(o) => o
            .stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Parses the pid out of a name `wf<pid>t<n>-...`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("wf")?;
    let (pid, rest) = rest.split_once('t')?;
    let (n, _) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes namespaces and `/run/weft` entries left by harness processes that no longer exist
/// (e.g. a test run killed with SIGKILL).
fn cleanup_stale() {
    let me = std::process::id();
    let dead = |pid: u32| pid != me && !Path::new(&format!("/proc/{pid}")).exists();
    if let Ok(rd) = std::fs::read_dir("/run/netns") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if owner_pid(&name).is_some_and(dead) {
                let _ = delete_ns(&name);
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/run/weft") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if owner_pid(&name).is_some_and(dead) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn owner_pid_parses_only_our_names() {
        assert_eq!(owner_pid("wf1234t0-inet"), Some(1234));
        assert_eq!(owner_pid("wf1234t12-e1"), Some(1234));
        assert_eq!(owner_pid("wf1234-e1"), None);
        assert_eq!(owner_pid("wfxt1-e1"), None);
        assert_eq!(owner_pid("other"), None);
    }
}
