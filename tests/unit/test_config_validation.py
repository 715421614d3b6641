"""One test per validation rule: each asserts file, Kind/name, field path and reason."""
from __future__ import annotations

import base64
import textwrap

import pytest

from speakerd.config import ConfigError, load_config

PEER = """\
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: {name}, namespace: metallb-system}}
spec:
  myASN: {my}
  peerASN: {peer}
  peerAddress: {addr}
{extra}
"""


def peer(name="p1", my=64500, peer_asn=64501, addr="10.0.0.1", extra=""):
    extra = textwrap.indent(textwrap.dedent(extra), "  ") if extra else ""
    return PEER.format(name=name, my=my, peer=peer_asn, addr=addr, extra=extra)


POOL = """\
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: {name}, namespace: metallb-system}}
spec:
  addresses: [{addrs}]
"""


def pool(name="pool1", addrs="192.0.2.0/24"):
    return POOL.format(name=name, addrs=addrs)


def adv(name="adv1", spec="{}"):
    return f"apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec: {spec}\n"


def bfd(spec):
    return f"apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: prof, namespace: metallb-system}}\nspec: {spec}\n"


def write(tmp_path, *docs, name="cfg.yaml"):
    f = tmp_path / name
    f.write_text("\n---\n".join(docs))
    return str(f)


def errors(tmp_path, *docs):
    path = write(tmp_path, *docs)
    with pytest.raises(ConfigError) as exc:
        load_config([path])
    return path, [str(i) for i in exc.value.issues]


def one_error(tmp_path, *docs):
    path, errs = errors(tmp_path, *docs)
    assert len(errs) == 1, errs
    return path, errs[0]


def test_password_and_secret_exclusive(tmp_path):
    path, err = one_error(tmp_path, peer(extra="password: x\npasswordSecret: {name: s}\n"))
    assert err == f"{path}: BGPPeer/p1: spec.passwordSecret: password and passwordSecret are mutually exclusive; set only one"


def test_password_secret_resolved_from_data_and_string_data(tmp_path):
    secret = ("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: metallb-system}\n"
              "type: kubernetes.io/basic-auth\ndata: {password: " + base64.b64encode(b"s3cret").decode() + "}\n")
    cfg = load_config([write(tmp_path, peer(extra="passwordSecret: {name: s}\n"), secret)])
    assert cfg.peers["p1"].password == "s3cret"
    secret2 = secret.replace("data: {password: czNjcmV0}", "stringData: {password: plain}")
    cfg = load_config([write(tmp_path, peer(extra="passwordSecret: {name: s}\n"), secret2)])
    assert cfg.peers["p1"].password == "plain"


def test_password_secret_missing(tmp_path):
    path, err = one_error(tmp_path, peer(extra="passwordSecret: {name: nope}\n"))
    assert err == f"{path}: BGPPeer/p1: spec.passwordSecret: Secret metallb-system/nope not found"


def test_password_secret_wrong_type(tmp_path):
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: metallb-system}\ntype: Opaque\nstringData: {password: x}\n"
    path, err = one_error(tmp_path, peer(extra="passwordSecret: {name: s}\n"), secret)
    assert "spec.passwordSecret: Secret metallb-system/s has type 'Opaque', expected kubernetes.io/basic-auth" in err


@pytest.mark.parametrize("hold", ["1s", "2s"])
def test_hold_time_zero_or_at_least_3s(tmp_path, hold):
    path, err = one_error(tmp_path, peer(extra=f"holdTime: {hold}\n"))
    assert err == f"{path}: BGPPeer/p1: spec.holdTime: hold time {hold} must be 0 or at least 3s"


def test_keepalive_not_above_hold(tmp_path):
    path, err = one_error(tmp_path, peer(extra="holdTime: 30s\nkeepaliveTime: 1m\n"))
    assert err == f"{path}: BGPPeer/p1: spec.keepaliveTime: keepalive time 60s must not exceed hold time 30s"


