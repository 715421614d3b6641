"""BFD session machine with a fake clock: every transition and both timer paths."""
from __future__ import annotations

from typing import NamedTuple

import pytest

from speakerd.bfd.packet import ControlPacket, Diag, BfdState, decode
from speakerd.bfd.session import SLOW_TX_US, BfdSession, SessionParams, StateChange, Transmit

FAST = SessionParams(desired_min_tx_us=50_000, required_min_rx_us=50_000, detect_mult=3)


def rand_max():  # no jitter reduction: interval exactly 100 %
    return 0.0


def remote(state=BfdState.DOWN, your=0, tx=1_000_000, rx=50_000, mult=3, **kw) -> ControlPacket:
    return ControlPacket(state=state, my_discr=777, your_discr=your, desired_min_tx_us=tx,
                         required_min_rx_us=rx, detect_mult=mult, **kw)


def new(params=FAST, now=0.0, rand=rand_max) -> BfdSession:
    return BfdSession(local_discr=42, params=params, now=now, rand=rand)


class Output(NamedTuple):
    """What one input queued, split by kind (the machine queues them in one list)."""
    packets: tuple[bytes, ...]
    events: tuple[StateChange, ...]


def run(call, *args) -> Output:
    """Call one input of a machine, then drain its actions."""
    call(*args)
    acts = call.__self__.pop_actions()
    return Output(tuple(a.packet for a in acts if isinstance(a, Transmit)),
                  tuple(a for a in acts if isinstance(a, StateChange)))


def sent(out) -> list[ControlPacket]:
    return [decode(p) for p in out.packets]


def test_first_packet_immediately_down_slow():
    s = new()
    assert s.next_deadline() == 0.0
    (p,) = sent(run(s.tick, 0.0))
    assert (p.state, p.my_discr, p.your_discr) == (BfdState.DOWN, 42, 0)
    assert p.desired_min_tx_us == SLOW_TX_US  # RFC 5880 §6.8.3 while not Up
    assert p.required_min_rx_us == 50_000
    assert s.next_deadline() == pytest.approx(1.0)


def test_down_to_init_on_remote_down():
    s = new()
    run(s.tick, 0.0)
    out = run(s.receive, remote(BfdState.DOWN), 0.1)
    assert out.events == (StateChange(BfdState.DOWN, BfdState.INIT, Diag.NONE),)
    (p,) = sent(out)  # state change is announced at once
    assert (p.state, p.your_discr) == (BfdState.INIT, 777)


def test_down_to_up_on_remote_init():
    s = new()
    out = run(s.receive, remote(BfdState.INIT, your=42), 0.1)
    assert out.events == (StateChange(BfdState.DOWN, BfdState.UP, Diag.NONE),)
    assert s.up_since == 0.1


def test_down_ignores_remote_up():
    s = new()
    assert run(s.receive, remote(BfdState.UP, your=42), 0.1).events == ()
    assert s.state is BfdState.DOWN


def test_init_to_up_on_remote_init_or_up():
    for rs in (BfdState.INIT, BfdState.UP):
        s = new()
        run(s.receive, remote(BfdState.DOWN), 0.1)
        out = run(s.receive, remote(rs, your=42), 0.2)
        assert out.events == (StateChange(BfdState.INIT, BfdState.UP, Diag.NONE),)


def up_session(params=FAST) -> Session:
    s = new(params)
    run(s.receive, remote(BfdState.INIT, your=42, tx=50_000), 0.0)
    assert s.state is BfdState.UP
    return s


def test_up_to_down_on_remote_down():
    s = up_session()
    out = run(s.receive, remote(BfdState.DOWN, your=0), 0.05)
    assert out.events == (StateChange(BfdState.UP, BfdState.DOWN, Diag.NEIGHBOR_SIGNALED_DOWN),)
    assert sent(out)[0].diag == Diag.NEIGHBOR_SIGNALED_DOWN
    assert s.up_since is None


