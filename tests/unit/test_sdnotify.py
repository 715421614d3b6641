"""speakerd.sdnotify against a Unix datagram socket the test owns."""
from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid

import pytest

from speakerd import sdnotify


@pytest.fixture
def listener(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield s
    s.close()


def recv(s) -> str:
    return s.recv(4096).decode()


def test_ready_status_stopping(listener):
    assert sdnotify.enabled()
    assert sdnotify.ready("2 peers") is True
    assert recv(listener) == "READY=1\nSTATUS=2 peers"
    assert sdnotify.ready()
    assert recv(listener) == "READY=1"
    assert sdnotify.status("line one\nline two")
    assert recv(listener) == "STATUS=line one line two"
    assert sdnotify.stopping()
    assert recv(listener) == "STOPPING=1"
    assert sdnotify.watchdog()
    assert recv(listener) == "WATCHDOG=1"


def test_reloading_carries_monotonic_usec(listener):
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert sdnotify.reloading()
    t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    lines = recv(listener).split("\n")
    assert lines[0] == "RELOADING=1"
    key, _, value = lines[1].partition("=")
    assert key == "MONOTONIC_USEC" and t0 <= int(value) <= t1


def test_abstract_socket(monkeypatch):
    name = f"speakerd-sdnotify-test-{uuid.uuid4().hex}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind("\0" + name)
        s.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.ready()
        assert s.recv(100) == b"READY=1"
    finally:
        s.close()


def test_no_socket_is_a_noop(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.enabled()
    assert sdnotify.ready() is False
    assert sdnotify.watchdog() is False
    assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": "relative/path"}) is False


def test_send_failure_does_not_raise(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sdnotify.ready() is False


def test_watchdog_interval():
    pid = str(os.getpid())
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None or pid == "1"
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "junk"}) is None


async def test_watchdog_loop_pings_from_the_loop(listener):
    loop = asyncio.get_running_loop()
    listener.setblocking(False)
    task = asyncio.create_task(sdnotify.watchdog_loop(0.01))
    try:
        for _ in range(3):
            data = await asyncio.wait_for(loop.sock_recv(listener, 100), timeout=5)
            assert data == b"WATCHDOG=1"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_watchdog_loop_without_watchdog_returns(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    await asyncio.wait_for(sdnotify.watchdog_loop(), timeout=5)
    await asyncio.wait_for(sdnotify.watchdog_loop(1.0), timeout=5)  # no socket: nothing to ping
