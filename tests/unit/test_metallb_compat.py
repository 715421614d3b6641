"""MetalLB v0.16 compatibility, one test (or parametrized case) per row of
docs/metallb-compatibility.md: the MetalLB objects as the API server returns them,
every field of BGPPeer, IPAddressPool, BGPAdvertisement, BFDProfile and Community,
and the Service annotations MetalLB reads."""
from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import yaml

from speakerd.cli import main
from speakerd.config import ConfigError, load_config
from speakerd.fsm.open import local_capabilities
from speakerd.fsm.settings import SessionSettings
from speakerd.policy.planner import plan
from speakerd.store import Event, Store
from speakerd.wire.capabilities import IPV4_UNICAST, IPV6_UNICAST, Multiprotocol

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def server_meta(name: str, kind: str, api: str, **extra) -> dict:
    """metadata as the API server returns it (kubectl get -o yaml)."""
    return {
        "annotations": {LAST_APPLIED: json.dumps({"apiVersion": api, "kind": kind, "metadata": {"name": name}}) + "\n"},
        "creationTimestamp": "2026-11-30T10:00:00Z", "generation": 3, "name": name, "namespace": "metallb-system",
        "resourceVersion": "48213", "uid": "6c0d3c1e-8f6a-4b53-9d2e-3f1b1b0c9a11",
        "managedFields": [{"apiVersion": api, "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {".": {}}},
                           "manager": "kubectl-client-side-apply", "operation": "Update",
                           "time": "2026-11-30T10:00:00Z"}],
        **extra,
    }


def server_objects() -> list[dict]:
    """One object of every MetalLB kind speakerd reads, each with every CRD default filled in
    (the v0.16 CRDs: peerPort 179, disableMP/dualStackAddressFamily false, autoAssign true,
    avoidBuggyIPs false, aggregationLength 32/128), status and server metadata."""
    return [
        {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
         "metadata": server_meta("tor", "BGPPeer", "metallb.io/v1beta2"),
         "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1", "peerPort": 179,
                  "disableMP": False, "dualStackAddressFamily": False, "bfdProfile": "fast",
                  "holdTime": "1m30s", "keepaliveTime": "30s", "passwordSecret": {}},
         "status": {}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "BGPPeer",
         "metadata": server_meta("old", "BGPPeer", "metallb.io/v1beta1"),
         "spec": {"myASN": 64500, "peerASN": 64502, "peerAddress": "10.0.0.2", "peerPort": 179},
         "status": {}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
         "metadata": server_meta("web", "IPAddressPool", "metallb.io/v1beta1", labels={"tier": "web"}),
         "spec": {"addresses": ["192.0.2.0/24"], "autoAssign": True, "avoidBuggyIPs": False},
         "status": {"assignedIPv4": 0, "assignedIPv6": 0, "availableIPv4": 256, "availableIPv6": 0}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
         "metadata": server_meta("web", "BGPAdvertisement", "metallb.io/v1beta1"),
         "spec": {"aggregationLength": 32, "aggregationLengthV6": 128, "ipAddressPools": ["web"],
                  "communities": ["no-export"]},
         "status": {}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "BFDProfile",
         "metadata": server_meta("fast", "BFDProfile", "metallb.io/v1beta1"),
         "spec": {"receiveInterval": 300, "transmitInterval": 300, "detectMultiplier": 3,
                  "echoMode": False, "passiveMode": False, "minimumTtl": 254},
         "status": {}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "Community",
         "metadata": server_meta("aliases", "Community", "metallb.io/v1beta1"),
         "spec": {"communities": [{"name": "no-export", "value": "65535:65281"}]},
         "status": {}},
    ]


def _check_server_config(cfg) -> None:
    tor = cfg.peers["tor"]
    assert (tor.local_asn, tor.peer_asn, tor.peer_address, tor.peer_port) == (64500, 64501, "10.0.0.1", 179)
    assert (tor.hold_time, tor.keepalive_time, tor.bfd_profile, tor.password) == (90, 30, "fast", None)
    assert not tor.disable_mp and not tor.dual_stack_address_family
    assert cfg.peers["old"].peer_asn == 64502
    assert cfg.pools["web"].cidrs == ((1, 0xC0000200, 24),) and cfg.pools["web"].auto_assign
    ad = cfg.advertisements["web"]
    assert ad.pools == ("web",) and ad.communities == (0xFFFFFF01,)
    assert cfg.bfd_profiles["fast"].receive_interval_ms == 300


@pytest.mark.parametrize("form", ["yaml documents", "yaml List", "json List", "json documents"])
def test_objects_exactly_as_the_api_server_returns_them(tmp_path, form):
    objs = server_objects()
    if form == "yaml documents":
        text, name = yaml.safe_dump_all(objs, sort_keys=True), "m.yaml"
    elif form == "yaml List":
        text, name = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                                     "items": objs}), "m.yaml"
    elif form == "json List":
        text, name = json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}, indent=4), "m.json"
    else:
        text, name = "\n".join(json.dumps(o, indent=2) for o in objs), "m.json"
    f = tmp_path / name
    f.write_text(text)
    cfg = load_config([str(f)])
    _check_server_config(cfg)
    assert not [i for i in cfg.issues if i.severity == "error"]


def test_objects_from_the_api_through_the_store():
    st = Store()
    st.apply([Event("ADDED", o, "api") for o in server_objects()])
    assert not st.metallb_errors
    _check_server_config(st.config())


