"""Graceful restart (RFC 4724) in the session machine: the R bit and the stop without NOTIFICATION."""
from __future__ import annotations

from test_fsm_harness import ID_B, Pair, cfg

from speakerd.fsm import Session, State
from speakerd.fsm.actions import CLOSE, NotificationSent, Send
from speakerd.wire.constants import MessageType
from speakerd.wire.framing import decode


def _open_caps(s: Session):
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    o = decode([a for a in s.pop_actions() if isinstance(a, Send)][0].data)
    return [c for c in o.capabilities if c.code == 64]


def test_restart_state_bit_only_when_restarting():
    (gr,) = _open_caps(Session(cfg(graceful_restart=True, restart_state=True)))
    assert gr.restarting and gr.families == ((1, 1, 0x80), (2, 1, 0x80))
    (gr,) = _open_caps(Session(cfg(graceful_restart=True)))
    assert not gr.restarting
    # no GR capability at all: the R bit cannot appear on its own
    assert _open_caps(Session(cfg(restart_state=True))) == []


def test_stop_without_notification_closes_silently_and_stays_idle():
    p = Pair(cfg(graceful_restart=True), cfg(65002, 65001, ID_B, passive=True, graceful_restart=True)).start()
    assert p.established() and p.a.negotiated.graceful_restart is not None
    p.a.pop_actions()
    p.a.stop(100.0, "restarting", notify=False)
    acts = p.a.pop_actions()
    assert not [a for a in acts if isinstance(a, (Send, NotificationSent))]
    assert CLOSE in acts
    assert p.a.state == State.IDLE and p.a.next_deadline() is None
    assert p.a.sent_counts[MessageType.NOTIFICATION] == 0


def test_stop_with_notification_is_still_the_default():
    p = Pair(cfg(graceful_restart=True), cfg(65002, 65001, ID_B, passive=True, graceful_restart=True)).start()
    p.a.pop_actions()
    p.a.stop(100.0, "bye")
    acts = p.a.pop_actions()
    assert [a for a in acts if isinstance(a, NotificationSent)]
    assert p.a.state == State.IDLE
