"""The re-list reconcile is exact: its events turn the old cache into the new one, and objects that
did not change (whatever their resourceVersion) produce none."""
from __future__ import annotations

from hypothesis import given, strategies as st

from speakerd.kube.diff import apply_event, key_of, reconcile, same, slim

names = st.sampled_from(["a", "b", "c", "d", "e", "f"])
namespaces = st.sampled_from(["", "default", "x"])


@st.composite
def objects(draw):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": draw(names), "namespace": draw(namespaces),
                         "resourceVersion": str(draw(st.integers(1, 50))),
                         "labels": draw(st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["1", "2"]),
                                                        max_size=2))},
            "spec": {"port": draw(st.integers(1, 3))}}


def as_cache(objs):
    return {key_of(o): o for o in objs}


@given(st.lists(objects(), max_size=12), st.lists(objects(), max_size=12))
def test_events_replay_old_cache_into_new(old_objs, fresh_objs):
    cache = as_cache(old_objs)
    fresh = list(as_cache(fresh_objs).values())   # a list has each key once
    before = dict(cache)
    new, events = reconcile(cache, fresh)
    assert cache == before                         # input untouched
    assert new == as_cache(fresh)
    replay = dict(cache)
    for etype, obj in events:
        k = key_of(obj)
        if etype == "ADDED":
            assert k not in replay
            replay[k] = obj
        elif etype == "MODIFIED":
            assert k in replay and not same(replay[k], obj)
            replay[k] = obj
        else:
            assert etype == "DELETED" and replay[k] is obj
            del replay[k]
    assert set(replay) == set(new)
    for k in new:
        assert same(replay[k], new[k])
    keys = [key_of(o) for _, o in events]
    assert len(keys) == len(set(keys))             # one event per changed key at most


@given(st.lists(objects(), max_size=12), st.integers(100, 200))
def test_new_resource_versions_alone_are_no_change(objs, bump):
    cache = as_cache(objs)
    fresh = []
    for o in cache.values():
        md = {**o["metadata"], "resourceVersion": str(int(o["metadata"]["resourceVersion"]) + bump),
              "managedFields": [{"manager": "x"}]}
        fresh.append({**o, "metadata": md})
    new, events = reconcile(cache, fresh)
    assert events == []
    assert all(new[key_of(o)] is o for o in fresh)  # the cache now holds the fresh versions


@given(st.lists(st.tuples(st.sampled_from(["ADDED", "MODIFIED", "DELETED"]), objects()), max_size=30))
def test_watch_events_keep_consumers_consistent(stream):
    cache, seen = {}, {}
    for etype, obj in stream:
        out = apply_event(cache, etype, obj)
        if out is None:
            continue
        t, o = out
        k = key_of(o)
        if t == "ADDED":
            assert k not in seen
            seen[k] = o
        elif t == "MODIFIED":
            assert k in seen
            seen[k] = o
        else:
            assert k in seen
            del seen[k]
    assert set(seen) == set(cache)


def test_slim_drops_managed_fields_and_last_applied_only():
    obj = {"metadata": {"name": "a", "managedFields": [{}], "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": "{}", "metallb.io/address-pool": "p"}}, "spec": {}}
    out = slim(obj)
    assert out == {"metadata": {"name": "a", "annotations": {"metallb.io/address-pool": "p"}}, "spec": {}}
    assert "managedFields" in obj["metadata"]   # the input is not changed
    only = slim({"metadata": {"name": "a", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}})
    assert only == {"metadata": {"name": "a"}}
