//! End-to-end test harness for Weft: real `weft-supernode` / `weft-edge` processes in network
//! namespaces, an "internet" that is a bridge inside a namespace of its own, and NAT routers
//! made with nftables.
//!
//! Layout:
//! - [`testbed`]: [`Testbed`] owns everything a test creates (namespaces, a temp dir with
//!   configs and logs, the list of daemon sessions) and tears it down on drop. Hosts are put
//!   straight on the internet ([`Testbed::add_public_host`]) or behind a cone or symmetric NAT
//!   router ([`Testbed::add_nat_host`]).
//! - [`daemon`]: config builders, spawning a daemon inside a namespace, SIGTERM/SIGKILL on drop,
//!   the [`Edge`] and [`Supernode`] handles with typed management calls.
//! - [`mgmt`]: JSON-RPC calls on the unix management socket (through `weft_mgmt`'s client) and
//!   the response types of the daemons' contract.
//! - [`ping`]: `ping` in a namespace (foreground and background), parsed.
//! - [`nsnet`]: code that runs in a namespace from this process (a thread that `setns`es):
//!   UDP sockets, a UDP echo server, an `AF_PACKET` capture, link counters, addresses.
//! - [`wait`]: bounded polling ([`wait_until`]) and the [`Fatal`] error that stops a wait early.
//! - [`cmd`]: running external commands with a time limit.
//! - [`browser`]: headless Chromium in a namespace, driven over the DevTools protocol on a pipe,
//!   and a plain HTTP GET from inside a namespace (the status page test).
//!
//! Every test goes through [`run_e2e`]: it skips (with one clear line) when not root, builds a
//! [`Testbed`] with a time budget, and on failure prints the tail of every daemon log.

pub mod browser;
pub mod cmd;
pub mod daemon;
pub mod mgmt;
pub mod nsnet;
pub mod ping;
pub mod testbed;
pub mod tunnel;
pub mod wait;

pub use daemon::{find_bin, Address, Daemon, Edge, EdgeConfig, Supernode, SupernodeConfig};
pub use mgmt::{EdgeInfo, EdgeStats, Peer, SnEdge, SnInfo, SnStats};
pub use ping::{ping, BackgroundPing, PingStats};
pub use testbed::{Host, Nat, Testbed};
pub use wait::{wait_until, Fatal};

use std::io::Write;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Community name and secret used by the scenarios. The secret is a generated key (as
/// `weft-edge new-community-key` prints), the documented default: no Argon2id at start-up. Tests
/// about passphrases use their own.
pub const COMMUNITY: &str = "e2e";
pub const SECRET: &str =
    "weftkey1-f6812b9cb75a7a556ff669ee0e641714b0b7abfe1ed104fec93590ab4b869cfceb8258da";

/// Writes one line to the process's real stderr, bypassing libtest's output capture, so that
/// skip notices and measured figures show up in a plain `cargo test` run.
pub fn report(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
    let _ = e.flush();
}

/// Whether this process may create network namespaces. When it may not, prints exactly one
/// line saying why the test is skipped and returns false: the caller returns early.
pub fn require_root_or_skip(test_name: &str) -> bool {
    match root_problem() {
        None => true,
        Some(why) if required() => {
            panic!("{test_name}: {why}, and WEFT_E2E_REQUIRED is set (as .ci/run sets it): not skipping")
        }
        Some(why) => {
            report(&format!(
                "SKIP {test_name}: {why}; run: sudo -E cargo test -p weft-e2e"
            ));
            false
        }
    }
}

/// Whether a test that cannot run must fail instead of printing a SKIP line: `.ci/run` sets
/// `WEFT_E2E_REQUIRED=1`, so that a CI machine missing a package or root fails loudly rather than passing
/// with the end-to-end tests skipped.
pub fn required() -> bool {
    std::env::var_os("WEFT_E2E_REQUIRED").is_some_and(|v| !v.is_empty() && v != "0")
}

/// None when we can use network namespaces, else a short reason.
pub fn root_problem() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (CAP_NET_ADMIN) for network namespaces".into());
    }
    if let Err(e) = cmd::run("ip", &["-V"], Duration::from_secs(10)) {
        return Some(format!(
            "needs the `ip` tool (Debian package iproute2) for network namespaces ({e:#})"
        ));
    }
    // can we create a network namespace? (a throwaway one, on a thread that then exits)
    let probe = std::thread::spawn(|| {
        // SAFETY: unshare only affects this short-lived thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
            None
        } else {
            Some(std::io::Error::last_os_error())
        }
    })
    .join();
    match probe {
        Ok(None) => None,
        Ok(Some(err)) => Some(format!(
            "needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) for network namespaces (unshare: {err})"
        )),
        Err(_) => Some("could not probe for network namespace support".into()),
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// True once SIGINT/SIGTERM arrived (only after [`install_interrupt_handler`]). Every bounded
/// wait of the harness gives up early when this is set.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// For the demo: Ctrl-C / SIGTERM set a flag instead of killing the process, so the waits stop
/// and the testbed is torn down by its Drop.
pub fn install_interrupt_handler() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
}

/// Runs one end-to-end test: skip when not root, a fresh [`Testbed`] with a time `budget`, and
/// on failure (error or panic) the tail of every daemon log before the test fails. Namespaces,
/// processes and runtime directories are cleaned up in every case.
pub fn run_e2e<F>(test_name: &str, budget: Duration, body: F)
where
    F: FnOnce(&Testbed) -> anyhow::Result<()>,
{
    if !require_root_or_skip(test_name) {
        return;
    }
    let started = Instant::now();
    let tb = match Testbed::new(test_name, budget) {
        Ok(tb) => tb,
        Err(e) => panic!("{test_name}: could not set up the testbed: {e:#}"),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&tb)));
    match outcome {
        Ok(Ok(())) => {
            report(&format!(
                "{test_name}: passed in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
        }
        Ok(Err(e)) => {
            tb.fail_report();
            drop(tb);
            panic!("{test_name} failed: {e:#}");
        }
        Err(panic) => {
            tb.fail_report();
            drop(tb);
            resume_unwind(panic);
        }
    }
}

/// Formats a duration as seconds with one or two decimals, for printed figures.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}
