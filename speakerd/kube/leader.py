"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

Defaults are client-go's: lease 15 s, renew deadline 10 s, retry period 2 s (jitter 1.2).

- :class:`LeaseDecider` is pure (``now`` passed in): from the Lease it last read it decides
  create / take over / renew / wait. A Lease held by another identity counts as expired
  ``leaseDuration`` after *this* process last saw its record change (client-go's observedTime:
  no trust in other machines' clocks).
- :class:`LeaderElector` is the loop at the edge: campaign every ``retry_period`` until the Lease
  is ours (create, or a replace carrying the read resourceVersion: a 409 means another candidate
  won the race), call ``on_started_leading``; renew every ``retry_period``; when no renew
  succeeded for ``renew_deadline``, stop leading (``on_stopped_leading``) and campaign again.
  ``stop()`` releases a held Lease (holder cleared, duration 1 s) so a successor need not wait.
- ``holderIdentity`` is the pod name (``POD_NAME``, else the host name).
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Awaitable, Callable

from .client import TRANSIENT, ApiError, KubeClient
from .kinds import LEASES
from .tasks import cancel_and_wait, ensure_running

log = logging.getLogger("speakerd.kube.leader")

JITTER = 1.2


def default_identity() -> str:
    return os.environ.get("POD_NAME") or socket.gethostname()


def micro_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ElectionConfig:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > JITTER * self.retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > 1.2 * retry_period > 0")


@dataclass(frozen=True)
class LeaseRecord:
    holder: str = ""
    lease_duration: int = 15
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_lease(cls, lease: dict) -> "LeaseRecord":
        spec = lease.get("spec") or {}
        return cls(spec.get("holderIdentity") or "", int(spec.get("leaseDurationSeconds") or 0),
                   spec.get("acquireTime"), spec.get("renewTime"), int(spec.get("leaseTransitions") or 0))

    def spec(self) -> dict:
        return {"holderIdentity": self.holder, "leaseDurationSeconds": self.lease_duration,
                "acquireTime": self.acquire_time, "renewTime": self.renew_time,
                "leaseTransitions": self.transitions}


@dataclass(frozen=True)
class Decision:
    action: str                 # "create" | "update" | "wait"
    record: LeaseRecord | None = None


class LeaseDecider:
    """client-go's tryAcquireOrRenew decision, without I/O. ``now`` is a monotonic time in seconds,
    ``wall`` the wall-clock time written into the Lease."""

    def __init__(self, identity: str, config: ElectionConfig = ElectionConfig()) -> None:
        self.identity, self.config = identity, config
        self.observed: LeaseRecord | None = None
        self.observed_time = 0.0

    def observe(self, record: LeaseRecord | None, now: float) -> None:
        if record != self.observed:
            self.observed, self.observed_time = record, now

    def held_by_other(self, now: float) -> bool:
        o = self.observed
        return bool(o and o.holder and o.holder != self.identity
                    and self.observed_time + o.lease_duration > now)

    def decide(self, current: LeaseRecord | None, now: float, wall: datetime) -> Decision:
        ts = micro_time(wall)
        duration = int(self.config.lease_duration)
        if current is None:
            self.observe(None, now)
            return Decision("create", LeaseRecord(self.identity, duration, ts, ts, 0))
        self.observe(current, now)
        if self.held_by_other(now):
            return Decision("wait")
        if current.holder == self.identity:
            rec = replace(current, lease_duration=duration, renew_time=ts)
        else:
            rec = LeaseRecord(self.identity, duration, ts, ts, current.transitions + 1)
        return Decision("update", rec)

    def succeeded(self, record: LeaseRecord, now: float) -> None:
        self.observed, self.observed_time = record, now


class Clock:
    """Monotonic time, wall time and sleep: replaced in tests to drive elections without waiting."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(timezone.utc)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class LeaderElector:
    def __init__(self, client: KubeClient, namespace: str, name: str, *, identity: str | None = None,
                 config: ElectionConfig = ElectionConfig(),
                 on_started_leading: Callable[[], Awaitable[None] | None] | None = None,
                 on_stopped_leading: Callable[[], Awaitable[None] | None] | None = None,
                 on_new_leader: Callable[[str], None] | None = None,
                 clock: Clock | None = None, rng: Callable[[], float] = random.random) -> None:
        self.client, self.namespace, self.name = client, namespace, name
        self.identity = identity or default_identity()
        self.config = config
        self.decider = LeaseDecider(self.identity, config)
        self.on_started_leading, self.on_stopped_leading = on_started_leading, on_stopped_leading
        self.on_new_leader = on_new_leader
        self.clock = clock or Clock()
        self._rng = rng
        self.leading = False
        self.leader = ""            # the holder last seen
        self._rv = ""
        self._task: asyncio.Task | None = None

    # -- one attempt -----------------------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One round of client-go's tryAcquireOrRenew: True when the Lease is ours now."""
        try:
            lease = await self.client.get(LEASES, self.namespace, self.name)
        except ApiError as exc:
            if not exc.not_found:
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                return False
            lease = None
        current = LeaseRecord.from_lease(lease) if lease else None
        if lease:
            self._rv = lease["metadata"]["resourceVersion"]
            self._see_leader(current.holder)
        now = self.clock.monotonic()
        d = self.decider.decide(current, now, self.clock.wall())
        if d.action == "wait":
            return False
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace}, "spec": d.record.spec()}
        try:
            if d.action == "create":
                out = await self.client.create(LEASES, self.namespace, body)
            else:
                body["metadata"]["resourceVersion"] = self._rv
                out = await self.client.replace(LEASES, self.namespace, self.name, body)
        except ApiError as exc:
            if exc.status == 409:
                log.debug("lease %s/%s: lost the race (%s)", self.namespace, self.name, exc.reason)
            else:
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        self._rv = out["metadata"]["resourceVersion"]
        self.decider.succeeded(LeaseRecord.from_lease(out), self.clock.monotonic())
        self._see_leader(self.identity)
        return True

    def _see_leader(self, holder: str) -> None:
        if holder != self.leader:
            self.leader = holder
            log.info("lease %s/%s: leader is now %r", self.namespace, self.name, holder)
            if self.on_new_leader is not None:
                self.on_new_leader(holder)

    async def _attempt(self, budget: float) -> bool:
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), timeout=max(0.001, budget))
        except TRANSIENT as exc:
            log.warning("lease %s/%s: %s", self.namespace, self.name, type(exc).__name__)
            return False

    # -- the loop --------------------------------------------------------------------------------

    async def _call(self, cb) -> None:
        if cb is not None:
            out = cb()
            if asyncio.iscoroutine(out):
                await out

    async def run(self) -> None:
        cfg = self.config
        while True:
            while not await self._attempt(cfg.renew_deadline):
                await self.clock.sleep(cfg.retry_period * (1 + (JITTER - 1) * self._rng()))
            self.leading = True
            log.info("lease %s/%s: %s started leading", self.namespace, self.name, self.identity)
            try:
                await self._call(self.on_started_leading)
                last = self.clock.monotonic()
                while True:
                    await self.clock.sleep(cfg.retry_period)
                    left = cfg.renew_deadline - (self.clock.monotonic() - last)
                    if await self._attempt(left):
                        last = self.clock.monotonic()
                    elif self.clock.monotonic() - last >= cfg.renew_deadline:
                        break
            finally:
                if self.leading:
                    self.leading = False
                    log.warning("lease %s/%s: %s stopped leading", self.namespace, self.name, self.identity)
                    await self._call(self.on_stopped_leading)

    def start(self) -> asyncio.Task:
        self._task = ensure_running(self._task, self.run)
        return self._task

    async def stop(self, release: bool = True) -> None:
        was_leading = self.leading
        await cancel_and_wait(self._task)
        self._task = None
        if release and was_leading:
            await self.release()

    async def release(self) -> bool:
        """Give the Lease up (client-go's ReleaseOnCancel): holder cleared, duration 1 s."""
        try:
            lease = await self.client.get(LEASES, self.namespace, self.name)
            if LeaseRecord.from_lease(lease).holder != self.identity:
                return False
            ts = micro_time(self.clock.wall())
            spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": ts,
                    "acquireTime": ts}
            await self.client.replace(LEASES, self.namespace, self.name, {**lease, "spec": spec})
            return True
        except (ApiError, *TRANSIENT) as exc:
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, exc)
            return False
