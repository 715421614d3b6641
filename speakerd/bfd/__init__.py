"""BFD (RFC 5880/5881/5883): packet codec and sans-IO session machine.

The UDP transport and the per-daemon session manager live in
``speakerd.net.bfd``.
"""
from .packet import (BfdDropped, ControlPacket, Diag, DropReason, State, decode)
from .session import Output, Session, SessionParams, StateChange

__all__ = ["BfdDropped", "ControlPacket", "Diag", "DropReason", "Output", "Session",
           "SessionParams", "State", "StateChange", "decode"]