def test_remote_admin_down_reason_distinguishes_planned_shutdown():
    s = up_session()
    out = run(s.receive, remote(BfdState.ADMIN_DOWN, your=42, diag=Diag.ADMIN_DOWN), 0.05)
    assert out.events == (StateChange(BfdState.UP, BfdState.DOWN, Diag.ADMIN_DOWN),)
    # on the wire it is diag 3, as RFC 5880 §6.8.6 says
    assert s.local_diag is Diag.NEIGHBOR_SIGNALED_DOWN
    assert sent(out)[0].diag == Diag.NEIGHBOR_SIGNALED_DOWN


def test_remote_admin_down_while_down_is_no_event():
    s = new()
    assert run(s.receive, remote(BfdState.ADMIN_DOWN), 0.1).events == ()


def test_detection_timeout_up_to_down():
    s = up_session()
    # detection time = 3 x max(50 ms ours, 50 ms theirs) = 150 ms
    assert s.detect_time_us == 150_000
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000), 1.0)
    assert run(s.tick, 1.149).events == ()
    out = run(s.tick, 1.150)
    assert out.events == (StateChange(BfdState.UP, BfdState.DOWN, Diag.CONTROL_DETECTION_EXPIRED),)
    (p,) = sent(out)
    assert (p.state, p.diag, p.your_discr) == (BfdState.DOWN, Diag.CONTROL_DETECTION_EXPIRED, 0)
    assert p.desired_min_tx_us == SLOW_TX_US
    assert s.remote_discr == 0


def test_detection_uses_remote_multiplier_and_larger_interval():
    s = new()
    run(s.receive, remote(BfdState.INIT, your=42, tx=200_000, mult=5), 0.0)
    assert s.detect_time_us == 5 * 200_000
    assert run(s.tick, 0.999).events == ()
    assert run(s.tick, 1.0).events[0].reason is Diag.CONTROL_DETECTION_EXPIRED


def test_detection_in_init():
    s = new()
    run(s.receive, remote(BfdState.DOWN), 0.0)
    # remote still slow (1 s) while not Up: 3 s detection
    assert run(s.tick, 2.99).events == ()
    assert run(s.tick, 3.0).events == (StateChange(BfdState.INIT, BfdState.DOWN, Diag.CONTROL_DETECTION_EXPIRED),)


def test_detection_expiry_in_down_only_clears_remote():
    s = new()
    run(s.receive, remote(BfdState.ADMIN_DOWN), 0.0)
    assert s.remote_discr == 777
    assert run(s.tick, 3.0).events == ()
    assert s.remote_discr == 0


def test_tx_timer_rate_and_jitter_bounds():
    s = up_session()
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.0)  # completes poll
    assert s.tx_interval_us == 50_000
    for r, expect in ((0.0, 0.050), (0.999999, 0.0375)):
        s._rand = lambda r=r: r
        run(s.receive, remote(BfdState.UP, your=42, tx=50_000), 1.0)  # keep detection alive
        t = s.next_deadline()
        out = run(s.tick, t)
        assert len(out.packets) == 1
        assert s.next_deadline() == pytest.approx(t + expect, abs=1e-6)


def test_jitter_with_multiplier_one_is_at_most_90_percent():
    s = up_session(SessionParams(50_000, 50_000, detect_mult=1))
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.0)
    s._rand = lambda: 0.0
    t = s.next_deadline()
    run(s.tick, t)
    assert s.next_deadline() - t == pytest.approx(0.045, abs=1e-6)
    s._rand = lambda: 0.999999
    t = s.next_deadline()
    run(s.tick, t)
    assert s.next_deadline() - t == pytest.approx(0.0375, abs=1e-6)


def test_tx_interval_is_max_of_our_tx_and_their_rx():
    s = up_session()
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, rx=200_000, final=True), 0.0)
    assert s.tx_interval_us == 200_000


def test_no_periodic_tx_when_remote_rx_zero():
    s = up_session()
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, rx=0, final=True), 0.0)
    assert s.next_deadline() == pytest.approx(0.15)  # only detection remains


def test_going_up_starts_poll_and_faster_rate_applies_at_once():
    s = new()
    out = run(s.receive, remote(BfdState.INIT, your=42, tx=50_000), 0.0)
    (p,) = sent(out)
    assert p.state is BfdState.UP and p.poll and not p.final
    assert p.desired_min_tx_us == 50_000  # advertised at once
    # faster: used at once (the peer's detection time can only shrink later)
    assert s.polling and s.tx_interval_us == 50_000
    assert s.next_deadline() <= 0.05 + 1e-9
    # every packet during the sequence carries P
    (p2,) = sent(run(s.tick, s.next_deadline()))
    assert p2.poll
    out = run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.06)
    assert not s.polling and s.tx_interval_us == 50_000
    (p3,) = sent(run(s.tick, s.next_deadline()))
    assert not p3.poll


