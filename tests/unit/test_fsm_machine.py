"""Whole-session timelines of the RFC 4271 machine on a fake clock."""
from __future__ import annotations

import random

import pytest

from test_fsm_harness import ID_A, ID_B, Pair, cfg

from speakerd.fsm import Cause, Session, State
from speakerd.fsm.actions import ABORT, CLOSE, CONNECT, EndOfRib, NotificationReceived, Send
from speakerd.wire.capabilities import IPV4_UNICAST, IPV6_UNICAST
from speakerd.wire.constants import MessageType
from speakerd.wire.framing import decode, encode
from speakerd.wire.messages import KEEPALIVE, Keepalive, Notification, Open, RouteRefresh


def test_two_machines_reach_established_and_exchange_end_of_rib():
    p = Pair().start()
    assert p.established()
    assert [s for _, s, _ in p.states(p.a)] == [State.CONNECT, State.OPENSENT, State.OPENCONFIRM,
                                                State.ESTABLISHED]
    assert [s for _, s, _ in p.states(p.b)] == [State.ACTIVE, State.OPENSENT, State.OPENCONFIRM,
                                                State.ESTABLISHED]
    neg = p.a.negotiated
    assert neg.families == {IPV4_UNICAST, IPV6_UNICAST}
    assert neg.hold_time == 90 and neg.keepalive_time == 30
    assert neg.four_octet_as and neg.route_refresh and neg.enhanced_route_refresh
    # End-of-RIB for both families, even with nothing to announce
    assert p.a.adj_rib_in.eor == {1, 2} and p.b.adj_rib_in.eor == {1, 2}
    assert {e.afi for e in p.actions[id(p.a)] if isinstance(e, EndOfRib)} == {1, 2}
    assert p.a.sent_counts[MessageType.OPEN] == 1 and p.a.received_counts[MessageType.KEEPALIVE] == 1


def test_keepalive_cadence_and_hold_negotiation():
    p = Pair(cfg(hold_time=9), None).start()
    assert p.a.negotiated.hold_time == 9
    before = p.a.sent_counts[MessageType.KEEPALIVE]
    p.advance(30)  # one keepalive every 3 s on each side
    assert p.a.sent_counts[MessageType.KEEPALIVE] - before == 10
    assert p.established()


def test_configured_keepalive_is_capped_by_hold_over_three():
    p = Pair(cfg(hold_time=30, keepalive_time=20), None).start()
    assert p.a.negotiated.keepalive_time == 10
    p2 = Pair(cfg(hold_time=90, keepalive_time=5), None).start()
    assert p2.a.negotiated.keepalive_time == 5


def test_hold_time_zero_disables_keepalives_and_hold():
    p = Pair(cfg(hold_time=0), None).start()
    assert p.established() and p.a.next_deadline() is None and p.b.next_deadline() is None
    p.advance(10_000)
    assert p.established()
    assert p.a.sent_counts[MessageType.KEEPALIVE] == 1


def test_hold_timer_expiry_sends_4_0_and_restarts_with_backoff():
    s = Session(cfg(hold_time=9))
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.data_received(encode(Open.build(65002, 9, ID_B, [])) + encode(KEEPALIVE), 0.5)
    assert s.state == State.ESTABLISHED
    s.pop_actions()
    # keepalives go out every 3 s, nothing comes back
    s.tick(3.5)
    s.tick(6.5)
    acts = s.pop_actions()
    assert [a.mtype for a in acts if isinstance(a, Send)] == [4, 4]
    assert s.next_deadline() == 9.5
    s.tick(9.5)
    acts = s.pop_actions()
    assert Send(bytes.fromhex("ff" * 16 + "0015030400"), MessageType.NOTIFICATION) in acts
    assert CLOSE in acts
    assert s.state == State.ACTIVE
    assert s.last_notification_sent == Notification(4, 0)
    # the first reconnect after an Established session: 0.75 x the 1 s idle hold (rand()=0)
    assert s.next_deadline() == 9.5 + 0.75