# --- every field: (kind, spec fragment, what the model holds) -----------------------------

BASE = {
    "BGPPeer": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1"},
    "IPAddressPool": {"addresses": ["192.0.2.0/24"]},
    "BGPAdvertisement": {},
    "BFDProfile": {},
    "Community": {},
}
API = {"BGPPeer": "metallb.io/v1beta2"}


def load_one(tmp_path, kind, spec, extra=(), api=None, annotations=None):
    docs = []
    meta = {"name": "x", "namespace": "metallb-system"}
    if annotations:
        meta["annotations"] = annotations
    docs.append({"apiVersion": api or API.get(kind, "metallb.io/v1beta1"), "kind": kind, "metadata": meta,
                 "spec": {**BASE[kind], **spec}})
    if kind != "BGPPeer":
        docs.append({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "peer"},
                     "spec": dict(BASE["BGPPeer"], myASN=64500, peerASN=64500)})
    if kind != "IPAddressPool":
        docs.append({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "pool"},
                     "spec": BASE["IPAddressPool"]})
    docs.extend(extra)
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    return load_config([str(f)])


SECRET = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
          "metadata": {"name": "md5", "namespace": "metallb-system"}, "stringData": {"password": "s3cret"}}
BFD = {"apiVersion": "metallb.io/v1beta1", "kind": "BFDProfile", "metadata": {"name": "b"}, "spec": {}}
ALIAS = {"apiVersion": "metallb.io/v1beta1", "kind": "Community", "metadata": {"name": "c"},
         "spec": {"communities": [{"name": "mine", "value": "64500:7"}]}}

