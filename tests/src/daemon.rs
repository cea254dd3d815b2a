//! The daemons: finding the binaries, writing their configs, running them inside a namespace
//! with their output in a per-test log file, stopping them (SIGTERM, 2 s, SIGKILL), and typed
//! management calls.

use crate::mgmt::{self, EdgeInfo, Peer, SnEdge, SnInfo};
use crate::testbed::{Host, Testbed};
use crate::wait::Fatal;
use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::ops::Deref;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limit for one management call.
pub const MGMT_TIMEOUT: Duration = Duration::from_secs(3);

/// Finds a daemon binary: in `$WEFT_BIN_DIR` if set, else next to the running executable
/// (`target/<profile>/` for the demo, its parent for a test in `target/<profile>/deps/`).
pub fn find_bin(name: &str) -> Result<PathBuf> {
    let env_dir = std::env::var_os("WEFT_BIN_DIR").map(PathBuf::from);
    let exe = std::env::current_exe().context("current_exe")?;
    locate_bin(name, env_dir.as_deref(), &exe)
}

/// [`find_bin`] with its inputs explicit.
pub fn locate_bin(name: &str, env_dir: Option<&Path>, exe: &Path) -> Result<PathBuf> {
    if let Some(dir) = env_dir {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
        bail!(
            "{name} not found in WEFT_BIN_DIR={}; build the daemons first: cargo build --workspace",
            dir.display()
        );
    }
    let mut tried = Vec::new();
    let mut dir = exe.parent();
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let p = d.join(name);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(d.display().to_string());
        dir = d.parent();
    }
    bail!(
        "{name} not found (looked in {}); build the daemons first: `cargo build --workspace` \
         (`cargo test --workspace` builds them too), or set WEFT_BIN_DIR to the directory holding \
         weft-edge and weft-supernode",
        tried.join(", ")
    )
}

/// `WEFT_KEY=<secret> weft-edge admission-key <community>`: the hex key for a community file.
pub fn admission_key(community: &str, secret: &str) -> Result<String> {
    admission_key_with(community, secret, &[])
}

/// The same with more arguments (`--kdf-memory KIB`, `--kdf-passes N` for a passphrase).
pub fn admission_key_with(community: &str, secret: &str, extra: &[&str]) -> Result<String> {
    let bin = find_bin("weft-edge")?;
    let bin_s = bin.to_string_lossy().into_owned();
    let mut args = vec!["admission-key", community];
    args.extend_from_slice(extra);
    let o = crate::cmd::run_with(
        &bin_s,
        &args,
        None,
        &[("WEFT_KEY", secret)],
        Duration::from_secs(10),
    )?;
    if !o.status.success() {
        bail!(
            "weft-edge admission-key {community} failed ({}): {}",
            o.status,
            o.stderr.trim()
        );
    }
    let key = o
        .stdout
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    if key.len() < 16 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "weft-edge admission-key printed {:?}, expected a hex key",
            o.stdout.trim()
        );
    }
    Ok(key)
}

/// How an edge gets its VPN address.
#[derive(Clone, Debug)]
pub enum Address {
    /// `address = 10.200.0.1/24`
    Static(String),
    /// `address_mode = auto`: the supernode assigns one.
    Auto,
}

/// A supernode config.
#[derive(Clone, Debug)]
pub struct SupernodeConfig {
    pub port: u16,
    pub community_file: Option<PathBuf>,
    pub auto_ip: Option<(String, String)>,
    pub verbose: u8,
    /// Extra `-O section.option=value` arguments.
    pub overrides: Vec<String>,
}

impl Default for SupernodeConfig {
    fn default() -> Self {
        SupernodeConfig {
            port: 7700,
            community_file: None,
            auto_ip: None,
            verbose: 3,
            overrides: Vec::new(),
        }
    }
}

