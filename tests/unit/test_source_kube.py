"""Kubernetes mode's source: the emulator's objects reach the store as events, and only changes do."""
from __future__ import annotations

import asyncio

import pytest

import aiohttp

from speakerd.kube.config import load_client
from speakerd.sources.kube import KubeSource
from speakerd.store import Store
from tests.kube.conftest import Http, write_kubeconfig
from tests.kubeemu import Emulator

NS = "metallb-system"
NODE = "n1"
MERGE = "application/merge-patch+json"


def slice_on(node: str, name: str = "web-abc", ready: bool = True) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.0.5"], "nodeName": node, "conditions": {"ready": ready}}]}


async def seed(api: Api) -> None:
    m = f"/apis/metallb.io/v1beta2/namespaces/{NS}/bgppeers"
    await api.request("POST", m, {"metadata": {"name": "tor1"},
                                  "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "198.19.1.1"}})
    await api.request("POST", f"/apis/metallb.io/v1beta1/namespaces/{NS}/ipaddresspools",
                      {"metadata": {"name": "pool1"}, "spec": {"addresses": ["192.0.2.0/24"]}})
    await api.request("POST", f"/apis/metallb.io/v1beta1/namespaces/{NS}/bgpadvertisements",
                      {"metadata": {"name": "adv"}, "spec": {"ipAddressPools": ["pool1"]}})
    await api.request("POST", "/api/v1/nodes", {"metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}}})
    await api.request("POST", "/api/v1/nodes", {"metadata": {"name": "n2"}})
    svc = await api.request("POST", "/api/v1/namespaces/default/services", {
        "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}})
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}
    await api.request("PUT", "/api/v1/namespaces/default/services/web/status", svc)
    await api.request("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", slice_on(NODE))


class Api(Http):
    async def request(self, method, path, body=None, ctype="application/json"):
        status, data = await self.req(method, path, body, ctype)
        assert status < 300, data
        return data


def raw_api(url: str):
    class _Ctx:
        async def __aenter__(self):
            self.s = aiohttp.ClientSession()
            return Api(url, self.s)

        async def __aexit__(self, *exc):
            await self.s.close()
    return _Ctx()


class Sink:
    def __init__(self) -> None:
        self.store = Store()
        self.batches: list[list] = []
        self.changed = asyncio.Event()

    def __call__(self, events) -> None:
        self.batches.append(list(events))
        self.last = self.store.apply(events)
        self.changed.set()

    async def next_batch(self) -> list:
        n = len(self.batches)
        while len(self.batches) == n:
            self.changed.clear()
            await self.changed.wait()
        return self.batches[n]


@pytest.fixture
async def env(tmp_path):
    async with Emulator("127.0.0.1", 0) as emu:
        async with raw_api(emu.url) as api:  # the test's own writes
            await seed(api)
            client = await load_client(write_kubeconfig(tmp_path / "kubeconfig", emu.url))
            sink = Sink()
            src = KubeSource(client, NS, NODE, sink)
            task = asyncio.create_task(src.run())
            await src.synced.wait()
            yield emu, api, src, sink
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()


async def test_initial_list_fills_the_store(env):
    emu, api, src, sink = env
    st = sink.store
    assert set(st.config().peers) == {"tor1"} and st.metallb_errors == ()
    assert st.services["default/web"].ingress_ips == ("192.0.2.10",)
    assert st.services["default/web"].traffic_policy == "Local"
    assert list(st.nodes) == [NODE]  # only this node's Node is read
    [eps] = st.endpoint_slices.values()
    assert [e.node for e in eps.endpoints] == [NODE]
    assert src.reflectors["BGPPeer"].kind.version == "v1beta2"
    assert {v["state"] for v in src.states().values()} == {"watching"}


async def test_a_moved_endpoint_slice_is_one_event(env):
    emu, api, src, sink = env
    await api.request("PATCH", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-abc",
                      {"endpoints": [{"addresses": ["10.1.0.6"], "nodeName": "n2", "conditions": {"ready": True}}]},
                      MERGE)
    batch = await sink.next_batch()
    assert [(e.type, e.obj["kind"], e.obj["metadata"]["name"]) for e in batch] == [
        ("MODIFIED", "EndpointSlice", "web-abc")]
    [eps] = sink.store.endpoint_slices.values()
    assert [e.node for e in eps.endpoints] == ["n2"]


async def test_changes_soon_after_a_batch_wait_for_the_next_one_together(tmp_path):
    """Batches start at least ``min_interval`` apart: the first change goes at once (after the
    coalescing window), the ones that follow within the interval are held and go as one batch."""
    async with Emulator("127.0.0.1", 0) as emu:
        async with raw_api(emu.url) as api:
            await seed(api)
            sink = Sink()
            client, src, task = await _start_source(tmp_path, emu.url, sink, coalesce=0, min_interval=3600)
            try:
                path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-abc"
                await api.request("PATCH", path, {"metadata": {"labels": {"rev": "1"}}}, MERGE)
                first = await sink.next_batch()  # not held: no batch before it
                assert [e.obj["metadata"]["labels"]["rev"] for e in first] == ["1"]
                n, seen = len(sink.batches), src.events_in
                for rev in ("2", "3"):
                    await api.request("PATCH", path, {"metadata": {"labels": {"rev": rev}}}, MERGE)
                await _until(lambda: src.events_in == seen + 2, "both changes received")
                assert len(sink.batches) == n  # within the interval: held
                assert [e.obj["metadata"]["labels"]["rev"] for e in src._pending] == ["2", "3"]
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await client.close()


async def test_other_nodes_changes_do_not_reach_the_speaker(env):
    emu, api, src, sink = env
    await api.request("PATCH", "/api/v1/nodes/n2", {"metadata": {"labels": {"x": "1"}}}, MERGE)
    await api.request("PATCH", f"/api/v1/nodes/{NODE}", {"metadata": {"labels": {"x": "1"}}}, MERGE)
    batch = await sink.next_batch()
    assert [e.obj["metadata"]["name"] for e in batch] == [NODE]


async def test_a_relist_reports_only_the_difference(env):
    """What a 410 Gone leads to: a fresh list, and events only for what changed meanwhile."""
    emu, api, src, sink = env
    r = src.reflectors["Service"]
    n = len(sink.batches)
    await r._list()  # a fresh list with nothing changed: no event at all
    await api.request("PATCH", "/api/v1/namespaces/default/services/web",
                      {"metadata": {"labels": {"team": "a"}}}, MERGE)
    batch = await sink.next_batch() if len(sink.batches) == n else sink.batches[n]
    assert [(e.type, e.obj["metadata"]["name"]) for e in batch] == [("MODIFIED", "web")]
    assert sink.store.services["default/web"].labels == (("team", "a"),)


async def test_bgppeer_v1beta1_where_v1beta2_is_not_served(tmp_path):
    from tests.kubeemu import DEFAULT_RESOURCES, Registry
    reg = Registry([r for r in DEFAULT_RESOURCES if not (r.plural == "bgppeers" and r.version == "v1beta2")])
    async with Emulator("127.0.0.1", 0, registry=reg) as emu:
        async with raw_api(emu.url) as api:
            await api.request("POST", f"/apis/metallb.io/v1beta1/namespaces/{NS}/bgppeers", {
                "metadata": {"name": "old"}, "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1"}})
            client = await load_client(write_kubeconfig(tmp_path / "kubeconfig", emu.url))
            sink = Sink()
            src = KubeSource(client, NS, NODE, sink)
            task = asyncio.create_task(src.run())
            await src.synced.wait()
            assert src.reflectors["BGPPeer"].kind.version == "v1beta1"
            [ev] = [e for e in sink.batches[0] if e.obj["kind"] == "BGPPeer"]
            assert ev.obj["apiVersion"] == "metallb.io/v1beta1" and ev.obj["metadata"]["name"] == "old"
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()


async def _until(pred, what: str):
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while not pred():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_api_server_away_changes_nothing_and_back_reports_only_changes(env):
    """While the API server is unreachable nothing is reported (the routes stay); once back,
    only what changed meanwhile arrives."""
    emu, api, src, sink = env
    n = len(sink.batches)
    await emu.stop()
    await _until(lambda: not any(r.up for r in src.reflectors.values()), "every watch down")
    assert len(sink.batches) == n and len(sink.store.services) == 1
    emu.store.patch(emu.resource("discovery.k8s.io/v1", "endpointslices"), "default", "web-abc",
                    {"endpoints": [{"addresses": ["10.1.0.9"], "nodeName": "n2", "conditions": {"ready": True}}]},
                    MERGE)  # changed while speakerd could not see it
    await emu.start()
    batch = await sink.next_batch()
    assert [(e.type, e.obj["kind"]) for e in batch] == [("MODIFIED", "EndpointSlice")]
    await _until(lambda: all(r.up for r in src.reflectors.values()), "every watch up again")
    assert len(sink.batches) == n + 1  # nothing else: unchanged objects are no events


async def _start_source(tmp_path, url, sink, **kw):
    client = await load_client(write_kubeconfig(tmp_path / "kubeconfig", url))
    src = KubeSource(client, NS, NODE, sink, **kw)
    task = asyncio.create_task(src.run())
    await src.synced.wait()
    return client, src, task


async def test_api_server_back_empty_then_repopulated_deletes_nothing(tmp_path):
    """An API server restored empty and filled again: the re-list's deletions are held, and
    dropped as the objects come back, so the store never loses them (no session reset, no withdraw)."""
    async with Emulator("127.0.0.1", 0) as emu:
        port = emu.port
        async with raw_api(emu.url) as api:
            await seed(api)
        sink = Sink()
        client, src, task = await _start_source(tmp_path, emu.url, sink)
    n = len(sink.batches)
    async with Emulator("127.0.0.1", port) as emu2:  # same address, nothing in it
        await _until(lambda: len(src.held) > 0, "the empty re-list's deletions held")
        async with raw_api(emu2.url) as api:
            await seed(api)
        await _until(lambda: not src.held, "every held object back")
        await _until(lambda: all(r.up for r in src.reflectors.values()), "every watch up")
        later = [e for b in sink.batches[n:] for e in b]
        assert not [e for e in later if e.type == "DELETED"]
        assert set(sink.store.config().peers) == {"tor1"} and "default/web" in sink.store.services
        assert len(sink.store.endpoint_slices) == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


async def test_held_deletions_go_through_when_the_objects_do_not_come_back(tmp_path):
    async with Emulator("127.0.0.1", 0) as emu:
        port = emu.port
        async with raw_api(emu.url) as api:
            await seed(api)
        sink = Sink()
        client, src, task = await _start_source(tmp_path, emu.url, sink, empty_relist_grace=0.3)
    async with Emulator("127.0.0.1", port):
        # each kind is listed again when its own backoff ends; each holds its deletions for the grace
        await _until(lambda: "default/web" not in sink.store.services and not src.held
                     and len(sink.store.endpoint_slices) == 0, "every deletion through after the grace")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
