"""Deterministic address allocation for Services that have no IP.

A pure function of the config and the previous allocations:

1. IPs that Services carry themselves (status, annotation, loadBalancerIP)
   are taken first and never handed out.
2. Previous allocations are kept, service by service in key order, while
   still valid: the address parses, lies in a pool the service may use, is of
   a family the service wants, is not taken, and is not a "buggy" .0/.255
   address of an avoidBuggyIPs pool.
3. Missing families are then allocated, service by service in key order, at
   the lowest free address of the first pool (by name) that may serve the
   service: its address-pool annotation, else every autoAssign pool.  A
   dual-stack service takes both families from one pool when one pool can
   give both, else each family from the first pool that can; a family added
   to a kept address is looked for in the kept address's pool first.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter

from ..config.addr import AFI_V4, FAMILY_AFI, format_ip, parse_ip, parse_ips
from ..config.model import Config, Pool
from ..config.services import DUAL, FAMILIES, IPS, POOL, rows_of


class PoolIndex:
    """Which pool holds an address: bisect over the sorted (afi, first, last, pool) ranges."""

    __slots__ = ("_starts", "_ranges")

    def __init__(self, pools: dict[str, Pool]) -> None:
        ranges = sorted((afi, first, last, name) for name, p in pools.items() for afi, first, last in p.ranges)
        self._ranges = ranges
        self._starts = [(r[0], r[1]) for r in ranges]

    def pools_of(self, afis: list[int], values: list[int]) -> list[str | None]:
        """pool_of for many addresses; IPv4-only lists by one C-level bisect pass."""
        if sum(afis) != len(afis):  # not IPv4 only
            return [self.pool_of(a, v) for a, v in zip(afis, values)]
        v4 = [r for r in self._ranges if r[0] == AFI_V4]
        if len(v4) == 1 and values and v4[0][1] <= min(values) and max(values) <= v4[0][2]:
            return [v4[0][3]] * len(values)  # one IPv4 range holding every address
        starts = [r[1] for r in v4]
        lasts = [r[2] for r in v4]
        names = [r[3] for r in v4]
        idx = map(partial(bisect_right, starts), values)
        return [names[i - 1] if i and v <= lasts[i - 1] else None for i, v in zip(idx, values)]

    def pool_of(self, afi: int, value: int) -> str | None:
        i = bisect_right(self._starts, (afi, value)) - 1
        if i >= 0:
            r = self._ranges[i]
            if r[0] == afi and r[1] <= value <= r[2]:
                return r[3]
        return None


def _buggy(afi: int, value: int) -> bool:
    return afi == AFI_V4 and (value & 0xFF) in (0, 0xFF)


@dataclass(slots=True)
class _Cursor:
    """Lowest-free search in one pool and family; only ever moves forward (used only grows)."""
    ranges: list[tuple[int, int]]
    avoid_buggy: bool
    i: int = 0
    next: int = field(default=-1)

    def peek(self, afi: int, used: set[int]) -> int | None:
        while self.i < len(self.ranges):
            first, last = self.ranges[self.i]
            v = max(self.next, first)
            while v <= last and (v in used or (self.avoid_buggy and _buggy(afi, v))):
                v += 1
            if v <= last:
                self.next = v
                return v
            self.i += 1
            self.next = -1
        return None


_IPS_OF = itemgetter(IPS)


def allocate(config: Config, previous: dict[str, tuple[str, ...]] | None = None,
             index: PoolIndex | None = None) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """-> (allocations for services without IPs: key -> IPs in family order, notes)."""
    previous = previous or {}
    index = index or PoolIndex(config.pools)
    pools = config.pools
    rows = rows_of(config.services)
    used: dict[int, set[int]] = {1: set(), 2: set()}
    notes: list[str] = []
    if all(map(_IPS_OF, rows.values())):
        return {}, notes  # every service has its own IPs: nothing to allocate or keep
    texts = [ip for r in rows.values() if r[IPS] for ip in r[IPS]]
    afis, values = parse_ips(texts)
    if sum(afis) == len(afis):  # IPv4 only
        used[AFI_V4].update(values)
    else:
        for afi, value in zip(afis, values):
            used[afi].add(value)
    auto = [name for name in sorted(pools) if pools[name].auto_assign]
    wanting = sorted(k for k, r in rows.items() if not r[IPS])
    kept: dict[str, dict[int, int]] = {}
    for key in wanting:
        row = rows[key]
        allowed = (row[POOL],) if row[POOL] else auto
        got: dict[int, int] = {}
        families = row[FAMILIES] if row[DUAL] else row[FAMILIES][:1]
        for ip in previous.get(key, ()):
            try:
                afi, value = parse_ip(ip)
            except ValueError:
                continue
            pool = index.pool_of(afi, value)
            if (pool in allowed and afi not in got and any(FAMILY_AFI[f] == afi for f in families)
                    and value not in used[afi] and not (pools[pool].avoid_buggy_ips and _buggy(afi, value))):
                got[afi] = value
                used[afi].add(value)
        kept[key] = got
    cursors: dict[tuple[str, int], _Cursor] = {}

    def cursor(pool: str, afi: int) -> _Cursor:
        c = cursors.get((pool, afi))
        if c is None:
            p = pools[pool]
            c = cursors[(pool, afi)] = _Cursor([(f, l) for a, f, l in sorted(p.ranges) if a == afi], p.avoid_buggy_ips)
        return c

    out: dict[str, tuple[str, ...]] = {}
    for key in wanting:
        row = rows[key]
        svc_pool = row[POOL]
        allowed = (svc_pool,) if svc_pool else auto
        families = row[FAMILIES] if row[DUAL] else row[FAMILIES][:1]
        got = kept[key]
        missing = [FAMILY_AFI[f] for f in families if FAMILY_AFI[f] not in got]
        if missing and got:  # the other family comes from the pool of the kept address first
            home = index.pool_of(*next(iter(got.items())))
            allowed = (home, *(p for p in allowed if p != home))
        if missing:
            chosen: dict[int, int] = {}
            if len(missing) > 1:  # prefer one pool that has every missing family
                for pool in allowed:
                    found = {afi: cursor(pool, afi).peek(afi, used[afi]) for afi in missing}
                    if all(v is not None for v in found.values()):
                        chosen = found  # type: ignore[assignment]
                        break
            for afi in missing:
                if afi in chosen:
                    continue
                for pool in allowed:
                    v = cursor(pool, afi).peek(afi, used[afi])
                    if v is not None:
                        chosen[afi] = v
                        break
                else:
                    fam = f"IPv{4 if afi == AFI_V4 else 6}"
                    if svc_pool:
                        notes.append(f"{key}: IPAddressPool {svc_pool} has no free {fam} address")
                    else:
                        notes.append(f"{key}: no autoAssign IPAddressPool has a free {fam} address")
            for afi, v in chosen.items():
                used[afi].add(v)
                got[afi] = v
        if got:
            out[key] = tuple(format_ip(FAMILY_AFI[f], got[FAMILY_AFI[f]]) for f in families if FAMILY_AFI[f] in got)
    return out, notes
