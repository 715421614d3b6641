"""Services, IPAddressPools and Namespaces as the API server returns them, for controller tests."""
from __future__ import annotations

import itertools

_uid = itertools.count(1)


def svc(name: str, ns: str = "default", *, ips: str | None = None, lbip: str | None = None,
        pool: str | None = None, share: str | None = None, ports=(("TCP", 80),), policy: str | None = None,
        families=("IPv4",), local: bool = False, selector=None, labels=None, lb_class: str | None = None,
        status=(), svc_type: str = "LoadBalancer", deleting: bool = False, old_annotations: bool = False) -> dict:
    prefix = "metallb.universe.tf" if old_annotations else "metallb.io"
    ann = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    if ips is not None:
        ann[f"{prefix}/loadBalancerIPs"] = ips
    if pool is not None:
        ann[f"{prefix}/address-pool"] = pool
    if share is not None:
        ann[f"{prefix}/allow-shared-ip"] = share
    spec = {"type": svc_type, "ports": [{"name": f"p{i}", "protocol": pr, "port": po, "targetPort": po, "nodePort": 30000 + i}
                                         for i, (pr, po) in enumerate(ports)],
            "selector": selector if selector is not None else {"app": name},
            "externalTrafficPolicy": "Local" if local else "Cluster", "ipFamilies": list(families),
            "ipFamilyPolicy": policy or ("SingleStack" if len(families) == 1 else "PreferDualStack"),
            "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::10"][:len(families)]}
    if lbip is not None:
        spec["loadBalancerIP"] = lbip
    if lb_class is not None:
        spec["loadBalancerClass"] = lb_class
    meta = {"name": name, "namespace": ns, "uid": f"uid-{next(_uid)}", "resourceVersion": "1",
            "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": ann, "labels": labels or {"app": name}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-02T00:00:00Z"
        meta["finalizers"] = ["example.com/hold"]
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec,
            "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in status]} if status else {}}}


def pool(name: str, *addresses: str, auto: bool = True, buggy: bool = False, alloc: dict | None = None) -> dict:
    spec = {"addresses": list(addresses), "autoAssign": auto, "avoidBuggyIPs": buggy}
    if alloc is not None:
        spec["serviceAllocation"] = alloc
    return {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": name, "namespace": "metallb-system", "uid": f"uid-{next(_uid)}", "resourceVersion": "1"},
            "spec": spec}


def namespace(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}
