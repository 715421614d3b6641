"""BGPPeer dynamicASN against FRR: the AS is learned from FRR's OPEN when it is of the right kind,
and Bad Peer AS (2/2) otherwise; FRR's own dynamic form (remote-as internal/external) too."""
from __future__ import annotations

import pytest

from tests.interop.netlab import Frr, Neighbor, NotImplementedYet, Speakerd, advertisement, bgp_peer, \
    holds_for, manifests, node, pool, service, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

SPEAKER_ASN = 64500
NODE = "node1"
IP = "203.0.113.10"


def setup(lab, frr_asn: int, mode: str, frr_remote: int | str = SPEAKER_ASN):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    frr = Frr(p, lab.subdir("frr"), frr_asn, "192.0.2.2", neighbors=[Neighbor(link.v4_a, frr_remote)])
    peer = bgp_peer("peer", SPEAKER_ASN, 0, link.v4_b, holdTime="9s", keepaliveTime="3s", connectTime="1s")
    del peer["spec"]["peerASN"]
    peer["spec"]["dynamicASN"] = mode
    objects = [node(NODE), peer, pool("lab", ["203.0.113.0/24"]),
               advertisement("lab", ipAddressPools=["lab"], localPref=150), service("svc", [IP])]
    try:
        sp = Speakerd(s, manifests(lab.subdir("config"), objects), NODE, socket=lab.dir / "speakerd.sock")
    except NotImplementedYet as e:
        pytest.skip(str(e))
    return sp, frr, link


@pytest.mark.parametrize("frr_remote", [SPEAKER_ASN, "external"], ids=["frr-fixed", "frr-external"])
def test_external_learns_the_routers_as(lab, frr_remote):
    sp, frr, link = setup(lab, 64501, "external", frr_remote)
    sp.wait_established(link.v4_b)
    rib = wait_for(lambda: (r := frr.routes(4)) and f"{IP}/32" in r and r, 20, "route at FRR")
    route = rib[f"{IP}/32"]
    assert route["as_path"] == [SPEAKER_ASN] and route["next_hop"] == link.v4_a
    assert route.get("local_pref") in (None, 100)  # eBGP: no LOCAL_PREF sent
    row = sp.peer(link.v4_b)
    assert row["remote_as"] == 64501 and row["dynamic_asn"] == "external"
    n = sp.ctl("show", "bgp", "neighbors")
    assert next(x for x in n["neighbors"] if x["address"] == link.v4_b)["type"] == "ebgp"
    text = sp.ctl("show", "bgp", "neighbors", "peer", json_=False)
    assert f"remote AS 64501 (dynamicASN external), local AS {SPEAKER_ASN}, external link" in text


@pytest.mark.parametrize("frr_remote", [SPEAKER_ASN, "internal"], ids=["frr-fixed", "frr-internal"])
def test_internal_learns_our_own_as(lab, frr_remote):
    sp, frr, link = setup(lab, SPEAKER_ASN, "internal", frr_remote)
    sp.wait_established(link.v4_b)
    rib = wait_for(lambda: (r := frr.routes(4)) and f"{IP}/32" in r and r, 20, "route at FRR")
    route = rib[f"{IP}/32"]
    assert route["as_path"] == [] and route["local_pref"] == 150  # iBGP attributes
    assert sp.peer(link.v4_b)["remote_as"] == SPEAKER_ASN


@pytest.mark.parametrize("mode,frr_asn", [("external", SPEAKER_ASN), ("internal", 64501)])
def test_wrong_kind_is_bad_peer_as(lab, mode, frr_asn):
    sp, frr, link = setup(lab, frr_asn, mode)
    # both sides connect at once: the second connection may first end with a collision-resolution
    # Cease; every OPEN speakerd reads from this peer is answered with Bad Peer AS
    nb = wait_for(lambda: (n := frr.neighbor(link.v4_a)) and "Bad Peer AS" in (n.get("lastNotificationReason") or "")
                  and n, 20, "Bad Peer AS at FRR")
    assert "Bad Peer AS" in nb["lastNotificationReason"], nb["lastNotificationReason"]
    assert "Bad Peer AS" in sp.peer(link.v4_b)["last_error"]
    assert holds_for(lambda: not sp.established(link.v4_b), 3)