FIELDS = [
    # BGPPeer (v1beta1 and v1beta2)
    ("BGPPeer", "myASN", {"myASN": 4200000000}, (), lambda c: c.peers["x"].local_asn == 4200000000),
    ("BGPPeer", "peerASN", {"peerASN": 65001}, (), lambda c: c.peers["x"].peer_asn == 65001),
    ("BGPPeer", "dynamicASN", {"peerASN": None, "dynamicASN": "external"}, (),
     lambda c: c.peers["x"].dynamic_asn == "external" and c.peers["x"].peer_asn == 0),
    ("BGPPeer", "peerAddress", {"peerAddress": "2001:db8:0::1"}, (), lambda c: c.peers["x"].peer_address == "2001:db8::1"),
    ("BGPPeer", "interface", {"peerAddress": None, "interface": "eth1"}, (),
     lambda c: c.peers["x"].interface == "eth1" and c.peers["x"].peer_address == ""),
    ("BGPPeer", "sourceAddress", {"sourceAddress": "10.0.0.9"}, (), lambda c: c.peers["x"].source_address == "10.0.0.9"),
    ("BGPPeer", "peerPort", {"peerPort": 1179}, (), lambda c: c.peers["x"].peer_port == 1179),
    ("BGPPeer", "holdTime", {"holdTime": "9s"}, (), lambda c: (c.peers["x"].hold_time, c.peers["x"].keepalive_time) == (9, 3)),
    ("BGPPeer", "keepaliveTime", {"keepaliveTime": "10s"}, (), lambda c: (c.peers["x"].hold_time, c.peers["x"].keepalive_time) == (30, 10)),
    ("BGPPeer", "connectTime", {"connectTime": "5s"}, (), lambda c: c.peers["x"].connect_retry == 5),
    ("BGPPeer", "routerID", {"routerID": "10.9.9.9"}, (), lambda c: c.peers["x"].router_id == "10.9.9.9"),
    ("BGPPeer", "nodeSelectors", {"nodeSelectors": [{"matchLabels": {"rack": "a"}}]}, (),
     lambda c: c.peers["x"].node_selectors[0].matches({"rack": "a"}) and not c.peers["x"].node_selectors[0].matches({})),
    ("BGPPeer", "password", {"password": "pw"}, (), lambda c: c.peers["x"].password == "pw"),
    ("BGPPeer", "passwordSecret", {"passwordSecret": {"name": "md5", "namespace": "metallb-system"}}, (SECRET,),
     lambda c: c.peers["x"].password == "s3cret"),
    ("BGPPeer", "bfdProfile", {"bfdProfile": "b"}, (BFD,), lambda c: c.peers["x"].bfd_profile == "b"),
    ("BGPPeer", "enableGracefulRestart", {"enableGracefulRestart": True}, (), lambda c: c.peers["x"].graceful_restart),
    ("BGPPeer", "ebgpMultiHop", {"ebgpMultiHop": True}, (), lambda c: c.peers["x"].ebgp_multihop),
    ("BGPPeer", "vrf", {"vrf": "red"}, (), lambda c: c.peers["x"].vrf == "red"),
    ("BGPPeer", "disableMP", {"disableMP": True}, (), lambda c: c.peers["x"].disable_mp),
    ("BGPPeer", "localASN", {"localASN": 65410}, (), lambda c: c.peers["x"].session_asn == 65410),
    ("BGPPeer", "dualStackAddressFamily", {"dualStackAddressFamily": True}, (),
     lambda c: c.peers["x"].dual_stack_address_family),
    # IPAddressPool
    ("IPAddressPool", "addresses", {"addresses": ["192.0.2.0/25", "2001:db8::1-2001:db8::3"]}, (),
     lambda c: c.pools["x"].ranges[0] == (1, 0xC0000200, 0xC000027F) and c.pools["x"].ranges[1][0] == 2),
    ("IPAddressPool", "autoAssign", {"autoAssign": False}, (), lambda c: not c.pools["x"].auto_assign),
    ("IPAddressPool", "avoidBuggyIPs", {"avoidBuggyIPs": True}, (), lambda c: c.pools["x"].avoid_buggy_ips),
    ("IPAddressPool", "serviceAllocation",
     {"serviceAllocation": {"priority": 5, "namespaces": ["web"],
                            "namespaceSelectors": [{"matchLabels": {"team": "a"}}],
                            "serviceSelectors": [{"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]}]}},
     (), lambda c: (c.pools["x"].service_allocation.priority, c.pools["x"].service_allocation.namespaces) == (5, ("web",))
     and c.pools["x"].service_allocation.namespace_selectors[0].matches({"team": "a"})
     and c.pools["x"].service_allocation.service_selectors[0].matches({"app": "x"})),
    # BGPAdvertisement
    ("BGPAdvertisement", "ipAddressPools", {"ipAddressPools": ["pool"]}, (), lambda c: c.advertisements["x"].pools == ("pool",)),
    ("BGPAdvertisement", "ipAddressPoolSelectors", {"ipAddressPoolSelectors": [{"matchLabels": {"a": "b"}}]},
     ({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "lab", "labels": {"a": "b"}},
       "spec": {"addresses": ["198.51.100.0/24"]}},), lambda c: c.advertisements["x"].pools == ("lab",)),
    ("BGPAdvertisement", "peers", {"peers": ["peer"]}, (), lambda c: c.advertisements["x"].peers == ("peer",)),
    ("BGPAdvertisement", "communities", {"communities": ["64500:1", "large:1:2:3", "mine"]}, (ALIAS,),
     lambda c: c.advertisements["x"].communities == (64500 << 16 | 1, 64500 << 16 | 7)
     and c.advertisements["x"].large_communities == ((1, 2, 3),)),
    ("BGPAdvertisement", "aggregationLength", {"aggregationLength": 24}, (), lambda c: c.advertisements["x"].aggregation_length == 24),
    ("BGPAdvertisement", "aggregationLengthV6", {"aggregationLengthV6": 64}, (), lambda c: c.advertisements["x"].aggregation_length_v6 == 64),
    ("BGPAdvertisement", "localPref", {"localPref": 200}, (), lambda c: c.advertisements["x"].local_pref == 200),
    ("BGPAdvertisement", "nodeSelectors", {"nodeSelectors": [{"matchLabels": {"rack": "a"}}]}, (),
     lambda c: c.advertisements["x"].node_selectors[0].matches({"rack": "a"})),
    ("BGPAdvertisement", "serviceSelectors", {"serviceSelectors": [{"matchLabels": {"app": "web"}}]}, (),
     lambda c: c.advertisements["x"].service_selectors[0].matches({"app": "web"})),
    # BFDProfile
    ("BFDProfile", "receiveInterval", {"receiveInterval": 50}, (), lambda c: c.bfd_profiles["x"].receive_interval_ms == 50),
    ("BFDProfile", "transmitInterval", {"transmitInterval": 60}, (), lambda c: c.bfd_profiles["x"].transmit_interval_ms == 60),
    ("BFDProfile", "detectMultiplier", {"detectMultiplier": 5}, (), lambda c: c.bfd_profiles["x"].detect_multiplier == 5),
    ("BFDProfile", "echoInterval", {"echoInterval": 50}, (), lambda c: "x" in c.bfd_profiles),
    ("BFDProfile", "echoMode", {"echoMode": False}, (), lambda c: "x" in c.bfd_profiles),
    ("BFDProfile", "passiveMode", {"passiveMode": True}, (), lambda c: c.bfd_profiles["x"].passive_mode),
    ("BFDProfile", "minimumTtl", {"minimumTtl": 250}, (), lambda c: c.bfd_profiles["x"].minimum_ttl == 250),
    # Community
    ("Community", "communities", {"communities": [{"name": "mine2", "value": "64500:9"}]},
     ({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "a"},
       "spec": {"communities": ["mine2"]}},), lambda c: c.advertisements["a"].communities == (64500 << 16 | 9,)),
]


@pytest.mark.parametrize("kind,field,spec,extra,check", FIELDS, ids=[f"{k}.{f}" for k, f, *_ in FIELDS])
def test_field(tmp_path, kind, field, spec, extra, check):
    spec = {k: v for k, v in spec.items()}
    base = dict(BASE[kind])
    for k in [k for k, v in spec.items() if v is None]:
        base.pop(k, None)
        spec.pop(k)
    BASE_SAVED = BASE[kind]
    BASE[kind] = base
    try:
        cfg = load_one(tmp_path, kind, spec, extra)
    finally:
        BASE[kind] = BASE_SAVED
    assert check(cfg)


@pytest.mark.parametrize("api", ["metallb.io/v1beta1", "metallb.io/v1beta2"])
def test_bgppeer_both_versions(tmp_path, api):
    cfg = load_one(tmp_path, "BGPPeer", {"holdTime": "30s", "ebgpMultiHop": True}, api=api)
    assert cfg.peers["x"].hold_time == 30 and cfg.peers["x"].ebgp_multihop


# --- disableMP / dualStackAddressFamily ---------------------------------------------------

# MetalLB v0.15+ (internal/bgp/frr/frr.go): a neighbor's family is its address's, DualStack with
# dualStackAddressFamily or an interface; only that family is activated and advertised to it
@pytest.mark.parametrize("spec,families", [
    ({}, (IPV4_UNICAST,)),
    ({"peerAddress": "2001:db8::1"}, (IPV6_UNICAST,)),
    ({"peerAddress": "fe80::1%eth0"}, (IPV6_UNICAST,)),
    ({"dualStackAddressFamily": True}, (IPV4_UNICAST, IPV6_UNICAST)),
    ({"dualStackAddressFamily": True, "peerAddress": "2001:db8::1"}, (IPV4_UNICAST, IPV6_UNICAST)),
    ({"dualStackAddressFamily": True, "peerAddress": "fe80::1%eth0"}, (IPV4_UNICAST, IPV6_UNICAST)),
    ({"peerAddress": None, "interface": "eth0"}, (IPV4_UNICAST, IPV6_UNICAST)),
    ({"disableMP": True}, (IPV4_UNICAST,)),
    ({"disableMP": True, "peerAddress": "2001:db8::1"}, (IPV6_UNICAST,)),
    ({"disableMP": True, "dualStackAddressFamily": True}, (IPV4_UNICAST, IPV6_UNICAST)),
])
def test_session_carries_its_own_family_unless_dual_stack(tmp_path, spec, families):
    if spec.get("peerAddress", "") is None:
        spec = {k: v for k, v in spec.items() if v is not None}
        cfg = load_peer_without_address(tmp_path, spec)
    else:
        cfg = load_one(tmp_path, "BGPPeer", spec)
    settings = SessionSettings.from_peer(cfg.peers["x"], 1)
    assert settings.families == families
    # the OPEN offers exactly those families (RFC 4760 capability per AFI/SAFI)
    assert [(c.afi, c.safi) for c in local_capabilities(settings) if isinstance(c, Multiprotocol)] == list(families)
    # RFC 8950 is offered only where IPv4 is carried over a link-local session
    assert settings.extended_next_hop == (IPV4_UNICAST in families and ("interface" in spec or "%" in spec.get("peerAddress", "")))


def load_peer_without_address(tmp_path, spec):
    base = dict(BASE["BGPPeer"])
    base.pop("peerAddress")
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "x"},
                                 "spec": {**base, **spec}}))
    return load_config([str(f)])


