"""Kubernetes objects as the allocator reads them: Service, IPAddressPool and Namespace dicts
(as the API server returns them) -> ``config.model`` types.  Pure functions."""
from __future__ import annotations

from ..config.addr import AFI_V4, canonical_ip, parse_pool_entry, range_to_cidrs
from ..config.model import LabelSelector, Pool, Service, ServiceAllocation

IPS_ANNOTATION = "metallb.io/loadBalancerIPs"
IPS_ANNOTATION_OLD = "metallb.universe.tf/loadBalancerIPs"
POOL_ANNOTATION = "metallb.io/address-pool"
POOL_ANNOTATION_OLD = "metallb.universe.tf/address-pool"
SHARE_ANNOTATION = "metallb.io/allow-shared-ip"
SHARE_ANNOTATION_OLD = "metallb.universe.tf/allow-shared-ip"
ALLOCATED_FROM = "metallb.io/ip-allocated-from-pool"
FAMILIES = {"IPv4": 4, "IPv6": 6}


def _annotation(ann: dict, stable: str, old: str) -> str | None:
    """MetalLB's valueForAnnotation: the metallb.io key wins over the metallb.universe.tf one."""
    if stable in ann:
        return ann[stable]
    return ann.get(old)


def _requested(ann: dict, spec: dict) -> tuple[tuple[str, ...], str]:
    """MetalLB's getDesiredLbIPs -> (canonical IPs, error)."""
    text = _annotation(ann, IPS_ANNOTATION, IPS_ANNOTATION_OLD) or ""
    lbip = spec.get("loadBalancerIP") or ""
    if not text and not lbip:
        return (), ""
    if text and lbip:
        return (), f"service can not have both {IPS_ANNOTATION} and svc.Spec.LoadBalancerIP"
    if text:
        out = []
        for part in str(text).split(","):
            try:
                out.append(canonical_ip(part.strip()))
            except (ValueError, TypeError):
                return (), f'invalid {IPS_ANNOTATION}: "{text}"'
        return tuple(out), ""
    try:
        return (canonical_ip(str(lbip)),), ""
    except (ValueError, TypeError):
        return (), f'invalid spec.loadBalancerIP "{lbip}"'


def _families(spec: dict) -> tuple[int, ...]:
    fams = spec.get("ipFamilies")
    if isinstance(fams, list) and fams and all(f in FAMILIES for f in fams):
        return tuple(FAMILIES[f] for f in fams)
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") not in (None, "", "None") else [])
    out = []
    for ip in ips:
        f = 6 if ":" in str(ip) else 4
        if f not in out:
            out.append(f)
    return tuple(out) or (4,)


def service_from_object(obj: dict) -> Service:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    ann = meta.get("annotations") or {}
    requested, error = _requested(ann, spec)
    ingress = []
    for entry in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ():
        ip = entry.get("ip") if isinstance(entry, dict) else None
        if ip:
            try:
                ingress.append(canonical_ip(ip))
            except ValueError:
                pass
    policy = spec.get("ipFamilyPolicy") or "SingleStack"
    ports = tuple((p.get("protocol") or "TCP", int(p.get("port") or 0)) for p in spec.get("ports") or ()
                  if isinstance(p, dict))
    sharing = _annotation(ann, SHARE_ANNOTATION, SHARE_ANNOTATION_OLD)
    return Service(
        namespace=meta.get("namespace") or "default", name=meta.get("name") or "",
        ips=tuple(ingress) or requested, pool=_annotation(ann, POOL_ANNOTATION, POOL_ANNOTATION_OLD) or None,
        dual_stack=policy != "SingleStack", families=_families(spec),
        uid=meta.get("uid") or "", service_type=spec.get("type") or "ClusterIP",
        lb_class=spec.get("loadBalancerClass") or None, requested_ips=requested, ingress_ips=tuple(ingress),
        ip_family_policy=policy, sharing_key=sharing or None,
        traffic_policy=spec.get("externalTrafficPolicy") or "Cluster", ports=ports,
        selector=tuple(sorted((spec.get("selector") or {}).items())),
        labels=tuple(sorted((meta.get("labels") or {}).items())),
        deleting=bool(meta.get("deletionTimestamp")), request_error=error,
    )


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
