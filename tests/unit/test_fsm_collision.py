"""§6.8 collision resolution: the connection of the higher BGP identifier survives."""
from __future__ import annotations

from test_fsm_harness import ID_A, ID_B, cfg

from speakerd.fsm import Keep, Session, State, resolve_collision
from speakerd.fsm.actions import CLOSE, Send
from speakerd.wire.framing import encode
from speakerd.wire.messages import Notification


def test_rule():
    assert resolve_collision(2, 1) is Keep.OUTGOING
    assert resolve_collision(1, 2) is Keep.INCOMING
    assert resolve_collision(5, 5, 65002, 65001) is Keep.OUTGOING
    assert resolve_collision(5, 5, 65001, 65002) is Keep.INCOMING


def _wire(x: Session, y: Session, now: float) -> None:
    """Deliver queued bytes both ways until both are quiet (one connection)."""
    for _ in range(50):
        moved = False
        for s, o in ((x, y), (y, x)):
            for act in s.pop_actions():
                if isinstance(act, Send):
                    o.data_received(act.data, now)
                    moved = True
        if not moved:
            return


def _collide(local_id: int, remote_id: int):
    """Both sides connect at once: two connections, each with a machine per side.

    Local: main machine ``lo_out`` (we connected) + candidate ``lo_in`` (peer's connection).
    Remote: the mirror image.  Returns the four machines once both OPENs crossed.
    """
    now = 0.0
    lo_out = Session(cfg(65001, 65002, local_id))
    re_out = Session(cfg(65002, 65001, remote_id))
    lo_out.start(now)
    re_out.start(now)
    lo_in = Session(cfg(65001, 65002, local_id))
    re_in = Session(cfg(65002, 65001, remote_id))
    # connection 1: local -> remote; connection 2: remote -> local
    lo_out.connection_made(now, "192.0.2.1", outgoing=True)
    re_in.accept(now, "192.0.2.2")
    re_out.connection_made(now, "192.0.2.2", outgoing=True)
    lo_in.accept(now, "192.0.2.1")
    for s in (lo_out, re_out, lo_in, re_in):
        s.pop_actions()
    # deliver the OPENs on both connections
    lo_out.data_received(encode(re_in.cfg.open_message()), now)
    re_in.data_received(encode(lo_out.cfg.open_message()), now)
    re_out.data_received(encode(lo_in.cfg.open_message()), now)
    lo_in.data_received(encode(re_out.cfg.open_message()), now)
    for s in (lo_out, re_out, lo_in, re_in):
        assert s.state == State.OPENCONFIRM  # KEEPALIVEs stay queued
    return lo_out, lo_in, re_out, re_in


def _resolve(main: Session, cand: Session, now: float) -> Session:
    keep = resolve_collision(main.cfg.router_id, main.remote_id, main.cfg.local_asn, main.cfg.peer_asn)
    winner = main if (keep is Keep.OUTGOING) == main.outgoing else cand
    loser = cand if winner is main else main
    loser.collision_dump(now)
    winner.adopt()
    return winner


def _check(local_id: int, remote_id: int, survivor_is_local_outgoing: bool):
    lo_out, lo_in, re_out, re_in = _collide(local_id, remote_id)
    lw = _resolve(lo_out, lo_in, 1.0)
    rw = _resolve(re_out, re_in, 1.0)
    # both sides pick the same TCP connection
    assert (lw is lo_out) == (rw is re_in) == survivor_is_local_outgoing
    loser_l = lo_in if lw is lo_out else lo_out
    acts = loser_l.pop_actions()
    n = [a for a in acts if isinstance(a, Send)][-1]
    assert n.data[19:21] == bytes((6, 7)) and CLOSE in acts
    assert loser_l.last_notification_sent == Notification(6, 7)
    assert loser_l.state == State.IDLE and loser_l.get_timer() is None  # the loser stays down
    # the surviving connection reaches Established
    peer_of = {id(lo_out): re_in, id(lo_in): re_out}
    _wire(lw, peer_of[id(lw)], 1.0)
    assert lw.state == State.ESTABLISHED and peer_of[id(lw)].state == State.ESTABLISHED


def test_collision_higher_local_id_keeps_our_connection():
    _check(ID_B, ID_A, survivor_is_local_outgoing=True)


def test_collision_higher_remote_id_keeps_their_connection():
    _check(ID_A, ID_B, survivor_is_local_outgoing=False)