@pytest.mark.parametrize("spec,msg", [
    ({}, "carries only the family of its peer address unless dualStackAddressFamily: true"),
    ({"dualStackAddressFamily": True}, "carries both families (dualStackAddressFamily: true)"),
    ({"peerAddress": None, "interface": "eth0"}, "carries both families (BGP unnumbered)"),
])
def test_disable_mp_is_deprecated_without_effect(tmp_path, spec, msg):
    """MetalLB v0.15+ ignores disableMP (its webhook: deprecated, "has no effect since it's the
    default behavior now"): loads, with a warning saying what the session carries."""
    spec = {"disableMP": True, **spec}
    if spec.get("peerAddress", "") is None:
        cfg = load_peer_without_address(tmp_path, {k: v for k, v in spec.items() if v is not None})
    else:
        cfg = load_one(tmp_path, "BGPPeer", spec)
    got = [i.message for i in cfg.issues if i.field == "spec.disableMP"]
    assert got == [f"disableMP is deprecated and has no effect: this session {msg}"]
    assert [i.severity for i in cfg.issues if i.field == "spec.disableMP"] == ["warning"]


def dual_stack_cfg(tmp_path, *peers):
    """A dual-stack pool, one advertisement for every peer, one dual-stack Service, `peers`."""
    docs = [{"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": name},
             "spec": {"myASN": 64500, "peerASN": 64501, **spec}} for name, spec in peers]
    docs += [{"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "dual"},
              "spec": {"addresses": ["192.0.2.0/24", "2001:db8::/120"]}},
             {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "all"}, "spec": {}},
             {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "d"},
              "spec": {"type": "LoadBalancer", "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"],
                       "ports": [{"port": 80}]},
              "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.5"}, {"ip": "2001:db8::5"}]}}}]
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    return load_config([str(f)])


def test_routes_planned_per_session_family(tmp_path):
    """A dual-stack Service: the IPv4 peer gets the IPv4 route, the IPv6 peer the IPv6 one, the
    dualStackAddressFamily peer and the unnumbered peer both; nothing warns (every family reaches a peer)."""
    cfg = dual_stack_cfg(tmp_path, ("v4", {"peerAddress": "10.0.0.1"}), ("v6", {"peerAddress": "2001:db8:1::1"}),
                         ("both", {"peerAddress": "10.0.0.2", "dualStackAddressFamily": True}),
                         ("unnum", {"interface": "eth1"}))
    routes = plan(cfg, "n").routes
    prefixes = {name: sorted(r.prefix for r in t.values()) for name, t in routes.items()}
    assert prefixes == {"v4": ["192.0.2.5/32"], "v6": ["2001:db8::5/128"],
                        "both": ["192.0.2.5/32", "2001:db8::5/128"], "unnum": ["192.0.2.5/32", "2001:db8::5/128"]}
    assert not [i for i in cfg.issues if i.severity != "info"]


