"""BGP unnumbered against FRR: BGPPeer spec.interface, FRR's `neighbor IF interface remote-as
external` sending router advertisements; IPv4 routes with an IPv6 link-local next hop (RFC 8950)."""
from __future__ import annotations

import ipaddress

import pytest

from tests.interop.netlab import (Frr, Neighbor, NotImplementedYet, Speakerd, advertisement, manifests,
                                  node, pool, service, wait_for)

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

SPEAKER_ASN, FRR_ASN = 64500, 64501
NODE = "node1"
IP = "203.0.113.10"


def link_local(ns, dev: str) -> str:
    out = ns.exec("ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link")
    return out.split()[3].split("/")[0]


def start_unnumbered(lab, s, s_dev: str) -> Speakerd:
    """speakerd in ``s`` with one BGPPeer on interface ``s_dev`` (dynamicASN external)."""
    peer = {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
            "metadata": {"name": "tor", "namespace": "metallb-system"},
            "spec": {"myASN": SPEAKER_ASN, "dynamicASN": "external", "interface": s_dev,
                     "holdTime": "9s", "keepaliveTime": "3s", "connectTime": "1s"}}
    objects = [node(NODE), peer, pool("lab", ["203.0.113.0/24"]),
               advertisement("lab", ipAddressPools=["lab"]), service("svc", [IP])]
    try:
        return Speakerd(s, manifests(lab.subdir("config"), objects), NODE, socket=lab.dir / "speakerd.sock")
    except NotImplementedYet as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("kernel_ras", [True, False], ids=["kernel-accepts-ras", "kernel-ignores-ras"])
def test_unnumbered_session_and_ipv4_route_with_link_local_next_hop(lab, kernel_ras):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    s_dev, p_dev = link.dev(s), link.dev(p)
    if not kernel_ras:  # a node that does not process RAs: speakerd's own RA listener finds the router
        s.exec("sysctl", "-q", "-w", f"net.ipv6.conf.{s_dev}.accept_ra=0")
    frr = Frr(p, lab.subdir("frr"), FRR_ASN, "192.0.2.2", neighbors=[Neighbor(p_dev, "external")],
              networks=["10.20.0.0/24"], zebra_config=f"interface {p_dev}\n ipv6 nd ra-interval 3\n no ipv6 nd suppress-ra\nexit\n")
    sp = start_unnumbered(lab, s, s_dev)
    frr_ll = link_local(p, p_dev)
    ours = link_local(s, s_dev)

    def row():
        return next((r for r in sp.summary() if r["peer"] == "tor"), None)

    wait_for(lambda: (r := row()) and r["state"] == "Established", 40, "unnumbered session Established")
    r = row()
    assert r["address"] == f"{frr_ll}%{s_dev}" and r["interface"] == s_dev and r["remote_as"] == FRR_ASN
    assert frr.vtysh("show bgp ipv4 unicast summary json")["peers"][p_dev]["state"] == "Established"
    route = wait_for(lambda: frr.routes(4).get(f"{IP}/32"), 20, "the IPv4 route at FRR")
    hops = {ipaddress.ip_address(h) for h in route["next_hops"] if h}
    assert ipaddress.ip_address(ours) in hops, route  # the link-local next hop
    assert all(h.version == 6 for h in hops), route  # no IPv4 next hop at all
    assert route["as_path"] == [SPEAKER_ASN]
    nb = next(n for n in sp.ctl("show", "bgp", "neighbors")["neighbors"] if n["peer"] == "tor")
    names = {c["name"] for c in nb["capabilities"]["received"]}
    assert "extended-next-hop" in names
    # and the other way: FRR's IPv4 route arrives in MP_REACH with FRR's link-local next hop
    wait_for(lambda: (r := row()) and r["prefixes_received"] == 1, 20, "FRR's route at speakerd")
    (got,) = sp.ctl("show", "bgp", "ipv4", "received-routes", "tor")["routes"]
    assert got["prefix"] == "10.20.0.0/24" and got["link_local_next_hop"] == frr_ll, got
    assert ":" in got["next_hop"], got  # an IPv6 next hop for an IPv4 route


