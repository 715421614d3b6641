"""The planner by difference: after any sequence of object changes, the incremental
tables equal a from-scratch plan of the same store state."""
from __future__ import annotations

import random

import pytest

from speakerd.config import load_config
from speakerd.config.addr import parse_ip, parse_ips
from speakerd.config.model import Service
from hypothesis import given, settings, strategies as st

from speakerd.policy import plan
from speakerd.policy.allocate import allocate
from speakerd.policy.planner import Planner, RouteTable
from speakerd.policy.types import route_attrs
from speakerd.store import Event, Store

HEAD = """apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: p, namespace: m}}
spec: {{myASN: 64512, peerASN: 64513, peerAddress: 127.0.0.2}}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: a, namespace: m}}
spec: {{addresses: [10.0.0.0/24, "2001:db8::/120"]}}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: b, namespace: m}}
spec: {{addresses: [10.1.0.0/24]}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: ad, namespace: m}}
spec: {{communities: ["64512:1"]{agg}}}
"""


def svc(name, ip=None, pool=None, ns="default"):
    ann = []
    if ip:
        ann.append(f"    metallb.universe.tf/loadBalancerIPs: {ip}")
    if pool:
        ann.append(f"    metallb.universe.tf/address-pool: {pool}")
    annotations = ("  annotations:\n" + "\n".join(ann) + "\n") if ann else ""
    return (f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n{annotations}"
            "spec:\n  type: LoadBalancer\n")


def write(tmp_path, services, agg=""):
    f = tmp_path / "c.yaml"
    f.write_text(HEAD.format(agg=agg) + "".join(services))
    return load_config(str(f))


def flat(table):
    return {k: (r.prefix, r.attrs, tuple(sorted(r.reasons, key=repr))) for k, r in table.items()}


def test_shared_prefix_lists_every_service(tmp_path):
    config = write(tmp_path, [svc("x", ip="10.0.0.1"), svc("w", ip="10.0.0.2")], agg=", aggregationLength: 24")
    table = plan(config, "n").routes["p"]
    (route,) = table.values()
    assert route.prefix == "10.0.0.0/24"
    assert sorted(r.service for r in route.reasons) == ["default/w", "default/x"]


def test_services_are_service_objects(tmp_path):
    config = write(tmp_path, [svc("x", ip="10.0.0.1"), svc("v", pool="b", ns="other")])
    x = config.services["default/x"]
    assert isinstance(x, Service) and x.ips == ("10.0.0.1",) and x.key == "default/x"
    assert x.origin.endswith("c.yaml")
    assert config.services.get("other/v").pool == "b"
    assert config.services.get("nope") is None
    assert sorted(config.services) == ["default/x", "other/v"]
    (ip,) = allocate(config)[0]["other/v"]
    assert ip.startswith("10.1.0.")  # from its pool b


# --- property: incremental == from scratch -------------------------------------------------

def _metallb(agg: int, second_ad: bool, peers: int):
    out = []
    for i in range(peers):
        out.append({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": f"p{i}", "namespace": "m"},
                    "spec": {"myASN": 64512, "peerASN": 64513 + i, "peerAddress": f"127.0.0.{2 + i}"}})
    out.append({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "a", "namespace": "m"},
                "spec": {"addresses": ["10.0.0.0/24", "2001:db8::/120"]}})
    out.append({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "b", "namespace": "m"},
                "spec": {"addresses": ["10.1.0.0/28"]}})
    out.append({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "ad", "namespace": "m"},
                "spec": {"communities": ["64512:1"], "aggregationLength": agg}})
    if second_ad:
        out.append({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "ad2", "namespace": "m"},
                    "spec": {"communities": ["64512:2"], "localPref": 50, "peers": ["p0"], "ipAddressPools": ["a"]}})
    return out


def _service(name: str, ip: str | None, pool: str | None) -> dict:
    ann = {}
    if pool:
        ann["metallb.io/address-pool"] = pool
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "d", "annotations": ann},
           "spec": {"type": "LoadBalancer"}}
    if ip:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
    return obj


IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.130", "10.1.0.3", "10.9.9.9", "2001:db8::5", "2001:db8::6", None]
op = st.one_of(
    st.tuples(st.just("svc"), st.sampled_from("abcdefg"), st.sampled_from(IPS), st.sampled_from([None, "a", "b", "zz"])),
    st.tuples(st.just("del"), st.sampled_from("abcdefg")),
    st.tuples(st.just("metallb"), st.sampled_from([32, 24, 28]), st.booleans(), st.integers(1, 3)),
)


def _tables(planner_or_plan):
    routes = planner_or_plan.plan().routes if isinstance(planner_or_plan, Planner) else planner_or_plan.routes
    return {name: flat(t) for name, t in routes.items()}


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=25))
def test_incremental_plan_equals_plan_from_scratch(ops):
    store = Store()
    store.apply([Event("ADDED", o, "m.yaml") for o in _metallb(32, False, 1)])
    planner = Planner("n")
    planner.rebuild(store.config())
    wanted = {name: dict(route_attrs(t)) for name, t in planner.plan().routes.items()}  # what each session holds
    for o in ops:
        if o[0] == "svc":
            ch = store.apply([Event("MODIFIED", _service(o[1], o[2], o[3]), "s.yaml")])
        elif o[0] == "del":
            ch = store.apply([Event("DELETED", _service(o[1], None, None), "s.yaml")])
        else:
            old = [e for e in _metallb(32, True, 3)]
            ch = store.apply([Event("DELETED", x, "m.yaml") for x in old] +
                             [Event("ADDED", x, "m.yaml") for x in _metallb(o[1], o[2], o[3])])
        config = store.config()
        if ch.metallb:
            deltas = planner.rebuild(config)
        else:
            deltas = planner.services_changed(config, ch.services)
        for name, delta in deltas.items():
            held = wanted.setdefault(name, {})
            for rk, attrs in delta.items():
                if attrs is None:
                    held.pop(rk, None)
                else:
                    held[rk] = attrs
        scratch = plan(config, "n", planner.allocations)
        assert _tables(planner) == _tables(scratch)
        assert planner.allocations == scratch.allocations
        # the deltas handed to the sessions add up to the plan
        assert {n: w for n, w in wanted.items() if n in scratch.routes} == \
            {n: dict(route_attrs(t)) for n, t in scratch.routes.items()}


def test_invalid_service_ip_names_file_object_and_field(tmp_path):
    from speakerd.config import ConfigError
    with pytest.raises(ConfigError) as e:
        write(tmp_path, [svc("x", ip="10.0.0.300")])
    (issue,) = e.value.issues
    assert issue.obj == "Service/default/x"
    assert issue.field == "metadata.annotations[metallb.universe.tf/loadBalancerIPs]"
    assert issue.file.endswith("c.yaml")


@pytest.mark.parametrize("texts", [["10.0.0.1", "192.0.2.255"], ["10.0.0.1", "2001:db8::1"], [], ["::"]])
def test_parse_ips_matches_parse_ip(texts):
    afis, values = parse_ips(texts)
    assert list(zip(afis, values)) == [parse_ip(t) for t in texts]


@pytest.mark.parametrize("bad", ["010.0.0.1", "10.0.0", "x", "10.0.0.1 "])
def test_parse_ips_rejects(bad):
    with pytest.raises(ValueError):
        parse_ips(["10.0.0.1", bad])
