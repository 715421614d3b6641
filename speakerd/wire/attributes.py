"""Path attributes: one descriptor per type code, RFC 7606 error handling as a table.

:data:`ATTRIBUTES` maps a type code to an :class:`AttrSpec`: the flags the
attribute must carry, its decode/encode functions, the :class:`PathAttributes`
field it fills, and the RFC 7606 action taken when it is malformed (or its
flags are wrong, RFC 7606 §3(c)).  The walk over the attribute list in
:mod:`.update` consults only this table; there is no per-attribute ``if``.

A decode function returns the field value or raises :class:`Malformed` with
the RFC 4271 §6.3 subcode that a strict speaker would have sent; the walker
turns that into a :class:`~.errors.UpdateError` with the data RFC 4271 asks
for (the whole attribute, or nothing for a malformed AS_PATH) and applies the
table's action:

========================  ==========  =========================================
attribute                 action      RFC 7606 section
========================  ==========  =========================================
ORIGIN                    withdraw    §7.1
AS_PATH                   withdraw    §7.2
NEXT_HOP                  withdraw    §7.3
MULTI_EXIT_DISC           withdraw    §7.4
LOCAL_PREF                withdraw    §7.5
ATOMIC_AGGREGATE          discard     §7.6
AGGREGATOR                discard     §7.7
COMMUNITIES               withdraw    §7.8
ORIGINATOR_ID             withdraw    §7.9
CLUSTER_LIST              withdraw    §7.10
MP_REACH_NLRI             reset       §7.11 (NLRI cannot be located reliably)
MP_UNREACH_NLRI           reset       §7.12
EXTENDED_COMMUNITIES      withdraw    §7.14
AS4_PATH, AS4_AGGREGATOR  discard     RFC 6793 §6
LARGE_COMMUNITIES         withdraw    RFC 8092 §6
========================  ==========  =========================================

Other rules (in :mod:`.update`): unrecognised well-known attribute -> reset
3/2; duplicate attribute -> keep the first, discard the rest (§3(g)), but a
duplicate MP_REACH/MP_UNREACH -> reset 3/1; attribute overrunning the list ->
withdraw (§4), reset if it is MP_(UN)REACH; missing well-known -> withdraw
(§3(d)); unknown optional transitive -> kept with the Partial bit set;
unknown optional non-transitive -> dropped quietly.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from .constants import AS_TRANS, AsPathSegmentType, AttrFlag, AttrType, Origin, UpdateSubcode

OPT = AttrFlag.OPTIONAL
TRANS = AttrFlag.TRANSITIVE
PARTIAL = AttrFlag.PARTIAL
EXTLEN = AttrFlag.EXTENDED_LENGTH


@dataclass(slots=True, frozen=True)
class PathAttributes:
    """One attribute set, shared (interned) by every prefix that carries it.

    MP_REACH_NLRI / MP_UNREACH_NLRI are not here: they are NLRI, and live on
    :class:`~.update.Update`.  AS4_PATH / AS4_AGGREGATOR are not here either:
    they are merged into ``as_path`` / ``aggregator`` on decode (RFC 6793)
    and regenerated on encode for peers without 4-octet AS support.
    ``None`` / ``()`` means absent (``as_path=()`` is a present, empty AS_PATH).
    """
    origin: int | None = None
    as_path: tuple[tuple[int, tuple[int, ...]], ...] | None = None  # ((segment type, (asn, ...)), ...)
    next_hop: int | None = None  # IPv4 NEXT_HOP as an int
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: tuple[int, int] | None = None  # (asn, ipv4 as int)
    communities: tuple[int, ...] = ()  # 32-bit ints, RFC 1997
    extended_communities: tuple[int, ...] = ()  # 64-bit ints, RFC 4360
    large_communities: tuple[tuple[int, int, int], ...] = ()  # RFC 8092
    originator_id: int | None = None
    cluster_list: tuple[int, ...] = ()
    unknown: tuple[tuple[int, int, bytes], ...] = ()  # (flags, type code, value) passed through

    def as_path_asns(self) -> list[int]:
        return [a for _, seg in (self.as_path or ()) for a in seg]


class ErrorAction(Enum):
    """RFC 7606 §2 approaches, strongest first."""
    RESET = "session-reset"
    WITHDRAW = "treat-as-withdraw"
    DISCARD = "attribute-discard"


class Malformed(Exception):
    """Raised by a decode function; the walker adds the data and applies the action."""

    def __init__(self, subcode: int, reason: str, data_is_attribute: bool = True) -> None:
        super().__init__(reason)
        self.subcode = subcode
        self.reason = reason
        self.data_is_attribute = data_is_attribute


@dataclass(slots=True, frozen=True)
class AttrSpec:
    code: int
    field: str | None  # PathAttributes field filled by decode (None: handled by the walker)
    flags: int  # expected Optional|Transitive bits
    decode: Callable[[bytes, bool], Any] | None  # (value, four_octet_as) -> field value
    encode: Callable[[Any, bool], bytes] | None  # (field value, four_octet_as) -> value bytes
    action: ErrorAction

    @property
    def name(self) -> str:
        return AttrType(self.code).name


_LEN = UpdateSubcode.ATTRIBUTE_LENGTH_ERROR
_OPTERR = UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR


# ---------------------------------------------------------------- decoders / encoders

def _dec_origin(v: bytes, _4: bool) -> int:
    if len(v) != 1:
        raise Malformed(_LEN, f"ORIGIN length {len(v)}")
    if v[0] > Origin.INCOMPLETE:
        raise Malformed(UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE, f"ORIGIN value {v[0]}")
    return v[0]


def _enc_origin(x: int, _4: bool) -> bytes:
    return bytes((x,))


_SEG_STRUCTS: dict[tuple[int, int], struct.Struct] = {}


def _seg_struct(count: int, width: int) -> struct.Struct:
    s = _SEG_STRUCTS.get((count, width))
    if s is None:
        s = _SEG_STRUCTS[(count, width)] = struct.Struct(f"!{count}{'I' if width == 4 else 'H'}")
    return s


def decode_as_path(v: bytes, four: bool) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """AS_PATH value -> ((segment type, asns), ...); RFC 7606 §7.2 malformations raise 3/11."""
    width = 4 if four else 2
    out = []
    off, n = 0, len(v)
    while off < n:
        if off + 2 > n:
            raise Malformed(UpdateSubcode.MALFORMED_AS_PATH, "truncated segment header", False)
        stype, count = v[off], v[off + 1]
        if not 1 <= stype <= 4:
            raise Malformed(UpdateSubcode.MALFORMED_AS_PATH, f"segment type {stype}", False)
        if count == 0:
            raise Malformed(UpdateSubcode.MALFORMED_AS_PATH, "zero-length segment", False)
        end = off + 2 + count * width
        if end > n:
            raise Malformed(UpdateSubcode.MALFORMED_AS_PATH, "segment overruns the attribute", False)
        out.append((stype, _seg_struct(count, width).unpack_from(v, off + 2)))
        off = end
    return tuple(out)


def encode_as_path(path, four: bool) -> bytes:
    width = 4 if four else 2
    parts = []
    for stype, asns in path:
        if not four:
            asns = tuple(a if a <= 0xFFFF else AS_TRANS for a in asns)
        for i in range(0, len(asns), 255):
            chunk = asns[i:i + 255]
            parts.append(bytes((stype, len(chunk))) + _seg_struct(len(chunk), width).pack(*chunk))
    return b"".join(parts)


def _dec_as4_path(v: bytes, _4: bool):
    try:
        return decode_as_path(v, True)
    except Malformed as m:  # RFC 6793 §6: a malformed AS4_PATH is discarded
        raise Malformed(_OPTERR, m.reason) from None


def _dec_u32(v: bytes, _4: bool) -> int:
    if len(v) != 4:
        raise Malformed(_LEN, f"length {len(v)} != 4")
    return int.from_bytes(v, "big")


def _enc_u32(x: int, _4: bool) -> bytes:
    return x.to_bytes(4, "big")


def _dec_next_hop(v: bytes, _4: bool) -> int:
    if len(v) != 4:
        raise Malformed(_LEN, f"NEXT_HOP length {len(v)}")
    nh = int.from_bytes(v, "big")
    # RFC 4271 §6.3 / RFC 7606 §7.3: a syntactically invalid next hop (0.0.0.0,
    # class D/E) is treat-as-withdraw.
    if nh == 0 or nh >= 0xE0000000:
        raise Malformed(UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE, f"NEXT_HOP {nh >> 24}.{(nh >> 16) & 255}.{(nh >> 8) & 255}.{nh & 255}")
    return nh


def _dec_atomic(v: bytes, _4: bool) -> bool:
    if v:
        raise Malformed(_LEN, f"ATOMIC_AGGREGATE length {len(v)}")
    return True


def _enc_atomic(x: bool, _4: bool) -> bytes:
    return b""


def _dec_aggregator(v: bytes, four: bool) -> tuple[int, int]:
    want = 8 if four else 6
    if len(v) != want:
        raise Malformed(_LEN, f"AGGREGATOR length {len(v)} != {want}")
    w = want - 4
    return int.from_bytes(v[:w], "big"), int.from_bytes(v[w:], "big")


def _enc_aggregator(x: tuple[int, int], four: bool) -> bytes:
    asn, ip = x
    if four:
        return struct.pack("!II", asn, ip)
    return struct.pack("!HI", asn if asn <= 0xFFFF else AS_TRANS, ip)


def _dec_as4_aggregator(v: bytes, _4: bool) -> tuple[int, int]:
    if len(v) != 8:
        raise Malformed(_OPTERR, f"AS4_AGGREGATOR length {len(v)} != 8")
    return struct.unpack("!II", v)


def _ints(size: int, nonzero: bool, what: str):
    fmt = {4: "I", 8: "Q"}[size]

    def dec(v: bytes, _4: bool) -> tuple[int, ...]:
        n = len(v)
        if n % size or (nonzero and not n):
            raise Malformed(_OPTERR, f"{what} length {n} is not a {'non-zero ' if nonzero else ''}multiple of {size}")
        return struct.unpack(f"!{n // size}{fmt}", v)

    def enc(x: tuple[int, ...], _4: bool) -> bytes:
        return struct.pack(f"!{len(x)}{fmt}", *x)
    return dec, enc


_dec_comm, _enc_comm = _ints(4, True, "COMMUNITIES")  # RFC 7606 §7.8
_dec_ext, _enc_ext = _ints(8, True, "EXTENDED_COMMUNITIES")  # RFC 7606 §7.14
_dec_cluster, _enc_cluster = _ints(4, True, "CLUSTER_LIST")  # RFC 7606 §7.10


def _dec_large(v: bytes, _4: bool) -> tuple[tuple[int, int, int], ...]:
    n = len(v)
    if not n or n % 12:
        raise Malformed(_OPTERR, f"LARGE_COMMUNITIES length {n} is not a non-zero multiple of 12")
    flat = struct.unpack(f"!{n // 4}I", v)
    return tuple(zip(flat[0::3], flat[1::3], flat[2::3]))


def _enc_large(x, _4: bool) -> bytes:
    return struct.pack(f"!{3 * len(x)}I", *(i for t in x for i in t))


W, D, R = ErrorAction.WITHDRAW, ErrorAction.DISCARD, ErrorAction.RESET
_T = AttrType
ATTRIBUTES: dict[int, AttrSpec] = {s.code: s for s in (
    AttrSpec(_T.ORIGIN, "origin", TRANS, _dec_origin, _enc_origin, W),
    AttrSpec(_T.AS_PATH, "as_path", TRANS, decode_as_path, encode_as_path, W),
    AttrSpec(_T.NEXT_HOP, "next_hop", TRANS, _dec_next_hop, _enc_u32, W),
    AttrSpec(_T.MULTI_EXIT_DISC, "med", OPT, _dec_u32, _enc_u32, W),
    AttrSpec(_T.LOCAL_PREF, "local_pref", TRANS, _dec_u32, _enc_u32, W),
    AttrSpec(_T.ATOMIC_AGGREGATE, "atomic_aggregate", TRANS, _dec_atomic, _enc_atomic, D),
    AttrSpec(_T.AGGREGATOR, "aggregator", OPT | TRANS, _dec_aggregator, _enc_aggregator, D),
    AttrSpec(_T.COMMUNITIES, "communities", OPT | TRANS, _dec_comm, _enc_comm, W),
    AttrSpec(_T.ORIGINATOR_ID, "originator_id", OPT, _dec_u32, _enc_u32, W),
    AttrSpec(_T.CLUSTER_LIST, "cluster_list", OPT, _dec_cluster, _enc_cluster, W),
    AttrSpec(_T.MP_REACH_NLRI, None, OPT, None, None, R),
    AttrSpec(_T.MP_UNREACH_NLRI, None, OPT, None, None, R),
    AttrSpec(_T.EXTENDED_COMMUNITIES, "extended_communities", OPT | TRANS, _dec_ext, _enc_ext, W),
    AttrSpec(_T.AS4_PATH, "as4_path", OPT | TRANS, _dec_as4_path, None, D),
    AttrSpec(_T.AS4_AGGREGATOR, "as4_aggregator", OPT | TRANS, _dec_as4_aggregator, None, D),
    AttrSpec(_T.LARGE_COMMUNITIES, "large_communities", OPT | TRANS, _dec_large, _enc_large, W),
)}

# fields in wire order for encoding (MP attributes are written by the Update encoder)
ENCODE_ORDER = [s for s in ATTRIBUTES.values() if s.encode is not None]
EMPTY_FIELD = {f: getattr(PathAttributes(), f) for f in PathAttributes.__slots__}


def attr_header(flags: int, code: int, length: int) -> bytes:
    """Flags, type code and length; the Extended Length bit is set exactly when needed."""
    if length > 255:
        return struct.pack("!BBH", (flags | EXTLEN) & 0xF0, code, length)
    return struct.pack("!BBB", flags & ~EXTLEN & 0xF0, code, length)


def encode_attributes(attrs: PathAttributes, four: bool) -> bytes:
    """The attribute list (without MP_REACH/MP_UNREACH), ordered by type code."""
    parts = []
    unknown = sorted(attrs.unknown, key=lambda u: u[1])
    ui = 0
    for spec in ENCODE_ORDER:
        while ui < len(unknown) and unknown[ui][1] < spec.code:
            f, c, v = unknown[ui]
            parts.append(attr_header(f, c, len(v)) + v)
            ui += 1
        value = getattr(attrs, spec.field)
        if value is None or value == () and spec.code != AttrType.AS_PATH or value is False:
            continue
        body = spec.encode(value, four)
        parts.append(attr_header(spec.flags, spec.code, len(body)) + body)
        if not four and spec.code == AttrType.AS_PATH and any(a > 0xFFFF for a in attrs.as_path_asns()):
            # RFC 6793 §4.2.2: the real path rides in AS4_PATH (no confederation segments)
            p4 = tuple(s for s in value if s[0] in (AsPathSegmentType.AS_SET, AsPathSegmentType.AS_SEQUENCE))
            b4 = encode_as_path(p4, True)
            parts.append(attr_header(OPT | TRANS, AttrType.AS4_PATH, len(b4)) + b4)
        if not four and spec.code == AttrType.AGGREGATOR and value[0] > 0xFFFF:
            b4 = struct.pack("!II", *value)
            parts.append(attr_header(OPT | TRANS, AttrType.AS4_AGGREGATOR, 8) + b4)
    for f, c, v in unknown[ui:]:
        parts.append(attr_header(f, c, len(v)) + v)
    return b"".join(parts)


def as_count(path) -> int:
    """RFC 6793 §4.2.3 path length: an AS_SET counts one, confederation segments zero."""
    n = 0
    for stype, asns in path:
        if stype == AsPathSegmentType.AS_SEQUENCE:
            n += len(asns)
        elif stype == AsPathSegmentType.AS_SET:
            n += 1
    return n


def merge_as4_path(as_path, as4_path):
    """RFC 6793 §4.2.3: rebuild the 4-octet path from AS_PATH and AS4_PATH."""
    n2, n4 = as_count(as_path), as_count(as4_path)
    if n2 < n4:
        return as_path
    keep = n2 - n4
    head = []
    for stype, asns in as_path:
        if keep <= 0:
            break
        if stype == AsPathSegmentType.AS_SEQUENCE:
            take = asns[:keep]
            head.append((stype, take))
            keep -= len(take)
        elif stype == AsPathSegmentType.AS_SET:
            head.append((stype, asns))
            keep -= 1
        else:
            head.append((stype, asns))
    return tuple(head) + tuple(as4_path)


__all__ = ["PathAttributes", "ErrorAction", "AttrSpec", "ATTRIBUTES", "Malformed", "encode_attributes",
           "attr_header", "decode_as_path", "encode_as_path", "merge_as4_path", "as_count"]
