"""Event-loop lag: how late a periodic timer callback runs.

Every keepalive, BFD transmit and detection timer of speakerd is a callback of
one asyncio loop, so a callback (or a batch of work between two awaits) that
holds the loop for 300 ms delays them all by as much; with BFD 100 ms × 3 the
peer declares the session down. :class:`LoopLagProbe` schedules itself every
``interval`` seconds with ``loop.call_at`` and records, each time it runs, how
far past its due time it ran — the time the loop was held by something else.

Exposed as ``speakerd_event_loop_lag_seconds`` (histogram) and
``speakerd_event_loop_lag_max_seconds`` (largest seen since start); a lag
above ``warn`` (100 ms) is logged, so a blocked loop shows next to the session
or BFD flap it causes.
"""
from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, Gauge, Histogram

log = logging.getLogger("speakerd")

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)


class LagStats:
    """What the probe saw (sans-IO: fed lags, no clock)."""

    def __init__(self, warn: float = 0.1) -> None:
        self.warn = warn
        self.samples = 0
        self.max = 0.0
        self.over_warn = 0

    def observe(self, lag: float) -> bool:
        """Record one lag; True when it is over ``warn`` (worth a log line)."""
        self.samples += 1
        if lag > self.max:
            self.max = lag
        if lag > self.warn:
            self.over_warn += 1
            return True
        return False


class LoopLagProbe:
    def __init__(self, interval: float = 0.05, warn: float = 0.1,
                 registry: CollectorRegistry | None = None) -> None:
        self.interval = interval
        self.stats = LagStats(warn)
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._hist = self._max = None
        if registry is not None:
            self._hist = Histogram("speakerd_event_loop_lag_seconds",
                                   "How late a periodic event-loop timer ran (time the loop was held)",
                                   buckets=BUCKETS, registry=registry)
            self._max = Gauge("speakerd_event_loop_lag_max_seconds",
                              "Largest event-loop lag seen since start", registry=registry)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = loop or asyncio.get_running_loop()
        self._loop = loop
        self._due = loop.time() + self.interval
        self._handle = loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        now = self._loop.time()
        lag = max(0.0, now - self._due)
        if self.stats.observe(lag):
            log.warning("event loop held for %.0f ms (timers, keepalives and BFD ran that late)", lag * 1e3)
        if self._hist is not None:
            self._hist.observe(lag)
            self._max.set(self.stats.max)
        self._due += self.interval
        if self._due <= now:  # missed ticks are not replayed
            self._due = now + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)


__all__ = ["LagStats", "LoopLagProbe"]
