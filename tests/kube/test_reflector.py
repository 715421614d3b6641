"""Reflector against the emulator: list, watch, resume, 410 re-list, bookmarks, outages, selectors."""
from __future__ import annotations

import asyncio

import pytest

from speakerd.kube import kinds
from speakerd.kube.client import ApiError
from speakerd.kube.metrics import WatchMetrics
from speakerd.kube.reflector import Backoff, Reflector
from tests.kube.conftest import wait_until
from tests.kubeemu import Emulator

SVC = ("v1", "services")


def svc(name, ns="default", labels=None, port=80):
    return {"metadata": {"name": name, "namespace": ns, "labels": labels or {},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"},
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"type": "LoadBalancer", "ports": [{"port": port}]}}


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str, dict]] = []

    def __call__(self, etype, obj):
        self.events.append((etype, obj["metadata"]["name"], obj))

    def names(self):
        return [(t, n) for t, n, _ in self.events]


def fast_backoff():
    return Backoff(initial=0.01, maximum=0.05, rng=lambda: 0.5)


async def test_first_list_is_paginated_and_emits_added_then_synced(emu, kube):
    for i in range(5):
        emu.put(*SVC, svc(f"s{i}"))
    rec = Recorder()
    r = Reflector(kube, kinds.SERVICES, on_event=rec, page_size=2)
    r.start()
    try:
        await asyncio.wait_for(r.synced.wait(), 10)
        assert rec.names() == [("ADDED", f"s{i}") for i in range(5)]
        assert emu.store.requests["list"] == 3
        obj = r.get("default", "s0")
        assert obj["kind"] == "Service" and obj["apiVersion"] == "v1"
        # slimmed: no managedFields, no last-applied copy; other annotations kept
        assert "managedFields" not in obj["metadata"] and obj["metadata"]["annotations"] == {"keep": "me"}
        assert r.resource_version == str(emu.store.rv)
    finally:
        await r.stop()


