"""Two real speakerd daemons on loopback, and a raw BGP peer to be hostile with.

Addresses (127.0.77.0/24 is this suite's own corner of loopback):

* 127.0.77.1 — the daemon under test (DUT), AS 64512, router id 10.77.0.1.
  Peers: ``healthy`` (127.0.77.2, eBGP AS 64513) and ``hostile``
  (127.0.77.3, iBGP AS 64512, so the own-identifier rule applies).
* 127.0.77.2 — the healthy peer: a second speakerd advertising its own pool
  to the DUT.
* 127.0.77.3 — the test's raw socket peer; it connects to the DUT's
  listener (the DUT accepts at once while the hostile session is Active; its
  own connects to 127.0.77.3 are refused since nothing listens there).

Only loopback is used; daemons are started with Popen and killed by PID.
"""
from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from speakerd.ctl import CtlError, call
from speakerd.wire.constants import HEADER_LEN, MARKER, TYPE_OFFSET

DUT, HEALTHY, HOSTILE = "127.0.77.1", "127.0.77.2", "127.0.77.3"
DUT_ASN, HEALTHY_ASN = 64512, 64513
DUT_ID = 0x0A4D0001  # 10.77.0.1
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A port free on every address this suite binds (MetalLB allows 1..16384)."""
    import random
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(12000, 16384)
        ok = True
        for addr in (DUT, HEALTHY, HOSTILE):
            with socket.socket() as t:
                try:
                    t.bind((addr, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no free port")


def _peer(name, my_asn, peer_asn, peer, source, port, router_id, hold="30s") -> str:
    return f"""apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: {name}, namespace: metallb-system}}
spec:
  myASN: {my_asn}
  peerASN: {peer_asn}
  peerAddress: {peer}
  peerPort: {port}
  sourceAddress: {source}
  routerID: {router_id}
  holdTime: {hold}
  connectTime: 1s
---
"""


def _pool(name, cidr, services) -> str:
    text = f"""apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: {name}, namespace: metallb-system}}
spec:
  addresses: [{cidr}]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: {name}-adv, namespace: metallb-system}}
spec:
  ipAddressPools: [{name}]
---
"""
    for svc in services:
        text += f"""apiVersion: v1
kind: Service
metadata: {{name: {svc}, namespace: demo}}
spec:
  type: LoadBalancer
  ports: [{{port: 80}}]
---
"""
    return text


def write_configs(base: Path, port: int) -> tuple[Path, Path]:
    dut, healthy = base / "dut", base / "healthy"
    dut.mkdir()
    healthy.mkdir()
    (dut / "config.yaml").write_text(
        _peer("healthy", DUT_ASN, HEALTHY_ASN, HEALTHY, DUT, port, "10.77.0.1")
        + _peer("hostile", DUT_ASN, DUT_ASN, HOSTILE, DUT, port, "10.77.0.1", hold="9s")
        + _pool("dut-pool", "198.51.100.0/28", ["web", "api", "db"]))
    (healthy / "config.yaml").write_text(
        _peer("dut", HEALTHY_ASN, DUT_ASN, DUT, HEALTHY, port, "10.77.0.2")
        + _pool("healthy-pool", "203.0.113.0/28", ["a", "b"]))
    return dut, healthy


class Daemon:
    """One ``speakerd run`` subprocess with its control socket."""

    def __init__(self, name: str, config: Path, base: Path) -> None:
        self.name = name
        self.socket = str(base / f"{name}.sock")
        self.log = base / f"{name}.log"
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "speakerd"), "run", "-c", str(config), "--node", "node-1",
             "--socket", self.socket, "--state", str(base / f"{name}.state.json"), "--watch", "0"],
            stdout=self._logf, stderr=subprocess.STDOUT, start_new_session=True)

    def ctl(self, command: str, **args):
        return call(self.socket, command, args, timeout=10.0)

    def neighbor(self, peer: str) -> dict:
        return self.ctl("neighbors", peer=peer)["neighbors"][0]

    def received(self, peer: str, family: str = "ipv4") -> list[str]:
        res = self.ctl("routes", family=family, direction="received", peer=peer)
        return [r["prefix"] for r in res["routes"]]

    def wait(self, what, timeout: float = 20.0, step: float = 0.05):
        """Poll ``what()`` until it returns something true, within ``timeout``."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}: "
                                     f"{self.log.read_text()[-2000:]}")
            try:
                last = what()
            except (CtlError, OSError) as e:
                last = e
            else:
                if last:
                    return last
            time.sleep(step)
        raise AssertionError(f"{self.name}: condition not met within {timeout}s (last: {last!r})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._logf.close()


# ------------------------------------------------------------------ raw peer

class RawPeer:
    """A blocking TCP socket from ``source`` to the DUT, reading whole BGP messages."""

    def __init__(self, source: str, port: int, timeout: float = 5.0, rcvbuf: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.settimeout(timeout)
        if rcvbuf:  # before connect, so the advertised window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((source, 0))
        self.sock.connect((DUT, port))
        self._buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_message(self) -> bytes | None:
        """One whole message, or None at EOF/reset."""
        while True:
            if len(self._buf) >= HEADER_LEN:
                length = struct.unpack_from("!H", self._buf, 16)[0]
                if len(self._buf) >= length:
                    msg, self._buf = self._buf[:length], self._buf[length:]
                    return msg
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self._buf += chunk

    def until(self, mtype: int) -> tuple[bytes | None, list[bytes]]:
        """Read until a message of ``mtype`` (returned) or EOF (None); also every message before it."""
        seen = []
        while True:
            msg = self.recv_message()
            if msg is None:
                return None, seen
            if msg[TYPE_OFFSET] == mtype:
                return msg, seen
            seen.append(msg)

    def closed_by_peer(self) -> bool:
        """True when the DUT closed the connection (EOF or reset) with nothing more to read."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def header(length: int, mtype: int, marker: bytes = MARKER) -> bytes:
    return marker + struct.pack("!HB", length, mtype)
