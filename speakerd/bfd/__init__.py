"""BFD (RFC 5880/5881/5883): packet codec and sans-IO session machine.

The UDP transport and the per-daemon session manager live in
``speakerd.net.bfd``.
"""
from .packet import BfdDropped, BfdState, ControlPacket, Diag, DropReason, decode
from .session import BfdSession, SessionParams, StateChange, Transmit

__all__ = ["BfdDropped", "BfdSession", "BfdState", "ControlPacket", "Diag", "DropReason",
           "SessionParams", "StateChange", "Transmit", "decode"]
