"""The damper's send times are kept only as long as they matter (one interval): a daemon that
announces and updates routes for months must not keep one entry per route ever sent, also when
no weight change is ever held (the only time the timer, and its prune, ran)."""
from __future__ import annotations

from speakerd.policy.linkbw import Damper


def test_send_times_older_than_the_interval_go_without_any_held_value():
    d = Damper(1.0)
    for i in range(10_000):
        d.sent(0.0, ("tor", i))  # announcements: each starts an interval
    assert d.offer(0.5, ("tor", 0), "w") is False  # within the interval: held
    assert d.due(1.0) == {("tor", 0): "w"}
    # long after: new announcements of other routes; nothing of the old ones is needed any more
    for i in range(10_000, 10_010):
        d.sent(100.0, ("tor", i))
    assert d.offer(100.0, ("tor", 5), "x") is True  # its interval ended long ago
    assert len(d._last) <= 20, len(d._last)


def test_pruning_keeps_what_an_interval_still_needs():
    d = Damper(1.0)
    d.sent(0.0, "a")
    d.sent(5.0, "b")
    d.sent(5.5, "c")  # a prune may run here: "b" is 0.5 s old and must stay
    assert d.offer(5.6, "b", 1) is False
    assert d.next_deadline() == 6.0
