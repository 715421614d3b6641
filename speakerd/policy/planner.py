"""The planner: store state -> routes per peer, and by difference the change of each.

For this node: the peers whose nodeSelectors match, the advertisements whose
nodeSelectors match, and for each peer the advertisements that name it (or name
no peer).  Every service IP in a pool an advertisement selects becomes a prefix of
the advertisement's aggregation length; services that fall into the same prefix
share it (the route lists all of them and stays until the last goes).  When
several advertisements give the same prefix to a peer, the route carries the union
of their communities and large communities and the highest localPref among those
that set one.  A peer gets only the prefixes of the address families its session
carries (``Peer.families``: its peer address's own, both with
dualStackAddressFamily or on an interface), as MetalLB skips the other family's.  No Node object for the node name means a node whose only label is
``kubernetes.io/hostname=<name>``.

Peers with the same advertisements and families share one :class:`RouteTable`.  A
:class:`Planner` keeps the tables and, per call of :meth:`Planner.services_changed`,
re-plans only the Services given (their old contributions out, new ones in) and
returns each peer's delta: ``(afi, key) -> RouteAttrs`` or ``None`` (withdraw).
A change of the MetalLB configuration or of this node's labels rebuilds the tables
(:meth:`Planner.rebuild`) and returns the delta against the previous ones.
``plan()`` is the from-scratch plan; the incremental result always equals it
(tests/unit/test_plan_incremental.py).

Endpoint-weighted ECMP (``speakerd.io/link-bandwidth: endpoints`` on a BGPAdvertisement,
a speakerd extension): a route gets ``RouteAttrs.weight``, the ready endpoints on this node
of the Services behind it (:attr:`Planner.endpoints`, the announce rules' EndpointIndex),
when every advertisement giving it the prefix opts in and every Service behind it has
``externalTrafficPolicy: Local``.  A Service with ``Cluster`` is forwarded by every node to
every endpoint, so equal shares are right: no weight.  A Local Service announced only for
serving-but-terminating endpoints counts 1 (it is announced, so it must not look absent).
Without any opting-in advertisement nothing is computed and routes are MetalLB's.

``withheld`` (file mode): the Services this node does not announce by the
announce rules (:mod:`speakerd.policy.announce`).  They get no route here, but
allocation still reads every Service of ``config.services``: an address never
depends on one node's endpoints or conditions.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Iterator

from ..config.addr import AFI_V4, BITS, FAMILY_AFI, format_ip, format_prefix, parse_ip
from ..config.gcpause import gc_paused
from ..config.model import Advertisement, Config, Service, selectors_match
from .allocate import PoolIndex, allocate
from .types import Plan, PlannedRoute, Reason, RouteAttrs

HOSTNAME_LABEL = "kubernetes.io/hostname"
RouteKey = tuple[int, int]
Delta = dict  # (afi, key) -> RouteAttrs | None


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


class RouteTable(Mapping):
    """``(afi, key) -> PlannedRoute`` of the peers sharing one set of advertisements.

    ``attrs`` (route key -> RouteAttrs) is what a session is given; ``reasons``
    (route key -> Reason, or a list of them for a shared prefix) why; the
    PlannedRoute is made only when looked up.

    The usual route, one Service's address as a host route from the only advertisement of
    its pool here, keeps the Service key alone as its reason: the address is the prefix's,
    the pool is ``pool_of(address)``, the advertisement the pool's one (a Reason per route
    was 64 B). ``_expand`` makes the Reason again."""

    __slots__ = ("ads", "afis", "by_pool", "attrs", "reasons", "_merged", "weighted", "weight_of",
                 "_weighted_attrs", "pool_of", "_sole")

    def __init__(self, ads: list[Advertisement], weight_of=None,
                 afis: frozenset[int] = frozenset(BITS), pool_of=None) -> None:
        self.ads = ads
        self.afis = afis  # the AFIs of the sessions sharing the table: no route of another one
        # endpoint weights: the advertisements that opt in, and service key -> weight (or None)
        self.weighted = frozenset(a.name for a in ads if a.weight_by_endpoints)
        self.weight_of = weight_of
        self._weighted_attrs: dict[tuple[RouteAttrs, int], RouteAttrs] = {}
        self.by_pool: dict[str, list[Advertisement]] = {}
        for ad in ads:
            for pool in ad.pools:
                self.by_pool.setdefault(pool, []).append(ad)
        self.attrs: dict[RouteKey, RouteAttrs] = {}
        self.reasons: dict[RouteKey, str | Reason | list[Reason]] = {}
        # (afi, address) -> pool (the planner's PoolIndex.pool_of); pool -> its one advertisement here
        self.pool_of = pool_of
        self._sole = {p: a[0].name for p, a in self.by_pool.items() if len(a) == 1} if pool_of else {}
        self._merged: dict[tuple[str, ...], RouteAttrs] = {}
        for ad in ads:
            self._merged[(ad.name,)] = merge_attrs([ad])

    def _attrs_of(self, reasons: list[Reason]) -> RouteAttrs:
        names = tuple(sorted({r.advertisement for r in reasons}))
        got = self._merged.get(names)
        if got is None:
            by_name = {a.name: a for a in self.ads}
            got = self._merged[names] = merge_attrs([by_name[n] for n in names])
        return got

    def _weigh(self, base: RouteAttrs, reasons: list[Reason]) -> RouteAttrs:
        """``base`` with the route's endpoint weight, when every reason opts in and has one."""
        total = 0
        seen: set[str] = set()
        weighted, weight_of = self.weighted, self.weight_of
        for r in reasons:
            if r.advertisement not in weighted:
                return base
            if r.service in seen:
                continue
            seen.add(r.service)
            w = weight_of(r.service) if weight_of is not None else None
            if w is None:
                return base
            total += w
        got = self._weighted_attrs.get((base, total))
        if got is None:
            got = self._weighted_attrs[(base, total)] = dataclasses.replace(base, weight=total)
        return got

    def _compact(self, rk: RouteKey, reason: Reason) -> str | Reason:
        """The Service key alone when ``_expand`` gives ``reason`` back from it, else ``reason``."""
        afi, key = rk
        if self._sole.get(reason.pool) == reason.advertisement and key & 0xFF == BITS[afi] \
                and reason.ip == format_ip(afi, key >> 8):
            return reason.service
        return reason

    def _expand(self, rk: RouteKey, cur: str | Reason) -> Reason:
        if type(cur) is not str:
            return cur  # type: ignore[return-value]
        afi, key = rk
        pool = self.pool_of(afi, key >> 8)
        return Reason(cur, format_ip(afi, key >> 8), pool, self._sole[pool])

    def add(self, rk: RouteKey, reason: Reason, touched: dict) -> None:
        attrs = self.attrs
        if rk not in touched:
            touched[rk] = attrs.get(rk)
        cur = self.reasons.get(rk)
        if cur is None:
            self.reasons[rk] = self._compact(rk, reason)
            attrs[rk] = self._merged[(reason.advertisement,)]
            if self.weighted:
                attrs[rk] = self._weigh(attrs[rk], [reason])
            return
        lst = cur if type(cur) is list else [self._expand(rk, cur)]
        lst.append(reason)
        self.reasons[rk] = lst
        attrs[rk] = self._attrs_of(lst) if not self.weighted else self._weigh(self._attrs_of(lst), lst)

    def remove(self, rk: RouteKey, reason: Reason, touched: dict) -> None:
        cur = self.reasons.get(rk)
        if cur is None:
            return
        if rk not in touched:
            touched[rk] = self.attrs.get(rk)
        if type(cur) is not list:
            if self._expand(rk, cur) == reason:
                del self.reasons[rk]
                del self.attrs[rk]
            return
        lst = [r for r in cur if r != reason] if reason in cur else cur
        if len(lst) == 1:
            self.reasons[rk] = lst[0]
            self.attrs[rk] = self._merged[(lst[0].advertisement,)]
        else:
            self.reasons[rk] = lst
            self.attrs[rk] = self._attrs_of(lst)
        if self.weighted:
            self.attrs[rk] = self._weigh(self.attrs[rk], lst)

    def __getitem__(self, rk: RouteKey) -> PlannedRoute:
        cur = self.reasons[rk]
        afi, key = rk
        reasons = tuple(cur) if type(cur) is list else (self._expand(rk, cur),)
        return PlannedRoute(afi, key, format_prefix(afi, key >> 8, key & 0xFF), self.attrs[rk], reasons)

    def __contains__(self, rk: object) -> bool:
        return rk in self.attrs

    def __iter__(self) -> Iterator[RouteKey]:
        return iter(self.attrs)

    def __len__(self) -> int:
        return len(self.attrs)

    def __repr__(self) -> str:
        return f"RouteTable({len(self.attrs)} routes)"