impl SupernodeConfig {
    /// The config file; without `state_dir`, the daemon's default (/var/lib/weft/<session>).
    pub fn render(&self, state_dir: Option<&Path>) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "[connection]\nbind = 0.0.0.0:{}\n", self.port);
        s.push_str("[supernode]\n");
        if let Some(f) = &self.community_file {
            let _ = writeln!(s, "community_file = {}", f.display());
        }
        if let Some((min, max)) = &self.auto_ip {
            let _ = writeln!(s, "auto_ip_min = {min}\nauto_ip_max = {max}");
        }
        if let Some(dir) = state_dir {
            let _ = writeln!(s, "\n[daemon]\nstate_dir = {}", dir.display());
        }
        let _ = writeln!(s, "\n[logging]\nverbose = {}", self.verbose);
        s
    }
}

/// An edge config.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    pub community: String,
    pub key: String,
    pub supernodes: Vec<String>,
    pub tap: String,
    pub address: Address,
    pub mtu: Option<u32>,
    pub macaddr: Option<String>,
    /// Defaults to the host's role.
    pub description: Option<String>,
    pub bind: String,
    pub allow_p2p: bool,
    pub advertise: Vec<String>,
    /// `[community] allow_peer` lines (public keys).
    pub allow_peers: Vec<String>,
    pub verbose: u8,
    /// Extra `-O section.option=value` arguments.
    pub overrides: Vec<String>,
    /// Words run before the daemon's binary (inside the root when installed), e.g. `setpriv ...`;
    /// each must exec the next, so that the child's pid stays the daemon's.
    pub launcher: Vec<String>,
    /// Extra environment of the daemon.
    pub env: Vec<(String, String)>,
    /// The config file verbatim, instead of one rendered from the fields above.
    pub file: Option<String>,
}

impl EdgeConfig {
    /// Community, secret and one supernode (`ip:port`); TAP `wft0`, address_mode auto, any
    /// UDP port, p2p allowed, verbose 3.
    pub fn new(community: &str, key: &str, supernode: &str) -> EdgeConfig {
        EdgeConfig {
            community: community.into(),
            key: key.into(),
            supernodes: vec![supernode.into()],
            tap: "wft0".into(),
            address: Address::Auto,
            mtu: None,
            macaddr: None,
            description: None,
            bind: "0.0.0.0:0".into(),
            allow_p2p: true,
            advertise: Vec::new(),
            allow_peers: Vec::new(),
            verbose: 3,
            overrides: Vec::new(),
            launcher: Vec::new(),
            env: Vec::new(),
            file: None,
        }
    }
    pub fn static_ip(mut self, cidr: &str) -> Self {
        self.address = Address::Static(cidr.into());
        self
    }
    pub fn bind(mut self, bind: &str) -> Self {
        self.bind = bind.into();
        self
    }
    pub fn description(mut self, d: &str) -> Self {
        self.description = Some(d.into());
        self
    }

    /// The config file; without `state_dir`, the daemon's default (/var/lib/weft/<session>).
    pub fn render(&self, description: &str, state_dir: Option<&Path>) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "[community]\nname = {}\nkey = {}",
            self.community, self.key
        );
        for sn in &self.supernodes {
            let _ = writeln!(s, "supernode = {sn}");
        }
        for k in &self.allow_peers {
            let _ = writeln!(s, "allow_peer = {k}");
        }
        let _ = writeln!(s, "\n[tuntap]\nname = {}", self.tap);
        match &self.address {
            Address::Static(a) => {
                let _ = writeln!(s, "address_mode = static\naddress = {a}");
            }
            Address::Auto => s.push_str("address_mode = auto\n"),
        }
        if let Some(m) = self.mtu {
            let _ = writeln!(s, "mtu = {m}");
        }
        if let Some(m) = &self.macaddr {
            let _ = writeln!(s, "macaddr = {m}");
        }
        let _ = writeln!(s, "description = {description}");
        let _ = writeln!(
            s,
            "\n[connection]\nbind = {}\nallow_p2p = {}",
            self.bind, self.allow_p2p
        );
        for a in &self.advertise {
            let _ = writeln!(s, "advertise = {a}");
        }
        if let Some(dir) = state_dir {
            let _ = writeln!(s, "\n[daemon]\nstate_dir = {}", dir.display());
        }
        let _ = writeln!(s, "\n[logging]\nverbose = {}", self.verbose);
        s
    }
}

