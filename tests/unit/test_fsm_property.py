"""Every (state, event) pair makes the transition RFC 4271 §8.2.2 asks for,
and any event sequence is handled.

The pairs are enumerated (6 states x every :class:`Event`): for each, the
states passed through and the NOTIFICATION sent are asserted.  Random
sequences then check that nothing raises, every NOTIFICATION has a
code/subcode defined by the RFCs, and the next deadline is never in the past
after the machine has been given its due timers.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_fsm_harness import ID_B, cfg

from speakerd.fsm import TRANSITIONS, Event, Session, State
from speakerd.fsm.actions import Close, NotificationSent, StateChanged
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
                d = s.next_deadline()
                if d is None or d > now:
                    break
                s.tick(d)
                nd = s.next_deadline()
                assert nd is None or nd > d, "a fired deadline must move forward"
            s.tick(now)
        return now
    {"start": lambda: s.start(now), "stop": lambda: s.stop(now, "bye"), "reset": lambda: s.reset(now),
     "collision": lambda: s.collision_dump(now),
     "connected": lambda: s.connection_made(now, "192.0.2.1"), "accept": lambda: (s.start(now, passive=True), s.connection_made(now, "192.0.2.1", outgoing=False)),
     "failed": lambda: s.connection_failed(now), "blocked": lambda: s.send_blocked(now),
     "unblocked": lambda: s.send_unblocked(now), "routes": lambda: s.set_routes(now, ROUTES),
     "refresh": lambda: s.request_refresh(now), "timer": lambda: s.tick(now)}[ev]()
    return now


def check(s: Session, now: float) -> None:
    for a in s.pop_actions():
        if isinstance(a, NotificationSent):
            assert (a.notification.code, a.notification.subcode) in VALID
    d = s.next_deadline()
    assert d is None or d >= now


def drive_to(state: State) -> tuple[Session, float]:
    s = Session(cfg(hold_time=9, send_hold_time=30.0))
    now = 0.0
    if state == State.IDLE:
        return s, now
    s.start(now)
    if state == State.CONNECT:
        return s, now
    if state == State.ACTIVE:
        s.connection_failed(now, "refused")  # the attempt failed: wait, listening
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


# ------------------------------------------------------------- every pair
# The transition each (state, event) pair must make, written from RFC 4271 §8.2.2
# (and RFC 6608 for the FSM error subcodes): the states the machine passes
# through, and the NOTIFICATION it sends (None: none).  After an error the
# machine restarts on its own: Idle, then Active (see speakerd.fsm.machine).
E = Event
DOWN = [State.IDLE, State.ACTIVE]  # ended, then AutomaticStart


def _expected(state: State, event: Event):
    if state == State.IDLE:
        return {E.MANUAL_START: ([State.CONNECT], None),
                E.MANUAL_START_PASSIVE: ([State.ACTIVE], None)}.get(event, ([], None))
    if event in (E.MANUAL_START, E.MANUAL_START_PASSIVE):
        return [], None
    with_conn = state in (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED)
    stops = {E.MANUAL_STOP: ([State.IDLE], (6, 2)), E.AUTOMATIC_STOP: (DOWN, (6, 4)),
             E.OPEN_COLLISION_DUMP: ([State.IDLE], (6, 7))}
    if event in stops:
        states, note = stops[event]
        return states, note if with_conn else None
    if state == State.CONNECT:
        return {E.CONNECT_RETRY_TIMER_EXPIRES: ([], None),  # abandon the attempt, try again
                E.TCP_CONNECTION_CONFIRMED: ([State.OPENSENT], None),
                E.TCP_CONNECTION_FAILS: ([State.ACTIVE], None)}.get(event, (DOWN, None))
    if state == State.ACTIVE:
        return {E.CONNECT_RETRY_TIMER_EXPIRES: ([State.CONNECT], None),
                E.TCP_CONNECTION_CONFIRMED: ([State.OPENSENT], None),
                E.TCP_CONNECTION_FAILS: ([], None)}.get(event, (DOWN, None))
    fsm_error = (5, {State.OPENSENT: 1, State.OPENCONFIRM: 2, State.ESTABLISHED: 3}[state])
    common = {E.HOLD_TIMER_EXPIRES: (DOWN, (4, 0)), E.SEND_HOLD_TIMER_EXPIRES: (DOWN, (8, 0)),
              E.TCP_CONNECTION_CONFIRMED: ([], None),  # a second connection: refused
              E.TCP_CONNECTION_FAILS: (DOWN, None), E.NOTIF_MSG: (DOWN, None)}
    own = {State.OPENSENT: {E.BGP_OPEN: ([State.OPENCONFIRM], None)},
           State.OPENCONFIRM: {E.KEEPALIVE_MSG: ([State.ESTABLISHED], None),
                               E.KEEPALIVE_TIMER_EXPIRES: ([], None)},
           State.ESTABLISHED: {E.KEEPALIVE_MSG: ([], None), E.KEEPALIVE_TIMER_EXPIRES: ([], None),
                               E.UPDATE_MSG: ([], None), E.ROUTE_REFRESH_MSG: ([], None)}}[state]
    return {**common, **own}.get(event, (DOWN, fsm_error))


ARGS = {
    E.MANUAL_STOP: (2, "bye", True), E.AUTOMATIC_STOP: (4, "", True),
    E.TCP_CONNECTION_CONFIRMED: ("192.0.2.1", True), E.TCP_CONNECTION_FAILS: "reset",
    E.BGP_OPEN: OPEN_OK[19:], E.NOTIF_MSG: encode(Notification(6, 2))[19:],
    E.KEEPALIVE_MSG: b"", E.UPDATE_MSG: builder.end_of_rib(1)[19:],
    E.ROUTE_REFRESH_MSG: encode(RouteRefresh(1, 1, 0))[19:],
}


def test_the_table_covers_only_real_pairs():
    assert set(TRANSITIONS) <= {(s, e) for s in State for e in Event}


@pytest.mark.parametrize("event", list(Event), ids=lambda e: e.name)
@pytest.mark.parametrize("state", list(State), ids=lambda s: s.name)
def test_every_state_event_pair(state, event):
    s, now = drive_to(state)
    s.pop_actions()
    assert s.state == state
    now += 0.5
    result = s.handle(event, now, ARGS.get(event))
    acts = s.pop_actions()
    visited = [a.new for a in acts if isinstance(a, StateChanged)]
    sent = [(a.notification.code, a.notification.subcode) for a in acts if isinstance(a, NotificationSent)]
    states, note = _expected(state, event)
    assert visited == states
    assert sent == ([note] if note else [])
    if event == E.TCP_CONNECTION_CONFIRMED:
        assert result is (state in (State.CONNECT, State.ACTIVE))  # False: close the new connection
    if note is not None or visited[-1:] == [State.IDLE]:
        assert any(isinstance(a, Close) for a in acts) or state in (State.IDLE, State.ACTIVE)
    d = s.next_deadline()
    assert d is None or d >= now


@settings(max_examples=200, deadline=None)
@given(st.lists(EVENTS, max_size=40))
def test_random_event_sequences(events):
    s = Session(cfg(hold_time=9, send_hold_time=30.0))
    now = 0.0
    for ev in events:
        now = apply(s, ev, now)
        check(s, now)
