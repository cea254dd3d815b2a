#!/usr/bin/env python3
"""Weft's side-by-side yardstick (run it as `sudo bench/run`; see bench/README.md).

Builds Weft (release), installs the peers (iperf3, wireguard-go + wireguard-tools, nebula, tinc from Debian;
boringtun-cli from crates.io into bench/.tools), creates network namespaces `wfb<pid>-{a,b,sn}`, sets up every
VPN once between host A and host B, measures them interleaved for several rounds with iperf3 and ping, prints
one markdown table and writes the raw figures as JSON under bench/results/. Everything it starts is killed by
PID and every namespace it made is deleted on exit, also on Ctrl-C or SIGTERM.

Only the Python standard library is used. Every external command runs with a timeout; every loop is bounded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TOOLS = BENCH / ".tools"
RESULTS = BENCH / "results"

# Underlay (inside the namespaces only): A and B on one veth pair; the supernode's namespace hangs off A.
UL_A, UL_B, UL_NET = "10.99.0.1", "10.99.0.2", "10.99.0.0/24"
SN_ADDR = "10.99.8.2"
PING_COUNT_FULL, PING_COUNT_QUICK = 200, 100
LOSS_LIMIT = 1.0  # percent: "highest UDP rate with under 1 % loss"

T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", flush=True)


class Interrupted(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------
# processes and namespaces


class Ctx:
    """Everything this run created, so that cleanup can undo it."""

    def __init__(self, quick: bool):
        self.pid = os.getpid()
        self.prefix = f"wfb{self.pid}"
        self.ns = {h: f"{self.prefix}-{h}" for h in ("a", "b", "sn")}
        self.created_ns: list[str] = []
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.quick = quick
        self.cleanup_paths: list[Path] = []
        self.keep = False

    def ifname(self, kind: str, side: str) -> str:
        # unique on the host: wireguard-go and boringtun name their control sockets after the interface in
        # /run/wireguard, which every namespace shares
        return f"{kind}{self.pid}{side}"[:15]


CTX: Ctx | None = None


def run(cmd, ns: str | None = None, timeout: float = 30, check: bool = True, input: str | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs a command (inside namespace `ns` when given), bounded by `timeout` seconds."""
    cmd = [str(c) for c in cmd]
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           env=env)
    except subprocess.TimeoutExpired as e:
        if check:
            raise RuntimeError(f"timed out after {timeout}s: {' '.join(cmd)}") from e
        return subprocess.CompletedProcess(cmd, 124, "", f"timed out after {timeout}s")
    if check and p.returncode != 0:
        raise RuntimeError(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p


def start(name: str, cmd, ns: str, logfile: Path, env: dict | None = None) -> subprocess.Popen:
    """Starts a long-running daemon in `ns`. `ip netns exec` execs it, so the Popen pid is the daemon's.
    Its own session (process group) keeps a terminal's Ctrl-C from killing it before cleanup measures."""
    assert CTX is not None
    f = open(logfile, "ab")
    p = subprocess.Popen(["ip", "netns", "exec", ns] + [str(c) for c in cmd], stdin=subprocess.DEVNULL,
                         stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                         env={**os.environ, **(env or {})})
    f.close()
    CTX.procs.append((name, p))
    return p


def stop_proc(name: str, p: subprocess.Popen) -> None:
    if p.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(p.pid, sig)  # the group we created for it (its pid), so helpers it forked go too
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    log(f"warning: {name} (pid {p.pid}) did not exit")


def cleanup() -> None:
    global CTX
    ctx = CTX
    if ctx is None:
        return
    CTX = None
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for name, p in reversed(ctx.procs):
        stop_proc(name, p)
    ctx.procs.clear()
    for ns in reversed(ctx.created_ns):
        # anything still running inside our own namespaces was started by us: TERM, then KILL
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = run(["ip", "netns", "pids", ns], timeout=5, check=False).stdout.split()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(int(pid), sig)
                except (ProcessLookupError, ValueError):
                    pass
            for _ in range(20):
                if not run(["ip", "netns", "pids", ns], timeout=5, check=False).stdout.split():
                    break
                time.sleep(0.1)
        run(["ip", "netns", "del", ns], timeout=10, check=False)
    ctx.created_ns.clear()
    if not ctx.keep:
        ctx.cleanup_paths.append(ctx.tmp)  # configs, keys, logs
    else:
        log(f"kept the work dir (configs, keys, logs): {ctx.tmp}")
    for p in ctx.cleanup_paths:
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    left = [l for l in run(["ip", "netns", "list"], timeout=5, check=False).stdout.splitlines()
            if l.startswith(ctx.prefix + "-")]
    if left:
        log(f"warning: namespaces left behind: {left}")
    else:
        log(f"cleaned up: processes stopped, namespaces {ctx.prefix}-* deleted")


def on_signal(signum, _frame):
    raise Interrupted(f"interrupted by signal {signum}")


def make_topology(ctx: Ctx) -> None:
    a, b, sn = ctx.ns["a"], ctx.ns["b"], ctx.ns["sn"]
    for ns in (a, b, sn):
        run(["ip", "netns", "add", ns], timeout=10)
        ctx.created_ns.append(ns)
        run(["ip", "link", "set", "lo", "up"], ns=ns)
        for k, v in (("net.ipv6.conf.all.disable_ipv6", 1), ("net.ipv6.conf.default.disable_ipv6", 1),
                     ("net.ipv4.conf.all.rp_filter", 0), ("net.ipv4.conf.default.rp_filter", 0)):
            run(["sysctl", "-qw", f"{k}={v}"], ns=ns, check=False)
    # the flat underlay: one veth pair, created directly inside the two namespaces (never in the root one)
    run(["ip", "link", "add", "ul0", "netns", a, "type", "veth", "peer", "name", "ul0", "netns", b])
    run(["ip", "addr", "add", f"{UL_A}/24", "dev", "ul0"], ns=a)
    run(["ip", "addr", "add", f"{UL_B}/24", "dev", "ul0"], ns=b)
    run(["ip", "link", "set", "ul0", "up"], ns=a)
    run(["ip", "link", "set", "ul0", "up"], ns=b)
    # Weft's supernode: its own namespace behind A. A's end has no address of its own (so A's only address
    # is 10.99.0.1 and the supernode sees both edges by their underlay addresses); A forwards B's packets.
    run(["ip", "link", "add", "sn0", "netns", sn, "type", "veth", "peer", "name", "tosn", "netns", a])
    run(["ip", "addr", "add", f"{SN_ADDR}/32", "dev", "sn0"], ns=sn)
    run(["ip", "link", "set", "sn0", "up"], ns=sn)
    run(["ip", "route", "add", UL_NET, "via", UL_A, "dev", "sn0", "onlink"], ns=sn)
    run(["ip", "link", "set", "tosn", "up"], ns=a)
    run(["ip", "route", "add", SN_ADDR, "dev", "tosn", "src", UL_A], ns=a)
    run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], ns=a)
    run(["ip", "route", "add", SN_ADDR, "via", UL_A], ns=b)
    for ns in (a, b):
        run(["ping", "-c", "1", "-W", "2", SN_ADDR], ns=ns, timeout=5)
    run(["ping", "-c", "1", "-W", "2", UL_B], ns=a, timeout=5)


