"""Service address allocation with MetalLB v0.16's rules, sans-IO.

Objects in, decisions out: :meth:`Allocator.converge` takes a
:class:`~speakerd.config.model.Service` and returns the :class:`Decision`
(the ingress IPs and the ``metallb.io/ip-allocated-from-pool`` annotation
it should carry, and the Events to record); :meth:`Allocator.delete` frees a
Service's addresses.  No clock, no IO.  The rules are MetalLB's controller
(``convergeBalancer``) and allocator, rule by rule:

- A Service keeps the addresses in its status while they stay valid (the
  pool still holds them, the pool may serve it, no sharing clash, its family
  and its requested IPs and pool unchanged) -- so rebuilding from the
  Services' status on start never renumbers.
- Requested IPs (``metallb.io/loadBalancerIPs``, ``metallb.universe.tf/…``
  or ``spec.loadBalancerIP``; both set is an error) are given as asked when
  a pool holds them, of any autoAssign setting.
- ``metallb.io/address-pool`` names the only pool to allocate from.
- Otherwise the pools that select the Service (``serviceAllocation``:
  namespaces, namespaceSelectors, serviceSelectors; autoAssign ones) by
  priority (lower first, unset last, then by name), then every autoAssign
  pool without a ``serviceAllocation``, by name.
- In a pool, the first address walking the pool (see ``Space``) that is
  free or that the Service may share: same ``allow-shared-ip`` key, no
  (protocol, port) in common with its users, and for
  ``externalTrafficPolicy: Local`` the same selector.
- Families: SingleStack one address of the Service's family; RequireDualStack
  both from one pool or none; PreferDualStack both from one pool if one has
  both, else one of the first family.

Two walking orders: from the lowest address (MetalLB; the controller), or
``spread``: from an offset hashed from the Service key (or from the sharing
key, so sharers meet), used by file mode where every node must compute the
same answer from the objects alone.  MetalLB walks its pools in map order
(random) where priorities tie; here ties go by pool name.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import blake2b

from ..config.addr import AFI_V4, AFI_V6, FAMILY_AFI, parse_ip
from ..config.model import Pool, Service, selectors_match
from .space import MAX_INT64, Space, Use

IPV4, IPV6, DUAL = "ipv4", "ipv6", "dual"  # MetalLB's ipfamily names, as its messages print them


class AllocationError(Exception):
    """Why an address cannot be given; the text is MetalLB's."""


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event to record on the Service."""
    type: str  # Normal or Warning
    reason: str  # IPAllocated, AllocationFailed, ClearAssignment, ...
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What a Service should carry after converging."""
    key: str
    ips: tuple[str, ...]  # status.loadBalancer.ingress[].ip
    pool: str | None  # metallb.io/ip-allocated-from-pool; None = absent
    events: tuple[Event, ...] = ()
    ok: bool = True  # False: not converged; worth retrying when addresses are freed or pools change
    manage: bool = True  # False: leave the object as it is (another class, or an invalid request)
    freed: bool = False  # addresses were released or changed: Services waiting for one may fit now


@dataclass(frozen=True, slots=True)
class PoolCounters:
    """IPAddressPool status, as MetalLB >= 0.15 publishes it."""
    assigned_ipv4: int
    assigned_ipv6: int
    available_ipv4: int
    available_ipv6: int

    def status(self) -> dict[str, int]:
        return {"assignedIPv4": self.assigned_ipv4, "assignedIPv6": self.assigned_ipv6,
                "availableIPv4": self.available_ipv4, "availableIPv6": self.available_ipv6}


@dataclass(frozen=True, slots=True)
class _Alloc:
    pool: str
    ips: tuple[tuple[int, int], ...]  # (afi, value), in status order
    ports: frozenset[tuple[str, int]]
    sharing: str
    backend: str


def quote_ips(ips) -> str:
    """Go's %q of a []net.IP: ["192.0.2.1" "2001:db8::1"]."""
    return "[" + " ".join(f'"{ip}"' for ip in ips) + "]"


def backend_key(svc: Service) -> str:
    """MetalLB's BackendKey: the selector as k=v,k=v for externalTrafficPolicy Local, else ""."""
    if svc.traffic_policy == "Local":
        return ",".join(f"{k}={v}" for k, v in sorted(svc.selector))
    return ""