def test_routes_by_difference_keep_to_the_session_family(tmp_path):
    """The incremental planner (a Service added later) gives each peer only its families, as a fresh plan."""
    from speakerd.policy.planner import Planner
    cfg = dual_stack_cfg(tmp_path, ("v4", {"peerAddress": "10.0.0.1"}),
                         ("both", {"peerAddress": "10.0.0.2", "dualStackAddressFamily": True}))
    empty = dataclasses.replace(cfg, services={})
    p = Planner("n")
    assert p.rebuild(empty) == {"v4": {}, "both": {}}
    deltas = p.services_changed(cfg, cfg.services.keys())
    assert {n: sorted(afi for afi, _ in d) for n, d in deltas.items()} == {"v4": [1], "both": [1, 2]}
    assert {n: dict(t.attrs) for n, t in p.plan().routes.items()} == \
        {n: dict(t.attrs) for n, t in plan(cfg, "n").routes.items()}


def test_service_status_peers_follow_the_session_family(tmp_path):
    """ServiceBGPStatus's peers (read from the planner without a scan) agree with the routes:
    an IPv6-only Service is announced to the IPv6 and the dual-stack peer, not to the IPv4 one."""
    from speakerd.policy.planner import Planner
    from speakerd.publish.speaker_state import peers_by_service, peers_of_service
    cfg = dual_stack_cfg(tmp_path, ("v4", {"peerAddress": "10.0.0.1"}), ("v6", {"peerAddress": "2001:db8:1::1"}),
                         ("both", {"peerAddress": "10.0.0.2", "dualStackAddressFamily": True}))
    svc = dataclasses.replace(cfg.services["d/web"], ips=("2001:db8::5",), families=(6,), dual_stack=False)
    cfg = dataclasses.replace(cfg, services={"d/web": svc})
    p = Planner("n")
    p.rebuild(cfg, {})
    assert peers_of_service(p, svc) == {"v6", "both"} == peers_by_service(p.plan().routes)["d/web"]


def test_family_reaching_no_peer_is_said(tmp_path):
    """A dual-stack pool advertised to IPv4 sessions only: its IPv6 addresses go nowhere (MetalLB:
    silently); speakerd warns on the advertisement and names the fix."""
    cfg = dual_stack_cfg(tmp_path, ("a", {"peerAddress": "10.0.0.1"}), ("b", {"peerAddress": "10.0.0.2"}))
    warned = [(i.obj, i.field, i.message) for i in cfg.issues if i.severity == "warning"]
    assert warned == [("BGPAdvertisement/all", "spec",
                       "its IPv6 addresses reach no peer: a, b carry IPv4 only; set dualStackAddressFamily: true "
                       "on a BGPPeer to carry both families over its session, or add an IPv6 BGPPeer")]
    assert {n: sorted(r.prefix for r in t.values()) for n, t in plan(cfg, "n").routes.items()} == \
        {"a": ["192.0.2.5/32"], "b": ["192.0.2.5/32"]}
    # an IPv6 peer, or one peer with both families, and there is nothing to say
    for extra in (("c", {"peerAddress": "2001:db8:1::1"}), ("c", {"peerAddress": "10.0.0.3", "dualStackAddressFamily": True})):
        cfg = dual_stack_cfg(tmp_path, ("a", {"peerAddress": "10.0.0.1"}), extra)
        assert not [i for i in cfg.issues if i.severity == "warning"]
    # IPv6 peers only: the IPv4 addresses are said
    cfg = dual_stack_cfg(tmp_path, ("a", {"peerAddress": "2001:db8:1::1"}))
    assert [i.message.split(";")[0] for i in cfg.issues if i.severity == "warning"] == \
        ["its IPv4 addresses reach no peer: a carries IPv6 only"]


def test_family_and_local_asn_changes_reset_the_session_disable_mp_does_not(tmp_path):
    """`speakerd plan --diff` and a reload: dualStackAddressFamily and localASN change what the
    OPEN says (a new session, named in MetalLB spelling); disableMP changes nothing."""
    from speakerd.policy.plandiff import session_changes
    from speakerd.reconcile import session_params
    base = load_one(tmp_path, "BGPPeer", {}).peers["x"]
    for spec, field in (({"dualStackAddressFamily": True}, "dualStackAddressFamily"), ({"localASN": 65410}, "localASN")):
        new = load_one(tmp_path, "BGPPeer", spec).peers["x"]
        assert session_params(new) != session_params(base)
        assert [c["field"] for c in session_changes(base, new)] == [field]
    new = load_one(tmp_path, "BGPPeer", {"disableMP": True}).peers["x"]
    assert session_params(new) == session_params(base) and session_changes(base, new) == []


# --- localASN (v0.16: FRR "neighbor X local-as N no-prepend replace-as") ---------------------

def test_local_asn_replaces_my_asn_toward_the_peer(tmp_path):
    """The OPEN's AS and the AS_PATH of the routes sent carry localASN; myASN stays the AS of
    the speaker (the per-VRF equality rule reads myASN, as MetalLB's router-level ASN)."""
    cfg = load_one(tmp_path, "BGPPeer", {"localASN": 65410})
    peer = cfg.peers["x"]
    assert (peer.local_asn, peer.session_asn, peer.ibgp) == (64500, 65410, False)
    settings = SessionSettings.from_peer(peer, 1)
    assert settings.local_asn == 65410 and not settings.ibgp
    assert [c.asn for c in local_capabilities(settings) if type(c).__name__ == "FourOctetAS"] == [65410]
    # the AS_PATH of what is sent: tests/interop/test_local_asn.py (FRR sees [localASN])
    # unset (or 0, as an API server may serve omitempty's zero) is myASN
    for spec in ({}, {"localASN": 0}):
        assert SessionSettings.from_peer(load_one(tmp_path, "BGPPeer", spec).peers["x"], 1).local_asn == 64500


