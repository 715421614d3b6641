"""Random event and message sequences into the session machine (fake clock).

The machine never raises, every NOTIFICATION it emits has an RFC-defined
(code, subcode) and encodes to a NOTIFICATION that decodes again, and a
connected machine with a hold time always has a deadline.
"""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness.mutate import (OPS, SESSION_EVENTS, random_steps, run_session,
                                     session_config, session_inputs)
from speakerd.fsm import State
from speakerd.fsm.actions import NotificationSent

INPUTS = {k: session_inputs(session_config(k)) for k in range(8)}
MUTATION = st.tuples(st.sampled_from(OPS), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
STEP = st.one_of(
    st.tuples(st.just("data"), st.integers(0, 63), st.lists(MUTATION, max_size=4)),
    st.tuples(st.just("raw"), st.just(0), st.binary(max_size=40)),
    st.tuples(st.sampled_from([e for e in SESSION_EVENTS if e not in ("data", "raw")]), st.integers(0, 4095), st.integers(0, 4095)),
)


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.integers(0, 7), establish=st.booleans(), steps=st.lists(STEP, max_size=25))
def test_machine_survives_any_sequence(kind, establish, steps):
    head = [("connected", 0, 0)] + ([("data", 0, ()), ("data", -1, ())] if establish else [])
    run_session(kind, head + steps, INPUTS[kind])


def test_seeded_random_walks():
    """A fixed-seed plain random walk (different shapes than hypothesis draws)."""
    rng = random.Random(7406)
    established = 0
    for _ in range(300):
        kind = rng.randrange(8)
        s = run_session(kind, random_steps(rng, rng.randrange(1, 25)), INPUTS[kind])
        established += s.sent_counts[2] > 0 or s.received_counts[2] > 0
    assert established > 0  # the walks do reach UPDATE handling


def test_mutated_update_in_established_gives_valid_notification_or_keeps_up():
    """Each mutated UPDATE after Established: either the session stays up or it
    went down with exactly one valid NOTIFICATION."""
    rng = random.Random(1)
    ups = downs = 0
    for i in range(400):
        kind = i % 4
        inputs = INPUTS[kind]
        upd_index = rng.choice([j for j, m in enumerate(inputs) if m[18] == 2])
        muts = [(rng.choice(OPS), rng.randrange(1 << 16), rng.randrange(1 << 16)), ("fixlen", 0, 0)]
        s = run_session(kind, [("connected", 0, 0), ("data", 0, ()), ("data", -1, ())], inputs)
        assert s.state == State.ESTABLISHED
        from tests.robustness.mutate import apply
        s.data_received(apply(inputs[upd_index], muts, inputs), 2000.0)
        notes = [a for a in s.pop_actions() if isinstance(a, NotificationSent)]
        if s.state == State.ESTABLISHED:
            assert notes == []
            ups += 1
        else:
            assert len(notes) == 1
            downs += 1
    assert ups and downs
