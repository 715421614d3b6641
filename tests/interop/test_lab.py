"""The lab itself: FRR and GoBGP in namespaces, as the other interop tests and benches use them.

Read these tests as the lab's documentation: each builds a small topology with
:mod:`tests.interop.netlab`, starts real daemons in it and checks what a
network engineer would check with vtysh, gobgp, nstat or ping.
"""
from __future__ import annotations

import pytest

import signal
import subprocess
import sys
from pathlib import Path

from tests.interop.netlab import Bird, ExaBgp, Frr, GoBgp, Neighbor, Network, holds_for, sh, sweep, wait_for

pytestmark = pytest.mark.interop

A_ASN, B_ASN = 64601, 64602
ROOT = Path(__file__).resolve().parents[2]


def pair(lab, a_neighbor=None, b_neighbor=None, networks=(), hold=None):
    """FRR in namespace a, GoBGP in namespace b, one veth between them, IPv4+IPv6 sessions."""
    a, b = lab.ns("a"), lab.ns("b")
    link = lab.link(a, b)
    a_nbrs = [Neighbor(link.v4_b, B_ASN, hold=hold, **(a_neighbor or {})),
              Neighbor(link.v6_b, B_ASN, hold=hold, **(a_neighbor or {}))]
    b_nbrs = [Neighbor(link.v4_a, A_ASN, hold=hold, **(b_neighbor or {})),
              Neighbor(link.v6_a, A_ASN, hold=hold, **(b_neighbor or {}))]
    frr = Frr(a, lab.subdir("frr"), A_ASN, "192.0.2.1", neighbors=a_nbrs, networks=networks)
    gobgp = GoBgp(b, lab.subdir("gobgp"), B_ASN, "192.0.2.2", neighbors=b_nbrs)
    return link, frr, gobgp


@pytest.mark.parametrize("afi", [4, 6])
def test_frr_gobgp_session_and_route_with_communities(lab, afi):
    prefix = "10.10.0.0/24" if afi == 4 else "2001:db8:10::/48"
    link, frr, gobgp = pair(lab, networks=[Network(prefix, communities=("64601:100",),
                                                   large_communities=("64601:1:2",))])
    v6 = afi == 6
    gobgp.wait_established(link.addr(link.a, v6))
    frr.wait_established(link.addr(link.b, v6))

    route = wait_for(lambda: gobgp.routes(afi).get(prefix), 10, f"{prefix} in GoBGP RIB")
    assert route["communities"] == ["64601:100"]
    assert route["large_communities"] == ["64601:1:2"]
    assert route["as_path"] == [A_ASN]
    assert route["next_hop"] == link.addr(link.a, v6)

    # and the other way: a route injected into GoBGP shows in FRR with its attributes
    back = "10.20.0.0/24" if afi == 4 else "2001:db8:20::/48"
    gobgp.add_route(Network(back, communities=("64602:7",)), next_hop=link.addr(link.b, v6))
    route = wait_for(lambda: frr.routes(afi).get(back), 10, f"{back} in FRR RIB")
    assert route["communities"] == ["64602:7"]
    assert route["as_path"] == [B_ASN]
    assert route["next_hop"] == link.addr(link.b, v6)


@pytest.mark.parametrize("keys", [("s3cret", "s3cret"), ("s3cret", "wrong")], ids=["same-key", "wrong-key"])
def test_md5(lab, keys):
    link, frr, gobgp = pair(lab, a_neighbor={"password": keys[0]}, b_neighbor={"password": keys[1]})
    if keys[0] == keys[1]:
        frr.wait_established(link.v4_b)
        gobgp.wait_established(link.v4_a)
        assert link.a.nstat("TcpExtTCPMD5Failure") == 0
        return
    # the kernel rejects the segments signed with the other key, in both namespaces
    wait_for(lambda: link.a.nstat("TcpExtTCPMD5Failure") + link.b.nstat("TcpExtTCPMD5Failure") > 0, 10,
             "TCP-MD5 failures counted")
    assert holds_for(lambda: not frr.established(link.v4_b) and not gobgp.established(link.v4_a), 2)