@pytest.mark.parametrize("spec,msg", [
    ({"localASN": 64500}, "localASN 64500 equals myASN"),
    ({"localASN": 65410, "peerASN": 64500}, "localASN is for eBGP peers; this peer is iBGP"),
    ({"localASN": 65410, "peerASN": None, "dynamicASN": "internal"}, "localASN is for eBGP peers; this peer is iBGP"),
    ({"localASN": 64501}, "localASN 64501 equals peerASN"),
    ({"localASN": 4294967296}, "ASN 4294967296 is out of range"),
])
def test_local_asn_refused_where_frr_refuses_it(tmp_path, spec, msg):
    spec = dict(spec)
    if spec.get("peerASN", "") is None:
        spec.pop("peerASN")
        base = {k: v for k, v in BASE["BGPPeer"].items() if k != "peerASN"}
        f = tmp_path / "c.yaml"
        f.write_text(yaml.safe_dump({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
                                     "metadata": {"name": "x"}, "spec": {**base, **spec}}))
        with pytest.raises(ConfigError) as exc:
            load_config([str(f)])
    else:
        with pytest.raises(ConfigError) as exc:
            load_one(tmp_path, "BGPPeer", spec)
    assert any(i.field == "spec.localASN" and msg in i.message for i in exc.value.issues), exc.value.issues


# --- myASN / routerID: equal per VRF among peers that may share a node ----------------------

def peers_cfg(tmp_path, *peers):
    docs = [{"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": f"p{i}"},
             "spec": {"peerASN": 65000, "peerAddress": f"10.0.0.{i + 1}", **p}} for i, p in enumerate(peers)]
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    return str(f)


RACK_A = [{"matchLabels": {"rack": "a"}}]
RACK_B = [{"matchLabels": {"rack": "b"}}]


@pytest.mark.parametrize("a,b,ok", [
    ({"myASN": 1}, {"myASN": 2}, False),  # same (default) VRF, every node
    ({"myASN": 1}, {"myASN": 2, "vrf": "red"}, True),  # another VRF
    ({"myASN": 1, "nodeSelectors": RACK_A}, {"myASN": 2, "nodeSelectors": RACK_B}, True),  # disjoint nodes
    ({"myASN": 1, "nodeSelectors": RACK_A}, {"myASN": 2}, False),  # b runs on rack a too
    ({"myASN": 1, "nodeSelectors": RACK_A}, {"myASN": 2, "nodeSelectors": [{"matchLabels": {"zone": "z"}}]}, False),
    ({"myASN": 1, "nodeSelectors": [{"matchExpressions": [{"key": "rack", "operator": "In", "values": ["a"]}]}]},
     {"myASN": 2, "nodeSelectors": [{"matchExpressions": [{"key": "rack", "operator": "NotIn", "values": ["a"]}]}]}, True),
    ({"myASN": 1, "nodeSelectors": [{"matchExpressions": [{"key": "edge", "operator": "Exists"}]}]},
     {"myASN": 2, "nodeSelectors": [{"matchExpressions": [{"key": "edge", "operator": "DoesNotExist"}]}]}, True),
    ({"myASN": 1, "routerID": "10.1.1.1"}, {"myASN": 1, "routerID": "10.2.2.2"}, False),
    ({"myASN": 1, "routerID": "10.1.1.1"}, {"myASN": 1, "routerID": "10.2.2.2", "vrf": "red"}, True),
    ({"myASN": 1, "routerID": "10.1.1.1", "nodeSelectors": RACK_A},
     {"myASN": 1, "routerID": "10.2.2.2", "nodeSelectors": RACK_B}, True),
])
def test_asn_and_router_id_equal_per_vrf_and_node_set(tmp_path, a, b, ok):
    path = peers_cfg(tmp_path, a, b)
    if ok:
        assert set(load_config([path]).peers) == {"p0", "p1"}
    else:
        with pytest.raises(ConfigError) as exc:
            load_config([path])
        (issue,) = exc.value.issues
        assert issue.obj == "BGPPeer/p1" and issue.field in ("spec.myASN", "spec.routerID")
        assert "peers in one VRF on the same nodes must use the same" in issue.message


# --- stricter rules: localPref, loadBalancerIPs with loadBalancerIP -----------------------

def ads_cfg(tmp_path, *ads):
    docs = [{"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": n},
             "spec": {"myASN": 1, "peerASN": 1, "peerAddress": a}} for n, a in (("p1", "10.0.0.1"), ("p2", "10.0.0.2"))]
    docs.append({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "pool"},
                 "spec": {"addresses": ["192.0.2.0/24"]}})
    docs += [{"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": f"a{i}"}, "spec": s}
             for i, s in enumerate(ads)]
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    return str(f)


def test_two_local_prefs_for_one_prefix_are_refused(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config([ads_cfg(tmp_path, {"localPref": 100}, {"localPref": 200})])
    (issue,) = exc.value.issues
    assert issue.obj == "BGPAdvertisement/a1" and issue.field == "spec.localPref"
    assert issue.message.startswith("invalid local preference 200: BGPAdvertisement/a0 gives the same prefixes")


@pytest.mark.parametrize("a,b", [
    ({"localPref": 100}, {"localPref": 100}),  # the same value
    ({"localPref": 100, "peers": ["p1"]}, {"localPref": 200, "peers": ["p2"]}),  # no peer in common
    ({"localPref": 100}, {"localPref": 200, "aggregationLength": 24, "aggregationLengthV6": 64}),  # other prefixes
    ({"localPref": 100}, {}),  # one sets none
])
def test_local_prefs_that_cannot_meet_are_accepted(tmp_path, a, b):
    assert len(load_config([ads_cfg(tmp_path, a, b)]).advertisements) == 2


def _svc(name, ann=None, lbip=None):
    spec = {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}
    if lbip:
        spec["loadBalancerIP"] = lbip
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "d", "uid": "u-" + name, "annotations": ann or {}}, "spec": spec}