# ---------------------------------------------------------------------------------------------------------
# measurements

def proc_cpu_ticks(pid: int) -> int:
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    f = s[s.rindex(")") + 2:].split()
    return int(f[11]) + int(f[12])  # utime + stime (fields 14 and 15), all threads


def system_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all cores, from /proc/stat: softirq time counts as busy here."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f[:8]) - idle, sum(f[:8])


def rcvbuf_errors(ns: str) -> int:
    lines = run(["cat", "/proc/net/snmp"], ns=ns, timeout=5).stdout.splitlines()
    udp = [l.split() for l in lines if l.startswith("Udp:")]
    return int(udp[1][udp[0].index("RcvbufErrors")])


def iperf(ctx: Ctx, target: str, args: list[str], seconds: int) -> dict | None:
    p = run(["iperf3", "-c", target, "-J", "--connect-timeout", "3000", "-t", str(seconds)] + args,
            ns=ctx.ns["a"], timeout=seconds + 20, check=False)
    try:
        d = json.loads(p.stdout)
    except json.JSONDecodeError:
        d = None
    if p.returncode != 0 or d is None or "error" in d:
        err = (d or {}).get("error") or (p.stderr or p.stdout)[-300:]
        log(f"    iperf3 {' '.join(args)} to {target} failed: {err.strip()}")
        restart_iperf_server(ctx)
        return None
    return d


def tcp_test(ctx: Ctx, vpn: "Vpn", streams: int, seconds: int, omit: int) -> dict:
    pids = vpn.pids()
    tck = os.sysconf("SC_CLK_TCK")
    rb0 = {s: rcvbuf_errors(ctx.ns[s]) for s in ("a", "b")}
    c0 = {s: proc_cpu_ticks(p) for s, p in pids.items()}
    sys0 = system_cpu()
    t0 = time.monotonic()
    d = iperf(ctx, vpn.target, ["-P", str(streams), "-O", str(omit)], seconds)
    wall = time.monotonic() - t0
    c1 = {s: proc_cpu_ticks(p) for s, p in pids.items()}
    sys1 = system_cpu()
    rb1 = {s: rcvbuf_errors(ctx.ns[s]) for s in ("a", "b")}
    out = {"streams": streams, "seconds": seconds, "omit": omit,
           "rcvbuf_errors": {s: rb1[s] - rb0[s] for s in rb0},
           # the whole machine (every process, the kernel, softirqs), in % of one core: 200 = 2 cores busy
           "system_cpu_percent": round(100.0 * (os.cpu_count() or 1) * (sys1[0] - sys0[0])
                                       / max(1, sys1[1] - sys0[1]), 1)}
    if pids:
        out["cpu_percent"] = {s: round(100.0 * (c1[s] - c0[s]) / tck / wall, 1) for s in pids}
        out["cpu_wall_s"] = round(wall, 2)
    if d is None:
        out["gbps"] = None
        return out
    e = d["end"]
    out["gbps"] = e["sum_received"]["bits_per_second"] / 1e9
    out["retransmits"] = e["sum_sent"].get("retransmits")
    return out


def udp_trial(ctx: Ctx, target: str, size: int, rate_bps: int, seconds: int) -> dict | None:
    # -w 2M: iperf3's own socket buffers (client and server), so that the tool's receiver does not drop
    # bursts (with the default 208 KiB the raw veth loses > 1 % at a fraction of its rate)
    d = iperf(ctx, target, ["-u", "-w", "2M", "-l", str(size), "-b", str(int(rate_bps))], seconds)
    if d is None:
        return None
    r = d["end"]["sum_received"]
    s = d["end"]["sum_sent"]
    got = max(0, r["packets"] - r["lost_packets"])
    secs = r["seconds"] or seconds
    return {"offered_bps": rate_bps, "sent_bps": s["bits_per_second"], "recv_bps": got * size * 8 / secs,
            "recv_pps": got / secs, "lost_percent": r["lost_percent"], "packets": r["packets"]}


def udp_search(ctx: Ctx, target: str, size: int, seconds: int, max_trials: int) -> dict:
    """Highest received rate with < 1 % loss: first unlimited (-b 0); if that loses too much, try 90 % of
    what got through, then step down by a quarter until a rate passes, then bisect (geometrically) between
    the best passing and the lowest failing rate. Halving after the first failure (as this did before)
    could land a VPN that offers far more than it carries at half its capacity with trials to spare."""
    trials = []

    def trial(rate):
        t = udp_trial(ctx, target, size, rate, seconds)
        if t is not None:
            t["ok"] = t["lost_percent"] < LOSS_LIMIT
            trials.append(t)
        return t

    t = trial(0)
    if t is None:
        return {"size": size, "bps": None, "pps": None, "trials": trials}
    if not t["ok"]:
        lo, hi = 0.0, t["sent_bps"]
        rate = t["recv_bps"] * 0.9
        for _ in range(max_trials - 1):
            t2 = trial(rate)
            if t2 is None:
                break
            if t2["ok"]:
                lo = max(lo, rate)
            else:
                hi = min(hi, rate)
            rate = (lo * hi) ** 0.5 if lo > 0 else rate * 0.75
    passing = [x for x in trials if x["ok"]]
    best = max(passing, key=lambda x: x["recv_bps"]) if passing else None
    return {"size": size, "bps": best["recv_bps"] if best else 0.0, "pps": best["recv_pps"] if best else 0.0,
            "trials": trials}


def ping_test(ctx: Ctx, target: str, count: int) -> dict:
    run(["ping", "-c", "3", "-i", "0.05", "-W", "1", target], ns=ctx.ns["a"], timeout=10, check=False)
    p = run(["ping", "-c", str(count), "-i", "0.01", "-W", "1", target], ns=ctx.ns["a"],
            timeout=count * 0.05 + 15, check=False)
    rtts = sorted(float(l.split("time=")[1].split()[0]) for l in p.stdout.splitlines() if "time=" in l)
    if not rtts:
        return {"count": count, "received": 0, "p50_ms": None, "p99_ms": None}

    def pct(q):  # nearest rank
        return rtts[min(len(rtts) - 1, max(0, int(round(q * len(rtts) + 0.5)) - 1))]

    return {"count": count, "received": len(rtts), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "min_ms": rtts[0], "max_ms": rtts[-1]}


IPERF_SERVER: subprocess.Popen | None = None