@pytest.mark.parametrize("multihop", [False, True], ids=["single-hop", "ebgp-multihop"])
def test_multihop_through_router(lab, multihop):
    a, r, b = lab.ns("a"), lab.router("r"), lab.ns("b")
    ar, rb = lab.link(a, r), lab.link(r, b)
    a.add_route(rb.net4, via=ar.v4_b)
    b.add_route(ar.net4, via=rb.v4_a)
    assert "1 received" in a.exec("ping", "-c1", "-W2", rb.v4_b)  # forwarding works
    ttl = 2 if multihop else None
    # disable-connected-check: FRR dials the remote peer anyway, with TTL 1 unless multihop is set
    frr = Frr(a, lab.subdir("frr"), A_ASN, "192.0.2.1",
              neighbors=[Neighbor(rb.v4_b, B_ASN, multihop=ttl, connected_check=False)])
    gobgp = GoBgp(b, lab.subdir("gobgp"), B_ASN, "192.0.2.2", neighbors=[Neighbor(ar.v4_a, A_ASN, multihop=ttl)])
    if multihop:
        frr.wait_established(rb.v4_b)
        gobgp.wait_established(ar.v4_a)
        return
    # without multihop both ends send with TTL 1: the router drops the SYNs (TTL expired)
    wait_for(lambda: r.nstat("IpInHdrErrors") > 0, 10, "TTL-expired packets at the router")
    assert holds_for(lambda: not frr.established(rb.v4_b) and not gobgp.established(ar.v4_a), 2)


def test_nft_cut_stops_traffic_and_restore_brings_session_back(lab):
    link, frr, gobgp = pair(lab, hold=3)
    frr.wait_established(link.v4_b)
    assert "1 received" in link.a.exec("ping", "-c1", "-W2", link.v4_b)

    link.a.cut(link.v4_b)
    assert "0 received" in link.a.exec("ping", "-c1", "-W1", link.v4_b, check=False)
    # no keepalives get through: both ends drop the session when the 3 s hold timer expires
    wait_for(lambda: not frr.established(link.v4_b), 10, "FRR session down after cut")
    wait_for(lambda: not gobgp.established(link.v4_a), 10, "GoBGP session down after cut")
    assert frr.established(link.v6_b)  # only the IPv4 address was cut

    link.a.restore()
    assert "1 received" in link.a.exec("ping", "-c1", "-W2", link.v4_b)
    frr.wait_established(link.v4_b, timeout=20)


def test_sweep_removes_only_crashed_labs(lab):
    """A lab whose owner died (kill -9) is swept; a live lab (this test's own) is not."""
    mine = lab.ns("live")
    code = ("import sys, time; sys.path.insert(0, %r); from tests.interop.netlab import Lab\n"
            "lab = Lab('crash').__enter__(); lab.ns('x'); print(lab.prefix, flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code % str(ROOT)], stdout=subprocess.PIPE, text=True)
    try:
        prefix = child.stdout.readline().strip()
        assert prefix.startswith("sd-")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert prefix + "x" in netns_names()
    removed = sweep()
    assert prefix + "x" in removed
    assert prefix + "x" not in netns_names()
    assert mine.name in netns_names()


def netns_names() -> list[str]:
    return [line.split()[0] for line in sh(["ip", "netns", "list"]).splitlines() if line.strip()]


def test_bird_and_exabgp_wrappers(lab):
    """The minimal BIRD and ExaBGP wrappers (used by benches) peer with FRR and exchange a route."""
    a, b, c = lab.ns("a"), lab.ns("b"), lab.ns("c")
    ab, ac = lab.link(a, b), lab.link(a, c)
    frr = Frr(a, lab.subdir("frr"), A_ASN, "192.0.2.1", networks=["10.10.0.0/24"],
              neighbors=[Neighbor(ab.v4_b, B_ASN), Neighbor(ac.v4_b, 64603)])
    bird = Bird(b, lab.subdir("bird"), "192.0.2.2", f"protocol bgp up {{ local as {B_ASN}; "
                f"neighbor {ab.v4_a} as {A_ASN}; ipv4 {{ import all; export none; }}; }}")
    frr.wait_established(ab.v4_b)
    wait_for(lambda: "10.10.0.0/24" in bird.birdc("show route"), 10, "FRR's route in BIRD")
    if not (Path(sys.executable).with_name("exabgp")).exists():
        pytest.skip("exabgp not installed in the venv (it is a bench extra: pip install -e .[bench])")
    ExaBgp(c, lab.subdir("exabgp"), f"neighbor {ac.v4_a} {{ router-id 192.0.2.3; local-address {ac.v4_b}; "
           f"local-as 64603; peer-as {A_ASN}; family {{ ipv4 unicast; }} "
           f"static {{ route 10.30.0.0/24 next-hop {ac.v4_b}; }} }}")
    frr.wait_established(ac.v4_b)
    route = wait_for(lambda: frr.routes(4).get("10.30.0.0/24"), 10, "ExaBGP's route in FRR")
    assert route["as_path"] == [64603]
