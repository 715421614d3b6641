"""BfdManager over loopback: two managers talking UDP on 127.0.0.0/8 (and ::1)."""
from __future__ import annotations

import asyncio
import socket

import pytest

from speakerd.bfd.packet import BfdState, ControlPacket, Diag, DropReason
from speakerd.config.model import BFDProfile
from speakerd.net.bfd import BfdManager

FAST = BFDProfile(name="fast", receive_interval_ms=20, transmit_interval_ms=20, detect_multiplier=3)


def free_ports(family=socket.AF_INET, n=2) -> list[int]:
    socks = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Recorder:
    def __init__(self):
        self.events: list[tuple[BfdState, Diag]] = []
        self._changed = asyncio.Event()

    def __call__(self, state, diag):
        self.events.append((state, diag))
        self._changed.set()

    async def wait_for(self, state, diag=None, timeout=5.0):
        async def until():
            while not any(s is state and (diag is None or d == diag) for s, d in self.events):
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(until(), timeout)


def pair(family=socket.AF_INET):
    pa, pb = free_ports(family)
    a = BfdManager(single_hop_port=pa, peer_single_hop_port=pb)
    b = BfdManager(single_hop_port=pb, peer_single_hop_port=pa)
    return a, b, pa, pb


async def up_pair(profile_a=FAST, profile_b=FAST):
    a, b, pa, pb = pair()
    ra, rb = Recorder(), Recorder()
    a.add("127.0.0.2", "127.0.0.1", profile_a, False, None, ra)
    b.add("127.0.0.1", "127.0.0.2", profile_b, False, None, rb)
    await ra.wait_for(BfdState.UP)
    await rb.wait_for(BfdState.UP)
    return a, b, ra, rb, pa, pb


async def test_two_managers_come_up_and_report_negotiated_values():
    a, b, ra, rb, _, _ = await up_pair(profile_b=BFDProfile(
        name="b", receive_interval_ms=30, transmit_interval_ms=40, detect_multiplier=4))
    try:
        async def polls_done():
            while a.sessions()[0].polling or b.sessions()[0].polling:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(polls_done(), 5)
        (row,) = a.sessions()
        assert row.state == "up" and row.remote_state == "up"
        assert row.tx_interval_ms == 30  # max(our 20 TX, their 30 RX)
        assert row.rx_interval_ms == 40  # max(our 20 RX, their 40 TX)
        assert row.detect_time_ms == 160  # their multiplier 4 x 40
        assert row.remote_discr == b.sessions()[0].local_discr
        assert row.uptime_s is not None and row.rx_packets > 0 and row.tx_packets > 0
        for mgr in (a, b):
            port = mgr._by_peer[(None, mgr.sessions()[0].peer)].tx.getsockname()[1]
            assert 49152 <= port <= 65535
    finally:
        a.close()
        b.close()


async def test_lost_packets_detected_with_diag_1():
    a, b, ra, rb, _, _ = await up_pair()
    try:
        a._send = lambda entry, raw: None  # a goes silent: the link is cut
        await rb.wait_for(BfdState.DOWN, Diag.CONTROL_DETECTION_EXPIRED)
        # a hears b's Down (diag 3) once b falls back to the slow rate
        await ra.wait_for(BfdState.DOWN, Diag.NEIGHBOR_SIGNALED_DOWN)
    finally:
        a.close()
        b.close()


async def test_remove_sends_admin_down_which_peer_reports_as_such():
    a, b, ra, rb, _, _ = await up_pair()
    try:
        a.remove("127.0.0.2")
        await rb.wait_for(BfdState.DOWN, Diag.ADMIN_DOWN)
        assert a.sessions() == []
        assert ra.events[-1] == (BfdState.UP, Diag.NONE)  # no callback for a removed session
        rb.events.clear()
        a.add("127.0.0.2", "127.0.0.1", FAST, False, None, ra)  # re-add: new discriminator
        await rb.wait_for(BfdState.UP)
        assert all(s is not BfdState.DOWN for s, _ in rb.events)
    finally:
        a.close()
        b.close()


