"""BGPPeer localASN (MetalLB v0.16: FRR's `neighbor X local-as N no-prepend replace-as`) against
FRR: the router sees the session's AS as localASN, in the OPEN and in the AS_PATH of the routes,
never myASN; a router expecting myASN refuses the session (Bad Peer AS)."""
from __future__ import annotations

import pytest

from tests.interop.netlab import (Frr, Neighbor, NotImplementedYet, Speakerd, advertisement, bgp_peer,
                                  manifests, node, pool, service, wait_for)

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

MY_ASN, LOCAL_ASN, FRR_ASN = 64500, 65410, 64501
NODE = "node1"
IP = "203.0.113.10"


def setup(lab, frr_expects: int):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    frr = Frr(p, lab.subdir("frr"), FRR_ASN, "192.0.2.2", neighbors=[Neighbor(link.v4_a, frr_expects)])
    objects = [node(NODE),
               bgp_peer("peer", MY_ASN, FRR_ASN, link.v4_b, localASN=LOCAL_ASN, holdTime="9s",
                        keepaliveTime="3s", connectTime="1s"),
               pool("lab", ["203.0.113.0/24"]), advertisement("lab", ipAddressPools=["lab"]),
               service("svc", [IP])]
    try:
        sp = Speakerd(s, manifests(lab.subdir("config"), objects), NODE, socket=lab.dir / "speakerd.sock")
    except NotImplementedYet as e:
        pytest.skip(str(e))
    return sp, frr, link


def test_router_sees_the_local_asn(lab):
    sp, frr, link = setup(lab, LOCAL_ASN)
    sp.wait_established(link.v4_b)
    frr.wait_established(link.v4_a)
    assert frr.neighbor(link.v4_a)["remoteAs"] == LOCAL_ASN
    route = wait_for(lambda: frr.routes(4).get(f"{IP}/32"), 20, "the route at FRR")
    assert route["as_path"] == [LOCAL_ASN]  # replace-as: myASN is not in the path
    (row,) = sp.summary()
    assert row["local_as"] == LOCAL_ASN


def test_router_expecting_my_asn_refuses(lab):
    sp, frr, link = setup(lab, MY_ASN)
    # FRR answers the OPEN announcing 65410 with Bad Peer AS (2/2)
    wait_for(lambda: (n := sp.ctl("show", "bgp", "neighbors")["neighbors"][0]).get("last_notification_received")
             and n["last_notification_received"]["code"] == 2 and n["last_notification_received"]["subcode"] == 2,
             30, "Bad Peer AS from FRR")
    assert not frr.established(link.v4_a)
    hint = sp.ctl("show", "bgp", "neighbors")["neighbors"][0]["last_notification_received"]["hint"]
    assert f"does not expect our AS {LOCAL_ASN}" in hint and "localASN in the BGPPeer" in hint, hint