def restart_iperf_server(ctx: Ctx) -> None:
    global IPERF_SERVER
    if IPERF_SERVER is not None:
        stop_proc("iperf3 server", IPERF_SERVER)
    IPERF_SERVER = start("iperf3 server", ["iperf3", "-s", "--idle-timeout", "60"], ctx.ns["b"],
                         ctx.tmp / "iperf3-server.log")
    for _ in range(50):
        if ":5201" in run(["ss", "-ltn"], ns=ctx.ns["b"], timeout=5, check=False).stdout:
            return
        time.sleep(0.1)
    raise RuntimeError("iperf3 server did not start")


def wait_ping(ctx: Ctx, target: str, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if run(["ping", "-c", "1", "-W", "1", target], ns=ctx.ns["a"], timeout=5, check=False).returncode == 0:
            return True
        time.sleep(0.2)
    return False


def wait_iface(ns: str, ifname: str, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if run(["ip", "link", "show", ifname], ns=ns, timeout=5, check=False).returncode == 0:
            return True
        time.sleep(0.1)
    return False


def iface_mtu(ns: str, ifname: str) -> int | None:
    p = run(["cat", f"/sys/class/net/{ifname}/mtu"], ns=ns, timeout=5, check=False)
    return int(p.stdout) if p.returncode == 0 and p.stdout.strip().isdigit() else None


def wait_file(path: Path, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists():
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------------------------------------------------
# the VPNs

class Vpn:
    name = "?"
    net = ""  # 10.100.N
    settings: dict = {}

    def __init__(self, ctx: Ctx):
        self.ctx = ctx
        self.procs: dict[str, subprocess.Popen] = {}
        self.ifs = {s: ctx.ifname(self.kind, s) for s in ("a", "b")}
        self.dir = ctx.tmp / self.kind
        self.dir.mkdir(exist_ok=True)

    kind = "x"

    @property
    def target(self) -> str:
        return f"{self.net}.2"

    def pids(self) -> dict[str, int]:
        return {s: p.pid for s, p in self.procs.items()}

    def version(self) -> str:
        return "?"

    def setup(self) -> None:
        raise NotImplementedError

    def check(self) -> dict:
        """Called before each round's measurements; raises if the VPN is not usable."""
        for s, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{self.name} daemon in {s} exited ({p.returncode})")
        return {}

    def mtu(self) -> int | None:
        return iface_mtu(self.ctx.ns["a"], self.ifs["a"])

    def addr(self, side: str) -> str:
        return f"{self.net}.{1 if side == 'a' else 2}"

    def up_iface(self, side: str, mtu: int | None = None) -> None:
        ns, ifn = self.ctx.ns[side], self.ifs[side]
        run(["ip", "addr", "add", f"{self.addr(side)}/24", "dev", ifn], ns=ns)
        if mtu:
            run(["ip", "link", "set", ifn, "mtu", mtu], ns=ns)
        run(["ip", "link", "set", ifn, "up"], ns=ns)


class Underlay(Vpn):
    name = "underlay (veth)"
    kind = "ul"
    settings = {"what": "the raw veth pair, no VPN"}

    @property
    def target(self) -> str:
        return UL_B

    def setup(self) -> None:
        pass

    def pids(self):
        return {}

    def mtu(self):
        return iface_mtu(self.ctx.ns["a"], "ul0")

    def version(self):
        return platform.release()


class Weft(Vpn):
    name = "Weft"
    kind = "wf"
    net = "10.100.1"
    settings = {"mtu": "default (1400)", "cipher": "the protocol's (Noise IKpsk2 sessions)",
                "supernode": f"own namespace ({SN_ADDR}:7700) reached via A; only introduces",
                "advertise": "the underlay address only", "verbose": 1}

    relayed = False  # [connection] allow_p2p = false: every packet goes edge -> supernode -> edge
    tag = ""  # session names wfb<pid>-{tag}{a,b,sn}
    community = "bench"
    sn_port, edge_port = 7700, 7710

    def __init__(self, ctx, bindir: Path):
        super().__init__(ctx)
        self.bin = bindir
        self.session = {s: f"{ctx.prefix}-{self.tag}{s}" for s in ("a", "b", "sn")}
        self.sn: subprocess.Popen | None = None

    def version(self):
        v = run([self.bin / "weft-edge", "--version"], timeout=5, check=False).stdout.strip()
        return f"{v} @ {git_commit()}"

    def setup(self):
        c = self.ctx
        for s in self.session.values():
            c.cleanup_paths.append(Path("/run/weft") / s)
        sn_conf = self.dir / f"{self.session['sn']}.conf"
        sn_conf.write_text(
            f"[connection]\nbind = 0.0.0.0:{self.sn_port}\n"
            f"[daemon]\nstate_dir = {self.dir}/state-sn\n"
            "[logging]\nverbose = 1\n")
        self.sn = start(f"weft-supernode{' (relay)' if self.relayed else ''}",
                        [self.bin / "weft-supernode", "start", sn_conf], c.ns["sn"], self.dir / "supernode.log")
        for s in ("a", "b"):
            conf = self.dir / f"{self.session[s]}.conf"
            conf.write_text(
                f"[community]\nname = {self.community}\nkey = weft bench community secret, not a secret\n"
                f"supernode = {SN_ADDR}:{self.sn_port}\n"
                f"[tuntap]\nname = {self.ifs[s]}\naddress = {self.addr(s)}/24\ndescription = bench-{s}\n"
                f"[connection]\nbind = 0.0.0.0:{self.edge_port}\nadvertise = {UL_A if s == 'a' else UL_B}\n"
                + ("allow_p2p = false\n" if self.relayed else "") +
                f"[daemon]\nstate_dir = {self.dir}/state-{s}\n"
                "[logging]\nverbose = 1\n")
            self.procs[s] = start(f"weft-edge {s}", [self.bin / "weft-edge", "start", conf], c.ns[s],
                                  self.dir / f"edge-{s}.log")
        if not wait_ping(c, self.target, 20):
            raise RuntimeError("no ping through Weft within 20 s")
        self.wait_path(20)

    def edges(self, side: str) -> list:
        p = run([self.bin / "weftctl", "--session", self.session[side], "--json", "--timeout", "5", "edges"],
                timeout=10, check=False)
        try:
            return json.loads(p.stdout)
        except json.JSONDecodeError:
            return []

    def paths(self) -> dict:
        out = {}
        for s in ("a", "b"):
            e = self.edges(s)
            out[s] = [{k: x.get(k) for k in ("description", "state", "path", "addr", "relay", "why_not_direct")}
                      for x in e]
        return out

    def path_ok(self, paths: dict) -> bool:
        """Direct: the peer up at the other host's underlay address. Relayed: the peer up through this
        pair's own supernode."""
        if self.relayed:
            return all(len(paths[s]) == 1 and paths[s][0]["state"] == "up" and paths[s][0]["path"] == "relayed"
                       and paths[s][0]["relay"] == f"{SN_ADDR}:{self.sn_port}" for s in ("a", "b"))
        want = {"a": UL_B, "b": UL_A}
        return all(len(paths[s]) == 1 and paths[s][0]["state"] == "up" and paths[s][0]["path"] == "direct"
                   and str(paths[s][0]["addr"] or "").split(":")[0] == want[s] for s in ("a", "b"))

    def wait_path(self, seconds: float) -> dict:
        end = time.monotonic() + seconds
        paths = {}
        while time.monotonic() < end:
            paths = self.paths()
            if self.path_ok(paths):
                return paths
            run(["ping", "-c", "1", "-W", "1", self.target], ns=self.ctx.ns["a"], timeout=5, check=False)
            time.sleep(0.3)
        want = f"relayed via {SN_ADDR}:{self.sn_port}" if self.relayed else "direct over the underlay"
        raise RuntimeError(f"Weft path is not {want}: {paths}")

    def check(self):
        super().check()
        if self.sn is not None and self.sn.poll() is not None:
            raise RuntimeError("weft-supernode exited")
        return {"paths": self.wait_path(10)}


class WeftRelayed(Weft):
    """A second Weft pair with its own supernode (same namespace, another port) and `allow_p2p = false`: every
    packet goes A -> supernode -> B, the supernode's namespace being one more hop (its replies to B are
    forwarded by A's kernel, as the topology routes B to the supernode via A)."""
    name = "Weft relayed"
    kind = "wr"
    net = "10.100.6"
    relayed = True
    tag = "r"
    community = "bench-relay"
    sn_port, edge_port = 7701, 7711
    settings = {**Weft.settings, "allow_p2p": False,
                "supernode": f"own process ({SN_ADDR}:7701, the supernode's namespace, reached via A); relays "
                             "every packet"}

    def pids(self):
        # the supernode carries the data here: its CPU is recorded too (as "sn")
        out = super().pids()
        if self.sn is not None:
            out["sn"] = self.sn.pid
        return out


class Floor(Vpn):
    """Not a VPN: `floor_forwarder` (edge/examples), frames from a TAP device sent as plain UDP datagrams to the
    other end and back, no header, no cipher. What the kernel and the wake-ups cost any user-space TAP tunnel on
    this machine; a VPN's latency above this row is its own."""
    name = "floor (TAP/UDP, no crypto)"
    kind = "fl"
    net = "10.100.7"
    port = 7720
    settings = {"what": "edge/examples/floor_forwarder.rs: one epoll loop, TAP <-> UDP, no header, no cipher, "
                        "no batching or offload", "mtu": 1400}

    def __init__(self, ctx, bindir: Path):
        super().__init__(ctx)
        self.bin = bindir / "examples" / "floor_forwarder"

    def version(self):
        return f"weft {git_commit()}"

    def setup(self):
        c = self.ctx
        for s, me, other in (("a", UL_A, UL_B), ("b", UL_B, UL_A)):
            self.procs[s] = start(f"floor {s}", [self.bin, self.ifs[s], "1400", f"{me}:{self.port}",
                                                 f"{other}:{self.port}"], c.ns[s], self.dir / f"floor-{s}.log")
        for s in ("a", "b"):
            if not wait_iface(c.ns[s], self.ifs[s], 5):
                raise RuntimeError(f"floor_forwarder made no {self.ifs[s]} in {s}")
            self.up_iface(s)
        if not wait_ping(c, self.target, 10):
            raise RuntimeError("no ping through the floor forwarder within 10 s")


class WireGuard(Vpn):
    """wireguard-go and boringtun share the set-up: a userspace daemon plus `wg set` over its UAPI socket."""
    kind = "wg"
    port = 51820

    def daemon_cmd(self, side: str) -> list:
        raise NotImplementedError

    def daemon_env(self) -> dict:
        return {}

    def setup(self):
        c = self.ctx
        keys = {}
        for s in ("a", "b"):
            priv = run(["wg", "genkey"], timeout=5).stdout.strip()
            pub = run(["wg", "pubkey"], input=priv + "\n", timeout=5).stdout.strip()
            (self.dir / f"{s}.key").write_text(priv + "\n")
            os.chmod(self.dir / f"{s}.key", 0o600)
            keys[s] = pub
        for s in ("a", "b"):
            sock = Path("/run/wireguard") / f"{self.ifs[s]}.sock"
            c.cleanup_paths.append(sock)
            self.procs[s] = start(f"{self.name} {s}", self.daemon_cmd(s), c.ns[s], self.dir / f"{s}.log",
                                  env=self.daemon_env())
            if not wait_file(sock, 10):
                raise RuntimeError(f"{self.name}: no control socket {sock} after 10 s")
            o = "b" if s == "a" else "a"
            run(["wg", "set", self.ifs[s], "listen-port", self.port, "private-key", self.dir / f"{s}.key",
                 "peer", keys[o], "allowed-ips", f"{self.net}.0/24",
                 "endpoint", f"{UL_B if o == 'b' else UL_A}:{self.port}"], ns=c.ns[s], timeout=10)
            self.up_iface(s, 1420)
        if not wait_ping(c, self.target, 15):
            raise RuntimeError(f"no ping through {self.name} within 15 s")

    def check(self):
        super().check()
        ep = run(["wg", "show", self.ifs["a"], "endpoints"], ns=self.ctx.ns["a"], timeout=5,
                 check=False).stdout.split()
        if len(ep) < 2 or not ep[1].startswith(UL_B + ":"):
            raise RuntimeError(f"{self.name}: unexpected endpoint {ep}")
        return {"endpoint": ep[1]}


class WireGuardGo(WireGuard):
    name = "wireguard-go"
    kind = "wg"
    net = "10.100.2"
    port = 51820
    settings = {"mtu": 1420, "note": "Debian's wireguard-go, default settings (GOMAXPROCS = cores)"}

    def daemon_cmd(self, side):
        return ["wireguard-go", "-f", self.ifs[side]]

    def daemon_env(self):
        return {"LOG_LEVEL": "error"}

    def version(self):
        out = run(["wireguard-go", "--version"], timeout=5, check=False).stdout.split()
        return out[1] if len(out) > 1 else "?"


class Boringtun(WireGuard):
    name = "boringtun"
    kind = "bt"
    net = "10.100.3"
    port = 51821
    settings = {"mtu": 1420, "threads": "WG_THREADS=1 (its best on 2 cores: threads handing packets over cost more than they give)"}

    def __init__(self, ctx, binary: Path):
        super().__init__(ctx)
        self.bin = binary

    def daemon_cmd(self, side):
        return [self.bin, "-f", "--disable-drop-privileges", "-l", self.dir / f"{side}-bt.log", self.ifs[side]]

    def daemon_env(self):
        return {"WG_THREADS": "1", "WG_LOG_LEVEL": "error"}

    def version(self):
        return run([self.bin, "--version"], timeout=5, check=False).stdout.strip().split()[-1]


class Nebula(Vpn):
    name = "Nebula"
    kind = "nb"
    net = "10.100.4"
    port = 4242
    settings = {"mtu": 1400, "cipher": "aes (default)", "lighthouse": "A",
                "local_allow_list": "underlay only", "routines": 1,
                "listen.read_buffer/write_buffer": "4 MiB (its documented option; without it the receiver "
                                                   "drops datagrams and TCP fell from ~0.9 to ~0.5 Gbit/s)"}
    listen_extra = "  read_buffer: 4194304\n  write_buffer: 4194304\n"
    routines = 1  # 2 measured no better here

    def version(self):
        return run(["nebula", "-version"], timeout=5, check=False).stdout.strip().replace("Version: ", "")

    def setup(self):
        c, d = self.ctx, self.dir
        run(["nebula-cert", "ca", "-name", "weft-bench", "-out-crt", d / "ca.crt", "-out-key", d / "ca.key"],
            timeout=20)
        for s in ("a", "b"):
            run(["nebula-cert", "sign", "-ca-crt", d / "ca.crt", "-ca-key", d / "ca.key", "-name", s,
                 "-ip", f"{self.addr(s)}/24", "-out-crt", d / f"{s}.crt", "-out-key", d / f"{s}.key"],
                timeout=20)
        for s in ("a", "b"):
            lh = s == "a"
            conf = f"""pki:
  ca: {d}/ca.crt
  cert: {d}/{s}.crt
  key: {d}/{s}.key
static_host_map:
  "{self.net}.1": ["{UL_A}:{self.port}"]
lighthouse:
  am_lighthouse: {"true" if lh else "false"}
  interval: 60
  hosts: {"[]" if lh else f'["{self.net}.1"]'}
  local_allow_list:
    "{UL_NET}": true
  remote_allow_list:
    "{UL_NET}": true
listen:
  host: 0.0.0.0
  port: {self.port}
{self.listen_extra}routines: {self.routines}
punchy:
  punch: false
tun:
  disabled: false
  dev: {self.ifs[s]}
  drop_local_broadcast: false
  drop_multicast: false
  tx_queue: 500
  mtu: 1400
logging:
  level: warning
  format: text
firewall:
  outbound:
    - port: any
      proto: any
      host: any
  inbound:
    - port: any
      proto: any
      host: any
"""
            (d / f"{s}.yml").write_text(conf)
            self.procs[s] = start(f"nebula {s}", ["nebula", "-config", d / f"{s}.yml"], c.ns[s],
                                  d / f"{s}.log")
        if not wait_ping(c, self.target, 20):
            raise RuntimeError("no ping through Nebula within 20 s")


class Tinc(Vpn):
    name = "tinc"
    kind = "tc"
    net = "10.100.5"
    port = 655
    settings = {"mode": "switch", "mtu": 1400, "cipher": "aes-256-cbc (default)", "digest": "sha256 (default)",
                "UDPRcvBuf/UDPSndBuf": "4 MiB (without them the receiver drops datagrams)"}
    conf_extra = "UDPRcvBuf = 4194304\nUDPSndBuf = 4194304\n"
    debug = 1

    def version(self):
        return run(["tincd", "--version"], timeout=5, check=False).stdout.splitlines()[0].split()[-1]

    def setup(self):
        c = self.ctx
        for s in ("a", "b"):
            d = self.dir / s
            (d / "hosts").mkdir(parents=True, exist_ok=True)
            (d / "tinc.conf").write_text(
                f"Name = {s}\nMode = switch\nInterface = {self.ifs[s]}\nAddressFamily = ipv4\n"
                f"Port = {self.port}\n" + ("ConnectTo = a\n" if s == "b" else "") + self.conf_extra)
            (d / "hosts" / s).write_text(
                f"Address = {UL_A if s == 'a' else UL_B}\nPort = {self.port}\n"
                "Cipher = aes-256-cbc\nDigest = sha256\n")
            run(["tincd", "-c", d, "-K2048"], timeout=60)
            up = d / "tinc-up"
            up.write_text(f"#!/bin/sh\nip link set \"$INTERFACE\" mtu 1400\n"
                          f"ip addr add {self.addr(s)}/24 dev \"$INTERFACE\"\nip link set \"$INTERFACE\" up\n")
            up.chmod(0o755)
        for s in ("a", "b"):
            o = "b" if s == "a" else "a"
            shutil.copy(self.dir / o / "hosts" / o, self.dir / s / "hosts" / o)
        for s in ("a", "b"):
            d = self.dir / s
            self.procs[s] = start(f"tincd {s}", ["tincd", "-c", d, "-D", f"-d{self.debug}", f"--pidfile={d}/pid",
                                                 f"--logfile={d}/log"], c.ns[s], self.dir / f"{s}.out")
            if s == "a":  # B connects to A: start it once A listens, or B waits 5 s before it retries
                for _ in range(50):
                    if f":{self.port} " in run(["ss", "-ltn"], ns=c.ns["a"], timeout=5, check=False).stdout:
                        break
                    time.sleep(0.1)
        if not wait_ping(c, self.target, 20):
            raise RuntimeError("no ping through tinc within 20 s")
        # give tinc's path-MTU probing a moment so that data goes over UDP, not the TCP meta connection
        time.sleep(3)


# ---------------------------------------------------------------------------------------------------------
# build, install, machine facts

def git_commit() -> str:
    try:
        h = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], timeout=10).stdout.strip()
        dirty = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                    timeout=20).stdout.strip()
        return h + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


