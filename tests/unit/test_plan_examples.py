"""The plan of every example scenario, route by route; allocation stability; state; CLI."""
from __future__ import annotations

import json
import os

import pytest

from speakerd.cli import main as cli
from speakerd.config import load_config
from speakerd.config.communities import format_community
from speakerd.policy import plan
from speakerd.state import StateError, load_allocations, save_allocations

EX = os.path.join(os.path.dirname(__file__), "..", "..", "config", "examples")


def ex(name):
    return os.path.normpath(os.path.join(EX, name))


def table(p, peer):
    """{prefix: (communities, local_pref, [service → ip via advertisement])}"""
    return {r.prefix: ([format_community(c) for c in r.attrs.communities + r.attrs.large_communities],
                       r.attrs.local_pref, [f"{x.service}>{x.ip}>{x.pool}>{x.advertisement}" for x in r.reasons])
            for r in p.routes[peer].values()}


def test_single_peer():
    p = plan(load_config([ex("single-peer")]), "node-a")
    assert table(p, "doc-example-peer") == {
        "203.0.113.1/32": ([], None, ["default/web>203.0.113.1>doc-example-pool>doc-example-adv"]),
        "203.0.113.10/32": ([], None, ["default/dns>203.0.113.10>doc-example-pool>doc-example-adv"]),
    }


def test_pools_per_peer():
    """Dual-stack pools, IPv4 peers without dualStackAddressFamily: as in MetalLB v0.15+, each
    session carries only IPv4, so the Services' IPv6 addresses are allocated but not routed."""
    p = plan(load_config([ex("pools-per-peer")]), "node-a")
    assert p.allocations["default/app1"] == ("4.4.4.141", "2001:100:4::3e5")
    assert table(p, "peer1") == {
        "4.4.4.141/32": (["65535:65282"], 100, ["default/app1>4.4.4.141>pool1>bgpadvertisement-1"]),
    }
    assert table(p, "peer2") == {
        "5.5.5.119/32": (["65535:65282"], 100, ["default/app2>5.5.5.119>pool2>bgpadvertisement-2"]),
    }


def test_vrf():
    p = plan(load_config([ex("vrf")]), "node-a")
    assert load_config([ex("vrf")]).peers["frrviavrf"].vrf == "ens4vrf"
    assert table(p, "frrviavrf") == {"192.169.10.0/32": ([], None, ["test/server1>192.169.10.0>first-pool>first-adv"])}


def test_node_selectors():
    cfg = load_config([ex("node-selectors")])
    assert table(plan(cfg, "compute-1.example.com"), "doc-example-nodesel") == {
        "198.51.100.7/32": ([], None, ["shop/frontend>198.51.100.7>nodesel-pool>nodesel-adv"])}
    # a node without a Node object still has its hostname label
    assert "doc-example-nodesel" in plan(cfg, "compute-2.example.com").routes
    assert plan(cfg, "compute-3.example.com").routes == {}


def test_bfd_aggregates_two_services():
    cfg = load_config([ex("bfd")])
    prof = cfg.bfd_profiles["doc-example-bfd-profile-full"]
    assert (prof.receive_interval_ms, prof.transmit_interval_ms, prof.detect_multiplier, prof.minimum_ttl) == (300, 300, 3, 254)
    assert cfg.peers["doc-example-peer-bfd"].hold_time == 10
    assert table(plan(cfg, "n"), "doc-example-peer-bfd") == {
        "192.0.2.0/28": (["64500:300"], None, ["default/api>192.0.2.14>bfd-pool>bfd-adv",
                                               "default/metrics>192.0.2.0>bfd-pool>bfd-adv"])}


def test_dual_stack():
    p = plan(load_config([ex("dual-stack")]), "n")
    want = {"192.0.2.77/32": ([], 150, ["default/portal>192.0.2.77>dual-stack-pool>dual-stack-adv"]),
            "2001:db8:64::d/128": ([], 150, ["default/portal>2001:db8:64::d>dual-stack-pool>dual-stack-adv"])}
    # each session carries its own family (MetalLB v0.15+: no dualStackAddressFamily)
    assert table(p, "doc-example-dual-stack-ipv4") == {"192.0.2.77/32": want["192.0.2.77/32"]}
    assert table(p, "doc-example-dual-stack-ipv6") == {"2001:db8:64::d/128": want["2001:db8:64::d/128"]}


def test_demo_merges_advertisements_and_avoids_buggy_ips():
    p = plan(load_config([ex("demo/sender")]), "demo-node")
    t = table(p, "receiver")
    own = ["64512:80", "64512:100", "large:64512:0:1"]
    assert t["198.51.100.0/26"][0] == ["65535:65281", "large:64512:1:2"]
    assert sorted(t["198.51.100.0/26"][2]) == sorted(["demo/api>198.51.100.34>demo-pool>demo-adv-aggregate",
                                                       "demo/web>198.51.100.24>demo-pool>demo-adv-aggregate",
                                                       "demo/dns>198.51.100.53>demo-pool>demo-adv-aggregate"])
    assert t["198.51.100.34/32"] == (own, 200, ["demo/api>198.51.100.34>demo-pool>demo-adv"])
    assert t["2001:db8:100::/120"][1] is None and t["2001:db8:100::e2/128"][1] == 200
    assert set(t) == {"198.51.100.0/26", "198.51.100.34/32", "198.51.100.24/32", "198.51.100.53/32",
                      "2001:db8:100::/120", "2001:db8:100::e2/128"}
    assert load_config([ex("demo/receiver")]).pools == {}


