//! `ping` (iputils) inside a namespace, with its output parsed.
//!
//! Every ping runs with `-w DEADLINE`: with `-c N` it then ends as soon as N replies came back
//! or at the deadline, whichever is first, and it keeps sending every `-i` until then.

use crate::cmd;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A parsed ping run.
#[derive(Debug, Clone, Default)]
pub struct PingStats {
    pub transmitted: u32,
    pub received: u32,
    /// Round-trip times of the replies, in milliseconds.
    pub rtts_ms: Vec<f64>,
    /// Sequence numbers that got a reply.
    pub replied_seqs: Vec<u32>,
    /// The whole output (for error messages).
    pub output: String,
}

impl PingStats {
    pub fn lost(&self) -> u32 {
        self.transmitted.saturating_sub(self.received)
    }
    pub fn avg_ms(&self) -> Option<f64> {
        if self.rtts_ms.is_empty() {
            None
        } else {
            Some(self.rtts_ms.iter().sum::<f64>() / self.rtts_ms.len() as f64)
        }
    }
    /// Sequence numbers between the first and last sent that got no reply.
    pub fn missing_seqs(&self) -> Vec<u32> {
        (1..=self.transmitted)
            .filter(|s| !self.replied_seqs.contains(s))
            .collect()
    }
    /// A one-line summary with the output's summary lines.
    pub fn summary(&self) -> String {
        format!(
            "{}/{} replies{}",
            self.received,
            self.transmitted,
            self.avg_ms()
                .map(|a| format!(", avg {a:.3} ms"))
                .unwrap_or_default()
        )
    }
}

/// Parses iputils ping output.
pub fn parse(output: &str) -> PingStats {
    let mut st = PingStats {
        output: output.to_string(),
        ..Default::default()
    };
    for line in output.lines() {
        if line.contains("bytes from") {
            if let Some(t) = field(line, "time=") {
                if let Ok(v) = t.parse::<f64>() {
                    st.rtts_ms.push(v);
                }
            }
            if let Some(s) = field(line, "icmp_seq=") {
                if let Ok(v) = s.parse::<u32>() {
                    st.replied_seqs.push(v);
                }
            }
        } else if line.contains("packets transmitted") {
            // "5 packets transmitted, 5 received, 0% packet loss, time 4004ms"
            let parts: Vec<&str> = line.split(',').map(str::trim).collect();
            if let Some(n) = parts.first().and_then(|p| p.split_whitespace().next()) {
                st.transmitted = n.parse().unwrap_or(0);
            }
            if let Some(n) = parts.get(1).and_then(|p| p.split_whitespace().next()) {
                st.received = n.parse().unwrap_or(0);
            }
        }
    }
    st
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let i = line.find(key)? + key.len();
    line[i..].split_whitespace().next()
}

/// Builds the argument list for `ip netns exec NS ping ...`.
fn args(
    ns: &str,
    target: &str,
    count: u32,
    interval: f64,
    deadline_s: u32,
    extra: &[&str],
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "netns".into(),
        "exec".into(),
        ns.into(),
        "ping".into(),
        "-n".into(),
        "-c".into(),
        count.to_string(),
        "-i".into(),
        format!("{interval}"),
        "-w".into(),
        deadline_s.max(1).to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(target.into());
    a
}

/// Pings `target` from namespace `ns`: ends after `count` replies or `deadline_s` seconds.
/// `extra` goes before the target (e.g. `["-6", "-I", "wft0"]`, `["-p", "c0ffee"]`). Only a
/// failure to run ping is an error; no reply gives `received == 0`.
pub fn ping(
    ns: &str,
    target: &str,
    count: u32,
    interval: f64,
    deadline_s: u32,
    extra: &[&str],
) -> Result<PingStats> {
    let a = args(ns, target, count, interval, deadline_s, extra);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = cmd::run("ip", &refs, Duration::from_secs(deadline_s as u64 + 10))?;
    let st = parse(&o.stdout);
    if st.transmitted == 0 && !o.status.success() {
        bail!(
            "ping {target} in {ns} did not run: {}{}",
            o.stderr.trim(),
            o.stdout.trim()
        );
    }
    Ok(st)
}

/// A ping running in the background (e.g. across a supernode restart). Killed on drop.
pub struct BackgroundPing {
    child: Option<Child>,
    out: Option<JoinHandle<String>>,
    deadline_s: u32,
    started: Instant,
    what: String,
}

impl BackgroundPing {
    pub fn start(
        ns: &str,
        target: &str,
        count: u32,
        interval: f64,
        deadline_s: u32,
        extra: &[&str],
    ) -> Result<BackgroundPing> {
        let a = args(ns, target, count, interval, deadline_s, extra);
        let mut child = Command::new("ip")
            .args(&a)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .context("starting ping")?;
        let mut so = child.stdout.take().expect("piped");
        let mut se = child.stderr.take().expect("piped");
        let out = thread::spawn(move || {
            let mut s = String::new();
            let _ = so.read_to_string(&mut s);
            let mut e = String::new();
            let _ = se.read_to_string(&mut e);
            if !e.trim().is_empty() {
                s.push_str("\nstderr: ");
                s.push_str(&e);
            }
            s
        });
        Ok(BackgroundPing {
            child: Some(child),
            out: Some(out),
            deadline_s,
            started: Instant::now(),
            what: format!("ping {target} from {ns}"),
        })
    }

    /// Waits for the ping to end (bounded by its deadline plus a margin) and parses it.
    pub fn finish(mut self) -> Result<PingStats> {
        let mut child = self.child.take().expect("running");
        let limit =
            Duration::from_secs(self.deadline_s as u64 + 10).saturating_sub(self.started.elapsed());
        let status = cmd::wait_child(&mut child, limit.max(Duration::from_secs(1)))?;
        let out = self
            .out
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        if status.is_none() {
            bail!("{} did not end in time; output so far: {out}", self.what);
        }
        let st = parse(&out);
        if st.transmitted == 0 {
            bail!("{} sent nothing: {}", self.what, out.trim());
        }
        Ok(st)
    }
}

impl Drop for BackgroundPing {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(t) = self.out.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_iputils_output() {
        let out = "PING 10.200.0.2 (10.200.0.2) 56(84) bytes of data.
64 bytes from 10.200.0.2: icmp_seq=1 ttl=64 time=0.512 ms
64 bytes from 10.200.0.2: icmp_seq=3 ttl=64 time=0.250 ms

--- 10.200.0.2 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms
rtt min/avg/max/mdev = 0.250/0.381/0.512/0.131 ms
";
        let st = parse(out);
        assert_eq!(st.transmitted, 3);
        assert_eq!(st.received, 2);
        assert_eq!(st.lost(), 1);
        assert_eq!(st.missing_seqs(), vec![2]);
        assert!((st.avg_ms().unwrap() - 0.381).abs() < 1e-9);
        let st =
            parse("3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2ms\n");
        assert_eq!((st.transmitted, st.received), (3, 0));
    }
}