def test_notification_received_goes_down_with_cause():
    p = Pair().start()
    p.b.stop(p.now, "maintenance window")
    p.pump()
    assert p.b.state == State.IDLE
    n = p.a.last_notification_received
    assert (n.code, n.subcode, n.shutdown_message) == (6, 2, "maintenance window")
    assert p.a.state == State.ACTIVE
    assert (State.ESTABLISHED, State.IDLE, Cause.NOTIFICATION_RECEIVED) in p.states(p.a)
    assert (State.ESTABLISHED, State.IDLE, Cause.ADMIN_STOP) in p.states(p.b)
    assert p.a.adj_rib_in.eor == set()


def test_stop_sends_exact_cease_bytes():
    p = Pair().start()
    p.a.stop(p.now, "bye")
    acts = p.a.pop_actions()
    data = Notification.cease(2, "bye").encode_body()
    assert Send(b"\xff" * 16 + (19 + len(data)).to_bytes(2, "big") + b"\x03" + data, 3) in acts
    assert acts.index(CLOSE) > [i for i, a in enumerate(acts) if isinstance(a, Send)][-1]


def test_connect_retry_backoff_is_exponential_capped_and_reset():
    rng = random.Random(7)
    s = Session(cfg(connect_retry=2.0, connect_retry_cap=16.0, rand=rng.random))
    now = 0.0
    s.start(now)
    assert s.pop_actions()[0] == CONNECT
    expected = random.Random(7)
    delays = []
    for _ in range(6):
        s.connection_failed(now, "refused")
        assert s.state == State.ACTIVE
        deadline = s.next_deadline()
        delays.append(deadline - now)
        now = deadline
        s.tick(now)
        assert s.state == State.CONNECT and CONNECT in s.pop_actions()
    want = [min(16.0, 2.0 * 2 ** i) * (0.75 + 0.25 * expected.random()) for i in range(6)]
    assert delays == pytest.approx(want)
    assert delays[-1] <= 16.0
    # Established resets the backoff
    s.connection_made(now, "192.0.2.1")
    s.data_received(encode(Open.build(65002, 90, ID_B, [])) + encode(KEEPALIVE), now)
    assert s.state == State.ESTABLISHED and s.backoff.failures == 0


def test_after_a_session_drops_the_first_retry_is_quick_then_backs_off():
    s = Session(cfg(connect_retry=30.0, connect_retry_cap=600.0))  # rand() = 0
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.data_received(encode(Open.build(65002, 90, ID_B, [])) + encode(KEEPALIVE), 0.0)
    assert s.state == State.ESTABLISHED
    s.connection_failed(10.0, "reset by peer")
    delays, now = [], 10.0
    for _ in range(3):
        assert s.state == State.ACTIVE
        delays.append(s.next_deadline() - now)
        now = s.next_deadline()
        s.tick(now)
        assert s.state == State.CONNECT
        s.connection_failed(now, "refused")
    # 1 s idle hold first, then the ConnectRetry backoff: 30, 60 (x 0.75 jitter floor)
    assert delays == pytest.approx([0.75, 22.5, 45.0])


def test_connect_attempt_timeout_retries():
    s = Session(cfg(connect_retry=5.0))
    s.start(0.0)
    s.pop_actions()
    assert s.next_deadline() == 5.0
    s.tick(5.0)
    assert s.pop_actions() == [CLOSE, CONNECT]
    assert s.state == State.CONNECT


def test_passive_never_connects():
    s = Session(cfg(passive=True))
    s.start(0.0)
    assert CONNECT not in s.pop_actions() and s.state == State.ACTIVE
    assert s.next_deadline() is None


def test_unexpected_messages_send_rfc6608_fsm_errors():
    # UPDATE in OpenSent -> 5/1
    s = Session(cfg())
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.data_received(encode(KEEPALIVE), 1.0)
    assert s.last_notification_sent == Notification(5, 1)
    # OPEN in OpenConfirm -> 5/2
    s = Session(cfg())
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.data_received(encode(Open.build(65002, 90, ID_B, [])) * 2, 1.0)
    assert s.last_notification_sent == Notification(5, 2)
    # OPEN in Established -> 5/3
    s = Session(cfg())
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    o = encode(Open.build(65002, 90, ID_B, []))
    s.data_received(o + encode(KEEPALIVE) + o, 1.0)
    assert s.last_notification_sent == Notification(5, 3)
    assert s.pop_actions()[-1].new == State.ACTIVE


