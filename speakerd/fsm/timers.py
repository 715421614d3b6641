"""Timer arithmetic for the session machine: all values are deadlines.

Nothing here reads a clock.  :class:`Backoff` computes ConnectRetry delays:
exponential from the configured base, capped, with RFC 4271 §10 jitter
(each delay is multiplied by a random factor in [0.75, 1.0]); the random
source is injected so tests are reproducible.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

MIN_KEEPALIVE = 1.0
# RFC 9687: the Send Hold Timer is max(8 minutes, 2 x the negotiated HoldTime).
SEND_HOLD_MIN = 480.0


IDLE_HOLD = 1.0  # seconds before reconnecting after an Established session drops


@dataclass(slots=True)
class Backoff:
    """ConnectRetry delays: base, 2·base, 4·base … up to ``cap``, jittered.

    After an Established session goes down, the first new attempt comes after
    :data:`IDLE_HOLD` (or ``base`` when that is shorter) — the way FRR restarts
    a dropped peer after one second — and only attempts that fail back off.
    A router that drops the session and comes straight back is therefore
    reconnected in about a second, not after a whole ConnectRetry interval.
    """
    base: float
    cap: float
    rand: Callable[[], float] = field(default=random.random)
    failures: int = 0
    after_session: bool = False  # the next delay follows an Established session

    def next_delay(self) -> float:
        """The delay before the next attempt; counts one more failure."""
        if self.after_session:
            self.after_session = False
            return min(IDLE_HOLD, self.base) * (0.75 + 0.25 * self.rand())
        cap = max(self.base, self.cap)
        delay = min(cap, self.base * (2 ** min(self.failures, 30)))
        self.failures += 1
        return delay * (0.75 + 0.25 * self.rand())

    def reset(self) -> None:
        """Called when a session reaches Established."""
        self.failures = 0
        self.after_session = True


def negotiated_hold(local: int, remote: int) -> int:
    """RFC 4271 §4.2: the smaller of both offers; 0 disables the hold timer."""
    return min(local, remote)


def keepalive_interval(hold: int, configured: float | None) -> float:
    """hold/3, or the configured keepalive time when it is shorter.

    A configured keepalive time longer than hold/3 is cut to hold/3 so that at
    least three KEEPALIVEs fit into one hold time (what FRR does too).  0 means
    no KEEPALIVEs (hold time 0).
    """
    if hold == 0:
        return 0.0
    interval = hold / 3
    if configured:
        interval = min(interval, float(configured))
    return max(MIN_KEEPALIVE, interval)


def send_hold_time(hold: int, configured: float | None = None) -> float:
    """RFC 9687 Send Hold Timer duration; ``configured`` overrides (for tests)."""
    if configured is not None:
        return configured
    return max(SEND_HOLD_MIN, 2.0 * hold)