def find_cargo() -> str | None:
    c = shutil.which("cargo")
    if c:
        return c
    for home in [os.environ.get("HOME", "/root"), "/root"] + (
            [os.path.expanduser(f"~{os.environ['SUDO_USER']}")] if os.environ.get("SUDO_USER") else []):
        p = Path(home) / ".cargo" / "bin" / "cargo"
        if p.exists():
            return str(p)
    return None


def build_weft(cargo: str) -> Path:
    log("building Weft: cargo build --release -p weft-edge -p weft-supernode -p weft-cli (for weftctl) "
        "--bins --example floor_forwarder")
    env = dict(os.environ)
    env["PATH"] = f"{Path(cargo).parent}:{env.get('PATH', '')}"
    p = subprocess.run([cargo, "build", "--release", "--quiet", "-p", "weft-edge", "-p", "weft-supernode",
                        "-p", "weft-cli", "--bins", "--example", "floor_forwarder"], cwd=REPO, env=env,
                       timeout=3600, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError("cargo build --release failed")
    return REPO / "target" / "release"


APT_DONE = False


def apt_install(pkgs: list[str]) -> bool:
    global APT_DONE
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not shutil.which("apt-get"):
        return False
    if not APT_DONE:
        log("apt-get update")
        run(["apt-get", "update", "-qq"], timeout=600, check=False, env=env)
        APT_DONE = True
    log(f"apt-get install {' '.join(pkgs)}")
    p = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + pkgs, timeout=900, check=False,
            env=env)
    if p.returncode != 0:
        log(f"  apt-get install failed: {(p.stderr or p.stdout).strip()[-500:]}")
    return p.returncode == 0


