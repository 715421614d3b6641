"""Endpoint-weighted ECMP: the BGP link-bandwidth extended community and its damping.

draft-ietf-idr-link-bandwidth: an optional non-transitive two-octet-AS-specific extended
community (type 0x40, subtype 0x04), the local AS in the two-octet global administrator
(AS_TRANS 23456 for a four-octet AS) and the bandwidth as an IEEE-754 single-precision
float in bytes per second.  FRR reads it (type 0x00 or 0x40, subtype 0x04) and with
``maximum-paths`` installs the multipaths weighted by their bandwidths (``bgp bestpath
bandwidth``; weighted ECMP needs every multipath to carry one).

speakerd's use: a Service prefix announced with a bandwidth proportional to this node's
ready local endpoints of the Service, so a node with six pods gets six times the share of a
node with one.  Only ratios matter to the router; the value per endpoint is 1 Mbit/s
(125,000 bytes/s), the reference bandwidth FRR uses for ``set extcommunity bandwidth
num-multipaths``.  A larger unit would overflow FRR 8's 32-bit bytes-per-second field (FRR
converts the float to uint32): at 1 Gbit/s per endpoint that happens past 34 endpoints, at
1 Mbit/s past 34,000.

:class:`Damper` limits re-announcements caused by endpoint moves to at most one per prefix
per ``interval`` seconds: the first change after a quiet interval goes out at once, later
ones are held and the newest value goes out when the interval ends.  Pure: ``now`` in,
decisions and the next deadline out.
"""
from __future__ import annotations

import struct
from collections.abc import Hashable

LINK_BANDWIDTH_TYPE = 0x40  # non-transitive two-octet AS specific
LINK_BANDWIDTH_TRANSITIVE_TYPE = 0x00  # the transitive form FRR also reads (its own default)
LINK_BANDWIDTH_SUBTYPE = 0x04
AS_TRANS = 23456
BYTES_PER_ENDPOINT = 125_000.0  # 1 Mbit/s per ready endpoint: only the ratio matters (see above)

_EC = struct.Struct("!BBHf")


def link_bandwidth(asn: int, bytes_per_second: float) -> int:
    """The extended community (a 64-bit int, as PathAttributes.extended_communities holds them)."""
    if bytes_per_second < 0:
        raise ValueError("bandwidth must not be negative")
    gadmin = asn if asn <= 0xFFFF else AS_TRANS
    return int.from_bytes(_EC.pack(LINK_BANDWIDTH_TYPE, LINK_BANDWIDTH_SUBTYPE, gadmin, bytes_per_second), "big")


def decode_link_bandwidth(ec: int) -> tuple[int, float] | None:
    """(AS, bytes per second) of a link-bandwidth community (either type), else None."""
    t, sub, asn, bw = _EC.unpack(ec.to_bytes(8, "big"))
    if sub != LINK_BANDWIDTH_SUBTYPE or t not in (LINK_BANDWIDTH_TYPE, LINK_BANDWIDTH_TRANSITIVE_TYPE):
        return None
    return asn, bw


def endpoints_bandwidth(asn: int, endpoints: int, per_endpoint: float = BYTES_PER_ENDPOINT) -> int:
    """The community for ``endpoints`` ready local endpoints."""
    if endpoints < 0:
        raise ValueError("endpoint count must not be negative")
    return link_bandwidth(asn, endpoints * per_endpoint)


def describe(weight: int) -> str:
    """How plan/show print a route's weight: ``weight 3 (link-bandwidth 3 Mbit/s)``."""
    return f"weight {weight} (link-bandwidth {weight * BYTES_PER_ENDPOINT * 8 / 1e6:g} Mbit/s)"


class Damper:
    """At most one re-announcement per key per ``interval`` seconds; the newest value wins."""

    __slots__ = ("interval", "_last", "_held", "_pruned")

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last: dict[Hashable, float] = {}  # key -> when it last went out
        self._held: dict[Hashable, object] = {}  # key -> newest value not sent yet
        self._pruned = 0.0  # when send times were last pruned (at most once per interval)

    def _tick(self, now: float) -> None:
        """Send times older than the interval are forgotten as time goes on, once per interval
        (amortised: every route announced would otherwise keep its entry until withdrawn)."""
        if now >= self._pruned + self.interval:
            self._pruned = now
            self.prune(now)

    def offer(self, now: float, key: Hashable, value: object) -> bool:
        """A new value for ``key``: True if it may go out now (then it counts as sent);
        False if it is held until :meth:`due` releases it."""
        self._tick(now)
        last = self._last.get(key)
        if key not in self._held and (last is None or now >= last + self.interval):
            self._last[key] = now
            return True
        self._held[key] = value
        return False

    def sent(self, now: float, key: Hashable) -> None:
        """A value for ``key`` went out another way (a new announcement, a change of other
        attributes): nothing is held any more and the interval starts again at ``now``."""
        self._tick(now)
        self._held.pop(key, None)
        self._last[key] = now

    def forget(self, key: Hashable) -> None:
        """The route is gone (withdrawn): nothing held for it, no interval to respect."""
        self._last.pop(key, None)
        self._held.pop(key, None)

    def due(self, now: float) -> dict[Hashable, object]:
        """The held values whose interval has ended (each now counts as sent)."""
        out = {}
        for key in [k for k in self._held if k not in self._last or now >= self._last[k] + self.interval]:
            out[key] = self._held.pop(key)
            self._last[key] = now
        return out

    def next_deadline(self) -> float | None:
        if not self._held:
            return None
        return min(self._last[k] + self.interval for k in self._held)

    def prune(self, now: float) -> None:
        """Forget send times older than the interval (bounded memory over long runs)."""
        for k in [k for k, t in self._last.items() if now >= t + self.interval and k not in self._held]:
            del self._last[k]


__all__ = ["link_bandwidth", "decode_link_bandwidth", "endpoints_bandwidth", "describe", "Damper",
           "BYTES_PER_ENDPOINT"]
