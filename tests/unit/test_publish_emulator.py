"""The status publisher against the API emulator over real HTTP.

The emulator serves exactly the resources of ``speakerd crds`` (plus the core
kinds), so the kinds and versions the publisher writes are the ones the
generated CRDs define; its ``/status`` subresource ignores status on create,
as the API server does.
"""
from __future__ import annotations

import asyncio

import pytest

from urllib.parse import urlencode

import aiohttp

from speakerd.crds import all_crds
from speakerd.kube.config import load_client
from speakerd.publish.kubeclient import KubeObjectClient
from speakerd.publish.status import Owner, SessionInfo
from speakerd.publish.writer import StatusPublisher
from tests.kube.conftest import Http, write_kubeconfig
from tests.kubeemu import Emulator, Registry, ResourceInfo
from tests.kubeemu.resources import CORE

NS = "metallb-system"
NODE = "worker-1"


def registry_from_crds() -> Registry:
    infos = list(CORE)
    for crd in all_crds():
        spec = crd["spec"]
        for v in spec["versions"]:
            infos.append(ResourceInfo(spec["group"], v["name"], spec["names"]["plural"], spec["names"]["kind"],
                                      spec["scope"] == "Namespaced", frozenset(v.get("subresources") or ())))
    return Registry(infos)


class Api(Http):
    """The test's own requests (what kubectl would show)."""

    async def request(self, method, path, body=None, params=None):
        status, data = await self.req(method, path + (f"?{urlencode(params)}" if params else ""), body)
        assert status < 300, data
        return data


@pytest.fixture
async def cluster(tmp_path):
    async with Emulator("127.0.0.1", 0, registry=registry_from_crds()) as emu:
        client = await load_client(write_kubeconfig(tmp_path / "kubeconfig", emu.url))
        async with aiohttp.ClientSession() as s:
            yield Api(emu.url, s), KubeObjectClient(client)
        await client.close()


async def _get(api, path, **params):
    return (await api.request("GET", path, params=params or None)).get("items", [])


SBS = f"/apis/metallb.io/v1beta1/namespaces/{NS}/servicebgpstatuses"
BSS = f"/apis/frrk8s.metallb.io/v1beta1/namespaces/{NS}/bgpsessionstates"


async def test_objects_and_events_as_kubectl_shows_them(cluster):
    api, objects = cluster
    pub = StatusPublisher(objects, NS, NODE, owner=Owner("speakerd-abc", "uid-abc"))
    task = asyncio.create_task(pub.run())
    pub.set_sessions([SessionInfo("tor1", "198.19.1.1", "Established", bfd_state="up"),
                      SessionInfo("tor2", "fd00::2", "Active")])
    pub.set_service("default/web", ["tor1", "tor2"], uid="svc-uid")
    pub.set_service("shop/cart", ["tor1"])
    await pub.flushed()

    # kubectl get servicebgpstatuses -n metallb-system -l metallb.io/service-name=web,metallb.io/node=worker-1
    [web] = await _get(api, SBS, labelSelector=f"metallb.io/service-name=web,metallb.io/node={NODE}")
    assert web["status"] == {"node": NODE, "serviceName": "web", "serviceNamespace": "default",
                             "peers": ["tor1", "tor2"]}
    assert web["metadata"]["ownerReferences"][0]["name"] == "speakerd-abc"
    assert len(await _get(api, SBS)) == 2
    # kubectl get bgpsessionstates -A
    states = {s["status"]["peer"]: s["status"] for s in await _get(api, "/apis/frrk8s.metallb.io/v1beta1/bgpsessionstates")}
    assert states["198.19.1.1"] == {"node": NODE, "peer": "198.19.1.1", "vrf": "", "bgpStatus": "Established",
                                    "bfdStatus": "up"}
    assert states["fd00-0000-0000-0000-0000-0000-0000-0002"]["bgpStatus"] == "Active"
    # kubectl get events -n default
    [ev] = await _get(api, "/api/v1/namespaces/default/events")
    assert (ev["reason"], ev["type"], ev["involvedObject"]["name"], ev["involvedObject"]["uid"]) == (
        "nodeAssigned", "Normal", "web", "svc-uid")

    pub.set_service("default/web", [], uid="svc-uid", why_not="noLocalEndpoints")
    await pub.flushed()
    assert [s["status"]["serviceName"] for s in await _get(api, SBS)] == ["cart"]
    reasons = sorted(e["reason"] for e in await _get(api, "/api/v1/namespaces/default/events"))
    assert reasons == ["nodeAssigned", "serviceWithdrawn"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_one_change_is_one_watch_event_and_no_change_is_none(cluster):
    api, objects = cluster
    pub = StatusPublisher(objects, NS, NODE)
    task = asyncio.create_task(pub.run())
    pub.set_service("default/web", ["tor1"])
    pub.set_sessions([SessionInfo("tor1", "198.19.1.1", "Established")])
    await pub.flushed()
    rv = (await api.request("GET", SBS))["metadata"]["resourceVersion"]

    for _ in range(5):  # flaps that end where they started, before the writer runs
        pub.set_service("default/web", ["tor1", "tor2"])
        pub.set_service("default/web", ["tor1"])
    pub.set_service("default/web", ["tor1", "tor2"])  # the one real change
    pub.set_sessions([SessionInfo("tor1", "198.19.1.1", "Established")])  # unchanged
    await pub.flushed()

    got = await api.watch(f"{SBS}?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert [(e["type"], e["object"]["status"]["peers"]) for e in got] == [("MODIFIED", ["tor1", "tor2"])]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_restarted_pod_adopts_and_cleans_up(cluster):
    api, objects = cluster
    old = StatusPublisher(objects, NS, NODE, owner=Owner("speakerd-old", "uid-old"))
    task = asyncio.create_task(old.run())
    old.set_service("default/web", ["tor1"])
    old.set_service("default/gone", ["tor1"])
    old.set_sessions([SessionInfo("tor1", "198.19.1.1", "Established")])
    await old.flushed()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    new = StatusPublisher(objects, NS, NODE, owner=Owner("speakerd-new", "uid-new"))
    new.set_service("default/web", ["tor1"])
    new.set_sessions([SessionInfo("tor1", "198.19.1.1", "Idle")])
    task = asyncio.create_task(new.run())
    await new.flushed()
    items = await _get(api, SBS)
    assert [(i["status"]["serviceName"], i["metadata"]["ownerReferences"][0]["uid"]) for i in items] == [
        ("web", "uid-new")]
    [state] = await _get(api, BSS)
    assert state["status"]["bgpStatus"] == "Idle" and state["metadata"]["ownerReferences"][0]["uid"] == "uid-new"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
