"""BGPPeer spec.interface (BGP unnumbered) and a peerAddress with a zone (metallb#2423)."""
from __future__ import annotations

import pytest

from test_config_validation import errors, one_error, write

from speakerd.config import load_config
from speakerd.fsm import SessionSettings
from speakerd.fsm.open import local_capabilities
from speakerd.wire.capabilities import ExtendedNextHop


def peer(spec: str) -> str:
    return f"""\
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: p1, namespace: metallb-system}}
spec:
  myASN: 64500
  peerASN: 64501
{spec}"""


def test_interface_peer_loads_and_offers_extended_next_hop(tmp_path):
    p = load_config([write(tmp_path, peer("  interface: eth1\n"))]).peers["p1"]
    assert p.interface == "eth1" and p.peer_address == "" and p.ipv6
    s = SessionSettings.from_peer(p, router_id=1)
    assert s.interface == "eth1" and s.extended_next_hop
    assert ExtendedNextHop(((1, 1, 2),)) in local_capabilities(s)


def test_address_peer_does_not_offer_extended_next_hop(tmp_path):
    p = load_config([write(tmp_path, peer("  peerAddress: 10.0.0.1\n"))]).peers["p1"]
    assert not any(isinstance(c, ExtendedNextHop)
                   for c in local_capabilities(SessionSettings.from_peer(p, router_id=1)))


def test_interface_and_peer_address_exclusive(tmp_path):
    path, err = one_error(tmp_path, peer("  interface: eth1\n  peerAddress: 10.0.0.1\n"))
    assert err == f"{path}: BGPPeer/p1: spec.interface: peerAddress and interface are mutually exclusive; set only one"


def test_one_of_peer_address_and_interface_required(tmp_path):
    path, err = one_error(tmp_path, peer(""))
    assert err == f"{path}: BGPPeer/p1: spec.peerAddress: required field is missing"


@pytest.mark.parametrize("fld", ["ebgpMultiHop: true", "password: x", "bfdProfile: prof",
                                 "sourceAddress: 10.0.0.2"])
def test_unsupported_with_interface(tmp_path, fld):
    path, errs = errors(tmp_path, peer(f"  interface: eth1\n  {fld}\n"))
    name = fld.split(":")[0]
    assert any(e.startswith(f"{path}: BGPPeer/p1: spec.{name}: {name} together with interface") for e in errs), errs


@pytest.mark.parametrize("bad", ["eth/1", "a-very-long-interface-name"])
def test_interface_name_checked(tmp_path, bad):
    path, err = one_error(tmp_path, peer(f"  interface: {bad}\n"))
    assert err.startswith(f"{path}: BGPPeer/p1: spec.interface: ")


def test_zoned_link_local_peer_address(tmp_path):
    p = load_config([write(tmp_path, peer("  peerAddress: FE80::0001%eth0\n"))]).peers["p1"]
    assert p.peer_address == "fe80::1%eth0" and p.interface is None


@pytest.mark.parametrize("bad", ["10.0.0.1%eth0", "2001:db8::1%eth0", "fe80::1%", "fe80::1%a/b"])
def test_zone_only_on_link_local(tmp_path, bad):
    path, err = one_error(tmp_path, peer(f"  peerAddress: '{bad}'\n"))
    assert err.startswith(f"{path}: BGPPeer/p1: spec.peerAddress: invalid IP address"), err


def test_plan_names_the_interface_and_the_dynamic_kind(tmp_path):
    import subprocess
    import sys
    doc = peer("  interface: eth1\n").replace("  peerASN: 64501\n", "  dynamicASN: external\n")
    out = subprocess.run([sys.executable, "-c", "import sys; from speakerd.cli import main; sys.exit(main())",
                          "plan", "-c", write(tmp_path, doc), "--node", "n1"],
                         capture_output=True, text=True, timeout=60)
    assert "peer p1 (interface eth1 AS external, eBGP, IPv4+IPv6)" in out.stdout, out.stdout + out.stderr
