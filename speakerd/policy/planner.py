"""The pure planner: (Config, node name, previous allocations) -> Plan.

For this node: the peers whose nodeSelectors match, the advertisements whose
nodeSelectors match, and for each peer the advertisements that name it (or
name no peer).  Every service IP in a pool an advertisement selects becomes
a prefix of the advertisement's aggregation length; services that fall into
the same prefix share it (the route lists all of them and stays until the
last goes).

When several advertisements produce the same prefix for the same peer, the
route carries the union of their communities and large communities and the
highest localPref among those that set one.

No Node object for the node name means a node whose only label is
``kubernetes.io/hostname=<name>``.
"""
from __future__ import annotations

from ..config.addr import AFI_V4, BITS, format_prefix, parse_ip
from ..config.gcpause import gc_paused
from ..config.model import Advertisement, Config, selectors_match
from .allocate import PoolIndex, allocate
from .types import Plan, PlannedRoute, Reason, RouteAttrs

HOSTNAME_LABEL = "kubernetes.io/hostname"


def node_labels(config: Config, node_name: str) -> dict[str, str]:
    node = config.nodes.get(node_name)
    if node is None:
        return {HOSTNAME_LABEL: node_name}
    return node.label_dict()


def merge_attrs(ads: list[Advertisement]) -> RouteAttrs:
    communities: set[int] = set()
    large: set[tuple[int, int, int]] = set()
    prefs = [a.local_pref for a in ads if a.local_pref is not None]
    for a in ads:
        communities.update(a.communities)
        large.update(a.large_communities)
    return RouteAttrs(tuple(sorted(communities)), tuple(sorted(large)), max(prefs) if prefs else None)


def _routes_for(ads: list[Advertisement], pool_ips: dict[str, list[tuple[str, int, int, str]]]
                ) -> dict[tuple[int, int], PlannedRoute]:
    acc: dict[tuple[int, int], tuple[list[Reason], list[str]]] = {}
    for ad in ads:
        name = ad.name
        for pool in ad.pools:
            entries = pool_ips.get(pool)
            if not entries:
                continue
            shift4 = 32 - ad.aggregation_length
            shift6 = 128 - ad.aggregation_length_v6
            len4, len6 = ad.aggregation_length, ad.aggregation_length_v6
            for svc, afi, value, ip in entries:
                if afi == AFI_V4:
                    k = (afi, ((value >> shift4) << shift4) << 8 | len4)
                else:
                    k = (afi, ((value >> shift6) << shift6) << 8 | len6)
                slot = acc.get(k)
                if slot is None:
                    slot = acc[k] = ([], [])
                slot[0].append(Reason(svc, ip, pool, name))
                if not slot[1] or slot[1][-1] != name:
                    if name not in slot[1]:
                        slot[1].append(name)
    by_name = {a.name: a for a in ads}
    attrs_cache: dict[tuple[str, ...], RouteAttrs] = {}
    out: dict[tuple[int, int], PlannedRoute] = {}
    for (afi, key), (reasons, names) in acc.items():
        names_t = tuple(sorted(names))
        attrs = attrs_cache.get(names_t)
        if attrs is None:
            attrs = attrs_cache[names_t] = merge_attrs([by_name[n] for n in names_t])
        length = key & 0xFF
        out[(afi, key)] = PlannedRoute(afi, key, format_prefix(afi, key >> 8, length), attrs, tuple(reasons))
    return out


def plan(config: Config, node_name: str, allocations: dict[str, tuple[str, ...]] | None = None) -> Plan:
    """Routes per peer for `node_name`; `allocations` are the previous ones (kept while valid)."""
    with gc_paused():
        return _plan(config, node_name, allocations)


def _plan(config: Config, node_name: str, allocations: dict[str, tuple[str, ...]] | None) -> Plan:
    index = PoolIndex(config.pools)
    allocated, notes = allocate(config, allocations, index)
    labels = node_labels(config, node_name)
    pool_ips: dict[str, list[tuple[str, int, int, str]]] = {}
    pool_of = index.pool_of
    for key, svc in config.services.items():
        ips = svc.ips or allocated.get(key, ())
        for ip in ips:
            afi, value = parse_ip(ip)
            pool = pool_of(afi, value)
            if pool is None:
                notes.append(f"{key}: {ip} is in no IPAddressPool; not advertised")
                continue
            lst = pool_ips.get(pool)
            if lst is None:
                lst = pool_ips[pool] = []
            lst.append((key, afi, value, ip))
    ads = [a for _, a in sorted(config.advertisements.items()) if selectors_match(a.node_selectors, labels)]
    routes: dict[str, dict[tuple[int, int], PlannedRoute]] = {}
    shared: dict[tuple[str, ...], dict[tuple[int, int], PlannedRoute]] = {}
    for name, peer in sorted(config.peers.items()):
        if not selectors_match(peer.node_selectors, labels):
            continue
        mine = [a for a in ads if not a.peers or name in a.peers]
        sig = tuple(a.name for a in mine)
        if sig not in shared:  # peers with the same advertisements share one (read-only) table
            shared[sig] = _routes_for(mine, pool_ips)
        routes[name] = shared[sig]
    return Plan(routes=routes, allocations=allocated, notes=tuple(notes))


__all__ = ["plan", "node_labels", "merge_attrs", "BITS"]
