"""Replay tests/data/fuzz_corpus/*.bin: inputs that found bugs or pin hostile-peer cases."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness.mutate import _v4, check_all, run_session, session_config, session_inputs
from speakerd.fsm import State
from speakerd.fsm.actions import Send
from speakerd.policy.types import RouteAttrs

INPUTS = [session_inputs(session_config(kind)) for kind in range(4)]
CORPUS = sorted((Path(__file__).resolve().parent.parent / "data" / "fuzz_corpus").glob("*.bin"))


def test_corpus_is_there():
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_codec_replay(path):
    check_all(path.read_bytes())


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_session_replay(path):
    data = path.read_bytes()
    for kind, inputs in enumerate(INPUTS):
        s = run_session(kind, [("connected", 0, 0), ("data", 0, ()), ("data", -1, ()), ("raw", 0, data),
                               ("timer", 0, 0)], inputs)
        assert s.state != State.OPENSENT


def test_refresh_flood_is_answered_once_per_read():
    """Requests are coalesced per read: ten in one read get one answer, ten
    reads of one request get ten answers (enhanced route refresh: BoRR,
    the UPDATE, EoRR each)."""
    data = (Path(CORPUS[0]).parent / "session-route-refresh-flood.bin").read_bytes()
    s = run_session(0, [("connected", 0, 0), ("data", 0, ())], INPUTS[0])
    s.data_received(INPUTS[0][-1], 1.0)
    assert s.state == State.ESTABLISHED
    s.set_routes(1.0, {(1, _v4(198, 51, 100, 1, 32)): RouteAttrs()})
    s.pop_actions()
    s.data_received(data[:230], 2.0)  # ten requests in one read
    assert [a.mtype for a in s.pop_actions() if isinstance(a, Send)] == [5, 2, 5]
    for i in range(10):
        s.data_received(data[23 * i:23 * (i + 1)], 3.0)
    assert [a.mtype for a in s.pop_actions() if isinstance(a, Send)] == [5, 2, 5] * 10
