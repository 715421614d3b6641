"""Services and Nodes: the light path (plain dict access, no pydantic).

There can be a million Services, so each is read with a handful of dict
lookups.  Only ``type: LoadBalancer`` Services are kept.  IPs come from
``status.loadBalancer.ingress[].ip`` (what was assigned), else the
``metallb.universe.tf/loadBalancerIPs`` annotation (comma-separated), else
``spec.loadBalancerIP``; none means speakerd allocates from a pool.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .addr import AFI_V4, format_ip, parse_ip
from .model import Node, Pool, Service, Source

if TYPE_CHECKING:
    from .build import Issues

POOL_ANNOTATIONS = ("metallb.universe.tf/address-pool", "metallb.io/address-pool")
IPS_ANNOTATIONS = ("metallb.universe.tf/loadBalancerIPs", "metallb.io/loadBalancerIPs")
FAMILIES = {"IPv4": 4, "IPv6": 6}
POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")


def _ips(src: Source, data: dict, issues: "Issues") -> tuple[tuple[str, ...], bool]:
    """(canonical IPs, ok)."""
    status = data.get("status")
    texts: list[tuple[str | int, object]] = []
    if status:
        lb = status.get("loadBalancer") if isinstance(status, dict) else None
        ingress = lb.get("ingress") if isinstance(lb, dict) else None
        if isinstance(ingress, list):
            for i, entry in enumerate(ingress):
                if isinstance(entry, dict) and "ip" in entry:
                    texts.append((i, entry["ip"]))  # field name made only for an error
    meta = data["metadata"]
    ann = meta.get("annotations")
    if not texts and ann:
        for key in IPS_ANNOTATIONS:
            if key in ann:
                value = ann[key]
                if not isinstance(value, str):
                    issues.error(src, f"metadata.annotations[{key}]", "expected a comma-separated list of IPs")
                    return (), False
                fld = f"metadata.annotations[{key}]"
                texts.extend((fld, t.strip()) for t in value.split(",") if t.strip())
                break
    if not texts:
        spec = data.get("spec")
        lbip = spec.get("loadBalancerIP") if isinstance(spec, dict) else None
        if lbip:
            texts.append(("spec.loadBalancerIP", lbip))
    out = []
    ok = True
    for fld, text in texts:
        try:
            afi, value = parse_ip(text)  # type: ignore[arg-type]
        except ValueError:
            if isinstance(fld, int):
                fld = f"status.loadBalancer.ingress[{fld}].ip"
            issues.error(src, fld, f"invalid IP address {text!r}")
            ok = False
            continue
        ip = format_ip(afi, value)
        if ip not in out:
            out.append(ip)
    return tuple(out), ok


def build_services(docs: list[tuple[Source, dict]], pools: dict[str, Pool], pool_names: set[str],
                   issues: "Issues") -> dict[str, Service]:
    out: dict[str, Service] = {}
    for src, data in docs:
        spec = data.get("spec")
        if not isinstance(spec, dict) or spec.get("type") != "LoadBalancer":
            continue
        ns = src.namespace or "default"
        key = f"{ns}/{src.name}"
        ssrc = Source(src.file, "Service", key, ns)
        if key in out:
            issues.error(ssrc, "metadata.name", f"duplicate Service {key} (first defined in {out[key].source.file})")
            continue
        ips, ok = _ips(ssrc, data, issues)
        pool = None
        ann = data["metadata"].get("annotations")
        if ann:
            for k in POOL_ANNOTATIONS:
                if k in ann:
                    pool = ann[k]
                    if pool not in pool_names:
                        issues.error(ssrc, f"metadata.annotations[{k}]", f"IPAddressPool {pool!r} not found")
                        ok = False
                    break
        fams = spec.get("ipFamilies")
        policy = spec.get("ipFamilyPolicy") or "SingleStack"
        families: tuple[int, ...] = (4,)
        if policy not in POLICIES:
            issues.error(ssrc, "spec.ipFamilyPolicy", f"unknown ipFamilyPolicy {policy!r} (expected {', '.join(POLICIES)})")
            ok = False
        if fams is not None:
            if not isinstance(fams, list) or not fams or any(f not in FAMILIES for f in fams) or len(set(fams)) != len(fams):
                issues.error(ssrc, "spec.ipFamilies", f"expected IPv4 and/or IPv6 once each, got {fams!r}")
                ok = False
            else:
                families = tuple(FAMILIES[f] for f in fams)
                if len(families) == 2 and policy == "SingleStack":
                    issues.error(ssrc, "spec.ipFamilies", "two families need ipFamilyPolicy PreferDualStack or RequireDualStack")
                    ok = False
        dual = policy != "SingleStack"
        if dual and len(families) == 1:
            families = families + ((6,) if families[0] == 4 else (4,))
        if not dual and ips and len(families) == 1:
            want = AFI_V4 if families[0] == 4 else 2
            if any((":" in ip) != (want == 2) for ip in ips):
                issues.warn(ssrc, "spec.ipFamilies", f"IP {', '.join(ips)} is not of the service's family IPv{families[0]}")
        if ok:
            out[key] = Service(namespace=ns, name=src.name, ips=ips, pool=pool, dual_stack=dual,
                               families=families, source=ssrc)
    return out


def build_nodes(docs: list[tuple[Source, dict]], issues: "Issues") -> dict[str, Node]:
    out: dict[str, Node] = {}
    for src, data in docs:
        if src.name in out:
            issues.error(src, "metadata.name", f"duplicate Node {src.name}")
            continue
        labels = data["metadata"].get("labels") or {}
        if not isinstance(labels, dict):
            issues.error(src, "metadata.labels", "expected a mapping")
            continue
        out[src.name] = Node(src.name, tuple(sorted((str(k), str(v)) for k, v in labels.items())))
    return out
