//! Headless Chromium inside a network namespace, driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: JSON messages separated by NUL bytes on file descriptors 3 and 4),
//! so no debugging port, no WebSocket library and no chromedriver are needed; plus a plain
//! HTTP GET from inside a namespace.
//!
//! Why not `chromium --dump-dom --virtual-time-budget=...`: the status page keeps an
//! `EventSource` open, and virtual time never advances past a pending request, so dump-dom hangs
//! until it is killed. Over the protocol we evaluate expressions in the live page instead, and
//! take screenshots with `Page.captureScreenshot`.
//!
//! The browser runs in its own process group; [`Browser`] closes it (`Browser.close`, then
//! SIGKILL to the group) on drop, and the testbed kills whatever is left in the namespace.

use crate::cmd;
use crate::nsnet;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use weft_mgmt::client::{Client, Request, Target};

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Limit for one DevTools call.
pub const CDP_TIMEOUT: Duration = Duration::from_secs(15);

/// None when headless Chromium can be used, else why not (for a SKIP line).
pub fn chromium_problem() -> Option<String> {
    if Path::new(CHROMIUM).is_file() {
        None
    } else {
        Some(format!(
            "needs {CHROMIUM} (Debian package chromium: apt-get install -y chromium)"
        ))
    }
}

/// A headless Chromium with one page, in network namespace `ns`.
pub struct Browser {
    pub ns: String,
    child: Option<Child>,
    tx: File,
    rx: Receiver<Value>,
    reader: Option<JoinHandle<()>>,
    session: String,
    next_id: u64,
    profile: PathBuf,
    log: PathBuf,
    /// Uncaught exceptions thrown by the page's scripts.
    pub exceptions: Vec<String>,
    /// Console errors and browser log entries of level error (e.g. failed requests).
    pub console_errors: Vec<String>,
}

