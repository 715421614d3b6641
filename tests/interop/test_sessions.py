"""speakerd against FRR and GoBGP: sessions, advertised attributes, MD5, multihop, device binding,
hold-timer failure and reconnect, ROUTE-REFRESH.

speakerd runs in namespace ``s`` with MetalLB manifests written by the test;
the peer runs in namespace ``p`` (and ``r`` forwards between them in the
multihop test).  What is checked is what a network engineer would look at on
the router: session state and the routes with their attributes in its RIB.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.interop.netlab import (Frr, GoBgp, Link, Neighbor, NotImplementedYet, Speakerd, advertisement,
                                  bgp_peer, holds_for, manifests, node, pool, service, wait_for)

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

SPEAKER_ASN, PEER_ASN = 64500, 64501
NODE = "node1"
V4_IPS = ["203.0.113.10", "203.0.113.11", "203.0.113.12"]
V6_IPS = ["2001:db8:5d::10", "2001:db8:5d::11"]
COMMUNITY, LARGE = "64500:100", "64500:1:2"
PEERS = ["frr", "gobgp"]


@dataclass
class Setup:
    speakerd: Speakerd
    peer: Any  # Frr | GoBgp
    speaker_addr: str  # speakerd's address as the peer sees it
    peer_addr: str  # the peer's address as speakerd sees it
    prefixes: list[str] = field(default_factory=list)
    afi: int = 4

    def wait_routes(self, timeout: float = 20) -> dict[str, dict]:
        """Every service prefix is in the peer's RIB; returns the RIB."""
        want = set(self.prefixes)
        return wait_for(lambda: (rib := self.peer.routes(self.afi)) and want <= rib.keys() and rib, timeout,
                        f"{sorted(want)} in the peer's RIB")


def start_peer(kind: str, lab, ns, asn: int, neighbor: Neighbor):
    d = lab.subdir(kind)
    if kind == "frr":
        return Frr(ns, d, asn, "192.0.2.2", neighbors=[neighbor])
    return GoBgp(ns, d, asn, "192.0.2.2", neighbors=[neighbor])


def speaker_manifests(lab, peer_addr: str, peer_asn: int, afi: int, ibgp: bool = False, **peer_spec) -> tuple:
    ips = V4_IPS if afi == 4 else V6_IPS
    ads = {"communities": [COMMUNITY, f"large:{LARGE}"], "ipAddressPools": ["lab"]}
    if ibgp:
        ads["localPref"] = 150
    objects = [
        node(NODE),
        bgp_peer("peer", SPEAKER_ASN, peer_asn, peer_addr,
                 **{"holdTime": "9s", "keepaliveTime": "3s", "connectTime": "1s", **peer_spec}),
        pool("lab", ["203.0.113.0/24" if afi == 4 else "2001:db8:5d::/120"]),
        advertisement("lab", **ads),
        *(service(f"svc{i}", [ip]) for i, ip in enumerate(ips)),
    ]
    return manifests(lab.subdir("config"), objects), [f"{ip}/{32 if afi == 4 else 128}" for ip in ips]


def start_speakerd(lab, ns, config_dir) -> Speakerd:
    try:
        return Speakerd(ns, config_dir, NODE, socket=lab.dir / "speakerd.sock")
    except NotImplementedYet as e:
        pytest.skip(str(e))


def direct(lab, kind: str, afi: int = 4, ibgp: bool = False, peer_nbr: dict | None = None,
           speaker_peer: dict | None = None) -> tuple[Setup, Link]:
    """speakerd in ``s`` and a peer in ``p`` on one veth."""
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    v6 = afi == 6
    s_addr, p_addr = link.addr(s, v6), link.addr(p, v6)
    peer_asn = SPEAKER_ASN if ibgp else PEER_ASN
    peer = start_peer(kind, lab, p, peer_asn, Neighbor(s_addr, SPEAKER_ASN, **(peer_nbr or {})))
    config, prefixes = speaker_manifests(lab, p_addr, peer_asn, afi, ibgp, **(speaker_peer or {}))
    return Setup(start_speakerd(lab, s, config), peer, s_addr, p_addr, prefixes, afi), link


def settled(read, quiet: float = 1.0, timeout: float = 15) -> int:
    """A counter's value once it has stopped moving for ``quiet`` seconds (e.g. after End-of-RIB)."""
    def stable():
        v = read()
        return v if v and holds_for(lambda: read() == v, quiet) else None
    return wait_for(stable, timeout, "counter to settle")


def assert_not_established(st: Setup, seconds: float = 4) -> None:
    assert holds_for(lambda: not st.peer.established(st.speaker_addr)
                     and not st.speakerd.established(st.peer_addr), seconds)


# ---------------------------------------------------------------- sessions and attributes