/// One daemon process (edge or supernode) in a namespace. Stopped on drop.
pub struct Daemon {
    /// e.g. "edge e1", "supernode sn"
    pub label: String,
    pub session: String,
    pub ns: String,
    /// For an installed package: the root directory of the system it is installed in. The daemon then
    /// runs as `chroot ROOT /usr/sbin/<daemon> start <session>`, reading ROOT/etc/weft/<session>.conf.
    root: Option<PathBuf>,
    launcher: Vec<String>,
    env: Vec<(String, String)>,
    bin: PathBuf,
    conf: PathBuf,
    log: PathBuf,
    overrides: Vec<String>,
    child: Mutex<Option<(Child, Instant)>>,
}

/// How a [`Daemon::stop`] went.
#[derive(Debug)]
pub struct Stopped {
    pub status: Option<ExitStatus>,
    /// True when SIGTERM was not enough within 2 s and SIGKILL was used.
    pub killed: bool,
    pub took: Duration,
}

impl Daemon {
    #[allow(clippy::too_many_arguments)]
    fn new(
        tb: &Testbed,
        kind: &str,
        role: &str,
        ns: &str,
        bin_name: &str,
        config: &str,
        overrides: Vec<String>,
        root: Option<&Path>,
        launcher: &[String],
        env: &[(String, String)],
    ) -> Result<Daemon> {
        let session = tb.session_name(role);
        let (bin, conf) = match root {
            None => (
                find_bin(bin_name)?,
                tb.dir().join(format!("{session}.conf")),
            ),
            Some(r) => (
                Path::new("/usr/sbin").join(bin_name),
                r.join("etc/weft").join(format!("{session}.conf")),
            ),
        };
        std::fs::write(&conf, config).with_context(|| format!("writing {}", conf.display()))?;
        let log = tb.dir().join(format!("{session}.log"));
        let label = format!("{kind} {role}");
        tb.register_daemon(&label, &session, &log);
        let d = Daemon {
            label,
            session,
            ns: ns.to_string(),
            root: root.map(Path::to_path_buf),
            launcher: launcher.to_vec(),
            env: env.to_vec(),
            bin,
            conf,
            log,
            overrides,
            child: Mutex::new(None),
        };
        d.start()?;
        Ok(d)
    }

    /// Starts the process (again, after [`Daemon::stop`]) with the same config; the log file
    /// is appended to.
    pub fn start(&self) -> Result<()> {
        let mut guard = self.child.lock().unwrap();
        if let Some((c, _)) = guard.as_mut() {
            if c.try_wait()?.is_none() {
                bail!("{} is already running", self.label);
            }
        }
        let mut args: Vec<String> = vec!["netns".into(), "exec".into(), self.ns.clone()];
        if let Some(r) = &self.root {
            args.extend(["chroot".into(), r.to_string_lossy().into_owned()]);
        }
        args.extend(self.launcher.iter().cloned());
        match &self.root {
            None => args.extend([
                self.bin.to_string_lossy().into_owned(),
                "start".into(),
                self.conf.to_string_lossy().into_owned(),
            ]),
            // chroot(8) execs the daemon too: the child's pid stays the daemon's.
            Some(_) => args.extend([
                self.bin.to_string_lossy().into_owned(),
                "start".into(),
                self.session.clone(),
            ]),
        }
        for o in &self.overrides {
            args.push("-O".into());
            args.push(o.clone());
        }
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let _ = writeln!(log, "=== harness: starting ip {}", args.join(" "));
        let err = log.try_clone()?;
        // `ip netns exec` execs the daemon, so the child's pid is the daemon's.
        let child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .env("RUST_BACKTRACE", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", self.label))?;
        *guard = Some((child, Instant::now()));
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(|(c, _)| c.id())
    }

    /// The daemon's management socket.
    pub fn socket(&self) -> PathBuf {
        match &self.root {
            None => mgmt::socket_path(&self.session),
            Some(r) => r.join("run/weft").join(&self.session).join("mgmt"),
        }
    }

    /// The config file it was started with (rewrite it, then reload, to test a reload).
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// A [`Fatal`] error when the process is not running (any more).
    pub fn ensure_running(&self) -> Result<()> {
        let mut guard = self.child.lock().unwrap();
        let Some((c, started)) = guard.as_mut() else {
            return Err(Fatal(format!("{} is not running (stopped)", self.label)).into());
        };
        if let Some(st) = c.try_wait()? {
            let early = started.elapsed() < Duration::from_secs(2);
            let hint = if early && st.success() {
                " (it exited at once with success: is the binary still a placeholder? build the \
                 daemons with `cargo build --workspace`)"
            } else {
                ""
            };
            return Err(Fatal(format!(
                "{} ({}) exited with {st} after {:.1} s{hint}; last log lines:\n{}",
                self.label,
                self.bin.display(),
                started.elapsed().as_secs_f64(),
                self.log_tail(20)
            ))
            .into());
        }
        Ok(())
    }

    /// A management call (checks first that the process still runs).
    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.ensure_running()?;
        mgmt::call(&self.socket(), method, params, MGMT_TIMEOUT)
            .with_context(|| format!("{}: {method}", self.label))
    }

