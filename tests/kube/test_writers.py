"""Status writes with conflict retry, the Event recorder's dedup/aggregation, CR create-or-patch."""
from __future__ import annotations

import asyncio

from hypothesis import given, strategies as st

from speakerd.kube import kinds
from speakerd.kube.writers import (EventRecorder, delete_if_exists, ensure, ensure_with_status, merge_diff,
                                   patch_status, update_status)
from tests.kubeemu.store import merge_patch

SVC = {"metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
       "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}

json_values = st.recursive(st.none() | st.integers(0, 3) | st.sampled_from(["a", "b"]),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from("xyz"), c, max_size=3),
                           max_leaves=10)
docs = st.dictionaries(st.sampled_from("abcd"), json_values.filter(lambda v: v is not None), max_size=4)


@given(docs, docs)
def test_merge_diff_is_the_patch_from_old_to_new(old, new):
    # values that are None cannot be expressed by a merge patch; the generator leaves them out at top level
    def no_nulls(v):
        if isinstance(v, dict):
            return {k: no_nulls(x) for k, x in v.items() if x is not None}
        return v
    old, new = no_nulls(old), no_nulls(new)
    assert merge_patch(old, merge_diff(old, new)) == new


async def test_patch_status_changes_only_status(emu, kube):
    emu.put("v1", "services", SVC)
    out = await patch_status(kube, kinds.SERVICES, "default", "web", {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}})
    assert out["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.1"}]
    assert out["spec"] == SVC["spec"]


async def test_update_status_retries_on_conflict_and_skips_no_change(emu, kube):
    emu.put("v1", "services", SVC)
    info = emu.resource("v1", "services")
    calls = []

    def mutate(obj):
        calls.append(obj["metadata"]["resourceVersion"])
        if len(calls) == 1:
            # another writer gets in between our read and our write: ours must be a 409
            emu.store.patch(info, "default", "web", {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}}},
                            "application/merge-patch+json", "status")
        return {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}

    out = await update_status(kube, kinds.SERVICES, "default", "web", mutate)
    assert len(calls) == 2 and calls[0] != calls[1]
    assert out["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.1"}]
    writes = emu.store.writes
    again = await update_status(kube, kinds.SERVICES, "default", "web",
                                lambda o: {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}})
    assert again is None and emu.store.writes == writes
    # removing a key is written as a removal
    out = await update_status(kube, kinds.SERVICES, "default", "web", lambda o: {})
    assert out.get("status", {}) == {}


async def test_ensure_creates_then_patches_and_sets_status(emu, kube):
    body = {"metadata": {"labels": {"metallb.io/node": "n1"}}, "spec": {}}
    kind = kinds.SERVICEBGPSTATUSES
    a = await ensure_with_status(kube, kind, "default", "web-n1", body,
                                 {"node": "n1", "serviceName": "web", "serviceNamespace": "default", "peers": ["p1"]})
    assert a["status"]["peers"] == ["p1"] and a["metadata"]["labels"] == {"metallb.io/node": "n1"}
    b = await ensure_with_status(kube, kind, "default", "web-n1", body,
                                 {"node": "n1", "serviceName": "web", "serviceNamespace": "default", "peers": ["p1", "p2"]})
    assert b["status"]["peers"] == ["p1", "p2"] and b["metadata"]["uid"] == a["metadata"]["uid"]
    rv = b["metadata"]["resourceVersion"]
    c = await ensure_with_status(kube, kind, "default", "web-n1", body,
                                 {"node": "n1", "serviceName": "web", "serviceNamespace": "default", "peers": ["p1", "p2"]})
    assert c["metadata"]["resourceVersion"] == rv        # nothing written when nothing changed
    s = await ensure(kube, kinds.BGPSESSIONSTATES, "metallb-system", "n1-x", {"metadata": {"labels": {"a": "b"}}})
    assert s["kind"] == "BGPSessionState"
    assert await delete_if_exists(kube, kinds.BGPSESSIONSTATES, "metallb-system", "n1-x") is True
    assert await delete_if_exists(kube, kinds.BGPSESSIONSTATES, "metallb-system", "n1-x") is False


class Mono:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


async def events_of(kube):
    lst = await kube.list(kinds.CORE_EVENTS, "default")
    return sorted(lst["items"], key=lambda e: e["metadata"]["name"])


async def test_event_recorder_counts_identical_events(emu, kube):
    obj = {**SVC, "kind": "Service", "apiVersion": "v1"}
    rec = EventRecorder(kube, "speakerd", "node-a")
    rec.start()
    try:
        for _ in range(3):
            assert rec.event(obj, "Normal", "nodeAssigned", "announcing from node \"node-a\"")
        rec.event(obj, "Warning", "AllocationFailed", "pool exhausted")
        await rec.flush()
        evs = await events_of(kube)
        assert len(evs) == 2
        by_reason = {e["reason"]: e for e in evs}
        assigned = by_reason["nodeAssigned"]
        assert assigned["count"] == 3 and assigned["type"] == "Normal"
        assert assigned["involvedObject"] == {"kind": "Service", "apiVersion": "v1", "namespace": "default",
                                              "name": "web", "uid": "u-1"}
        assert assigned["source"] == {"component": "speakerd", "host": "node-a"}
        assert assigned["firstTimestamp"] and assigned["lastTimestamp"]
        assert by_reason["AllocationFailed"]["count"] == 1
    finally:
        await rec.stop()


async def test_event_recorder_combines_similar_and_limits_floods(emu, kube):
    obj = {**SVC, "kind": "Service", "apiVersion": "v1"}
    mono = Mono()
    rec = EventRecorder(kube, "speakerd", monotonic=mono)
    rec.start()
    try:
        for i in range(12):
            rec.event(obj, "Warning", "InvalidObject", f"bad field {i}")
        await rec.flush()
        msgs = [e["message"] for e in await events_of(kube)]
        assert len(msgs) == 11                               # 10 distinct, then combined ones share one Event
        assert sum(m.startswith("(combined from similar events): ") for m in msgs) == 1
        accepted = sum(rec.event(obj, "Normal", "x", "same") for _ in range(20))
        assert accepted == 25 - 12 and rec.dropped == 20 - accepted
        mono.t += 300.0                                      # one token back after 5 minutes
        assert rec.event(obj, "Normal", "x", "same") and not rec.event(obj, "Normal", "x", "same")
        await rec.flush()
    finally:
        await rec.stop()


async def test_event_recorder_rewrites_an_expired_event(emu, kube):
    obj = {**SVC, "kind": "Service", "apiVersion": "v1"}
    rec = EventRecorder(kube, "speakerd")
    rec.start()
    try:
        rec.event(obj, "Normal", "nodeAssigned", "m")
        await rec.flush()
        (ev,) = await events_of(kube)
        await kube.delete(kinds.CORE_EVENTS, "default", ev["metadata"]["name"])   # TTL expiry
        rec.event(obj, "Normal", "nodeAssigned", "m")
        await rec.flush()
        (ev2,) = await events_of(kube)
        assert ev2["count"] == 1 and ev2["metadata"]["name"] != ev["metadata"]["name"]
    finally:
        await rec.stop()
    await asyncio.sleep(0)
