"""§6.8 collision resolution, on the real :class:`SessionPair` of both speakers.

Two pairs are wired back to back over simulated TCP connections: each
``Send`` of a machine is delivered to the machine at the other end of its
connection, each ``Close`` closes that connection (the other end sees it
fail).  Nothing here decides a collision: the pairs do.
"""
from __future__ import annotations

from test_fsm_harness import ID_A, ID_B, cfg

from speakerd.fsm import Cause, Keep, SessionPair, State, resolve_collision
from speakerd.fsm.actions import Close, CollisionResolved, Connect, Send, StateChanged
from speakerd.wire.framing import decode_stream


def test_rule():
    assert resolve_collision(2, 1) is Keep.OUTGOING
    assert resolve_collision(1, 2) is Keep.INCOMING
    assert resolve_collision(5, 5, 65002, 65001) is Keep.OUTGOING
    assert resolve_collision(5, 5, 65001, 65002) is Keep.INCOMING


class Wire:
    """Simulated TCP connections between the machines of two pairs."""

    def __init__(self, left: SessionPair, right: SessionPair) -> None:
        self.pairs = (left, right)
        self.ends: dict = {}  # machine -> (the other end's pair, the machine there, connection id)
        self.carried: dict[int, list[tuple[str, bytes]]] = {}  # connection id -> messages
        self.reports = {id(left): [], id(right): []}
        self.connects = {id(left): [], id(right): []}  # machines that asked to connect
        self.now = 0.0

    def connect(self, pair: SessionPair, machine, other: SessionPair, cid: int):
        """``machine``'s connect attempt reaches ``other``: both ends learn of it."""
        remote, reply = other.incoming(self.now, "192.0.2.2" if other is self.pairs[1] else "192.0.2.1")
        assert remote is not None and reply == b""
        assert pair.connection_made(machine, self.now, "192.0.2.9")
        self.ends[machine] = (other, remote, cid)
        self.ends[remote] = (pair, machine, cid)
        self.carried[cid] = []
        return remote

    def pump(self) -> None:
        for _ in range(100):
            moved = False
            for pair in self.pairs:
                for machine, act in pair.pop_actions():
                    moved = True
                    self._do(pair, machine, act)
            if not moved:
                return
        raise AssertionError("never quiet")

    def _do(self, pair, machine, act) -> None:
        if isinstance(act, Connect):
            self.connects[id(pair)].append(machine)
        elif isinstance(act, Send):
            end = self.ends.get(machine)
            if end is not None:
                other_pair, other, cid = end
                self.carried[cid].append((pair is self.pairs[0] and "L" or "R", act.data))
                other_pair.data_received(other, act.data, self.now)
        elif isinstance(act, Close):
            end = self.ends.pop(machine, None)
            if end is not None:
                other_pair, other, _ = end
                self.ends.pop(other, None)
                other_pair.connection_failed(other, self.now, "closed by the other end")
        else:
            self.reports[id(pair)].append(act)


def _collide(local_id: int, remote_id: int):
    left = SessionPair(cfg(65001, 65002, local_id))
    right = SessionPair(cfg(65002, 65001, remote_id))
    w = Wire(left, right)
    left.start(w.now)
    right.start(w.now)
    w.pump()
    lo_out, re_out = left.main, right.main
    assert lo_out.state == re_out.state == State.CONNECT
    # both connect attempts complete at once: connection 1 is ours, 2 the peer's
    re_in = w.connect(left, lo_out, right, 1)
    lo_in = w.connect(right, re_out, left, 2)
    assert left.candidate is lo_in and right.candidate is re_in
    w.pump()
    return w, left, right, lo_out, lo_in


def _notifications(w: Wire, cid: int) -> list:
    return [m for _, raw in w.carried[cid] for m in decode_stream(raw) if type(m).__name__ == "Notification"]


