"""Property: any (state, event) pair and any event sequence is handled.

Nothing raises, every NOTIFICATION sent has a code/subcode defined by the
RFCs, and the next deadline is never in the past after the machine has been
given its due timers.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from test_fsm_harness import ID_B, cfg

from speakerd.fsm import Session, State
from speakerd.fsm.actions import NotificationSent
from speakerd.policy.types import RouteAttrs
from speakerd.wire import builder
from speakerd.wire.constants import SUBCODES, ErrorCode
from speakerd.wire.framing import encode, frame
from speakerd.wire.messages import KEEPALIVE, Notification, Open, RouteRefresh

OPEN_OK = encode(Open.build(65002, 9, ID_B, []))
MESSAGES = [
    OPEN_OK,
    encode(Open.build(65002, 0, ID_B, [])),
    encode(Open.build(65009, 9, ID_B, [])),
    encode(KEEPALIVE),
    builder.end_of_rib(1),
    builder.end_of_rib(2),
    encode(Notification(6, 2)),
    encode(RouteRefresh(1, 1, 0)),
    encode(RouteRefresh(2, 1, 1)),
    encode(RouteRefresh(2, 1, 2)),
    encode(RouteRefresh(7, 7, 9)),
    frame(2, b"\x00\x00\x00\x05\x40\x01\x01\x00\x00"),  # malformed UPDATE
    b"\x00" * 19,  # bad marker
    b"\xff" * 16 + b"\x00\x13\x09",  # bad type
    OPEN_OK[:7],  # partial message
]
ROUTES = {(1, (0xC6336407 << 8) | 32): RouteAttrs()}

EVENTS = st.one_of(
    st.sampled_from(["start", "stop", "reset", "collision", "connected", "accept", "failed",
                     "blocked", "unblocked", "routes", "refresh", "timer"]),
    st.tuples(st.just("data"), st.sampled_from(MESSAGES)),
    st.tuples(st.just("wait"), st.floats(min_value=0, max_value=600)),
)

VALID = {(c, s) for c, table in SUBCODES.items() for s in table}
VALID |= {(ErrorCode.HOLD_TIMER_EXPIRED, 0), (ErrorCode.SEND_HOLD_TIMER_EXPIRED, 0)}


def apply(s: Session, ev, now: float) -> float:
    if isinstance(ev, tuple):
        kind, arg = ev
        if kind == "data":
            s.data_received(arg, now)
        else:
            now += arg
            for _ in range(1000):  # fire every deadline on the way, in order
                d = s.get_timer()
                if d is None or d > now:
                    break
                s.handle_timer(d)
                nd = s.get_timer()
                assert nd is None or nd > d, "a fired deadline must move forward"
            s.handle_timer(now)
        return now
    {"start": lambda: s.start(now), "stop": lambda: s.stop(now, "bye"), "reset": lambda: s.reset(now),
     "collision": lambda: s.collision_dump(now),
     "connected": lambda: s.connection_made(now, "192.0.2.1"), "accept": lambda: s.accept(now, "192.0.2.1"),
     "failed": lambda: s.connection_failed(now), "blocked": lambda: s.send_blocked(now),
     "unblocked": lambda: s.send_unblocked(now), "routes": lambda: s.set_routes(now, ROUTES),
     "refresh": lambda: s.request_refresh(now), "timer": lambda: s.handle_timer(now)}[ev]()
    return now


def check(s: Session, now: float) -> None:
    for a in s.pop_actions():
        if isinstance(a, NotificationSent):
            assert (a.notification.code, a.notification.subcode) in VALID
    d = s.get_timer()
    assert d is None or d >= now


def drive_to(state: State) -> tuple[Session, float]:
    s = Session(cfg(hold_time=9, send_hold_time=30.0, passive=state == State.ACTIVE))
    now = 0.0
    if state == State.IDLE:
        return s, now
    s.start(now)
    if state in (State.CONNECT, State.ACTIVE):
        return s, now
    s.connection_made(now, "192.0.2.1")
    if state == State.OPENSENT:
        return s, now
    s.data_received(OPEN_OK, now)
    if state == State.OPENCONFIRM:
        return s, now
    s.data_received(encode(KEEPALIVE), now)
    assert s.state == State.ESTABLISHED
    return s, now


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(State)), EVENTS)
def test_every_state_event_pair(state, ev):
    s, now = drive_to(state)
    s.pop_actions()
    now = apply(s, ev, now + 0.5)
    check(s, now)


@settings(max_examples=200, deadline=None)
@given(st.lists(EVENTS, max_size=40))
def test_random_event_sequences(events):
    s = Session(cfg(hold_time=9, send_hold_time=30.0))
    now = 0.0
    for ev in events:
        now = apply(s, ev, now)
        check(s, now)