def test_timers_derive_each_other(tmp_path):
    cfg = load_config([write(tmp_path, peer(extra="holdTime: 1m30s\n"), peer("p2", addr="10.0.0.2", extra="keepaliveTime: 10s\n"),
                             peer("p3", addr="10.0.0.3"), peer("p4", addr="10.0.0.4", extra="holdTime: \"0\"\n"))])
    assert (cfg.peers["p1"].hold_time, cfg.peers["p1"].keepalive_time) == (90, 30)
    assert (cfg.peers["p2"].hold_time, cfg.peers["p2"].keepalive_time) == (30, 10)
    assert (cfg.peers["p3"].hold_time, cfg.peers["p3"].keepalive_time) == (90, 30)
    assert (cfg.peers["p4"].hold_time, cfg.peers["p4"].keepalive_time) == (0, 0)


def test_duration_syntax(tmp_path):
    path, err = one_error(tmp_path, peer(extra="holdTime: 10x\n"))
    assert err.startswith(f"{path}: BGPPeer/p1: spec.holdTime: invalid duration '10x'")
    path, err = one_error(tmp_path, peer(extra="holdTime: 4500ms\n"))
    assert err == f"{path}: BGPPeer/p1: spec.holdTime: 4.5s: BGP timers are whole seconds"


def test_my_asn_identical(tmp_path):
    path, err = one_error(tmp_path, peer(), peer("p2", my=64999, addr="10.0.0.2"))
    assert err == f"{path}: BGPPeer/p2: spec.myASN: myASN 64999 differs from 64500 in BGPPeer/p1; peers in one VRF on the same nodes must use the same myASN"


def test_router_id_identical_and_ipv4(tmp_path):
    path, errs = errors(tmp_path, peer(extra="routerID: 10.1.1.1\n"), peer("p2", addr="10.0.0.2", extra="routerID: 10.2.2.2\n"),
                        peer("p3", addr="10.0.0.3", extra="routerID: \"2001:db8::1\"\n"))
    assert f"{path}: BGPPeer/p2: spec.routerID: routerID 10.2.2.2 differs from 10.1.1.1 in BGPPeer/p1; peers in one VRF on the same nodes must use the same routerID" in errs
    assert f"{path}: BGPPeer/p3: spec.routerID: router ID '2001:db8::1' must be an IPv4 address (dotted quad)" in errs


@pytest.mark.parametrize("field,value", [("myASN", 0), ("peerASN", 4294967296)])
def test_asn_range(tmp_path, field, value):
    kw = {"my": value} if field == "myASN" else {"peer_asn": value}
    path, err = one_error(tmp_path, peer(**kw))
    assert err == f"{path}: BGPPeer/p1: spec.{field}: ASN {value} is out of range 1..4294967295"


def test_peer_port_range(tmp_path):
    path, err = one_error(tmp_path, peer(extra="peerPort: 16385\n"))
    assert err == f"{path}: BGPPeer/p1: spec.peerPort: port 16385 is out of range 1..16384"


def test_peer_address_parses(tmp_path):
    path, err = one_error(tmp_path, peer(addr="10.0.0"))
    assert err == f"{path}: BGPPeer/p1: spec.peerAddress: invalid IP address '10.0.0'"


def test_source_address_same_family(tmp_path):
    path, err = one_error(tmp_path, peer(extra="sourceAddress: \"2001:db8::1\"\n"))
    assert err == f"{path}: BGPPeer/p1: spec.sourceAddress: 2001:db8::1 is not the same address family as peerAddress 10.0.0.1"


def test_ebgp_multihop_not_on_ibgp(tmp_path):
    path, err = one_error(tmp_path, peer(peer_asn=64500, extra="ebgpMultiHop: true\n"))
    assert err == f"{path}: BGPPeer/p1: spec.ebgpMultiHop: ebgpMultiHop is for eBGP peers; this peer is iBGP (myASN == peerASN)"


