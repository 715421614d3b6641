"""Services as ``kubectl get svc -A -o yaml|json`` prints them, for the data-path benchmarks.

Every Service carries what the API server returns for a LoadBalancer Service
created with ``kubectl apply``: the last-applied-configuration annotation,
labels, uid, resourceVersion, creationTimestamp, managedFields (client-side
apply and the controller's status update), clusterIP(s), ipFamilies, ports
with nodePorts, selector, sessionAffinity, status.loadBalancer.ingress.
Names, namespaces, label values, ports and addresses vary from Service to
Service (seeded), so no two documents share more than real ones would.

    python bench/kubegen.py N --format yaml|json --shape list|docs -o FILE
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import uuid

NAMESPACES = ("default", "payments", "checkout", "search", "media", "edge", "data", "auth", "ops", "web")
APPS = ("api", "frontend", "cache", "gateway", "ingest", "worker", "metrics", "proxy", "db", "queue")


def service_ip(i: int, base: int = (100 << 24) | (64 << 16)) -> str:
    """The i-th address of 100.64.0.0/10 (shared address space: 4M addresses; used only inside test namespaces)."""
    v = base + i
    return f"{v >> 24 & 255}.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}"


def service(i: int, rng: random.Random, ip: str | None = None, pool: str | None = None,
            traffic_policy: str = "Cluster") -> dict:
    ns = NAMESPACES[i % len(NAMESPACES)]
    app = APPS[rng.randrange(len(APPS))]
    name = f"{app}-{i}"
    port = rng.choice((80, 443, 8080, 8443, 5432, 6379, 9090))
    node_port = 30000 + rng.randrange(2767)
    uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    rv = str(100000 + i * 7 + rng.randrange(7))
    ts = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z"
    cluster_ip = f"10.96.{(i >> 8) & 255}.{i & 255}"
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": name, "tier": rng.choice(("web", "backend", "data"))}
    annotations = {}
    if pool:
        annotations["metallb.io/address-pool"] = pool
    selector = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": name}
    applied_spec = {"type": "LoadBalancer", "selector": selector,
                    "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]}
    if traffic_policy != "Cluster":
        applied_spec["externalTrafficPolicy"] = traffic_policy
    applied = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"annotations": dict(annotations), "labels": labels, "name": name, "namespace": ns},
               "spec": applied_spec}
    annotations["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(applied, separators=(",", ":")) + "\n"
    managed = [
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kubectl-client-side-apply", "operation": "Update",
         "time": ts, "fieldsV1": {
             "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                            "f:labels": {".": {}, **{f"f:{k}": {} for k in labels}}},
             "f:spec": {"f:allocateLoadBalancerNodePorts": {}, "f:externalTrafficPolicy": {}, "f:internalTrafficPolicy": {},
                        "f:ports": {".": {}, f'k:{{"port":{port},"protocol":"TCP"}}': {".": {}, "f:name": {}, "f:port": {},
                                                                                       "f:protocol": {}, "f:targetPort": {}}},
                        "f:selector": {}, "f:sessionAffinity": {}, "f:type": {}}}},
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "metallb-controller", "operation": "Update",
         "subresource": "status", "time": ts, "fieldsV1": {"f:status": {"f:loadBalancer": {"f:ingress": {}}}}},
    ]
    status = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}} if ip else {"loadBalancer": {}}
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"annotations": annotations, "creationTimestamp": ts, "labels": labels, "managedFields": managed,
                     "name": name, "namespace": ns, "resourceVersion": rv, "uid": uid},
        "spec": {"allocateLoadBalancerNodePorts": True, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "externalTrafficPolicy": traffic_policy, "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack",
                 "ports": [{"name": "http", "nodePort": node_port, "port": port, "protocol": "TCP", "targetPort": port}],
                 "selector": selector, "sessionAffinity": "None", "type": "LoadBalancer"},
        "status": status,
    }


def endpoint_slice(svc: dict, node: str, rng: random.Random, ready: bool = True) -> dict:
    """The EndpointSlice the endpointslice controller writes for ``svc``: one endpoint (a Pod on
    ``node``), with ownerReferences, the managed-by label, conditions, targetRef, zone,
    managedFields, the last-change-trigger-time annotation."""
    md, spec = svc["metadata"], svc["spec"]
    name, ns = md["name"], md["namespace"]
    suffix = "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
    pod = f"{name}-{rng.getrandbits(40):010x}"[:len(name) + 11] + f"-{suffix}"
    ts = md["creationTimestamp"]
    port = spec["ports"][0]
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "addressType": "IPv4",
        "endpoints": [{"addresses": [f"10.244.{rng.randrange(256)}.{rng.randrange(1, 255)}"],
                       "conditions": {"ready": ready, "serving": ready, "terminating": False},
                       "nodeName": node,
                       "targetRef": {"kind": "Pod", "name": pod, "namespace": ns,
                                     "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4))},
                       "zone": "zone-a"}],
        "metadata": {
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": ts},
            "creationTimestamp": ts, "generateName": f"{name}-", "generation": 1,
            "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                       "kubernetes.io/service-name": name, **md["labels"]},
            "managedFields": [{"apiVersion": "discovery.k8s.io/v1", "fieldsType": "FieldsV1",
                               "manager": "kube-controller-manager", "operation": "Update", "time": ts,
                               "fieldsV1": {"f:addressType": {}, "f:endpoints": {}, "f:metadata": {
                                   "f:annotations": {".": {}, "f:endpoints.kubernetes.io/last-change-trigger-time": {}},
                                   "f:generateName": {}, "f:labels": {".": {}, "f:endpointslice.kubernetes.io/managed-by": {},
                                                                      "f:kubernetes.io/service-name": {}},
                                   "f:ownerReferences": {".": {}, f'k:{{"uid":"{md["uid"]}"}}': {}}}, "f:ports": {}}}],
            "name": f"{name}-{suffix}", "namespace": ns,
            "ownerReferences": [{"apiVersion": "v1", "blockOwnerDeletion": True, "controller": True,
                                 "kind": "Service", "name": name, "uid": md["uid"]}],
            "resourceVersion": str(int(md["resourceVersion"]) + 1), "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4))},
        "ports": [{"name": port["name"], "port": port["targetPort"], "protocol": port["protocol"]}],
    }


def services(n: int, seed: int = 1, allocated: bool = True) -> list[dict]:
    rng = random.Random(seed)
    return [service(i, rng, service_ip(i) if allocated else None) for i in range(n)]


def _yaml_dump(obj) -> str:
    import yaml
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    # kubectl's YAML: block style, keys sorted, two-space indent, list items not indented
    return yaml.dump(obj, Dumper=dumper, default_flow_style=False, sort_keys=True, width=1 << 20)


def render(objs: list[dict], fmt: str, shape: str) -> str:
    """One ``kind: List`` (what ``kubectl get -o`` prints) or one document per object."""
    if fmt == "json":
        if shape == "list":
            return json.dumps({"apiVersion": "v1", "items": objs, "kind": "List",
                               "metadata": {"resourceVersion": ""}}, indent=4) + "\n"
        return "".join(json.dumps(o, indent=4) + "\n" for o in objs)  # a JSON stream (kubectl -o json of many get calls)
    if shape == "list":
        return _yaml_dump({"apiVersion": "v1", "items": objs, "kind": "List", "metadata": {"resourceVersion": ""}})
    return "".join("---\n" + _yaml_dump(o) for o in objs)


def config_yaml(peer_addr: str, my_asn: int = 64500, peer_asn: int = 64501, pool: str = "100.64.0.0/10",
                name: str = "router", hold: str | None = None, bfd: bool = False) -> str:
    """The MetalLB side: one BGPPeer, one IPAddressPool holding every generated address, one BGPAdvertisement."""
    extra = f"  holdTime: {hold}\n" if hold else ""
    if bfd:
        extra += "  bfdProfile: fast\n"
    out = (f"apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}, namespace: metallb-system}}\n"
           f"spec:\n  myASN: {my_asn}\n  peerASN: {peer_asn}\n  peerAddress: {peer_addr}\n{extra}"
           f"---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: bench, namespace: metallb-system}}\n"
           f"spec:\n  addresses: [{pool}]\n"
           f"---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: bench, namespace: metallb-system}}\n"
           f"spec:\n  ipAddressPools: [bench]\n")
    if bfd:
        out += ("---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast, namespace: metallb-system}\n"
                "spec: {receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}\n")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--format", choices=("yaml", "json"), default="yaml")
    ap.add_argument("--shape", choices=("list", "docs"), default="list")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args()
    text = render(services(a.n, a.seed), a.format, a.shape)
    if a.output == "-":
        sys.stdout.write(text)
    else:
        with open(a.output, "w") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
