"""Endpoint-weighted ECMP: the opt-in, the planner's per-Service weights, the community in the
UPDATE, and re-announcement through the damper (file and Kubernetes mode).

Interop with FRR (weights installed by zebra): tests/interop/test_weighted_ecmp.py.
"""
from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import yaml
from hypothesis import given, settings, strategies as st

from speakerd.commands.plan import _attrs_text, read_and_plan, to_json
from speakerd.kubespeaker import KubeSpeaker
from speakerd.policy.fileannounce import FileAnnouncer, plan_store
from speakerd.policy.linkbw import BYTES_PER_ENDPOINT, Damper, decode_link_bandwidth
from speakerd.policy.planner import Planner
from speakerd.policy.types import RouteAttrs, route_attrs
from speakerd.rib.adj_out import AdjRibOut
from speakerd.speaker import Speaker
from speakerd.store import Changes, Event, Store
from speakerd.wire.capabilities import DEFAULT_CONTEXT
from speakerd.wire.framing import decode
from speakerd.wire.nlri import str_to_key

ME, OTHER = "node-a", "node-b"
ANNOTATION = "speakerd.io/link-bandwidth"


def metallb(weighted: bool = True, aggregation: int = 32, plain_ad: bool = False) -> list[dict]:
    ad = {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
          "metadata": {"name": "ad", "namespace": "m"}, "spec": {"aggregationLength": aggregation}}
    if weighted:
        ad["metadata"]["annotations"] = {ANNOTATION: "endpoints"}
    objs = [{"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "tor", "namespace": "m"},
             "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "127.0.0.2", "peerPort": 1}},
            {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "pool", "namespace": "m"},
             "spec": {"addresses": ["10.0.0.0/28"]}}, ad]
    if plain_ad:  # a second advertisement of the same pool without the opt-in
        objs.append({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
                     "metadata": {"name": "plain", "namespace": "m"}, "spec": {"aggregationLength": aggregation}})
    return objs


def service(name: str, ip: str, policy: str = "Local") -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "d", "uid": f"uid-{name}",
                         "annotations": {"metallb.universe.tf/loadBalancerIPs": ip}},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy,
                     "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}],
                     "selector": {"app": name}},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}


def endpoint_slice(svc: str, ready: dict[str, int], name: str | None = None, terminating: dict | None = None) -> dict:
    eps = []
    for node, n in sorted(ready.items()):
        eps += [{"addresses": [f"10.244.{len(eps)}.5"], "nodeName": node,
                 "conditions": {"ready": True, "serving": True, "terminating": False}} for _ in range(n)]
    for node, n in sorted((terminating or {}).items()):  # still serving while they terminate
        eps += [{"addresses": [f"10.245.{len(eps)}.5"], "nodeName": node,
                 "conditions": {"ready": False, "serving": True, "terminating": True}} for _ in range(n)]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{svc}-x1", "namespace": "d", "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "endpoints": eps, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def weights(objs: list[dict], node: str = ME) -> dict[str, int | None]:
    """prefix -> weight of the route to `tor`, planned from scratch as `speakerd plan` does."""
    store = Store()
    store.apply([Event("ADDED", o, "f.yaml") for o in objs])
    assert not store.errors(), store.errors()
    plan, _ = plan_store(store, node)
    return {r.prefix: r.attrs.weight for r in plan.routes["tor"].values()}


def key(prefix: str) -> tuple[int, int]:
    return str_to_key(prefix)


# --- the opt-in ---------------------------------------------------------------------------------

def test_the_annotation_opts_in_and_a_wrong_value_is_refused_by_name():
    store = Store()
    store.apply([Event("ADDED", o, "f.yaml") for o in metallb()])
    assert store.config().advertisements["ad"].weight_by_endpoints
    store = Store()
    store.apply([Event("ADDED", o, "f.yaml") for o in metallb(weighted=False)])
    assert not store.config().advertisements["ad"].weight_by_endpoints
    bad = metallb()
    bad[2]["metadata"]["annotations"][ANNOTATION] = "pods"
    store = Store()
    store.apply([Event("ADDED", o, "f.yaml") for o in bad])
    [err] = [str(i) for i in store.metallb_errors]
    assert f"metadata.annotations[{ANNOTATION}]" in err and "'pods'" in err and "endpoints" in err


# --- the planner --------------------------------------------------------------------------------