def test_bad_header_is_answered_with_header_error():
    s = Session(cfg())
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.data_received(b"\x00" * 19, 1.0)
    assert s.last_notification_sent == Notification(1, 1)


def test_route_refresh_resends_with_borr_eorr():
    p = Pair().start()
    before = len(p.sent[id(p.b)])
    p.a.request_refresh(p.now)
    p.pump()
    resent = [decode(m) for m in p.sent[id(p.b)][before:]]
    # nothing to announce: BoRR then EoRR for each family asked
    assert resent == [RouteRefresh(1, 1, 1), RouteRefresh(1, 1, 2), RouteRefresh(2, 1, 1), RouteRefresh(2, 1, 2)]
    assert p.established()


def test_route_refresh_without_enhanced_resends_plainly():
    p = Pair(cfg(enhanced_route_refresh=False), None).start()
    before = len(p.sent[id(p.b)])
    assert p.a.request_refresh(p.now)
    p.pump()
    assert p.sent[id(p.b)][before:] == []  # empty Adj-RIB-Out: nothing to resend, no markers


def test_route_refresh_not_negotiated_is_not_sent():
    p = Pair(cfg(route_refresh=False), None).start()
    assert not p.a.request_refresh(p.now)


def test_send_hold_timer_tears_down_with_code_8():
    s = Session(cfg(send_hold_time=20.0))
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.data_received(encode(Open.build(65002, 0, ID_B, [])) + encode(KEEPALIVE), 0.0)
    s.send_blocked(10.0)
    assert s.next_deadline() == 30.0
    s.send_unblocked(15.0)
    assert s.next_deadline() is None
    s.send_blocked(16.0)
    s.tick(36.0)
    acts = s.pop_actions()
    assert s.last_notification_sent == Notification(8, 0)
    assert ABORT in acts


def test_default_send_hold_time_is_eight_minutes_or_twice_hold():
    s = Session(cfg(hold_time=600))
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.data_received(encode(Open.build(65002, 600, ID_B, [])), 0.0)
    s.send_blocked(0.0)
    assert s._send_hold_at() == 1200.0
    s2 = Session(cfg(hold_time=9))
    s2.start(0.0)
    s2.connection_made(0.0, "192.0.2.1")
    s2.send_blocked(0.0)
    assert s2._send_hold_at() == 480.0


def test_graceful_restart_capability_announced_when_configured():
    s = Session(cfg(graceful_restart=True, restart_time=90))
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    sends = [a for a in s.pop_actions() if isinstance(a, Send)]
    o = decode(sends[0].data)
    gr = [c for c in o.capabilities if c.code == 64][0]
    assert gr.restart_time == 90 and gr.families == ((1, 1, 0x80), (2, 1, 0x80))
    s = Session(cfg())
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    o = decode([a for a in s.pop_actions() if isinstance(a, Send)][0].data)
    assert not [c for c in o.capabilities if c.code == 64]


def test_stopped_machine_refuses_connections():
    s = Session(cfg())
    assert not s.connection_made(0.0, "192.0.2.1")
    s.start(0.0)
    s.stop(0.0)
    assert s.state == State.IDLE and not s.connection_made(0.0)
    assert s.next_deadline() is None


def test_reset_sends_6_4_and_reconnects():
    p = Pair().start()
    p.a.reset(p.now, "config change")
    p.pump()
    assert p.b.last_notification_received.subcode == 4
    assert p.b.last_notification_received.shutdown_message == "config change"
    p.advance(10)
    assert p.established()


def test_ibgp_session_and_four_octet_as():
    p = Pair(cfg(4200000001, 4200000001), cfg(4200000001, 4200000001, ID_B, passive=True)).start()
    assert p.established()
    o = p.messages(p.a)[0]
    assert o.my_as == 23456 and o.asn == 4200000001


