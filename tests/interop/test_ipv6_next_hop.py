"""IPv6 routes over an IPv4 session (dualStackAddressFamily: true): the next hop is the global IPv6 address of speakerd's
interface toward the router (as FRR does), not ::ffff:<IPv4>, which BIRD 2 ignores
("Import withdraws ... ignored"); the mapped form only when that interface has none, and
`speakerctl show bgp neighbors` says which."""
from __future__ import annotations

import pytest

from tests.interop.netlab import Bird, Frr, Neighbor, wait_for
from tests.interop.test_dual_stack_family import NODE, V4, V6, start  # the same speakerd set-up

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

SPEAKER_ASN, PEER_ASN = 64500, 64501


def start_speakerd(lab, s, link):
    # both families over the IPv4 session (the default carries IPv4 only, as MetalLB)
    return start(lab, s, link.v4_b, dualStackAddressFamily=True)


def neighbor(sp, addr):
    return next(n for n in sp.ctl("show", "bgp", "neighbors")["neighbors"] if n["address"] == addr)


def frr_dual(lab, p, link):
    frr = Frr(p, lab.subdir("frr"), PEER_ASN, "192.0.2.2", neighbors=[Neighbor(link.v4_a, SPEAKER_ASN)])
    # the IPv4 neighbor carries IPv6 too
    frr.configure(f"router bgp {PEER_ASN}", "address-family ipv6 unicast", f"neighbor {link.v4_a} activate")
    return frr


def test_frr_gets_the_interface_global_address(lab):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    frr = frr_dual(lab, p, link)
    sp = start_speakerd(lab, s, link)
    sp.wait_established(link.v4_b)
    route = wait_for(lambda: frr.routes(6).get(f"{V6}/128"), 20, "the IPv6 route at FRR")
    assert route["next_hop"] == link.v6_a  # speakerd's global address on the veth
    assert frr.routes(4)[f"{V4}/32"]["next_hop"] == link.v4_a
    nh = neighbor(sp, link.v4_b)["next_hops"]
    assert nh == {"ipv4": link.v4_a, "ipv6": link.v6_a, "ipv6_source": "interface",
                  "interface": link.dev(s)}
    text = sp.ctl("show", "bgp", "neighbors", "peer", json_=False)
    assert f"Next hops: IPv4 {link.v4_a}, IPv6 {link.v6_a} (global address of {link.dev(s)})" in text


def test_without_a_global_address_the_mapped_form_and_show_says_so(lab):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    s.exec("ip", "-6", "addr", "del", f"{link.v6_a}/64", "dev", link.dev(s))
    frr = frr_dual(lab, p, link)
    sp = start_speakerd(lab, s, link)
    sp.wait_established(link.v4_b)
    wait_for(lambda: frr.updates_received(link.v4_a) > 0, 20, "UPDATEs at FRR")
    nh = neighbor(sp, link.v4_b)["next_hops"]
    assert nh["ipv6"] == f"::ffff:{link.v4_a}" and nh["ipv6_source"] == "ipv4-mapped"
    text = sp.ctl("show", "bgp", "neighbors", "peer", json_=False)
    assert f"IPv4-mapped: no global IPv6 address on {link.dev(s)}" in text


def test_bird_installs_the_ipv6_route(lab):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    bird = Bird(p, lab.subdir("bird"), "192.0.2.2",
                f"protocol bgp spk {{ local {link.v4_b} as {PEER_ASN}; neighbor {link.v4_a} as {SPEAKER_ASN}; "
                "connect retry time 1; ipv4 { import all; export none; }; ipv6 { import all; export none; }; }")
    sp = start_speakerd(lab, s, link)
    sp.wait_established(link.v4_b)
    routes6 = wait_for(lambda: (t := bird.birdc("show route table master6 all")) and V6 in t and t, 20,
                       "the IPv6 route in BIRD's master6")
    assert f"via {link.v6_a}" in routes6, routes6
    assert f"{V4}/32" in bird.birdc("show route table master4")
    proto = bird.birdc("show protocols all spk")
    ipv6_channel = proto.split("Channel ipv6", 1)[1]
    withdraws = next(line for line in ipv6_channel.splitlines() if "Import withdraws" in line).split()
    # "Import withdraws:  received rejected filtered ignored accepted": nothing ignored
    assert withdraws[2:] and int(withdraws[5]) == 0, proto
    assert "1 imported" in ipv6_channel, proto