def test_a_local_service_weighs_its_route_by_this_nodes_ready_endpoints():
    objs = metallb() + [service("web", "10.0.0.1"), endpoint_slice("web", {ME: 1, OTHER: 3})]
    assert weights(objs, ME) == {"10.0.0.1/32": 1}
    assert weights(objs, OTHER) == {"10.0.0.1/32": 3}
    # slices of one Service add up; not-ready-and-not-serving endpoints do not count
    two = objs + [endpoint_slice("web", {OTHER: 2}, name="web-x2")]
    assert weights(two, OTHER) == {"10.0.0.1/32": 5}


def test_a_dual_stack_services_pods_count_once_though_both_families_list_them():
    objs = metallb() + [service("web", "10.0.0.1"), endpoint_slice("web", {ME: 3, OTHER: 1})]
    v6 = endpoint_slice("web", {ME: 3, OTHER: 1}, name="web-v6")
    v6["addressType"] = "IPv6"
    assert weights(objs + [v6], ME) == {"10.0.0.1/32": 3}
    assert weights(objs + [v6], OTHER) == {"10.0.0.1/32": 1}
    # two slices of one family still add up beside the other family's
    more = endpoint_slice("web", {ME: 2}, name="web-x2")
    assert weights(objs + [v6, more], ME) == {"10.0.0.1/32": 5}


def test_without_the_opt_in_or_with_cluster_policy_routes_are_metallbs():
    assert weights(metallb(weighted=False) + [service("web", "10.0.0.1"), endpoint_slice("web", {ME: 4})]) == {
        "10.0.0.1/32": None}
    assert weights(metallb() + [service("web", "10.0.0.1", "Cluster"), endpoint_slice("web", {ME: 4})]) == {
        "10.0.0.1/32": None}  # every node forwards to every endpoint: equal shares are right
    # no endpoint data in the files for it: announced as before, and nothing to weigh by
    assert weights(metallb() + [service("web", "10.0.0.1")]) == {"10.0.0.1/32": None}


def test_a_prefix_shared_by_services_sums_them_unless_one_cannot_be_weighed():
    objs = metallb(aggregation=28) + [service("a", "10.0.0.1"), service("b", "10.0.0.2"),
                                      endpoint_slice("a", {ME: 2}), endpoint_slice("b", {ME: 3})]
    assert weights(objs) == {"10.0.0.0/28": 5}
    mixed = objs + [service("c", "10.0.0.3", "Cluster"), endpoint_slice("c", {ME: 1})]
    assert weights(mixed) == {"10.0.0.0/28": None}
    # an advertisement of the same prefix without the opt-in: no community
    plain = metallb(aggregation=28, plain_ad=True) + objs[3:]
    assert weights(plain) == {"10.0.0.0/28": None}


def test_a_local_service_announced_only_for_terminating_endpoints_counts_one():
    objs = metallb() + [service("web", "10.0.0.1"), endpoint_slice("web", {OTHER: 2}, terminating={ME: 2})]
    assert weights(objs, ME) == {"10.0.0.1/32": 1}


def _daemon(objs):
    store = Store()
    store.apply([Event("ADDED", o, "f.yaml") for o in objs])
    fa = FileAnnouncer(store, ME)
    fa.apply(Changes(services={k: (None, s) for k, s in store.services.items()},
                     endpoint_slices={k: (None, s) for k, s in store.endpoint_slices.items()}))
    planner = Planner(ME, fa.withheld)
    planner.endpoints = fa.announcer.endpoints
    planner.rebuild(store.config())
    return store, fa, planner


def test_an_endpoint_slice_change_replans_only_its_service_and_equals_a_fresh_plan():
    objs = metallb() + [service(f"s{i}", f"10.0.0.{i + 1}") for i in range(4)]
    objs += [endpoint_slice(f"s{i}", {ME: 1}) for i in range(4)]
    store, fa, planner = _daemon(objs)
    assert set(route_attrs(planner.plan().routes["tor"]).values()) == {RouteAttrs(weight=1)}
    scaled = endpoint_slice("s2", {ME: 4, OTHER: 1})
    ch = store.apply([Event("MODIFIED", scaled, "f.yaml")])
    keys, _ = fa.apply(ch)
    assert keys == set() and ch.reweighed == {"d/s2"}  # the rules' answer is the same; the weight is not
    deltas = planner.services_changed(store.config(), keys | ch.reweighed)
    assert deltas["tor"] == {key("10.0.0.3/32"): RouteAttrs(weight=4)}
    fresh = weights(objs[:-4] + [endpoint_slice(f"s{i}", {ME: 1}) for i in (0, 1, 3)] + [scaled])
    assert {r.prefix: r.attrs.weight for r in planner.plan().routes["tor"].values()} == fresh
    # another node's endpoints moving changes nothing here
    ch = store.apply([Event("MODIFIED", endpoint_slice("s2", {ME: 4, OTHER: 7}), "f.yaml")])
    fa.apply(ch)
    assert ch.reweighed == set()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 2), st.booleans()),
                min_size=1, max_size=12))
