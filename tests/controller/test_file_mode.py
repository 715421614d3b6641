"""File mode: every node computes the same assignment from the manifests alone."""
from __future__ import annotations

import json
import random

from hypothesis import HealthCheck, given, settings, strategies as st

from speakerd.cli import main as cli
from speakerd.config import load_config
from speakerd.policy import plan
from speakerd.state import save_allocations

HEAD = [
    "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: r, namespace: metallb-system}\n"
    "spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1}",
    "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a, namespace: metallb-system}\n"
    "spec: {addresses: [192.0.2.0/28, '2001:db8::/124']}",
    "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b, namespace: metallb-system}\n"
    "spec: {addresses: [198.51.100.0/29], avoidBuggyIPs: true}",
    "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all, namespace: metallb-system}\nspec: {}",
]


def service_doc(name: str, ns: str = "default", pool: str | None = None, dual: bool = False, ip: str | None = None) -> str:
    ann = {}
    if pool:
        ann["metallb.io/address-pool"] = pool
    if ip:
        ann["metallb.io/loadBalancerIPs"] = ip
    spec = {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}
    if dual:
        spec.update(ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv4", "IPv6"])
    return json.dumps({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": name, "namespace": ns, "annotations": ann}, "spec": spec})


def write(path, docs):
    path.write_text("\n---\n".join(docs))
    return str(path)


def test_two_nodes_that_saw_services_in_a_different_order_agree(tmp_path, capsys):
    """The divergence of issue 'Cluster-consistent IP assignment': node-a had a state file from seeing
    web first, node-b none and saw api first.  Both now announce the same address for each Service."""
    cfg_a = write(tmp_path / "a.yaml", HEAD + [service_doc("web"), service_doc("api")])
    cfg_b = write(tmp_path / "b.yaml", HEAD + [service_doc("api"), service_doc("web")])
    state_a = tmp_path / "stateA.json"
    save_allocations({"default/web": ("192.0.2.0",), "default/api": ("192.0.2.1",)}, str(state_a))
    assert cli(["plan", "-c", cfg_a, "--node", "node-a", "--state", str(state_a), "--json"]) == 0
    a = json.loads(capsys.readouterr().out)["allocations"]
    assert cli(["plan", "-c", cfg_b, "--node", "node-b", "--json"]) == 0
    b = json.loads(capsys.readouterr().out)["allocations"]
    assert a == b and set(a) == {"default/web", "default/api"}
    assert a["default/web"] != a["default/api"]


def test_own_addresses_come_first_whatever_the_name_order(tmp_path):
    """A Service's own address (annotation) is never handed to another, even one earlier by name."""
    docs = HEAD + [service_doc(f"s{i}") for i in range(15)] + [service_doc("zz", ip="192.0.2.5")]
    p = plan(load_config([write(tmp_path / "c.yaml", docs)]), "n")
    got = [ip for ips in p.allocations.values() for ip in ips]
    assert "192.0.2.5" not in got and len(got) == len(set(got)) == 15


services = st.lists(st.tuples(st.sampled_from(["default", "team", "web"]), st.integers(0, 40),
                              st.sampled_from([None, None, "a", "b", "nope"]), st.booleans()),
                    min_size=1, max_size=24, unique_by=lambda t: (t[0], t[1]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(services, st.randoms(use_true_random=False))
def test_assignment_is_independent_of_order_and_state(tmp_path_factory, svcs, rnd):
    d = tmp_path_factory.mktemp("fm")
    docs = [service_doc(f"s{i}", ns, pool, dual) for ns, i, pool, dual in svcs]
    docs = [doc for doc in docs if '"nope"' not in doc]  # an unknown pool is a config error in file mode
    first = plan(load_config([write(d / "one.yaml", HEAD + docs)]), "n")
    shuffled = docs[:]
    rnd.shuffle(shuffled)
    split = rnd.randrange(len(shuffled) + 1)
    write(d / "x1.yaml", HEAD[:3] + shuffled[:split])
    write(d / "x2.yaml", shuffled[split:] or HEAD[3:4])
    previous = {f"{ns}/s{i}": (f"192.0.2.{rnd.randrange(16)}",) for ns, i, _, _ in svcs}  # another node's past
    second = plan(load_config([str(d / "x1.yaml"), str(d / "x2.yaml")]), "n", previous)
    assert first.allocations == second.allocations
    assert first.notes == second.notes
    got = [ip for ips in first.allocations.values() for ip in ips]
    assert len(got) == len(set(got))  # no sharing keys here: no address twice
    for key, ips in first.allocations.items():
        assert not any(ip.startswith("198.51.100.") and ip.split(".")[-1] in ("0", "255") for ip in ips)


def test_stable_when_services_come_and_go(tmp_path):
    """In a pool with room, removing 10 of 60 Services and adding 10 others moves few of the 50 kept
    (a Service moves only when one earlier by name now hashes onto its address)."""
    head = HEAD[:1] + ["apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: big}\n"
                       "spec: {addresses: [203.0.113.0/24]}"] + HEAD[3:]
    rng = random.Random(7)
    names = [f"svc-{rng.randrange(10**6)}" for _ in range(60)]
    before = plan(load_config([write(tmp_path / "a.yaml", head + [service_doc(n) for n in names])]), "n").allocations
    kept = names[10:]
    after_names = kept + [f"new-{i}" for i in range(10)]
    after = plan(load_config([write(tmp_path / "b.yaml", head + [service_doc(n) for n in after_names])]), "n").allocations
    moved = [n for n in kept if before[f"default/{n}"] != after[f"default/{n}"]]
    assert len(moved) <= 3, moved


def test_file_mode_shares_by_allow_shared_ip(tmp_path):
    """Same key, other ports: one address; a port clash or another key: another address (MetalLB's rule)."""
    def shared(name, port, key="k"):
        return json.dumps({"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": name, "namespace": "default",
                                        "annotations": {"metallb.io/allow-shared-ip": key}},
                           "spec": {"type": "LoadBalancer", "ports": [{"port": port, "protocol": "TCP"}]}})
    docs = HEAD + [shared("dns-tcp", 53), shared("web", 80), shared("web2", 80), shared("other", 443, key="x")]
    p = plan(load_config([write(tmp_path / "c.yaml", docs)]), "n")
    a = p.allocations
    assert a["default/dns-tcp"] == a["default/web"]
    assert a["default/web2"] != a["default/web"] and a["default/other"] != a["default/web"]
    shuffled = HEAD + [shared("web2", 80), shared("other", 443, key="x"), shared("web", 80), shared("dns-tcp", 53)]
    assert plan(load_config([write(tmp_path / "d.yaml", shuffled)]), "n").allocations == a
