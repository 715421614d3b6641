"""dualStackAddressFamily on an IPv6 session to a global address: speakerd has no IPv4 next hop
over it (RFC 8950 is offered only on link-local sessions, and no IPv4 address is configured), so
its IPv4 routes, planned for it, are never sent. The configuration says so where it is read."""
from __future__ import annotations

import yaml
from test_metallb_compat import dual_stack_cfg

from speakerd.fsm import SessionSettings
from speakerd.policy.types import RouteAttrs
from speakerd.rib.adj_out import AdjRibOut
from speakerd.config import load_config
from speakerd.fsm.open import local_capabilities
from speakerd.wire.capabilities import ExtendedNextHop


def test_ipv4_routes_have_no_next_hop_over_a_global_ipv6_session():
    """What the warning rests on: no IPv4 next hop, no RFC 8950 offered -> not sent."""
    rib = AdjRibOut(64500, False)
    rib.connected("2001:db8:1::2")
    assert rib.path_attributes(1, RouteAttrs()) is None
    assert rib.path_attributes(2, RouteAttrs()) is not None


def test_dual_stack_on_a_global_ipv6_peer_warns_that_ipv4_routes_are_not_sent(tmp_path):
    cfg = dual_stack_cfg(tmp_path, ("v6both", {"peerAddress": "2001:db8:1::1", "dualStackAddressFamily": True}))
    settings = SessionSettings.from_peer(cfg.peers["v6both"], 1)
    assert not any(isinstance(c, ExtendedNextHop) for c in local_capabilities(settings))
    warned = [(i.obj, i.field, i.message) for i in cfg.issues if i.severity == "warning"]
    assert warned == [("BGPPeer/v6both", "spec.dualStackAddressFamily",
                       "IPv4 routes are not sent over this IPv6 session: speakerd has no IPv4 next hop on it "
                       "(RFC 8950 is offered only to a link-local peer); peer with an IPv4 address for them, "
                       "or use an interface (BGP unnumbered) or a link-local peerAddress")]


def test_no_warning_where_ipv4_routes_can_go(tmp_path):
    for name, spec in (("v4both", {"peerAddress": "10.0.0.2", "dualStackAddressFamily": True}),
                       ("ll", {"peerAddress": "fe80::1%eth0", "dualStackAddressFamily": True}),
                       ("unnum", {"interface": "eth1"})):
        cfg = dual_stack_cfg(tmp_path, (name, spec))
        assert not [i for i in cfg.issues if i.severity == "warning"], (name, cfg.issues)


def test_no_warning_when_no_ipv4_address_is_advertised_to_it(tmp_path):
    docs = [{"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "v6both"},
             "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "2001:db8:1::1",
                      "dualStackAddressFamily": True}},
            {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "v6"},
             "spec": {"addresses": ["2001:db8::/120"]}},
            {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "all"}, "spec": {}}]
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    assert not [i for i in load_config([str(f)]).issues if i.severity == "warning"]