def test_final_without_poll_is_ignored():
    s = up_session()
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.0)
    assert not s.polling
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.01)
    assert not s.polling and s.tx_interval_us == 50_000


def test_answers_poll_with_final_at_once():
    s = up_session()
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.0)
    out = run(s.receive, remote(BfdState.UP, your=42, tx=100_000, rx=300_000, poll=True), 0.01)
    (p,) = sent(out)
    assert p.final and not p.poll
    assert s.tx_interval_us == 300_000
    assert s.detect_time_us == 300_000


def test_interval_change_while_up_poll_final():
    s = up_session()
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.0)
    slower = SessionParams(desired_min_tx_us=200_000, required_min_rx_us=20_000, detect_mult=3)
    out = run(s.set_params, slower, 0.01)
    (p,) = sent(out)
    assert p.poll and p.desired_min_tx_us == 200_000 and p.required_min_rx_us == 20_000
    assert s.tx_interval_us == 50_000  # old TX until the Final
    # reduced RX: detection keeps the previous (larger) value until the Final
    run(s.receive, remote(BfdState.UP, your=42, tx=10_000), 0.02)
    assert s.detect_time_us == 3 * 50_000
    run(s.receive, remote(BfdState.UP, your=42, tx=10_000, final=True), 0.03)
    assert s.tx_interval_us == 200_000
    assert s.detect_time_us == 3 * 20_000


def test_change_during_poll_waits_then_polls_again():
    s = up_session()
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.0)
    run(s.set_params, SessionParams(100_000, 50_000, 3), 0.01)
    assert s.counters.polls_started == 2
    assert run(s.set_params, SessionParams(150_000, 50_000, 3), 0.02).packets == ()
    out = run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.03)
    assert s.tx_interval_us == 100_000 and s.polling
    (p,) = sent(out)
    assert p.poll and p.desired_min_tx_us == 150_000
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.04)
    assert s.tx_interval_us == 150_000 and not s.polling


def test_multiplier_change_needs_no_poll():
    s = up_session()
    run(s.receive, remote(BfdState.UP, your=42, tx=50_000, final=True), 0.0)
    run(s.set_params, SessionParams(50_000, 50_000, 5), 0.01)
    assert not s.polling
    (p,) = sent(run(s.tick, s.next_deadline()))
    assert p.detect_mult == 5


def test_change_while_down_applies_without_poll():
    s = new()
    run(s.set_params, SessionParams(20_000, 30_000, 3), 0.0)
    assert not s.polling
    (p,) = sent(run(s.tick, 0.0))
    assert p.desired_min_tx_us == SLOW_TX_US and p.required_min_rx_us == 30_000


def test_local_admin_down_and_back():
    s = up_session()
    out = run(s.admin_down, 0.1)
    assert out.events == (StateChange(BfdState.UP, BfdState.ADMIN_DOWN, Diag.ADMIN_DOWN),)
    (p,) = sent(out)
    assert (p.state, p.diag) == (BfdState.ADMIN_DOWN, Diag.ADMIN_DOWN)
    # received packets are discarded, no detection while AdminDown
    assert run(s.receive, remote(BfdState.UP, your=42), 0.2) .events == ()
    assert s.counters.rx_discarded == 1
    assert run(s.tick, 10.0).events == ()
    out = run(s.admin_up, 11.0)
    assert out.events == (StateChange(BfdState.ADMIN_DOWN, BfdState.DOWN, Diag.NONE),)
    assert sent(out)[0].state is BfdState.DOWN


