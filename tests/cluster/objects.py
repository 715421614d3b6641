"""Kubernetes objects of the cluster lab, shaped like ``kubectl get -o json`` returns them.

Services carry what real ones carry (uid, resourceVersion, labels, the
last-applied annotation, clusterIPs, ports with nodePorts, selector, status);
EndpointSlices carry endpoints with conditions, nodeName and targetRef.  The
same dicts are written to files (file mode) or sent to the API emulator.
"""
from __future__ import annotations

import ipaddress
import json
import uuid
from typing import Iterable

from tests.interop.netlab import advertisement, bgp_peer, node, pool

NAMESPACE = "default"
METALLB_NS = "metallb-system"
CLUSTER_POOL = "203.0.113.0/24"  # Cluster-policy Services
LOCAL_POOL = "198.51.100.0/24"  # Local-policy Services
NODE_ASN = 64512


def _uid(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"speakerd-cluster/{kind}/{name}"))


def service(name: str, ip: str | None, policy: str = "Cluster", index: int = 0, generation: int = 1,
            namespace: str = NAMESPACE) -> dict:
    """A LoadBalancer Service; ``ip`` None = no address yet (a controller assigns one)."""
    cluster_ip = str(ipaddress.ip_address("10.96.0.0") + 10 + index)
    spec = {"type": "LoadBalancer", "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080,
                       "nodePort": 30000 + index % 2000}],
            "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": policy,
            "internalTrafficPolicy": "Cluster", "sessionAffinity": "None", "allocateLoadBalancerNodePorts": True}
    applied = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
               "spec": {k: spec[k] for k in ("type", "selector", "ports", "externalTrafficPolicy")}}
    ann = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied, separators=(",", ":")),
           "metallb.io/address-pool": "local" if policy == "Local" else "cluster"}
    if ip is not None:
        ann["metallb.io/ip-allocated-from-pool"] = "local" if policy == "Local" else "cluster"
    obj = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": namespace, "uid": _uid("Service", f"{namespace}/{name}"),
                        "resourceVersion": str(1000 + index * 10 + generation), "generation": generation,
                        "creationTimestamp": "2026-12-01T00:00:00Z",
                        "labels": {"app": name, "app.kubernetes.io/part-of": "cluster-lab"},
                        "annotations": ann},
           "spec": spec,
           "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}] if ip else []}}}
    if ip is not None:
        # file mode: the address a controller would have published, also as the request annotation
        obj["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] = ip
    return obj


def endpoint_slice(svc: str, nodes: Iterable[str], index: int = 0, namespace: str = NAMESPACE,
                   generation: int = 1) -> dict:
    """The EndpointSlice of ``svc`` with one ready endpoint on each of ``nodes``."""
    eps = []
    for j, n in enumerate(nodes):
        addr = f"10.244.{j}.{index % 250 + 2}"
        eps.append({"addresses": [addr], "conditions": {"ready": True, "serving": True, "terminating": False},
                    "nodeName": n, "targetRef": {"kind": "Pod", "namespace": namespace, "name": f"{svc}-{n}",
                                                 "uid": _uid("Pod", f"{svc}-{n}")}})
    name = f"{svc}-ep"
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace, "uid": _uid("EndpointSlice", f"{namespace}/{name}"),
                         "resourceVersion": str(5000 + index * 10 + generation), "generation": generation,
                         "labels": {"kubernetes.io/service-name": svc,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4", "endpoints": eps,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def cluster_ip(i: int) -> str:
    """The i-th address of the Cluster pool (0-based)."""
    return str(ipaddress.ip_network(CLUSTER_POOL)[i])


def local_ip(i: int) -> str:
    return str(ipaddress.ip_network(LOCAL_POOL)[i])


def bfd_profile(name: str = "fast", interval_ms: int = 100, multiplier: int = 3) -> dict:
    return {"apiVersion": "metallb.io/v1beta1", "kind": "BFDProfile",
            "metadata": {"name": name, "namespace": METALLB_NS},
            "spec": {"receiveInterval": interval_ms, "transmitInterval": interval_ms,
                     "detectMultiplier": multiplier}}


def metallb_config(tors: Iterable[tuple[str, str, int]]) -> list[dict]:
    """BGPPeers (one per ToR: name, address, ASN), BFD profile, pools and advertisements."""
    objs: list[dict] = [bfd_profile()]
    for name, addr, asn in tors:
        objs.append(bgp_peer(name, NODE_ASN, asn, addr, holdTime="9s", keepaliveTime="3s", connectTime="1s",
                             bfdProfile="fast", enableGracefulRestart=True))
    objs += [pool("cluster", [CLUSTER_POOL]), pool("local", [LOCAL_POOL]),
             advertisement("all", ipAddressPools=["cluster", "local"])]
    return objs


def node_object(name: str) -> dict:
    obj = node(name)
    obj["status"] = {"conditions": [{"type": "Ready", "status": "True"},
                                    {"type": "NetworkUnavailable", "status": "False"}]}
    return obj