def test_bfd_profile_reference(tmp_path):
    path, err = one_error(tmp_path, peer(extra="bfdProfile: nope\n"))
    assert err == f"{path}: BGPPeer/p1: spec.bfdProfile: BFDProfile 'nope' not found"


def test_unknown_field_suggests(tmp_path):
    path, errs = errors(tmp_path, peer(extra="peerAdress: 10.0.0.9\n"))
    assert f"{path}: BGPPeer/p1: spec.peerAdress: unknown field spec.peerAdress; did you mean peerAddress?" in errs


def test_unsupported_metallb_field_rejected(tmp_path):
    path, err = one_error(tmp_path, peer(extra="bfdProfileRef: x\n"))
    assert err.startswith(f"{path}: BGPPeer/p1: spec.bfdProfileRef: not supported by speakerd")


def test_v1beta1_peer_is_deprecated_warning(tmp_path):
    cfg = load_config([write(tmp_path, peer().replace("v1beta2", "v1beta1"))])
    assert any("apiVersion: metallb.io/v1beta1 BGPPeer is deprecated" in w for w in cfg.warnings)


def test_pools_do_not_overlap(tmp_path):
    path, err = one_error(tmp_path, pool(), pool("pool2", "192.0.2.100-192.0.2.110"))
    assert err == f"{path}: IPAddressPool/pool2: spec.addresses: 192.0.2.100-192.0.2.110 overlaps 192.0.2.0/24 of IPAddressPool/pool1 ({path})"


def test_pool_cidr_with_host_bits_is_masked(tmp_path):
    path = write(tmp_path, pool(addrs="192.0.2.1/24"))
    cfg = load_config([path])
    assert cfg.pools["pool1"].cidrs == ((1, 0xC0000200, 24),)
    assert f"{path}: IPAddressPool/pool1: spec.addresses[0]: 192.0.2.1/24 has host bits set; read as 192.0.2.0/24, as MetalLB does" in cfg.warnings


def test_pool_address_parses(tmp_path):
    path, err = one_error(tmp_path, pool(addrs="192.0.2.1/33"))
    assert err.startswith(f"{path}: IPAddressPool/pool1: spec.addresses[0]: '192.0.2.1/33'")


def test_aggregation_length_ranges(tmp_path):
    path, errs = errors(tmp_path, pool(), adv(spec="{aggregationLength: 33, aggregationLengthV6: 0}"))
    assert f"{path}: BGPAdvertisement/adv1: spec.aggregationLength: invalid aggregation length 33 for IPv4 (1..32)" in errs
    assert f"{path}: BGPAdvertisement/adv1: spec.aggregationLengthV6: invalid aggregation length 0 for IPv6 (1..128)" in errs


def test_aggregation_not_beyond_pool(tmp_path):
    path, err = one_error(tmp_path, pool(addrs="1.1.1.0/28"), adv(spec="{ipAddressPools: [pool1], aggregationLength: 26}"))
    assert err.startswith(f"{path}: BGPAdvertisement/adv1: spec.aggregationLength: invalid aggregation length 26: prefix /28 of 1.1.1.0/28")
    # a range's widest CIDR counts: 4.4.4.100-4.4.4.200 contains 4.4.4.128/26
    load_config([write(tmp_path, pool(addrs="4.4.4.100-4.4.4.200"), adv(spec="{aggregationLength: 26}"))])
    path, err = one_error(tmp_path, pool(addrs="4.4.4.100-4.4.4.200"), adv(spec="{aggregationLength: 25}"))
    assert "prefix /26 of 4.4.4.100-4.4.4.200" in err