def service_family(svc: Service) -> str:
    fams = svc.families
    if len(fams) >= 2:
        return DUAL
    return IPV6 if fams and fams[0] == 6 else IPV4


def _family_of(afis: list[int]) -> str | None:
    if len(afis) == 1:
        return IPV4 if afis[0] == AFI_V4 else IPV6
    if len(afis) == 2 and afis[0] != afis[1]:
        return DUAL
    return None


def _spread_seed(key: str, sharing: str, backend: str) -> int:
    text = f"share\0{sharing}\0{backend}" if sharing else f"svc\0{key}"
    return int.from_bytes(blake2b(text.encode(), digest_size=16).digest(), "big")


class Allocator:
    """Which Service has which addresses; decides with MetalLB's rules (see the module doc)."""

    def __init__(self, pools: Mapping[str, Pool], namespaces: Mapping[str, Mapping[str, str]] | None = None,
                 *, lb_class: str | None = None, spread: bool = False) -> None:
        self.lb_class = lb_class or None
        self.spread = spread
        self._allocs: dict[str, _Alloc] = {}
        self._released: set[tuple[int, int]] = set()  # addresses let go during the current converge
        self._pools: dict[str, Pool] = {}
        self._spaces: dict[tuple[str, int], Space] = {}
        self._ns_of_pool: dict[str, frozenset[str]] = {}
        self.set_pools(pools, namespaces or {})

    # ---- configuration

    def set_pools(self, pools: Mapping[str, Pool], namespaces: Mapping[str, Mapping[str, str]]) -> None:
        """New pools and Namespace labels; kept allocations move to the pool now holding them or are
        dropped (re-validated when their Services converge next, as MetalLB's SetPools)."""
        self._pools = dict(pools)
        self._spaces = {}
        for name, p in self._pools.items():
            for afi in (AFI_V4, AFI_V6):
                ranges = [(f, l) for a, f, l in p.ranges if a == afi]
                if ranges:
                    sizes = [1 << ((32 if afi == AFI_V4 else 128) - plen) for a, _, plen in p.cidrs if a == afi]
                    self._spaces[(name, afi)] = Space(name, afi, ranges, p.avoid_buggy_ips, sizes)
        self._ns_of_pool = {}
        for name, p in self._pools.items():
            sa = p.service_allocation
            if sa is None:
                continue
            names = set(sa.namespaces)
            if sa.namespace_selectors:
                names.update(ns for ns, labels in namespaces.items()
                             if any(s.matches(dict(labels)) for s in sa.namespace_selectors))
            self._ns_of_pool[name] = frozenset(names)
        old, self._allocs = self._allocs, {}
        for key, a in sorted(old.items()):
            pool = self._pool_for(a.ips)
            if pool is not None:
                self._record(key, _Alloc(pool, a.ips, a.ports, a.sharing, a.backend))

    @property
    def pools(self) -> dict[str, Pool]:
        return self._pools

    # ---- queries

    def ips_of(self, key: str) -> tuple[str, ...]:
        a = self._allocs.get(key)
        return self._texts(a.ips) if a else ()

    def pool_of(self, key: str) -> str | None:
        a = self._allocs.get(key)
        return a.pool if a else None

    def allocations(self) -> dict[str, tuple[str, ...]]:
        return {k: self._texts(a.ips) for k, a in self._allocs.items()}

    def counters(self, pool: str) -> PoolCounters:
        out = []
        for afi in (AFI_V4, AFI_V6):
            sp = self._spaces.get((pool, afi))
            if sp is None:
                out.append((0, 0))
            else:
                cap = MAX_INT64 if sp.huge else sp.capacity
                out.append((len(sp.use), cap - len(sp.use)))
        return PoolCounters(out[0][0], out[1][0], out[0][1], out[1][1])

    def is_mine(self, svc: Service) -> bool:
        """MetalLB's loadBalancerClass filter: with --lb-class only that class, without only no class."""
        return svc.lb_class == self.lb_class

    # ---- state changes

    def delete(self, key: str) -> bool:
        """The Service is gone: free its addresses. True when it had some."""
        return self._unassign(key)

    def claim(self, svc: Service, ips: tuple[str, ...]) -> None:
        """Record addresses a Service carries itself (file mode: its own manifest), unchecked, so
        that nothing else is given them; addresses in no pool are ignored (no pool could give them)."""
        parsed = []
        for ip in ips:
            try:
                parsed.append(parse_ip(ip))
            except ValueError:
                continue
        pool = self._pool_for(tuple(parsed)) if parsed else None
        if pool is None:
            for one in parsed:  # addresses of different pools: claim each where it lies
                p = self._pool_for((one,))
                if p is not None:
                    self._record(f"{svc.key}#{one[1]}", _Alloc(p, (one,), frozenset(svc.ports), svc.sharing_key or "",
                                                                 backend_key(svc)))
            return
        self._record(svc.key, _Alloc(pool, tuple(parsed), frozenset(svc.ports), svc.sharing_key or "", backend_key(svc)))

    def block(self, key: str, pool: str, afi: int, value: int) -> None:
        """Mark one address of `pool` as used by `key`, unshareable (file mode's own addresses, fast)."""
        sp = self._spaces.get((pool, afi))
        if sp is not None and sp.holds(value):
            use = sp.use.get(value)
            if use is None:
                use = sp.use[value] = Use("", "")
            use.users[key] = frozenset()

    def converge(self, svc: Service) -> Decision:
        """MetalLB's convergeBalancer for one Service."""
        key = svc.key
        had = self._allocs.get(key)
        self._released = set()
        if svc.service_type != "LoadBalancer":
            return Decision(key, (), None, freed=self._unassign(key))
        if not self.is_mine(svc):
            return Decision(key, (), None, manage=False, freed=self._unassign(key))
        if not self._pools:
            return Decision(key, (), None, ok=False, freed=self._unassign(key))
        events: list[Event] = []
        family = service_family(svc)
        policy = svc.ip_family_policy or "SingleStack"
        if policy == "RequireDualStack" and family != DUAL:
            freed = self._unassign(key)
            fams = ", ".join(f"IPv{f}" for f in svc.families)
            return Decision(key, (), None, (Event("Warning", "not enough clusterips",
                                                   f"Service requires dual stack but not enough clusterips [{fams}]"),),
                            ok=False, freed=freed)
        lb: list[tuple[int, int]] = []
        for ip in svc.ingress_ips:
            try:
                lb.append(parse_ip(ip))
            except ValueError:
                pass
        if lb:
            lb_family = _family_of([a for a, _ in lb])
            if lb_family is None or (lb_family != family and not (family == DUAL and policy == "PreferDualStack")):
                self._unassign(key)
                lb = []
        if lb:
            try:
                self._assign(svc, tuple(lb))
            except AllocationError as exc:
                events.append(Event("Normal", "ClearAssignment", f'current IP for "{key}" not allowed by config, '
                                    f"will attempt for new IP assignment: {exc}"))
                self._unassign(key)
                lb = []
            if lb and svc.pool and self.pool_of(key) != svc.pool:
                self._unassign(key)
                lb = []
            if svc.request_error:
                events.append(Event("Warning", "LoadBalancerFailed", f"invalid requested loadbalancer IPs: {svc.request_error}"))
                return Decision(key, self.ips_of(key), self.pool_of(key), tuple(events), ok=False,
                                freed=self._changed(key, had))
            if lb and svc.requested_ips:
                try:
                    wanted = sorted(parse_ip(ip) for ip in svc.requested_ips)
                except ValueError:
                    wanted = []
                if wanted != sorted(lb):
                    self._unassign(key)
                    lb = []
        if len(lb) == 1 and policy == "PreferDualStack" and family == DUAL:
            try:
                extra = self._additional_family(svc, lb[0])
            except AllocationError as exc:
                events.append(Event("Normal", "AdditionalAssignFailed", f"cannot assign additional IP in PreferDualStack: {exc}"))
            else:
                lb = [lb[0], extra]
                events.append(Event("Normal", "IPAllocated", f'Assigned additional IP "{self._texts((extra,))[0]}"'))
        if not lb and had is not None and self._allocs.get(key) is had and self._reusable(svc, had, family, policy):
            # what this allocator gave it is not in the object yet (a status write on its way, or a
            # status cleared by hand): the same addresses again, never a second allocation
            try:
                self._assign(svc, had.ips)
                lb = list(had.ips)
            except AllocationError:
                self._unassign(key)
        if not lb:
            if svc.deleting:  # going away: keeps what it has until it is gone, is given nothing new
                return Decision(key, (), None, tuple(events), ok=True, freed=self._changed(key, had))
            try:
                got = self._allocate(svc, family, policy)
            except AllocationError as exc:
                events.append(Event("Warning", "AllocationFailed", f'Failed to allocate IP for "{key}": {exc}'))
                return Decision(key, (), None, tuple(events), ok=False, freed=self._changed(key, had))
            lb = list(got)
            events.append(Event("Normal", "IPAllocated", f"Assigned IP {quote_ips(self._texts(got))}"))
        alloc = self._allocs[key]
        return Decision(key, self._texts(alloc.ips), alloc.pool, tuple(events), freed=self._changed(key, had))

    @staticmethod
    def _reusable(svc: Service, alloc: _Alloc, family: str, policy: str) -> bool:
        """An allocation still matches what the Service asks for (requested IPs, pool, family)."""
        if svc.request_error or (svc.pool and svc.pool != alloc.pool):
            return False
        if svc.requested_ips:
            try:
                if sorted(parse_ip(ip) for ip in svc.requested_ips) != sorted(alloc.ips):
                    return False
            except ValueError:
                return False
        fam = _family_of([a for a, _ in alloc.ips])
        return fam == family or (family == DUAL and policy == "PreferDualStack" and fam is not None)

    def allocate_new(self, svc: Service) -> tuple[tuple[str, ...], str | None, str]:
        """File mode: addresses for a Service that carries none -> (ips, pool, error message)."""
        family = service_family(svc)
        policy = svc.ip_family_policy or "SingleStack"
        if family == DUAL and policy == "SingleStack":  # a file-mode row knows "dual", not which dual policy
            policy = "PreferDualStack"
        if policy == "RequireDualStack" and family != DUAL:
            return (), None, "Service requires dual stack but has one IP family"
        try:
            got = self._allocate(svc, family, policy)
        except AllocationError as exc:
            return (), None, f'Failed to allocate IP for "{svc.key}": {exc}'
        return self._texts(got), self._allocs[svc.key].pool, ""

    # ---- MetalLB's allocator

    def _changed(self, key: str, had: _Alloc | None) -> bool:
        """Whether converging `key` let go of an address it held (before or during this converge)."""
        now = self._allocs.get(key)
        held = set(now.ips) if now else set()
        return bool(self._released - held)

    def _texts(self, ips) -> tuple[str, ...]:
        from ..config.addr import format_ip
        return tuple(format_ip(a, v) for a, v in ips)

    def _pool_for(self, ips: tuple[tuple[int, int], ...]) -> str | None:
        """The pool holding every address (pools do not overlap)."""
        for name in sorted(self._pools):
            if all((sp := self._spaces.get((name, afi))) is not None and sp.holds(v) for afi, v in ips):
                return name
        return None

    def _compatible(self, pool: str, svc: Service) -> bool:
        """MetalLB's isPoolCompatibleWithService: the pool's namespaces and serviceSelectors admit it."""
        sa = self._pools[pool].service_allocation
        if sa is None:
            return True
        names = self._ns_of_pool.get(pool, frozenset())
        if names and svc.namespace not in names:
            return False
        if sa.service_selectors:
            return selectors_match(sa.service_selectors, dict(svc.labels))
        return True

    def _pinned(self, svc: Service) -> list[str]:
        """Pools whose serviceAllocation selects the Service (autoAssign, compatible), by priority."""
        out = []
        for name, p in self._pools.items():
            sa = p.service_allocation
            if sa is None or not p.auto_assign:
                continue
            by_ns = svc.namespace in self._ns_of_pool.get(name, frozenset())
            # a serviceAllocation with nothing but a priority selects every Service (MetalLB)
            by_sel = bool(sa.service_selectors) or not (sa.namespaces or sa.namespace_selectors)
            if (by_ns or by_sel) and self._compatible(name, svc):
                out.append(name)
        return sorted(out, key=lambda n: (self._pools[n].service_allocation.priority <= 0,  # type: ignore[union-attr]
                                          self._pools[n].service_allocation.priority, n))  # type: ignore[union-attr]

    def _check_sharing(self, key: str, ip_text: str, use: Use | None, ports, sharing: str, backend: str) -> None:
        if use is None:
            return
        if not (use.sharing and sharing and use.sharing == sharing and use.backend == backend):
            others = sorted(k for k in use.users if k != key)
            if others:
                raise AllocationError(f'can\'t change sharing key for "{key}", address also in use by {",".join(others)}')
        for other, theirs in use.users.items():
            if other != key:
                for proto, port in sorted(ports):
                    if (proto, port) in theirs:
                        raise AllocationError(f'port {proto}/{port} is already in use on "{ip_text}"')

    def _shareable(self, key: str, use: Use, ports, sharing: str, backend: str) -> bool:
        try:
            self._check_sharing(key, "", use, ports, sharing, backend)
        except AllocationError:
            return False
        return True

    def _assign(self, svc: Service, ips: tuple[tuple[int, int], ...]) -> None:
        """MetalLB's Assign: exactly these addresses, if the config and sharing allow."""
        texts = self._texts(ips)
        pool = self._pool_for(ips)
        if pool is None:
            raise AllocationError(f"{quote_ips(texts)} is not allowed in config")
        if not self._compatible(pool, svc):
            raise AllocationError(f"pool {pool} not compatible for ip assignment")
        if len(ips) > 2:
            raise AllocationError(f"more than two addresses {quote_ips(texts)}")
        if len(ips) == 2 and ips[0][0] == ips[1][0]:
            raise AllocationError(f'"{texts[0]}" "{texts[1]}" has the same family')
        ports = frozenset(svc.ports)
        sharing, backend = svc.sharing_key or "", backend_key(svc)
        for (afi, v), text in zip(ips, texts):
            self._check_sharing(svc.key, text, self._spaces[(pool, afi)].use.get(v), ports, sharing, backend)
        self._record(svc.key, _Alloc(pool, ips, ports, sharing, backend))

    def _record(self, key: str, alloc: _Alloc) -> None:
        self._unassign(key)
        self._allocs[key] = alloc
        for afi, v in alloc.ips:
            sp = self._spaces[(alloc.pool, afi)]
            use = sp.use.get(v)
            if use is None:
                use = sp.use[v] = Use(alloc.sharing, alloc.backend)
            else:
                use.sharing, use.backend = alloc.sharing, alloc.backend
            use.users[key] = alloc.ports

    def _unassign(self, key: str) -> bool:
        alloc = self._allocs.pop(key, None)
        if alloc is None:
            return False
        self._released.update(alloc.ips)
        for afi, v in alloc.ips:
            sp = self._spaces.get((alloc.pool, afi))
            if sp is None:
                continue
            use = sp.use.get(v)
            if use is not None:
                use.users.pop(key, None)
                if not use.users:
                    del sp.use[v]
                    sp.released(v)
        return True

    def _candidate(self, sp: Space, svc: Service, ports, sharing: str, backend: str) -> int | None:
        """The first address of the space (in walking order) the Service may take: free or shareable."""
        start, step = None, 1
        if self.spread:
            seed = _spread_seed(svc.key, sharing, backend)
            start, step = seed % sp.size, sp.step_for(seed >> 64)
        best = sp.first_free(start, step)
        if sharing:
            best_d = sp.distance(start, best, step) if best is not None else None
            for v, use in sp.use.items():
                if use.sharing == sharing and self._shareable(svc.key, use, ports, sharing, backend):
                    d = sp.distance(start, v, step)
                    if best_d is None or d < best_d:
                        best, best_d = v, d
        return best

    def _free_in_pool(self, pool: str, svc: Service) -> dict[int, int]:
        """MetalLB's getFreeIPsFromPool: per family the address the Service would get."""
        ports = frozenset(svc.ports)
        sharing, backend = svc.sharing_key or "", backend_key(svc)
        out = {}
        for afi in (AFI_V4, AFI_V6):
            sp = self._spaces.get((pool, afi))
            if sp is not None:
                v = self._candidate(sp, svc, ports, sharing, backend)
                if v is not None:
                    out[afi] = v
        return out

    @staticmethod
    def _select(pool: str, free: dict[int, int], family: str, policy: str) -> tuple[tuple[int, int], ...]:
        """MetalLB's selectIPsForFamilyAndPolicy."""
        v4, v6 = free.get(AFI_V4), free.get(AFI_V6)
        if family == IPV4 and v4 is not None:
            return ((AFI_V4, v4),)
        if family == IPV6 and v6 is not None:
            return ((AFI_V6, v6),)
        if family == DUAL:
            if v4 is not None and v6 is not None:
                return ((AFI_V4, v4), (AFI_V6, v6))
            if policy == "PreferDualStack" and v4 is not None:
                return ((AFI_V4, v4),)
            if policy == "PreferDualStack" and v6 is not None:
                return ((AFI_V6, v6),)
        raise AllocationError(f"no available IPs in pool {pool} for {family} IPFamily")

    def _best_pool(self, pools: list[str], svc: Service, family: str, policy: str) -> tuple[str, dict[int, int]]:
        """MetalLB's findBestPoolForService."""
        primary, secondary = (AFI_V6, AFI_V4) if svc.families and svc.families[0] == 6 else (AFI_V4, AFI_V6)
        want = {IPV4: AFI_V4, IPV6: AFI_V6}.get(family)
        first_primary = first_secondary = None
        for pool in pools:
            free = self._free_in_pool(pool, svc)
            if not free:
                continue
            if want is not None and want in free:
                return pool, free
            if primary in free and secondary in free:
                return pool, free
            if not (policy == "PreferDualStack" and family == DUAL):
                continue
            if primary in free and first_primary is None:
                first_primary = (pool, free)
            if secondary in free and first_secondary is None:
                first_secondary = (pool, free)
        if first_primary is not None:
            return first_primary
        if first_secondary is not None:
            return first_secondary
        raise AllocationError(f"no suitable pool for {family} IPFamily")

    def _from_pools(self, pools: list[str], svc: Service, family: str, policy: str) -> tuple[tuple[int, int], ...]:
        pool, free = self._best_pool(pools, svc, family, policy)
        ips = self._select(pool, free, family, policy)
        self._assign(svc, ips)
        return ips

    def _allocate(self, svc: Service, family: str, policy: str) -> tuple[tuple[int, int], ...]:
        """MetalLB's allocateIPs: requested IPs, else the annotated pool, else pinned then autoAssign pools."""
        if svc.request_error:
            raise AllocationError(svc.request_error)
        if svc.requested_ips:
            try:
                ips = tuple(parse_ip(ip) for ip in svc.requested_ips)
            except ValueError:
                raise AllocationError(f"invalid requested loadBalancer IPs {svc.requested_ips!r}") from None
            if _family_of([a for a, _ in ips]) != family:
                raise AllocationError(f"requested loadBalancer IP(s) {quote_ips(svc.requested_ips)} "
                                      "does not match the ipFamily of the service")
            self._assign(svc, ips)
            if svc.pool and self.pool_of(svc.key) != svc.pool:
                self._unassign(svc.key)
                raise AllocationError(f"requested loadBalancer IP(s) {quote_ips(svc.requested_ips)} "
                                      f"is not compatible with requested address pool {svc.pool}")
            return ips
        if svc.pool:
            if svc.pool not in self._pools:
                raise AllocationError(f'unknown pool "{svc.pool}"')
            free = self._free_in_pool(svc.pool, svc)
            if not free:
                raise AllocationError(f"no available IPs in pool {svc.pool}")
            ips = self._select(svc.pool, free, family, policy)
            self._assign(svc, ips)
            return ips
        pinned = self._pinned(svc)
        if pinned:
            try:
                return self._from_pools(pinned, svc, family, policy)
            except AllocationError:
                pass
        auto = sorted(n for n, p in self._pools.items() if p.auto_assign and p.service_allocation is None)
        try:
            return self._from_pools(auto, svc, family, policy)
        except AllocationError:
            raise AllocationError("no available IPs") from None

    def _additional_family(self, svc: Service, existing: tuple[int, int]) -> tuple[int, int]:
        """MetalLB's AllocateFromPoolForAdditionalFamily: the missing family from the same pool."""
        pool = self.pool_of(svc.key)
        if pool is None:
            raise AllocationError('unknown pool ""')
        free = self._free_in_pool(pool, svc)
        if not free:
            raise AllocationError(f"no available IPs in pool {pool}")
        afi = AFI_V6 if existing[0] == AFI_V4 else AFI_V4
        if afi not in free:
            raise AllocationError(f"no available IPs in pool {pool} for {IPV4 if afi == AFI_V4 else IPV6} IPFamily")
        ips = (existing, (afi, free[afi]))
        self._assign(svc, ips)
        return ips[1]


__all__ = ["Allocator", "AllocationError", "Decision", "Event", "PoolCounters", "FAMILY_AFI"]