def test_passive_waits_for_first_packet_and_stops_after_timeout():
    s = new(SessionParams(50_000, 50_000, 3, passive=True))
    assert s.next_deadline() is None
    assert run(s.tick, 5.0).packets == ()
    out = run(s.receive, remote(BfdState.DOWN), 5.0)
    assert sent(out)[0].state is BfdState.INIT
    assert s.next_deadline() is not None
    run(s.tick, 8.0)  # detection (3 s) expires
    assert s.remote_discr == 0 and s.state is BfdState.DOWN
    assert s.next_deadline() is None
    assert run(s.tick, 20.0).packets == ()


# ---- two sessions back to back ----------------------------------------------

class Link:
    """Two sessions wired together; now += tick; delivery optional."""

    def __init__(self, pa: SessionParams, pb: SessionParams, tick=0.001):
        import random
        ra, rb = random.Random(1), random.Random(2)
        self.now = 0.0
        self.tick_s = tick
        self.a = BfdSession(1, pa, 0.0, ra.random)
        self.b = BfdSession(2, pb, 0.0, rb.random)
        self.up = True
        self.events: list[tuple[float, str, StateChange]] = []
        self.sent = {"a": 0, "b": 0}

    def _deliver(self, name, out):
        self.events += [(self.now, name, e) for e in out.events]
        self.sent[name] += len(out.packets)
        dst, dname = (self.b, "b") if name == "a" else (self.a, "a")
        if self.up:
            for raw in out.packets:
                self._deliver(dname, run(dst.receive, decode(raw), self.now))

    def run(self, seconds: float):
        end = self.now + seconds
        while self.now < end:
            self.now = round(self.now + self.tick_s, 9)
            for name, s in (("a", self.a), ("b", self.b)):
                d = s.next_deadline()
                if d is not None and d <= self.now:
                    self._deliver(name, run(s.tick, self.now))


def test_back_to_back_handshake_negotiation_and_failure():
    link = Link(FAST, SessionParams(100_000, 30_000, 4))
    link.run(2.5)
    assert link.a.state is BfdState.UP and link.b.state is BfdState.UP
    assert not link.a.polling and not link.b.polling
    # a: TX = max(50, 30) = 50 ms; detection = 4 x max(50, 100) = 400 ms
    assert link.a.tx_interval_us == 50_000 and link.a.detect_time_us == 400_000
    # b: TX = max(100, 50) = 100 ms; detection = 3 x max(30, 50) = 150 ms
    assert link.b.tx_interval_us == 100_000 and link.b.detect_time_us == 150_000
    sent_before = dict(link.sent)
    link.run(1.0)
    # steady state: a sends 1/0.05 = 20/s at most, at least 20/1.0*0.75... (jitter 75-100 %)
    assert 20 <= link.sent["a"] - sent_before["a"] <= 27
    assert 10 <= link.sent["b"] - sent_before["b"] <= 14
    link.events.clear()
    link.up = False
    cut = link.now
    link.run(1.0)
    downs = {name: (t, e) for t, name, e in link.events if e.new is BfdState.DOWN}
    assert downs["b"][1].reason is Diag.CONTROL_DETECTION_EXPIRED
    assert downs["a"][1].reason is Diag.CONTROL_DETECTION_EXPIRED
    assert downs["b"][0] - cut <= 0.150 + 0.001
    assert downs["a"][0] - cut <= 0.400 + 0.001
    link.up = True
    link.run(4.0)
    assert link.a.state is BfdState.UP and link.b.state is BfdState.UP


def test_back_to_back_admin_down_is_seen_as_admin_down():
    link = Link(FAST, FAST)
    link.run(2.5)
    link.events.clear()
    link._deliver("a", run(link.a.admin_down, link.now))
    b_events = [e for _, name, e in link.events if name == "b"]
    assert b_events == [StateChange(BfdState.UP, BfdState.DOWN, Diag.ADMIN_DOWN)]
    link.run(5.0)
    assert link.b.state is BfdState.DOWN  # stays down while a is AdminDown


def test_back_to_back_passive_side_comes_up():
    link = Link(FAST, SessionParams(50_000, 50_000, 3, passive=True))
    link.run(2.5)
    assert link.a.state is BfdState.UP and link.b.state is BfdState.UP


def test_back_to_back_both_passive_never_talk():
    p = SessionParams(50_000, 50_000, 3, passive=True)
    link = Link(p, p)
    link.run(3.0)
    assert link.sent == {"a": 0, "b": 0}