def test_communities(tmp_path):
    alias = ("apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {name: c, namespace: metallb-system}\n"
             "spec: {communities: [{name: mine, value: '64500:7'}]}\n")
    cfg = load_config([write(tmp_path, pool(), alias, adv(spec="{communities: [64500:1, 'large:1:2:3', mine, no-export]}"))])
    a = cfg.advertisements["adv1"]
    assert a.communities == tuple(sorted((64500 << 16 | 1, 64500 << 16 | 7, 0xFFFFFF01)))
    assert a.large_communities == ((1, 2, 3),)
    path, errs = errors(tmp_path, pool(), adv(spec="{communities: [65536:1, nosuch, 'large:1:2']}"))
    assert f"{path}: BGPAdvertisement/adv1: spec.communities[0]: community part 65536 does not fit in 16 bits (max 65535)" in errs
    assert (f"{path}: BGPAdvertisement/adv1: spec.communities[1]: 'nosuch' is neither a community (A:B, large:A:B:C) "
            "nor a Community alias that exists") in errs
    assert f"{path}: BGPAdvertisement/adv1: spec.communities[2]: invalid large community 'large:1:2': expected large:A:B:C" in errs


def test_local_pref_on_ebgp_only_warns(tmp_path):
    path = write(tmp_path, peer(), pool(), adv(spec="{localPref: 100}"))
    cfg = load_config([path])
    assert cfg.warnings == (f"{path}: BGPAdvertisement/adv1: spec.localPref: LOCAL_PREF is only sent to iBGP peers; every peer "
                            "this advertisement reaches is eBGP (p1), so localPref has no effect",)


def test_references_exist(tmp_path):
    path, errs = errors(tmp_path, pool(), adv(spec="{ipAddressPools: [nope], peers: [ghost]}"))
    assert f"{path}: BGPAdvertisement/adv1: spec.ipAddressPools[0]: IPAddressPool 'nope' not found" in errs
    assert f"{path}: BGPAdvertisement/adv1: spec.peers[0]: BGPPeer 'ghost' not found" in errs


def test_duplicate_names(tmp_path):
    path, err = one_error(tmp_path, peer(), peer(addr="10.0.0.2"))
    assert err == f"{path}: BGPPeer/p1: metadata.name: duplicate BGPPeer name 'p1' (first defined in {path})"


@pytest.mark.parametrize("field,value,msg", [
    ("receiveInterval", 5, "5 ms is out of range 10..60000 ms"),
    ("transmitInterval", 60001, "60001 ms is out of range 10..60000 ms"),
    ("detectMultiplier", 1, "1 is out of range 2..255"),
    ("minimumTtl", 255, "255 is out of range 1..254"),
])
def test_bfd_ranges(tmp_path, field, value, msg):
    path, err = one_error(tmp_path, bfd(f"{{{field}: {value}}}"))
    assert err == f"{path}: BFDProfile/prof: spec.{field}: {msg}"


def test_bfd_echo_mode_unsupported(tmp_path):
    path, err = one_error(tmp_path, bfd("{echoMode: true}"))
    assert err.startswith(f"{path}: BFDProfile/prof: spec.echoMode: echo mode is not supported by speakerd")


def test_service_ip_and_pool_annotation(tmp_path):
    svc = ("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: ns\n  annotations:\n"
           "    metallb.universe.tf/address-pool: nope\nspec: {type: LoadBalancer, loadBalancerIP: 1.2.3}\n")
    path, errs = errors(tmp_path, svc)
    assert f"{path}: Service/ns/s: spec.loadBalancerIP: invalid IP address '1.2.3'" in errs
    assert f"{path}: Service/ns/s: metadata.annotations[metallb.universe.tf/address-pool]: IPAddressPool 'nope' not found" in errs


def test_all_errors_reported_at_once(tmp_path):
    path, errs = errors(tmp_path, peer(extra="peerPort: 0\nholdTime: 1s\n"), pool(addrs="bogus"))
    assert len(errs) == 3


def test_other_kinds_skipped_as_info(tmp_path):
    ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: test}\n"
    cfg = load_config([write(tmp_path, ns)])
    assert cfg.warnings == ()
    assert [i.severity for i in cfg.issues] == ["info"]
    assert "1 object(s) of kind Namespace (v1): not used by speakerd; skipped" in str(cfg.issues[0])


