"""The speaker's watches, against the API emulator: each selector keeps out what the speaker must not read."""
from __future__ import annotations

from urllib.parse import urlencode

import aiohttp
import pytest

from speakerd.kubewatch import ACCESS, WATCHES
from tests.kube.conftest import Http
from tests.kubeemu import Emulator

NS = "metallb-system"
W = {w.kind: w for w in WATCHES}


class Api(Http):
    async def request(self, method, path, body=None, ctype="application/json", params=None):
        status, data = await self.req(method, path + (f"?{urlencode(params)}" if params else ""), body, ctype)
        assert status < 300, data
        return data


@pytest.fixture
async def api():
    async with Emulator("127.0.0.1", 0) as emu:
        async with aiohttp.ClientSession() as s:
            yield Api(emu.url, s)


async def _names(api, w, node="n1", namespace=NS, version=None):
    data = await api.request("GET", w.path(version or w.versions[0], namespace), params=w.params(node))
    return sorted(i["metadata"]["name"] for i in data["items"])


async def test_only_this_node(api):
    for n in ("n1", "n2"):
        await api.request("POST", "/api/v1/nodes", {"metadata": {"name": n}})
    assert await _names(api, W["Node"], node="n1") == ["n1"]


async def test_only_basic_auth_secrets_in_own_namespace(api):
    for ns, name, typ in ((NS, "bgp-pass", "kubernetes.io/basic-auth"), (NS, "tls", "kubernetes.io/tls"),
                          ("default", "other", "kubernetes.io/basic-auth")):
        await api.request("POST", f"/api/v1/namespaces/{ns}/secrets",
                          {"metadata": {"name": name}, "type": typ, "data": {}})
    assert await _names(api, W["Secret"]) == ["bgp-pass"]


async def test_only_endpointslices_of_a_service_in_every_namespace(api):
    for ns, name, labels in (("a", "web-1", {"kubernetes.io/service-name": "web"}), ("b", "db-1",
                             {"kubernetes.io/service-name": "db"}), ("a", "orphan", {})):
        await api.request("POST", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
                          {"metadata": {"name": name, "labels": labels}, "addressType": "IPv4", "endpoints": []})
    assert await _names(api, W["EndpointSlice"]) == ["db-1", "web-1"]


async def test_metallb_kinds_in_own_namespace_and_services_everywhere(api):
    await api.request("POST", f"/apis/metallb.io/v1beta2/namespaces/{NS}/bgppeers",
                      {"metadata": {"name": "p1"}, "spec": {"myASN": 1, "peerASN": 2, "peerAddress": "10.0.0.1"}})
    await api.request("POST", "/apis/metallb.io/v1beta2/namespaces/elsewhere/bgppeers",
                      {"metadata": {"name": "p2"}, "spec": {"myASN": 1, "peerASN": 2, "peerAddress": "10.0.0.2"}})
    assert await _names(api, W["BGPPeer"]) == ["p1"]
    assert await _names(api, W["BGPPeer"], version="v1beta1") == ["p1"]  # the same object, older version
    for ns in ("a", "b"):
        await api.request("POST", f"/api/v1/namespaces/{ns}/services",
                          {"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer"}})
    assert len(await _names(api, W["Service"])) == 2
    for w in WATCHES:  # every path is served
        await api.request("GET", w.path(w.versions[0], NS), params=w.params("n1"))


async def test_watch_with_the_selectors(api):
    await api.request("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
    lst = await api.request("GET", W["Node"].path("v1", NS), params=W["Node"].params("n1"))
    rv = lst["metadata"]["resourceVersion"]
    await api.request("POST", "/api/v1/nodes", {"metadata": {"name": "n2"}})
    await api.request("PATCH", "/api/v1/nodes/n1", {"metadata": {"labels": {"x": "1"}}},
                      "application/merge-patch+json")
    path = W["Node"].path("v1", NS) + "?" + urlencode({**W["Node"].params("n1"), "watch": "1",
                                                        "resourceVersion": rv, "timeoutSeconds": "1"})
    got = [(e["type"], e["object"]["metadata"]["name"]) for e in await api.watch(path)]
    assert got == [("MODIFIED", "n1")]


def test_access_is_list_and_watch_of_each():
    assert {(a.group, a.resource, a.scope) for a in ACCESS} == {
        (w.group, w.plural, "namespace" if w.namespaced else "cluster") for w in WATCHES}
    assert all(a.verbs == ("list", "watch") for a in ACCESS)