def _svc_cfg(tmp_path, names, extra_adv=""):
    docs = ["apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 1, peerASN: 1, peerAddress: 10.0.0.1}",
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.0/29]}",
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b}\nspec: {addresses: [192.0.2.8/29]}",
            "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all}\nspec: {localPref: 50, communities: ['1:1']}"]
    if extra_adv:
        docs.append(extra_adv)
    docs += [f"apiVersion: v1\nkind: Service\nmetadata: {{name: {n}, namespace: d}}\nspec: {{type: LoadBalancer}}" for n in names]
    f = tmp_path / "c.yaml"
    f.write_text("\n---\n".join(docs))
    return load_config([str(f)])


def test_allocation_is_stable_across_changes(tmp_path):
    """File mode: no state; a Service keeps its address while others come and go (hashed walk)."""
    first = plan(_svc_cfg(tmp_path, ["s1", "s2", "s3"]), "n").allocations
    assert first == {"d/s1": ("192.0.2.7",), "d/s2": ("192.0.2.4",), "d/s3": ("192.0.2.5",)}
    # s1 goes, s4 arrives: s2/s3 keep theirs
    second = plan(_svc_cfg(tmp_path, ["s2", "s3", "s4"]), "n").allocations
    assert second == {"d/s2": ("192.0.2.4",), "d/s3": ("192.0.2.5",), "d/s4": ("192.0.2.1",)}
    # s0 hashes onto s2's address and comes first by name: s2 moves to its own next choice, s3 stays
    third = plan(_svc_cfg(tmp_path, ["s0", "s2", "s3"]), "n").allocations
    assert third == {"d/s0": ("192.0.2.4",), "d/s2": ("192.0.2.7",), "d/s3": ("192.0.2.5",)}
    # what a node allocated before does not matter: every node computes the same answer
    assert plan(_svc_cfg(tmp_path, ["s2"]), "n", {"d/s2": ("192.0.2.9",)}).allocations == {"d/s2": ("192.0.2.4",)}
    assert plan(_svc_cfg(tmp_path, ["s2"]), "n", {"d/s2": ("10.9.9.9",)}).allocations == {"d/s2": ("192.0.2.4",)}


def test_pool_exhaustion_spills_to_next_pool_and_notes(tmp_path):
    names = [f"s{i:02d}" for i in range(17)]
    p = plan(_svc_cfg(tmp_path, names), "n")
    got = [ip for ips in p.allocations.values() for ip in ips]
    assert len(got) == len(set(got)) == 16  # both /29 pools full, no address twice
    assert "d/s16" not in p.allocations  # the last in name order finds none
    assert p.notes == ('d/s16: Failed to allocate IP for "d/s16": no available IPs',)


def test_two_advertisements_union_and_local_pref(tmp_path):
    # (two different localPref for one prefix are refused, as by MetalLB: test_metallb_compat.py)
    extra = "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: more}\nspec: {localPref: 50, communities: ['2:2', 'large:1:2:3']}"
    p = plan(_svc_cfg(tmp_path, ["s1"], extra), "n")
    (route,) = p.routes["p"].values()
    assert route.attrs.communities == (1 << 16 | 1, 2 << 16 | 2)
    assert route.attrs.large_communities == ((1, 2, 3),)
    assert route.attrs.local_pref == 50
    assert [r.advertisement for r in route.reasons] == ["all", "more"]


def test_aggregate_withdrawn_only_when_last_service_goes(tmp_path):
    extra = "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: agg}\nspec: {aggregationLength: 29}"
    p = plan(_svc_cfg(tmp_path, ["s1", "s2"], extra), "n")
    assert [r.service for r in p.routes["p"][(1, (0xC0000200 << 8) | 29)].reasons] == ["d/s1", "d/s2"]
    p = plan(_svc_cfg(tmp_path, ["s2"], extra), "n", p.allocations)
    assert [r.service for r in p.routes["p"][(1, (0xC0000200 << 8) | 29)].reasons] == ["d/s2"]
    p = plan(_svc_cfg(tmp_path, [], extra), "n", p.allocations)
    assert p.routes["p"] == {}


def test_state_round_trip(tmp_path):
    path = str(tmp_path / "sub" / "state.json")
    assert load_allocations(path) == {}
    alloc = {"d/a": ("192.0.2.1", "2001:db8::1"), "d/b": ("192.0.2.2",)}
    save_allocations(alloc, path)
    assert load_allocations(path) == alloc
    assert [n for n in os.listdir(tmp_path / "sub")] == ["state.json"]  # no temporary left behind
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(StateError):
        load_allocations(str(tmp_path / "bad.json"))


