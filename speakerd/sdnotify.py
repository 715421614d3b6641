"""The systemd notification protocol (sd_notify(3)) without libsystemd.

Every call reads ``$NOTIFY_SOCKET`` and is a no-op (returning False) when it
is unset, so the daemon calls these unconditionally — under systemd, in a
container, or in a terminal alike.  A socket path starting with ``@`` is in
the abstract namespace.  Send failures never raise: they are logged at debug
level and reported as False (a missing supervisor must not stop the daemon).

Daemon usage (``Type=notify-reload`` or ``Type=notify`` units)::

    sdnotify.ready("3 peers, 2 established")   # after the first config is applied
    sdnotify.status("2/3 sessions established") # whenever it is worth showing in systemctl status
    sdnotify.reloading()                         # on SIGHUP, before reloading...
    sdnotify.ready()                             # ...and READY=1 again when done
    sdnotify.stopping()                          # on SIGTERM, before tearing down
    task = asyncio.create_task(sdnotify.watchdog_loop())  # pings at half WatchdogSec

The watchdog pings come from a task on the event loop, so a blocked loop
stops them and systemd restarts the daemon — which is the point.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Mapping

log = logging.getLogger("speakerd.sdnotify")


def _address(env: Mapping[str, str]) -> str | None:
    path = env.get("NOTIFY_SOCKET")
    if not path:
        return None
    if path.startswith("@"):
        return "\0" + path[1:]
    if not path.startswith("/"):
        return None  # sd_notify accepts only absolute paths or abstract names (vsock is not supported)
    return path


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """True when a service manager listens for notifications."""
    return _address(os.environ if env is None else env) is not None


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send one notification (``"READY=1"``, ``"STATUS=..."``, several lines allowed).

    Returns True when the datagram was sent, False when there is no
    ``$NOTIFY_SOCKET`` or sending failed.
    """
    addr = _address(os.environ if env is None else env)
    if addr is None:
        return False
    data = state.encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(data, addr)
    except OSError as e:
        log.debug("sd_notify %r to %r failed: %s", state.split("\n", 1)[0], addr, e)
        return False
    return True


def _clean(text: str) -> str:
    # one STATUS line: a newline would start a new assignment
    return " ".join(text.split("\n"))


def ready(status: str | None = None) -> bool:
    """READY=1 (startup finished, or a reload finished), optionally with STATUS."""
    return notify("READY=1" + (f"\nSTATUS={_clean(status)}" if status else ""))


def reloading(status: str | None = None) -> bool:
    """RELOADING=1 with MONOTONIC_USEC, as ``Type=notify-reload`` requires.

    Send :func:`ready` when the reload is done.
    """
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    msg = f"RELOADING=1\nMONOTONIC_USEC={usec}"
    if status:
        msg += f"\nSTATUS={_clean(status)}"
    return notify(msg)


def stopping(status: str | None = None) -> bool:
    return notify("STOPPING=1" + (f"\nSTATUS={_clean(status)}" if status else ""))


def status(text: str) -> bool:
    return notify(f"STATUS={_clean(text)}")


def watchdog() -> bool:
    """One keep-alive ping (WATCHDOG=1)."""
    return notify("WATCHDOG=1")


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings: half of ``$WATCHDOG_USEC``, or None when the
    watchdog is off or meant for another process (``$WATCHDOG_PID``)."""
    env = os.environ if env is None else env
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 2 / 1_000_000


async def watchdog_loop(interval: float | None = None) -> None:
    """Ping the watchdog every ``interval`` seconds (default: from the
    environment) until cancelled; returns at once when there is no watchdog."""
    if interval is None:
        interval = watchdog_interval()
    if interval is None or not enabled():
        return
    while True:
        watchdog()
        await asyncio.sleep(interval)
