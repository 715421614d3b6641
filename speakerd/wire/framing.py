"""Framing: a TCP byte stream in, whole BGP messages out (and back).

:class:`Framer` accepts chunks of any size (one byte at a time works) and
yields ``(type, body)`` pairs, checking marker, length and type as RFC 4271
§6.1 demands.  :func:`encode` / :func:`decode` turn message objects into full
messages and back.
"""
from __future__ import annotations

import struct

from .capabilities import DEFAULT_CONTEXT, Negotiated
from .constants import (HEADER_LEN, MARKER, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN,
                        HeaderSubcode, MessageType)
from .errors import HeaderError, bad_length
from .messages import MESSAGE_TYPES, Message

_HDR = struct.Struct("!16sHB")
# minimum total length per type (RFC 4271 §6.1, RFC 2918)
_MIN_LEN = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    MessageType.ROUTE_REFRESH: 23,
}


def check_header(marker: bytes, length: int, mtype: int, max_len: int) -> None:
    """Raise the RFC 4271 §6.1 error for a bad header."""
    if marker != MARKER:
        raise HeaderError(subcode=HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, reason="marker is not all ones")
    if length < HEADER_LEN or length > max_len:
        raise bad_length(length)
    if mtype not in _MIN_LEN:
        raise HeaderError(subcode=HeaderSubcode.BAD_MESSAGE_TYPE, data=bytes((mtype,)),
                          reason=f"message type {mtype}")
    if length < _MIN_LEN[mtype] or (mtype == MessageType.KEEPALIVE and length != HEADER_LEN):
        raise bad_length(length)
    # OPEN and KEEPALIVE never exceed 4096 even with extended messages (RFC 8654 §4)
    if mtype in (MessageType.OPEN, MessageType.KEEPALIVE) and length > MAX_MESSAGE_LEN:
        raise bad_length(length)


class Framer:
    """Reassemble BGP messages from a byte stream.

    Bodies are memoryviews into one immutable copy of each fed chunk (no copy
    per message).  While a message is incomplete, ``feed`` only appends: the
    buffer is not rescanned until enough bytes have arrived, so feeding a
    64 KB message one byte at a time stays linear.
    """

    __slots__ = ("_buf", "_need", "max_len")

    def __init__(self, max_len: int = MAX_MESSAGE_LEN) -> None:
        self._buf = bytearray()
        self._need = HEADER_LEN  # bytes the buffer must hold before the next parse
        self.max_len = max_len

    def feed(self, data: bytes) -> list[tuple[int, memoryview]]:
        """Add ``data``; return every complete (type, body) now available.

        Raises :class:`HeaderError` on the first bad header; the messages
        before it in the same chunk are lost with the session anyway.
        """
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return []
            whole = bytes(buf)
        else:
            if len(data) < self._need:
                buf += data
                return []
            whole = bytes(data)  # no copy when data is already bytes
        out: list[tuple[int, memoryview]] = []
        view = memoryview(whole)
        n = len(whole)
        off = 0
        max_len = self.max_len
        unpack = _HDR.unpack_from
        need = HEADER_LEN
        while n - off >= HEADER_LEN:
            marker, length, mtype = unpack(whole, off)
            if marker != MARKER or length > max_len or length < HEADER_LEN or mtype not in _MIN_LEN \
                    or length < _MIN_LEN[mtype]:
                check_header(marker, length, mtype, max_len)
            elif length > MAX_MESSAGE_LEN or mtype == MessageType.KEEPALIVE:
                check_header(marker, length, mtype, max_len)
            if n - off < length:
                need = length
                break
            out.append((mtype, view[off + HEADER_LEN: off + length]))
            off += length
        self._need = need
        self._buf = bytearray(view[off:]) if off < n else bytearray()
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


def frame(mtype: int, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", HEADER_LEN + len(body), mtype) + body


def encode(msg: Message, ctx: Negotiated = DEFAULT_CONTEXT) -> bytes:
    """A whole message, header included."""
    body = msg.encode_body(ctx)
    length = HEADER_LEN + len(body)
    limit = ctx.max_message_len if msg.type in (MessageType.UPDATE, MessageType.ROUTE_REFRESH,
                                                MessageType.NOTIFICATION) else MAX_MESSAGE_LEN
    if length > limit:
        raise ValueError(f"{type(msg).__name__} of {length} bytes exceeds the {limit}-byte limit")
    return frame(msg.type, body)


def decode_body(mtype: int, body, ctx: Negotiated = DEFAULT_CONTEXT) -> Message:
    return MESSAGE_TYPES[mtype].decode_body(body, ctx)


def decode(data: bytes, ctx: Negotiated = DEFAULT_CONTEXT) -> Message:
    """Decode exactly one whole message (header included)."""
    if len(data) < HEADER_LEN:
        raise bad_length(len(data))
    marker, length, mtype = _HDR.unpack_from(data)
    check_header(marker, length, mtype, MAX_EXTENDED_MESSAGE_LEN if ctx.extended_message else MAX_MESSAGE_LEN)
    if length != len(data):
        raise bad_length(length)
    return decode_body(mtype, memoryview(data)[HEADER_LEN:], ctx)


def decode_stream(data: bytes, ctx: Negotiated = DEFAULT_CONTEXT) -> list[Message]:
    framer = Framer(ctx.max_message_len)
    return [decode_body(t, b, ctx) for t, b in framer.feed(data)]