async def test_a_large_list_lets_the_loop_run_and_pauses_the_collector(emu, kube):
    """A list of many objects is compared page by page and handed on a chunk at a time: other
    tasks (sessions, timers) run between the chunks; the cyclic collector is off while it reads."""
    import gc
    n = 3 * Reflector.EMIT_CHUNK
    for i in range(n):
        emu.put(*SVC, svc(f"s{i}"))
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)
    seen_ticks: list[int] = []
    gc_during: list[bool] = []
    lister = kube.list

    async def list_(*a, **kw):
        gc_during.append(gc.isenabled())
        return await lister(*a, **kw)
    kube.list = list_
    r = Reflector(kube, kinds.SERVICES, on_event=lambda t, o: seen_ticks.append(ticks), page_size=400)
    t = asyncio.ensure_future(ticker())
    r.start()
    try:
        await asyncio.wait_for(r.synced.wait(), 30)
        assert len(seen_ticks) == n
        assert len(set(seen_ticks)) >= 3  # the ticker ran between the chunks of events
        assert len(gc_during) == -(-n // 400) and not any(gc_during)
        assert gc.isenabled()
    finally:
        t.cancel()
        del kube.list
        await r.stop()


async def test_watch_events_follow_the_list(emu, kube):
    emu.put(*SVC, svc("a"))
    rec = Recorder()
    r = Reflector(kube, kinds.SERVICES, on_event=rec)
    r.start()
    try:
        await asyncio.wait_for(r.synced.wait(), 10)
        await wait_until(lambda: r.up, what="watch open")
        emu.put(*SVC, svc("b"))
        emu.put(*SVC, svc("a", port=81))
        info = emu.resource(*SVC)
        emu.store.delete(info, "default", "b")
        await wait_until(lambda: len(rec.events) == 4, what="4 events")
        assert rec.names() == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
        assert set(r.cache) == {("default", "a")}
        assert r.cache[("default", "a")]["spec"]["ports"] == [{"port": 81}]
        assert r.lists == 1
    finally:
        await r.stop()


async def test_410_relists_and_emits_only_real_changes(emu, kube):
    for n in "abcd":
        emu.put(*SVC, svc(n))
    rec = Recorder()
    r = Reflector(kube, kinds.SERVICES, on_event=rec, backoff=fast_backoff())
    r.start()
    try:
        await asyncio.wait_for(r.synced.wait(), 10)
        await wait_until(lambda: r.up, what="watch open")
        rec.events.clear()
        info = emu.resource(*SVC)
        # while the watch is cut: a changed, b deleted, e created, c touched to the same content;
        # then the history is compacted so the resume from the old version is 410 Gone
        emu.store.close_watches()
        emu.put(*SVC, svc("a", port=8080))
        emu.store.delete(info, "default", "b")
        emu.put(*SVC, svc("e"))
        emu.put(*SVC, svc("c"))
        emu.store.compact()
        await wait_until(lambda: r.relists == 1 and r.up, what="re-list")
        assert sorted(rec.names()) == [("ADDED", "e"), ("DELETED", "b"), ("MODIFIED", "a")]
        assert set(n for _, n in r.cache) == {"a", "c", "d", "e"}
        assert r.resource_version == str(emu.store.rv)
    finally:
        await r.stop()


async def test_bookmarks_move_the_resource_version(emu, kube):
    emu.put(*SVC, svc("a"))
    r = Reflector(kube, kinds.SERVICES)
    r.start()
    try:
        await asyncio.wait_for(r.synced.wait(), 10)
        await wait_until(lambda: r.up and emu.store.watchers.get("/services"), what="watch open")
        emu.put("v1", "nodes", {"metadata": {"name": "n1"}})   # another kind moves the counter
        assert r.resource_version != str(emu.store.rv)
        emu.store.bookmark()
        await wait_until(lambda: r.resource_version == str(emu.store.rv), what="bookmark")
    finally:
        await r.stop()


async def test_stream_end_resumes_without_a_list(emu, kube):
    rec = Recorder()
    r = Reflector(kube, kinds.SERVICES, on_event=rec, watch_timeout=(1, 1))
    r.start()
    try:
        await asyncio.wait_for(r.synced.wait(), 10)
        first = emu.store.requests["watch"]
        await wait_until(lambda: emu.store.requests["watch"] > first, what="second watch")
        emu.put(*SVC, svc("late"))
        await wait_until(lambda: rec.names() == [("ADDED", "late")], what="event")
        assert r.lists == 1
    finally:
        await r.stop()


async def test_api_server_away_keeps_cache_and_emits_nothing(tmp_path):
    from speakerd.kube.config import load_client
    from tests.kube.conftest import write_kubeconfig
    state = tmp_path / "state.json"
    wm = WatchMetrics()
    rec = Recorder()
    e1 = Emulator(state_file=state)
    await e1.start()
    port = e1.port
    for n in "abc":
        e1.put(*SVC, svc(n))
    client = await load_client(write_kubeconfig(tmp_path / "kc", e1.url))
    r = Reflector(client, kinds.SERVICES, on_event=rec, on_state=wm.update, backoff=fast_backoff())
    r.start()
    try:
        await asyncio.wait_for(r.synced.wait(), 10)
        await wait_until(lambda: r.up, what="up")
        assert wm.states()["services"]["up"] is True
        await e1.stop()                                       # state written, server gone
        await wait_until(lambda: r.backoff.failures >= 3, what="several failed reconnects")
        assert not r.up and wm.states()["services"]["up"] is False
        assert len(r.cache) == 3 and len(rec.events) == 3     # nothing emitted while away
        e2 = Emulator(port=port, state_file=state)            # same objects, same versions
        await e2.start()
        try:
            await wait_until(lambda: r.up, what="up again")
            e2.put(*SVC, svc("d"))
            await wait_until(lambda: len(rec.events) == 4, what="new event")
            assert rec.names()[3:] == [("ADDED", "d")]
            samples = {m.name: m.samples for m in wm.collect()}
            assert [s.value for s in samples["speakerd_k8s_watch_up"]] == [1.0]
        finally:
            await r.stop()
            await e2.stop()
    finally:
        await r.stop()
        await client.close()


async def test_label_and_field_selectors_are_sent_to_the_server(emu, kube):
    emu.put(*SVC, svc("a", labels={"app": "web"}))
    emu.put(*SVC, svc("b", labels={"app": "db"}))
    emu.put(*SVC, svc("a", ns="other", labels={"app": "web"}))
    rec = Recorder()
    r = Reflector(kube, kinds.SERVICES, on_event=rec, label_selector="app=web",
                  field_selector="metadata.namespace=default")
    r.start()
    try:
        await asyncio.wait_for(r.synced.wait(), 10)
        await wait_until(lambda: r.up, what="watch open")
        assert list(r.cache) == [("default", "a")]
        emu.put(*SVC, svc("a", labels={"app": "db"}))      # leaves the selection
        await wait_until(lambda: len(rec.events) == 2, what="leave")
        assert rec.names() == [("ADDED", "a"), ("DELETED", "a")]
        assert r.cache == {}
    finally:
        await r.stop()


async def test_namespaced_crd_kinds_and_versions(emu, kube):
    emu.put("metallb.io/v1beta2", "bgppeers", {"metadata": {"name": "p", "namespace": "metallb-system"},
                                                "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1"}})
    for kind, version in ((kinds.BGPPEERS, "metallb.io/v1beta2"), (kinds.BGPPEERS_V1BETA1, "metallb.io/v1beta1")):
        r = Reflector(kube, kind, namespace="metallb-system")
        r.start()
        try:
            await asyncio.wait_for(r.synced.wait(), 10)
            assert r.get("metallb-system", "p")["apiVersion"] == version
        finally:
            await r.stop()


