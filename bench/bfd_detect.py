"""BFD failure detection time against FRR, 50 ms x 3: BFD Down and BGP session closed.

Two measurements, each with two namespaces joined by a veth and nftables
drop rules in speakerd's namespace as the cut:

* ``helper``: FRR bfdd alone against ``python -m speakerd.net.bfd`` (one
  BfdManager); cut -> speakerd reports BFD Down (CLOCK_MONOTONIC, the same
  clock in every namespace).
* ``daemon``: FRR zebra + bgpd + bfdd (``neighbor X bfd profile``) against
  ``speakerd run`` with a BGPPeer naming a BFDProfile and holdTime 30 s; cut
  -> speakerd closes the BGP session with Cease/BFD Down, taken from the
  wall-clock time of the daemon's history entry (``speakerctl show history``),
  and cut -> BFD Down from the daemon's log line (millisecond timestamps).

The cut instant is taken just before ``nft`` runs, so the figures include
the time nft takes to install the rule (reported).

    sudo .venv/bin/python bench/bfd_detect.py [--rounds 20] [--mode both|helper|daemon] [--write-docs]

Needs root, FRR (zebra, bgpd, bfdd, vtysh) and nft.  Traffic stays on the veth.
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
sys.path.insert(0, str(ROOT))
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


class DaemonBench:
    """``speakerd run`` against FRR bgpd + bfdd in a netlab Lab (cleaned up by PID on exit)."""

    def __init__(self, interval: int, mult: int) -> None:
        from tests.interop import netlab
        self.netlab, self.interval, self.mult = netlab, interval, mult
        self.lab = netlab.Lab("bfd-bench")

    def setup(self) -> None:
        from tests.interop.netlab import Neighbor, Speakerd, advertisement, bgp_peer, manifests, node, pool, service
        from tests.interop.test_bfd_daemon import BfdFrr, bfd_profile
        nl = self.netlab
        lab = self.lab.__enter__()
        self.s, f = lab.ns("bs"), lab.ns("bf")
        link = lab.link(self.s, f)
        self.sp_addr, self.frr_addr = link.addr(self.s), link.addr(f)
        timers = {"receive-interval": self.interval, "transmit-interval": self.interval,
                  "detect-multiplier": self.mult}
        self.frr = BfdFrr(f, lab.subdir("frr"), 64501, "192.0.2.2", bfd=timers,
                          neighbors=[Neighbor(self.sp_addr, 64500, bfd=True, hold=30, keepalive=10)])
        config = manifests(lab.subdir("config"), [
            node("node1"),
            bfd_profile("fast", receiveInterval=self.interval, transmitInterval=self.interval,
                        detectMultiplier=self.mult),
            bgp_peer("frr", 64500, 64501, self.frr_addr, holdTime="30s", keepaliveTime="10s",
                     connectTime="1s", bfdProfile="fast"),
            pool("lab", ["203.0.113.0/24"]), advertisement("lab", ipAddressPools=["lab"]),
            service("svc", ["203.0.113.10"])])
        self.sp = Speakerd(self.s, config, "node1", socket=lab.dir / "speakerd.sock",
                           extra_args=("--log-level", "info", "--watch", "0"))
        # the chain exists before the first round: a cut is then one nft run adding one rule
        self.s.exec("nft", "add table inet sdbcut")
        self.s.exec("nft", "add chain inet sdbcut input { type filter hook input priority -10 ; }")
        self.wait_up()
        nl.wait_for(lambda: self.frr.established(self.sp_addr), 30, "FRR Established")

    def history(self) -> list[dict]:
        return self.sp.ctl("show", "history")["history"]

    def bfd_up(self) -> bool:
        rows = self.sp.ctl("show", "bfd", "peers")["bfd_peers"]
        return bool(rows) and rows[0]["state"] == "up"

    def wait_up(self) -> None:
        self.netlab.wait_for(lambda: self.sp.established(self.frr_addr) and self.bfd_up(), 30,
                             "speakerd Established with BFD Up")

    def round(self) -> tuple[float, float, float]:
        """One cut: (cut -> BFD Down, cut -> BGP closed, nft time), seconds."""
        log_mark = len(self.sp.log)
        t_cut = time.time()
        self.s.exec("nft", f"add rule inet sdbcut input ip saddr {self.frr_addr} drop")
        nft_s = time.time() - t_cut
        entry = self.netlab.wait_for(
            # by time, not by index: the daemon keeps the last 100 entries per peer
            lambda: next((e for e in self.history() if e["from"] == "Established" and e["time"] >= t_cut), None),
            10, "speakerd closes the BGP session")
        if entry["cause"] != "bfd_down":
            raise RuntimeError(f"session closed for another reason: {entry}")
        bfd_down = _log_time(self.sp.log[log_mark:], "-> DOWN (CONTROL_DETECTION_EXPIRED)")
        self.s.exec("nft", "flush chain inet sdbcut input")
        self.wait_up()
        return bfd_down - t_cut, entry["time"] - t_cut, nft_s

    def teardown(self) -> None:
        self.lab.close()


def _log_time(text: str, marker: str) -> float:
    """Wall-clock time of the first log line containing ``marker`` (``2026-...T..:..:..mmmZ`` UTC)."""
    import datetime as dt
    for line in text.splitlines():
        if marker in line:
            stamp = line.split(" ", 1)[0].rstrip("Z")
            return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=dt.timezone.utc).timestamp()
    raise RuntimeError(f"no log line with {marker!r}")


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


def _row(ms: list[float]) -> str:
    d = sorted(ms)
    return (f"| {pct(d, 50):.0f} ms | {pct(d, 90):.0f} ms | {pct(d, 99):.0f} ms | {d[-1]:.0f} ms "
            f"| {d[0]:.0f} ms | {statistics.fmean(d):.0f} ms |")


def run_helper(rounds: int, interval: int, mult: int) -> tuple[list[float], list[float]]:
    bench = Bench(interval, mult)
    detections, nft_times = [], []
    try:
        bench.setup()
        bench.wait_state("up", 15)
        for i in range(rounds):
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
    return detections, nft_times


def run_daemon(rounds: int, interval: int, mult: int) -> tuple[list[float], list[float], list[float]]:
    bench = DaemonBench(interval, mult)
    bfd, bgp, nft = [], [], []
    try:
        bench.setup()
        for i in range(rounds):
            time.sleep(0.3 + (i % 5) * 0.013)  # vary the phase against the TX timers
            a, b, n = bench.round()
            bfd.append(a * 1000)
            bgp.append(b * 1000)
            nft.append(n * 1000)
    finally:
        bench.teardown()
    return bfd, bgp, nft


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--interval", type=int, default=50, help="rx/tx interval, ms (both sides)")
    ap.add_argument("--mult", type=int, default=3)
    ap.add_argument("--mode", choices=("both", "helper", "daemon"), default="both")
    ap.add_argument("--write-docs", action="store_true", help=f"replace '{HEADING}' in docs/benchmarks.md")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    expected = args.mult * args.interval
    cmd = "`sudo .venv/bin/python bench/bfd_detect.py --write-docs`"
    lines = [HEADING, "",
             f"FRR 8.4 over a veth, {args.interval} ms × {args.mult} on both sides (detection time "
             f"{expected} ms); {args.rounds} cuts per row with nftables drop rules in speakerd's namespace, "
             f"timed from just before `nft` runs. Command: {cmd}.", "",
             "| measurement | p50 | p90 | p99 | max | min | mean |",
             "|---|---|---|---|---|---|---|"]
    raw, nft_all, gap_note = [], [], ""
    if args.mode in ("both", "daemon"):
        bfd, bgp, nft = run_daemon(args.rounds, args.interval, args.mult)
        lines.append("| `speakerd run` vs bgpd+bfdd: cut → BGP session closed (Cease/BFD Down; history entry) "
                     + _row(bgp))
        lines.append("| `speakerd run` vs bgpd+bfdd: cut → BFD Down (daemon log line) " + _row(bfd))
        gaps = sorted(b - a for a, b in zip(bfd, bgp))
        gap_note = (f" In the daemon, the BGP close came {statistics.median(gaps):.0f} ms (median; max "
                    f"{gaps[-1]:.0f} ms) after the BFD Down log line; both timestamps have millisecond "
                    "resolution.")
        raw += [f"daemon BGP closed ms: {' '.join(f'{x:.1f}' for x in bgp)}",
                f"daemon BFD down ms: {' '.join(f'{x:.1f}' for x in bfd)}"]
        nft_all += nft
    if args.mode in ("both", "helper"):
        det, nft = run_helper(args.rounds, args.interval, args.mult)
        lines.append("| `python -m speakerd.net.bfd` vs bfdd: cut → BFD Down (diag 1) " + _row(det))
        raw.append(f"helper BFD down ms: {' '.join(f'{x:.1f}' for x in det)}")
        nft_all += nft
    lines += ["",
              f"`nft` itself took {statistics.median(nft_all):.0f} ms median (max {max(nft_all):.0f} ms) of "
              "that; the rule takes effect somewhere inside it. Expected BFD range: "
              f"{expected - args.interval} – {expected} ms after the last packet that got through, plus timer "
              f"and scheduling latency.{gap_note} The BGP hold time is 30 s, so every close is BFD's.", ""]
    text = "\n".join(lines)
    print(text)
    print("\n".join(raw))
    if args.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
