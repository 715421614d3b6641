"""Network-namespace lab: namespaces, veths, routers, packet cuts and BGP daemons.

Used by the interop tests and by the benchmarks; importable without pytest
(``from tests.interop import netlab``).  Everything lives inside network
namespaces named ``sd-<4 hex>-<short>``; nothing outside them gets an address
and no traffic leaves them.  A :class:`Lab` owns its namespaces and every
process it started and removes them on exit, exceptions included.  A marker
file ``/run/speakerd-netlab/<hex>`` holds the owning PID so that :func:`sweep`
can remove the namespaces of crashed runs without touching live labs.

Addressing: link ``i`` of a lab is ``198.18.i.0/24`` (RFC 2544 benchmark
range) and ``fd00:5d:0:i::/64`` (ULA); the first namespace of the link gets
``.1``/``::1``, the second ``.2``/``::2``.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

MARK_DIR = Path("/run/speakerd-netlab")
NS_RE = re.compile(r"^sd-([0-9a-f]{4})-[a-z0-9]+$")
FRR_LIB = Path("/usr/lib/frr")
STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")


class LabError(RuntimeError):
    pass


def sh(argv: list[str], check: bool = True, timeout: float = 30, input: str | None = None) -> str:
    """Run a command, return stdout; on failure raise with stderr included."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(argv)} -> {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    return p.stdout


def wait_for(pred: Callable[[], Any], timeout: float, what: str = "condition", interval: float = 0.1) -> Any:
    """Poll ``pred`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = pred()
        except LabError as e:  # daemon not answering yet
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def holds_for(pred: Callable[[], Any], seconds: float, interval: float = 0.2) -> bool:
    """True if ``pred`` stays truthy for ``seconds`` (for "does NOT happen" checks)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not pred():
            return False
        time.sleep(interval)
    return bool(pred())


def missing_requirements(daemons: tuple[str, ...] = ("frr", "gobgp")) -> list[str]:
    """What this machine lacks to run a lab (empty list = ready)."""
    out = []
    if os.geteuid() != 0:
        out.append("not root")
    need = {"ip": "ip", "nft": "nft", "nstat": "nstat", "ping": "ping"}
    if "frr" in daemons:
        need.update(vtysh="vtysh")
    if "gobgp" in daemons:
        need.update(gobgpd="gobgpd", gobgp="gobgp")
    if "bird" in daemons:
        need.update(bird="bird", birdc="birdc")
    out += [f"{n} not installed" for n, exe in need.items() if shutil.which(exe) is None]
    if "frr" in daemons and not (FRR_LIB / "bgpd").exists():
        out.append("frr bgpd not installed")
    return out


# ---------------------------------------------------------------- processes

@dataclass(slots=True)
class Proc:
    """A process started by a lab, tracked by PID."""
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            os.kill(self.pid, sig)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self, timeout: float = 3.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.alive:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.poll()

    def kill(self) -> None:
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# ---------------------------------------------------------------- namespaces

@dataclass(slots=True)
class Netns:
    lab: "Lab"
    short: str
    name: str
    router: bool = False

    def __str__(self) -> str:
        return self.name

    def exec(self, *argv: str, check: bool = True, timeout: float = 30) -> str:
        return sh(["ip", "netns", "exec", self.name, *argv], check=check, timeout=timeout)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        return self.lab.spawn(self, name, argv, env=env)

    def nstat(self, counter: str) -> int:
        """Absolute value of a kernel counter, e.g. ``TcpExtTCPMD5Failure``."""
        out = self.exec("nstat", "-az", counter)
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == counter:
                return int(parts[1])
        return 0

    def cut(self, addr: str) -> None:
        """Drop every packet to and from ``addr`` in this namespace (nftables)."""
        fam = "ip6" if ":" in addr else "ip"
        if not self.exec("nft", "list", "tables", check=False).count("inet sdcut"):
            for cmd in ("add table inet sdcut",
                        "add chain inet sdcut input { type filter hook input priority -10 ; }",
                        "add chain inet sdcut output { type filter hook output priority -10 ; }"):
                self.exec("nft", cmd)
        self.exec("nft", f"add rule inet sdcut input {fam} saddr {addr} drop")
        self.exec("nft", f"add rule inet sdcut output {fam} daddr {addr} drop")

    def restore(self) -> None:
        """Remove every cut made in this namespace."""
        self.exec("nft", "delete table inet sdcut", check=False)

    def add_route(self, dst: str, via: str) -> None:
        self.exec("ip", "-6" if ":" in dst else "-4", "route", "add", dst, "via", via)

    def addresses(self) -> str:
        return self.exec("ip", "-br", "addr")


