"""The limits of the hostile-peer cases that need minutes or a fake clock,
on the session machine alone (no daemon: test_hostile_peer.py has those).

ROUTE-REFRESH floods are coalesced, the OpenSent hold timer (240 s) and the
RFC 9687 Send Hold Timer fire with the right NOTIFICATION.
"""
from __future__ import annotations

from tests.robustness.daemons import DUT, DUT_ASN, DUT_ID  # addresses only: no daemon starts
from speakerd.fsm import Session, SessionSettings, State
from speakerd.fsm.actions import Close, NotificationSent, Send
from speakerd.policy.types import RouteAttrs
from speakerd.wire.capabilities import FourOctetAS, Multiprotocol, RouteRefresh as RRCap
from speakerd.wire.constants import MessageType
from speakerd.wire.framing import decode, encode
from speakerd.wire.messages import KEEPALIVE, Notification, Open, RouteRefresh

HOSTILE_ID = 0x0A4D0003
KEEPALIVE_BYTES = encode(KEEPALIVE)
CAPS = (Multiprotocol(1, 1), Multiprotocol(2, 1), RRCap(), FourOctetAS(DUT_ASN))


def test_machine_coalesces_refresh_requests_while_blocked():
    s = Session(SessionSettings(local_asn=DUT_ASN, peer_asn=DUT_ASN, router_id=DUT_ID, hold_time=9,
                              connect_retry=1.0, rand=lambda: 0.0, enhanced_route_refresh=False))
    s.start(0.0)
    s.connection_made(0.0, DUT)
    s.data_received(encode(Open(DUT_ASN, 9, HOSTILE_ID, CAPS)) + KEEPALIVE_BYTES, 0.0)
    s.set_routes(0.0, {(1, (0xC6336401 << 8) | 32): RouteAttrs()})
    s.pop_actions()
    rr = encode(RouteRefresh(1, 1, 0))
    s.data_received(rr, 1.0)
    assert [a.mtype for a in s.pop_actions() if isinstance(a, Send)] == [MessageType.UPDATE]
    s.send_blocked(2.0)
    s.data_received(rr * 1000, 2.0)
    assert [a for a in s.pop_actions() if isinstance(a, Send)] == []
    s.send_unblocked(3.0)
    assert [a.mtype for a in s.pop_actions() if isinstance(a, Send)] == [MessageType.UPDATE]
    s.send_unblocked(4.0)  # nothing left pending
    assert [a for a in s.pop_actions() if isinstance(a, Send)] == []


def test_machine_answers_a_burst_of_refresh_requests_once():
    """2,800 ROUTE-REFRESH requests in one 64 KB read with 10,000 routes to
    re-send: one answer (it used to be one per request: 140,000 UPDATEs,
    147 MB and a 50-second stall of the daemon's event loop)."""
    s = _machine()
    s.start(0.0)
    s.connection_made(0.0, DUT)
    s.data_received(encode(Open(DUT_ASN, 9, HOSTILE_ID, CAPS)) + KEEPALIVE_BYTES, 0.0)
    routes = {(1, ((0x0A000000 + i) << 8) | 32): RouteAttrs(communities=(i % 50,)) for i in range(10_000)}
    s.set_routes(0.0, routes)
    s.pop_actions()
    s.data_received(encode(RouteRefresh(1, 1, 0)) * 2800, 1.0)
    again = [decode(a.data) for a in s.pop_actions() if isinstance(a, Send)]
    assert sum(len(u.nlri) for u in again) == 10_000  # every route once
    assert 0 < len(again) <= 60


def _machine() -> Session:
    return Session(SessionSettings(local_asn=DUT_ASN, peer_asn=DUT_ASN, router_id=DUT_ID, hold_time=9,
                                 connect_retry=1.0, rand=lambda: 0.0))


def test_machine_opensent_hold_timer_expires_after_240s():
    s = _machine()
    s.start(100.0)
    s.connection_made(100.0, DUT)
    s.pop_actions()
    assert s.state == State.OPENSENT and s.next_deadline() == 340.0
    s.tick(339.9)
    assert s.state == State.OPENSENT
    s.tick(340.0)
    acts = s.pop_actions()
    sent = [a for a in acts if isinstance(a, Send)]
    assert [decode(a.data) for a in sent] == [Notification(4, 0)]
    assert any(isinstance(a, Close) for a in acts) and s.state != State.OPENSENT


def test_machine_send_hold_timer():
    """RFC 9687: blocked writes for max(8 min, 2 x hold) -> 8/0 and the connection aborted."""
    s = _machine()
    s.start(0.0)
    s.connection_made(0.0, DUT)
    s.data_received(encode(Open(DUT_ASN, 9, HOSTILE_ID, CAPS)) + KEEPALIVE_BYTES, 0.0)
    assert s.state == State.ESTABLISHED
    s.pop_actions()
    s.send_blocked(10.0)
    for t in range(13, 490, 3):  # the peer's KEEPALIVEs still arrive: only writing is stuck
        s.data_received(KEEPALIVE_BYTES, float(t))
        s.tick(float(t))
    assert s.state == State.ESTABLISHED
    s.tick(490.0)
    acts = s.pop_actions()
    notes = [a.notification for a in acts if isinstance(a, NotificationSent)]
    assert notes == [Notification(8, 0)]
    assert Close(abort=True) in acts and s.state != State.ESTABLISHED
