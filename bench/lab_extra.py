"""Helpers the benchmarks share on top of tests/interop/netlab: config generators,
process CPU/RSS sampling, version strings.

Nothing here sends traffic; the scenarios use netlab's namespaces for that.
"""
from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.interop import netlab  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for an API emulator the bench starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ipv4(i: int, base: int = 10 << 24) -> str:
    """The i-th address of 10.0.0.0/8 (with 16M addresses: enough for every N used here)."""
    a = base + i
    return f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"


def service_yaml(name: str, ip: str) -> str:
    """One LoadBalancer Service document that has been given ``ip`` (annotation + status agree)."""
    return (f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n"
            f"  annotations:\n    metallb.universe.tf/loadBalancerIPs: {ip}\n"
            f"spec:\n  type: LoadBalancer\n  ports:\n  - port: 80\n    protocol: TCP\n"
            f"status:\n  loadBalancer:\n    ingress:\n    - ip: {ip}\n")


def write_speakerd_config(dir: Path, n: int, peers: list[tuple], node: str = "bench",
                          pool_cidr: str = "10.0.0.0/8", hold: int | None = None) -> Path:
    """``dir/config.yaml``: the peers (address, my_asn, peer_asn[, source address]), one pool, one advertisement,
    and ``n`` Service objects with consecutive IPs of 10.0.0.0/8."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, (addr, my, peer, *src) in enumerate(peers):
        extra = f"  holdTime: {hold}s\n" if hold else ""
        if src:
            extra += f"  sourceAddress: {src[0]}\n"
        parts.append(f"apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: p{i}\n"
                     f"  namespace: metallb-system\nspec:\n  myASN: {my}\n  peerASN: {peer}\n"
                     f"  peerAddress: {addr}\n{extra}")
    parts.append(f"apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: bench\n"
                 f"  namespace: metallb-system\nspec:\n  addresses:\n  - {pool_cidr}\n")
    parts.append("apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: bench\n"
                 "  namespace: metallb-system\n")
    head = "---\n".join(parts)
    path = dir / "config.yaml"
    with open(path, "w") as f:
        f.write(head)
        for i in range(n):
            f.write("---\n")
            f.write(service_yaml(f"s{i}", ipv4(i)))
    return dir


# ---------------------------------------------------------------- process accounting

@dataclass(frozen=True, slots=True)
class Usage:
    cpu: float  # user+system seconds
    rss: int  # bytes

    @staticmethod
    def of(pid: int) -> "Usage":
        """CPU seconds and RSS of ``pid`` (0/0 when it is gone)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            statm = Path(f"/proc/{pid}/statm").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return Usage(0.0, 0)
        fields = stat[stat.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        return Usage(cpu, int(statm.split()[1]) * PAGE)


def peak_rss(pid: int) -> int:
    """VmHWM of ``pid`` in bytes (0 when gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def child_pid(proc: netlab.Proc) -> int:
    """The real daemon's PID: ``ip netns exec`` execs in place, so it is the Popen PID."""
    return proc.pid


def find_pid(ns: netlab.Netns, exe_part: str) -> int | None:
    """The PID of a process in ``ns`` whose command line contains ``exe_part``."""
    for pid in netlab.sh(["ip", "netns", "pids", ns.name], check=False).split():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except FileNotFoundError:
            continue
        if exe_part in cmd:
            return int(pid)
    return None


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def poll(pred, timeout: float, interval: float = 0.02):
    """Call ``pred`` until it returns a truthy value; return (value, monotonic time it did)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        now = time.monotonic()
        if v:
            return v, now
        if now > deadline:
            raise TimeoutError(f"timed out after {timeout}s")
        time.sleep(interval)


# ---------------------------------------------------------------- versions and machine

def _out(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    frr = _out(["/usr/lib/frr/bgpd", "--version"]).splitlines()
    gobgp = _out(["gobgpd", "--version"]).splitlines()
    bird = _out(["bird", "--version"]).splitlines()
    return {
        "Python": sys.version.split()[0],
        "FRR": frr[0] if frr else "?",
        "GoBGP": gobgp[0] if gobgp else "?",
        "BIRD": bird[0] if bird else "?",
        "ExaBGP": _dist_version("exabgp"),
    }


def machine() -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {"nproc": str(os.cpu_count()), "memory": f"{int(mem) / 1048576:.1f} GiB",
            "kernel": os.uname().release, "cpu": cpu}


def git_commit() -> str:
    return _out(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"]) or "?"
