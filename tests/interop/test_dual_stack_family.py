"""BGPPeer dualStackAddressFamily against FRR: by default (false, the CRD default) a session
carries only the family of its peer address, as MetalLB v0.15+ configures FRR (the neighbor is
activated in that address family only); with true, both families over the one session.

FRR's (and GoBGP's) neighbor is activated in both address families here, so what the session
carries is decided by what speakerd offers in its OPEN."""
from __future__ import annotations

import pytest

from tests.interop.netlab import (Frr, GoBgp, Neighbor, NotImplementedYet, Speakerd, advertisement,
                                  bgp_peer, manifests, node, pool, service, wait_for)

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

SPEAKER_ASN, PEER_ASN = 64500, 64501
NODE = "node1"
V4, V6 = "203.0.113.10", "2001:db8:5d::10"


def start(lab, s, peer_address: str, **spec):
    objects = [node(NODE),
               bgp_peer("peer", SPEAKER_ASN, PEER_ASN, peer_address, holdTime="9s", keepaliveTime="3s",
                        connectTime="1s", **spec),
               pool("lab", ["203.0.113.0/24", "2001:db8:5d::/120"]),
               advertisement("lab", ipAddressPools=["lab"]), service("dual", [V4, V6])]
    try:
        return Speakerd(s, manifests(lab.subdir("config"), objects), NODE, socket=lab.dir / "speakerd.sock")
    except NotImplementedYet as e:
        pytest.skip(str(e))


def frr_both_families(lab, p, speaker_address: str) -> Frr:
    frr = Frr(p, lab.subdir("frr"), PEER_ASN, "192.0.2.2", neighbors=[Neighbor(speaker_address, SPEAKER_ASN)])
    other = "ipv4" if ":" in speaker_address else "ipv6"
    frr.configure(f"router bgp {PEER_ASN}", f"address-family {other} unicast", f"neighbor {speaker_address} activate")
    return frr


def multiprotocol(frr: Frr, ip: str) -> dict:
    """FRR's view of the MP capability per family: {'ipv4Unicast': {'advertisedAndReceived': True}, ...}."""
    return frr.neighbor(ip).get("neighborCapabilities", {}).get("multiprotocolExtensions", {})


def families_in_effect(sp: Speakerd, ip: str) -> list[str]:
    """speakerctl: the families configured for the session and those negotiated (must agree here)."""
    nb = next(n for n in sp.ctl("show", "bgp", "neighbors")["neighbors"] if n["address"] == ip)
    assert nb["configured"]["families"] == nb["capabilities"]["in_effect"]["families"], nb
    return nb["capabilities"]["in_effect"]["families"]


@pytest.mark.parametrize("v6_session", [False, True], ids=["ipv4-session", "ipv6-session"])
def test_default_carries_only_the_sessions_family(lab, v6_session):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    ours, theirs = (link.v6_a, link.v6_b) if v6_session else (link.v4_a, link.v4_b)
    own, other = (6, 4) if v6_session else (4, 6)
    frr = frr_both_families(lab, p, ours)
    sp = start(lab, s, theirs)
    sp.wait_established(theirs)
    frr.wait_established(ours)
    mine = V6 if v6_session else V4
    wait_for(lambda: frr.routes(own).get(f"{mine}/{128 if v6_session else 32}"), 20, f"the IPv{own} route at FRR")
    # the other family was offered by FRR but not by speakerd: not negotiated, so no route of it can come
    mp = multiprotocol(frr, ours)
    own_key, other_key = f"ipv{own}Unicast", f"ipv{other}Unicast"
    assert mp.get(own_key, {}).get("advertisedAndReceived"), mp
    assert mp.get(other_key) == {"advertised": True}, mp
    assert families_in_effect(sp, theirs) == [f"ipv{own}-unicast"]
    assert frr.routes(other) == {}