    /// A management call without parameters, decoded.
    pub fn call_as<T: DeserializeOwned>(&self, method: &str) -> Result<T> {
        self.ensure_running()?;
        mgmt::call_as(&self.socket(), method, MGMT_TIMEOUT)
            .with_context(|| format!("{}: {method}", self.label))
    }

    /// Waits until the management socket answers `get_info`.
    pub fn wait_ready(&self, tb: &Testbed, timeout: Duration) -> Result<Duration> {
        tb.wait_until(
            &format!("{} to answer on {}", self.label, self.socket().display()),
            timeout,
            Duration::from_millis(50),
            || self.call("get_info", Value::Null).map(|_| true),
        )
    }

    /// SIGTERM, wait up to 2 s, then SIGKILL. Idempotent.
    pub fn stop(&self) -> Result<Stopped> {
        let t0 = Instant::now();
        let mut guard = self.child.lock().unwrap();
        let Some((mut c, _)) = guard.take() else {
            return Ok(Stopped {
                status: None,
                killed: false,
                took: Duration::ZERO,
            });
        };
        if let Some(st) = c.try_wait()? {
            return Ok(Stopped {
                status: Some(st),
                killed: false,
                took: t0.elapsed(),
            });
        }
        // SAFETY: kill(2) on the pid of our own child, not yet reaped.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            if let Some(st) = c.try_wait()? {
                return Ok(Stopped {
                    status: Some(st),
                    killed: false,
                    took: t0.elapsed(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let st = c.wait().ok();
        if let Ok(mut log) = OpenOptions::new().append(true).open(&self.log) {
            let _ = writeln!(
                log,
                "=== harness: no exit within 2 s of SIGTERM, sent SIGKILL"
            );
        }
        Ok(Stopped {
            status: st,
            killed: true,
            took: t0.elapsed(),
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop();
        // a killed daemon cannot remove its runtime dir; this session name is ours alone
        let run = self
            .root
            .as_deref()
            .unwrap_or(Path::new("/"))
            .join("run/weft");
        let _ = std::fs::remove_dir_all(run.join(&self.session));
    }
}

/// A running supernode.
pub struct Supernode {
    pub d: Daemon,
    pub host: Host,
    pub port: u16,
}

impl Deref for Supernode {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.d
    }
}

impl Supernode {
    /// `ip:port` for edge configs.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host.public_ip, self.port)
    }
    pub fn info(&self) -> Result<SnInfo> {
        self.call_as("get_info")
    }
    pub fn edges(&self) -> Result<Vec<SnEdge>> {
        self.call_as("get_edges")
    }
}

/// A running edge.
pub struct Edge {
    pub d: Daemon,
    pub host: Host,
    pub cfg: EdgeConfig,
    pub role: String,
}

impl Deref for Edge {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.d
    }
}

impl Edge {
    pub fn info(&self) -> Result<EdgeInfo> {
        self.call_as("get_info")
    }
    pub fn peers(&self) -> Result<Vec<Peer>> {
        self.call_as("get_edges")
    }
    /// The TAP device name (as configured).
    pub fn tap(&self) -> &str {
        &self.cfg.tap
    }
    /// Waits until `get_info` says `registered: true`.
    pub fn wait_registered(&self, tb: &Testbed, timeout: Duration) -> Result<Duration> {
        tb.wait_until(
            &format!("{} to register with the supernode", self.label),
            timeout,
            Duration::from_millis(50),
            || Ok(self.info()?.registered),
        )
    }
    /// Waits until the edge has a VPN address (static: at once; auto: once assigned) and the
    /// address is on its TAP device.
    pub fn wait_vpn_ip(&self, tb: &Testbed, timeout: Duration) -> Result<Ipv4Addr> {
        let mut got = None;
        tb.wait_until(
            &format!("{} to have its VPN address on {}", self.label, self.tap()),
            timeout,
            Duration::from_millis(50),
            || {
                let Some(ip) = self.info()?.ipv4() else {
                    return Ok(false);
                };
                let out = crate::cmd::run_ok(
                    "ip",
                    &[
                        "-n",
                        &self.ns,
                        "-4",
                        "-o",
                        "addr",
                        "show",
                        "dev",
                        self.tap(),
                    ],
                )?;
                if out.contains(&format!("inet {ip}/")) {
                    got = Some(ip);
                    return Ok(true);
                }
                Ok(false)
            },
        )?;
        Ok(got.expect("set when the wait succeeded"))
    }
    /// Sum of rejected handshakes and all drop counters.
    pub fn refused(&self) -> Result<u64> {
        Ok(self.info()?.stats.refused())
    }
}

impl Testbed {
    /// The public key of the supernode that runs (or will run) in `host`, for its federation peers'
    /// `peer = HOST:PORT KEY` lines: its identity is created now in its state directory if it has none
    /// (`weft-supernode keygen`), where [`Testbed::start_supernode`] then finds it.
    pub fn supernode_key(&self, host: &Host) -> Result<String> {
        self.supernode_key_at(&host.role)
    }

    /// [`Testbed::supernode_key`] for the state directory of `role` (a role that never runs a supernode
    /// gives a key nobody holds).
    pub fn supernode_key_at(&self, role: &str) -> Result<String> {
        let state = self.dir().join("state").join(role);
        std::fs::create_dir_all(&state)?;
        let bin = find_bin("weft-supernode")?;
        let bin = bin.to_string_lossy().into_owned();
        let dir = state.to_string_lossy().into_owned();
        let command = if state.join("identity.key").exists() {
            "show-key"
        } else {
            "keygen"
        };
        let out = crate::cmd::run_ok(&bin, &[command, "--state-dir", &dir])?;
        let key = out
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string();
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "weft-supernode {command} printed {:?}, expected a 64-digit key",
                out.trim()
            );
        }
        Ok(key)
    }

