"""One decoded BGP message (or decoding problem) with where and when it was seen."""
from __future__ import annotations

from dataclasses import dataclass

from ..wire.errors import BGPError


@dataclass(slots=True)
class Record:
    """What a decoder saw at one point of a stream.

    Exactly one of ``msg`` (a decoded message), ``error`` (the message could
    not be decoded: the BGPError it raised) or ``note`` (a stream event such
    as a hole in the capture) is the point of the record.
    """
    ts_ns: int | None = None
    src: str | None = None  # address text
    sport: int | None = None
    dst: str | None = None
    dport: int | None = None
    mtype: int | None = None  # BGP message type from the header, when there was one
    length: int = 0
    msg: object | None = None
    error: BGPError | None = None
    raw: bytes = b""  # the whole message, kept for errors
    note: str = ""
    frame: int = 0  # capture frame number that completed the message
