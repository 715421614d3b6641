"""Timestamps a benchmark needs besides the daemon's: when a file's new name appears, and when
keepalives and BFD packets cross the wire.

* :class:`RenameObserver` — an inotify watch (IN_MOVED_TO, IN_CLOSE_WRITE) on a directory in a
  thread of its own: the moment a replaced file became visible under its name, as any watcher
  (speakerd's too) can first see it. A rename over a large file returns well after that moment
  (the kernel first writes out the new file's delayed blocks, then drops the old file's pages):
  neither "before the rename" nor "after it returned" is when the file changed.
* :func:`liveness_capture` / :func:`gaps` — tcpdump of the sender's BFD control packets (UDP
  3784) and BGP keepalives (TCP payload of exactly 19 bytes) on the receiver's side, and the
  intervals between consecutive packets of each within a time window.
"""
from __future__ import annotations

import ctypes
import os
import struct
import threading
import time

IN_CLOSE_WRITE, IN_MOVED_TO = 0x8, 0x80


class RenameObserver:
    def __init__(self, directory: str) -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(directory), IN_MOVED_TO | IN_CLOSE_WRITE) < 0:
            raise OSError(ctypes.get_errno(), "inotify")
        self.events: list[tuple[float, str]] = []  # (time.time() when read, file name)
        self._lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True, name="rename-observer").start()

    def _run(self) -> None:
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except OSError:
                return
            t = time.time()
            off = 0
            while off + 16 <= len(buf):
                _wd, _mask, _cookie, ln = struct.unpack_from("iIII", buf, off)
                name = buf[off + 16:off + 16 + ln].rstrip(b"\0").decode()
                off += 16 + ln
                with self._lock:
                    self.events.append((t, name))

    def first_after(self, name: str, t0: float) -> float | None:
        """When ``name`` was first reported at or after ``t0`` (None: not yet)."""
        with self._lock:
            return next((t for t, n in self.events if n == name and t >= t0), None)

    def close(self) -> None:
        os.close(self.fd)


BFD_PORT = 3784
# BFD control packets and BGP keepalives (a 19-byte TCP payload) from one address
LIVENESS_FILTER = ("src host {src} and (udp dst port 3784 or "
                   "(tcp and (ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) == 19))")


def parse_liveness(text: str) -> tuple[list[float], list[float]]:
    """(BFD packet times, keepalive times) from ``tcpdump -n -tt`` lines."""
    bfd, keepalive = [], []
    for line in text.splitlines():
        head = line.split(" ", 1)[0]
        if "." not in head or not head.replace(".", "").isdigit():
            continue
        (bfd if f".{BFD_PORT}:" in line else keepalive).append(float(head))
    return bfd, keepalive


def gaps(times: list[float], lo: float, hi: float) -> list[float]:
    """Intervals between consecutive packets, for the packets in [lo, hi] and the one before."""
    ts = sorted(times)
    out = []
    for a, b in zip(ts, ts[1:]):
        if b >= lo and a <= hi:
            out.append(b - a)
    return out


def gaps_within(times: list[float], spans: list[tuple[float, float]]) -> list[float]:
    """Intervals between consecutive packets that overlap any of ``spans``."""
    ts = sorted(times)
    return [b - a for a, b in zip(ts, ts[1:]) if any(b >= lo and a <= hi for lo, hi in spans)]


def summary(g: list[float]) -> dict:
    if not g:
        return {"n": 0}
    s = sorted(g)
    return {"n": len(s), "p50": s[len(s) // 2], "p99": s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))],
            "max": s[-1]}