@pytest.mark.parametrize("afi", [4, 6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("kind", PEERS)
def test_ebgp_session_and_advertised_attributes(lab, kind, afi):
    st, _ = direct(lab, kind, afi)
    st.peer.wait_established(st.speaker_addr)
    st.speakerd.wait_established(st.peer_addr)
    rib = st.wait_routes()
    for prefix in st.prefixes:
        r = rib[prefix]
        assert r["as_path"] == [SPEAKER_ASN], prefix
        assert r["next_hop"] == st.speaker_addr, prefix
        assert r["communities"] == [COMMUNITY], prefix
        assert r["large_communities"] == [LARGE], prefix
    assert set(rib) == set(st.prefixes)  # nothing else is advertised
    summary = st.speakerd.peer(st.peer_addr)
    assert summary["prefixes_sent"] == len(st.prefixes)


@pytest.mark.parametrize("kind", PEERS)
def test_ibgp_local_pref(lab, kind):
    st, _ = direct(lab, kind, 4, ibgp=True)
    st.speakerd.wait_established(st.peer_addr)
    rib = st.wait_routes()
    for prefix in st.prefixes:
        assert rib[prefix]["local_pref"] == 150, prefix
        assert rib[prefix]["as_path"] == [], prefix
        assert rib[prefix]["next_hop"] == st.speaker_addr, prefix
        assert rib[prefix]["communities"] == [COMMUNITY], prefix


# ---------------------------------------------------------------- MD5

@pytest.mark.parametrize("peer_key", ["s3cret", "wrong"], ids=["same-key", "wrong-key"])
@pytest.mark.parametrize("kind", PEERS)
def test_md5(lab, kind, peer_key):
    st, link = direct(lab, kind, peer_nbr={"password": peer_key}, speaker_peer={"password": "s3cret"})
    if peer_key == "s3cret":
        st.speakerd.wait_established(st.peer_addr)
        st.wait_routes()
        return
    wait_for(lambda: link.a.nstat("TcpExtTCPMD5Failure") + link.b.nstat("TcpExtTCPMD5Failure") > 0, 15,
             "TCP-MD5 failures counted by the kernel")
    assert_not_established(st, 3)


# ---------------------------------------------------------------- multihop

@pytest.mark.parametrize("multihop", [False, True], ids=["no-ebgpMultiHop", "ebgpMultiHop"])
@pytest.mark.parametrize("kind", PEERS)
def test_ebgp_multihop_through_router(lab, kind, multihop):
    s, r, p = lab.ns("s"), lab.router("r"), lab.ns("p")
    sr, rp = lab.link(s, r), lab.link(r, p)
    s.add_route(rp.net4, via=sr.v4_b)
    p.add_route(sr.net4, via=rp.v4_a)
    # the peer is always configured for multihop: only speakerd's setting decides
    peer = start_peer(kind, lab, p, PEER_ASN, Neighbor(sr.v4_a, SPEAKER_ASN, multihop=2, connected_check=False))
    config, prefixes = speaker_manifests(lab, rp.v4_b, PEER_ASN, 4, ebgpMultiHop=multihop)
    st = Setup(start_speakerd(lab, s, config), peer, sr.v4_a, rp.v4_b, prefixes)
    if multihop:
        st.speakerd.wait_established(st.peer_addr)
        rib = st.wait_routes()
        assert all(rib[x]["next_hop"] == sr.v4_a for x in prefixes)
        return
    # speakerd's packets leave with TTL 1 and expire at the router
    wait_for(lambda: r.nstat("IpInHdrErrors") > 0, 15, "TTL-expired packets at the router")
    assert_not_established(st, 3)


# ---------------------------------------------------------------- device binding

@pytest.mark.parametrize("right_device", [True, False], ids=["bound-to-veth", "bound-to-other"])
@pytest.mark.parametrize("kind", PEERS)
def test_bind_to_device(lab, kind, right_device):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    other = lab.link(s, lab.ns("x"))  # a second veth that leads nowhere near the peer
    device = link.dev(s) if right_device else other.dev(s)
    peer = start_peer(kind, lab, p, PEER_ASN, Neighbor(link.v4_a, SPEAKER_ASN))
    config, prefixes = speaker_manifests(lab, link.v4_b, PEER_ASN, 4, vrf=device)
    st = Setup(start_speakerd(lab, s, config), peer, link.v4_a, link.v4_b, prefixes)
    if right_device:
        st.speakerd.wait_established(st.peer_addr)
        st.wait_routes()
        return
    # bound to a device with no path to the peer: neither speakerd's connects nor the peer's
    # (arriving on the veth, not on the bound device) may make a session
    assert_not_established(st, 5)


# ---------------------------------------------------------------- failure and recovery

@pytest.mark.parametrize("kind", PEERS)
def test_hold_timer_then_reconnect_and_readvertise(lab, kind):
    st, _ = direct(lab, kind, speaker_peer={"holdTime": "3s", "keepaliveTime": "1s"})
    st.speakerd.wait_established(st.peer_addr)
    st.wait_routes()

    # a frozen peer keeps its TCP connection open: only speakerd's 3 s hold timer can notice
    st.peer.pause()
    wait_for(lambda: not st.speakerd.established(st.peer_addr), 15, "speakerd drops the silent peer")
    assert st.speakerd.proc.alive
    assert "hold timer expired" in st.speakerd.log.lower()  # the RFC 4271 error name, as logged

    st.peer.kill()
    st.peer.restart()  # a fresh process: whatever reaches its RIB now was sent after the reconnect
    st.speakerd.wait_established(st.peer_addr, timeout=30)
    rib = st.wait_routes(timeout=20)
    assert all(rib[x]["communities"] == [COMMUNITY] for x in st.prefixes)


@pytest.mark.parametrize("kind", PEERS)
def test_route_refresh_resends(lab, kind):
    if kind == "gobgp":
        # measured: after `gobgp neighbor X softresetin` (with or without -a) FRR's routeRefreshRecv stays 0;
        # GoBGP 3.10 re-runs its own Adj-RIB-In instead of sending ROUTE-REFRESH
        pytest.skip("GoBGP 3.10 softresetin sends no ROUTE-REFRESH")
    st, _ = direct(lab, kind)
    st.speakerd.wait_established(st.peer_addr)
    st.wait_routes()
    before = settled(lambda: st.peer.updates_received(st.speaker_addr))
    st.peer.soft_in(st.speaker_addr)  # the peer sends ROUTE-REFRESH
    wait_for(lambda: st.peer.updates_received(st.speaker_addr) > before, 15, "UPDATEs re-sent after ROUTE-REFRESH")
    assert set(st.wait_routes()) == set(st.prefixes)
    assert st.speakerd.established(st.peer_addr)
