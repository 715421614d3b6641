"""What the session machine asks of its transport, and what it reports.

The machine appends these to one ordered queue; the transport drains it with
``Session.pop_actions()`` and carries them out in order (so a NOTIFICATION is
written before the connection it ends is closed).  The BFD machine
(:mod:`speakerd.bfd.session`) has the same three verbs: inputs queue
actions, ``pop_actions()`` drains them, ``next_deadline()``/``tick(now)``
run its timers.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..wire.messages import Notification


class State(IntEnum):
    IDLE = 1
    CONNECT = 2
    ACTIVE = 3
    OPENSENT = 4
    OPENCONFIRM = 5
    ESTABLISHED = 6

    @property
    def label(self) -> str:
        return {1: "Idle", 2: "Connect", 3: "Active", 4: "OpenSent",
                5: "OpenConfirm", 6: "Established"}[self.value]


class Cause(IntEnum):
    """Why the state changed: the history shown to operators."""
    ADMIN_START = 1
    ADMIN_STOP = 2
    ADMIN_RESET = 3
    CONNECT_RETRY = 4
    TCP_ESTABLISHED = 5
    TCP_FAILED = 6  # connect refused/timed out, or reset/closed by the peer
    OPEN_RECEIVED = 7
    KEEPALIVE_RECEIVED = 8
    HOLD_TIMER_EXPIRED = 9
    SEND_HOLD_TIMER_EXPIRED = 10
    NOTIFICATION_RECEIVED = 11
    NOTIFICATION_SENT = 12  # we found an error and told the peer
    COLLISION = 13
    CONFIG_CHANGE = 14
    BFD_DOWN = 15
    AUTOMATIC_START = 16
    FSM_ERROR = 17  # an event the state does not allow, or an input that could not be handled
    MAX_PREFIXES = 18  # the peer sent more prefixes of a family than the session allows


@dataclass(frozen=True, slots=True)
class Send:
    """Write one whole framed message."""
    data: bytes
    mtype: int


@dataclass(frozen=True, slots=True)
class Connect:
    """Open an outgoing TCP connection to the peer."""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the current connection (or abandon the connect attempt).

    ``abort``: the peer is not reading (send hold timer); do not wait to flush.
    """
    abort: bool = False


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State
    cause: Cause
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NotificationSent:
    notification: Notification


@dataclass(frozen=True, slots=True)
class NotificationReceived:
    notification: Notification


@dataclass(frozen=True, slots=True)
class CollisionResolved:
    """Two connections to one peer; the one we initiated was kept, or the peer's."""
    kept_outgoing: bool


@dataclass(frozen=True, slots=True)
class PrefixLimitExceeded:
    """More than ``limit`` prefixes of (afi, safi) were received: the session ends (Cease 6/1)."""
    afi: int
    safi: int
    limit: int
    received: int


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """Handling an input raised: the session ends with ``notification``.

    ``message`` is the whole framed message that caused it (or the bytes read
    when the header itself was bad); ``error`` says what was wrong.  The
    transport logs it: an operator gets the bytes to reproduce the problem.
    """
    mtype: int | None
    message: bytes
    notification: Notification
    error: str


@dataclass(frozen=True, slots=True)
class Received:
    """A whole message as received (only when the machine's ``trace`` is on)."""
    data: bytes
    mtype: int


@dataclass(frozen=True, slots=True)
class RoutesReceived:
    """The Adj-RIB-In changed; counts are per AFI after the change."""
    counts: dict


@dataclass(frozen=True, slots=True)
class EndOfRib:
    afi: int


CONNECT = Connect()
CLOSE = Close()
ABORT = Close(abort=True)

Action = (Send | Connect | Close | StateChanged | NotificationSent | NotificationReceived | MessageRejected
          | CollisionResolved | PrefixLimitExceeded | Received | RoutesReceived | EndOfRib)
