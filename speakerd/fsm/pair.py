"""The machines of one peer and the RFC 4271 §6.8 collision rule, sans-IO.

A :class:`.machine.Session` runs exactly one TCP connection.  When a second
connection to the same peer appears (we connected out and the peer connected
in at the same time), :class:`SessionPair` runs a second machine, the
*candidate*, beside the *main* one:

* an incoming connection goes to the main machine when it is only listening
  (Active); while the main machine has its own connection or connect attempt
  (Connect, OpenSent, OpenConfirm) it gets a candidate; while Established it
  is refused with Cease/Connection Collision Resolution (6/7), the
  established connection wins; a third connection, or one for a stopped peer,
  is closed;
* as soon as either machine knows the peer's BGP identifier (an OPEN arrived)
  :func:`resolve_collision` picks the connection to keep and the other
  machine gets OpenCollisionDump (Cease 6/7, stays down).  A main machine
  still in Connect has no connection to compare, so the candidate wins once
  it has the peer's OPEN (the connect attempt is abandoned);
* when the main machine loses its connection (Idle/Active) the candidate
  simply takes over.

The candidate starts passive (event 4) and does not restart on failure until
it becomes the main machine.  Only the main machine's reports (state
changes, NOTIFICATIONs, routes) come out; both machines' I/O actions do,
each paired with the machine it belongs to, so the transport knows which
connection to write to or close.
"""
from __future__ import annotations

from enum import Enum

from ..wire.constants import CeaseSubcode
from ..wire.framing import encode
from ..wire.messages import Notification
from .actions import (Cause, Close, CollisionResolved, Connect, MessageRejected, Received, Send,
                      State, StateChanged)
from .machine import Session
from .settings import SessionSettings

_IO = (Send, Close, Connect, Received, MessageRejected)  # passed on for either machine
_SETTLE_ROUNDS = 4  # a decision can queue actions that allow another (dump, then promote)


class Keep(Enum):
    OUTGOING = "outgoing"  # the connection we initiated
    INCOMING = "incoming"  # the connection the peer initiated


def resolve_collision(local_id: int, remote_id: int, local_asn: int = 0, remote_asn: int = 0) -> Keep:
    """The connection initiated by the speaker with the higher BGP Identifier survives.

    Identifiers compare as unsigned 32-bit integers.  Equal identifiers (only
    legal between different ASes, RFC 6286 §2.3) fall back to the AS numbers:
    the speaker with the larger AS keeps the connection it initiated.
    """
    if local_id != remote_id:
        return Keep.OUTGOING if local_id > remote_id else Keep.INCOMING
    return Keep.OUTGOING if local_asn > remote_asn else Keep.INCOMING