def test_routes_flow_through_established_sessions_and_diff():
    from speakerd.policy.types import RouteAttrs
    from speakerd.wire.nlri import str_to_key
    p = Pair()
    routes = {str_to_key("198.51.100.7/32"): RouteAttrs(communities=(0xFDE80064,)),
              str_to_key("2001:db8::7/128"): RouteAttrs()}
    p.a.set_routes(p.now, routes)  # before the session is up: sent with the initial table
    p.start()
    assert {(afi, k) for afi, t in p.b.adj_rib_in.tables.items() for k in t} == set(routes)
    before = p.a.sent_counts[MessageType.UPDATE]
    p.a.set_routes(p.now, {str_to_key("198.51.100.7/32"): RouteAttrs(communities=(0xFDE80064,))})
    p.pump()
    assert p.a.sent_counts[MessageType.UPDATE] - before == 1  # one IPv6 withdrawal
    assert p.b.adj_rib_in.counts() == {1: 1, 2: 0}
    # a refresh request re-sends the table
    before = p.a.sent_counts[MessageType.UPDATE]
    p.b.request_refresh(p.now)
    p.pump()
    assert p.a.sent_counts[MessageType.UPDATE] - before == 1
    assert p.b.adj_rib_in.counts() == {1: 1, 2: 0}
    # after a reset everything comes again
    p.a.reset(p.now)
    p.pump()
    assert p.b.adj_rib_in.counts() == {1: 0, 2: 0}
    p.advance(10)
    assert p.established() and p.b.adj_rib_in.counts() == {1: 1, 2: 0}


def test_reset_causes_are_recorded_with_their_cease_subcodes():
    from speakerd.wire.constants import CeaseSubcode
    for sub, cause in ((CeaseSubcode.BFD_DOWN, Cause.BFD_DOWN),
                       (CeaseSubcode.OTHER_CONFIGURATION_CHANGE, Cause.CONFIG_CHANGE),
                       (CeaseSubcode.ADMINISTRATIVE_RESET, Cause.ADMIN_RESET)):
        p = Pair().start()
        p.a.reset(p.now, subcode=sub)
        p.pump()
        assert p.b.last_notification_received == Notification(6, sub)
        assert (State.ESTABLISHED, State.IDLE, cause) in p.states(p.a)


# --------------------------------------------------- exceptions while handling input

def _established_session() -> tuple[Pair, Session]:
    p = Pair().start()
    assert p.established()
    p.a.pop_actions()
    return p, p.a


def test_an_unexpected_exception_in_the_decoder_ends_the_session_with_cease_6_0(monkeypatch):
    from speakerd.fsm.actions import MessageRejected, NotificationSent
    from speakerd.wire import update as update_mod
    from speakerd.wire import builder

    def broken(body, ctx):
        raise ValueError("decoder bug")

    p, s = _established_session()
    monkeypatch.setattr(update_mod.Update, "decode_body", staticmethod(broken))
    msg = builder.end_of_rib(1)
    s.data_received(msg, p.now)
    acts = s.pop_actions()
    rejected = [a for a in acts if isinstance(a, MessageRejected)]
    assert len(rejected) == 1
    assert rejected[0].message == msg and rejected[0].mtype == MessageType.UPDATE
    assert "ValueError: decoder bug" in rejected[0].error
    sent = [a.notification for a in acts if isinstance(a, NotificationSent)]
    assert [(n.code, n.subcode) for n in sent] == [(6, 0)]
    assert CLOSE in acts
    # the machine is not left half-updated: down, then restarting
    assert s.state == State.ACTIVE and s.negotiated is None and not s.adj_rib_in.tables.get(1)