    /// Writes a supernode config into the temp dir and starts `weft-supernode` in `host`.
    pub fn start_supernode(&self, host: &Host, cfg: &SupernodeConfig) -> Result<Supernode> {
        self.start_supernode_in(host, cfg, None)
    }

    /// [`Testbed::start_supernode`], or with `root`, the one installed in that root directory (config in
    /// ROOT/etc/weft, default state directory, run with chroot).
    pub fn start_supernode_in(
        &self,
        host: &Host,
        cfg: &SupernodeConfig,
        root: Option<&Path>,
    ) -> Result<Supernode> {
        let state = self.dir().join("state").join(&host.role);
        std::fs::create_dir_all(&state)?;
        self.step(&format!(
            "starting weft-supernode in {} on port {}",
            host.role, cfg.port
        ));
        let d = Daemon::new(
            self,
            "supernode",
            &host.role,
            &host.ns,
            "weft-supernode",
            &cfg.render(root.is_none().then_some(state.as_path())),
            cfg.overrides.clone(),
            root,
            &[],
            &[],
        )?;
        Ok(Supernode {
            d,
            host: host.clone(),
            port: cfg.port,
        })
    }

    /// Writes an edge config into the temp dir and starts `weft-edge` in `host`.
    pub fn start_edge(&self, host: &Host, cfg: &EdgeConfig) -> Result<Edge> {
        self.start_edge_in(host, cfg, None)
    }