def test_dual_stack_address_family_carries_both(lab):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    frr = frr_both_families(lab, p, link.v4_a)
    sp = start(lab, s, link.v4_b, dualStackAddressFamily=True)
    sp.wait_established(link.v4_b)
    wait_for(lambda: frr.routes(6).get(f"{V6}/128"), 20, "the IPv6 route at FRR over the IPv4 session")
    assert f"{V4}/32" in frr.routes(4)
    mp = multiprotocol(frr, link.v4_a)
    assert mp["ipv4Unicast"].get("advertisedAndReceived") and mp["ipv6Unicast"].get("advertisedAndReceived"), mp
    assert families_in_effect(sp, link.v4_b) == ["ipv4-unicast", "ipv6-unicast"]


class GoBgpBothFamilies(GoBgp):
    """GoBGP whose one neighbor has both afi-safis (the harness configures the address's own)."""

    def config(self) -> str:
        other = "ipv4-unicast" if self.neighbors[0].v6 else "ipv6-unicast"
        return super().config() + ("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n"
                                   f'      afi-safi-name = "{other}"\n')


@pytest.mark.parametrize("dual", [False, True], ids=["default", "dualStackAddressFamily"])
def test_gobgp_gets_the_families_speakerd_offers(lab, dual):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    gobgp = GoBgpBothFamilies(p, lab.subdir("gobgp"), PEER_ASN, "192.0.2.2",
                              neighbors=[Neighbor(link.v4_a, SPEAKER_ASN)])
    sp = start(lab, s, link.v4_b, **({"dualStackAddressFamily": True} if dual else {}))
    sp.wait_established(link.v4_b)
    gobgp.wait_established(link.v4_a)
    wait_for(lambda: gobgp.routes(4).get(f"{V4}/32"), 20, "the IPv4 route at GoBGP")
    if dual:
        wait_for(lambda: gobgp.routes(6).get(f"{V6}/128"), 20, "the IPv6 route at GoBGP over the IPv4 session")
        assert families_in_effect(sp, link.v4_b) == ["ipv4-unicast", "ipv6-unicast"]
    else:
        # IPv6 not negotiated (speakerd did not offer it): no IPv6 UPDATE can come on this session
        assert families_in_effect(sp, link.v4_b) == ["ipv4-unicast"]
        assert gobgp.routes(6) == {}


def link_local(ns, dev: str) -> str:
    out = ns.exec("ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link")
    return out.split()[3].split("/")[0]


def test_zoned_link_local_session_default_is_ipv6_only(lab):
    """peerAddress fe80::x%IF without dualStackAddressFamily: an IPv6 session like any other
    (MetalLB reads such an address as IPv6): IPv6 routes, no IPv4 and no RFC 8950 offered,
    although FRR activates IPv4 with extended next hop for the neighbor."""
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    s_dev, p_dev = link.dev(s), link.dev(p)
    ours, frr_ll = link_local(s, s_dev), link_local(p, p_dev)
    frr = Frr(p, lab.subdir("frr"), PEER_ASN, "192.0.2.2", neighbors=[Neighbor("192.0.2.99", 64599)])
    frr.configure(f"router bgp {PEER_ASN}", f"neighbor {ours} remote-as {SPEAKER_ASN}",
                  f"neighbor {ours} interface {p_dev}", f"neighbor {ours} timers connect 1",
                  f"neighbor {ours} capability extended-nexthop",
                  "address-family ipv4 unicast", f"neighbor {ours} activate", "exit-address-family",
                  "address-family ipv6 unicast", f"neighbor {ours} activate")
    sp = start(lab, s, f"{frr_ll}%{s_dev}")
    sp.wait_established(frr_ll)
    frr.wait_established(ours)
    wait_for(lambda: frr.routes(6).get(f"{V6}/128"), 20, "the IPv6 route at FRR")
    nb = next(n for n in sp.ctl("show", "bgp", "neighbors")["neighbors"] if n["peer"] == "peer")
    assert nb["capabilities"]["in_effect"]["families"] == ["ipv6-unicast"], nb
    assert "extended-next-hop" not in {c["name"] for c in nb["capabilities"]["offered"]}, nb
    assert frr.routes(4) == {}