async def test_client_errors_are_api_errors(emu, kube):
    with pytest.raises(ApiError) as ei:
        await kube.get(kinds.SERVICES, "default", "nope")
    assert ei.value.not_found and ei.value.body["reason"] == "NotFound"


def test_backoff_grows_with_jitter_caps_and_resets():
    seq = iter([0.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    b = Backoff(initial=0.8, maximum=30.0, rng=lambda: next(seq))
    assert b.next() == pytest.approx(0.8)
    assert b.next() == pytest.approx(3.2)       # 1.6 * (1 + 1.0)
    assert b.next() == pytest.approx(4.8)       # 3.2 * 1.5
    for _ in range(6):
        b.next()
    assert b.next() == pytest.approx(30.0)
    b.reset()
    assert b.failures == 0


async def test_stopped_while_handing_on_a_list_the_next_list_hands_on_the_rest(emu, kube):
    """Stopped between two chunks of a list's events (the controller restarts its reflectors when
    it starts leading), the cache holds only what was handed on: the next list hands on the rest,
    and the collector is on again."""
    import gc
    n = 3 * Reflector.EMIT_CHUNK
    for i in range(n):
        emu.put(*SVC, svc(f"s{i}"))
    seen: set[str] = set()
    first_chunk = asyncio.Event()

    def on_event(etype, obj):
        seen.add(obj["metadata"]["name"])
        if len(seen) == Reflector.EMIT_CHUNK and not first_chunk.is_set():
            first_chunk.set()
            r._task.cancel()  # lands at the return to the loop after this chunk, as a stop() then would
    r = Reflector(kube, kinds.SERVICES, on_event=on_event, page_size=500)
    r.start()
    try:
        await asyncio.wait_for(first_chunk.wait(), 30)
        await r.stop()
        assert len(seen) < n and not r.synced.is_set()
        assert gc.isenabled()
        assert len(r.cache) == len(seen)
        r.start()
        await asyncio.wait_for(r.synced.wait(), 30)
        assert len(seen) == n
        assert len(r.cache) == n
    finally:
        await r.stop()