@dataclass(slots=True)
class Link:
    """A veth pair: ``a`` side gets .1/::1, ``b`` side .2/::2."""
    a: Netns
    b: Netns
    dev_a: str
    dev_b: str
    v4_a: str
    v4_b: str
    v6_a: str
    v6_b: str
    index: int

    @property
    def net4(self) -> str:
        return f"198.18.{self.index}.0/24"

    @property
    def net6(self) -> str:
        return f"fd00:5d:0:{self.index:x}::/64"

    def addr(self, ns: Netns, v6: bool = False) -> str:
        if ns is self.a:
            return self.v6_a if v6 else self.v4_a
        return self.v6_b if v6 else self.v4_b

    def dev(self, ns: Netns) -> str:
        return self.dev_a if ns is self.a else self.dev_b


class Lab:
    """Namespaces, links and processes for one test; everything removed on exit."""

    def __init__(self, name: str = "lab", base_dir: str | Path | None = None, keep_dir: bool = False):
        self.tag = secrets.token_hex(2)
        self.prefix = f"sd-{self.tag}-"
        self.name = name
        self._base = base_dir
        self.keep_dir = keep_dir
        self.dir = Path()
        self.namespaces: dict[str, Netns] = {}
        self.links: list[Link] = []
        self.procs: list[Proc] = []
        self.cleanups: list[Callable[[], None]] = []

    # -- lifecycle
    def __enter__(self) -> "Lab":
        MARK_DIR.mkdir(parents=True, exist_ok=True)
        marker = MARK_DIR / self.tag
        while marker.exists():  # tag collision with a live or crashed lab
            self.tag = secrets.token_hex(2)
            self.prefix, marker = f"sd-{self.tag}-", MARK_DIR / self.tag
        marker.write_text(str(os.getpid()))
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)[:60]
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}{safe}-", dir=self._base))
        self.dir.chmod(0o777)  # FRR daemons run as user frr
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        errors = []
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # keep cleaning
                errors.append(e)
        for p in reversed(self.procs):
            p.stop(timeout=2)
        for ns in list(self.namespaces.values()):
            _delete_ns(ns.name)
        self.namespaces.clear()
        (MARK_DIR / self.tag).unlink(missing_ok=True)
        if not self.keep_dir and self.dir != Path():
            shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise LabError(f"cleanup errors: {errors}")

    # -- building
    def ns(self, short: str, router: bool = False) -> Netns:
        """Create (or return) the namespace ``sd-<tag>-<short>`` with lo up."""
        if short in self.namespaces:
            return self.namespaces[short]
        if not re.fullmatch(r"[a-z0-9]+", short):
            raise ValueError(f"namespace short name must be [a-z0-9]+: {short!r}")
        name = self.prefix + short
        sh(["ip", "netns", "add", name])
        ns = Netns(self, short, name, router)
        self.namespaces[short] = ns
        ns.exec("ip", "link", "set", "lo", "up")
        ns.exec("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        if router:
            ns.exec("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        return ns

    def router(self, short: str) -> Netns:
        """A namespace that forwards IPv4 and IPv6 (for multihop paths)."""
        return self.ns(short, router=True)

    def link(self, a: Netns, b: Netns) -> Link:
        """Connect two namespaces with a veth pair carrying IPv4 and IPv6."""
        i = len(self.links) + 1
        if i > 255:
            raise LabError("too many links")
        dev_a, dev_b = f"v{i}-{b.short}"[:15], f"v{i}-{a.short}"[:15]
        # both ends are created directly inside their namespaces: nothing appears in the root one
        sh(["ip", "link", "add", dev_a, "netns", a.name, "type", "veth", "peer", "name", dev_b, "netns", b.name])
        link = Link(a, b, dev_a, dev_b, f"198.18.{i}.1", f"198.18.{i}.2",
                    f"fd00:5d:0:{i:x}::1", f"fd00:5d:0:{i:x}::2", i)
        for ns, dev, v4, v6 in ((a, dev_a, link.v4_a, link.v6_a), (b, dev_b, link.v4_b, link.v6_b)):
            ns.exec("ip", "addr", "add", f"{v4}/24", "dev", dev)
            ns.exec("ip", "addr", "add", f"{v6}/64", "dev", dev, "nodad")
            ns.exec("ip", "link", "set", dev, "up")
        self.links.append(link)
        return link

    def subdir(self, name: str) -> Path:
        d = self.dir / name
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o777)
        return d

    def spawn(self, ns: Netns, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        """Start ``argv`` in ``ns`` (stdout+stderr to ``<dir>/<name>.out``), tracked for cleanup."""
        log = self.dir / f"{name}.out"
        with open(log, "ab") as f:
            popen = subprocess.Popen(["ip", "netns", "exec", ns.name, *argv], stdout=f,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})}, start_new_session=True)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def logs(self, tail: int = 40) -> str:
        """Tails of every log file in the lab directory (for failure reports)."""
        out = []
        for path in sorted(self.dir.rglob("*")):
            if path.is_file() and path.suffix in (".out", ".log"):
                lines = path.read_text(errors="replace").splitlines()[-tail:]
                out.append(f"==== {path.relative_to(self.dir)} ====\n" + "\n".join(lines))
        return "\n".join(out)


