"""Drain without loss, against FRR with its graceful-shutdown policy (RFC 8326).

Two speakerd nodes announce one Service IP to an FRR router that spreads a client's UDP
flow over both (ECMP, L4 hash).  node1 is taken out while the flow runs and its Service
ends with it (see :mod:`tests.interop.drainlab`).  ``speakerctl drain`` moves the traffic
to node2 before anything is withdrawn: every packet sent is counted by a receiver.  A plain
stop (Cease at once, no graceful restart) loses the packets FRR still forwards to node1
until it has processed the Cease: some are lost, which shows the count can see a loss.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.interop.drainlab import SERVICE_IP, build, fib_next_hops, restart_node1, take_node_out, wait_ecmp
from tests.interop.netlab import wait_for

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]


def _paths(frr) -> dict[str, dict]:
    routes = frr.vtysh("show bgp ipv4 unicast json").get("routes", {})
    return {p["peerId"]: p for p in routes.get(f"{SERVICE_IP}/32", [])}


def test_drain_loses_no_packet_a_plain_stop_loses_some(lab):
    setup = build(lab)
    wait_ecmp(setup)
    drained = take_node_out(setup, "drain", wait=3.0)
    assert drained["drain"]["state"] == "drained"
    assert drained["by_node"]["node1"] > 0 and drained["by_node"]["node2"] > 0  # both carried the flow
    assert drained["lost"] == 0, drained
    # the Cease carried the drain's shutdown message
    note = setup.frr.neighbor(setup.node_addrs["node1"])
    assert "node drained" in str(note), note

    restart_node1(setup)
    stopped = take_node_out(setup, "stop")
    assert stopped["by_node"]["node1"] > 0 and stopped["by_node"]["node2"] > 0
    assert stopped["lost"] > 0, stopped
    print(f"drain: {drained}\nstop: {stopped}")


def test_frr_prefers_the_other_node_while_one_drains_and_undrain_restores_ecmp(lab):
    """While node1 drains, FRR's policy gives its path LOCAL_PREF 0: node2's path alone is
    best and alone in the FIB, node1's session still up; undrain brings ECMP back."""
    setup = build(lab)
    wait_ecmp(setup)
    sd = setup.speakers["node1"]
    n1, n2 = setup.node_addrs["node1"], setup.node_addrs["node2"]
    drain = subprocess.Popen([sys.executable, "-m", "speakerd.ctl", "--socket", str(sd.socket), "drain",
                              "--wait", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def moved():
            p = _paths(setup.frr)
            return p if n1 in p and n2 in p and p[n1].get("locPrf") == 0 and p[n2].get("bestpath") else None

        paths = wait_for(moved, 20, "node1's path at LOCAL_PREF 0, node2's best")
        assert not paths[n1].get("multipath") and not paths[n1].get("bestpath")
        detail = setup.frr.vtysh(f"show bgp ipv4 unicast {SERVICE_IP}/32 json")
        from_n1 = next(p for p in detail["paths"] if p.get("peer", {}).get("peerId") == n1)
        assert "graceful-shutdown" in from_n1["community"]["string"]
        wait_for(lambda: fib_next_hops(setup) == [n2], 20, "only node2 in the router's FIB")
        assert sd.established(setup.router_addrs["node1"])  # still up: nothing withdrawn yet
    finally:
        sd.ctl("undrain")
        out, err = drain.communicate(timeout=30)
    assert drain.returncode == 0, err
    assert out.startswith("drain cancelled"), out
    wait_ecmp(setup)
    assert _paths(setup.frr)[n1].get("locPrf") in (None, 100)
