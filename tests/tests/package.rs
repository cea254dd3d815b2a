//! The Debian package as an administrator meets it: `packaging/build-deb` builds it (from the binaries
//! this `cargo test` built), lintian checks it, it is installed with dpkg into a fresh Debian root made
//! by debootstrap, and then:
//! - `package_installs_as_debian_expects`: the file list, the conffile, `--version` and `--help` of the
//!   installed binaries, every man page rendered by `man -l` without a warning, `systemd-analyze verify`
//!   on the installed units (and their `systemd-analyze security` exposure, printed and bounded), the
//!   user and directories the postinst made, and a purge that cleans up.
//! - `installed_daemons_mesh_in_namespaces`: the installed supernode and two installed edges, run from
//!   their installed paths with configs in ROOT/etc/weft (chroot, in network namespaces). The supernode
//!   and edge e1 start as root with `user = weft` and drop to weft themselves (the edge keeping only
//!   CAP_NET_ADMIN, which it uses after the drop to set the address the supernode assigns); edge e2
//!   runs as weft-edge@.service would (the README's four-line config, started as weft with an ambient
//!   CAP_NET_ADMIN and NOTIFY_SOCKET set: it must say READY=1). The edges ping each other, SIGHUP
//!   reloads, and weftctl from the package answers.
//!
//! Needs root and the Debian packages debootstrap, dpkg-dev, binutils, lintian, man-db and systemd
//! (`.ci/run` installs them); without root it prints a SKIP line. The debootstrapped root is cached under
//! `<target>/weft-package/` (keyed by suite and included packages; about a minute to make, once) and
//! copied afresh for every run.

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use weft_e2e::cmd::Output;
use weft_e2e::daemon::{find_bin, first_ping};
use weft_e2e::{ping, report, require_root_or_skip, run_e2e, EdgeConfig, SupernodeConfig, Testbed};

/// Packages added to debootstrap's minbase: adduser for the postinst, systemd (for its units'
/// verification against a real systemd tree), procps for /bin/kill (ExecReload).
const INCLUDE: &str = "adduser,systemd,procps";
const MIRROR: &str = "http://deb.debian.org/debian";

fn run(program: &str, args: &[&str], timeout: Duration) -> Result<Output> {
    weft_e2e::cmd::run(program, args, timeout).with_context(|| format!("{program} {args:?}"))
}

fn ok(program: &str, args: &[&str], timeout: Duration) -> Result<String> {
    let o = run(program, args, timeout)?;
    ensure!(
        o.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        o.status,
        o.stdout,
        o.stderr
    );
    Ok(o.stdout)
}

fn in_root(root: &Path, args: &[&str]) -> Result<String> {
    let mut a = vec![root.to_str().expect("utf-8 path")];
    a.extend_from_slice(args);
    ok("chroot", &a, Duration::from_secs(60))
}

/// The workspace (for packaging/build-deb).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// This host's Debian suite (the fresh root is of the same one, so the binaries' libc matches).
fn suite() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|s| s.trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bookworm".into())
}

/// What every test here shares: the package, and a fresh root it is installed in.
struct Installed {
    deb: PathBuf,
    /// The pristine debootstrapped root (never modified).
    pristine: PathBuf,
    /// A copy of it with the package installed.
    root: PathBuf,
    lintian: std::process::Output,
}

fn missing_tools() -> Vec<&'static str> {
    [
        ("debootstrap", "debootstrap"),
        ("dpkg-shlibdeps", "dpkg-dev"),
        ("strip", "binutils"),
        ("lintian", "lintian"),
        ("man", "man-db"),
        ("systemd-analyze", "systemd"),
    ]
    .into_iter()
    .filter(|(tool, _)| {
        !std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
    })
    .map(|(_, pkg)| pkg)
    .collect()
}

/// Copies `from` to a fresh `to` (removed first), keeping owners, modes and device nodes.
fn fresh_copy(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    ok(
        "cp",
        &["-a", from.to_str().unwrap(), to.to_str().unwrap()],
        Duration::from_secs(300),
    )?;
    Ok(())
}