def ensure_tools(cargo: str | None, skip: set[str]) -> dict[str, str]:
    """Installs what is missing. Returns {peer: reason} for peers that cannot run."""
    missing_why: dict[str, str] = {}
    base = {"ip": "iproute2", "ping": "iputils-ping", "iperf3": "iperf3", "ss": "iproute2"}
    need = sorted({pkg for b, pkg in base.items() if not shutil.which(b)})
    if need and not apt_install(need):
        raise RuntimeError(f"cannot install {need}, which the benchmark itself needs")
    peers = {"wireguard-go": (["wireguard-go", "wg"], ["wireguard-go", "wireguard-tools"]),
             "boringtun": (["wg"], ["wireguard-tools"]),
             "Nebula": (["nebula", "nebula-cert"], ["nebula"]),
             "tinc": (["tincd"], ["tinc"])}
    for peer, (bins, pkgs) in peers.items():
        if peer in skip:
            continue
        if not all(shutil.which(b) for b in bins):
            apt_install(pkgs)
        if not all(shutil.which(b) for b in bins):
            missing_why[peer] = f"could not install {' '.join(pkgs)} with apt-get"
    bt = TOOLS / "bin" / "boringtun-cli"
    if "boringtun" not in skip and "boringtun" not in missing_why and not bt.exists():
        if cargo is None:
            missing_why["boringtun"] = "no cargo to install boringtun-cli with"
        else:
            log(f"cargo install boringtun-cli --locked --root {TOOLS} (a few minutes, once)")
            p = run([cargo, "install", "boringtun-cli", "--locked", "--root", TOOLS], timeout=1800, check=False)
            if p.returncode != 0 or not bt.exists():
                missing_why["boringtun"] = "cargo install boringtun-cli failed: " + p.stderr.strip()[-300:]
    return missing_why


