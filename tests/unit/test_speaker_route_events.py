"""The speaker's per-route event log (``speakerctl explain``'s "last UPDATE" / "withdrawn at"):
a new session's table is all announcements, a changed table is told apart route by route."""
from __future__ import annotations

from types import SimpleNamespace

from speakerd.policy.types import RouteAttrs
from speakerd.speaker import Speaker


def v4(i: int) -> tuple[int, int]:
    return (1, (0x0A000000 + i) << 8 | 32)


def note(sp: Speaker, before: dict, routes: dict, now: float) -> int:
    rt = SimpleNamespace(peer=SimpleNamespace(wanted_routes=before))
    return sp._note_route_changes(rt, routes, now)


def test_route_events_of_a_new_and_a_changed_table(tmp_path):
    sp = Speaker([str(tmp_path)], "node")
    a, b = RouteAttrs(communities=(1,)), RouteAttrs(communities=(2,))
    first = {v4(i): a for i in range(10)}
    assert note(sp, {}, first, 100.0) == 10
    assert sp.route_events == dict.fromkeys(first, (100.0, "announce"))
    # 0 withdrawn, 10 new, 1 with other attributes, 2 with an equal value in a new object
    second = {**{k: v for k, v in first.items() if k != v4(0)}, v4(10): a, v4(1): b,
              v4(2): RouteAttrs(communities=(1,))}
    assert note(sp, first, second, 200.0) == 3
    assert sp.route_events[v4(0)] == (200.0, "withdraw")
    assert sp.route_events[v4(10)] == (200.0, "announce")
    assert sp.route_events[v4(1)] == (200.0, "update")
    assert sp.route_events[v4(2)] == sp.route_events[v4(3)] == (100.0, "announce")