/// A pipe end moved to a descriptor >= 10 (so that `dup2` onto 3 and 4 in the child cannot
/// clobber it), close-on-exec.
fn high_fd(fd: OwnedFd) -> Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a valid fd returns a new fd that we own.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if n < 0 {
        bail!(
            "fcntl(F_DUPFD_CLOEXEC): {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: n is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two new descriptors, which we own right away.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe2: {}", std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Browser {
    /// Starts `chromium --headless=new` in namespace `ns` with a fresh profile in `dir` (its
    /// stderr goes to `dir/chromium.log`), opens one blank page of `width` x `height` CSS pixels
    /// and attaches to it.
    pub fn launch(ns: &str, dir: &Path, width: u32, height: u32) -> Result<Browser> {
        let profile = dir.join("chromium-profile");
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile)
            .with_context(|| format!("creating {}", profile.display()))?;
        let log = dir.join("chromium.log");
        let logf = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        // fd 3: commands to the browser; fd 4: answers and events from it
        let (cmd_r, cmd_w) = pipe()?;
        let (resp_r, resp_w) = pipe()?;
        let (child_in, child_out) = (high_fd(cmd_r)?, high_fd(resp_w)?);
        let (in_fd, out_fd) = (child_in.as_raw_fd(), child_out.as_raw_fd());
        let args: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            ns.into(),
            CHROMIUM.into(),
            "--headless=new".into(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--disable-default-apps".into(),
            "--mute-audio".into(),
            "--hide-scrollbars".into(),
            "--remote-debugging-pipe".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
            "about:blank".into(),
        ];
        let mut command = Command::new("ip");
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(logf.try_clone()?))
            .stderr(Stdio::from(logf))
            .process_group(0);
        // SAFETY: only dup2 (async-signal-safe) between fork and exec; in_fd and out_fd are >= 10
        // and stay open in the parent until spawn returns.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(in_fd, 3) < 0 || libc::dup2(out_fd, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {CHROMIUM} in {ns}"))?;
        // the child has its copies; ours must go so that EOF reaches the reader when it exits
        drop(child_in);
        drop(child_out);
        let (txv, rx) = mpsc::channel();
        let mut rd = File::from(resp_r);
        let reader = thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            loop {
                let n = match rd.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|&b| b == 0) {
                    let msg: Vec<u8> = buf.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&msg[..end]) {
                        if txv.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            ns: ns.to_string(),
            child: Some(child),
            tx: File::from(cmd_w),
            rx,
            reader: Some(reader),
            session: String::new(),
            next_id: 0,
            profile,
            log,
            exceptions: Vec::new(),
            console_errors: Vec::new(),
        };
        let target = b.call_browser("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or_else(|| anyhow!("Target.createTarget answered {target}"))?
            .to_string();
        let att = b.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        b.session = att["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("Target.attachToTarget answered {att}"))?
            .to_string();
        b.call("Runtime.enable", json!({}))?;
        b.call("Log.enable", json!({}))?;
        b.viewport(width, height, false)?;
        Ok(b)
    }

    /// The last `n` lines of the browser's stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn send(&mut self, method: &str, params: Value, session: bool) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if session {
            msg["sessionId"] = Value::String(self.session.clone());
        }
        let mut bytes = serde_json::to_vec(&msg)?;
        bytes.push(0);
        self.tx
            .write_all(&bytes)
            .with_context(|| format!("sending {method} to chromium"))?;
        let deadline = Instant::now() + CDP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) if v["id"].as_u64() == Some(id) => {
                    if let Some(e) = v.get("error") {
                        bail!("{method}: DevTools error {e}");
                    }
                    return Ok(v["result"].clone());
                }
                Ok(v) => self.note_event(&v),
                Err(RecvTimeoutError::Timeout) => bail!(
                    "{method}: no answer from chromium within {CDP_TIMEOUT:?}; its log:\n{}",
                    self.log_tail(20)
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let st = self
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten());
                    bail!(
                        "{method}: chromium closed the DevTools pipe (exit status {st:?}); its log:\n{}",
                        self.log_tail(20)
                    )
                }
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Result<Value> {
        self.send(method, params, false)
    }

    /// A DevTools call on the page.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.send(method, params, true)
    }

    fn note_event(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let d = &p["exceptionDetails"];
                let text = d["exception"]["description"]
                    .as_str()
                    .or_else(|| d["text"].as_str())
                    .unwrap_or("exception");
                self.exceptions.push(text.to_string());
            }
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                x["value"]
                                    .as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| x["description"].to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.console_errors
                    .push(format!("console.error: {}", args.join(" ")));
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                let e = &p["entry"];
                self.console_errors.push(format!(
                    "{}: {}{}",
                    e["source"].as_str().unwrap_or("log"),
                    e["text"].as_str().unwrap_or(""),
                    e["url"]
                        .as_str()
                        .map(|u| format!(" ({u})"))
                        .unwrap_or_default()
                ));
            }
            _ => {}
        }
    }

    /// Handles the events that arrived since the last call.
    pub fn drain_events(&mut self) {
        while let Ok(v) = self.rx.try_recv() {
            self.note_event(&v);
        }
    }

    /// Sets the page's viewport (CSS pixels; `mobile` turns on the mobile meta-viewport
    /// handling).
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) -> Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )?;
        Ok(())
    }

    /// Emulates `prefers-color-scheme: dark` (or light).
    pub fn dark(&mut self, on: bool) -> Result<()> {
        let v = if on { "dark" } else { "light" };
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": v}]}),
        )?;
        Ok(())
    }

    /// Loads `url` (returns once the navigation is committed, not when scripts have run).
    pub fn navigate(&mut self, url: &str) -> Result<()> {
        let r = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(e) = r["errorText"].as_str().filter(|e| !e.is_empty()) {
            bail!("navigating to {url} in {}: {e}", self.ns);
        }
        Ok(())
    }

    /// Evaluates a JavaScript expression in the page and returns its value (JSON-serialisable
    /// values only; promises are awaited).
    pub fn eval(&mut self, expr: &str) -> Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(d) = r.get("exceptionDetails") {
            bail!(
                "evaluating in the page threw: {}",
                d["exception"]["description"]
                    .as_str()
                    .or_else(|| d["text"].as_str())
                    .unwrap_or("?")
            );
        }
        Ok(r["result"]["value"].clone())
    }

    /// A PNG of the viewport, written to `path` (parent directories are created).
    pub fn screenshot(&mut self, path: &Path) -> Result<u64> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = r["data"]
            .as_str()
            .ok_or_else(|| anyhow!("Page.captureScreenshot returned no data"))?;
        let png = base64_decode(data)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, &png).with_context(|| format!("writing {}", path.display()))?;
        Ok(png.len() as u64)
    }

    /// Closes the browser: `Browser.close`, up to 3 s for it to exit, then SIGKILL to its process
    /// group. Idempotent.
    pub fn close(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let mut bytes = serde_json::to_vec(&json!({"id": 0, "method": "Browser.close"}))
                .unwrap_or_default();
            bytes.push(0);
            let _ = self.tx.write_all(&bytes);
            let _ = cmd::wait_child(&mut child, Duration::from_secs(3));
        }
        // whatever is left of the browser's process group (zygote, renderers)
        // SAFETY: kill(2) on the process group we created for our own child.
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.close();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` from inside namespace `ns` with the management client, bounded by `timeout`.
pub fn http_get(ns: &str, addr: SocketAddr, path: &str, timeout: Duration) -> Result<HttpResponse> {
    let client = Client::new(Target::from_url(&format!("http://{addr}"))?).with_timeout(timeout);
    let r = nsnet::in_netns(ns, move || {
        client
            .send_blocking(&Request::get(path).header("Accept", "*/*"))
            .with_context(|| format!("GET {path} from {addr} in {ns}"))
    })?;
    let headers = r
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(HttpResponse {
        status: r.status,
        headers,
        body: r.body,
    })
}

/// Decodes standard base64 (with or without padding; whitespace ignored).
pub fn base64_decode(s: &str) -> Result<Vec<u8>> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::{DecodePaddingMode, Engine};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = s.split_ascii_whitespace().collect();
    LENIENT
        .decode(compact)
        .map_err(|e| anyhow!("invalid base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn decodes_base64() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(
            base64_decode("iVBORw0K\nGgo=").unwrap(),
            b"\x89PNG\r\n\x1a\n"
        );
        assert!(base64_decode("Zm9v!").is_err());
    }
}
