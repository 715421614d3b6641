"""File mode's announce rules: ``speakerd plan`` and the daemon's planner on files that hold
EndpointSlices and Nodes.

Each rule of MetalLB's speaker (speakerd.policy.announce) is exercised through the
files; a Service the files hold no EndpointSlice for keeps being announced; the
addresses of Services without their own are the same on every node whatever the
node's verdicts; and the incremental path (store -> FileAnnouncer -> Planner)
equals planning the same files from scratch.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from hypothesis import given, settings, strategies as st

from speakerd.commands.plan import read_and_plan, to_json
from speakerd.policy.announce import EXCLUDE_LABEL
from speakerd.policy.fileannounce import FileAnnouncer, plan_store
from speakerd.policy.planner import Planner
from speakerd.policy.types import route_attrs
from speakerd.store import Event, Store

ROOT = Path(__file__).resolve().parents[2]
ME, OTHER = "node-a", "node-b"

METALLB = [
    {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "tor", "namespace": "m"},
     "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "127.0.0.2"}},
    {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "pool", "namespace": "m"},
     "spec": {"addresses": ["10.0.0.0/28"]}},
    {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "ad", "namespace": "m"},
     "spec": {}},
]


def service(name: str, ip: str | None = None, policy: str = "Cluster") -> dict:
    ann = {"metallb.universe.tf/loadBalancerIPs": ip} if ip else {}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "d", "uid": f"uid-{name}", "annotations": ann},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy,
                     "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}],
                     "selector": {"app": name}}}


def endpoint_slice(svc: str, nodes: list[str], name: str | None = None, ready: bool = True,
                   serving: bool | None = None) -> dict:
    serving = ready if serving is None else serving
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{svc}-x1", "namespace": "d",
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [f"10.244.{i}.5"], "nodeName": n,
                           "conditions": {"ready": ready, "serving": serving, "terminating": not ready}}
                          for i, n in enumerate(nodes)],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def node(name: str, unavailable: bool = False, excluded: bool = False) -> dict:
    labels = {"kubernetes.io/hostname": name}
    if excluded:
        labels[EXCLUDE_LABEL] = ""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True"},
                                      {"type": "NetworkUnavailable", "status": "True" if unavailable else "False"}]}}


def write(tmp_path: Path, objs: list[dict]) -> str:
    d = tmp_path / "cfg"
    d.mkdir(exist_ok=True)
    (d / "all.yaml").write_text(yaml.safe_dump_all(METALLB + objs))
    return str(d)


def planned(tmp_path, objs, node_name=ME):
    p = read_and_plan([write(tmp_path, objs)], node_name, {})
    assert not p.errors, p.errors
    prefixes = {r.prefix for t in p.plan.routes.values() for r in t.values()}
    return prefixes, {k: v.reason for k, v in p.withheld.items()}, p


# --- each rule, through the files ---------------------------------------------------------------

def test_local_policy_needs_an_endpoint_on_this_node(tmp_path):
    objs = [service("loc", "10.0.0.1", "Local"), endpoint_slice("loc", [OTHER])]
    prefixes, why, _ = planned(tmp_path, objs)
    assert prefixes == set() and why == {"d/loc": "noLocalEndpoints"}
    prefixes, why, _ = planned(tmp_path, objs, OTHER)  # the node that has it
    assert prefixes == {"10.0.0.1/32"} and why == {}


def test_a_terminating_endpoint_that_still_serves_counts(tmp_path):
    objs = [service("loc", "10.0.0.1", "Local"), endpoint_slice("loc", [ME], ready=False, serving=True)]
    assert planned(tmp_path, objs)[0] == {"10.0.0.1/32"}
    objs = [service("loc", "10.0.0.1", "Local"), endpoint_slice("loc", [ME], ready=False, serving=False)]
    assert planned(tmp_path, objs)[1] == {"d/loc": "noLocalEndpoints"}


def test_cluster_policy_needs_a_ready_endpoint_somewhere(tmp_path):
    ok = [service("web", "10.0.0.2"), endpoint_slice("web", [OTHER])]
    assert planned(tmp_path, ok)[0] == {"10.0.0.2/32"}
    unready = [service("web", "10.0.0.2"), endpoint_slice("web", [OTHER], ready=False)]
    assert planned(tmp_path, unready)[1] == {"d/web": "noEndpoints"}
    empty = [service("web", "10.0.0.2"), endpoint_slice("web", [])]  # the slice says: no endpoints
    assert planned(tmp_path, empty)[1] == {"d/web": "noEndpoints"}


def test_a_service_without_any_endpoint_slice_in_the_files_is_announced(tmp_path):
    objs = [service("plain", "10.0.0.3", "Local"), service("loc", "10.0.0.1", "Local"),
            endpoint_slice("loc", [OTHER])]
    prefixes, why, _ = planned(tmp_path, objs)
    assert prefixes == {"10.0.0.3/32"} and why == {"d/loc": "noLocalEndpoints"}


def test_node_conditions_and_exclusion_label_of_this_node(tmp_path):
    objs = [service("web", "10.0.0.2"), service("plain", "10.0.0.3"), endpoint_slice("web", [ME])]
    prefixes, why, _ = planned(tmp_path, objs + [node(ME, unavailable=True)])
    assert prefixes == set() and why == {"d/web": "nodeNetworkUnavailable", "d/plain": "nodeNetworkUnavailable"}
    prefixes, why, _ = planned(tmp_path, objs + [node(ME, excluded=True)])
    assert prefixes == set() and set(why.values()) == {"nodeLabeledExcludeBalancers"}
    # another node's Node is not this node's
    prefixes, why, _ = planned(tmp_path, objs + [node(OTHER, unavailable=True, excluded=True), node(ME)])
    assert prefixes == {"10.0.0.2/32", "10.0.0.3/32"} and why == {}


def test_allocation_sees_every_service_whatever_this_nodes_verdicts(tmp_path):
    """Services without an address get the same one on every node, although each node routes others."""
    objs = [service(f"s{i}", policy="Local") for i in range(6)]
    objs += [endpoint_slice(f"s{i}", [ME if i % 2 else OTHER]) for i in range(6)]
    a_pref, a_why, a = planned(tmp_path, objs, ME)
    b_pref, b_why, b = planned(tmp_path, objs, OTHER)
    assert a.plan.allocations == b.plan.allocations and len(a.plan.allocations) == 6
    assert set(a_why) == {"d/s0", "d/s2", "d/s4"} and set(b_why) == {"d/s1", "d/s3", "d/s5"}
    assert a_pref == {f"{a.plan.allocations[f'd/s{i}'][0]}/32" for i in (1, 3, 5)}
    assert b_pref == {f"{a.plan.allocations[f'd/s{i}'][0]}/32" for i in (0, 2, 4)}
    # and they equal the allocation with no endpoint data at all (every Service announced)
    _, why, none = planned(tmp_path, [service(f"s{i}", policy="Local") for i in range(6)])
    assert why == {} and none.plan.allocations == a.plan.allocations


def test_plan_command_says_why_in_text_and_json(tmp_path):
    d = write(tmp_path, [service("loc", "10.0.0.1", "Local"), endpoint_slice("loc", [OTHER]),
                         service("web", "10.0.0.2"), endpoint_slice("web", [ME])])
    run = [sys.executable, "-m", "speakerd.cli", "plan", "-c", d, "--node", ME]
    text = subprocess.run(run, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "service d/loc: not announced from this node: noLocalEndpoints: externalTrafficPolicy is Local" in text
    assert "d/web → 10.0.0.2" in text and "d/web: not announced" not in text
    data = json.loads(subprocess.run(run + ["--json"], capture_output=True, text=True, cwd=ROOT, check=True).stdout)
    assert data["not_announced"] == {"d/loc": {"reason": "noLocalEndpoints", "message": data["not_announced"]
                                               ["d/loc"]["message"]}}
    assert "no endpoint on this node" in data["not_announced"]["d/loc"]["message"]
    assert [r["prefix"] for r in data["peers"]["tor"]["routes"]] == ["10.0.0.2/32"]


# --- incremental: the daemon's path ---------------------------------------------------------------

def _fresh(objs: list[dict]):
    store = Store()
    store.apply([Event("ADDED", o, "f.yaml") for o in METALLB + objs])
    return store


def _daemon(store):
    fa = FileAnnouncer(store, ME)
    fa.apply(_all_added(store))
    planner = Planner(ME, fa.withheld)
    planner.rebuild(store.config())
    return fa, planner


def _all_added(store):
    from speakerd.store import Changes
    return Changes(services={k: (None, s) for k, s in store.services.items()},
                   endpoint_slices={k: (None, s) for k, s in store.endpoint_slices.items()},
                   nodes={k: (None, n) for k, n in store.nodes.items()})


def test_an_endpoint_slice_change_replans_only_its_service():
    objs = [service(f"s{i}", f"10.0.0.{i + 1}", "Local") for i in range(5)]
    objs += [endpoint_slice(f"s{i}", [ME]) for i in range(5)]
    store = _fresh(objs)
    fa, planner = _daemon(store)
    assert len(planner.plan().routes["tor"]) == 5
    ch = store.apply([Event("MODIFIED", endpoint_slice("s2", [OTHER]), "f.yaml")])
    keys, relabelled = fa.apply(ch)
    assert keys == {"d/s2"} and not relabelled
    deltas = planner.services_changed(store.config(), keys)
    assert {rk: a for rk, a in deltas["tor"].items()} == {(1, (0x0A000003 << 8) | 32): None}
    assert fa.verdict("d/s2").reason == "noLocalEndpoints"
    # a change the rules do not read (an endpoint's address) re-plans nothing
    moved = endpoint_slice("s3", [ME])
    moved["endpoints"][0]["addresses"] = ["10.244.9.9"]
    keys, _ = fa.apply(store.apply([Event("MODIFIED", moved, "f.yaml")]))
    assert keys == set()


def test_this_nodes_label_change_asks_for_a_rebuild():
    store = _fresh([service("web", "10.0.0.2"), node(ME)])
    fa, _ = _daemon(store)
    relabelled = node(ME)
    relabelled["metadata"]["labels"]["rack"] = "r1"
    assert fa.apply(store.apply([Event("MODIFIED", relabelled, "f.yaml")]))[1] is True
    assert fa.apply(store.apply([Event("MODIFIED", node(OTHER), "f.yaml")]))[1] is False


NAMES = ["a", "b", "c", "d"]
op = st.one_of(
    st.tuples(st.just("svc"), st.sampled_from(NAMES), st.sampled_from([None, "10.0.0.1", "10.0.0.9"]),
              st.sampled_from(["Cluster", "Local"])),
    st.tuples(st.just("delsvc"), st.sampled_from(NAMES)),
    st.tuples(st.just("eps"), st.sampled_from(NAMES), st.lists(st.sampled_from([ME, OTHER]), max_size=2),
              st.booleans()),
    st.tuples(st.just("deleps"), st.sampled_from(NAMES)),
    st.tuples(st.just("node"), st.sampled_from(["plain", "unavailable", "excluded", "gone"])),
)


def _event(o):
    kind = o[0]
    if kind == "svc":
        return Event("MODIFIED", service(o[1], o[2], o[3]), "f.yaml")
    if kind == "delsvc":
        return Event("DELETED", service(o[1]), "f.yaml")
    if kind == "eps":
        return Event("MODIFIED", endpoint_slice(o[1], o[2], ready=o[3]), "f.yaml")
    if kind == "deleps":
        return Event("DELETED", endpoint_slice(o[1], []), "f.yaml")
    if o[1] == "gone":
        return Event("DELETED", node(ME), "f.yaml")
    return Event("MODIFIED", node(ME, unavailable=o[1] == "unavailable", excluded=o[1] == "excluded"), "f.yaml")


def _flat(plan):
    return {name: {rk: (r.attrs, tuple(sorted(r.reasons, key=repr))) for rk, r in t.items()}
            for name, t in plan.routes.items()}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(op, min_size=1, max_size=3), max_size=12))
def test_incremental_file_mode_equals_plan_from_scratch(batches):
    store = _fresh([])
    fa, planner = _daemon(store)
    held = {name: dict(route_attrs(t)) for name, t in planner.plan().routes.items()}  # what the session has
    for batch in batches:
        ch = store.apply([_event(o) for o in batch])
        keys, relabelled = fa.apply(ch)
        config = store.config()
        deltas = planner.rebuild(config) if ch.metallb or relabelled else planner.services_changed(config, keys)
        for name, delta in deltas.items():
            for rk, attrs in delta.items():
                if attrs is None:
                    held[name].pop(rk, None)
                else:
                    held[name][rk] = attrs
        scratch, withheld = plan_store(store, ME)
        assert _flat(planner.plan()) == _flat(scratch)
        assert planner.allocations == scratch.allocations
        assert {k: v.reason for k, v in fa.withheld.items()} == {k: v.reason for k, v in withheld.items()}
        assert held == {n: dict(route_attrs(t)) for n, t in scratch.routes.items()}
        # allocation never depends on this node's verdicts: the same files planned for another node
        assert plan_store(store, OTHER)[0].allocations == scratch.allocations


def test_to_json_without_verdicts_keeps_its_shape():
    from speakerd.policy import plan
    store = _fresh([service("web", "10.0.0.2")])
    assert to_json(plan(store.config(), ME), store.config(), ME)["not_announced"] == {}
