"""File mode: the address of a Service that carries none, the same on every node.

Without a cluster nobody publishes assignments, so every node computes them
from the objects alone -- never from what it saw or chose before (the
``previous`` allocations are accepted and ignored): nodes that read the same
manifests announce the same address for the same Service, whatever order
they read them in and whatever state they started from.

The rule (the controller's MetalLB rules, ``controller.allocator``, with
``spread`` walking):

1. Addresses a Service carries itself (status, ``loadBalancerIPs``
   annotation, ``loadBalancerIP``) are its own and taken first.
2. The other Services, in ``namespace/name`` order, get addresses by
   MetalLB's rules (address-pool annotation, serviceAllocation pools by
   priority, then autoAssign pools by name; sharing keys; families).  Within
   a pool each walks the addresses from an offset hashed from its
   ``namespace/name`` (from its sharing key when it has one, so Services
   sharing a key meet on one address), wrapping, and takes the first free
   or shareable one.

Hashing keeps an assignment stable when other Services come and go: a
Service moves only when a Service earlier in name order now hashes onto the
address it had (about one in (free addresses / Services) per change).
"""
from __future__ import annotations

import dataclasses
from bisect import bisect_right
from functools import partial

from ..config.addr import AFI_V4, parse_ips
from ..config.model import Config, Pool, Service
from ..config.services import IPS, rows_of
from ..controller.allocator import Allocator


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


def _families(svc: Service) -> Service:
    """File mode: a dual-stack policy with one family named (a hand-written manifest; the API
    server fills in both on a dual-stack cluster) allocates one address of each family."""
    if svc.dual_stack and len(svc.families) == 1:
        return dataclasses.replace(svc, families=svc.families + ((6,) if svc.families[0] == 4 else (4,)))
    return svc


def allocate(config: Config, previous: dict[str, tuple[str, ...]] | None = None,
             index: PoolIndex | None = None) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """-> (addresses of the Services that carry none: key -> IPs, notes).  `previous` is ignored:
    the answer depends on `config` alone (see the module doc)."""
    del previous
    rows = rows_of(config.services)
    wanting = sorted(k for k, r in rows.items() if not r[IPS])
    notes: list[str] = []
    if not wanting:
        return {}, notes
    index = index or PoolIndex(config.pools)
    alloc = Allocator(config.pools, {}, spread=True)
    services = config.services
    want = [_families(services[k]) for k in wanting]
    if any(s.sharing_key for s in want):  # own addresses with their sharing keys and ports
        for key, row in rows.items():
            if row[IPS]:
                alloc.claim(_families(services[key]), row[IPS])
    else:  # own addresses only block: one C-level pass to find their pools
        keys = [k for k, r in rows.items() for _ in r[IPS]]
        afis, values = parse_ips([ip for r in rows.values() for ip in r[IPS]])
        for key, pool, afi, value in zip(keys, index.pools_of(afis, values), afis, values):
            if pool is not None:
                alloc.block(key, pool, afi, value)
    out: dict[str, tuple[str, ...]] = {}
    for svc in want:
        ips, _, error = alloc.allocate_new(svc)
        if ips:
            out[svc.key] = ips
        else:
            notes.append(f"{svc.key}: {error}")
    return out, notes
