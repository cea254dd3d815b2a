//! Bounded waiting.

use anyhow::{bail, Result};
use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

/// An error that must not be retried: returned from a [`wait_until`] condition (e.g. "the daemon
/// exited"), it ends the wait at once. Any other error is treated as "not yet" and remembered
/// for the timeout message.
#[derive(Debug)]
pub struct Fatal(pub String);

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Fatal {}

/// True when `e` (or something in its chain) is a [`Fatal`].
pub fn is_fatal(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Fatal>().is_some())
}

/// Polls `cond` every `poll` until it returns `Ok(true)`, for at most `timeout`; returns how long
/// it took. `Ok(false)` and ordinary errors mean "not yet" (the last error is quoted if the time
/// runs out); a [`Fatal`] error, or an interrupt (Ctrl-C in the demo), ends the wait at once.
pub fn wait_until<F>(what: &str, timeout: Duration, poll: Duration, mut cond: F) -> Result<Duration>
where
    F: FnMut() -> Result<bool>,
{
    let start = Instant::now();
    let deadline = start + timeout;
    let mut last_err: Option<anyhow::Error>;
    loop {
        if crate::interrupted() {
            return Err(Fatal(format!("interrupted while waiting for {what}")).into());
        }
        match cond() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => last_err = None,
            Err(e) if is_fatal(&e) => {
                return Err(e.context(format!("while waiting for {what}")));
            }
            Err(e) => last_err = Some(e),
        }
        let now = Instant::now();
        if now >= deadline {
            match last_err {
                Some(e) => bail!(
                    "timed out after {:.1} s waiting for {what}; last error: {e:#}",
                    timeout.as_secs_f64()
                ),
                None => bail!(
                    "timed out after {:.1} s waiting for {what}",
                    timeout.as_secs_f64()
                ),
            }
        }
        thread::sleep(poll.min(deadline - now));
    }
}

/// Sleeps `d` in small steps, returning early (with an error) on interrupt.
pub fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        if crate::interrupted() {
            return Err(Fatal("interrupted".into()).into());
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}
