"""speakerd BFD against FRR bfdd, across a veth between two namespaces.

Namespace ``sdb-<pid>-f`` runs zebra + bfdd with a static ``bfd`` / ``peer``
block; ``sdb-<pid>-s`` runs ``python -m speakerd.net.bfd`` (one BfdManager,
state changes as JSON lines).  Traffic is cut with an nftables drop rule in
speakerd's namespace.  Everything is cleaned up by PID and namespace name.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

BFDD = "/usr/lib/frr/bfdd"
ZEBRA = "/usr/lib/frr/zebra"
ROOT = Path(__file__).resolve().parents[2]

if os.geteuid() != 0 or not os.path.exists(BFDD) or not shutil.which("vtysh") or not shutil.which("nft"):
    pytest.skip("needs root, FRR bfdd, vtysh and nft", allow_module_level=True)

V4 = ("10.201.0.1", "10.201.0.2", 30)  # FRR side, speakerd side
V6 = ("fd00:201::1", "fd00:201::2", 64)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=20)


def gone(pid: int) -> bool:
    """True once the process has exited (a zombie counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Helper:
    """The speakerd side: one process, JSON lines read by a thread."""

    def __init__(self, ns: str, peer: str, local: str, tx: int, rx: int, mult: int,
                 extra: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "speakerd.net.bfd", "--peer", peer,
             "--local", local, "--tx", str(tx), "--rx", str(rx), "--mult", str(mult), *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def expect(self, pred, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; saw {self.seen}")
            try:
                ev = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                raise AssertionError(f"helper exited while waiting for {what}; saw {self.seen}")
            self.seen.append(ev)
            if pred(ev):
                return ev

    def command(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit")
                self.proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=3)


def state_is(state: str, diag: int | None = None):
    return lambda ev: ev.get("event") == "state" and ev["state"] == state and (
        diag is None or ev["diag"] == diag)


class Lab:
    def __init__(self) -> None:
        tag = f"sdb-{os.getpid()}"
        self.frr_ns, self.sp_ns = f"{tag}-f", f"{tag}-s"
        self.dir = Path(tempfile.mkdtemp(prefix="sdb-frr-"))
        self.helpers: list[Helper] = []

    def setup(self, rx: int, tx: int, mult: int, multihop: bool = False) -> None:
        f, s = self.frr_ns, self.sp_ns
        sh("ip", "netns", "add", f)
        sh("ip", "netns", "add", s)
        sh("ip", "link", "add", "sdbf", "netns", f, "type", "veth", "peer", "name", "sdbs", "netns", s)
        for ns, dev, v4, v6 in ((f, "sdbf", V4[0], V6[0]), (s, "sdbs", V4[1], V6[1])):
            sh("ip", "-n", ns, "addr", "add", f"{v4}/{V4[2]}", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"{v6}/{V6[2]}", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        os.chmod(self.dir, 0o777)
        conf = ["hostname sdb-frr", "bfd"]
        for frr_addr, sp_addr in ((V4[0], V4[1]), (V6[0], V6[1])):
            conf += [f" peer {sp_addr} local-address {frr_addr} interface sdbf",
                     f"  receive-interval {rx}", f"  transmit-interval {tx}",
                     f"  detect-multiplier {mult}", " !"]
        if multihop:
            conf += [f" peer {V4[1]} multihop local-address {V4[0]}", "  minimum-ttl 254",
                     f"  receive-interval {rx}", f"  transmit-interval {tx}",
                     f"  detect-multiplier {mult}", " !"]
        (self.dir / "frr.conf").write_text("\n".join(conf + ["!", ""]))
        (self.dir / "zebra.conf").write_text("hostname sdb-frr\n")
        d = str(self.dir)
        sh("ip", "netns", "exec", f, ZEBRA, "-u", "frr", "-g", "frr", "-d", "-P", "0",
           "--vty_socket", d, "-z", f"{d}/zserv.api", "-f", f"{d}/zebra.conf",
           "-i", f"{d}/zebra.pid", "--log", f"file:{d}/zebra.log")
        wait_for(lambda: (self.dir / "zserv.api").exists(), 10, "zebra socket")
        sh("ip", "netns", "exec", f, BFDD, "-u", "frr", "-g", "frr", "-d", "-P", "0",
           "--vty_socket", d, "-z", f"{d}/zserv.api", "-f", f"{d}/frr.conf",
           "-i", f"{d}/bfdd.pid", "--log", f"file:{d}/bfdd.log")
        wait_for(lambda: (self.dir / "bfdd.vty").exists(), 10, "bfdd vty")

    def helper(self, peer: str, local: str, tx: int, rx: int, mult: int, *extra: str) -> Helper:
        h = Helper(self.sp_ns, peer, local, tx, rx, mult, extra)
        self.helpers.append(h)
        h.expect(lambda ev: ev["event"] == "ready", 10, "helper ready")
        return h

    def frr_peers(self) -> dict[str, dict]:
        out = sh("vtysh", "--vty_socket", str(self.dir), "-c", "show bfd peers json", check=False)
        try:
            return {(p["peer"] + ("/mh" if p["multihop"] else "")): p
                    for p in json.loads(out.stdout or "[]")}
        except json.JSONDecodeError:
            return {}

    def cut(self, frr_addr: str) -> None:
        fam = "ip6" if ":" in frr_addr else "ip"
        ns = ("ip", "netns", "exec", self.sp_ns, "nft")
        sh(*ns, "add", "table", "inet", "sdbcut")
        sh(*ns, "add", "chain", "inet", "sdbcut", "input", "{ type filter hook input priority 0 ; }")
        sh(*ns, "add", "rule", "inet", "sdbcut", "input", fam, "saddr", frr_addr, "drop")

    def teardown(self) -> None:
        for h in self.helpers:
            h.stop()
        for name in ("bfdd", "zebra"):
            try:
                pid = int((self.dir / f"{name}.pid").read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
                wait_for(lambda: gone(pid), 5, f"{name} exit")
            except (OSError, AssertionError):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for ns in (self.frr_ns, self.sp_ns):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def lab():
    lab = Lab()
    try:
        yield lab
    finally:
        lab.teardown()


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_frr_up_intervals_then_cut_detected(lab, family):
    frr_addr, sp_addr, _ = V4 if family == "ipv4" else V6
    lab.setup(rx=50, tx=50, mult=3)
    # speakerd asks for different values than FRR's so FRR's view proves they crossed the wire
    h = lab.helper(frr_addr, sp_addr, tx=60, rx=70, mult=4)
    h.expect(state_is("up"), 15, "speakerd Up")

    def frr_up():
        p = lab.frr_peers().get(sp_addr)
        return p if p and p["status"] == "up" and p["remote-transmit-interval"] == 60 else None
    peer = wait_for(frr_up, 10, "FRR peer up with speakerd's intervals")
    assert peer["remote-receive-interval"] == 70
    assert peer["remote-transmit-interval"] == 60
    assert peer["remote-detect-multiplier"] == 4

    h.command("show")
    rows = h.expect(lambda ev: ev["event"] == "sessions", 5, "sessions")["sessions"]
    (row,) = rows
    assert row["state"] == "up" and row["remote_discr"] == peer["id"]
    assert row["local_discr"] == peer["remote-id"]
    assert row["tx_interval_ms"] == 60  # max(our 60 TX, FRR's 50 RX)
    assert row["detect_time_ms"] == 3 * 70  # FRR's multiplier x max(our 70 RX, FRR's 50 TX)

    lab.cut(frr_addr)
    ev = h.expect(state_is("down"), 5, "speakerd Down after the cut")
    assert ev["diag"] == 1 and ev["diag_name"] == "control_detection_expired"


def test_frr_shutdown_is_admin_down_not_failure(lab):
    lab.setup(rx=50, tx=50, mult=3)
    h = lab.helper(V4[0], V4[1], tx=50, rx=50, mult=3)
    h.expect(state_is("up"), 15, "speakerd Up")
    sh("vtysh", "--vty_socket", str(lab.dir), "-c", "configure terminal", "-c", "bfd",
       "-c", f"peer {V4[1]} local-address {V4[0]} interface sdbf", "-c", "shutdown")
    ev = h.expect(state_is("down"), 5, "speakerd Down after FRR shutdown")
    assert ev["diag_name"] == "admin_down"  # the daemon keeps BGP up for this one


def test_speakerd_remove_shows_admin_down_in_frr(lab):
    lab.setup(rx=50, tx=50, mult=3)
    h = lab.helper(V4[0], V4[1], tx=50, rx=50, mult=3)
    h.expect(state_is("up"), 15, "speakerd Up")
    wait_for(lambda: lab.frr_peers().get(V4[1], {}).get("status") == "up", 10, "FRR up")
    h.command("remove")
    peer = wait_for(lambda: (p := lab.frr_peers().get(V4[1])) and p["status"] != "up" and p,
                    5, "FRR peer down")
    # FRR records the AdminDown as diag 3, neighbor signaled down; not a detection timeout
    assert peer["diagnostic"] == "neighbor signaled session down"
    assert peer["remote-diagnostic"] == "administratively down"


def test_frr_single_hop_bound_to_device(lab):
    """SO_BINDTODEVICE (what a peer's VRF uses) against the veth device."""
    lab.setup(rx=50, tx=50, mult=3)
    h = lab.helper(V4[0], V4[1], 50, 50, 3, "--vrf", "sdbs")
    h.expect(state_is("up"), 15, "speakerd Up on the bound device")
    wait_for(lambda: lab.frr_peers().get(V4[1], {}).get("status") == "up", 10, "FRR up")


def test_frr_multihop_with_minimum_ttl(lab):
    lab.setup(rx=50, tx=50, mult=3, multihop=True)
    h = lab.helper(V4[0], V4[1], 60, 60, 3, "--multihop", "--min-ttl", "254")
    h.expect(state_is("up"), 15, "speakerd multihop Up")
    peer = wait_for(lambda: (p := lab.frr_peers().get(V4[1] + "/mh")) and p["status"] == "up"
                    and p["remote-transmit-interval"] == 60 and p, 10, "FRR multihop peer up")
    assert peer["multihop"] is True
    lab.cut(V4[0])
    ev = h.expect(state_is("down"), 5, "speakerd Down after the cut")
    assert ev["diag"] == 1
