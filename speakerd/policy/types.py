"""What the planner produces: routes per peer, each with the chain that made it.

A route here is session-independent: next hop, AS_PATH and ORIGIN are filled
in by the session that sends it (they depend on the local address and on
iBGP/eBGP); communities and local-pref come from the advertisement, and
``weight`` (endpoint-weighted ECMP) from this node's ready local endpoints.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RouteAttrs:
    """Attributes decided by policy. Hashable: many prefixes share one."""
    communities: tuple[int, ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    local_pref: int | None = None  # None = default (100) on iBGP; never sent to eBGP
    # endpoint-weighted ECMP (speakerd.io/link-bandwidth: endpoints): this node's ready local
    # endpoints of the route's Services; the session sends it as the link-bandwidth extended
    # community (weight x linkbw.BYTES_PER_ENDPOINT bytes/s, its own AS). None = no community
    weight: int | None = None


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

    A peer's table is a Mapping: a plain dict, or a ``planner.RouteTable`` that makes its
    PlannedRoutes on lookup; ``route_attrs(table)`` gives the attributes alone."""
    routes: dict[str, Mapping[tuple[int, int], PlannedRoute]]
    allocations: dict[str, tuple[str, ...]] = field(default_factory=dict)  # service key -> IPs
    notes: tuple[str, ...] = ()  # e.g. "default/svc: no pool has a free IPv4 address"


def route_attrs(table: Mapping) -> dict[tuple[int, int], RouteAttrs]:
    """``(afi, key) -> RouteAttrs`` of a peer's table: what a session is given (do not mutate)."""
    attrs = getattr(table, "attrs", None)  # a planner.RouteTable keeps them
    if attrs is not None:
        return attrs
    return {k: r.attrs for k, r in table.items()}
