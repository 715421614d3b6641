"""The inputs of the session machine, numbered as RFC 4271 §8.1 numbers them.

Every input the machine takes becomes one :class:`Event` and goes through
the one ``(state, event) -> handler`` table in :mod:`.machine`.  Events 29
and 30 are the additions of RFC 9687 and RFC 2918/7313.
"""
from __future__ import annotations

from enum import IntEnum


class Event(IntEnum):
    MANUAL_START = 1
    MANUAL_STOP = 2
    MANUAL_START_PASSIVE = 4  # ManualStart_with_PassiveTcpEstablishment: wait for the peer
    AUTOMATIC_STOP = 8  # end the session and start again (reset, BFD down, prefix limit)
    CONNECT_RETRY_TIMER_EXPIRES = 9
    HOLD_TIMER_EXPIRES = 10
    KEEPALIVE_TIMER_EXPIRES = 11
    TCP_CONNECTION_CONFIRMED = 17  # 16 and 17: a connection, ours or the peer's
    TCP_CONNECTION_FAILS = 18
    BGP_OPEN = 19
    OPEN_COLLISION_DUMP = 23
    NOTIF_MSG = 25
    KEEPALIVE_MSG = 26
    UPDATE_MSG = 27
    SEND_HOLD_TIMER_EXPIRES = 29  # RFC 9687
    ROUTE_REFRESH_MSG = 30  # RFC 2918 / RFC 7313

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").lower()


# message type (1..5) -> the event its arrival is
MESSAGE_EVENT = (None, Event.BGP_OPEN, Event.UPDATE_MSG, Event.NOTIF_MSG, Event.KEEPALIVE_MSG,
                 Event.ROUTE_REFRESH_MSG)
