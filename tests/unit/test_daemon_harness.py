"""Two real speakerd daemons on loopback, driven through the real CLIs.

:class:`DaemonPair` copies the demo configuration (config/examples/demo) into
a temporary directory, rewrites its addresses and port to a pair of loopback
addresses and a high port not used by any other test, and starts the receiver
and the sender as ``python -m speakerd.cli run`` subprocesses.  Everything the
tests ask goes through ``python -m speakerd.ctl`` (speakerctl), so output is
parsed exactly as an operator would see it.

Only 127.0.0.0/8 is used.  Every process is stopped by PID, even when a test
fails.  The other ``test_daemon_*``/``test_ctl_*``/``test_control_*`` modules
import :class:`DaemonPair` and the fixtures from here.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "examples" / "demo"
PY = sys.executable
DEADLINE = 20.0  # seconds to wait for anything the daemons do on their own

# the demo's own values, rewritten per test
DEMO_RECEIVER_IP = "127.0.0.1"
DEMO_SENDER_IP = "127.0.0.2"
DEMO_PORT = "11179"

_counter = itertools.count()


def _bindable(addr: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, port))
        except OSError:
            return False
    return True


def loopback_endpoints() -> tuple[str, str, int]:
    """Two loopback addresses and a port free on both, unique per call and per process."""
    n = next(_counter)
    for _ in range(200):
        # 127.<pid-derived>.<n>.1/.2: other test processes get other second octets
        second = 100 + (os.getpid() + random.randrange(50)) % 150
        third = (n * 7 + random.randrange(7)) % 250 + 1
        a, b = f"127.{second}.{third}.1", f"127.{second}.{third}.2"
        port = random.randrange(12000, 16380)  # MetalLB allows peerPort up to 16384
        if _bindable(a, port) and _bindable(b, port) and _bindable(a, port + 1) and _bindable(b, port + 1):
            return a, b, port
    raise RuntimeError("no free loopback port found")


def free_tcp_port(addr: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def rewrite(text: str, receiver_ip: str, sender_ip: str, port: int) -> str:
    return (text.replace(DEMO_RECEIVER_IP, "\0R").replace(DEMO_SENDER_IP, "\0S")
            .replace("\0R", receiver_ip).replace("\0S", sender_ip).replace(DEMO_PORT, str(port)))


class Daemon:
    """One ``speakerd run`` subprocess and its control socket."""

    def __init__(self, name: str, node: str, workdir: Path, config_dir: Path, *,
                 metrics: str | None = None, trace: str | None = None, log_format: str = "json",
                 watch: float = 0) -> None:
        self.name, self.node, self.workdir, self.config_dir = name, node, workdir, config_dir
        self.socket = str(workdir / f"{name}.sock")
        self.state = str(workdir / f"{name}-state.json")
        self.log_path = workdir / f"{name}.log"
        self.metrics, self.trace, self.log_format = metrics, trace, log_format
        self.watch = watch  # seconds between config file checks; 0: reload only when asked
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.extra_args: list[str] = []  # more `speakerd run` options

    def start(self) -> None:
        cmd = [PY, "-m", "speakerd.cli", "run", "-c", str(self.config_dir), "--node", self.node,
               "--socket", self.socket, "--state", self.state, "--watch", str(self.watch),
               "--log-format", self.log_format]
        if self.metrics:
            cmd += ["--metrics", self.metrics]
        if self.trace:
            cmd += ["--trace", self.trace]
        cmd += self.extra_args
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + DEADLINE
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no control socket after {DEADLINE}s:\n{self.log_text()}")
            time.sleep(0.05)

    # ------------------------------------------------------------- speakerctl
    def ctl(self, *words: str, json_out: bool = False, timeout: float = 30) -> subprocess.CompletedProcess:
        cmd = [PY, "-m", "speakerd.ctl", "--socket", self.socket] + (["--json"] if json_out else []) + list(words)
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

    def ctl_json(self, *words: str) -> dict:
        r = self.ctl(*words, json_out=True)
        assert r.returncode == 0, f"speakerctl {' '.join(words)} -> {r.returncode}: {r.stderr}"
        return json.loads(r.stdout)

    def ctl_text(self, *words: str) -> str:
        r = self.ctl(*words)
        assert r.returncode == 0, f"speakerctl {' '.join(words)} -> {r.returncode}: {r.stderr}"
        return r.stdout

    def neighbor(self, peer: str) -> dict:
        (n,) = self.ctl_json("show", "bgp", "neighbors", peer)["neighbors"]
        return n

    def wait_for(self, what: str, predicate, timeout: float = DEADLINE):
        """Poll ``predicate()`` (speakerctl questions) until truthy; a bounded deadline."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: timed out waiting for {what} (last {last!r})\n{self.log_text()}")

    def wait_established(self, peer: str) -> dict:
        def up():
            rows = self.ctl_json("show", "bgp", "summary")["peers"]
            row = next((r for r in rows if r["peer"] == peer), None)
            return row if row and row["state"] == "Established" else None
        return self.wait_for(f"{peer} Established", up)

    # -------------------------------------------------------------- stopping
    def terminate(self, timeout: float = DEADLINE) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return self.returncode or 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        finally:
            self.kill()
        return self.returncode

    def kill(self) -> None:
        """Last resort, by PID: the process of this object only."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if getattr(self, "_log", None) is not None and not self._log.closed:
            self._log.close()

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict]:
        """Every log line parsed as JSON (fails on a line that is not)."""
        return [json.loads(line) for line in self.log_text().splitlines() if line.strip()]


class DaemonPair:
    """The demo: receiver (no routes) and sender (node demo-node) on two loopback addresses."""

    def __init__(self, workdir: Path, *, sender_metrics: bool = False, receiver_metrics: bool = False,
                 trace: str | None = None, sender_extra: str = "", receiver_peer_asn: int | None = None,
                 password: str | None = None, sender_watch: float = 0) -> None:
        self.workdir = workdir
        self.receiver_ip, self.sender_ip, self.port = loopback_endpoints()
        self.receiver_dir = workdir / "receiver"
        self.sender_dir = workdir / "sender"
        self.receiver_dir.mkdir(parents=True)
        self.sender_dir.mkdir(parents=True)
        recv = self._demo("receiver/receiver.yaml")
        send = self._demo("sender/sender.yaml")
        if receiver_peer_asn is not None:
            recv = recv.replace("peerASN: 64512", f"peerASN: {receiver_peer_asn}")
        if password:
            recv = recv.replace("  holdTime:", f"  password: {password}\n  holdTime:")
            send = send.replace("  holdTime:", f"  password: {password}\n  holdTime:", 1)
        self.receiver_yaml = self.receiver_dir / "receiver.yaml"
        self.sender_yaml = self.sender_dir / "sender.yaml"
        self.receiver_yaml.write_text(recv)
        self.sender_yaml.write_text(send + sender_extra)
        self.metrics_port = free_tcp_port() if sender_metrics else None
        self.receiver_metrics_port = free_tcp_port() if receiver_metrics else None
        self.receiver = Daemon("receiver", "receiver", workdir, self.receiver_dir,
                               metrics=f"127.0.0.1:{self.receiver_metrics_port}" if receiver_metrics else None,
                               )
        self.sender = Daemon("sender", "demo-node", workdir, self.sender_dir,
                             metrics=f"127.0.0.1:{self.metrics_port}" if sender_metrics else None,
                             trace=trace, watch=sender_watch)

    def _demo(self, rel: str) -> str:
        return rewrite((DEMO / rel).read_text(), self.receiver_ip, self.sender_ip, self.port)

    def start(self, wait: bool = True) -> "DaemonPair":
        # the receiver first: the sender's first connect then succeeds at once
        self.receiver.start()
        self.sender.start()
        if wait:
            self.sender.wait_established("receiver")
            self.receiver.wait_established("sender")
        return self

    def wait_received(self, family: str, count: int) -> list[dict]:
        def have():
            rows = self.receiver.ctl_json("show", "bgp", family, "received-routes", "sender")["routes"]
            return rows if len(rows) >= count else None
        return self.receiver.wait_for(f"{count} {family} routes from the sender", have)

    def stop(self) -> None:
        for d in (self.sender, self.receiver):
            try:
                d.terminate()
            except Exception:
                d.kill()

    def kill(self) -> None:
        for d in (self.sender, self.receiver):
            d.kill()


# what the demo manifests ask for (speakerd plan -c config/examples/demo/sender --node demo-node)
PLANNED_V4 = {"198.51.100.0/26", "198.51.100.24/32", "198.51.100.34/32", "198.51.100.53/32"}
PLANNED_V6 = {"2001:db8:100::/120", "2001:db8:100::e2/128"}
HOST_V4 = PLANNED_V4 - {"198.51.100.0/26"}
# one more Service for the demo sender's file (a reload that only adds a route)
EXTRA_SERVICE = """
---
apiVersion: v1
kind: Service
metadata:
  name: extra
  namespace: demo
  annotations:
    metallb.universe.tf/loadBalancerIPs: 198.51.100.60
