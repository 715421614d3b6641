"""Endpoint-weighted ECMP against FRR 8.4: zebra's next-hop weights follow the ready endpoints.

    r (FRR, AS 64500, maximum-paths 8)
    ├── n1 (speakerd node1, AS 64501)
    └── n2 (speakerd node2, AS 64501)

Both nodes announce one ``externalTrafficPolicy: Local`` Service whose BGPAdvertisement has
``speakerd.io/link-bandwidth: endpoints``.  Each node's route carries the link-bandwidth
extended community (non-transitive, over eBGP) with its ready local endpoints; FRR weighs its
multipaths by the bandwidths (the default receiver behaviour, ``bgp bestpath bandwidth`` left
unset: weighted when every multipath has one) and zebra installs the next hops with weights
``bandwidth * 100 / total`` (bgpd's mapping to 1..100).  The test reads them from
``show ip route PFX json`` and from the kernel, then scales the Service up (the EndpointSlices
in the files change) and waits for the weights to follow.

The first test runs both nodes in file mode, with a second Service on an advertisement
without the opt-in (plain ECMP, as MetalLB); the second runs both in Kubernetes mode against the
API emulator (one namespace, one link to the router per node, each BGPPeer selecting its node
and binding its own sourceAddress) and scales the Deployment's EndpointSlice there.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.kubeapi import KubeApi
from tests.interop.netlab import Lab, wait_for
from tests.interop.netlab_daemons import Frr, Neighbor, Speakerd, advertisement, bgp_peer, manifests, pool, service

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

ROUTER_ASN, NODE_ASN = 64500, 64501
VIP = "198.51.100.20"
PREFIX = f"{VIP}/32"
PLAIN_VIP = "198.51.100.30"  # a Service on an advertisement without the opt-in
API_PORT = 18081


def endpoint_slice(name: str, ready: dict[str, int]) -> dict:
    """One EndpointSlice of default/web with ``ready[node]`` ready endpoints on each node."""
    eps, n = [], 0
    for node, count in sorted(ready.items()):
        for _ in range(count):
            n += 1
            eps.append({"addresses": [f"10.244.0.{n}"], "conditions": {"ready": True, "serving": True,
                                                                       "terminating": False},
                        "nodeName": node, "targetRef": {"kind": "Pod", "name": f"web-{n}", "namespace": "default"}})
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def endpoint_slice_of(svc: str, name: str, ready: dict[str, int]) -> dict:
    eps = endpoint_slice(name, ready)
    eps["metadata"]["labels"]["kubernetes.io/service-name"] = svc
    return eps


def objects(router: str, ready: dict[str, int]) -> list[dict]:
    web = service("web", [VIP])
    web["spec"]["externalTrafficPolicy"] = "Local"
    plain = service("plain", [PLAIN_VIP])
    plain["spec"]["externalTrafficPolicy"] = "Local"
    adv = advertisement("weighted", ipAddressPools=["pool"])
    adv["metadata"]["annotations"] = {"speakerd.io/link-bandwidth": "endpoints"}
    return [bgp_peer("router", NODE_ASN, ROUTER_ASN, router, holdTime="9s", connectTime="1s"),
            pool("pool", [f"{VIP}/32"]), adv, web, endpoint_slice("web-abc12", ready),
            pool("plain-pool", [f"{PLAIN_VIP}/32"]), advertisement("plain", ipAddressPools=["plain-pool"]),
            plain, endpoint_slice_of("plain", "plain-abc12", ready)]


def zebra_weights(frr: Frr, prefix: str = PREFIX) -> dict[str, int]:
    """Next hop -> weight of the installed route for ``prefix`` (``show ip route PFX json``)."""
    routes = frr.vtysh(f"show ip route {prefix} json").get(prefix, [])
    out = {}
    for rt in routes:
        if rt.get("protocol") != "bgp" or not rt.get("selected"):
            continue
        for nh in rt.get("nexthops", []):
            if nh.get("active") and "ip" in nh:
                out[nh["ip"]] = nh.get("weight")
    return out


def nexthops_text(frr: Frr) -> str:
    """The next hops of PREFIX as zebra reports them (for the test's output)."""
    routes = frr.vtysh(f"show ip route {PREFIX} json").get(PREFIX, [])
    keep = ("fib", "ip", "afi", "interfaceName", "active", "weight")
    return json.dumps([{k: nh[k] for k in keep if k in nh} for rt in routes for nh in rt.get("nexthops", [])])


def kernel_weights(frr: Frr) -> dict[str, int]:
    """Next hop -> weight in the router's kernel FIB (what forwards)."""
    routes = json.loads(frr.ns.exec("ip", "-j", "route", "show", PREFIX) or "[]")
    return {h["gateway"]: h.get("weight", 1) for rt in routes for h in rt.get("nexthops", []) if "gateway" in h}


def _when(read, ok):
    """A wait_for predicate: ``read()`` when ``ok`` holds for it, else None."""
    def pred():
        value = read()
        return value if ok(value) else None
    return pred


def test_frr_weighs_next_hops_by_ready_local_endpoints_and_follows_a_scale_up(lab: Lab):
    r, n1, n2 = lab.router("r"), lab.ns("n1"), lab.ns("n2")
    l1, l2 = lab.link(r, n1), lab.link(r, n2)
    a1, a2 = l1.addr(n1), l2.addr(n2)
    frr = Frr(r, lab.subdir("frr"), ROUTER_ASN, "198.18.255.1", [Neighbor(a1, NODE_ASN), Neighbor(a2, NODE_ASN)])
    # -n (bgpd does not install): this test is about what is installed, so let bgpd talk to zebra
    frr.configure("no bgp no-rib", f"router bgp {ROUTER_ASN}", "address-family ipv4 unicast", "maximum-paths 8",
                  "exit-address-family")
    ready = {"node1": 1, "node2": 3}
    dirs = {"node1": lab.subdir("node1-config"), "node2": lab.subdir("node2-config")}
    speakers = {}
    for (name, ns), rtr in zip((("node1", n1), ("node2", n2)), (l1.addr(r), l2.addr(r))):
        manifests(dirs[name], objects(rtr, ready))
        speakers[name] = Speakerd(ns, dirs[name], name, socket=lab.dir / f"{name}.sock",
                                  extra_args=("--watch", "0", "--log-level", "debug"))
    frr.wait_established(a1, timeout=30)
    frr.wait_established(a2, timeout=30)

    # each node's own count, in the community FRR received
    def bandwidths() -> dict[str, str]:
        detail = frr.vtysh(f"show bgp ipv4 unicast {PREFIX} json")
        return {p["peer"]["peerId"]: p.get("extendedCommunity", {}).get("string", "")
                for p in detail.get("paths", [])}

    got = wait_for(_when(bandwidths, lambda b: len(b) == 2 and all(b.values())), 30,
                   "both paths with an extended community at FRR")
    assert got[a1].startswith(f"LB:{NODE_ASN}:125000 ") and got[a2].startswith(f"LB:{NODE_ASN}:375000 "), got

    weights = wait_for(_when(lambda: zebra_weights(frr), lambda w: set(w) == {a1, a2} and w[a1] != w[a2]), 30,
                       "weighted next hops in zebra")
    print(f"1:3 -> show ip route {PREFIX} json nexthops {nexthops_text(frr)}; kernel {kernel_weights(frr)}")
    assert weights == {a1: 25, a2: 75}  # 1/4 and 3/4 of 100
    ratio = weights[a2] / weights[a1]
    assert ratio == pytest.approx(3, rel=0.05)
    wait_for(_when(lambda: kernel_weights(frr), lambda k: k.get(a2, 0) == 3 * k.get(a1, -1)), 20,
             "the kernel FIB weighted 1:3")

    # scale up: node1 goes from 1 to 5 ready endpoints (the EndpointSlice changes in both nodes' files)
    ready = {"node1": 5, "node2": 3}
    for name in ("node1", "node2"):
        manifests(dirs[name], objects(l1.addr(r) if name == "node1" else l2.addr(r), ready))
        assert speakers[name].ctl("reload")["ok"]
    plan = speakers["node1"].ctl("show", "bgp", "ipv4")
    assert {x["prefix"]: x["weight"] for x in plan["routes"]} == {PREFIX: 5, f"{PLAIN_VIP}/32": None}
    weights = wait_for(_when(lambda: zebra_weights(frr), lambda w: set(w) == {a1, a2} and w[a1] > w[a2]), 30,
                       "weights following the scale-up")
    print(f"5:3 -> show ip route {PREFIX} json nexthops {nexthops_text(frr)}; kernel {kernel_weights(frr)}")
    assert weights == {a1: 62, a2: 37}  # 5/8 and 3/8 of 100, rounded down by bgpd
    assert bandwidths()[a1].startswith(f"LB:{NODE_ASN}:625000 ")

    # the Service without the opt-in: no community, FRR's plain ECMP (no weights), as with MetalLB
    plain = wait_for(_when(lambda: zebra_weights(frr, f"{PLAIN_VIP}/32"), lambda w: set(w) == {a1, a2}), 30,
                     "the plain Service's two next hops")
    print(f"plain -> show ip route {PLAIN_VIP}/32 json weights {plain}")
    assert len(set(plain.values())) == 1, plain
    detail = frr.vtysh(f"show bgp ipv4 unicast {PLAIN_VIP}/32 json")
    assert all("extendedCommunity" not in p for p in detail["paths"]), detail
    for sd in speakers.values():
        sd.stop()


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server}}],
        "users": [{"name": "speaker", "user": {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "speaker"}}]}))
    return path