def _check(local_id: int, remote_id: int, our_connection_survives: bool) -> None:
    w, left, right, lo_out, lo_in = _collide(local_id, remote_id)
    kept, dumped = (1, 2) if our_connection_survives else (2, 1)
    # both speakers kept the same TCP connection, Established, and no candidate is left
    assert left.candidate is None and right.candidate is None
    assert left.main is (lo_out if our_connection_survives else lo_in)
    assert left.main.state == right.main.state == State.ESTABLISHED
    assert w.ends[left.main][2] == kept
    # the other connection carried Cease / Connection Collision Resolution and is closed
    notes = _notifications(w, dumped)
    assert notes and all((n.code, n.subcode) == (6, 7) for n in notes)
    assert not _notifications(w, kept)
    assert not any(end[2] == dumped for end in w.ends.values())
    # the dumped machine stays down; only the kept one has timers
    loser = lo_in if our_connection_survives else lo_out
    assert loser.state == State.IDLE and loser.next_deadline() is None
    # each side says which connection it kept
    for pair, ours in ((left, our_connection_survives), (right, not our_connection_survives)):
        decided = [a for a in w.reports[id(pair)] if isinstance(a, CollisionResolved)]
        assert decided == [CollisionResolved(kept_outgoing=ours)]


def test_collision_higher_local_id_keeps_our_connection():
    _check(ID_B, ID_A, our_connection_survives=True)


def test_collision_higher_remote_id_keeps_their_connection():
    _check(ID_A, ID_B, our_connection_survives=False)


def test_the_peers_connection_replacing_ours_is_reported_as_one_collision_transition():
    w, left, *_ = _collide(ID_A, ID_B)
    changes = [a for a in w.reports[id(left)] if isinstance(a, StateChanged)]
    promoted = [c for c in changes if c.cause is Cause.COLLISION and c.old is State.IDLE]
    assert len(promoted) == 1 and promoted[0].new in (State.OPENSENT, State.OPENCONFIRM)
    assert changes[-1].new is State.ESTABLISHED


def test_incoming_connection_while_established_is_refused_with_cease_6_7():
    w, left, *_ = _collide(ID_B, ID_A)
    machine, reply = left.incoming(w.now, "192.0.2.1")
    assert machine is None and reply[18] == 3 and reply[19:21] == bytes((6, 7))
    assert left.main.state == State.ESTABLISHED and left.candidate is None


def test_incoming_connection_wins_over_a_connect_attempt_in_flight():
    # our connect attempt never completes: the peer's connection must be kept
    # even though our identifier is higher (there is nothing to compare with)
    left = SessionPair(cfg(65001, 65002, ID_B))
    right = SessionPair(cfg(65002, 65001, ID_A))
    w = Wire(left, right)
    left.start(w.now)
    right.start(w.now)
    w.pump()
    attempt = left.main
    w.connect(right, right.main, left, 1)
    w.pump()
    assert left.main is not attempt and left.main.state == State.ESTABLISHED
    assert right.main.state == State.ESTABLISHED
    assert attempt.state == State.IDLE
    assert left.candidate is None


def test_candidate_failing_before_the_open_leaves_the_main_machine_alone():
    left = SessionPair(cfg(65001, 65002, ID_B))
    left.start(0.0)
    left.pop_actions()
    main = left.main
    assert left.connection_made(main, 0.0, "192.0.2.9")
    left.pop_actions()
    cand, _ = left.incoming(0.0, "192.0.2.9")
    assert cand is left.candidate
    left.connection_failed(cand, 0.1, "reset")
    assert left.candidate is None and left.main is main and main.state == State.OPENSENT
    reported = [a for m, a in left.pop_actions() if isinstance(a, StateChanged)]
    assert reported == []  # the candidate's own transitions are not the peer's


def test_a_third_connection_during_a_collision_is_closed():
    left = SessionPair(cfg(65001, 65002, ID_B))
    left.start(0.0)
    assert left.connection_made(left.main, 0.0, "192.0.2.9")
    assert left.incoming(0.0, "192.0.2.9")[0] is not None
    assert left.incoming(0.0, "192.0.2.9") == (None, b"")
