"""Services and Nodes: the light path (plain dict access, no pydantic).

There can be a million Services, so each is read with a handful of dict
lookups.  Only ``type: LoadBalancer`` Services are kept.  IPs come from
``status.loadBalancer.ingress[].ip`` (what was assigned), else the
``metallb.universe.tf/loadBalancerIPs`` annotation (comma-separated), else
``spec.loadBalancerIP``; none means speakerd allocates from a pool.  A
Service with a ``spec.loadBalancerClass`` belongs to another load balancer
and is skipped, as MetalLB (without ``--lb-class``) skips it.
"""
from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from .addr import AFI_V4, format_ip, parse_ip
from .model import Node, Pool, Source
from .service_runs import rows_from_run
from .services import FILE, ServiceTable

if TYPE_CHECKING:
    from .build import Issues

POOL_ANNOTATIONS = ("metallb.universe.tf/address-pool", "metallb.io/address-pool")
IPS_ANNOTATIONS = ("metallb.universe.tf/loadBalancerIPs", "metallb.io/loadBalancerIPs")
FAMILIES = {"IPv4": 4, "IPv6": 6}
POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")


_AF4 = socket.AF_INET
_pton = socket.inet_pton


def _canonical(text: object) -> str | None:
    """The canonical text of an IP address, None when it is not one.

    inet_pton accepts only canonical dotted quads (no leading zeros, four
    parts), so an IPv4 text it accepts is returned as it is."""
    if type(text) is str and ":" not in text:
        try:
            _pton(_AF4, text)
            return text
        except (OSError, ValueError):  # ValueError: an embedded NUL ("10.0.0.1\0" in YAML)
            return None
    try:
        afi, value = parse_ip(text)  # type: ignore[arg-type]
    except ValueError:
        return None
    return format_ip(afi, value)


def _ips(src, data: dict, issues: "Issues") -> tuple[tuple[str, ...], bool]:
    """(canonical IPs, ok). `src()` makes the Source, only for an issue."""
    status = data.get("status")
    texts: list[tuple[str | int, object]] = []
    if status:
        lb = status.get("loadBalancer") if isinstance(status, dict) else None
        ingress = lb.get("ingress") if isinstance(lb, dict) else None
        if isinstance(ingress, list):
            if len(ingress) == 1:  # the common case: one address
                entry = ingress[0]
                if isinstance(entry, dict) and "ip" in entry:
                    ip = _canonical(entry["ip"])
                    if ip is not None:
                        return (ip,), True
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
                    issues.error(src(), f"metadata.annotations[{key}]", "expected a comma-separated list of IPs")
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
        ip = _canonical(text)
        if ip is None:
            if isinstance(fld, int):
                fld = f"status.loadBalancer.ingress[{fld}].ip"
            issues.error(src(), fld, f"invalid IP address {text!r}")
            ok = False
            continue
        if ip not in out:
            out.append(ip)
    return tuple(out), ok


def build_services(docs: list[tuple], pools: dict[str, Pool], pool_names: set[str],
                   issues: "Issues") -> ServiceTable:
    """Services from (file, namespace, name, document) or (file, None, None, Run of Services);
    rows only, no per-service objects."""
    rows: dict[str, tuple] = {}
    for file, ns, name, data in docs:
        if ns is None:  # a Run: columns when regular, else document by document
            if rows_from_run(data, file, pool_names, rows):
                continue
            for d in data.documents():
                meta = d["metadata"]
                _service(file, meta.get("namespace") or "", meta["name"], d, pool_names, rows, issues)
            continue
        _service(file, ns, name, data, pool_names, rows, issues)
    return ServiceTable(rows)


def _service(file: str, ns: str, name: str, data: dict, pool_names: set[str], rows: dict[str, tuple],
             issues: "Issues") -> None:
    v4: tuple[int, ...] = (4,)
    spec = data.get("spec")
    if type(spec) is not dict or spec.get("type") != "LoadBalancer":
        return
    ns = ns or "default"
    key = f"{ns}/{name}"

    def src(file=file, key=key, ns=ns) -> Source:
        return Source(file, "Service", key, ns)
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None:  # as MetalLB without --lb-class: a Service of another load balancer
        issues.info(src(), "spec.loadBalancerClass", f"loadBalancerClass {lb_class!r}: handled by another load balancer "
                    "(only Services without a class are MetalLB's); skipped")
        return
    if key in rows:
        issues.error(src(), "metadata.name", f"duplicate Service {key} (first defined in {rows[key][FILE]})")
        return
    ann = data["metadata"].get("annotations")
    if ann is not None and type(ann) is not dict:
        issues.error(src(), "metadata.annotations", f"expected a mapping, got {ann!r}")
        return
    ips, ok = _ips(src, data, issues)
    pool = None
    if ann:
        for k in POOL_ANNOTATIONS:
            if k in ann:
                pool = ann[k]
                if type(pool) is not str:
                    issues.error(src(), f"metadata.annotations[{k}]", f"expected an IPAddressPool name, got {pool!r}")
                    ok = False
                elif pool not in pool_names:
                    issues.error(src(), f"metadata.annotations[{k}]", f"IPAddressPool {pool!r} not found")
                    ok = False
                break
    fams = spec.get("ipFamilies")
    policy = spec.get("ipFamilyPolicy")
    if fams is None and policy is None:  # the common case: single stack, IPv4
        if ips and any(":" in ip for ip in ips):
            issues.warn(src(), "spec.ipFamilies", f"IP {', '.join(ips)} is not of the service's family IPv4")
        if ok:
            rows[key] = (ns, name, ips, pool, False, v4, file)
        return
    policy = policy or "SingleStack"
    families: tuple[int, ...] = v4
    if policy not in POLICIES:
        issues.error(src(), "spec.ipFamilyPolicy", f"unknown ipFamilyPolicy {policy!r} (expected {', '.join(POLICIES)})")
        ok = False
    if fams is not None:
        if (not isinstance(fams, list) or not fams or any(type(f) is not str or f not in FAMILIES for f in fams)
                or len(set(fams)) != len(fams)):
            issues.error(src(), "spec.ipFamilies", f"expected IPv4 and/or IPv6 once each, got {fams!r}")
            ok = False
        else:
            families = tuple(FAMILIES[f] for f in fams)
            if len(families) == 2 and policy == "SingleStack":
                issues.error(src(), "spec.ipFamilies", "two families need ipFamilyPolicy PreferDualStack or RequireDualStack")
                ok = False
    dual = policy != "SingleStack"
    if dual and len(families) == 1:
        families = families + ((6,) if families[0] == 4 else (4,))
    if not dual and ips and len(families) == 1:
        want = AFI_V4 if families[0] == 4 else 2
        if any((":" in ip) != (want == 2) for ip in ips):
            issues.warn(src(), "spec.ipFamilies", f"IP {', '.join(ips)} is not of the service's family IPv{families[0]}")
    if ok:
        rows[key] = (ns, name, ips, pool, dual, families, file)


def label_strings(src: Source, labels: dict, issues: "Issues") -> bool:
    """Whether every label key and value is a string, as Kubernetes requires; an error for each
    that is not (``bgp: true`` is the boolean True, which no selector value "true" would match)."""
    ok = True
    for k, v in labels.items():
        if type(k) is not str or type(v) is not str:
            issues.error(src, f"metadata.labels[{k}]", f"label keys and values must be strings, got {k!r}: {v!r} (quote it)")
            ok = False
    return ok


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
        if not label_strings(src, labels, issues):
            continue
        out[src.name] = Node(src.name, tuple(sorted(labels.items())))
    return out
