"""The API emulator keeps the semantics list+watch clients depend on (each asserted over real HTTP)."""
from __future__ import annotations

import asyncio

import pytest

from tests.kubeemu import Emulator

SVC = "/api/v1/namespaces/default/services"


def svc(name, labels=None, **spec):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"type": "LoadBalancer", **spec}}


def rv(obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def test_resource_versions_grow_globally_and_per_object(http):
    _, a = await http.req("POST", SVC, svc("a"))
    _, b = await http.req("POST", "/api/v1/namespaces/other/services", svc("b"))
    _, n = await http.req("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
    assert rv(a) < rv(b) < rv(n)
    _, a2 = await http.req("PATCH", SVC + "/a", {"metadata": {"labels": {"x": "1"}}}, "application/merge-patch+json")
    assert rv(a2) > rv(n)
    _, lst = await http.req("GET", "/api/v1/services")
    assert int(lst["metadata"]["resourceVersion"]) == rv(a2)
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a", "b"]


async def test_write_that_changes_nothing_keeps_the_version(http):
    _, a = await http.req("POST", SVC, svc("a", {"x": "1"}))
    _, a2 = await http.req("PATCH", SVC + "/a", {"metadata": {"labels": {"x": "1"}}}, "application/merge-patch+json")
    assert rv(a2) == rv(a)


async def test_watch_resumes_after_the_given_version(http):
    _, a = await http.req("POST", SVC, svc("a"))
    await http.req("POST", SVC, svc("b"))
    await http.req("DELETE", SVC + "/a")
    evs = await http.watch(f"/api/v1/services?watch=true&resourceVersion={rv(a)}&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "b"), ("DELETED", "a")]


async def test_watch_without_version_starts_with_current_state(http):
    await http.req("POST", SVC, svc("a"))
    evs = await http.watch("/api/v1/services?watch=1&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "a")]


async def test_watch_streams_live_changes(http):
    _, a = await http.req("POST", SVC, svc("a"))
    task = asyncio.ensure_future(http.watch(f"/api/v1/services?watch=true&resourceVersion={rv(a)}", limit=2))
    await http.req("PATCH", SVC + "/a", {"spec": {"ports": [{"port": 80}]}}, "application/merge-patch+json")
    await http.req("POST", SVC, svc("b"))
    evs = await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("MODIFIED", "a"), ("ADDED", "b")]


async def test_too_old_version_is_410_gone_and_history_is_bounded(http, emu):
    small = Emulator(history=3)
    async with small:
        http.base = small.url
        _, first = await http.req("POST", SVC, svc("s0"))
        for i in range(1, 6):
            await http.req("POST", SVC, svc(f"s{i}"))
        evs = await http.watch(f"/api/v1/services?watch=true&resourceVersion={rv(first)}")
        assert len(evs) == 1 and evs[0]["type"] == "ERROR"
        assert evs[0]["object"]["code"] == 410 and evs[0]["object"]["reason"] == "Expired"
        # the last three events are still there: resuming from the fourth write works
        ok = await http.watch(f"/api/v1/services?watch=true&resourceVersion={rv(first) + 3}&timeoutSeconds=1")
        assert [e["object"]["metadata"]["name"] for e in ok] == ["s4", "s5"]


async def test_compact_makes_resumption_410(http, emu):
    _, a = await http.req("POST", SVC, svc("a"))
    await http.req("POST", SVC, svc("b"))
    await http.req("POST", "/_emulator/compact")
    evs = await http.watch(f"/api/v1/services?watch=true&resourceVersion={rv(a)}")
    assert evs[0]["type"] == "ERROR" and evs[0]["object"]["code"] == 410


async def test_bookmarks_only_when_asked(http, emu):
    _, a = await http.req("POST", SVC, svc("a"))
    with_bm = asyncio.ensure_future(http.watch(
        f"/api/v1/services?watch=true&resourceVersion={rv(a)}&allowWatchBookmarks=true", limit=1))
    without = asyncio.ensure_future(http.watch(f"/api/v1/services?watch=true&resourceVersion={rv(a)}", limit=1))
    while sum(len(w) for w in emu.store.watchers.values()) < 2:
        await asyncio.sleep(0.01)
    await http.req("POST", "/api/v1/nodes", {"metadata": {"name": "n"}})  # another kind moves the counter
    emu.store.bookmark()
    evs = await with_bm
    assert evs[0]["type"] == "BOOKMARK" and int(evs[0]["object"]["metadata"]["resourceVersion"]) == emu.store.rv
    await http.req("POST", SVC, svc("b"))
    assert (await without)[0]["type"] == "ADDED"


async def test_timeout_seconds_ends_the_stream(http):
    evs = await http.watch("/api/v1/services?watch=true&timeoutSeconds=1")
    assert evs == []


async def test_label_selectors(http):
    await http.req("POST", SVC, svc("a", {"app": "web", "tier": "fe"}))
    await http.req("POST", SVC, svc("b", {"app": "db"}))
    await http.req("POST", SVC, svc("c", {}))

    async def names(sel):
        from urllib.parse import quote
        _, lst = await http.req("GET", SVC + "?labelSelector=" + quote(sel))
        return [i["metadata"]["name"] for i in lst["items"]]

    assert await names("app=web") == ["a"]
    assert await names("app==web,tier=fe") == ["a"]
    assert await names("app!=web") == ["b", "c"]
    assert await names("app in (web, db)") == ["a", "b"]
    assert await names("app notin (web)") == ["b", "c"]
    assert await names("app") == ["a", "b"]
    assert await names("!app") == ["c"]


async def test_field_selectors(http):
    await http.req("POST", SVC, svc("a"))
    await http.req("POST", "/api/v1/namespaces/kube-system/services", svc("a"))
    await http.req("POST", SVC, svc("b"))
    _, lst = await http.req("GET", "/api/v1/services?fieldSelector=metadata.name%3Da")
    assert sorted(i["metadata"]["namespace"] for i in lst["items"]) == ["default", "kube-system"]
    _, lst = await http.req("GET", "/api/v1/services?fieldSelector=metadata.namespace%3Dkube-system")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a"]
    _, lst = await http.req("GET", "/api/v1/services?fieldSelector=metadata.namespace!%3Dkube-system,metadata.name%3Db")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["b"]


async def test_watch_with_selector_sees_objects_enter_and_leave(http):
    _, a = await http.req("POST", SVC, svc("a", {"app": "web"}))
    await http.req("PATCH", SVC + "/a", {"metadata": {"labels": {"app": "db"}}}, "application/merge-patch+json")
    await http.req("PATCH", SVC + "/a", {"metadata": {"labels": {"extra": "1"}}}, "application/merge-patch+json")
    await http.req("PATCH", SVC + "/a", {"metadata": {"labels": {"app": "web"}}}, "application/merge-patch+json")
    evs = await http.watch(f"{SVC}?watch=true&labelSelector=app%3Dweb&resourceVersion={rv(a)}&timeoutSeconds=1")
    assert [e["type"] for e in evs] == ["DELETED", "ADDED"]


async def test_status_is_a_separate_subresource(http):
    _, a = await http.req("POST", SVC, {**svc("a"), "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}}})
    assert "status" not in a  # create ignores status, as for Services
    _, s = await http.req("PATCH", SVC + "/a/status",
                          {"spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}},
                          "application/merge-patch+json")
    assert s["spec"]["type"] == "LoadBalancer"
    assert s["status"]["loadBalancer"]["ingress"] == [{"ip": "1.2.3.4"}]
    _, m = await http.req("PATCH", SVC + "/a", {"spec": {"type": "NodePort"}, "status": {"loadBalancer": {}}},
                          "application/merge-patch+json")
    assert m["spec"]["type"] == "NodePort"
    assert m["status"]["loadBalancer"]["ingress"] == [{"ip": "1.2.3.4"}]
    assert m["metadata"]["generation"] == 2 and s["metadata"]["generation"] == 1
    code, got = await http.req("GET", SVC + "/a/status")
    assert code == 200 and got["status"] == m["status"]


async def test_stale_resource_version_is_409_for_put_and_patch(http):
    _, a = await http.req("POST", SVC, svc("a"))
    _, a2 = await http.req("PUT", SVC + "/a", {**a, "spec": {"type": "ClusterIP"}})
    assert rv(a2) > rv(a) and a2["spec"] == {"type": "ClusterIP"}
    code, st = await http.req("PUT", SVC + "/a", {**a, "spec": {"type": "NodePort"}})
    assert code == 409 and st["reason"] == "Conflict"
    code, st = await http.req("PATCH", SVC + "/a", {"metadata": {"resourceVersion": a["metadata"]["resourceVersion"]},
                                                    "spec": {"type": "NodePort"}}, "application/merge-patch+json")
    assert code == 409
    code, _ = await http.req("PATCH", SVC + "/a/status", {"metadata": {"resourceVersion": str(rv(a))},
                                                          "status": {}}, "application/merge-patch+json")
    assert code == 409
    _, cur = await http.req("GET", SVC + "/a")
    assert cur["spec"] == {"type": "ClusterIP"}


async def test_post_put_delete_and_errors(http):
    code, _ = await http.req("POST", SVC, svc("a"))
    assert code == 201
    code, st = await http.req("POST", SVC, svc("a"))
    assert code == 409 and st["reason"] == "AlreadyExists"
    code, st = await http.req("PUT", SVC + "/nope", svc("nope"))
    assert code == 404 and st["reason"] == "NotFound"
    code, gen = await http.req("POST", SVC, {"metadata": {"generateName": "x-"}, "spec": {}})
    assert code == 201 and gen["metadata"]["name"].startswith("x-")
    code, _ = await http.req("DELETE", SVC + "/a")
    assert code == 200
    code, _ = await http.req("GET", SVC + "/a")
    assert code == 404


async def test_json_patch(http):
    await http.req("POST", SVC, svc("a", {"x": "1"}))
    code, got = await http.req("PATCH", SVC + "/a", [{"op": "add", "path": "/metadata/labels/y", "value": "2"},
                                                     {"op": "remove", "path": "/metadata/labels/x"}],
                               "application/json-patch+json")
    assert code == 200 and got["metadata"]["labels"] == {"y": "2"}
    code, _ = await http.req("PATCH", SVC + "/a", [{"op": "test", "path": "/metadata/labels/y", "value": "3"}],
                             "application/json-patch+json")
    assert code == 422


async def test_delete_with_finalizers_marks_then_removes(http):
    _, a = await http.req("POST", SVC, {**svc("a"), "metadata": {"name": "a", "finalizers": ["x/y"]}})
    _, d = await http.req("DELETE", SVC + "/a")
    assert d["metadata"]["deletionTimestamp"]
    _, still = await http.req("GET", SVC + "/a")
    assert still["metadata"]["deletionTimestamp"]
    await http.req("PATCH", SVC + "/a", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    code, _ = await http.req("GET", SVC + "/a")
    assert code == 404
    evs = await http.watch(f"/api/v1/services?watch=true&resourceVersion={rv(a)}&timeoutSeconds=1")
    assert [e["type"] for e in evs] == ["MODIFIED", "DELETED"]


async def test_leases_and_events(http):
    lease = {"metadata": {"name": "speakerd-controller"},
             "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15}}
    code, got = await http.req("POST", "/apis/coordination.k8s.io/v1/namespaces/metallb-system/leases", lease)
    assert code == 201 and got["kind"] == "Lease" and got["apiVersion"] == "coordination.k8s.io/v1"
    code, _ = await http.req("PUT", "/apis/coordination.k8s.io/v1/namespaces/metallb-system/leases/speakerd-controller",
                             {**got, "spec": {"holderIdentity": "pod-b"}})
    assert code == 200
    code, _ = await http.req("PUT", "/apis/coordination.k8s.io/v1/namespaces/metallb-system/leases/speakerd-controller",
                             {**got, "spec": {"holderIdentity": "pod-c"}})
    assert code == 409
    code, ev = await http.req("POST", "/api/v1/namespaces/default/events",
                              {"metadata": {"name": "e1"}, "reason": "nodeAssigned", "count": 1,
                               "involvedObject": {"kind": "Service", "name": "a"}})
    assert code == 201 and ev["kind"] == "Event" and ev["apiVersion"] == "v1"
    code, ev2 = await http.req("POST", "/apis/events.k8s.io/v1/namespaces/default/events",
                               {"metadata": {"name": "e2"}, "reason": "nodeAssigned", "regarding": {"name": "a"}})
    assert code == 201 and ev2["apiVersion"] == "events.k8s.io/v1"


async def test_metallb_kinds_and_versions_share_storage(http):
    peer = {"metadata": {"name": "p"}, "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1"}}
    code, got = await http.req("POST", "/apis/metallb.io/v1beta2/namespaces/metallb-system/bgppeers", peer)
    assert code == 201 and got["apiVersion"] == "metallb.io/v1beta2"
    code, old = await http.req("GET", "/apis/metallb.io/v1beta1/namespaces/metallb-system/bgppeers/p")
    assert code == 200 and old["apiVersion"] == "metallb.io/v1beta1" and old["spec"] == peer["spec"]
    for plural in ("ipaddresspools", "bgpadvertisements", "bfdprofiles", "communities",
                   "servicebgpstatuses", "bgpsessionstates", "l2advertisements"):
        code, lst = await http.req("GET", f"/apis/metallb.io/v1beta1/{plural}")
        assert code == 200 and lst["items"] == [], plural
    code, disc = await http.req("GET", "/apis/metallb.io/v1beta1")
    assert {"bgpsessionstates", "bgpsessionstates/status"} <= {r["name"] for r in disc["resources"]}


async def test_pagination_with_continue(http):
    for i in range(7):
        await http.req("POST", SVC, svc(f"s{i}"))
    seen, cont, versions = [], "", set()
    while True:
        _, page = await http.req("GET", SVC + "?limit=3" + (f"&continue={cont}" if cont else ""))
        seen += [i["metadata"]["name"] for i in page["items"]]
        versions.add(page["metadata"]["resourceVersion"])
        cont = page["metadata"].get("continue")
        if not cont:
            break
    assert seen == [f"s{i}" for i in range(7)] and len(versions) == 1
    code, st = await http.req("GET", SVC + "?limit=3&continue=bm9wZTo1")
    assert code == 410


@pytest.mark.parametrize("with_state", [True, False])
async def test_stop_and_start_with_state_or_empty(tmp_path, with_state):
    import aiohttp
    from tests.kube.conftest import Http
    state = tmp_path / "state.json"
    async with Emulator(state_file=state) as e1, aiohttp.ClientSession() as s:
        h = Http(e1.url, s)
        await h.req("POST", SVC, svc("a"))
        _, b = await h.req("POST", SVC, svc("b"))
    async with Emulator(state_file=state if with_state else None) as e2, aiohttp.ClientSession() as s:
        h = Http(e2.url, s)
        _, lst = await h.req("GET", "/api/v1/services")
        if with_state:
            assert [(i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in lst["items"]] == \
                   [("a", "1"), ("b", b["metadata"]["resourceVersion"])]
            # a watch from the last version resumes; the next write continues the counter
            _, c = await h.req("POST", SVC, svc("c"))
            assert rv(c) == rv(b) + 1
            evs = await h.watch(f"/api/v1/services?watch=true&resourceVersion={rv(b)}&timeoutSeconds=1")
            assert [e["object"]["metadata"]["name"] for e in evs] == ["c"]
        else:
            assert lst["items"] == []
            # a client's version from before is unknown here: 410, so it lists again
            evs = await h.watch(f"/api/v1/services?watch=true&resourceVersion={rv(b)}")
            assert evs[0]["type"] == "ERROR" and evs[0]["object"]["code"] == 410


async def test_closing_watches_ends_streams(http, emu):
    task = asyncio.ensure_future(http.watch("/api/v1/services?watch=true"))
    while not any(emu.store.watchers.values()):
        await asyncio.sleep(0.01)
    _, out = await http.req("POST", "/_emulator/close-watches")
    assert out["closed"] == 1
    assert await task == []


async def test_unsupported_field_selector_is_rejected_as_the_api_server_does(http):
    code, st = await http.req("GET", "/api/v1/services?fieldSelector=spec.ports%3D80")
    assert code == 400 and "field label not supported" in st["message"]
    code, _ = await http.req("GET", "/api/v1/services?fieldSelector=spec.type%3DLoadBalancer")
    assert code == 200
    code, _ = await http.req("GET", "/api/v1/events?fieldSelector=involvedObject.name%3Dweb")
    assert code == 200
    code, _ = await http.req("GET", "/apis/discovery.k8s.io/v1/endpointslices?fieldSelector=spec.x%3D1")
    assert code == 400


async def test_a_client_that_goes_away_frees_its_watcher(http, emu):
    import aiohttp
    from tests.kube.conftest import wait_until
    async with aiohttp.ClientSession() as s:
        resp = await s.get(emu.url + "/api/v1/services?watch=true")
        await wait_until(lambda: sum(len(w) for w in emu.store.watchers.values()) == 1, what="watch registered")
        resp.close()
    await wait_until(lambda: sum(len(w) for w in emu.store.watchers.values()) == 0, timeout=20,
                     what="watcher freed without any event")