class SessionPair:
    """The main machine of a peer and, during a collision, the candidate."""

    def __init__(self, settings: SessionSettings, trace: bool = False) -> None:
        self.settings = settings
        self.trace = trace
        self.main = Session(settings, trace)
        self.candidate: Session | None = None
        self._received_base = [0] * 6  # counts of machines that were replaced
        self._actions: list[tuple[Session, object]] = []

    # ------------------------------------------------------------------ output
    def pop_actions(self) -> list[tuple[Session, object]]:
        out, self._actions = self._actions, []
        return out

    def next_deadline(self) -> float | None:
        ds = [d for m in self.machines() if (d := m.next_deadline()) is not None]
        return min(ds) if ds else None

    def machines(self) -> tuple[Session, ...]:
        return (self.main,) if self.candidate is None else (self.main, self.candidate)

    @property
    def routes(self) -> dict:
        """The wanted routes (read-only): the main machine's Adj-RIB-Out holds them, each
        machine its own copy, so the pair keeps none of its own."""
        return self.main.adj_rib_out.wanted

    @property
    def received_counts(self) -> list[int]:
        return [a + b for a, b in zip(self._received_base, self.main.received_counts)]

    # ------------------------------------------------------------------ inputs
    def start(self, now: float) -> None:
        self.main.start(now)
        self._settle(now)

    def stop(self, now: float, message: str, subcode: int, notify: bool = True) -> None:
        for m in self.machines():
            m.stop(now, message, subcode, notify=notify)
        self._settle(now)

    def reset(self, now: float, message: str, subcode: int) -> None:
        self.main.reset(now, message, subcode)
        self._settle(now)

    def set_routes(self, now: float, routes: dict) -> None:
        for m in self.machines():
            m.set_routes(now, routes)
        self._settle(now)

    def update_routes(self, now: float, delta: dict) -> None:
        """Change part of the wanted routes (None withdraws); each machine sends only that."""
        for m in self.machines():
            m.update_routes(now, delta)
        self._settle(now)

    def tick(self, now: float) -> None:
        for m in self.machines():
            m.tick(now)
        self._settle(now)

    def incoming(self, now: float, local_address: str | None,
                 interface_ipv6: str | None = None) -> tuple[Session | None, bytes]:
        """A connection from the peer: the machine that runs it, or (None, bytes to
        write before closing it).  ``interface_ipv6``: see :meth:`Session.connection_made`."""
        main = self.main
        if main.state == State.ACTIVE:
            main.connection_made(now, local_address, outgoing=False, interface_ipv6=interface_ipv6)
            self._settle(now)
            return main, b""
        if main.state in (State.CONNECT, State.OPENSENT, State.OPENCONFIRM) and self.candidate is None:
            cand = Session(self.settings, self.trace, restart_state=main.restart_state, one_shot=True)
            cand.set_routes(now, self.routes)
            cand.start(now, passive=True)
            cand.connection_made(now, local_address, outgoing=False, interface_ipv6=interface_ipv6)
            self.candidate = cand
            self._settle(now)
            return cand, b""
        if main.state == State.ESTABLISHED:
            return None, encode(Notification.cease(CeaseSubcode.CONNECTION_COLLISION_RESOLUTION))
        return None, b""  # stopped, or a second collision

    def connection_made(self, machine: Session, now: float, local_address: str | None,
                        interface_ipv6: str | None = None) -> bool:
        """Our connect attempt completed.  False: nobody wants it any more (close it)."""
        if machine is not self.main:
            return False
        ok = machine.connection_made(now, local_address, outgoing=True, interface_ipv6=interface_ipv6)
        self._settle(now)
        return ok

    def connection_failed(self, machine: Session, now: float, detail: str) -> None:
        if machine in self.machines():
            machine.connection_failed(now, detail)
            self._settle(now)

    def data_received(self, machine: Session, data: bytes, now: float) -> None:
        if machine in self.machines():
            machine.data_received(data, now)
            self._settle(now)

    def send_blocked(self, machine: Session, now: float, blocked: bool) -> None:
        if machine in self.machines():
            (machine.send_blocked if blocked else machine.send_unblocked)(now)
            self._settle(now)

    # ------------------------------------------------------------ collisions
    def _settle(self, now: float) -> None:
        for _ in range(_SETTLE_ROUNDS):
            self._drain()
            if not self._resolve(now):
                break
        self._drain()
        if self.candidate is not None and self.candidate.state == State.IDLE:
            self.candidate = None  # it failed before deciding anything: forget it

    def _drain(self) -> None:
        for m in self.machines():
            main = m is self.main
            for act in m.pop_actions():
                if main or isinstance(act, _IO):
                    self._actions.append((m, act))

    def _resolve(self, now: float) -> bool:
        """Decide the collision when it can be decided; True if something changed."""
        cand, main = self.candidate, self.main
        if cand is None or cand.state == State.IDLE:
            return False
        if main.state in (State.IDLE, State.ACTIVE):
            self._promote(cand)  # the main connection went away: the candidate takes over
            return True
        remote_id = main.remote_id or cand.remote_id
        if remote_id is None:
            return False
        if main.state == State.CONNECT:
            keep_main = False  # only a connect attempt: nothing to compare (RFC 4271 §6.8)
        else:
            s = self.settings
            neg = main.negotiated or cand.negotiated
            remote_asn = neg.peer_asn if neg is not None else s.peer_asn  # dynamicASN: learned
            keep = resolve_collision(s.router_id, remote_id, s.local_asn, remote_asn)
            keep_main = (keep is Keep.OUTGOING) == main.outgoing
        self._actions.append((main, CollisionResolved(
            kept_outgoing=main.outgoing if keep_main else cand.outgoing)))
        if keep_main:
            cand.collision_dump(now)
        else:
            main.collision_dump(now)
            self._drain()  # the loser's Cease goes out on its own connection first
            self._promote(cand)
        return True

    def _promote(self, cand: Session) -> None:
        old = self.main
        self._received_base = [a + b for a, b in zip(self._received_base, old.received_counts)]
        cand.adopt()
        self.main, self.candidate = cand, None
        self._actions.append((cand, StateChanged(old.state, cand.state, Cause.COLLISION,
                                                 "kept the connection initiated by the peer")))


__all__ = ["SessionPair", "Keep", "resolve_collision"]