/// Installs the package into `root` with the root's own dpkg (so the postinst runs there).
fn install(root: &Path, deb: &Path) -> Result<()> {
    let inside = Path::new("/tmp").join(deb.file_name().unwrap());
    std::fs::copy(deb, root.join(inside.strip_prefix("/").unwrap()))?;
    in_root(root, &["dpkg", "-i", inside.to_str().unwrap()])?;
    Ok(())
}

fn prepare() -> Result<Installed> {
    let missing = missing_tools();
    ensure!(
        missing.is_empty(),
        "missing tools; apt-get install {}",
        missing.join(" ")
    );
    let bin_dir = find_bin("weft-edge")?
        .parent()
        .expect("a binary is in a directory")
        .to_path_buf();
    // <target>/<profile>/weft-edge
    let cache = bin_dir
        .parent()
        .context("the binaries are in <target>/<profile>")?
        .join("weft-package");
    std::fs::create_dir_all(&cache)?;

    let t = Instant::now();
    let deb_dir = cache.join("deb");
    let out = ok(
        workspace().join("packaging/build-deb").to_str().unwrap(),
        &[
            "--bin-dir",
            bin_dir.to_str().unwrap(),
            "--out",
            deb_dir.to_str().unwrap(),
        ],
        Duration::from_secs(300),
    )?;
    let deb = PathBuf::from(out.lines().last().unwrap_or_default().trim());
    ensure!(deb.is_file(), "build-deb printed {out:?}, not a .deb");
    report(&format!(
        "package: built {} in {:.1} s",
        deb.display(),
        t.elapsed().as_secs_f64()
    ));

    let t = Instant::now();
    let lintian = Command::new("lintian")
        .args([
            "--allow-root",
            "--pedantic",
            "--fail-on",
            "error,warning,info,pedantic",
        ])
        .arg(&deb)
        .output()
        .context("lintian")?;
    report(&format!(
        "package: lintian in {:.1} s",
        t.elapsed().as_secs_f64()
    ));

    let suite = suite();
    let pristine = cache.join(format!("debootstrap-{suite}-{}", INCLUDE.replace(',', "+")));
    if !pristine.is_dir() {
        let t = Instant::now();
        let tmp = pristine.with_extension("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        let mirror = std::env::var("WEFT_DEBOOTSTRAP_MIRROR").unwrap_or_else(|_| MIRROR.into());
        ok(
            "debootstrap",
            &[
                "--variant=minbase",
                &format!("--include={INCLUDE}"),
                &suite,
                tmp.to_str().unwrap(),
                &mirror,
            ],
            Duration::from_secs(900),
        )?;
        std::fs::rename(&tmp, &pristine)?;
        report(&format!(
            "package: debootstrap {suite} (minbase + {INCLUDE}) in {:.0} s, cached in {}",
            t.elapsed().as_secs_f64(),
            pristine.display()
        ));
    }

    let t = Instant::now();
    let root = cache.join("root");
    fresh_copy(&pristine, &root)?;
    install(&root, &deb)?;
    report(&format!(
        "package: fresh root and dpkg -i in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    Ok(Installed {
        deb,
        pristine,
        root,
        lintian,
    })
}

/// The package installed in a fresh root, made once per test process.
fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Result<Installed, String>> = OnceLock::new();
    match INSTALLED.get_or_init(|| prepare().map_err(|e| format!("{e:#}"))) {
        Ok(i) => i,
        Err(e) => panic!("could not build and install the package: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn package_installs_as_debian_expects() {
    if !require_root_or_skip("package::package_installs_as_debian_expects") {
        return;
    }
    let i = installed();
    if let Err(e) = check_installed(i) {
        panic!("{e:#}");
    }
}

fn check_installed(i: &Installed) -> Result<()> {
    let root = &i.root;
    // lintian: clean, overrides aside (each says why: packaging/debian/lintian-overrides).
    let lint = format!(
        "{}{}",
        String::from_utf8_lossy(&i.lintian.stdout),
        String::from_utf8_lossy(&i.lintian.stderr)
    );
    let tags: Vec<&str> = lint
        .lines()
        .filter(|l| !l.contains("running with root privileges"))
        .collect();
    ensure!(
        i.lintian.status.success() && tags.is_empty(),
        "lintian is not clean ({}):\n{lint}",
        i.lintian.status
    );

    // The files, where Debian wants them.
    let files = in_root(root, &["dpkg", "-L", "weft"])?;
    for want in [
        "/usr/sbin/weft-edge",
        "/usr/sbin/weft-supernode",
        "/usr/bin/weftctl",
        "/usr/share/man/man8/weft-edge.8.gz",
        "/usr/share/man/man8/weft-supernode.8.gz",
        "/usr/share/man/man8/weftctl.8.gz",
        "/usr/share/man/man5/weft.conf.5.gz",
        "/usr/share/bash-completion/completions/weft-edge",
        "/usr/share/bash-completion/completions/weftctl",
        "/usr/share/zsh/vendor-completions/_weft-edge",
        "/usr/share/zsh/vendor-completions/_weftctl",
        "/usr/share/fish/vendor_completions.d/weft-edge.fish",
        "/usr/share/fish/vendor_completions.d/weftctl.fish",
        "/usr/share/doc/weft/examples/edge.conf",
        "/usr/share/doc/weft/examples/supernode.conf",
        "/usr/share/doc/weft/copyright",
        "/usr/share/doc/weft/changelog.Debian.gz",
        "/etc/weft/supernode.conf",
        "/lib/systemd/system/weft-edge@.service",
        "/lib/systemd/system/weft-edge.target",
        "/lib/systemd/system/weft-supernode.service",
    ] {
        ensure!(
            files.lines().any(|l| l == want),
            "{want} is not in the package; dpkg -L weft:\n{files}"
        );
    }
    let conffiles = in_root(root, &["dpkg-query", "-W", "-f=${Conffiles}", "weft"])?;
    ensure!(
        conffiles.contains("/etc/weft/supernode.conf"),
        "conffiles: {conffiles}"
    );

    // --version and --help from the installed paths.
    for bin in [
        "/usr/sbin/weft-edge",
        "/usr/sbin/weft-supernode",
        "/usr/bin/weftctl",
    ] {
        let name = Path::new(bin).file_name().unwrap().to_str().unwrap();
        let v = in_root(root, &[bin, "--version"])?;
        ensure!(
            v.starts_with(&format!("{name} {} (git ", env!("CARGO_PKG_VERSION"))),
            "{bin} --version: {v}"
        );
        let h = in_root(root, &[bin, "--help"])?;
        ensure!(
            h.contains(&format!("man 8 {name}")),
            "{bin} --help does not point to the manual:\n{h}"
        );
        report(&format!("package: {bin} --version: {}", v.trim()));
    }

    // Every man page renders, without a warning.
    for page in [
        "usr/share/man/man8/weft-edge.8.gz",
        "usr/share/man/man8/weft-supernode.8.gz",
        "usr/share/man/man8/weftctl.8.gz",
        "usr/share/man/man5/weft.conf.5.gz",
    ] {
        let path = root.join(page);
        let o = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .context("man")?;
        let text = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        ensure!(
            o.status.success() && text.contains("NAME") && text.lines().count() > 30,
            "man -l {page} failed ({}):\n{err}\n{text}",
            o.status
        );
        ensure!(err.trim().is_empty(), "man -l {page} warns:\n{err}");
    }

    // The units, as installed, against the root's own systemd tree; Documentation= pages from the root.
    let root_s = root.to_str().unwrap();
    let units = [
        "weft-edge@home.service",
        "weft-supernode.service",
        "weft-edge.target",
    ];
    let mut args = vec!["verify", "--root", root_s];
    args.extend(units);
    let o = Command::new("systemd-analyze")
        .args(&args)
        .env("MANPATH", root.join("usr/share/man"))
        .output()
        .context("systemd-analyze verify")?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        o.status.success() && err.trim().is_empty(),
        "systemd-analyze verify {units:?} ({}):\n{err}",
        o.status
    );
    for (unit, max) in [
        ("weft-edge@home.service", 2.5),
        ("weft-supernode.service", 2.0),
    ] {
        let out = ok(
            "systemd-analyze",
            &["security", "--offline=true", "--root", root_s, unit],
            Duration::from_secs(60),
        )?;
        let exposure: f64 = out
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split(": ").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no exposure in:\n{out}"))?;
        report(&format!(
            "package: systemd-analyze security {unit}: exposure {exposure}"
        ));
        ensure!(
            exposure <= max,
            "{unit}: exposure {exposure} > {max}:\n{out}"
        );
    }

    // The postinst: the system user, its state directory, /etc/weft readable by the group weft only.
    let pw = in_root(root, &["getent", "passwd", "weft"])?;
    let fields: Vec<&str> = pw.trim().split(':').collect();
    ensure!(
        fields.len() == 7 && fields[5] == "/var/lib/weft" && fields[6].ends_with("nologin"),
        "user weft: {pw}"
    );
    let uid: u32 = fields[2].parse()?;
    ensure!(uid < 1000, "weft is not a system user: {pw}");
    let st = in_root(
        root,
        &["stat", "-c", "%U:%G %a", "/var/lib/weft", "/etc/weft"],
    )?;
    ensure!(
        st.lines().collect::<Vec<_>>() == ["weft:weft 750", "root:weft 750"],
        "owners and modes of /var/lib/weft and /etc/weft: {st}"
    );
    // Nothing enabled or started by the installation.
    for dir in [
        "etc/systemd/system/multi-user.target.wants",
        "etc/systemd/system/weft-edge.target.wants",
    ] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir)) {
            for e in rd.flatten() {
                ensure!(
                    !e.file_name().to_string_lossy().starts_with("weft"),
                    "the package enabled {:?}",
                    e.path()
                );
            }
        }
    }

    // A purge, in a root of its own: state, runtime and configuration go, with the permission override.
    let purge_root = root.with_file_name("root-purge");
    fresh_copy(&i.pristine, &purge_root)?;
    install(&purge_root, &i.deb)?;
    std::fs::write(
        purge_root.join("etc/weft/home.conf"),
        "[community]\nname = x\n",
    )?;
    std::fs::create_dir_all(purge_root.join("var/lib/weft/home"))?;
    in_root(&purge_root, &["dpkg", "--purge", "weft"])?;
    for gone in [
        "var/lib/weft",
        "etc/weft",
        "usr/sbin/weft-edge",
        "lib/systemd/system/weft-edge@.service",
    ] {
        ensure!(
            !purge_root.join(gone).exists(),
            "/{gone} survived the purge"
        );
    }
    // (exit status 1 when the list is empty)
    let overrides = run(
        "chroot",
        &[purge_root.to_str().unwrap(), "dpkg-statoverride", "--list"],
        Duration::from_secs(30),
    )?;
    ensure!(
        !overrides.stdout.contains("weft"),
        "statoverride left: {}",
        overrides.stdout
    );
    std::fs::remove_dir_all(&purge_root)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------