def test_restart_with_state_never_renumbers(tmp_path):
    """A Service deleted while speakerd was down does not renumber the others, state file or not."""
    state = str(tmp_path / "state.json")
    p1 = plan(_svc_cfg(tmp_path, ["s1", "s2"]), "n")
    save_allocations(p1.allocations, state)
    p2 = plan(_svc_cfg(tmp_path, ["s2"]), "n", load_allocations(state))
    assert p2.allocations["d/s2"] == p1.allocations["d/s2"]
    assert plan(_svc_cfg(tmp_path, ["s2"]), "n").allocations == p2.allocations


def test_check_cli_ok(capsys):
    assert cli(["check", "-c", ex("pools-per-peer")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok: 2 peers, 2 pools, 2 advertisements, 2 services, 0 BFD profiles; 4 warnings"
    assert out[1].startswith("warning: ") and "spec.localPref" in out[1]
    # the pools are dual-stack and the peers IPv4 without dualStackAddressFamily (test_metallb_compat.py)
    assert cli(["plan", "-c", ex("pools-per-peer"), "--node", "node-a"]) == 0
    plan_out = capsys.readouterr().out.splitlines()
    assert "peer peer1 (10.0.0.1 AS 64501, eBGP, IPv4): 1 route" in plan_out
    assert cli(["plan", "-c", ex("demo/sender"), "--node", "demo-node", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["peers"]["receiver"]["families"] == ["ipv4", "ipv6"]
    assert sum("BGPAdvertisement/bgpadvertisement-" in o and ": its IPv6 addresses reach no peer: peer" in o
               for o in out) == 2


def test_check_cli_errors_text_and_json(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text("apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\n"
                 "spec: {myASN: 1, peerASN: 2, peerAdress: 10.0.0.1, holdTime: 1s}\n")
    assert cli(["check", "-c", str(f)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{f}: BGPPeer/p: spec.peerAdress: unknown field spec.peerAdress; did you mean peerAddress?" in out
    assert f"{f}: BGPPeer/p: spec.peerAddress: required field is missing" in out
    assert cli(["check", "-c", str(f), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert {"file": str(f), "object": "BGPPeer/p", "field": "spec.peerAdress",
            "message": "unknown field spec.peerAdress; did you mean peerAddress?", "severity": "error"} in doc["errors"]


def test_check_cli_json_ok(capsys):
    assert cli(["check", "-c", ex("bfd"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["counts"]["bfd_profiles"] == 1 and doc["warnings"] == []


def test_plan_cli_text(capsys):
    assert cli(["plan", "-c", ex("bfd"), "--node", "n1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "node n1",
        "peer doc-example-peer-bfd (10.0.20.1 AS 64501, eBGP, IPv4): 1 route",
        "  192.0.2.0/28  communities 64500:300",
        "    default/api → 192.0.2.14 → pool bfd-pool → advertisement bfd-adv → peer doc-example-peer-bfd",
        "    default/metrics → 192.0.2.0 → pool bfd-pool → advertisement bfd-adv → peer doc-example-peer-bfd",
    ]


def test_plan_cli_json_with_state(tmp_path, capsys):
    state = tmp_path / "s.json"
    save_allocations({"default/api": ("192.0.2.5",)}, str(state))
    assert cli(["plan", "-c", ex("bfd"), "--node", "n1", "--state", str(state), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # the state file is read and does not change the answer (every node computes the same one)
    assert doc["allocations"] == {"default/api": ["192.0.2.14"], "default/metrics": ["192.0.2.0"]}
    (route,) = doc["peers"]["doc-example-peer-bfd"]["routes"]
    assert route["prefix"] == "192.0.2.0/28" and route["communities"] == ["64500:300"] and route["local_pref"] is None
    assert load_allocations(str(state)) == {"default/api": ("192.0.2.5",)}  # plan never writes state


def test_plan_cli_node_not_selected(capsys):
    assert cli(["plan", "-c", ex("node-selectors"), "--node", "compute-3.example.com"]) == 0
    assert "peer doc-example-nodesel (10.0.20.1 AS 64501, eBGP, IPv4): not on this node (nodeSelectors)" in capsys.readouterr().out


def test_dual_stack_addresses_come_from_one_pool(tmp_path):
    """PreferDualStack: both addresses from one pool (MetalLB), whatever a node held before."""
    docs = ["apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.0/29, '2001:db8:a::/120']}",
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b}\nspec: {addresses: [192.0.2.8/29, '2001:db8:b::/120']}",
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: d}\n"
            "spec: {type: LoadBalancer, ipFamilyPolicy: PreferDualStack, ipFamilies: [IPv4, IPv6]}"]
    f = tmp_path / "c.yaml"
    f.write_text("\n---\n".join(docs))
    for previous in (None, {"d/s": ("192.0.2.9",)}):
        p = plan(load_config([str(f)]), "n", previous)
        assert p.allocations == {"d/s": ("192.0.2.2", "2001:db8:a::a")}