async def test_update_profile_poll_sequence_keeps_session_up():
    a, b, ra, rb, _, _ = await up_pair()
    try:
        a.update_profile("127.0.0.2", BFDProfile(name="slow", receive_interval_ms=100,
                                                  transmit_interval_ms=60, detect_multiplier=3))

        async def applied():
            while a.sessions()[0].tx_interval_ms != 60 or b.sessions()[0].detect_time_ms != 180:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(applied(), 5)
        assert b.sessions()[0].tx_interval_ms == 100
        assert ra.events == [(BfdState.UP, Diag.NONE)] and rb.events == [(BfdState.UP, Diag.NONE)]
    finally:
        a.close()
        b.close()


def _send_raw(port: int, payload: bytes, ttl: int, src="127.0.0.1", dst="127.0.0.2"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        s.bind((src, 0))
        s.sendto(payload, (dst, port))
    finally:
        s.close()


async def wait_until(pred, timeout=5.0):
    async def loop():
        while not pred():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(loop(), timeout)


async def test_single_hop_ttl_must_be_255_and_invalid_packets_are_counted():
    (port,) = free_ports(n=1)
    (dead,) = free_ports(n=1)
    m = BfdManager(single_hop_port=port, peer_single_hop_port=dead)
    rec = Recorder()
    try:
        m.add("127.0.0.1", "127.0.0.2", FAST, False, None, rec)
        down = ControlPacket(state=BfdState.DOWN, my_discr=99, your_discr=0, desired_min_tx_us=1_000_000,
                             required_min_rx_us=20_000, detect_mult=3).encode()
        _send_raw(port, down, ttl=64)
        await wait_until(lambda: m.drops[DropReason.BAD_TTL] == 1)
        assert m.state("127.0.0.1") is BfdState.DOWN
        _send_raw(port, b"\x40" + down[1:], ttl=255)  # version 2
        await wait_until(lambda: m.drops[DropReason.BAD_VERSION] == 1)
        _send_raw(port, down[:20], ttl=255)
        await wait_until(lambda: m.drops[DropReason.TOO_SHORT] == 1)
        _send_raw(port, down, ttl=255, src="127.0.0.3")  # unknown peer address
        await wait_until(lambda: m.drops[DropReason.UNKNOWN_SESSION] == 1)
        _send_raw(port, down, ttl=255)
        await wait_until(lambda: m.state("127.0.0.1") is BfdState.INIT)
        assert rec.events == []  # Down -> Init is not reported to the client
    finally:
        m.close()


async def test_multihop_minimum_ttl():
    (port,) = free_ports(n=1)
    (dead,) = free_ports(n=1)
    m = BfdManager(multi_hop_port=port, peer_multi_hop_port=dead)
    rec = Recorder()
    prof = BFDProfile(name="mh", minimum_ttl=250)
    try:
        m.add("127.0.0.1", "127.0.0.2", prof, True, None, rec)
        down = ControlPacket(state=BfdState.DOWN, my_discr=99, your_discr=0, desired_min_tx_us=1_000_000,
                             required_min_rx_us=300_000, detect_mult=3).encode()
        _send_raw(port, down, ttl=249)
        await wait_until(lambda: m.drops[DropReason.BAD_TTL] == 1)
        _send_raw(port, down, ttl=250)
        await wait_until(lambda: m.state("127.0.0.1") is BfdState.INIT)
    finally:
        m.close()


async def test_ipv6_loopback_comes_up():
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    a, b, _, _ = pair(socket.AF_INET6)
    ra, rb = Recorder(), Recorder()
    try:
        a.add("::1", "::1", FAST, False, None, ra)
        b.add("::1", "::1", FAST, False, None, rb)
        await ra.wait_for(BfdState.UP)
        await rb.wait_for(BfdState.UP)
    finally:
        a.close()
        b.close()


async def test_your_discriminator_from_another_address_is_dropped():
    (port,) = free_ports(n=1)
    (dead,) = free_ports(n=1)
    m = BfdManager(single_hop_port=port, peer_single_hop_port=dead)
    rec = Recorder()
    try:
        m.add("127.0.0.1", "127.0.0.2", FAST, False, None, rec)
        discr = m.sessions()[0].local_discr
        init = ControlPacket(state=BfdState.INIT, my_discr=99, your_discr=discr,
                             desired_min_tx_us=1_000_000, required_min_rx_us=20_000,
                             detect_mult=3).encode()
        _send_raw(port, init, ttl=255, src="127.0.0.3")
        await wait_until(lambda: m.drops[DropReason.WRONG_SOURCE] == 1)
        _send_raw(port, init[:8] + (discr + 1).to_bytes(4, "big") + init[12:], ttl=255)
        await wait_until(lambda: m.drops[DropReason.UNKNOWN_SESSION] == 1)
        assert m.state("127.0.0.1") is BfdState.DOWN
        _send_raw(port, init, ttl=255)
        await rec.wait_for(BfdState.UP)
    finally:
        m.close()


async def test_duplicate_peer_rejected_and_failed_add_leaves_nothing():
    (port,) = free_ports(n=1)
    m = BfdManager(single_hop_port=port)
    try:
        m.add("127.0.0.1", "127.0.0.2", FAST, False, None, Recorder())
        with pytest.raises(ValueError):
            m.add("127.0.0.1", "127.0.0.2", FAST, False, None, Recorder())
        with pytest.raises(OSError):
            m.add("127.0.0.5", None, FAST, False, "sdb-no-such-dev", Recorder())
        assert [r.peer for r in m.sessions()] == ["127.0.0.1"]
        m.remove("127.0.0.1")
        assert m.sessions() == [] and m.listen_port(socket.AF_INET, False) is None
    finally:
        m.close()


async def test_one_router_address_in_two_vrfs_has_two_sessions():
    # "lo" stands in for a VRF device (SO_BINDTODEVICE): packets from the peer
    # arrive on lo, so the device-bound session is the one that comes up.
    a, b, pa, pb = pair()
    ra_vrf, ra_plain, rb = Recorder(), Recorder(), Recorder()
    try:
        a.add("127.0.0.2", "127.0.0.1", FAST, False, "lo", ra_vrf)
        a.add("127.0.0.2", "127.0.0.1", FAST, False, None, ra_plain)
        with pytest.raises(ValueError, match="in VRF lo"):
            a.add("127.0.0.2", "127.0.0.1", FAST, False, "lo", Recorder())
        b.add("127.0.0.1", "127.0.0.2", FAST, False, None, rb)
        await ra_vrf.wait_for(BfdState.UP)
        await rb.wait_for(BfdState.UP)
        assert a.state("127.0.0.2", "lo") is BfdState.UP
        assert a.state("127.0.0.2") is not BfdState.UP and ra_plain.events == []
        assert sorted((r.vrf or "", r.peer) for r in a.sessions()) == [("", "127.0.0.2"), ("lo", "127.0.0.2")]
        # each is changed and removed on its own
        a.update_profile("127.0.0.2", FAST, "lo")
        a.remove("127.0.0.2")
        assert [(r.vrf, r.peer) for r in a.sessions()] == [("lo", "127.0.0.2")]
        assert a.state("127.0.0.2", "lo") is BfdState.UP
        a.remove("127.0.0.2", "lo")
        assert a.sessions() == []
    finally:
        a.close()
        b.close()


async def test_close_sends_admin_down_except_to_quiet_sessions():
    # a graceful-restart stop closes BFD quietly: the router must time the session out
    # (and keep the routes stale) instead of hearing AdminDown (FRR: Cease/BFD Down, flush)
    for quiet, expected in ((frozenset(), Diag.ADMIN_DOWN),
                            ({(None, "127.0.0.2")}, Diag.CONTROL_DETECTION_EXPIRED)):
        a, b, ra, rb, _, _ = await up_pair()
        try:
            rb.events.clear()
            a.close(quiet=quiet)
            await rb.wait_for(BfdState.DOWN)
            assert [d for s, d in rb.events if s is BfdState.DOWN][0] == expected
        finally:
            b.close()