def machine_facts(hostname: str) -> dict:
    cpu = "?"
    flags = ""
    try:
        for l in Path("/proc/cpuinfo").read_text().splitlines():
            if l.startswith("model name") and cpu == "?":
                cpu = l.split(":", 1)[1].strip()
            if l.startswith("flags") and not flags:
                flags = l
    except OSError:
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    feats = [f for f in ("aes", "avx2", "avx512f", "sha_ni") if f" {f}" in flags]
    return {"hostname": hostname, "cpu_model": cpu, "cpu_features": feats, "cores": os.cpu_count(),
            "memory_mib": mem, "kernel": platform.release(), "os": os_name()}


def os_name() -> str:
    try:
        for l in Path("/etc/os-release").read_text().splitlines():
            if l.startswith("PRETTY_NAME="):
                return l.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "?"


# ---------------------------------------------------------------------------------------------------------
# report

HEADLINE = [  # key, column title, unit scale, higher is better
    ("tcp1", "TCP 1 stream, Gbit/s", True),
    ("tcp4", "TCP 4 streams, Gbit/s", True),
    ("udp_large", "UDP {large} B < 1 % loss, Gbit/s", True),
    ("udp64", "UDP 64 B < 1 % loss, kpps", True),
    ("p50", "ping p50, ms", False),
    ("p99", "ping p99, ms", False),
]


def round_figures(r: dict) -> dict:
    """The headline figures of one round."""
    def g(*path):
        x = r
        for k in path:
            if not isinstance(x, dict) or x.get(k) is None:
                return None
            x = x[k]
        return x
    f = {"tcp1": g("tcp1", "gbps"), "tcp4": g("tcp4", "gbps"),
         "udp_large": (g("udp_large", "bps") or 0) / 1e9 if g("udp_large", "bps") is not None else None,
         "udp64": (g("udp64", "pps") or 0) / 1e3 if g("udp64", "pps") is not None else None,
         "p50": g("ping", "p50_ms"), "p99": g("ping", "p99_ms")}
    cpu = g("tcp1", "cpu_percent")
    f["cpu_a"] = cpu.get("a") if cpu else None
    f["cpu_b"] = cpu.get("b") if cpu else None
    f["cpu_sn"] = cpu.get("sn") if cpu else None
    rb = [g(t, "rcvbuf_errors") for t in ("tcp1", "tcp4")]
    f["rcvbuf"] = sum(sum(x.values()) for x in rb if x) if any(rb) else None
    return f


def summarize(rounds: list[dict]) -> dict:
    per = [round_figures(r) for r in rounds if not r.get("error")]
    out = {}
    for k in ("tcp1", "tcp4", "udp_large", "udp64", "p50", "p99", "cpu_a", "cpu_b", "cpu_sn", "rcvbuf"):
        v = [p[k] for p in per if p[k] is not None]
        out[k] = {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)} if v else None
    return out


def fmt(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}" if abs(x) < 0.1 else f"{x:.2f}"