spec:
  type: LoadBalancer
  ports:
  - port: 8443
"""


@pytest.fixture
def pair(tmp_path):
    """A started demo pair for one test; stopped (SIGTERM, then by PID) afterwards."""
    p = DaemonPair(tmp_path)
    try:
        p.start()
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def shared_pair(tmp_path_factory):
    """One demo pair for a module of read-only questions, with metrics and a trace on the sender."""
    p = DaemonPair(tmp_path_factory.mktemp("pair"), sender_metrics=True, trace="receiver")
    try:
        p.start()
        p.wait_received("ipv4", len(PLANNED_V4))
        p.wait_received("ipv6", len(PLANNED_V6))
        yield p
    finally:
        p.stop()


# --------------------------------------------------------------------- tests


def test_sigterm_sends_cease_with_message_and_exits_zero(pair):
    """Graceful stop: Cease/Administrative Shutdown with the RFC 9003 message, exit code 0."""
    pair.wait_received("ipv4", len(PLANNED_V4))
    assert pair.sender.terminate() == 0

    def got_cease():
        n = pair.receiver.neighbor("sender")
        return n if n["last_notification_received"] else None

    n = pair.receiver.wait_for("the sender's NOTIFICATION", got_cease)
    note = n["last_notification_received"]
    assert (note["code"], note["subcode"]) == (6, 2)
    assert note["name"] == "Cease/Administrative Shutdown"
    assert note["message"] == "speakerd is shutting down"
    assert note["hint"] == "administrative shutdown"
    assert n["state"] != "Established"
    # the survivor dropped the routes of the stopped session
    assert pair.receiver.ctl_json("show", "bgp", "ipv4", "received-routes", "sender")["routes"] == []
    assert pair.receiver.terminate() == 0
    # the socket is removed on exit
    assert not os.path.exists(pair.receiver.socket)


def test_sigterm_logs_the_shutdown(pair):
    assert pair.sender.terminate() == 0
    msgs = [r["msg"] for r in pair.sender.log_records()]
    assert any("Cease/Administrative Shutdown" in m for m in msgs)
    assert pair.receiver.terminate() == 0


def test_daemon_refuses_to_start_on_invalid_config(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "bad.yaml").write_text(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: p\n  namespace: metallb-system\n"
        "spec:\n  addresses:\n  - 300.1.2.0/24\n")
    d = Daemon("bad", "n", tmp_path, cfg)
    try:
        with pytest.raises(AssertionError, match="exited with 2"):
            d.start()
        assert "IPAddressPool/p" in d.log_text()
    finally:
        d.kill()
