"""UPDATE messages: the hot path.

Prefixes are ints, never ``ipaddress`` objects: a prefix *key* is
``(address << 8) | prefix_length`` where ``address`` is the full-width
network address (32 bits for IPv4, 128 for IPv6) with host bits cleared.
See :mod:`.nlri` for packing and unpacking.

Decoding interns attribute sets: the attribute bytes (with MP_REACH_NLRI /
MP_UNREACH_NLRI cut out, since they carry prefixes) are the key of a bounded
module-level cache, so every UPDATE of a stream that shares attributes gets
the *same* :class:`PathAttributes` object and the attributes are parsed once.

Errors follow RFC 7606 through the table in :mod:`.attributes`: a session
reset raises :class:`~.errors.UpdateError`; treat-as-withdraw sets
``Update.treat_as_withdraw`` (the receiver withdraws ``nlri`` and
``mp_reach.nlri`` instead of installing them); attribute-discard drops the
attribute.  Either way the error a strict RFC 4271 speaker would have sent is
kept in ``Update.errors`` for logging.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from .attributes import (ATTRIBUTES, EMPTY_FIELD, EXTLEN, OPT, PARTIAL, TRANS, ErrorAction, Malformed,
                         PathAttributes, attr_header, encode_attributes, merge_as4_path)
from .capabilities import DEFAULT_CONTEXT, Negotiated
from .constants import AFI, AS_TRANS, SAFI, AttrType, MessageType, UpdateSubcode
from .errors import BGPError, UpdateError
from .nlri import pack_nlri, unpack_nlri

_MP_REACH = AttrType.MP_REACH_NLRI
_MP_UNREACH = AttrType.MP_UNREACH_NLRI
_H = struct.Struct("!H")
_MP_HDR = struct.Struct("!HBB")

INTERN_CACHE_SIZE = 4096


def decodes_family(afi: int, safi: int) -> bool:
    """The families whose NLRI the codec decodes: IPv4 and IPv6 unicast.

    Any other (labeled unicast, flowspec, VPN, EVPN...) is carried as bytes
    (``undecoded``), never installed and never an error."""
    return safi == SAFI.UNICAST and afi in (AFI.IPV4, AFI.IPV6)


@dataclass(slots=True, frozen=True)
class MpReach:
    afi: int
    safi: int
    next_hop: bytes  # raw: 16 bytes (global) or 32 (global + link-local) for IPv6
    nlri: list[int] = field(default_factory=list)
    undecoded: bytes = b""  # the NLRI of a family the codec does not decode

    def encode_value(self) -> bytes:
        return (_MP_HDR.pack(self.afi, self.safi, len(self.next_hop)) + self.next_hop + b"\0"
                + (self.undecoded or pack_nlri(self.afi, self.nlri)))


@dataclass(slots=True, frozen=True)
class MpUnreach:
    afi: int
    safi: int
    withdrawn: list[int] = field(default_factory=list)
    undecoded: bytes = b""  # the withdrawn NLRI of a family the codec does not decode

    def encode_value(self) -> bytes:
        return struct.pack("!HB", self.afi, self.safi) + (self.undecoded or pack_nlri(self.afi, self.withdrawn))


def malformed_attribute_list(reason: str) -> UpdateError:
    """RFC 4271 §6.3 Malformed Attribute List (3/1), empty data."""
    return UpdateError(subcode=UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, reason=reason)


@dataclass(slots=True)
class Update:
    type: ClassVar[int] = MessageType.UPDATE
    withdrawn: list[int] = field(default_factory=list)  # IPv4 unicast prefix keys
    attrs: PathAttributes | None = None
    nlri: list[int] = field(default_factory=list)  # IPv4 unicast prefix keys
    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    # RFC 7606 outcomes that do not reset the session
    treat_as_withdraw: bool = False
    errors: tuple = ()  # BGPError instances noted while decoding (discarded attrs, ...)

    # ------------------------------------------------------------ End-of-RIB (RFC 4724 §2)
    @property
    def end_of_rib(self) -> tuple[int, int] | None:
        """(afi, safi) when this UPDATE is an End-of-RIB marker, else None."""
        if self.withdrawn or self.nlri or self.attrs is not None or self.mp_reach is not None:
            return None
        if self.mp_unreach is None:
            return (AFI.IPV4, SAFI.UNICAST)
        if self.mp_unreach.withdrawn or self.mp_unreach.undecoded:
            return None
        return (self.mp_unreach.afi, self.mp_unreach.safi)

    @classmethod
    def eor(cls, afi: int = AFI.IPV4, safi: int = SAFI.UNICAST) -> "Update":
        """The End-of-RIB marker for a family."""
        if (afi, safi) == (AFI.IPV4, SAFI.UNICAST):
            return cls()
        return cls(mp_unreach=MpUnreach(afi, safi, []))

    # ------------------------------------------------------------ encode
    def encode_body(self, ctx: Negotiated | None = None) -> bytes:
        ctx = ctx or DEFAULT_CONTEXT
        w = pack_nlri(AFI.IPV4, self.withdrawn)
        a = encode_path(self.attrs, ctx, self.mp_reach, self.mp_unreach)
        return _H.pack(len(w)) + w + _H.pack(len(a)) + a + pack_nlri(AFI.IPV4, self.nlri)

    # ------------------------------------------------------------ decode
    @classmethod
    def decode_body(cls, body, ctx: Negotiated | None = None) -> "Update":
        ctx = ctx or DEFAULT_CONTEXT
        if isinstance(body, memoryview):
            body = body.tobytes()
        n = len(body)
        if n < 4:
            raise malformed_attribute_list(f"UPDATE body of {n} bytes")
        wlen = (body[0] << 8) | body[1]
        if 4 + wlen > n:
            raise malformed_attribute_list(f"withdrawn routes length {wlen} overruns the message")
        apos = 4 + wlen
        alen = (body[apos - 2] << 8) | body[apos - 1]
        npos = apos + alen
        if npos > n:
            raise malformed_attribute_list(f"total path attribute length {alen} overruns the message")
        add_path = ctx.add_path_receive
        v4_ap = bool(add_path) and (AFI.IPV4, SAFI.UNICAST) in add_path
        withdrawn = unpack_nlri(AFI.IPV4, body[2:apos - 2], v4_ap) if wlen else []
        nlri = unpack_nlri(AFI.IPV4, body[npos:], v4_ap) if npos < n else []
        upd = cls(withdrawn, None, nlri)
        if alen:
            _decode_attributes(upd, body[apos:npos], ctx)
        return upd


# ---------------------------------------------------------------- attribute list

_cache4: dict[bytes, tuple] = {}
_cache2: dict[bytes, tuple] = {}


def clear_intern_cache() -> None:
    _cache4.clear()
    _cache2.clear()


def _decode_attributes(upd: Update, data: bytes, ctx: Negotiated) -> None:
    four = ctx.four_octet_as
    cache = _cache4 if four else _cache2
    hit = cache.get(data)
    if hit is not None:  # no MP attributes, seen before: the common IPv4 case
        upd.attrs, upd.treat_as_withdraw, upd.errors = hit
        _check_missing(upd)
        return
    # walk the TLV headers: cut MP attributes out, find overruns
    n = len(data)
    off = 0
    segs: list[tuple[int, int, int, int]] = []  # (flags, code, start, end of value); start of attr = header
    mp: list[tuple[int, bytes, bytes]] = []  # (code, value, whole attribute)
    keyparts: list[bytes] = []
    overrun: UpdateError | None = None
    while off < n:
        flags = data[off]
        hlen = 4 if flags & EXTLEN else 3
        if off + hlen > n:
            overrun = malformed_attribute_list("attribute header overruns the attribute list")
            break
        code = data[off + 1]
        length = ((data[off + 2] << 8) | data[off + 3]) if hlen == 4 else data[off + 2]
        end = off + hlen + length
        if end > n:
            if code in (_MP_REACH, _MP_UNREACH):
                raise malformed_attribute_list(f"attribute {code} overruns the attribute list")
            overrun = malformed_attribute_list(f"attribute {code} overruns the attribute list")
            break
        if code == _MP_REACH or code == _MP_UNREACH:
            if any(c == code for c, _, _ in mp):
                raise malformed_attribute_list(f"attribute {code} appears twice")  # RFC 7606 §3(g)
            mp.append((code, data[off + hlen:end], data[off:end]))
        else:
            segs.append((flags, code, off, off + hlen, end))
            keyparts.append(data[off:end])
        off = end
    key = data if not mp and overrun is None else b"".join(keyparts)
    hit = cache.get(key) if overrun is None else None
    if hit is None:
        hit = _decode_plain(data, segs, four)
        if overrun is not None:
            hit = (hit[0], True, hit[2] + (overrun,))
        else:
            if len(cache) >= INTERN_CACHE_SIZE:
                del cache[next(iter(cache))]
            cache[key] = hit
    upd.attrs, upd.treat_as_withdraw, upd.errors = hit
    for code, value, whole in mp:
        spec = ATTRIBUTES[code]
        if (data_flags := whole[0]) & (OPT | TRANS) != spec.flags:
            raise UpdateError(subcode=UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, data=whole,
                              reason=f"flags {data_flags:#x} on attribute {code}")
        if code == _MP_REACH:
            upd.mp_reach = _decode_mp_reach(value, whole, ctx)
        else:
            upd.mp_unreach = _decode_mp_unreach(value, whole, ctx)
    _check_missing(upd)


def _decode_plain(data: bytes, segs, four: bool) -> tuple:
    """Decode the non-MP attributes -> (PathAttributes | None, treat_as_withdraw, errors)."""
    if not segs:
        return (None, False, ())
    values: dict[str, object] = {}
    unknown: list[tuple[int, int, bytes]] = []
    errors: list[BGPError] = []
    withdraw = False
    seen: set[int] = set()
    for flags, code, start, vstart, end in segs:
        if code in seen:  # RFC 7606 §3(g): keep the first, discard the rest
            errors.append(malformed_attribute_list(f"duplicate attribute {code} discarded"))
            continue
        seen.add(code)
        spec = ATTRIBUTES.get(code)
        if spec is None:
            if not flags & OPT:
                raise UpdateError(subcode=UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                                  data=data[start:end], reason=f"unrecognised well-known attribute {code}")
            if flags & TRANS:
                unknown.append(((flags | PARTIAL) & 0xE0, code, data[vstart:end]))
            continue
        try:
            if flags & (OPT | TRANS) != spec.flags:
                raise Malformed(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, f"flags {flags:#04x}")
            values[spec.field] = spec.decode(data[vstart:end], four)
        except Malformed as m:
            err = UpdateError(subcode=m.subcode, data=data[start:end] if m.data_is_attribute else b"",
                              reason=f"{spec.name}: {m.reason}")
            if spec.action is ErrorAction.RESET:
                raise err from None
            errors.append(err)
            if spec.action is ErrorAction.WITHDRAW:
                withdraw = True
    as4_path = values.pop("as4_path", None)
    as4_agg = values.pop("as4_aggregator", None)
    if not four:
        # RFC 6793 §4.2.3: reconcile with AS4_AGGREGATOR / AS4_PATH from an old speaker
        agg = values.get("aggregator")
        use_as4 = True
        if as4_agg is not None and agg is not None:
            if agg[0] == AS_TRANS:
                values["aggregator"] = as4_agg
            else:
                use_as4 = False  # the AS4_* attributes were added before a 2-octet aggregation
        if use_as4 and as4_path is not None and values.get("as_path") is not None:
            values["as_path"] = merge_as4_path(values["as_path"], as4_path)
    if unknown:
        values["unknown"] = tuple(unknown)
    attrs = PathAttributes(**values) if values else None
    return (attrs, withdraw, tuple(errors))


def _check_missing(upd: Update) -> None:
    """RFC 7606 §3(d): a missing well-known attribute means treat-as-withdraw (when there is NLRI)."""
    has_v4 = bool(upd.nlri)
    if not has_v4 and not (upd.mp_reach is not None and upd.mp_reach.nlri):
        return
    a = upd.attrs
    missing = []
    if a is None or a.origin is None:
        missing.append(AttrType.ORIGIN)
    if a is None or a.as_path is None:
        missing.append(AttrType.AS_PATH)
    if has_v4 and (a is None or a.next_hop is None):
        missing.append(AttrType.NEXT_HOP)
    if missing:
        upd.treat_as_withdraw = True
        upd.errors = upd.errors + tuple(
            UpdateError(subcode=UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE, data=bytes((c,)),
                        reason=f"missing {AttrType(c).name}") for c in missing
            if not any(e.subcode == UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE and e.data == bytes((c,))
                       for e in upd.errors))


def _mp_error(whole: bytes, reason: str) -> UpdateError:
    return UpdateError(subcode=UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, data=whole, reason=reason)


def _decode_mp_reach(v: bytes, whole: bytes, ctx: Negotiated) -> MpReach:
    if len(v) < 5:
        raise _mp_error(whole, f"MP_REACH_NLRI of {len(v)} bytes")
    afi, safi, nhlen = _MP_HDR.unpack_from(v)
    pos = 4 + nhlen
    if pos + 1 > len(v):
        raise _mp_error(whole, f"MP_REACH_NLRI next hop length {nhlen} overruns the attribute")
    nh = v[4:pos]
    if not decodes_family(afi, safi):
        # a family we do not speak (flowspec has no next hop, labeled unicast
        # carries labels): its own rules, not ours; kept as bytes, never installed
        return MpReach(afi, safi, nh, [], bytes(v[pos + 1:]))
    if afi == AFI.IPV6 and nhlen not in (16, 32):
        raise _mp_error(whole, f"IPv6 next hop length {nhlen}")
    if afi == AFI.IPV4 and nhlen not in (4, 16, 32):
        raise _mp_error(whole, f"IPv4 next hop length {nhlen}")
    ap = (afi, safi) in ctx.add_path_receive
    return MpReach(afi, safi, nh, unpack_nlri(afi, v[pos + 1:], ap))  # v[pos] is Reserved


def _decode_mp_unreach(v: bytes, whole: bytes, ctx: Negotiated) -> MpUnreach:
    if len(v) < 3:
        raise _mp_error(whole, f"MP_UNREACH_NLRI of {len(v)} bytes")
    afi, safi = struct.unpack_from("!HB", v)
    if not decodes_family(afi, safi):
        return MpUnreach(afi, safi, [], bytes(v[3:]))
    ap = (afi, safi) in ctx.add_path_receive
    return MpUnreach(afi, safi, unpack_nlri(afi, v[3:], ap))


# ---------------------------------------------------------------- encode

_enc_cache: dict[tuple[PathAttributes, bool], bytes] = {}


def encode_attrs_cached(attrs: PathAttributes | None, four: bool) -> bytes:
    """Encoded attribute list for ``attrs`` (no MP attributes), memoised per attribute set."""
    if attrs is None:
        return b""
    k = (attrs, four)
    b = _enc_cache.get(k)
    if b is None:
        if len(_enc_cache) >= INTERN_CACHE_SIZE:
            del _enc_cache[next(iter(_enc_cache))]
        b = _enc_cache[k] = encode_attributes(attrs, four)
    return b


def mp_reach_attr(value: bytes) -> bytes:
    return attr_header(OPT, _MP_REACH, len(value)) + value


def mp_unreach_attr(value: bytes) -> bytes:
    return attr_header(OPT, _MP_UNREACH, len(value)) + value


def encode_path(attrs: PathAttributes | None, ctx: Negotiated, mp_reach: MpReach | None = None,
                mp_unreach: MpUnreach | None = None) -> bytes:
    """The Path Attributes field: MP_REACH, MP_UNREACH first, then the attribute set."""
    parts = []
    if mp_reach is not None:
        parts.append(mp_reach_attr(mp_reach.encode_value()))
    if mp_unreach is not None:
        parts.append(mp_unreach_attr(mp_unreach.encode_value()))
    parts.append(encode_attrs_cached(attrs, ctx.four_octet_as))
    return b"".join(parts)


__all__ = ["Update", "PathAttributes", "MpReach", "MpUnreach", "encode_path", "clear_intern_cache",
           "encode_attrs_cached", "mp_reach_attr", "mp_unreach_attr", "malformed_attribute_list",
           "EMPTY_FIELD"]