def table(report: dict) -> str:
    names = [n for n in report["order"] if report["vpns"][n].get("summary")]
    summ = {n: report["vpns"][n]["summary"] for n in names}
    ul = next((n for n in names if report["vpns"][n]["role"] == "underlay"), None)
    peers = [n for n in names if report["vpns"][n]["role"] == "peer"]
    best = {}
    for k, _, hib in HEADLINE:
        vals = [(summ[n][k]["median"], n) for n in peers if summ[n].get(k)]
        if vals:
            best[k] = (max if hib else min)(vals)
    large = report["config"].get("udp_large_payload", 1400)
    head = ["VPN"] + [t.format(large=large) for _, t, _ in HEADLINE] + ["CPU % A / B (TCP 1)", "MTU", "RcvbufErrors (TCP)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        v = report["vpns"][n]
        row = [v["label"]]
        for k, _, _ in HEADLINE:
            s = summ[n].get(k)
            if not s:
                row.append("–")
                continue
            cell = f"**{fmt(s['median'])}** ({fmt(s['min'])}–{fmt(s['max'])})"
            rat = []
            if ul and n != ul and summ[ul].get(k) and summ[ul][k]["median"]:
                rat.append(f"{s['median'] / summ[ul][k]['median']:.2f}×U")
            if k in best and best[k][0] and v["role"] not in ("underlay", "reference"):
                rat.append(f"{s['median'] / best[k][0]:.2f}×P")
            if rat:
                cell += " " + " ".join(rat)
            row.append(cell)
        ca, cb = summ[n].get("cpu_a"), summ[n].get("cpu_b")
        csn = summ[n].get("cpu_sn")
        row.append((f"{ca['median']:.0f} / {cb['median']:.0f}" if ca and cb else "–")
                   + (f" (supernode {csn['median']:.0f})" if csn else ""))
        row.append(str(v.get("mtu") or "–"))
        rb = summ[n].get("rcvbuf")
        row.append(f"{rb['median']:.0f} ({rb['min']:.0f}–{rb['max']:.0f})" if rb else "–")
        lines.append("| " + " | ".join(row) + " |")
    direct = next((n for n in names if report["vpns"][n]["role"] == "weft"), None)
    relay = next((n for n in names if report["vpns"][n]["role"] == "weft-relay"), None)
    if direct and relay and summ[direct].get("tcp1") and summ[relay].get("tcp1") and summ[direct]["tcp1"]["median"]:
        pct = 100 * summ[relay]["tcp1"]["median"] / summ[direct]["tcp1"]["median"]
        lines += ["", f"relayed TCP 1 stream = {pct:.0f} % of direct Weft (medians, this run)"]
    floor = next((n for n in names if report["vpns"][n]["role"] == "reference"), None)
    if floor and ul and direct and all(summ[n].get("p50") for n in (floor, ul, direct)):
        p50 = {n: summ[n]["p50"]["median"] for n in (floor, ul, direct)}
        lines += ["", f"ping p50 added over the underlay: floor +{p50[floor] - p50[ul]:.3f} ms (any user-space "
                      f"TAP tunnel here), Weft +{p50[direct] - p50[ul]:.3f} ms, of which "
                      f"{p50[direct] - p50[floor]:+.3f} ms beyond the floor (medians, this run)"]
    legend = [
        "",
        "Medians of {r} rounds, (min–max) across rounds. ×U: ratio to the raw underlay in the same run; ×P: ratio "
        "to the best peer in that column (the best of the non-Weft VPNs: highest throughput, lowest "
        "latency{b}). Throughput: higher is better; latency: lower is better, so a latency ratio above 1 "
        "means slower. UDP: the highest received rate with under 1 % loss (payload bytes; kpps = thousand "
        "datagrams per second). CPU: % of one core used by the VPN daemon on the sending host A / receiving "
        "host B during the TCP 1-stream test. "
        "RcvbufErrors: UDP datagrams dropped for a full socket buffer, both hosts, during both TCP tests.{w}".format(
            r=report["config"]["rounds"],
            w=(" The floor row is not a VPN: a TAP/UDP forwarder with no header and no cipher "
               "(edge/examples/floor_forwarder.rs), the cost of the plumbing every user-space TAP tunnel pays "
               "here." if floor else "") +
              (" Weft relayed (allow_p2p = false: every packet through the supernode) is not a peer; its CPU "
               "cell adds the relaying supernode's in brackets." if relay else ""),
            b="; best peer: " + ", ".join(f"{t.format(large=large).split(',')[0]} {best[k][1]}"
                                          for k, t, _ in HEADLINE if k in best)
            if best else ""),
    ]
    return "\n".join(lines + legend)


# ---------------------------------------------------------------------------------------------------------

def measure_round(ctx: Ctx, vpn: Vpn, cfg: dict) -> dict:
    r: dict = {}
    r["check"] = vpn.check()
    r["ping"] = ping_test(ctx, vpn.target, cfg["ping_count"])
    time.sleep(0.3)
    r["tcp1"] = tcp_test(ctx, vpn, 1, cfg["tcp_seconds"], cfg["tcp_omit"])
    time.sleep(0.5)
    r["tcp4"] = tcp_test(ctx, vpn, 4, cfg["tcp_seconds"], cfg["tcp_omit"])
    time.sleep(0.5)
    r["udp_large"] = udp_search(ctx, vpn.target, cfg["udp_large_payload"], cfg["udp_seconds"], cfg["udp_trials"])
    time.sleep(0.3)
    r["udp64"] = udp_search(ctx, vpn.target, 64, cfg["udp_seconds"], cfg["udp_trials"])
    return r


def main() -> int:
    global CTX
    ap = argparse.ArgumentParser(
        prog="bench/run", description="Weft side-by-side benchmark: underlay, Weft (direct and relayed), "
        "wireguard-go, boringtun, Nebula and tinc between two network namespaces. Run as root.")
    ap.add_argument("--quick", action="store_true", help="1 round and shorter tests, for development")
    ap.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--only", help="comma-separated subset: underlay,weft,weft-relay,wireguard-go,boringtun,nebula,"
                    "tinc")
    ap.add_argument("--machine", help="machine name for the results file (default: the host name)")
    ap.add_argument("--no-build", action="store_true", help="use target/release as it is (default: rebuild)")
    ap.add_argument("--no-write", action="store_true", help="print the table only; write no results file")
    ap.add_argument("--keep-logs", action="store_true", help="keep the work dir (configs, keys, daemon logs)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root: sudo bench/run", file=sys.stderr)
        return 2

    quick = args.quick
    cfg = {"rounds": args.rounds or (1 if quick else 3),
           "tcp_seconds": 2 if quick else 4, "tcp_omit": 1,
           "udp_seconds": 1 if quick else 2, "udp_trials": 4 if quick else 6,
           "ping_count": PING_COUNT_QUICK if quick else PING_COUNT_FULL, "ping_interval_s": 0.01,
           "loss_limit_percent": LOSS_LIMIT, "quick": quick}
    cfg["rounds"] = max(1, min(cfg["rounds"], 20))
    all_ids = ["underlay", "floor", "weft", "weft-relay", "wireguard-go", "boringtun", "nebula", "tinc"]
    only = [x.strip().lower() for x in args.only.split(",")] if args.only else all_ids
    bad = [x for x in only if x not in all_ids]
    if bad:
        print(f"bench: unknown name(s) in --only: {bad}; choose from {all_ids}", file=sys.stderr)
        return 2

    CTX = ctx = Ctx(quick)
    ctx.keep = args.keep_logs
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    started = datetime.datetime.now(datetime.timezone.utc)
    report: dict = {"schema": 1, "started": started.isoformat(timespec="seconds"), "config": cfg,
                    "machine": machine_facts(args.machine or socket.gethostname()),
                    "topology": {
                        "underlay": f"one veth pair: A {UL_A}/24 <-> B {UL_B}/24 (namespaces {ctx.prefix}-a/-b)",
                        "weft_supernode": f"namespace {ctx.prefix}-sn, {SN_ADDR}:7700, linked to A only; "
                                          "A forwards B's packets to it; it only introduces the edges",
                        "weft_relay_supernode": f"a second supernode in {ctx.prefix}-sn, {SN_ADDR}:7701, for the "
                                                "allow_p2p = false pair: relays every packet A -> sn -> (via A) B",
                        "traffic": "iperf3 client and ping in A, iperf3 server in B (A -> B)"},
                    "vpns": {}, "order": [], "skipped": {}}
    try:
        cargo = find_cargo()
        if args.no_build:
            bindir = REPO / "target" / "release"
        elif cargo is None:
            raise RuntimeError("cargo not found: install Rust (rustup) to build Weft")
        else:
            bindir = build_weft(cargo)
        report["weft_commit"] = git_commit() + (" (--no-build: binaries may be older)" if args.no_build else "")
        skip = {"wireguard-go": "wireguard-go", "boringtun": "boringtun", "nebula": "Nebula",
                "tinc": "tinc"}
        missing = ensure_tools(cargo, {v for k, v in skip.items() if k not in only})
        for peer, why in missing.items():
            log(f"SKIP {peer}: {why}")
            report["skipped"][peer] = why

        log(f"creating namespaces {ctx.prefix}-a, -b, -sn (work dir {ctx.tmp})")
        make_topology(ctx)
        # socket buffer defaults the daemons get unless they size their own (rmem_default and wmem_default
        # cannot be changed inside a namespace on this kernel, so they are the host's)
        cfg["net_core"] = {k: run(["sysctl", "-n", f"net.core.{k}"], ns=ctx.ns["b"], timeout=5).stdout.strip()
                           for k in ("rmem_default", "rmem_max", "wmem_default", "wmem_max")}
        restart_iperf_server(ctx)

        candidates: list[tuple[str, str, Vpn]] = []
        if "underlay" in only:
            candidates.append(("underlay", "underlay", Underlay(ctx)))
        if "floor" in only:
            candidates.append(("floor", "reference", Floor(ctx, bindir)))
        if "weft" in only:
            candidates.append(("Weft", "weft", Weft(ctx, bindir)))
        if "weft-relay" in only:
            candidates.append(("Weft relayed", "weft-relay", WeftRelayed(ctx, bindir)))
        if "wireguard-go" in only and "wireguard-go" not in missing:
            candidates.append(("wireguard-go", "peer", WireGuardGo(ctx)))
        if "boringtun" in only and "boringtun" not in missing:
            candidates.append(("boringtun", "peer", Boringtun(ctx, TOOLS / "bin" / "boringtun-cli")))
        if "nebula" in only and "Nebula" not in missing:
            candidates.append(("Nebula", "peer", Nebula(ctx)))
        if "tinc" in only and "tinc" not in missing:
            candidates.append(("tinc", "peer", Tinc(ctx)))

        vpns: list[tuple[str, Vpn]] = []
        for name, role, v in candidates:
            log(f"setting up {name}")
            entry = {"role": role, "label": f"**{name}** ({report['weft_commit']})" if role.startswith("weft")
                     else name,
                     "settings": v.settings, "rounds": []}
            try:
                entry["version"] = v.version()
                v.setup()
                entry["mtu"] = v.mtu()
                entry["interface"] = "ul0" if role == "underlay" else v.ifs["a"]
                entry["pids"] = v.pids()
                vpns.append((name, v))
                log(f"  {name} {entry['version']} up (MTU {entry['mtu']})")
            except Exception as e:  # a peer that fails is skipped, with the reason, not the whole run
                tails = ""
                for f in sorted(v.dir.glob("*.log")) + sorted(v.dir.glob("*/log")):
                    tails += f"\n  --- {f.relative_to(ctx.tmp)}:\n" + "\n".join(
                        "  " + l for l in f.read_text(errors="replace").splitlines()[-8:])
                log(f"SKIP {name}: set-up failed: {e}{tails}")
                report["skipped"][name] = f"set-up failed: {e}"
                for s, p in v.procs.items():
                    stop_proc(f"{name} {s}", p)
                continue
            report["vpns"][name] = entry
            report["order"].append(name)

        # what each daemon burns while idle (keepalives, timers): it runs beside every other VPN's tests
        tck = os.sysconf("SC_CLK_TCK")
        c0 = {n: {s: proc_cpu_ticks(p) for s, p in v.pids().items()} for n, v in vpns}
        t0 = time.monotonic()
        time.sleep(3)
        for n, v in vpns:
            if v.pids():
                report["vpns"][n]["idle_cpu_percent"] = {
                    s: round(100.0 * (proc_cpu_ticks(p) - c0[n][s]) / tck / (time.monotonic() - t0), 1)
                    for s, p in v.pids().items()}

        # the large UDP payload: 1400 bytes, or less so that no tunnel fragments it (IP + UDP headers are 28
        # bytes; a 1400-byte payload through a 1400-byte tunnel MTU would become two fragments per datagram)
        mtus = [report["vpns"][n]["mtu"] for n, _ in vpns if report["vpns"][n].get("mtu")]
        cfg["udp_large_payload"] = min([1400] + [m - 28 for m in mtus])
        log(f"UDP payloads: {cfg['udp_large_payload']} and 64 bytes")

        for rnd in range(cfg["rounds"]):
            order = vpns[rnd % len(vpns):] + vpns[:rnd % len(vpns)] if vpns else []
            log(f"round {rnd + 1}/{cfg['rounds']}: {', '.join(n for n, _ in order)}")
            for name, v in order:
                t = time.monotonic()
                try:
                    r = measure_round(ctx, v, cfg)
                except Interrupted:
                    raise
                except Exception as e:
                    log(f"  {name}: round failed: {e}")
                    r = {"error": str(e)}
                r["round"] = rnd + 1
                r["seconds"] = round(time.monotonic() - t, 1)
                report["vpns"][name]["rounds"].append(r)
                if not r.get("error"):
                    f = round_figures(r)
                    log(f"  {name:16} tcp1 {fmt(f['tcp1'])} tcp4 {fmt(f['tcp4'])} Gbit/s, udp_large "
                        f"{fmt(f['udp_large'])} Gbit/s, udp64 {fmt(f['udp64'])} kpps, ping p50/p99 {fmt(f['p50'])}/"
                        f"{fmt(f['p99'])} ms, cpu A/B {f['cpu_a']}/{f['cpu_b']} %, rcvbuf {f['rcvbuf']} "
                        f"({r['seconds']} s)")
        for name in report["order"]:
            report["vpns"][name]["summary"] = summarize(report["vpns"][name]["rounds"])
    except Interrupted as e:
        log(f"{e}: cleaning up")
        cleanup()
        return 130
    except Exception as e:
        log(f"error: {e}")
        cleanup()
        return 1
    finally:
        cleanup()

    finished = datetime.datetime.now(datetime.timezone.utc)
    report["finished"] = finished.isoformat(timespec="seconds")
    report["duration_s"] = round(time.monotonic() - T0, 1)
    md = table(report)
    day = started.date().isoformat()
    head = (f"Weft bench, {day}, {report['machine']['cores']} cores {report['machine']['cpu_model']}, kernel "
            f"{report['machine']['kernel']}, Weft {report['weft_commit']}, {cfg['rounds']} round(s)"
            f"{' (quick)' if quick else ''}, {report['duration_s']:.0f} s")
    print()
    print(head)
    print()
    print(md)
    for peer, why in report["skipped"].items():
        print(f"\nSKIPPED {peer}: {why}")
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        machine = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in report["machine"]["hostname"])
        base = f"{day}-{machine}" + ("-quick" if quick else "")
        path = RESULTS / f"{base}.json"
        for i in range(2, 100):
            if not path.exists():
                break
            path = RESULTS / f"{base}-{i}.json"
        report["table_markdown"] = md
        path.write_text(json.dumps(report, indent=1) + "\n")
        path.with_suffix(".md").write_text(head + "\n\n" + md + "\n")
        print(f"\nraw figures: {path.relative_to(REPO)}; table: {path.with_suffix('.md').relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