@pytest.mark.parametrize("key", ["metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs"])
def test_load_balancer_ips_annotation_with_load_balancer_ip_is_an_error_for_that_service(key):
    st = Store()
    st.apply([Event("ADDED", o, "api") for o in server_objects()])
    st.apply([Event("ADDED", _svc("both", {key: "192.0.2.10"}, "192.0.2.10"), "api"),
              Event("ADDED", _svc("ann", {key: "192.0.2.11"}), "api"),
              Event("ADDED", _svc("spec", lbip="192.0.2.12"), "api")])
    assert set(st.services) == {"d/ann", "d/spec"}
    assert st.services["d/ann"].requested_ips == ("192.0.2.11",)
    assert st.services["d/spec"].requested_ips == ("192.0.2.12",)
    (issue,) = [i for issues in st.issues.values() for i in issues]
    assert issue.obj == "Service/d/both" and issue.field == "spec.loadBalancerIP"
    assert f"both {key} and spec.loadBalancerIP are set" in issue.message


@pytest.mark.parametrize("entry,network", [("192.0.2.77/24", "192.0.2.0/24"), ("2001:db8::5/64", "2001:db8::/64")])
def test_pool_cidr_with_host_bits_is_masked_with_a_warning(tmp_path, entry, network):
    cfg = load_one(tmp_path, "IPAddressPool", {"addresses": [entry]})
    masked = load_one(tmp_path, "IPAddressPool", {"addresses": [network]})
    assert cfg.pools["x"].cidrs == masked.pools["x"].cidrs
    assert any(i.severity == "warning" and i.field == "spec.addresses[0]" and f"read as {network}" in i.message
               for i in cfg.issues)


# --- kinds and versions ----------------------------------------------------------------

@pytest.mark.parametrize("kind,api,msg", [
    ("BGPPear", "metallb.io/v1beta2", "unknown kind 'BGPPear' in metallb.io/v1beta2; did you mean BGPPeer?"),
    ("IPAddresPool", "metallb.io/v1beta1", "unknown kind 'IPAddresPool' in metallb.io/v1beta1; did you mean IPAddressPool?"),
    ("BGPAdvertisment", "metallb.io/v1beta1", "did you mean BGPAdvertisement?"),
    ("BGPPeer", "metallb.io/v1", "unsupported apiVersion 'metallb.io/v1' for BGPPeer"),
    ("IPAddressPool", "metallb.io/v1beta2", "unsupported apiVersion 'metallb.io/v1beta2' for IPAddressPool"),
])
def test_misspelt_kind_or_unknown_version_fails_check(tmp_path, capsys, kind, api, msg):
    objs = server_objects()
    bad = copy.deepcopy(objs[0] if kind.startswith("BGPP") else objs[2])
    bad["kind"], bad["apiVersion"] = kind, api
    bad["metadata"]["name"] = "typo"
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump_all(objs + [bad]))
    rc = main(["check", "-c", str(f)])
    out = capsys.readouterr()
    assert rc != 0
    assert msg in out.out + out.err


# --- BGPAdvertisement serviceSelectors in the planner -------------------------------------

def test_service_selectors_choose_the_advertisement(tmp_path):
    docs = [
        {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "p"},
         "spec": {"myASN": 1, "peerASN": 1, "peerAddress": "10.0.0.1"}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "pool"},
         "spec": {"addresses": ["192.0.2.0/24"]}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "web"},
         "spec": {"serviceSelectors": [{"matchLabels": {"app": "web"}}], "communities": ["1:1"]}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "all"},
         "spec": {"communities": ["2:2"]}},
    ]
    for name, ip, labels in (("w", "192.0.2.1", {"app": "web"}), ("o", "192.0.2.2", {"app": "db"})):
        s = _svc(name, lbip=ip)
        s["metadata"]["labels"] = labels
        docs.append(s)
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    routes = plan(load_config([str(f)]), "n").routes["p"]
    by_prefix = {r.prefix: r for r in routes.values()}
    assert by_prefix["192.0.2.1/32"].attrs.communities == (1 << 16 | 1, 2 << 16 | 2)
    assert by_prefix["192.0.2.2/32"].attrs.communities == (2 << 16 | 2,)
    assert [r.advertisement for r in by_prefix["192.0.2.2/32"].reasons] == ["all"]


ANNOTATION_CASES = [
    ("metallb.io/address-pool", "web", lambda s: s.pool == "web"),
    ("metallb.universe.tf/address-pool", "web", lambda s: s.pool == "web"),
    ("metallb.io/loadBalancerIPs", "192.0.2.5, 2001:db8::5", lambda s: s.requested_ips == ("192.0.2.5", "2001:db8::5")),
    ("metallb.universe.tf/loadBalancerIPs", "192.0.2.5", lambda s: s.requested_ips == ("192.0.2.5",)),
    ("metallb.io/allow-shared-ip", "k1", lambda s: s.sharing_key == "k1"),
    ("metallb.universe.tf/allow-shared-ip", "k1", lambda s: s.sharing_key == "k1"),
]


