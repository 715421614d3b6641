"""`speakerd run --kubernetes` driven from the API emulator, peering with FRR: routes follow endpoints.

Namespace ``s`` holds the emulator (a process on 127.0.0.1) and speakerd
(node ``n1``); FRR in ``p`` peers eBGP with it. The test changes the cluster as
the Kubernetes controllers would (Service status, EndpointSlices, the Node) and
asserts what FRR holds, and what speakerd published back.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.kubeapi import KubeApi
from tests.interop.netlab import Frr, Neighbor, holds_for, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

NS = "metallb-system"
VIP = "203.0.113.10"
PREFIX = f"{VIP}/32"
API_PORT = 18080


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server}}],
        "users": [{"name": "n1", "user": {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "n1"}}]}))
    return path


def slice_on(node: str, ready: bool = True) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.1.5"], "nodeName": node, "conditions": {"ready": ready}}]}


@pytest.fixture
def env(lab):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    me, router = link.addr(s), link.addr(p)
    emu = lab.spawn(s, "kubeemu", [sys.executable, "-m", "tests.kubeemu", "--listen", f"127.0.0.1:{API_PORT}"],
                    env={"PYTHONUNBUFFERED": "1"})
    api = KubeApi(f"http://127.0.0.1:{API_PORT}", netns=s.name)
    wait_for(api.ready, 20, "API emulator")
    frr = Frr(p, lab.subdir("frr"), 64501, "192.0.2.2", neighbors=[Neighbor(me, 64500)])
    api.create({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "tor", "namespace": NS},
                "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": router, "holdTime": "9s",
                         "keepaliveTime": "3s", "connectTime": "1s"}})
    api.create({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                "metadata": {"name": "pool", "namespace": NS}, "spec": {"addresses": ["203.0.113.0/24"]}})
    api.create({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
                "metadata": {"name": "adv", "namespace": NS}, "spec": {"ipAddressPools": ["pool"]}})
    for n in ("n1", "n2"):
        api.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}}})
    svc = api.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                      "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                               "ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "web"}}})
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": VIP}]}}
    api.request("PUT", api.path("Service", "default", "web", "status"), svc)
    api.create(slice_on("n1"))
    sock = lab.dir / "speakerd.sock"
    kc = kubeconfig(lab.dir / "kubeconfig", f"http://127.0.0.1:{API_PORT}")
    speakerd = lab.spawn(s, "speakerd", [sys.executable, "-m", "speakerd.cli", "run", "--kubernetes",
                                         "--kubeconfig", str(kc), "--node", "n1", "--namespace", NS,
                                         "--socket", str(sock), "--log-level", "debug"],
                         env={"PYTHONUNBUFFERED": "1", "POD_NAME": "speakerd-n1", "POD_UID": "uid-n1"})
    frr.wait_established(me, timeout=60)  # generous: the machine may be busy

    def ctl(*words: str) -> dict:
        import json
        return json.loads(s.exec(sys.executable, "-m", "speakerd.ctl", "--socket", str(sock), "--json", *words))
    yield api, frr, me, ctl
    api.close()
    speakerd.stop()
    emu.stop()


def _has(frr: Frr) -> bool:
    return PREFIX in frr.routes()


def test_routes_follow_endpoints(env):
    api, frr, me, ctl = env
    wait_for(lambda: _has(frr), 20, f"{PREFIX} at FRR")
    assert frr.routes()[PREFIX]  # announced from n1, which has the ready endpoint

    # the endpoint moves to n2 (a rollout): withdrawn here (externalTrafficPolicy Local)
    api.replace(slice_on("n2"))
    wait_for(lambda: not _has(frr), 20, f"{PREFIX} withdrawn at FRR")
    why = ctl("explain", "default/web")  # speakerctl explain: why not from this node
    assert why["announce"] == "noLocalEndpoints" and "n1" in why["explanation"][0]
    # ... and back, but not ready yet: still withdrawn; ready: announced again
    api.replace(slice_on("n1", ready=False))
    assert holds_for(lambda: not _has(frr), 2)
    api.replace(slice_on("n1", ready=True))
    wait_for(lambda: _has(frr), 20, f"{PREFIX} announced again")

    # this node excluded from load balancers: withdrawn
    api.patch("Node", None, "n1", {"metadata": {"labels": {
        "node.kubernetes.io/exclude-from-external-load-balancers": ""}}})
    wait_for(lambda: not _has(frr), 20, f"{PREFIX} withdrawn from an excluded node")
    assert frr.established(me)  # the session stays: only the route goes


def test_status_objects_and_events(env):
    api, frr, me, ctl = env
    wait_for(lambda: _has(frr), 20, f"{PREFIX} at FRR")

    def states():
        return api.request("GET", f"/apis/frrk8s.metallb.io/v1beta1/namespaces/{NS}/bgpsessionstates")["items"]

    wait_for(lambda: [s.get("status", {}).get("bgpStatus") for s in states()] == ["Established"], 20,
             "BGPSessionState Established")
    [st] = states()
    assert st["status"]["node"] == "n1" and st["metadata"]["ownerReferences"][0]["uid"] == "uid-n1"

    def statuses():
        return api.request("GET", f"/apis/metallb.io/v1beta1/namespaces/{NS}/servicebgpstatuses")["items"]

    wait_for(lambda: [x.get("status", {}).get("peers") for x in statuses()] == [["tor"]], 20, "ServiceBGPStatus")
    [sbs] = statuses()
    assert (sbs["status"]["serviceName"], sbs["status"]["serviceNamespace"], sbs["status"]["node"]) == (
        "web", "default", "n1")

    api_events = lambda: api.request("GET", "/api/v1/namespaces/default/events")["items"]  # noqa: E731
    wait_for(lambda: any(e["reason"] == "nodeAssigned" for e in api_events()), 20, "nodeAssigned Event")

    api.replace(slice_on("n2"))
    wait_for(lambda: statuses() == [], 20, "ServiceBGPStatus deleted once not announced")
    wait_for(lambda: any(e["reason"] == "serviceWithdrawn" and "noLocalEndpoints" in e["message"]
                         for e in api_events()), 20, "serviceWithdrawn Event with the reason")
