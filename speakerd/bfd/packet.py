"""RFC 5880 BFD Control packet: enums, the frozen packet, encode and decode.

Only the 24-byte mandatory section is handled; speakerd does not implement
authentication, so a packet with the A bit is dropped (RFC 5880 §6.8.6: A set
while no authentication is in use).  Intervals on the wire are microseconds
and stay microseconds here.

``decode`` runs every reception check of RFC 5880 §6.8.6 that needs only the
packet itself and raises :class:`BfdDropped` with a :class:`DropReason`
otherwise; it never raises anything else for any input.  The checks that need
session state (your discriminator matching a session) belong to the
demultiplexer in ``speakerd.net.bfd``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

BFD_VERSION = 1
HEADER_LEN = 24
SINGLE_HOP_PORT = 3784  # RFC 5881
MULTI_HOP_PORT = 4784  # RFC 5883
SOURCE_PORT_MIN = 49152  # RFC 5881 §4
SOURCE_PORT_MAX = 65535
SINGLE_HOP_TTL = 255  # RFC 5881 §5 (GTSM)

_HEADER = struct.Struct("!BBBBIIIII")

FLAG_P = 0x20
FLAG_F = 0x10
FLAG_C = 0x08
FLAG_A = 0x04
FLAG_D = 0x02
FLAG_M = 0x01


class BfdState(IntEnum):
    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3


class Diag(IntEnum):
    NONE = 0
    CONTROL_DETECTION_EXPIRED = 1
    ECHO_FAILED = 2
    NEIGHBOR_SIGNALED_DOWN = 3
    FORWARDING_PLANE_RESET = 4
    PATH_DOWN = 5
    CONCATENATED_PATH_DOWN = 6
    ADMIN_DOWN = 7
    REVERSE_CONCATENATED_PATH_DOWN = 8
    MIS_CONNECTIVITY = 9  # RFC 9747

    @classmethod
    def of(cls, value: int) -> "Diag | int":
        """The enum member, or the bare int for codes speakerd has no name for."""
        try:
            return cls(value)
        except ValueError:
            return value


class DropReason(IntEnum):
    """Why a received datagram was dropped (RFC 5880 §6.8.6, RFC 5881 §5, RFC 5883 §2)."""
    TOO_SHORT = 1  # datagram or Length field < 24
    BAD_VERSION = 2
    BAD_LENGTH = 3  # Length field > datagram
    ZERO_DETECT_MULT = 4
    MULTIPOINT = 5  # M bit set
    ZERO_MY_DISCR = 6
    ZERO_YOUR_DISCR = 7  # your discr 0 while state is Up or Init
    AUTH_NOT_CONFIGURED = 8  # A bit set; speakerd has no authentication
    POLL_AND_FINAL = 9  # P and F both set
    BAD_TTL = 10  # single-hop TTL != 255, or multihop TTL < minimumTtl
    UNKNOWN_SESSION = 11  # no session for your discr / (peer, interface)
    WRONG_SOURCE = 12  # your discr names a session for another peer
    ADMIN_DOWN_SESSION = 13  # local session is AdminDown: discard (§6.8.6)


class BfdDropped(Exception):
    """A received packet that must be discarded, with the reason."""

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason.name.lower()}{': ' + detail if detail else ''}")


@dataclass(frozen=True, slots=True)
class ControlPacket:
    state: BfdState
    my_discr: int
    your_discr: int
    desired_min_tx_us: int
    required_min_rx_us: int
    detect_mult: int
    diag: int = Diag.NONE
    poll: bool = False
    final: bool = False
    cpi: bool = False  # C: control plane independent
    auth: bool = False
    demand: bool = False
    multipoint: bool = False
    required_min_echo_rx_us: int = 0
    version: int = BFD_VERSION

    def encode(self) -> bytes:
        flags = ((self.state & 0x3) << 6
                 | (FLAG_P if self.poll else 0) | (FLAG_F if self.final else 0)
                 | (FLAG_C if self.cpi else 0) | (FLAG_A if self.auth else 0)
                 | (FLAG_D if self.demand else 0) | (FLAG_M if self.multipoint else 0))
        return _HEADER.pack(
            ((self.version & 0x7) << 5) | (int(self.diag) & 0x1F), flags,
            self.detect_mult, HEADER_LEN, self.my_discr, self.your_discr,
            self.desired_min_tx_us, self.required_min_rx_us, self.required_min_echo_rx_us)


def decode(data: bytes | bytearray | memoryview) -> ControlPacket:
    """Parse and validate one datagram's payload; raise BfdDropped if invalid."""
    if len(data) < HEADER_LEN:
        raise BfdDropped(DropReason.TOO_SHORT, f"{len(data)} bytes")
    (vd, flags, mult, length, my_d, your_d, tx, rx, echo) = _HEADER.unpack_from(data, 0)
    version = vd >> 5
    if version != BFD_VERSION:
        raise BfdDropped(DropReason.BAD_VERSION, str(version))
    if flags & FLAG_A:
        # Checked before Length: with A set the minimum length is 26, and
        # speakerd drops every authenticated packet anyway.
        raise BfdDropped(DropReason.AUTH_NOT_CONFIGURED)
    if length < HEADER_LEN:
        raise BfdDropped(DropReason.TOO_SHORT, f"length field {length}")
    if length > len(data):
        raise BfdDropped(DropReason.BAD_LENGTH, f"length field {length} > datagram {len(data)}")
    if mult == 0:
        raise BfdDropped(DropReason.ZERO_DETECT_MULT)
    if flags & FLAG_M:
        raise BfdDropped(DropReason.MULTIPOINT)
    if my_d == 0:
        raise BfdDropped(DropReason.ZERO_MY_DISCR)
    state = BfdState(flags >> 6)
    if your_d == 0 and state not in (BfdState.DOWN, BfdState.ADMIN_DOWN):
        raise BfdDropped(DropReason.ZERO_YOUR_DISCR, state.name)
    if flags & FLAG_P and flags & FLAG_F:
        raise BfdDropped(DropReason.POLL_AND_FINAL)
    return ControlPacket(
        state=state, my_discr=my_d, your_discr=your_d, desired_min_tx_us=tx,
        required_min_rx_us=rx, detect_mult=mult, diag=Diag.of(vd & 0x1F),
        poll=bool(flags & FLAG_P), final=bool(flags & FLAG_F), cpi=bool(flags & FLAG_C),
        auth=False, demand=bool(flags & FLAG_D), multipoint=False,
        required_min_echo_rx_us=echo, version=version)