def test_yaml_syntax_error_names_file(tmp_path):
    path, err = one_error(tmp_path, "a: [")
    assert err.startswith(f"{path}: YAML syntax error")


def test_directory_sorted_and_json(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "b.yaml").write_text(pool())
    (d / "a.json").write_text('{"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "p"},'
                              ' "spec": {"myASN": 1, "peerASN": 2, "peerAddress": "10.0.0.1"}}')
    (d / "ignored.txt").write_text("junk")
    cfg = load_config([str(d)])
    assert cfg.files == (str(d / "a.json"), str(d / "b.yaml"))
    assert list(cfg.peers) == ["p"] and list(cfg.pools) == ["pool1"]


def test_unquoted_community_stays_text(tmp_path):
    # YAML 1.1 would read 64500:10 as a base-60 integer; Kubernetes reads text.
    cfg = load_config([write(tmp_path, pool(), adv(spec="{communities: [64500:10]}"))])
    assert cfg.advertisements["adv1"].communities == (64500 << 16 | 10,)


@pytest.mark.parametrize("value", ["987654321", "[s3cr3t, 987654321]", "{k: 987654321}"])
def test_password_of_wrong_type_not_shown(tmp_path, value):
    """The message names the field but never echoes the value: it goes to logs and check --json."""
    path, err = one_error(tmp_path, peer(extra=f"password: {value}\n"))
    assert err == f"{path}: BGPPeer/p1: spec.password: expected a string (the value is not shown: it is a secret)"
    assert "987654321" not in err and "s3cr3t" not in err


@pytest.mark.parametrize("ip", ['"10.0.0.1\\0"', '"2001:db8::1\\0"'])
def test_service_ip_with_nul_is_an_error_not_a_crash(tmp_path, ip):
    svc = ("apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: default}\nspec: {type: LoadBalancer}\n"
           f"status:\n  loadBalancer:\n    ingress:\n    - ip: {ip}\n")
    path, err = one_error(tmp_path, svc)
    assert err.startswith(f"{path}: Service/default/s: status.loadBalancer.ingress[0].ip: invalid IP address ")



@pytest.mark.parametrize("meta_extra, spec_extra, fld, msg", [
    (", annotations: 5", "", "metadata.annotations", "expected a mapping, got 5"),
    (", annotations: {metallb.universe.tf/address-pool: [a]}", "",
     "metadata.annotations[metallb.universe.tf/address-pool]", "expected an IPAddressPool name, got ['a']"),
    ("", ", ipFamilies: [{a: 1}]", "spec.ipFamilies", "expected IPv4 and/or IPv6 once each, got [{'a': 1}]"),
])
def test_service_fields_of_the_wrong_type_are_errors_not_crashes(tmp_path, meta_extra, spec_extra, fld, msg):
    svc = (f"apiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: default{meta_extra}}}\n"
           f"spec: {{type: LoadBalancer{spec_extra}}}\n")
    path, err = one_error(tmp_path, svc)
    assert err == f"{path}: Service/default/s: {fld}: {msg}"


@pytest.mark.parametrize("kind_doc", [
    "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  labels: {{bgp: {v}}}\n",
    "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: pool1\n  labels: {{bgp: {v}}}\n"
    "spec: {{addresses: [192.0.2.0/24]}}\n",
])
def test_label_values_must_be_strings(tmp_path, kind_doc):
    """'bgp: true' is a boolean: an error, not a label 'True' that a selector for "true" misses."""
    path, err = one_error(tmp_path, kind_doc.format(v="true"))
    assert err.endswith("metadata.labels[bgp]: label keys and values must be strings, got 'bgp': True (quote it)")
    load_config([write(tmp_path, kind_doc.format(v='"true"'))])  # quoted: fine
