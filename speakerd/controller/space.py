"""The addresses of one IPAddressPool and one family, and who uses each.

A :class:`Space` numbers the pool's addresses of one family 0..size-1 in the
order the pool lists them (``spec.addresses`` order, each entry ascending),
which is the order MetalLB walks a pool in.  Addresses are ints (see
``config.addr``).  ``use`` maps each address in use to its :class:`Use`:
the Services on it with their ports, and the sharing key they share it under.
"""
from __future__ import annotations

from bisect import bisect_right
from math import gcd
from dataclasses import dataclass, field
from typing import Iterator

from ..config.addr import AFI_V4, format_ip

MAX_INT64 = (1 << 63) - 1  # MetalLB's count for a CIDR of 2**62 addresses or more


def buggy(afi: int, value: int) -> bool:
    """An IPv4 address ending in .0 or .255 (confuses smurf protection on some CPE firmware)."""
    return afi == AFI_V4 and (value & 0xFF) in (0, 0xFF)


def _count_low_byte(first: int, last: int, byte: int) -> int:
    """How many v in first..last have v & 0xFF == byte."""
    def upto(n: int) -> int:  # count in 0..n
        return 0 if n < byte else (n - byte) // 256 + 1
    return upto(last) - upto(first - 1)


@dataclass(slots=True)
class Use:
    """One address in use: the Services on it (key -> their (protocol, port)s) and its sharing key."""
    sharing: str  # metallb.io/allow-shared-ip, "" = not shareable
    backend: str  # the selector for externalTrafficPolicy Local, else ""
    users: dict[str, frozenset[tuple[str, int]]] = field(default_factory=dict)


class Space:
    __slots__ = ("pool", "afi", "ranges", "_starts", "size", "avoid_buggy", "capacity", "huge", "use", "_hint")

    def __init__(self, pool: str, afi: int, ranges: list[tuple[int, int]], avoid_buggy: bool,
                 cidr_sizes: list[int] = ()) -> None:  # type: ignore[assignment]
        self.pool, self.afi, self.avoid_buggy = pool, afi, avoid_buggy
        self.ranges = ranges
        starts, n = [], 0
        for first, last in ranges:
            starts.append(n)
            n += last - first + 1
        self._starts, self.size = starts, n
        bad = 0
        if avoid_buggy and afi == AFI_V4:
            bad = sum(_count_low_byte(f, l, 0) + _count_low_byte(f, l, 0xFF) for f, l in ranges)
        self.capacity = n - bad
        self.huge = any(s >= 1 << 62 for s in cidr_sizes)  # MetalLB reports such a pool as MaxInt64
        self.use: dict[int, Use] = {}
        self._hint = 0  # every offset below is in use or buggy

    def offset_of(self, value: int) -> int | None:
        for start, (first, last) in zip(self._starts, self.ranges):
            if first <= value <= last:
                return start + value - first
        return None

    def value_at(self, offset: int) -> int:
        i = bisect_right(self._starts, offset) - 1
        return self.ranges[i][0] + offset - self._starts[i]

    def holds(self, value: int) -> bool:
        """The address is one this pool may give (in a range, and not buggy when it avoids those)."""
        return self.offset_of(value) is not None and not (self.avoid_buggy and buggy(self.afi, value))

    def free_count(self) -> int:
        return self.capacity - len(self.use)

    def _values_from(self, offset: int) -> Iterator[int]:
        """Addresses from `offset` to the end, then from 0 back to `offset` (each once)."""
        i = bisect_right(self._starts, offset) - 1
        k = len(self.ranges)
        for j in range(k + 1):
            first, last = self.ranges[(i + j) % k]
            if j == 0:
                yield from range(first + offset - self._starts[i], last + 1)
            elif j == k:
                yield from range(first, first + offset - self._starts[i])
            else:
                yield from range(first, last + 1)

    def first_free(self, start: int | None = None, step: int = 1) -> int | None:
        """The first free usable address walking offsets start, start+step, ... (mod size; `step`
        coprime with the size, so the walk visits every address once), or from the lowest possibly
        free one when `start` is None; None when the space is full."""
        if self.free_count() <= 0:
            return None
        use, avoid, afi = self.use, self.avoid_buggy, self.afi
        if start is None or step == 1:
            from_hint = start is None
            for v in self._values_from(self._hint if from_hint else start % self.size):  # type: ignore[operator]
                if v not in use and not (avoid and buggy(afi, v)):
                    if from_hint:
                        self._hint = self.offset_of(v)  # type: ignore[assignment]
                    return v
            return None
        n, off = self.size, start % self.size
        for _ in range(n):
            v = self.value_at(off)
            if v not in use and not (avoid and buggy(afi, v)):
                return v
            off = (off + step) % n
        return None

    def distance(self, start: int | None, value: int, step: int = 1) -> int:
        """How many steps `value` is from `start` along first_free's walk."""
        off = self.offset_of(value)
        assert off is not None
        if start is None:
            return off
        d = (off - start) % self.size
        return d if step == 1 else d * pow(step, -1, self.size) % self.size

    def step_for(self, seed: int) -> int:
        """A walking step from `seed`, coprime with the size."""
        n = self.size
        if n <= 2:
            return 1
        step = 1 + seed % (n - 1)
        while gcd(step, n) != 1:
            step = step + 1 if step + 1 < n else 1
        return step

    def released(self, value: int) -> None:
        off = self.offset_of(value)
        if off is not None and off < self._hint:
            self._hint = off

    def text(self, value: int) -> str:
        return format_ip(self.afi, value)
