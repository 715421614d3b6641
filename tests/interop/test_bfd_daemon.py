"""The daemon's BFD coupling against FRR bgpd + bfdd.

speakerd (``speakerd run``) runs in namespace ``bs`` with a BGPPeer that names
a BFDProfile; FRR runs zebra + bgpd + bfdd in ``bf`` with ``neighbor X bfd
profile lab``.  Checked from both ends, as an operator would:

* BGP Established and BFD Up, and FRR shows the intervals speakerd asked for
  (FRR's ``remote-*`` fields are speakerd's desired TX / required RX);
* an nftables cut makes speakerd close the BGP session with cause BFD down
  (history, NOTIFICATION Cease/BFD Down, flap metric) long before the 30 s
  hold timer could;
* AdminDown from FRR leaves the BGP session alone;
* a reload that removes or changes the profile stops or retunes BFD without
  resetting the BGP session.

The bounds below (2 s after a cut) only separate BFD from hold-timer expiry;
detection speed is measured by bench/bfd_detect.py.
"""
from __future__ import annotations

import time

import pytest

from tests.interop.netlab import (Frr, Neighbor, NotImplementedYet, Speakerd, advertisement, bgp_peer,
                                  holds_for, manifests, node, pool, service, wait_for)

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

SPEAKER_ASN, PEER_ASN = 64500, 64501
NODE = "node1"
HOLD = 30  # seconds: the hold timer can never be why a session closes within the bounds below
METRICS = "127.0.0.1:9473"  # inside speakerd's namespace
# speakerd asks for other values than FRR's profile, so FRR's view proves they crossed the wire
PROFILE = {"receiveInterval": 70, "transmitInterval": 60, "detectMultiplier": 3}
FRR_BFD = {"receive-interval": 50, "transmit-interval": 50, "detect-multiplier": 3}


def bfd_profile(name: str, **spec) -> dict:
    return {"apiVersion": "metallb.io/v1beta1", "kind": "BFDProfile",
            "metadata": {"name": name, "namespace": "metallb-system"}, "spec": spec}


BfdFrr = Frr  # netlab's Frr writes a bfd block that bgpd reads past


class BfdLab:
    """speakerd in ``bs``, FRR in ``bf``, one veth between them."""

    def __init__(self, lab) -> None:
        self.lab = lab
        self.s, self.f = lab.ns("bs"), lab.ns("bf")
        link = lab.link(self.s, self.f)
        self.sp_addr, self.frr_addr = link.addr(self.s), link.addr(self.f)
        self.frr = BfdFrr(self.f, lab.subdir("frr"), PEER_ASN, "192.0.2.2", bfd=FRR_BFD,
                       neighbors=[Neighbor(self.sp_addr, SPEAKER_ASN, bfd=True, hold=HOLD, keepalive=10)])
        self.config_dir = lab.subdir("config")
        self.write_config(profile=PROFILE)
        try:
            self.speakerd = Speakerd(self.s, self.config_dir, NODE, socket=lab.dir / "speakerd.sock",
                                     extra_args=("--log-level", "debug", "--metrics", METRICS, "--watch", "0"))
        except NotImplementedYet as e:
            pytest.skip(str(e))

    def write_config(self, profile: dict | None) -> None:
        spec = {"holdTime": f"{HOLD}s", "keepaliveTime": "10s", "connectTime": "1s"}
        objects = [node(NODE)]
        if profile is not None:
            spec["bfdProfile"] = "fast"
            objects.append(bfd_profile("fast", **profile))
        objects += [bgp_peer("frr", SPEAKER_ASN, PEER_ASN, self.frr_addr, **spec),
                    pool("lab", ["203.0.113.0/24"]), advertisement("lab", ipAddressPools=["lab"]),
                    service("svc", ["203.0.113.10"])]
        manifests(self.config_dir, objects)

    def reload(self, profile: dict | None) -> None:
        self.write_config(profile)
        answer = self.speakerd.ctl("reload")
        assert answer.get("ok") is True, answer

    # -- speakerd's view
    def bfd_rows(self) -> list[dict]:
        return self.speakerd.ctl("show", "bfd", "peers")["bfd_peers"]

    def bfd_row(self) -> dict | None:
        return next((r for r in self.bfd_rows() if r["peer"] == self.frr_addr), None)

    def history(self) -> list[dict]:
        return self.speakerd.ctl("show", "history")["history"]

    def metrics(self) -> str:
        out = self.s.exec("python3", "-c", "import urllib.request,sys; sys.stdout.write("
                          f"urllib.request.urlopen('http://{METRICS}/metrics', timeout=5).read().decode())")
        return out

    # -- FRR's view
    def frr_bfd(self) -> dict | None:
        peers = self.frr.vtysh("show bfd peers json")
        return next((p for p in peers if p.get("peer") == self.sp_addr and not p.get("multihop")), None)

    def frr_connections(self) -> tuple[int, int]:
        n = self.frr.neighbor(self.sp_addr)
        return int(n.get("connectionsEstablished", 0)), int(n.get("connectionsDropped", 0))

    # -- waits
    def wait_up(self, tx: int = PROFILE["transmitInterval"], rx: int = PROFILE["receiveInterval"]) -> dict:
        """BGP Established on both ends, BFD Up on both ends with speakerd's intervals; FRR's BFD row."""
        self.frr.wait_established(self.sp_addr, timeout=30)
        self.speakerd.wait_established(self.frr_addr, timeout=10)
        peer = wait_for(lambda: (p := self.frr_bfd()) and p["status"] == "up"
                        and p["remote-transmit-interval"] == tx and p["remote-receive-interval"] == rx and p,
                        15, f"FRR BFD Up with speakerd's TX {tx} / RX {rx}")
        wait_for(lambda: (r := self.bfd_row()) and r["state"] == "up", 10, "speakerd BFD Up")
        return peer


