"""What the planner produces: routes per peer, each with the chain that made it.

A route here is session-independent: next hop, AS_PATH and ORIGIN are filled
in by the session that sends it (they depend on the local address and on
iBGP/eBGP); communities and local-pref come from the advertisement.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Iterator

from ..config.addr import format_prefix


@dataclass(frozen=True, slots=True)
class RouteAttrs:
    """Attributes decided by policy. Hashable: many prefixes share one."""
    communities: tuple[int, ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    local_pref: int | None = None  # None = default (100) on iBGP; never sent to eBGP


@dataclass(frozen=True, slots=True)
class Reason:
    """service → IP → pool → advertisement → peer."""
    service: str  # "namespace/name"
    ip: str
    pool: str
    advertisement: str


@dataclass(frozen=True, slots=True)
class PlannedRoute:
    afi: int  # 1 = IPv4, 2 = IPv6
    key: int  # prefix key: (address << 8) | length
    prefix: str  # "192.0.2.0/24"
    attrs: RouteAttrs
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """routes[peer name][(afi, key)] -> PlannedRoute; plus the allocations made.

    A peer's table is a Mapping: a plain dict, or a RouteTable that makes its
    PlannedRoutes on lookup; ``route_attrs(table)`` gives the attributes alone."""
    routes: dict[str, Mapping[tuple[int, int], PlannedRoute]]
    allocations: dict[str, tuple[str, ...]] = field(default_factory=dict)  # service key -> IPs
    notes: tuple[str, ...] = ()  # e.g. "default/svc: no pool has a free IPv4 address"


class RouteTable(Mapping):
    """``(afi, key) -> PlannedRoute`` for a table where every prefix comes from one service IP.

    Holds the attributes per route (``attrs``, what a session is given) and,
    per route, the index of the service IP it came from in the plan's entry
    columns; the PlannedRoute and its Reason are made only when looked up
    (``explain``, ``plan``), never for the whole table on the hot path."""

    __slots__ = ("attrs", "_entry", "_svc", "_ip", "_pool", "_ad_of_pool")

    def __init__(self, attrs: dict, entry: dict, svc: list, ip: list, pool: list, ad_of_pool: dict) -> None:
        self.attrs: dict[tuple[int, int], RouteAttrs] = attrs
        self._entry, self._svc, self._ip, self._pool, self._ad_of_pool = entry, svc, ip, pool, ad_of_pool

    def __getitem__(self, rk: tuple[int, int]) -> PlannedRoute:
        i = self._entry[rk]
        afi, key = rk
        pool = self._pool[i]
        reason = Reason(self._svc[i], self._ip[i], pool, self._ad_of_pool[pool])
        return PlannedRoute(afi, key, format_prefix(afi, key >> 8, key & 0xFF), self.attrs[rk], (reason,))

    def __contains__(self, rk: object) -> bool:
        return rk in self._entry

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._entry)

    def __len__(self) -> int:
        return len(self._entry)

    def __repr__(self) -> str:
        return f"RouteTable({len(self._entry)} routes)"


def route_attrs(table: Mapping) -> dict[tuple[int, int], RouteAttrs]:
    """``(afi, key) -> RouteAttrs`` of a peer's table: what a session is given (do not mutate)."""
    if isinstance(table, RouteTable):
        return table.attrs
    return {k: r.attrs for k, r in table.items()}
