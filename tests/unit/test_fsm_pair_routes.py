"""The wanted routes of a :class:`SessionPair` across a collision: a change made while
the candidate runs beside the main machine reaches the peer on whichever connection
is kept, and ``routes`` is the table last given plus every change since."""
from __future__ import annotations

import pytest
from test_fsm_collision import Wire
from test_fsm_harness import ID_A, ID_B, cfg

from speakerd.fsm import SessionPair, State
from speakerd.policy.types import RouteAttrs

SHARED, OTHER = RouteAttrs(communities=(1,)), RouteAttrs(communities=(7,), local_pref=200)


def v4(i: int) -> tuple[int, int]:
    return (1, (0x0A000000 + i) << 8 | 32)


@pytest.mark.parametrize("local_id,remote_id,ours_kept", [(ID_B, ID_A, True), (ID_A, ID_B, False)])
def test_changes_during_a_collision_reach_the_peer_on_the_kept_connection(local_id, remote_id, ours_kept):
    left = SessionPair(cfg(65001, 65002, local_id))
    right = SessionPair(cfg(65002, 65001, remote_id))
    routes = {v4(i): SHARED for i in range(50)}
    left.set_routes(0.0, routes)
    w = Wire(left, right)
    left.start(w.now)
    right.start(w.now)
    w.pump()
    ours = left.main
    w.connect(left, ours, right, 1)
    theirs = w.connect(right, right.main, left, 2)
    assert left.candidate is theirs
    # before either OPEN is read: one route withdrawn, one new, one with other attributes
    left.update_routes(w.now, {v4(0): None, v4(100): OTHER, v4(1): OTHER})
    expected = {**routes, v4(100): OTHER, v4(1): OTHER}
    del expected[v4(0)]
    assert left.routes == expected
    w.pump()
    assert left.main is (ours if ours_kept else theirs)
    assert left.main.state == right.main.state == State.ESTABLISHED
    assert left.routes == expected
    rib = right.main.adj_rib_in
    assert len(rib) == len(expected)
    for rk, ra in expected.items():
        held = rib.get(*rk)
        assert held is not None and held[0].communities == ra.communities
    # a whole new table after the collision replaces it on the peer
    left.set_routes(w.now, {v4(200): SHARED})
    w.pump()
    assert left.routes == {v4(200): SHARED}
    assert len(right.main.adj_rib_in) == 1 and right.main.adj_rib_in.get(*v4(200)) is not None
