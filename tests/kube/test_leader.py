"""Leader election: the pure decision, and electors against the emulator driven by a fake clock."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from speakerd.kube.kinds import LEASES
from speakerd.kube.leader import (Clock, ElectionConfig, LeaderElector, LeaseDecider, LeaseRecord)
from tests.kube.conftest import wait_until

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


class FakeClock(Clock):
    """Time moves only in :meth:`advance`; sleepers wake when their time has come."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleepers: list[tuple[float, asyncio.Future]] = []

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.t + seconds, fut))
        try:
            await fut
        finally:
            self.sleepers = [(t, f) for t, f in self.sleepers if f is not fut]

    def advance(self, seconds: float) -> None:
        self.t += seconds
        for t, f in self.sleepers:
            if t <= self.t and not f.done():
                f.set_result(None)

    def waiting(self) -> int:
        return sum(1 for _, f in self.sleepers if not f.done())


# -- pure decisions ------------------------------------------------------------------------------

def test_no_lease_means_create():
    d = LeaseDecider("a").decide(None, 0.0, T0)
    assert d.action == "create" and d.record.holder == "a" and d.record.lease_duration == 15


def test_lease_of_another_is_respected_until_it_expires_from_our_observation():
    dec = LeaseDecider("b")
    held = LeaseRecord("a", 15, "x", "x", 0)
    assert dec.decide(held, 100.0, T0).action == "wait"
    assert dec.decide(held, 114.9, T0).action == "wait"      # unchanged record: clock runs from 100
    d = dec.decide(held, 115.0, T0)
    assert d.action == "update" and d.record.holder == "b" and d.record.transitions == 1


def test_a_renewed_record_restarts_the_expiry():
    dec = LeaseDecider("b")
    dec.decide(LeaseRecord("a", 15, "x", "r1", 0), 100.0, T0)
    assert dec.decide(LeaseRecord("a", 15, "x", "r2", 0), 114.0, T0).action == "wait"
    assert dec.decide(LeaseRecord("a", 15, "x", "r2", 0), 128.9, T0).action == "wait"
    assert dec.decide(LeaseRecord("a", 15, "x", "r2", 0), 129.0, T0).action == "update"


def test_renew_keeps_acquire_time_and_transitions():
    dec = LeaseDecider("a")
    d = dec.decide(LeaseRecord("a", 15, "acq", "old", 3), 5.0, T0)
    assert d.action == "update" and d.record.acquire_time == "acq" and d.record.transitions == 3
    assert d.record.renew_time != "old"


def test_released_lease_is_free_at_once():
    assert LeaseDecider("b").decide(LeaseRecord("", 1, "x", "x", 2), 0.0, T0).action == "update"


def test_config_is_checked_like_client_go():
    with pytest.raises(ValueError):
        ElectionConfig(lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ValueError):
        ElectionConfig(lease_duration=15, renew_deadline=2, retry_period=2)


# -- against the emulator ------------------------------------------------------------------------

def elector(kube, name, clock, log):
    return LeaderElector(kube, "metallb-system", "speakerd-controller", identity=name, clock=clock,
                         rng=lambda: 0.0,
                         on_started_leading=lambda: log.append(("start", name)),
                         on_stopped_leading=lambda: log.append(("stop", name)))


async def rounds(clock, n_waiting, seconds, times):
    """Advance the clock ``times`` steps, each once every elector is asleep (none mid-request)."""
    for _ in range(times):
        await wait_until(lambda: clock.waiting() >= n_waiting, what="electors asleep")
        clock.advance(seconds)


async def test_two_electors_one_leader_then_takeover_after_expiry(emu, kube):
    clock, log = FakeClock(), []
    a, b = elector(kube, "pod-a", clock, log), elector(kube, "pod-b", clock, log)
    a.start()
    await wait_until(lambda: a.leading, what="a leads")
    b.start()
    await rounds(clock, 2, 2.0, 5)                     # 10 s of renewals: a keeps it, b waits
    assert a.leading and not b.leading and log == [("start", "pod-a")]
    assert b.leader == "pod-a"
    lease = await kube.get(LEASES, "metallb-system", "speakerd-controller")
    assert lease["spec"]["holderIdentity"] == "pod-a" and lease["spec"]["leaseDurationSeconds"] == 15
    # a dies without releasing: b must wait out the lease from its last observed change
    await a.stop(release=False)
    log.clear()
    await rounds(clock, 1, 2.0, 7)                     # 14 s: not expired yet
    assert not b.leading
    await rounds(clock, 1, 2.0, 1)                     # 16 s
    await wait_until(lambda: b.leading, what="b leads")
    lease = await kube.get(LEASES, "metallb-system", "speakerd-controller")
    assert lease["spec"]["holderIdentity"] == "pod-b" and lease["spec"]["leaseTransitions"] == 1
    await b.stop()
    lease = await kube.get(LEASES, "metallb-system", "speakerd-controller")
    assert lease["spec"]["holderIdentity"] == "" and lease["spec"]["leaseDurationSeconds"] == 1


async def test_concurrent_takeover_one_winner_by_resource_version(emu, kube):
    clock = FakeClock()
    a, b = elector(kube, "pod-a", clock, []), elector(kube, "pod-b", clock, [])
    await kube.create(LEASES, "metallb-system", {"metadata": {"name": "speakerd-controller"},
                                                 "spec": {"holderIdentity": "", "leaseDurationSeconds": 1}})
    results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(results) == [False, True]
    lease = await kube.get(LEASES, "metallb-system", "speakerd-controller")
    winner = "pod-a" if results[0] else "pod-b"
    assert lease["spec"]["holderIdentity"] == winner


async def test_released_lease_is_taken_without_waiting(emu, kube):
    clock, log = FakeClock(), []
    a, b = elector(kube, "pod-a", clock, log), elector(kube, "pod-b", clock, log)
    a.start()
    await wait_until(lambda: a.leading, what="a leads")
    b.start()
    await rounds(clock, 2, 2.0, 1)
    await a.stop(release=True)
    await rounds(clock, 1, 2.0, 1)
    await wait_until(lambda: b.leading, what="b leads")
    await b.stop()


async def test_leader_that_cannot_renew_stops_after_the_deadline(emu, kube):
    clock, log = FakeClock(), []
    a = elector(kube, "pod-a", clock, log)
    a.start()
    await wait_until(lambda: a.leading, what="a leads")
    await emu.stop()                                   # the API server goes away
    await rounds(clock, 1, 2.0, 4)                     # 8 s without a renew: still leading
    assert a.leading
    await rounds(clock, 1, 2.0, 1)                     # 10 s: renew deadline passed
    await wait_until(lambda: not a.leading, what="a stops leading")
    assert log == [("start", "pod-a"), ("stop", "pod-a")]
    await a.stop()