def test_incremental_weights_equal_a_fresh_plan_after_any_sequence(steps):
    """Services s0 and s1 share 10.0.0.0/30, s2 has 10.0.0.4/30; each step sets one Service's
    policy and its ready endpoints here and elsewhere. The daemon's path (store -> announce
    rules -> services_changed of the changed and reweighed keys) equals a fresh plan."""
    ips = ("10.0.0.1", "10.0.0.2", "10.0.0.5")
    objs = metallb(aggregation=30) + [service(f"s{i}", ip) for i, ip in enumerate(ips)]
    objs += [endpoint_slice(f"s{i}", {ME: 1}) for i in range(3)]
    store, fa, planner = _daemon(objs)
    for i, mine, other, local in steps:
        events = [Event("MODIFIED", endpoint_slice(f"s{i}", {ME: mine, OTHER: other}), "f.yaml"),
                  Event("MODIFIED", service(f"s{i}", ips[i], "Local" if local else "Cluster"), "f.yaml")]
        ch = store.apply(events)
        keys, _ = fa.apply(ch)
        planner.services_changed(store.config(), keys | ch.reweighed)
        fresh, _ = plan_store(store, ME)
        assert route_attrs(planner.plan().routes["tor"]) == route_attrs(fresh.routes["tor"])


def test_plan_shows_weight_and_bandwidth(tmp_path):
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "all.yaml").write_text(yaml.safe_dump_all(metallb() + [service("web", "10.0.0.1"),
                                                                endpoint_slice("web", {ME: 3})]))
    p = read_and_plan([str(d)], ME, {})
    [route] = p.plan.routes["tor"].values()
    assert _attrs_text(route, ibgp=False) == "weight 3 (link-bandwidth 3 Mbit/s)"
    [row] = to_json(p.plan, p.config, ME, p.withheld)["peers"]["tor"]["routes"]
    assert row["weight"] == 3 and row["link_bandwidth"] == 3 * BYTES_PER_ENDPOINT


# --- the UPDATE ---------------------------------------------------------------------------------

def _update(ra: RouteAttrs, local_asn: int = 64512):
    out = AdjRibOut(local_asn, ibgp=False)
    out.connected("192.0.2.1")
    out.set_wanted({key("10.0.0.1/32"): ra})
    [msg] = out.diff(DEFAULT_CONTEXT)
    return msg, decode(msg, DEFAULT_CONTEXT)


def test_the_update_carries_the_link_bandwidth_community_bytes():
    msg, upd = _update(RouteAttrs(weight=3))
    want = bytes([0x40, 0x04]) + (64512).to_bytes(2, "big") + struct.pack("!f", 3 * BYTES_PER_ENDPOINT)
    # EXTENDED_COMMUNITIES: optional transitive (0xC0), type 16, length 8, the community
    assert bytes([0xC0, 16, 8]) + want in msg
    [ec] = upd.attrs.extended_communities
    assert ec.to_bytes(8, "big") == want and decode_link_bandwidth(ec) == (64512, 375_000.0)
    # a four-octet local AS goes as AS_TRANS, the bandwidth unchanged
    _, upd = _update(RouteAttrs(weight=3), local_asn=4_200_000_000)
    assert decode_link_bandwidth(upd.attrs.extended_communities[0]) == (23456, 375_000.0)


def test_a_route_without_weight_has_no_extended_communities_attribute():
    msg, upd = _update(RouteAttrs())
    assert upd.attrs.extended_communities == () and bytes([0xC0, 16]) not in msg


# --- damping at the daemon's edge ---------------------------------------------------------------

def _files(tmp_path: Path, ready: int) -> str:
    d = tmp_path / "cfg"
    d.mkdir(exist_ok=True)
    (d / "m.yaml").write_text(yaml.safe_dump_all(metallb() + [service("web", "10.0.0.1"), service("api", "10.0.0.2")]))
    (d / "eps.yaml").write_text(yaml.safe_dump_all([endpoint_slice("web", {ME: ready}),
                                                    endpoint_slice("api", {ME: 1})]))
    return str(d)


def _weights_sent(sp: Speaker) -> dict[str, int | None]:
    wanted = sp.peers["tor"].peer.wanted_routes
    return {p: wanted[key(p)].weight for p in ("10.0.0.1/32", "10.0.0.2/32") if key(p) in wanted}