def test_zoned_link_local_peer_address(lab):
    """peerAddress fe80::x%IF (metallb#2423) against FRR's neighbor on our link-local address;
    with dualStackAddressFamily both families, IPv4 with RFC 8950 next hops."""
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    s_dev, p_dev = link.dev(s), link.dev(p)
    ours, frr_ll = link_local(s, s_dev), link_local(p, p_dev)
    # a placeholder neighbor (no route to it inside the lab) so bgpd has a summary to wait for
    frr = Frr(p, lab.subdir("frr"), FRR_ASN, "192.0.2.2", neighbors=[Neighbor("192.0.2.99", 64599)])
    frr.configure(f"router bgp {FRR_ASN}", f"neighbor {ours} remote-as {SPEAKER_ASN}",
                  f"neighbor {ours} interface {p_dev}", f"neighbor {ours} timers connect 1",
                  f"neighbor {ours} capability extended-nexthop",
                  "address-family ipv4 unicast", f"neighbor {ours} activate", "exit-address-family",
                  "address-family ipv6 unicast", f"neighbor {ours} activate")
    peer = {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
            "metadata": {"name": "tor", "namespace": "metallb-system"},
            "spec": {"myASN": SPEAKER_ASN, "peerASN": FRR_ASN, "peerAddress": f"{frr_ll.upper()}%{s_dev}",
                     # an IPv6 session: IPv4 over it too only with dualStackAddressFamily (as MetalLB)
                     "dualStackAddressFamily": True,
                     "holdTime": "9s", "keepaliveTime": "3s", "connectTime": "1s"}}
    objects = [node(NODE), peer, pool("lab", ["203.0.113.0/24", "2001:db8:5d::/120"]),
               advertisement("lab", ipAddressPools=["lab"]), service("svc", [IP, "2001:db8:5d::10"])]
    try:
        sp = Speakerd(s, manifests(lab.subdir("config"), objects), NODE, socket=lab.dir / "speakerd.sock")
    except NotImplementedYet as e:
        pytest.skip(str(e))
    sp.wait_established(frr_ll)
    frr.wait_established(ours)
    r6 = wait_for(lambda: frr.routes(6).get("2001:db8:5d::10/128"), 20, "the IPv6 route at FRR")
    assert ipaddress.ip_address(ours) in {ipaddress.ip_address(h) for h in r6["next_hops"] if h}, r6
    r4 = wait_for(lambda: frr.routes(4).get(f"{IP}/32"), 20, "the IPv4 route at FRR (RFC 8950)")
    assert ipaddress.ip_address(ours) in {ipaddress.ip_address(h) for h in r4["next_hops"] if h}, r4


def test_unnumbered_peer_accepts_the_routers_connection(lab):
    """FRR's `neighbor IF interface` dials as well as accepts; so does speakerd. FRR's router
    advertisements are dropped on their way out, so speakerd never learns FRR's address and
    cannot dial: the session can only be FRR's connection to speakerd's port 179, accepted
    from FRR's link-local address on the BGPPeer's interface."""
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    s_dev, p_dev = link.dev(s), link.dev(p)
    for cmd in ("add table inet sdra",
                "add chain inet sdra output { type filter hook output priority 0 ; }",
                "add rule inet sdra output icmpv6 type nd-router-advert drop"):
        p.exec("nft", cmd)
    frr = Frr(p, lab.subdir("frr"), FRR_ASN, "192.0.2.2", neighbors=[Neighbor(p_dev, "external")],
              zebra_config=f"interface {p_dev}\n ipv6 nd ra-interval 3\n no ipv6 nd suppress-ra\nexit\n")
    sp = start_unnumbered(lab, s, s_dev)
    frr_ll, ours = link_local(p, p_dev), link_local(s, s_dev)

    def row():
        return next((r for r in sp.summary() if r["peer"] == "tor"), None)

    wait_for(lambda: (r := row()) and r["state"] == "Established", 40, "unnumbered session Established")
    assert row()["address"] == f"{frr_ll}%{s_dev}"
    nb = frr.vtysh(f"show bgp neighbors {p_dev} json")[p_dev]
    assert nb["portForeign"] == 179 and nb["portLocal"] != 179, nb  # FRR dialled speakerd
    assert ipaddress.ip_address(nb["hostForeign"].split("%")[0]) == ipaddress.ip_address(ours), nb
    # speakerd had no router address to dial: it learned none (its attempts failed saying so)
    assert "no router link-local address on" in sp.log, sp.log[-2000:]
    route = wait_for(lambda: frr.routes(4).get(f"{IP}/32"), 20, "the IPv4 route at FRR")
    assert ipaddress.ip_address(ours) in {ipaddress.ip_address(h) for h in route["next_hops"] if h}, route