def test_kubernetes_mode_weights_follow_the_endpoint_slices_in_the_api(lab: Lab):
    r, s = lab.router("r"), lab.ns("s")
    l1, l2 = lab.link(r, s), lab.link(r, s)  # one link per node: node1 speaks from l1, node2 from l2
    a1, a2 = l1.addr(s), l2.addr(s)
    frr = Frr(r, lab.subdir("frr"), ROUTER_ASN, "198.18.255.1", [Neighbor(a1, NODE_ASN), Neighbor(a2, NODE_ASN)])
    frr.configure("no bgp no-rib", f"router bgp {ROUTER_ASN}", "address-family ipv4 unicast", "maximum-paths 8",
                  "exit-address-family")
    emu = lab.spawn(s, "kubeemu", [sys.executable, "-m", "tests.kubeemu", "--listen", f"127.0.0.1:{API_PORT}"],
                    env={"PYTHONUNBUFFERED": "1"})
    api = KubeApi(f"http://127.0.0.1:{API_PORT}", netns=s.name)
    speakers = []
    try:
        wait_for(api.ready, 20, "API emulator")
        ns = "metallb-system"
        for node, link in (("node1", l1), ("node2", l2)):
            api.create({"apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}}})
            api.create({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
                        "metadata": {"name": f"router-{node}", "namespace": ns},
                        "spec": {"myASN": NODE_ASN, "peerASN": ROUTER_ASN, "peerAddress": link.addr(r),
                                 "sourceAddress": link.addr(s), "holdTime": "9s", "connectTime": "1s",
                                 "nodeSelectors": [{"matchLabels": {"kubernetes.io/hostname": node}}]}})
        api.create({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                    "metadata": {"name": "pool", "namespace": ns}, "spec": {"addresses": [f"{VIP}/32"]}})
        api.create({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
                    "metadata": {"name": "weighted", "namespace": ns,
                                 "annotations": {"speakerd.io/link-bandwidth": "endpoints"}},
                    "spec": {"ipAddressPools": ["pool"]}})
        svc = api.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                          "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                                   "ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "web"}}})
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": VIP}]}}
        api.request("PUT", api.path("Service", "default", "web", "status"), svc)
        api.create(endpoint_slice("web-abc12", {"node1": 1, "node2": 3}))
        kc = _kubeconfig(lab.dir / "kubeconfig", f"http://127.0.0.1:{API_PORT}")
        for node in ("node1", "node2"):
            speakers.append(lab.spawn(s, f"speakerd-{node}", [
                sys.executable, "-m", "speakerd.cli", "run", "--kubernetes", "--kubeconfig", str(kc),
                "--node", node, "--namespace", ns, "--socket", str(lab.dir / f"{node}.sock"),
                "--state", str(lab.dir / f"{node}-state.json"), "--log-level", "debug"],
                env={"PYTHONUNBUFFERED": "1", "POD_NAME": f"speakerd-{node}", "POD_UID": f"uid-{node}"}))
        frr.wait_established(a1, timeout=60)
        frr.wait_established(a2, timeout=60)
        weights = wait_for(_when(lambda: zebra_weights(frr), lambda w: w == {a1: 25, a2: 75}), 30,
                           "zebra's next hops weighted 1:3")
        print(f"kubernetes 1:3 -> show ip route {PREFIX} json nexthops {nexthops_text(frr)}")
        # the Deployment scales up on node1 (the EndpointSlice controller rewrites the slice)
        api.replace(endpoint_slice("web-abc12", {"node1": 5, "node2": 3}))
        weights = wait_for(_when(lambda: zebra_weights(frr), lambda w: w == {a1: 62, a2: 37}), 30,
                           "zebra's next hops weighted 5:3")
        print(f"kubernetes 5:3 -> show ip route {PREFIX} json nexthops {nexthops_text(frr)}")
        assert weights[a1] > weights[a2]
    finally:
        api.close()
        for p in speakers:
            p.stop()
        emu.stop()