def test_a_protocol_error_sends_its_own_notification_and_reports_the_message():
    from speakerd.fsm.actions import MessageRejected, NotificationSent
    from speakerd.wire.framing import frame

    p, s = _established_session()
    bad = frame(MessageType.UPDATE, b"\x00\x00\x00\x00\x21\x0a\x00\x00\x01\x01")  # NLRI /33
    s.data_received(bad, p.now)
    acts = s.pop_actions()
    rejected = [a for a in acts if isinstance(a, MessageRejected)]
    sent = [a.notification for a in acts if isinstance(a, NotificationSent)]
    assert len(rejected) == 1 and rejected[0].message == bad
    assert sent and sent[0].code == 3 and rejected[0].notification == sent[0]


def test_a_bad_header_reports_the_bytes_read():
    from speakerd.fsm.actions import MessageRejected

    p, s = _established_session()
    junk = b"\x00" * 19
    s.data_received(junk, p.now)
    rejected = [a for a in s.pop_actions() if isinstance(a, MessageRejected)]
    assert len(rejected) == 1 and rejected[0].message == junk and rejected[0].mtype is None
    assert (rejected[0].notification.code, rejected[0].notification.subcode) == (1, 1)


def test_the_transport_logs_a_rejected_message_with_its_bytes(caplog):
    from speakerd.fsm import SessionSettings
    from speakerd.fsm.actions import MessageRejected
    from speakerd.net.peer import PeerTransport

    t = PeerTransport(SessionSettings(local_asn=1, peer_asn=2, router_id=1, name="rtr1"))
    act = MessageRejected(2, bytes.fromhex("ffff00aa"), Notification(6, 0), "ValueError: x")
    with caplog.at_level("WARNING", logger="speakerd.peer"):
        t._do(t.sessions.main, act, True)
    line = caplog.records[-1].getMessage()
    assert "rtr1" in line and "ValueError: x" in line and "ffff00aa" in line and "Cease" in line


# ------------------------------------------------------------ maximum prefixes

def _routes(afi: int, n: int) -> dict:
    from speakerd.policy.types import RouteAttrs
    base = 0xC6336400 if afi == 1 else 0x20010DB8 << 96
    width = 32 if afi == 1 else 128
    return {(afi, ((base + i) << 8) | width): RouteAttrs() for i in range(n)}


@pytest.mark.parametrize("afi", [1, 2])
def test_more_prefixes_than_the_maximum_end_the_session_with_cease_6_1(afi):
    import struct
    from speakerd.fsm.actions import PrefixLimitExceeded
    p = Pair(cfg(max_prefixes=3), None).start()
    p.b.set_routes(p.now, _routes(afi, 3))
    p.pump()
    assert p.established() and len(p.a.adj_rib_in) == 3  # at the maximum: fine
    p.b.set_routes(p.now, _routes(afi, 4))
    p.pump()
    notes = [m for m in p.messages(p.a) if isinstance(m, Notification)]
    # RFC 4486 §4: AFI (2 octets), SAFI (1), the upper bound (4)
    assert notes == [Notification(6, 1, struct.pack("!HBI", afi, 1, 3))]
    assert [a for a in p.actions[id(p.a)] if isinstance(a, PrefixLimitExceeded)] == \
        [PrefixLimitExceeded(afi, 1, 3, 4)]
    assert p.a.prefix_limit_hits == 1
    left = [(o, n, c) for o, n, c in p.states(p.a) if o == State.ESTABLISHED]
    assert left == [(State.ESTABLISHED, State.IDLE, Cause.MAX_PREFIXES)]
    # the routes are gone, and the next attempt waits ConnectRetry (5 s, jittered),
    # not the one-second idle hold that follows other session ends
    assert len(p.a.adj_rib_in) == 0 and p.a.state == State.ACTIVE
    assert p.a.next_deadline() - p.now >= 0.75 * 5.0


def test_no_maximum_when_max_prefixes_is_none():
    p = Pair(cfg(max_prefixes=None), None).start()
    p.b.set_routes(p.now, _routes(1, 50))
    p.pump()
    assert p.established() and len(p.a.adj_rib_in) == 50


def test_the_default_maximum_is_generous():
    from speakerd.fsm.settings import DEFAULT_MAX_PREFIXES
    assert cfg().max_prefixes == DEFAULT_MAX_PREFIXES >= 2_000_000
