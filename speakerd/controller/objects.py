"""Kubernetes objects as the allocator reads them: Service, IPAddressPool and Namespace dicts
(as the API server returns them) -> ``config.model`` types.  Pure functions.  Services are read
by the store's one Service reader; IPAddressPools here (the allocator needs them one by one, each
usable or not, where the speaker's builder validates a whole MetalLB configuration)."""
from __future__ import annotations

from ..config.addr import AFI_V4, parse_pool_entry, range_to_cidrs
from ..config.common import Issues
from ..config.model import LabelSelector, Pool, Service, ServiceAllocation
from ..store.validate import read_service

ALLOCATED_FROM = "metallb.io/ip-allocated-from-pool"


def service_from_object(obj: dict) -> Service:
    """A Service as the allocator reads it: through the store's reader
    (:func:`speakerd.store.validate.read_service`), whatever its type, class or problems: the
    allocator releases on a type/class change and answers a bad address request with
    ``Service.request_error`` (MetalLB's AllocationFailed text); the speaker's refusals of
    invalid fields (the reader's issues) are not the controller's to repeat."""
    return read_service(obj, "api", Issues())[0]


def selector_from_object(sel: dict) -> LabelSelector:
    return LabelSelector(
        match_labels=tuple(sorted((sel.get("matchLabels") or {}).items())),
        match_expressions=tuple((e["key"], e["operator"], tuple(e.get("values") or ()))
                                for e in sel.get("matchExpressions") or ()),
    )


def pool_from_object(obj: dict) -> Pool:
    """An IPAddressPool; ValueError naming the field when it cannot be used."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    name = meta.get("name") or ""
    ranges, cidrs = [], []
    for i, text in enumerate(spec.get("addresses") or ()):
        try:
            afi, first, last = parse_pool_entry(text)
        except ValueError as exc:
            raise ValueError(f"IPAddressPool {name}: spec.addresses[{i}]: {exc}") from None
        ranges.append((afi, first, last))
        cidrs.extend(range_to_cidrs(afi, first, last))
    if not ranges:
        raise ValueError(f"IPAddressPool {name}: spec.addresses: no address")
    sa = None
    raw = spec.get("serviceAllocation")
    if isinstance(raw, dict):
        sa = ServiceAllocation(
            priority=int(raw.get("priority") or 0), namespaces=tuple(raw.get("namespaces") or ()),
            namespace_selectors=tuple(selector_from_object(s) for s in raw.get("namespaceSelectors") or ()),
            service_selectors=tuple(selector_from_object(s) for s in raw.get("serviceSelectors") or ()),
        )
    auto = spec.get("autoAssign")
    return Pool(name=name, ranges=tuple(ranges), cidrs=tuple(cidrs), auto_assign=True if auto is None else bool(auto),
                avoid_buggy_ips=bool(spec.get("avoidBuggyIPs")),
                labels=tuple(sorted((meta.get("labels") or {}).items())), service_allocation=sa)


def pools_from_objects(objs: list[dict]) -> tuple[dict[str, Pool], list[str]]:
    """Usable pools by name, and why the others are not (a pool overlapping one earlier by name
    is left out, as the API server's MetalLB webhook would have refused it)."""
    pools: dict[str, Pool] = {}
    problems: list[str] = []
    spans: list[tuple[int, int, int, str]] = []
    for obj in sorted(objs, key=lambda o: (o.get("metadata") or {}).get("name") or ""):
        try:
            pool = pool_from_object(obj)
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(str(exc))
            continue
        clash = next((s for s in spans for afi, f, l in pool.ranges if s[0] == afi and f <= s[2] and s[1] <= l), None)
        if clash is not None:
            problems.append(f"IPAddressPool {pool.name}: overlaps IPAddressPool {clash[3]}; not used")
            continue
        spans.extend((afi, f, l, pool.name) for afi, f, l in pool.ranges)
        pools[pool.name] = pool
    return pools, problems


def namespace_labels(obj: dict) -> tuple[str, dict[str, str]]:
    meta = obj.get("metadata") or {}
    return meta.get("name") or "", dict(meta.get("labels") or {})


__all__ = ["service_from_object", "pool_from_object", "pools_from_objects", "namespace_labels", "ALLOCATED_FROM", "AFI_V4"]
