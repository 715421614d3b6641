"""net.timer.Deadline: one timer that follows a machine's next deadline."""
from __future__ import annotations

from speakerd.net.timer import Deadline


class FakeHandle:
    def __init__(self, when, cb):
        self.when, self.cb, self.cancelled = when, cb, False

    def cancel(self):
        self.cancelled = True


class FakeLoop:
    def __init__(self):
        self.handles: list[FakeHandle] = []

    def call_at(self, when, cb):
        h = FakeHandle(when, cb)
        self.handles.append(h)
        return h

    def live(self):
        return [h for h in self.handles if not h.cancelled]


def test_an_unchanged_deadline_keeps_its_timer_and_a_new_one_replaces_it():
    loop, fired = FakeLoop(), []
    d = Deadline(loop, lambda: fired.append(True))
    d.set(10.0)
    d.set(10.0)
    assert [h.when for h in loop.live()] == [10.0] and len(loop.handles) == 1
    d.set(12.0)
    assert [h.when for h in loop.live()] == [12.0] and loop.handles[0].cancelled
    d.set(None)
    assert loop.live() == [] and d.when is None


def test_firing_clears_it_so_the_same_deadline_can_be_set_again():
    loop, fired = FakeLoop(), []
    d = Deadline(loop, lambda: fired.append(d.when))
    d.set(5.0)
    loop.live()[0].cb()
    assert fired == [None]  # the callback sees no pending deadline
    d.set(5.0)  # e.g. the machine did not move its deadline: armed again, not skipped
    assert len(loop.handles) == 2 and loop.handles[1].when == 5.0 and not loop.handles[1].cancelled