def _delete_ns(name: str) -> None:
    """Kill whatever still runs in a namespace, then delete it."""
    pids = sh(["ip", "netns", "pids", name], check=False).split()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(int(pid), sig)
            except (ProcessLookupError, ValueError):
                pass
        if sig == signal.SIGTERM and pids:
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and sh(["ip", "netns", "pids", name], check=False).split():
                time.sleep(0.05)
            pids = sh(["ip", "netns", "pids", name], check=False).split()
    sh(["ip", "netns", "del", name], check=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep() -> list[str]:
    """Delete namespaces left by crashed labs (marker present, owner PID dead)."""
    removed = []
    names = [line.split()[0] for line in sh(["ip", "netns", "list"], check=False).splitlines() if line.strip()]
    dead: set[str] = set()
    if MARK_DIR.is_dir():
        for marker in MARK_DIR.iterdir():
            try:
                pid = int(marker.read_text().strip() or 0)
            except (ValueError, OSError):
                pid = 0
            if not pid or not _pid_alive(pid):
                dead.add(marker.name)
    for name in names:
        m = NS_RE.match(name)
        if m and m.group(1) in dead:
            _delete_ns(name)
            removed.append(name)
    for tag in dead:
        (MARK_DIR / tag).unlink(missing_ok=True)
    return removed


# Daemon wrappers and the MetalLB manifest writer live in netlab_daemons; re-exported here.
if __package__:
    from .netlab_daemons import (  # noqa: E402,F401
        Bird, ExaBgp, Frr, GoBgp, Neighbor, Network, NotImplementedYet, Speakerd,
        advertisement, bgp_peer, manifests, node, pool, service, speakerd_run_missing,
    )
else:  # imported as a top-level module (tests/interop on sys.path)
    from netlab_daemons import (  # type: ignore  # noqa: E402,F401
        Bird, ExaBgp, Frr, GoBgp, Neighbor, Network, NotImplementedYet, Speakerd,
        advertisement, bgp_peer, manifests, node, pool, service, speakerd_run_missing,
    )

__all__ = ["Lab", "Netns", "Link", "Proc", "LabError", "sh", "wait_for", "holds_for", "sweep",
           "missing_requirements", "Frr", "GoBgp", "Bird", "ExaBgp", "Speakerd", "Neighbor",
           "Network", "NotImplementedYet", "manifests", "speakerd_run_missing", "bgp_peer", "pool",
           "advertisement", "service", "node"]
