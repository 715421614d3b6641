"""BFD failure detection time: speakerd against FRR bfdd, 50 ms x 3.

Two namespaces (``sdb-bench-<pid>-f`` / ``-s``) joined by a veth; FRR bfdd in
one, ``python -m speakerd.net.bfd`` in the other.  Each round waits for the
session to be Up, cuts the link with an nftables drop rule in speakerd's
namespace, and measures cut → speakerd reports Down (CLOCK_MONOTONIC is the
same clock in every namespace).  The cut instant is taken just before ``nft``
runs, so figures include the time nft takes to install the rule (reported).

    sudo .venv/bin/python bench/bfd_detect.py [--rounds 20] [--write-docs]

Needs root, FRR (zebra, bfdd, vtysh) and nft.  Traffic stays on the veth.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRR_ADDR, SP_ADDR = "10.201.0.1", "10.201.0.2"
HEADING = "## BFD detection (bench/bfd_detect.py)"


def sh(*cmd: str, check: bool = True) -> None:
    subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=20)


def wait_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.05)


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * p // 100) - 1))
    return sorted_values[int(k)]


class Bench:
    def __init__(self, interval: int, mult: int) -> None:
        tag = f"sdb-bench-{os.getpid()}"
        self.frr_ns, self.sp_ns = f"{tag}-f", f"{tag}-s"
        self.dir = Path(tempfile.mkdtemp(prefix="sdb-bench-"))
        self.interval, self.mult = interval, mult
        self.proc: subprocess.Popen | None = None
        self.events: queue.Queue = queue.Queue()

    def setup(self) -> None:
        f, s, d = self.frr_ns, self.sp_ns, str(self.dir)
        sh("ip", "netns", "add", f)
        sh("ip", "netns", "add", s)
        sh("ip", "link", "add", "sdbf", "netns", f, "type", "veth", "peer", "name", "sdbs", "netns", s)
        for ns, dev, addr in ((f, "sdbf", FRR_ADDR), (s, "sdbs", SP_ADDR)):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        os.chmod(self.dir, 0o777)
        (self.dir / "zebra.conf").write_text("hostname sdb-bench\n")
        (self.dir / "frr.conf").write_text(
            f"hostname sdb-bench\nbfd\n peer {SP_ADDR} local-address {FRR_ADDR} interface sdbf\n"
            f"  receive-interval {self.interval}\n  transmit-interval {self.interval}\n"
            f"  detect-multiplier {self.mult}\n !\n!\n")
        sh("ip", "netns", "exec", f, "/usr/lib/frr/zebra", "-u", "frr", "-g", "frr", "-d", "-P", "0",
           "--vty_socket", d, "-z", f"{d}/zserv.api", "-f", f"{d}/zebra.conf", "-i", f"{d}/zebra.pid")
        wait_file(self.dir / "zserv.api", 10)
        sh("ip", "netns", "exec", f, "/usr/lib/frr/bfdd", "-u", "frr", "-g", "frr", "-d", "-P", "0",
           "--vty_socket", d, "-z", f"{d}/zserv.api", "-f", f"{d}/frr.conf", "-i", f"{d}/bfdd.pid")
        wait_file(self.dir / "bfdd.vty", 10)
        nft = ("ip", "netns", "exec", s, "nft")
        sh(*nft, "add", "table", "inet", "sdbcut")
        sh(*nft, "add", "chain", "inet", "sdbcut", "input", "{ type filter hook input priority 0 ; }")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", s, sys.executable, "-m", "speakerd.net.bfd", "--peer", FRR_ADDR,
             "--local", SP_ADDR, "--tx", str(self.interval), "--rx", str(self.interval),
             "--mult", str(self.mult)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=ROOT)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.put(json.loads(line))
        self.events.put(None)

    def wait_state(self, state: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            ev = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            if ev is None:
                raise RuntimeError("helper exited")
            if ev.get("event") == "state" and ev["state"] == state:
                return ev

    def cut(self) -> tuple[float, float]:
        t0 = time.monotonic()
        sh("ip", "netns", "exec", self.sp_ns, "nft", "add", "rule", "inet", "sdbcut", "input",
           "ip", "saddr", FRR_ADDR, "drop")
        return t0, time.monotonic() - t0

    def heal(self) -> None:
        sh("ip", "netns", "exec", self.sp_ns, "nft", "flush", "chain", "inet", "sdbcut", "input")

    def teardown(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for name in ("bfdd", "zebra"):
            try:
                os.kill(int((self.dir / f"{name}.pid").read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        for ns in (self.frr_ns, self.sp_ns):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def write_docs(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text() if path.exists() else "# speakerd benchmarks\n"
    start = doc.find(HEADING)
    if start == -1:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        nxt = doc.find("\n## ", start + len(HEADING))
        doc = doc[:start] + text + ("" if nxt == -1 else doc[nxt + 1:])
    path.write_text(doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--interval", type=int, default=50, help="rx/tx interval, ms (both sides)")
    ap.add_argument("--mult", type=int, default=3)
    ap.add_argument("--write-docs", action="store_true", help=f"replace '{HEADING}' in docs/benchmarks.md")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    bench = Bench(args.interval, args.mult)
    detections, nft_times = [], []
    try:
        bench.setup()
        bench.wait_state("up", 15)
        for i in range(args.rounds):
            time.sleep(0.3 + (i % 5) * 0.013)  # settle after Up and the poll; vary the phase
            t_cut, nft_s = bench.cut()
            ev = bench.wait_state("down", 5)
            if ev["diag"] != 1:
                raise RuntimeError(f"unexpected diag {ev}")
            detections.append((ev["t"] - t_cut) * 1000)
            nft_times.append(nft_s * 1000)
            bench.heal()
            bench.wait_state("up", 15)
    finally:
        bench.teardown()
    d = sorted(detections)
    expected = args.mult * args.interval
    lines = [
        HEADING, "",
        f"speakerd (`python -m speakerd.net.bfd`) against FRR 8.4 bfdd over a veth, "
        f"{args.interval} ms × {args.mult} both sides (detection time {expected} ms); "
        f"{len(d)} cuts with an nftables drop rule; time from just before `nft` runs to speakerd "
        "reporting Down (diag 1). Command: `sudo .venv/bin/python bench/bfd_detect.py --write-docs`.",
        "",
        "| p50 | p90 | p99 | max | min | mean |",
        "|---|---|---|---|---|---|",
        f"| {pct(d, 50):.0f} ms | {pct(d, 90):.0f} ms | {pct(d, 99):.0f} ms | {d[-1]:.0f} ms "
        f"| {d[0]:.0f} ms | {statistics.fmean(d):.0f} ms |",
        "",
        f"`nft` itself took {statistics.median(nft_times):.0f} ms median "
        f"(max {max(nft_times):.0f} ms) of that; the rule takes effect somewhere inside it. "
        f"Expected range: {expected - args.interval} – {expected} ms after the last packet that got "
        "through, plus timer and scheduling latency.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    print("raw ms:", " ".join(f"{x:.1f}" for x in detections))
    if args.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