#[test]
fn installed_daemons_mesh_in_namespaces() {
    // The package is made before the testbed's time budget starts (it may debootstrap first).
    if !require_root_or_skip("package::installed_daemons_mesh_in_namespaces") {
        return;
    }
    let i = installed();
    run_e2e(
        "package::installed_daemons_mesh_in_namespaces",
        Duration::from_secs(60),
        |tb| mesh_body(tb, &i.root),
    );
}

/// `Uid:` and the capability lines of /proc/PID/status.
fn proc_status(pid: u32) -> Result<(u32, u64, u64, u64, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    let cap = |name: &str| -> Result<u64> { Ok(u64::from_str_radix(&field(name)?, 16)?) };
    Ok((
        field("Uid:")?.parse()?,
        cap("CapEff:")?,
        cap("CapPrm:")?,
        cap("CapBnd:")?,
        field("NoNewPrivs:")? == "1",
    ))
}

fn mesh_body(tb: &Testbed, root: &Path) -> Result<()> {
    // The chroot needs the TAP clone device (debootstrap's /dev has no /dev/net).
    if !root.join("dev/net/tun").exists() {
        std::fs::create_dir_all(root.join("dev/net"))?;
        ok(
            "mknod",
            &[
                "-m",
                "0666",
                root.join("dev/net/tun").to_str().unwrap(),
                "c",
                "10",
                "200",
            ],
            Duration::from_secs(5),
        )?;
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd"))?;
    let weft_uid: u32 = passwd
        .lines()
        .find_map(|l| l.strip_prefix("weft:"))
        .and_then(|rest| rest.split(':').nth(1))
        .context("no user weft in the root")?
        .parse()?;

    let sn_host = tb.add_public_host("sn", false)?;
    let h1 = tb.add_public_host("e1", false)?;
    let h2 = tb.add_public_host("e2", false)?;
    let as_weft = vec!["daemon.user=weft".to_string()];
    let sn_cfg = SupernodeConfig {
        overrides: as_weft.clone(),
        ..SupernodeConfig::default()
    };
    let sn = tb.start_supernode_in(&sn_host, &sn_cfg, Some(root))?;
    sn.wait_ready(tb, Duration::from_secs(10))?;

    // e1: started as root with `user = weft`: it drops privileges itself. Its address comes from the
    // supernode (address_mode auto), so it sets it after the drop, with the CAP_NET_ADMIN it kept.
    let mut e1_cfg = EdgeConfig::new(weft_e2e::COMMUNITY, weft_e2e::SECRET, &sn.addr());
    e1_cfg.overrides = as_weft.clone();
    let e1 = tb.start_edge_in(&h1, &e1_cfg, Some(root))?;

    // e2: as weft-edge@.service runs it: the README's four-line config, written the README's way; the
    // state and runtime directories made for weft as StateDirectory=/RuntimeDirectory= do; started as
    // weft with CAP_NET_ADMIN only (setpriv standing in for User=, AmbientCapabilities= and
    // CapabilityBoundingSet=), with NOTIFY_SOCKET pointing at a socket of ours, for READY=1.
    let s2 = tb.session_name("e2");
    let readme_conf = format!(
        "[community]\nname = {}\nkey = {}\nsupernode = {}\n",
        weft_e2e::COMMUNITY,
        weft_e2e::SECRET,
        sn.addr()
    );
    // (The README reads the file from /dev/stdin, which needs the /proc this chroot lacks.)
    std::fs::write(root.join(format!("tmp/{s2}.conf")), &readme_conf)?;
    in_root(
        root,
        &[
            "install",
            "-m",
            "640",
            "-g",
            "weft",
            &format!("/tmp/{s2}.conf"),
            &format!("/etc/weft/{s2}.conf"),
        ],
    )?;
    for dir in [format!("/run/weft/{s2}"), format!("/var/lib/weft/{s2}")] {
        in_root(
            root,
            &[
                "install", "-d", "-o", "weft", "-g", "weft", "-m", "0750", &dir,
            ],
        )?;
    }
    let notify_path = root.join(format!("run/notify-{s2}"));
    let _ = std::fs::remove_file(&notify_path);
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path)?;
    std::fs::set_permissions(
        &notify_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )?;
    notify.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut e2_cfg = EdgeConfig::new(weft_e2e::COMMUNITY, weft_e2e::SECRET, &sn.addr());
    e2_cfg.file = Some(readme_conf);
    // The harness looks for the TAP device by this name.
    e2_cfg.overrides = vec![format!("tuntap.name={}", e2_cfg.tap)];
    e2_cfg.launcher = [
        "setpriv",
        "--reuid=weft",
        "--regid=weft",
        "--clear-groups",
        "--inh-caps=-all,+net_admin",
        "--ambient-caps=-all,+net_admin",
        "--bounding-set=-all,+net_admin",
        "--no-new-privs",
    ]
    .map(String::from)
    .to_vec();
    e2_cfg.env = vec![("NOTIFY_SOCKET".into(), format!("/run/notify-{s2}"))];
    let e2 = tb.start_edge_in(&h2, &e2_cfg, Some(root))?;

    e1.wait_registered(tb, Duration::from_secs(15))?;
    e2.wait_registered(tb, Duration::from_secs(15))?;
    let ip1 = e1.wait_vpn_ip(tb, Duration::from_secs(15))?;
    let ip2 = e2.wait_vpn_ip(tb, Duration::from_secs(15))?;
    let took = first_ping(tb, &e1, ip2, Duration::from_secs(15))?;
    tb.figure(&format!(
        "installed edges ({ip1}, {ip2}): first ping after {:.2} s",
        took.as_secs_f64()
    ));
    let p = ping(&e2.ns, &ip1.to_string(), 5, 0.2, 5, &[])?;
    ensure!(p.received == 5, "e2 -> e1: {}", p.output);

    // Type=notify: e2 said READY (it is registered, so it has sent its first registration by now).
    let mut said: Vec<String> = Vec::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && !said.iter().any(|m| m.contains("READY=1")) {
        if let Ok(n) = notify.recv(&mut buf) {
            said.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    ensure!(
        said.iter().any(|m| m.contains("READY=1")),
        "e2 never said READY=1 on NOTIFY_SOCKET; it said {said:?}"
    );
    tb.step(&format!("e2 notified {:?}", said.join(" | ")));

    // Least privilege, as the kernel sees it.
    const CAP_NET_ADMIN: u64 = 1 << 12;
    for (label, pid, caps) in [
        ("supernode", sn.pid(), 0),
        ("edge e1", e1.pid(), CAP_NET_ADMIN),
        ("edge e2 (as under systemd)", e2.pid(), CAP_NET_ADMIN),
    ] {
        let pid = pid.context("not running")?;
        let (uid, eff, prm, bnd, nnp) = proc_status(pid)?;
        ensure!(
            uid == weft_uid,
            "{label} runs as uid {uid}, not weft ({weft_uid})"
        );
        ensure!(
            eff == caps && prm == caps && bnd == caps && nnp,
            "{label}: CapEff {eff:x} CapPrm {prm:x} CapBnd {bnd:x} NoNewPrivs {nnp}, expected {caps:x}"
        );
    }
    tb.step("supernode and edges run as weft; the edges with CAP_NET_ADMIN only, the supernode with none");

    // SIGHUP reloads (systemd's ExecReload), the daemon keeps running.
    let pid = e1.pid().context("e1 not running")? as i32;
    // SAFETY: kill(2) on the pid of our own child.
    unsafe {
        libc::kill(pid, libc::SIGHUP);
    }
    tb.wait_until(
        "e1 to log the reload after SIGHUP",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            e1.ensure_running()?;
            Ok(std::fs::read_to_string(e1.log_path())?.contains("configuration reloaded"))
        },
    )?;

    // weftctl from the package, on the installed system's socket.
    let out = in_root(
        root,
        &[
            "/usr/bin/weftctl",
            "--session",
            &e1.session,
            "--json",
            "edges",
        ],
    )?;
    ensure!(out.contains(&ip2.to_string()), "weftctl edges: {out}");

    // The state the daemons wrote is the user's.
    let st = in_root(
        root,
        &[
            "stat",
            "-c",
            "%U",
            &format!("/var/lib/weft/{}/management.password", e1.session),
        ],
    )?;
    ensure!(st.trim() == "weft", "management.password owned by {st}");
    if !tb.remaining().is_zero() {
        Ok(())
    } else {
        bail!("out of time")
    }
}
