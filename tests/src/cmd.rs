//! Running external commands (`ip`, `nft`, `ping`, ...) with a time limit.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Default limit for quick configuration commands.
pub const QUICK: Duration = Duration::from_secs(15);

fn describe(program: &str, args: &[&str]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

fn reader<R: Read + Send + 'static>(r: Option<R>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` at most `timeout`; kills it (SIGKILL) when the time is up.
/// Returns None on timeout (the child has then been reaped).
pub fn wait_child(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `program args` with no stdin, collecting its output; kills it after `timeout`.
/// A non-zero exit is not an error here (see [`run_ok`]).
pub fn run(program: &str, args: &[&str], timeout: Duration) -> Result<Output> {
    run_with(program, args, None, &[], timeout)
}

/// Like [`run`], with optional stdin text and extra environment.
pub fn run_with(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<Output> {
    let what = describe(program, args);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // own process group: a Ctrl-C at the terminal reaches only the demo, which cleans up
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run `{what}` (is `{program}` installed?)"))?;
    if let Some(text) = stdin {
        let mut si = child.stdin.take().expect("piped stdin");
        si.write_all(text.as_bytes())
            .with_context(|| format!("writing stdin of `{what}`"))?;
    }
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let status = wait_child(&mut child, timeout)?;
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => bail!(
            "`{what}` did not finish within {:?} (killed); stderr: {}",
            timeout,
            stderr.trim()
        ),
    }
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(program: &str, args: &[&str]) -> Result<String> {
    run_ok_with(program, args, None)
}

/// Like [`run_ok`] with stdin text.
pub fn run_ok_with(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let o = run_with(program, args, stdin, &[], QUICK)?;
    if !o.status.success() {
        bail!(
            "`{}` failed ({}): {}{}",
            describe(program, args),
            o.status,
            o.stderr.trim(),
            if o.stdout.trim().is_empty() {
                String::new()
            } else {
                format!(" / stdout: {}", o.stdout.trim())
            }
        );
    }
    Ok(o.stdout)
}

/// `ip netns exec NS args...`, must succeed.
pub fn ns_run_ok(ns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    run_ok("ip", &full)
}

/// `ip netns exec NS args...` with a limit; exit status not checked.
pub fn ns_run(ns: &str, args: &[&str], timeout: Duration) -> Result<Output> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    run("ip", &full, timeout)
}

/// Checks that the external tools the harness needs exist; the error names the Debian packages.
pub fn check_tools() -> Result<()> {
    let mut missing = Vec::new();
    for (tool, pkg) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("ping", "iputils-ping"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
            || ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .any(|d| std::path::Path::new(d).join(tool).is_file());
        if !found {
            missing.push(format!("{tool} (package {pkg})"));
        }
    }
    if !missing.is_empty() {
        bail!(
            "missing tools: {}; install with: apt-get install -y iproute2 nftables iputils-ping",
            missing.join(", ")
        );
    }
    Ok(())
}