    /// [`Testbed::start_edge`], or with `root`, the one installed in that root directory (config in
    /// ROOT/etc/weft, default state directory, run with chroot).
    pub fn start_edge_in(
        &self,
        host: &Host,
        cfg: &EdgeConfig,
        root: Option<&Path>,
    ) -> Result<Edge> {
        let state = self.dir().join("state").join(&host.role);
        std::fs::create_dir_all(&state)?;
        let desc = cfg.description.clone().unwrap_or_else(|| host.role.clone());
        self.step(&format!(
            "starting weft-edge {} in {} ({})",
            desc,
            host.role,
            match &cfg.address {
                Address::Static(a) => a.clone(),
                Address::Auto => "address_mode=auto".into(),
            }
        ));
        let d = Daemon::new(
            self,
            "edge",
            &host.role,
            &host.ns,
            "weft-edge",
            &cfg.file
                .clone()
                .unwrap_or_else(|| cfg.render(&desc, root.is_none().then_some(state.as_path()))),
            cfg.overrides.clone(),
            root,
            &cfg.launcher,
            &cfg.env,
        )?;
        Ok(Edge {
            d,
            host: host.clone(),
            cfg: cfg.clone(),
            role: host.role.clone(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// mesh helpers shared by the scenarios and the demo

/// Every edge's peer table, for error messages.
pub fn peer_tables(edges: &[&Edge]) -> String {
    let mut s = String::new();
    for e in edges {
        match e.peers() {
            Ok(peers) => {
                s.push_str(&format!("  {}:", e.role));
                if peers.is_empty() {
                    s.push_str(" (no peers)");
                }
                for p in peers {
                    s.push_str(&format!(
                        " [{} {} {} {}]",
                        p.name(),
                        p.state,
                        p.path,
                        p.addr.unwrap_or_default()
                    ));
                }
                s.push('\n');
            }
            Err(err) => s.push_str(&format!("  {}: get_edges failed: {err:#}\n", e.role)),
        }
    }
    s
}

/// Waits until every edge lists every other one as `up` with the given path.
pub fn wait_paths(
    tb: &Testbed,
    edges: &[&Edge],
    path: &str,
    timeout: Duration,
) -> Result<Duration> {
    let keys: Vec<String> = edges
        .iter()
        .map(|e| e.info().map(|i| i.public_key))
        .collect::<Result<_>>()?;
    tb.wait_until(
        &format!("every edge to see every other as up with path {path}"),
        timeout,
        Duration::from_millis(100),
        || {
            for (i, e) in edges.iter().enumerate() {
                let peers = e.peers()?;
                for (j, k) in keys.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    match peers.iter().find(|p| &p.public_key == k) {
                        Some(p) if p.state == "up" && p.path == path => {}
                        _ => return Ok(false),
                    }
                }
            }
            Ok(true)
        },
    )
    .with_context(|| format!("peer tables now:\n{}", peer_tables(edges)))
}

/// Pings until the first reply (retrying while the route is not there yet); returns the time.
pub fn first_ping(tb: &Testbed, from: &Edge, to: Ipv4Addr, timeout: Duration) -> Result<Duration> {
    let target = to.to_string();
    tb.wait_until(
        &format!("a first ping reply {} -> {to}", from.role),
        timeout,
        Duration::from_millis(100),
        || {
            from.ensure_running()?;
            let p = crate::ping::ping(&from.ns, &target, 1, 0.1, 2, &[])?;
            Ok(p.received >= 1)
        },
    )
}