async def test_weight_changes_go_through_the_damper_and_the_newest_goes_out_when_it_ends(tmp_path):
    d = _files(tmp_path, 1)
    sp = Speaker([d], ME)
    sp.damper = Damper(3600.0)  # an interval the test cannot outlive: nothing is released by time
    await sp.start()
    try:
        assert _weights_sent(sp) == {"10.0.0.1/32": 1, "10.0.0.2/32": 1}
        _files(tmp_path, 2)
        await sp.reload("test")
        assert _weights_sent(sp)["10.0.0.1/32"] == 2  # the first change after a quiet interval: at once
        _files(tmp_path, 5)
        await sp.reload("test")
        _files(tmp_path, 6)
        await sp.reload("test")
        assert _weights_sent(sp)["10.0.0.1/32"] == 2  # held: at most one per interval
        assert sp.plan.routes["tor"][key("10.0.0.1/32")].attrs.weight == 6  # the plan already says 6
        timer = sp._damper_timer
        assert timer is not None and timer.when() == sp.damper.next_deadline()
        assert sp._release_damped(now=timer.when()) == 1
        assert _weights_sent(sp) == {"10.0.0.1/32": 6, "10.0.0.2/32": 1}  # the newest; the other untouched
        assert sp._damper_timer is None  # nothing held any more

        # a withdrawal is never held: the last local endpoint goes, the route goes at once
        (Path(d) / "eps.yaml").write_text(yaml.safe_dump_all([endpoint_slice("web", {OTHER: 1}),
                                                              endpoint_slice("api", {ME: 1})]))
        await sp.reload("test")
        assert _weights_sent(sp) == {"10.0.0.2/32": 1}
    finally:
        await sp.stop()


async def test_the_damper_timer_releases_the_held_weight_on_the_event_loop(tmp_path):
    d = _files(tmp_path, 1)
    sp = Speaker([d], ME)
    sp.damper = Damper(3600.0)  # held for sure while the reloads run
    released = asyncio.Event()
    release = sp._release_damped

    def spy(now=None):
        n = release(now)
        released.set()
        return n
    sp._release_damped = spy
    await sp.start()
    try:
        for n in (2, 3, 4):
            _files(tmp_path, n)
            await sp.reload("test")
        assert _weights_sent(sp)["10.0.0.1/32"] == 2 and sp.damper.next_deadline() is not None
        sp.damper.interval = 0.01  # the interval ends now: the armed timer moves earlier and fires
        sp._arm_damper()
        await asyncio.wait_for(released.wait(), 30)
        assert _weights_sent(sp)["10.0.0.1/32"] == 4 and sp.damper.next_deadline() is None
    finally:
        await sp.stop()


def _kube_events(ready: int, weighted: bool = True) -> list[Event]:
    return [Event("ADDED", o, "api") for o in metallb(weighted) + [service("web", "10.0.0.1")]] + [
        Event("MODIFIED", endpoint_slice("web", {ME: ready, OTHER: 2}), "api")]


async def test_kubernetes_mode_reweighs_on_an_endpoint_slice_event():
    sp = KubeSpeaker(ME, namespace="m")
    sp.damper = Damper(3600.0)
    sp.feed(_kube_events(1))
    await sp.start()
    try:
        assert _weights_sent(sp) == {"10.0.0.1/32": 1}
        # only the slice changes: the announce rules' answer stays, the weight follows
        await sp.apply_batch([Event("MODIFIED", endpoint_slice("web", {ME: 3, OTHER: 2}), "api")])
        assert _weights_sent(sp) == {"10.0.0.1/32": 3}
        await sp.apply_batch([Event("MODIFIED", endpoint_slice("web", {ME: 4, OTHER: 2}), "api")])
        assert _weights_sent(sp) == {"10.0.0.1/32": 3}  # held by the damper
        assert sp._release_damped(now=sp.damper.next_deadline()) == 1
        assert _weights_sent(sp) == {"10.0.0.1/32": 4}
    finally:
        await sp.stop()


async def test_kubernetes_mode_without_the_opt_in_sends_no_weight_and_replans_nothing_on_scale():
    sp = KubeSpeaker(ME, namespace="m")
    sp.feed(_kube_events(1, weighted=False))
    await sp.start()
    try:
        plan_before = sp.plan
        await sp.apply_batch([Event("MODIFIED", endpoint_slice("web", {ME: 3, OTHER: 2}), "api")])
        assert _weights_sent(sp) == {"10.0.0.1/32": None}
        assert sp.plan is plan_before  # no re-plan: MetalLB's behaviour and cost
    finally:
        await sp.stop()

