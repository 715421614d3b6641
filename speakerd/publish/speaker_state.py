"""What the running speaker has, in the publisher's terms: its sessions, and which peers get each Service.

``follow`` is the edge loop that keeps a :class:`StatusPublisher` in step
with a :class:`speakerd.speaker.Speaker`: it reads the speaker's peers and
current plan when told something changed (``changed()``) and at a slow
period as a safety net; the publisher turns an unchanged answer into no
write, so reading often costs no API traffic.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from .status import SessionInfo
from .writer import StatusPublisher

BFD_LABELS = {0: "adminDown", 1: "down", 2: "init", 3: "up"}  # bfd.packet.State values


def sessions_of(speaker) -> list[SessionInfo]:
    """One SessionInfo per configured peer of this node."""
    out = []
    bfd = getattr(speaker, "bfd", None)
    for rt in speaker.peers.values():
        pc = rt.config
        bfd_state = None
        if rt.bfd_active:
            st = bfd.state(pc.peer_address) if bfd is not None else None
            bfd_state = BFD_LABELS.get(int(st), "down") if st is not None else "down"
        out.append(SessionInfo(pc.name, pc.peer_address, rt.peer.state.label, pc.vrf or "", bfd_state))
    return out


def peers_by_service(routes: Mapping[str, Mapping]) -> dict[str, set[str]]:
    """Service key -> the peers at least one of its routes goes to, from a plan's ``routes``.

    Peers with the same advertisements share one table object: each table is read once."""
    tables: dict[int, tuple[Mapping, list[str]]] = {}
    for peer, table in routes.items():
        tables.setdefault(id(table), (table, []))[1].append(peer)
    out: dict[str, set[str]] = {}
    for table, peers in tables.values():
        services: set[str] = set()
        for route in table.values():
            services.update(r.service for r in route.reasons)
        for svc in services:
            out.setdefault(svc, set()).update(peers)
    return out


def peers_of_service(planner, service) -> set[str]:
    """The peers `service`'s routes go to, from the planner's tables without scanning them: a
    route of the Service exists for a peer exactly when the pool of one of its addresses is
    selected by an advertisement of that peer's table (O(addresses + peers))."""
    from ..config.addr import parse_ip
    ips = service.ips or planner.allocations.get(service.key, ())
    pools = set()  # (afi, pool): a peer gets the address only if its session carries the family
    for ip in ips:
        try:
            afi, value = parse_ip(ip)
        except ValueError:
            continue
        pool = planner.index.pool_of(afi, value)
        if pool is not None:
            pools.add((afi, pool))
    if not pools:
        return set()
    from ..config.model import selectors_match
    labels = dict(service.labels)
    out = set()
    for name, sig in planner.peer_table.items():
        table = planner.tables[sig]
        by_pool, afis = table.by_pool, table.afis
        if any(selectors_match(getattr(ad, "service_selectors", ()), labels)
               for afi, pool in pools if afi in afis for ad in by_pool.get(pool, ())):
            out.add(name)
    return out


def apply_announcements(publisher: StatusPublisher, before: Mapping[str, Iterable[str]],
                        after: Mapping[str, Iterable[str]], why_not: Mapping[str, str] | None = None,
                        uids: Mapping[str, str] | None = None) -> None:
    """Tell the publisher every Service whose peers changed between two plans."""
    why_not = why_not or {}
    uids = uids or {}
    for key in set(before) | set(after):
        new = set(after.get(key, ()))
        if key in before and set(before[key]) == new:
            continue
        publisher.set_service(key, new, uids.get(key, ""), why_not.get(key, ""))


async def follow(speaker, publisher: StatusPublisher, changed: asyncio.Event, period: float = 10.0) -> None:
    """Keep `publisher` in step with `speaker` until cancelled."""
    last_plan = None
    announced: dict[str, set[str]] = {}
    while True:
        publisher.set_sessions(sessions_of(speaker))
        plan = getattr(speaker, "plan", None)
        if plan is not None and plan is not last_plan:
            new = peers_by_service(plan.routes)
            apply_announcements(publisher, announced, new)
            announced, last_plan = new, plan
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), period)
        except asyncio.TimeoutError:
            pass


__all__ = ["sessions_of", "peers_by_service", "peers_of_service", "apply_announcements", "follow", "BFD_LABELS"]
