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

from collections.abc import Mapping
from itertools import repeat
from operator import itemgetter, lshift, or_

from ..config.addr import AFI_V4, BITS, format_prefix, parse_ips
from ..config.gcpause import gc_paused
from ..config.model import Advertisement, Config, selectors_match
from ..config.services import IPS, rows_of
from .allocate import PoolIndex, allocate
from .types import Plan, PlannedRoute, Reason, RouteAttrs, RouteTable

HOSTNAME_LABEL = "kubernetes.io/hostname"
_IPS_OF = itemgetter(IPS)
_FIRST = itemgetter(0)


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


Entries = tuple  # (service keys, ip texts, afis, values, pools): one element per service IP


def _routes_for(ads: list[Advertisement], pool_ips: dict[str, list[int]], entries: Entries
                ) -> dict[tuple[int, int], PlannedRoute]:
    """The general table: any aggregation, prefixes shared by services or by advertisements."""
    svcs, ips, afis, values, _ = entries
    acc: dict[tuple[int, int], tuple[list[Reason], list[str]]] = {}
    for ad in ads:
        name = ad.name
        for pool in ad.pools:
            idxs = pool_ips.get(pool)
            if not idxs:
                continue
            shift4 = 32 - ad.aggregation_length
            shift6 = 128 - ad.aggregation_length_v6
            len4, len6 = ad.aggregation_length, ad.aggregation_length_v6
            for i in idxs:
                afi, value = afis[i], values[i]
                if afi == AFI_V4:
                    k = (afi, ((value >> shift4) << shift4) << 8 | len4)
                else:
                    k = (afi, ((value >> shift6) << shift6) << 8 | len6)
                slot = acc.get(k)
                if slot is None:
                    slot = acc[k] = ([], [])
                slot[0].append(Reason(svcs[i], ips[i], pool, name))
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


def _fast_table(ads: list[Advertisement], pool_ips: dict[str, list[int]], entries: Entries) -> RouteTable | None:
    """The common table: every prefix from exactly one service IP and one advertisement.

    Built with a few C-level passes (no object per route besides its key);
    None when some prefix would be shared, so the general table is needed."""
    svcs, ips, afis, values, pools = entries
    attrs_of: dict[tuple[int, int], RouteAttrs] = {}
    entry_of: dict[tuple[int, int], int] = {}
    ad_of_pool: dict[str, str] = {}
    for ad in ads:
        attrs = merge_attrs([ad])
        for pool in ad.pools:
            if pool in ad_of_pool:
                return None  # two advertisements of this peer select the pool: merged attributes
            ad_of_pool[pool] = ad.name
            idxs = pool_ips.get(pool)
            if not idxs:
                continue
            sh4 = 32 - ad.aggregation_length
            sh6 = 128 - ad.aggregation_length_v6
            if sh4 == 0 and (afis.count(AFI_V4) == len(afis) or all(afis[i] == AFI_V4 for i in idxs)):
                # (AFI_V4, value << 8 | 32) for each, by C-level maps
                vals = values if len(idxs) == len(values) else list(map(values.__getitem__, idxs))
                keys = list(zip(repeat(AFI_V4), map(or_, map(lshift, vals, repeat(8)), repeat(32))))
            else:
                keys = [(afis[i], ((values[i] >> sh4) << sh4) << 8 | (32 - sh4)) if afis[i] == AFI_V4
                        else (afis[i], ((values[i] >> sh6) << sh6) << 8 | (128 - sh6)) for i in idxs]
            got = dict(zip(keys, idxs))
            if len(got) != len(idxs) or not entry_of.keys().isdisjoint(got):
                return None  # services share a prefix
            entry_of.update(got)
            attrs_of.update(dict.fromkeys(got, attrs))
    return RouteTable(attrs_of, entry_of, svcs, ips, pools, ad_of_pool)


def _entries(config: Config, allocated: dict[str, tuple[str, ...]], index: PoolIndex,
             notes: list[str]) -> tuple[Entries, dict[str, list[int]]]:
    """Every service IP (own or allocated) in service order, with its pool; indexes per pool."""
    rows = rows_of(config.services)
    svcs: list[str] = []
    ips: list[str] = []
    own_ips = list(map(_IPS_OF, rows.values()))
    if set(map(len, own_ips)) == {1}:  # the common case: one own IP each, nothing allocated
        svcs = list(rows)
        ips = list(map(_FIRST, own_ips))
    del own_ips
    for key, row in rows.items() if not svcs else ():
        own = row[IPS] or allocated.get(key, ())
        if len(own) == 1:
            svcs.append(key)
            ips.append(own[0])
        else:
            for ip in own:
                svcs.append(key)
                ips.append(ip)
    afis, values = parse_ips(ips)
    pools = index.pools_of(afis, values)
    pool_ips: dict[str, list[int]] = {}
    if len(config.pools) == 1 and None not in pools:
        if pools:
            pool_ips[pools[0]] = list(range(len(pools)))  # type: ignore[index]
    else:
        for i, pool in enumerate(pools):
            if pool is None:
                notes.append(f"{svcs[i]}: {ips[i]} is in no IPAddressPool; not advertised")
                continue
            lst = pool_ips.get(pool)
            if lst is None:
                lst = pool_ips[pool] = []
            lst.append(i)
    return (svcs, ips, afis, values, pools), pool_ips


def plan(config: Config, node_name: str, allocations: dict[str, tuple[str, ...]] | None = None) -> Plan:
    """Routes per peer for `node_name`; `allocations` are the previous ones (kept while valid)."""
    with gc_paused():
        return _plan(config, node_name, allocations)


def _plan(config: Config, node_name: str, allocations: dict[str, tuple[str, ...]] | None) -> Plan:
    index = PoolIndex(config.pools)
    allocated, notes = allocate(config, allocations, index)
    labels = node_labels(config, node_name)
    entries, pool_ips = _entries(config, allocated, index, notes)
    ads = [a for _, a in sorted(config.advertisements.items()) if selectors_match(a.node_selectors, labels)]
    routes: dict[str, Mapping[tuple[int, int], PlannedRoute]] = {}
    shared: dict[tuple[str, ...], Mapping[tuple[int, int], PlannedRoute]] = {}
    for name, peer in sorted(config.peers.items()):
        if not selectors_match(peer.node_selectors, labels):
            continue
        mine = [a for a in ads if not a.peers or name in a.peers]
        sig = tuple(a.name for a in mine)
        if sig not in shared:  # peers with the same advertisements share one (read-only) table
            table = _fast_table(mine, pool_ips, entries)
            shared[sig] = table if table is not None else _routes_for(mine, pool_ips, entries)
        routes[name] = shared[sig]
    return Plan(routes=routes, allocations=allocated, notes=tuple(notes))


__all__ = ["plan", "node_labels", "merge_attrs", "BITS"]
