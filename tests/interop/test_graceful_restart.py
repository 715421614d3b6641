"""Restarting speakerd without an outage (RFC 4724 graceful restart) against FRR.

FRR runs ``bgp graceful-restart`` (restarting speaker and helper).  With
``enableGracefulRestart: true`` speakerd negotiates graceful restart; when it
is stopped (SIGTERM: it closes the connection without a NOTIFICATION, see
``Speaker.stop``) or killed (SIGKILL: the kernel closes the connection), FRR
keeps speakerd's routes as stale.  The restarted process sends an OPEN with
the R bit and F=1 per family, re-announces from the same state file and sends
End-of-RIB, after which FRR drops the stale marks.  A thread samples FRR's
table every ~100 ms throughout: no sample may lack a prefix.  Without
graceful restart the same sequence shows the withdraw.
"""
from __future__ import annotations

import threading
import time

import pytest

from tests.interop.netlab import Neighbor, advertisement, bgp_peer, manifests, node, pool, service, wait_for
from tests.interop.test_reload import (ASN, NODE, PEER, POOL4, GrFrr, auto_service, frr_table, peer_spec,
                                       plan_table, start_speakerd, wait_table)

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]


class Sampler(threading.Thread):
    """Polls FRR's IPv4 table (prefix -> stale?) until stopped."""

    def __init__(self, frr, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.frr, self.interval = frr, interval
        self.samples: list[tuple[float, dict[str, bool]]] = []
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                routes = self.frr.vtysh("show bgp ipv4 unicast json").get("routes", {})
            except Exception as e:  # noqa: BLE001 - recorded, judged by the test
                self.errors.append(str(e))
            else:
                self.samples.append((time.monotonic(), {p: any(x.get("stale") for x in paths)
                                                        for p, paths in routes.items()}))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def missing(self, prefixes: set[str]) -> list[tuple[float, set[str]]]:
        return [(t, prefixes - set(s)) for t, s in self.samples if not prefixes <= set(s)]

    def saw_stale(self) -> bool:
        return any(any(s.values()) for _, s in self.samples)


def _setup(lab, graceful: bool):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    frr = GrFrr(p, lab.subdir("frr"), ASN, "192.0.2.2", neighbors=[Neighbor(link.v4_a, ASN)],
                graceful_restart=True)
    cdir = lab.subdir("config")
    objects = [node(NODE), bgp_peer(PEER, ASN, ASN, link.v4_b, **peer_spec(enableGracefulRestart=graceful)),
               pool("lab", [POOL4]), advertisement("lab", ipAddressPools=["lab"], communities=["64500:100"]),
               service("fixed", ["203.0.113.200"]), *(auto_service(f"auto{i}") for i in range(3))]
    manifests(cdir, objects)
    sd = start_speakerd(lab, s, cdir)
    frr.wait_established(link.v4_a)
    want = wait_table(frr, plan_table(cdir, sd.state), what="initial table")
    assert len(want) == 4
    return frr, sd, link, cdir, want


def _restart(sd, how: str) -> None:
    if how == "sigterm":
        assert sd.stop() == 0
    else:
        sd.kill()


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restart_keeps_routes_with_graceful_restart(lab, how):
    frr, sd, link, cdir, want = _setup(lab, graceful=True)
    gr = frr.neighbor(link.v4_a)["gracefulRestartInfo"]
    assert gr["remoteGrMode"] == "Restart" and gr["rBit"] is True and gr["ipv4Unicast"]["fBit"] is True
    sampler = Sampler(frr)
    sampler.start()
    try:
        wait_for(lambda: len(sampler.samples) >= 3, 10, "first samples")
        _restart(sd, how)
        wait_for(lambda: not frr.established(link.v4_a), 10, "FRR sees the session close")
        wait_for(sampler.saw_stale, 10, "FRR keeping speakerd's routes as stale")
        sd.start()
        frr.wait_established(link.v4_a)
        # End-of-RIB processed: nothing stale any more, and the table is the plan again
        wait_for(lambda: sampler.samples and set(sampler.samples[-1][1]) == set(want)
                 and not any(sampler.samples[-1][1].values()), 20, "stale marks cleared after End-of-RIB")
        wait_table(frr, plan_table(cdir, sd.state), what="table after the restart")
    finally:
        sampler.stop()
    assert not sampler.errors, sampler.errors[:3]
    assert sampler.missing(set(want)) == [], "FRR withdrew a prefix during the restart"
    gr = frr.neighbor(link.v4_a)["gracefulRestartInfo"]
    assert gr["endOfRibRecv"].get("ipv4Unicast") is True
    if how == "sigterm":
        assert "closing without NOTIFICATION" in sd.log


def test_restart_without_graceful_restart_withdraws(lab):
    frr, sd, link, cdir, want = _setup(lab, graceful=False)
    assert frr.neighbor(link.v4_a)["gracefulRestartInfo"]["remoteGrMode"] != "Restart"
    sampler = Sampler(frr)
    sampler.start()
    try:
        wait_for(lambda: len(sampler.samples) >= 3, 10, "first samples")
        _restart(sd, "sigterm")
        wait_for(lambda: sampler.missing(set(want)), 10, "FRR withdrawing speakerd's routes")
        sd.start()
        frr.wait_established(link.v4_a)
        wait_table(frr, plan_table(cdir, sd.state), what="table after the restart")
    finally:
        sampler.stop()
    assert not sampler.saw_stale()