def _route_key(afi: int, value: int, ad: Advertisement) -> RouteKey:
    length = ad.aggregation_length if afi == AFI_V4 else ad.aggregation_length_v6
    shift = BITS[afi] - length
    return (afi, ((value >> shift) << shift) << 8 | length)


class Planner:
    """Tables per set of advertisements for one node, kept up to date by difference."""

    def __init__(self, node: str, withheld: Mapping[str, object] | None = None) -> None:
        self.node = node
        # service key -> why this node does not route it (file mode's announce rules, live):
        # such a Service still takes part in allocation, so every node computes the same addresses
        self.withheld: Mapping[str, object] = withheld if withheld is not None else {}
        self.config: Config | None = None
        self.index = PoolIndex({})
        self.tables: dict[tuple, RouteTable] = {}
        # peer name -> its table's key: ((AFIs of its session), advertisement names...)
        self.peer_table: dict[str, tuple] = {}
        self.planned: dict[str, tuple[str, ...]] = {}  # service key -> IPs planned (own or allocated)
        # service key -> its labels when planned; kept only while an advertisement has serviceSelectors
        self.planned_labels: dict[str, tuple[tuple[str, str], ...]] = {}
        self.service_selectors = False  # whether any advertisement has spec.serviceSelectors
        self.allocations: dict[str, tuple[str, ...]] = {}
        self.notes: dict[str, list[str]] = {}  # service key -> notes ("... is in no IPAddressPool")
        self.alloc_notes: list[str] = []
        # endpoint-weighted ECMP: ready endpoints per Service and node (the announce rules'
        # EndpointIndex: ready_local(service, node), has_slices(service)); None: no weights
        self.endpoints = None
        self.weighting = False  # whether an advertisement of this node opts in
        self.planned_weights: dict[str, int] = {}  # service key -> its weight when planned (weighted only)

    # ------------------------------------------------------------------ api
    def rebuild(self, config: Config, allocations: dict[str, tuple[str, ...]] | None = None) -> dict[str, Delta]:
        """Plan from scratch for `config`; the delta of each peer against the previous plan
        (a peer new to the plan gets its whole table; a peer gone, every route withdrawn)."""
        old_tables = {name: self.tables[sig].attrs for name, sig in self.peer_table.items()}
        self.config = config
        self.index = PoolIndex(config.pools)
        labels = node_labels(config, self.node)
        ads = [a for _, a in sorted(config.advertisements.items()) if selectors_match(a.node_selectors, labels)]
        self.tables, self.peer_table = {}, {}
        self.weighting = any(a.weight_by_endpoints for a in ads)
        self.planned_weights = {}
        weight_of = self.planned_weights.get
        for name, peer in sorted(config.peers.items()):
            if not selectors_match(peer.node_selectors, labels):
                continue
            mine = [a for a in ads if not a.peers or name in a.peers]
            afis = frozenset(FAMILY_AFI[f] for f in peer.families)
            sig = (tuple(sorted(afis)),) + tuple(a.name for a in mine)
            if sig not in self.tables:
                self.tables[sig] = RouteTable(mine, weight_of, afis, self.index.pool_of)
            self.peer_table[name] = sig
        self.planned, self.notes, self.planned_labels = {}, {}, {}
        self.service_selectors = any(a.service_selectors for a in ads)
        self._allocate(allocations if allocations is not None else self.allocations)
        untracked = {sig: _Untracked() for sig in self.tables}
        withheld = self.withheld
        for key, svc in config.services.items():
            if withheld and key in withheld:
                continue
            labels = svc.labels if self.service_selectors else ()  # read only for serviceSelectors
            self._add(key, self._ips(key, svc), untracked, labels, self._weight(key, svc))
        out: dict[str, Delta] = {}
        for name in old_tables.keys() | self.peer_table.keys():
            before = old_tables.get(name, {})
            after = self.tables[self.peer_table[name]].attrs if name in self.peer_table else {}
            out[name] = diff_tables(before, after)
        return out

    def services_changed(self, config: Config, keys: Iterable[str]) -> dict[str, Delta]:
        """Re-plan the Services `keys` (changed, added or gone in `config.services`, or whose
        entry in `withheld` came or went); the delta of each peer."""
        self.config = config
        keys = set(keys)
        if self._needs_allocation(config, keys):
            before = self.allocations
            self._allocate(before)
            keys |= {k for k in before.keys() | self.allocations.keys() if before.get(k) != self.allocations.get(k)}
        touched: dict[tuple[str, ...], dict] = {sig: {} for sig in self.tables}
        services = config.services
        withheld = self.withheld
        for key in keys:
            svc = services.get(key)
            new_ips = self._ips(key, svc) if svc is not None and key not in withheld else ()
            labels = svc.labels if svc is not None and self.service_selectors else ()
            weight = self._weight(key, svc) if new_ips else None
            if self.planned.get(key, ()) == new_ips and (
                    not self.service_selectors or not new_ips or self.planned_labels.get(key, ()) == labels) and \
                    self.planned_weights.get(key) == weight:
                continue
            self._remove(key, touched)
            self._add(key, new_ips, touched, labels, weight)
        deltas: dict[tuple[str, ...], Delta] = {}
        for sig, t in self.tables.items():
            d: Delta = {}
            attrs = t.attrs
            for rk, old in touched[sig].items():
                new = attrs.get(rk)
                if new != old:
                    d[rk] = new
            deltas[sig] = d
        return {name: deltas[sig] for name, sig in self.peer_table.items()}

    def plan(self) -> Plan:
        """The current plan (tables are live: read, do not keep across changes)."""
        notes = list(self.alloc_notes)
        for n in self.notes.values():
            notes.extend(n)
        return Plan(routes={name: self.tables[sig] for name, sig in self.peer_table.items()},
                    allocations=dict(self.allocations), notes=tuple(notes))

    # ------------------------------------------------------------ internals
    def _needs_allocation(self, config: Config, keys: set[str]) -> bool:
        if not self.allocations and not any((s := config.services.get(k)) is not None and not s.ips for k in keys):
            return False  # nothing was allocated and none of the changed Services lacks its own IPs
        return True

    def _allocate(self, previous: dict[str, tuple[str, ...]]) -> None:
        config = self.config
        assert config is not None
        if all(s.ips for s in config.services.values()):
            self.allocations, self.alloc_notes = {}, []
            return
        self.allocations, self.alloc_notes = allocate(config, previous, self.index)

    def _weight(self, key: str, svc: Service | None) -> int | None:
        """The Service's endpoint weight on this node, None when its routes carry none."""
        endpoints = self.endpoints
        if not self.weighting or endpoints is None or svc is None or svc.traffic_policy != "Local" \
                or not endpoints.has_slices(key):
            return None  # Cluster: every node forwards to every endpoint, equal shares are right
        return max(1, endpoints.ready_local(key, self.node))

    def _ips(self, key: str, svc: Service) -> tuple[str, ...]:
        return svc.ips or self.allocations.get(key, ())

    def _reasons(self, key: str, ips: tuple[str, ...], t: RouteTable, notes: list[str] | None,
                 labels: tuple[tuple[str, str], ...] = ()) -> Iterator[tuple[RouteKey, Reason]]:
        index = self.index
        label_map = dict(labels) if self.service_selectors else None
        afis = t.afis
        for ip in ips:
            afi, value = parse_ip(ip)
            pool = index.pool_of(afi, value)
            if pool is None:
                if notes is not None:
                    notes.append(f"{key}: {ip} is in no IPAddressPool; not advertised")
                continue
            if afi not in afis:
                continue  # not a family of these peers' sessions
            for ad in t.by_pool.get(pool, ()):
                if label_map is not None and not selectors_match(ad.service_selectors, label_map):
                    continue  # spec.serviceSelectors: not this Service's advertisement
                yield _route_key(afi, value, ad), Reason(key, ip, pool, ad.name)

    def _add(self, key: str, ips: tuple[str, ...], touched: dict, labels: tuple[tuple[str, str], ...] = (),
             weight: int | None = None) -> None:
        if not ips:
            return
        self.planned[key] = ips
        if weight is not None:
            self.planned_weights[key] = weight  # before the routes: their attributes read it
        if self.service_selectors:
            self.planned_labels[key] = labels
        notes: list[str] = []
        for i, (sig, t) in enumerate(self.tables.items()):
            tt = touched[sig]
            for rk, reason in self._reasons(key, ips, t, notes if i == 0 else None, labels):
                t.add(rk, reason, tt)
        if not self.tables:
            for ip in ips:
                afi, value = parse_ip(ip)
                if self.index.pool_of(afi, value) is None:
                    notes.append(f"{key}: {ip} is in no IPAddressPool; not advertised")
        if notes:
            self.notes[key] = notes

    def _remove(self, key: str, touched: dict) -> None:
        ips = self.planned.pop(key, ())
        labels = self.planned_labels.pop(key, ())
        self.notes.pop(key, None)
        if not ips:
            return
        for sig, t in self.tables.items():
            tt = touched[sig]
            for rk, reason in self._reasons(key, ips, t, None, labels):
                t.remove(rk, reason, tt)
        self.planned_weights.pop(key, None)  # last: the routes above were re-weighed while it was set


class _Untracked(dict):
    """A 'touched' record that records nothing (a rebuild diffs whole tables instead)."""

    def __contains__(self, key: object) -> bool:
        return True


def diff_tables(before: Mapping[RouteKey, RouteAttrs], after: Mapping[RouteKey, RouteAttrs]) -> Delta:
    """The delta taking a peer from `before` to `after` (set operations in C for the keys)."""
    if not before:
        return dict(after)
    d: Delta = dict.fromkeys(before.keys() - after.keys())
    for rk in after.keys() - before.keys():
        d[rk] = after[rk]
    for rk in after.keys() & before.keys():
        a = after[rk]
        if a is not before[rk] and a != before[rk]:
            d[rk] = a
    return d


def plan(config: Config, node_name: str, allocations: dict[str, tuple[str, ...]] | None = None) -> Plan:
    """Routes per peer for `node_name`, from scratch; `allocations` are the previous ones (kept while valid)."""
    with gc_paused():
        p = Planner(node_name)
        p.rebuild(config, allocations or {})
        return p.plan()


__all__ = ["plan", "Planner", "RouteTable", "diff_tables", "node_labels", "merge_attrs", "BITS"]