@pytest.fixture
def bl(lab) -> BfdLab:
    return BfdLab(lab)


def flaps(metrics_text: str, cause: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("speakerd_session_flaps_total{") and f'cause="{cause}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_up_with_requested_intervals_then_cut_closes_bgp(bl):
    frr_peer = bl.wait_up()
    assert frr_peer["remote-detect-multiplier"] == PROFILE["detectMultiplier"]
    row = bl.bfd_row()
    assert row["peer_name"] == "frr"
    assert row["remote_discr"] == frr_peer["id"] and row["local_discr"] == frr_peer["remote-id"]
    assert row["tx_interval_ms"] == 60  # max(our desired TX 60, FRR's required RX 50)
    assert row["detect_time_ms"] == 3 * 70  # FRR's multiplier x max(our required RX 70, FRR's TX 50)
    text = bl.speakerd.ctl("show", "bfd", "peers", json_=False)
    assert "Status: up" in text and "(frr)" in text
    before = len(bl.history())

    t_cut = time.time()
    bl.s.cut(bl.frr_addr)

    def closed_by_bfd():
        return next((e for e in bl.history()[before:] if e["from"] == "Established"), None)
    entry = wait_for(closed_by_bfd, 10, "speakerd closes the BGP session")
    assert entry["cause"] == "bfd_down", entry
    assert entry["flap"] is True
    assert entry["detail"].lower() == "cease/bfd down", entry  # the NOTIFICATION that was sent
    # hold time is 30 s: only BFD can take the session down this soon after the cut
    assert entry["time"] - t_cut < 2.0, (entry, t_cut)

    row = bl.bfd_row()
    assert row["state"] == "down" and row["local_diag"] == 1  # control detection time expired
    log = bl.speakerd.log
    assert "BFD down (control_detection_expired): closing the BGP session" in log
    m = bl.metrics()
    assert flaps(m, "bfd_down") == 1, [x for x in m.splitlines() if "flaps" in x]  # counted once
    assert f'metallb_bfd_session_up{{peer="{bl.frr_addr}"' in m
    (nb,) = bl.speakerd.ctl("show", "bgp", "neighbors", "frr")["neighbors"]
    assert nb["flaps"] == {"bfd_down": 1}
    sent = nb["last_notification_sent"]
    assert (sent["code"], sent["subcode"]) == (6, 10)  # Cease / BFD Down (RFC 9384)

    # healing the path brings BFD and then BGP back by themselves
    bl.s.restore()
    bl.wait_up()


def test_frr_admin_down_keeps_bgp(bl):
    bl.wait_up()
    established, dropped = bl.frr_connections()
    before = len(bl.history())
    bl.frr.configure("bfd", "profile lab", "shutdown")
    wait_for(lambda: (r := bl.bfd_row()) and r["state"] == "down" and r["remote_state"] == "admin_down",
             5, "speakerd sees FRR's AdminDown")
    assert bl.bfd_row()["local_diag"] == 3  # neighbor signaled session down
    # 20 x speakerd's detection time: the session must survive all of it
    assert holds_for(lambda: bl.speakerd.established(bl.frr_addr), 3 * 0.21 * 7)
    assert bl.frr.established(bl.sp_addr)
    assert bl.history()[before:] == []
    assert bl.frr_connections() == (established, dropped)
    assert "closing the BGP session" not in bl.speakerd.log

    # FRR re-enables BFD: Up again, still the same BGP session
    bl.frr.configure("bfd", "profile lab", "no shutdown")
    bl.wait_up()
    assert bl.history()[before:] == []


def notifications_sent(bl) -> int:
    (nb,) = bl.speakerd.ctl("show", "bgp", "neighbors", "frr")["neighbors"]
    return nb["messages"]["sent"].get("notification", 0)


def test_reload_removing_profile_stops_bfd_without_bgp_reset(bl):
    """speakerd stops BFD with AdminDown and leaves its BGP session alone.

    FRR 8.4.4 (bfdd + bgpd as installed here) turns a received AdminDown into
    Down "neighbor signaled session down" and its bgpd then sends Cease/BFD
    Down itself, although RFC 5882 section 3.2 says AdminDown must not be
    taken as a path failure.  So the one reset that can follow the reload is
    FRR's: the test checks that speakerd sent nothing and that every session
    change it recorded is that NOTIFICATION from FRR.
    """
    bl.wait_up()
    before = len(bl.history())
    sent_before = notifications_sent(bl)

    bl.reload(profile=None)
    wait_for(lambda: bl.bfd_rows() == [], 5, "speakerctl show bfd peers empty")
    peer = wait_for(lambda: (p := bl.frr_bfd()) and p["status"] != "up" and p, 5, "FRR BFD down")
    assert peer["remote-diagnostic"] == "administratively down"  # AdminDown, not silence
    assert bl.speakerd.ctl("show", "bfd", "peers", json_=False).strip() == "No BFD sessions."
    assert "closing the BGP session" not in bl.speakerd.log
    # the session is Established again (or never left) and stays so without BFD
    bl.frr.wait_established(bl.sp_addr, timeout=15)
    bl.speakerd.wait_established(bl.frr_addr, timeout=5)
    assert notifications_sent(bl) == sent_before  # speakerd reset nothing
    downs = [e for e in bl.history()[before:] if e["from"] == "Established"]
    assert len(downs) <= 1, downs
    for e in downs:  # FRR's reset (see the docstring), never one of speakerd's
        assert e["cause"] == "notification_received" and e["detail"].lower() == "cease/bfd down", e
    settled = len(bl.history())
    established, dropped = bl.frr_connections()
    assert holds_for(lambda: bl.speakerd.established(bl.frr_addr), 1.5)

    # adding the profile back starts BFD again without any BGP reset on either end
    bl.reload(profile=PROFILE)
    bl.wait_up()
    assert bl.frr_connections() == (established, dropped)
    assert len(bl.history()) == settled
    assert notifications_sent(bl) == sent_before


def test_reload_changing_intervals_retunes_without_bgp_reset(bl):
    bl.wait_up()
    established, dropped = bl.frr_connections()
    before = len(bl.history())
    discr = bl.bfd_row()["local_discr"]

    bl.reload(profile={"receiveInterval": 100, "transmitInterval": 120, "detectMultiplier": 4})
    peer = bl.wait_up(tx=120, rx=100)
    assert peer["remote-detect-multiplier"] == 4
    row = bl.bfd_row()
    assert row["local_discr"] == discr  # the same BFD session, retuned by a Poll Sequence
    assert row["tx_interval_ms"] == 120 and row["detect_time_ms"] == 3 * 100
    assert bl.frr_connections() == (established, dropped)
    assert bl.history()[before:] == []
    assert bl.speakerd.established(bl.frr_addr)
