"""Many prefixes -> few UPDATEs.

Prefixes sharing one attribute set are packed into as few whole, framed
messages as ``ctx.max_message_len`` allows: IPv4 in the NLRI field, IPv6 in
MP_REACH_NLRI; withdrawals likewise (IPv4 withdrawn routes, IPv6
MP_UNREACH_NLRI).  The attribute bytes are encoded once per call; prefixes are
packed once and then cut at prefix boundaries, so the cost per prefix is a
slice, not a message.
"""
from __future__ import annotations

import struct

from .capabilities import DEFAULT_CONTEXT, Negotiated
from .constants import AFI, HEADER_LEN, MARKER, SAFI, MessageType
from .framing import frame
from .nlri import chunk_keys, pack_nlri
from .update import (PathAttributes, Update, encode_attrs_cached, mp_reach_attr,
                     mp_unreach_attr)

_UPD_HDR = struct.Struct("!HB")
_H = struct.Struct("!H")
# MP_REACH value overhead before the NLRI: afi(2) safi(1) nhlen(1) reserved(1)
_MP_REACH_FIXED = 5
_MP_UNREACH_FIXED = 3
_ATTR_HDR_MAX = 4  # flags, code, 2-byte length


def _message(body: bytes) -> bytes:
    return MARKER + _UPD_HDR.pack(HEADER_LEN + len(body), MessageType.UPDATE) + body


def _cut(afi: int, keys: list[int], packed: bytes, room: int) -> list[bytes]:
    """Pack ``keys`` into pieces of at most ``room`` bytes (prefix boundaries respected)."""
    if len(packed) <= room:
        return [packed]
    ranges = chunk_keys(afi, keys, room)
    k0 = keys[0] & 0xFF
    stride = 1 + ((k0 + 7) >> 3)
    if len(packed) == stride * len(keys):  # uniform: byte offsets are index * stride
        return [packed[s * stride:e * stride] for s, e in ranges]
    return [pack_nlri(afi, keys[s:e]) for s, e in ranges]


def build_updates(afi: int, keys, attrs: PathAttributes, ctx: Negotiated = DEFAULT_CONTEXT,
                  next_hop6: bytes | None = None) -> list[bytes]:
    """Whole framed UPDATEs announcing ``keys`` (one family) with ``attrs``.

    IPv4: ``attrs.next_hop`` must be set, or (RFC 8950, extended next hop
    negotiated) it is None and the routes go in MP_REACH_NLRI with the IPv6
    ``next_hop6``.  IPv6: ``next_hop6`` is the 16-byte global or 32-byte
    global + link-local next hop.
    """
    keys = list(keys)
    if not keys:
        return []
    limit = ctx.max_message_len
    a = encode_attrs_cached(attrs, ctx.four_octet_as)
    if afi == AFI.IPV4 and attrs.next_hop is None and next_hop6 is None:
        raise ValueError("IPv4 announcement without NEXT_HOP")
    if afi == AFI.IPV4 and attrs.next_hop is not None:
        head = _H.pack(0) + _H.pack(len(a)) + a
        room = limit - HEADER_LEN - len(head)
        return [_message(head + piece) for piece in _cut(afi, keys, pack_nlri(afi, keys), room)]
    if next_hop6 is None or len(next_hop6) not in (16, 32):
        raise ValueError("an MP_REACH announcement needs a 16- or 32-byte IPv6 next hop")
    mp_fixed = struct.pack("!HBB", afi, SAFI.UNICAST, len(next_hop6)) + next_hop6 + b"\0"
    room = limit - HEADER_LEN - 4 - len(a) - _ATTR_HDR_MAX - len(mp_fixed)
    out = []
    for piece in _cut(afi, keys, pack_nlri(afi, keys), room):
        mp = mp_reach_attr(mp_fixed + piece)
        body = _H.pack(0) + _H.pack(len(mp) + len(a)) + mp + a
        out.append(_message(body))
    return out


def build_withdrawals(afi: int, keys, ctx: Negotiated = DEFAULT_CONTEXT) -> list[bytes]:
    """Whole framed UPDATEs withdrawing ``keys`` (one family)."""
    keys = list(keys)
    if not keys:
        return []
    limit = ctx.max_message_len
    if afi == AFI.IPV4:
        room = limit - HEADER_LEN - 4
        return [_message(_H.pack(len(p)) + p + b"\0\0")
                for p in _cut(afi, keys, pack_nlri(afi, keys), room)]
    fixed = struct.pack("!HB", afi, SAFI.UNICAST)
    room = limit - HEADER_LEN - 4 - _ATTR_HDR_MAX - len(fixed)
    out = []
    for piece in _cut(afi, keys, pack_nlri(afi, keys), room):
        mp = mp_unreach_attr(fixed + piece)
        out.append(_message(b"\0\0" + _H.pack(len(mp)) + mp))
    return out


def end_of_rib(afi: int = AFI.IPV4, safi: int = SAFI.UNICAST) -> bytes:
    """The framed End-of-RIB marker (RFC 4724 §2) for a family."""
    return frame(MessageType.UPDATE, Update.eor(afi, safi).encode_body(DEFAULT_CONTEXT))


__all__ = ["build_updates", "build_withdrawals", "end_of_rib"]
