"""Two BGPPeers for one neighbour (same address or same unnumbered interface, same port and VRF,
node selectors that may select the same node): MetalLB accepts it (FRR then has one neighbor),
but speakerd would run two sessions to it from one node, and the router takes one of them; the
other collides and retries for ever, and incoming connections go to only one. Said on the
second BGPPeer, naming the first."""
from __future__ import annotations

import pytest
import yaml
from test_metallb_compat import RACK_A, RACK_B

from speakerd.config import load_config


def load(tmp_path, *specs):
    docs = [{"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": f"p{i}"},
             "spec": {"myASN": 64500, "peerASN": 65000 + i, **s}} for i, s in enumerate(specs)]
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    cfg = load_config([str(f)])
    return cfg, [(i.obj, i.field, i.message) for i in cfg.issues if i.severity == "warning"]


@pytest.mark.parametrize("a,b,field,what", [
    ({"peerAddress": "10.0.0.1"}, {"peerAddress": "10.0.0.1"}, "spec.peerAddress", "10.0.0.1"),
    ({"peerAddress": "2001:db8::1"}, {"peerAddress": "2001:DB8:0::1"}, "spec.peerAddress", "2001:db8::1"),
    ({"peerAddress": "fe80::1%eth1"}, {"peerAddress": "fe80::1%eth1"}, "spec.peerAddress", "fe80::1%eth1"),
    ({"interface": "eth1"}, {"interface": "eth1"}, "spec.interface", "interface eth1"),
])
def test_one_neighbour_twice_is_said_on_the_second(tmp_path, a, b, field, what):
    cfg, warned = load(tmp_path, a, b)
    assert set(cfg.peers) == {"p0", "p1"}  # loads, as in MetalLB
    assert warned == [("BGPPeer/p1", field,
                       f"{what} port 179 is the neighbour of BGPPeer/p0 too (same VRF, on the same nodes): "
                       "the router takes one session from a node and the other collides and retries; "
                       "keep one BGPPeer per neighbour")]


@pytest.mark.parametrize("a,b", [
    ({"peerAddress": "10.0.0.1"}, {"peerAddress": "10.0.0.2"}),
    ({"peerAddress": "10.0.0.1"}, {"peerAddress": "10.0.0.1", "vrf": "red"}),
    ({"peerAddress": "10.0.0.1"}, {"peerAddress": "10.0.0.1", "peerPort": 1179}),
    ({"peerAddress": "10.0.0.1", "nodeSelectors": RACK_A}, {"peerAddress": "10.0.0.1", "nodeSelectors": RACK_B}),
    ({"peerAddress": "fe80::1%eth1"}, {"peerAddress": "fe80::1%eth2"}),
    ({"interface": "eth1"}, {"interface": "eth2"}),
])
def test_distinct_neighbours_are_fine(tmp_path, a, b):
    _, warned = load(tmp_path, a, b)
    assert warned == []