@pytest.mark.parametrize("key,value,check", ANNOTATION_CASES, ids=[c[0] for c in ANNOTATION_CASES])
def test_service_annotation(key, value, check):
    st = Store()
    st.apply([Event("ADDED", o, "api") for o in server_objects()])
    s = _svc("s", {key: value, LAST_APPLIED: "{}"})
    s["spec"]["ipFamilyPolicy"] = "PreferDualStack"
    st.apply([Event("ADDED", s, "api")])
    assert check(st.services["d/s"])


def test_service_allocation_from_the_manifest_drives_allocation(tmp_path):
    """spec.serviceAllocation read from an IPAddressPool reaches the allocator: a Service of the
    pool's namespace takes its address there first, another namespace's from the autoAssign pool."""
    docs = [
        {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "p"},
         "spec": {"myASN": 1, "peerASN": 1, "peerAddress": "10.0.0.1"}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "a-general"},
         "spec": {"addresses": ["198.51.100.0/28"]}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "b-team"},
         "spec": {"addresses": ["192.0.2.0/28"], "serviceAllocation": {"priority": 1, "namespaces": ["team"]}}},
    ]
    for ns in ("team", "other"):
        s = _svc("s")
        s["metadata"]["namespace"] = ns
        docs.append(s)
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    allocations = plan(load_config([str(f)]), "n").allocations
    assert allocations["team/s"][0].startswith("192.0.2.")
    assert allocations["other/s"][0].startswith("198.51.100.")


def test_every_row_of_the_compatibility_table_names_tests_that_exist():
    """docs/metallb-compatibility.md: each row names a test, and each test it names exists."""
    import os
    import re

    root = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
    with open(os.path.join(root, "docs", "metallb-compatibility.md")) as f:
        rows = [ln for ln in f if ln.startswith("| ") and not ln.startswith(("| field", "|---"))]
    assert len(rows) > 50
    cited = 0
    for row in rows:
        cell = row.rstrip().rstrip("|").rsplit("|", 1)[1]
        if "no such field" in row:
            continue
        refs = re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?", cell)  # a bare ::name is in the file before it
        assert any(p for p, _ in refs), row
        path = ""
        for p, name in refs:
            path = p or path
            with open(os.path.join(root, path)) as f:
                text = f.read()
            if name:
                assert re.search(rf"def {name}\b", text), (path, name)
            cited += 1
    assert cited >= len(rows) - 1


def test_service_selectors_by_difference_equal_a_fresh_plan():
    """A Service's labels changing moves it in and out of a serviceSelectors advertisement;
    the planner's delta leaves the same tables as a plan from scratch."""
    from speakerd.policy.planner import Planner

    mk = {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "sel", "namespace": "m"},
          "spec": {"serviceSelectors": [{"matchLabels": {"app": "web"}}], "communities": ["1:1"]}}
    st = Store()
    st.apply([Event("ADDED", o, "api") for o in server_objects()] + [Event("ADDED", mk, "api")])
    assert not st.metallb_errors

    def labelled(app):
        s = _svc("s", lbip="192.0.2.9")
        s["metadata"]["labels"] = {"app": app}
        return s

    p = Planner("n")
    p.rebuild(st.config())
    for app, want in (("web", True), ("db", False), ("web", True)):
        ch = st.apply([Event("MODIFIED" if p.planned else "ADDED", labelled(app), "api")])
        p.services_changed(st.config(), ch.services.keys())
        mine = {k: tuple(sorted(r.advertisement for r in v.reasons)) for k, v in p.plan().routes["tor"].items()}
        fresh = {k: tuple(sorted(r.advertisement for r in v.reasons)) for k, v in plan(st.config(), "n").routes["tor"].items()}
        assert mine == fresh
        assert [("sel" in ads) for ads in mine.values()] == [want]


@pytest.mark.parametrize("kind,fields", [
    ("BGPPeer", ("disableMP", "dualStackAddressFamily", "dynamicASN", "interface")),
    ("IPAddressPool", ("serviceAllocation",)),
    ("BGPAdvertisement", ("serviceSelectors",)),
])
def test_speakerd_crds_keep_the_fields(kind, fields):
    """speakerd's own CRDs (generated from the models) define the fields, so an API server
    serving them keeps what the manifests say instead of pruning it."""
    from speakerd.crds import all_crds

    (crd,) = [c for c in all_crds() if c["spec"]["names"]["kind"] == kind]
    for version in crd["spec"]["versions"]:
        props = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        assert set(fields) <= set(props), version["name"]


def test_v1beta1_peer_timers_served_as_zero_are_unset(tmp_path):
    """MetalLB's v1beta1 BGPPeer has plain (not pointer) Durations: the API server serves an
    unset holdTime/keepaliveTime as "0s"; they mean the defaults, not a hold time of 0."""
    cfg = load_one(tmp_path, "BGPPeer", {"holdTime": "0s", "keepaliveTime": "0s"}, api="metallb.io/v1beta1")
    assert (cfg.peers["x"].hold_time, cfg.peers["x"].keepalive_time) == (90, 30)
    cfg = load_one(tmp_path, "BGPPeer", {"holdTime": "0s", "keepaliveTime": "0s"})  # v1beta2: pointers, 0 is 0
    assert (cfg.peers["x"].hold_time, cfg.peers["x"].keepalive_time) == (0, 0)
