"""Prefix keys <-> text and NLRI wire bytes (RFC 4271 §4.3, RFC 4760 §5).

A prefix *key* is ``(address << 8) | length`` with ``address`` the
full-width network address (32 bits for IPv4, 128 for IPv6), host bits
cleared.  The family (afi 1 or 2) travels beside the key.

Speed: a wire NLRI field whose prefixes all share one length (the normal
case: a run of /32 service IPs, of /24 pools, of /128s) is fixed-stride.
That is detected at C speed (``data[::stride] == bytes([plen]) * n``) and
decoded without a Python-level loop per byte: the address columns are
scattered into fixed-width big-endian records with strided slice
assignment, and the records become ints through ``array('Q')`` (IPv4) or
``int.from_bytes`` (IPv6).  Anything else takes the generic loop.

Add-path (RFC 7911): with ``add_path=True`` every prefix is preceded by a
4-byte path identifier.  speakerd is a speaker, not a route collector; it
keeps one route per prefix, so path identifiers are parsed, checked and
dropped (keys only).  Encoding with add-path is not needed (speakerd never
announces add-path send).
"""
from __future__ import annotations

import ipaddress
import sys
from array import array

from .constants import AFI, UpdateSubcode
from .errors import UpdateError

_WIDTH = {AFI.IPV4: 32, AFI.IPV6: 128, 1: 32, 2: 128}
_LITTLE = sys.byteorder == "little"
# translate tables that clear host bits in the last byte of a prefix of length p (p % 8 != 0)
_MASK_TABLES = {r: bytes(b & (0xFF << (8 - r)) & 0xFF for b in range(256)) for r in range(1, 8)}
_PLEN_BYTE = [bytes((p,)) for p in range(256)]


def invalid_network(reason: str) -> UpdateError:
    """RFC 4271 §6.3 / RFC 7606 §5.3: Invalid Network Field, empty data (session reset)."""
    return UpdateError(subcode=UpdateSubcode.INVALID_NETWORK_FIELD, reason=reason)


# --------------------------------------------------------------------------- text

def key_to_str(afi: int, key: int) -> str:
    plen = key & 0xFF
    addr = key >> 8
    if afi == AFI.IPV4:
        return f"{addr >> 24}.{(addr >> 16) & 0xFF}.{(addr >> 8) & 0xFF}.{addr & 0xFF}/{plen}"
    return f"{ipaddress.IPv6Address(addr).compressed}/{plen}"


def str_to_key(text: str) -> tuple[int, int]:
    """'10.0.0.0/24' -> (1, key); a bare address is a host route.  Host bits are cleared."""
    net = ipaddress.ip_network(text.strip(), strict=False)
    afi = AFI.IPV4 if net.version == 4 else AFI.IPV6
    return afi, (int(net.network_address) << 8) | net.prefixlen


def make_key(afi: int, address: int, plen: int) -> int:
    """Key for ``address/plen`` with host bits cleared."""
    width = _WIDTH[afi]
    if not 0 <= plen <= width:
        raise ValueError(f"prefix length {plen} out of range for afi {afi}")
    mask = ((1 << plen) - 1) << (width - plen)
    return ((address & mask) << 8) | plen


# --------------------------------------------------------------------------- decode

def unpack_nlri(afi: int, data, add_path: bool = False) -> list[int]:
    """Wire NLRI (withdrawn routes, NLRI, MP_(UN)REACH prefixes) -> keys.

    Raises :func:`invalid_network` on a prefix length beyond the family or a
    prefix overrunning the field.
    """
    n = len(data)
    if not n:
        return []
    if isinstance(data, memoryview):
        data = data.tobytes()
    width = 32 if afi == 1 else 128
    skip = 4 if add_path else 0
    if n > skip:
        plen = data[skip]
        if plen <= width:
            nb = (plen + 7) >> 3
            stride = skip + 1 + nb
            if n % stride == 0:
                count = n // stride
                if data[skip::stride] == _PLEN_BYTE[plen] * count:
                    if width == 32:
                        return _uniform_v4(data, plen, nb, stride, skip, count)
                    return _uniform_v6(data, plen, nb, stride, skip, count)
    return _generic(afi, data, width, skip)


def _columns(data: bytes, rec: int, nb: int, stride: int, skip: int, count: int, plen: int,
             tail: int) -> bytearray:
    """Scatter the address bytes of a fixed-stride NLRI run into ``rec``-byte records.

    Record layout: address bytes at [0:nb] (zeros after), prefix length at ``tail``.
    """
    out = bytearray(rec * count)
    base = skip + 1
    for i in range(nb):
        out[i::rec] = data[base + i::stride]
    rem = plen & 7
    if rem:
        i = nb - 1
        out[i::rec] = out[i::rec].translate(_MASK_TABLES[rem])
    out[tail::rec] = data[skip::stride]
    return out


def _uniform_v4(data: bytes, plen: int, nb: int, stride: int, skip: int, count: int) -> list[int]:
    if plen == 0:
        return [0] * count
    if plen == 32 and not skip:
        # key bytes are exactly the wire record rotated by one: [a b c d 32]
        buf = bytearray(8 * count)
        rot = data[1:] + b"\x20"
        for i in range(5):
            buf[3 + i::8] = rot[i::5]
    else:
        # 8-byte big-endian records: 3 zero bytes, 4 address bytes, prefix length
        buf = bytearray(8 * count)
        base = skip + 1
        for i in range(nb):
            buf[3 + i::8] = data[base + i::stride]
        rem = plen & 7
        if rem:
            j = 3 + nb - 1
            buf[j::8] = buf[j::8].translate(_MASK_TABLES[rem])
        buf[7::8] = data[skip::stride]
    arr = array("Q", buf)
    if _LITTLE:
        arr.byteswap()
    return arr.tolist()


def _uniform_v6(data: bytes, plen: int, nb: int, stride: int, skip: int, count: int) -> list[int]:
    if plen == 0:
        return [0] * count
    frm = int.from_bytes
    if plen == 128 and not skip:
        # [128 a0..a15][128 a0..a15]... rotated by one is [a0..a15 128]...: the key bytes
        rot = data[1:] + b"\x80"
        return [frm(rot[i:i + 17]) for i in range(0, 17 * count, 17)]
    buf = _columns(data, 17, nb, stride, skip, count, plen, 16)
    return [frm(buf[i:i + 17]) for i in range(0, 17 * count, 17)]


def _generic(afi: int, data: bytes, width: int, skip: int) -> list[int]:
    out: list[int] = []
    append = out.append
    frm = int.from_bytes
    n = len(data)
    off = 0
    wbytes = width >> 3
    while off < n:
        if skip:
            if off + skip > n:
                raise invalid_network("add-path identifier overruns the NLRI field")
            off += skip
            if off >= n:
                raise invalid_network("add-path identifier without a prefix")
        plen = data[off]
        if plen > width:
            raise invalid_network(f"prefix length {plen} > {width}")
        nb = (plen + 7) >> 3
        end = off + 1 + nb
        if end > n:
            raise invalid_network(f"prefix /{plen} overruns the NLRI field")
        addr = frm(data[off + 1:end]) << ((wbytes - nb) << 3)
        if plen & 7:
            addr &= ((1 << plen) - 1) << (width - plen)
        append((addr << 8) | plen)
        off = end
    return out


# --------------------------------------------------------------------------- encode

def prefix_size(afi: int, key: int) -> int:
    """Bytes the key takes on the wire (length byte included)."""
    return 1 + (((key & 0xFF) + 7) >> 3)


def pack_nlri(afi: int, keys) -> bytes:
    """Keys -> wire NLRI bytes.  Uniform prefix lengths are packed without a per-key loop (IPv4)."""
    if not keys:
        return b""
    if afi == AFI.IPV4:
        return _pack_v4(keys)
    return _pack_v6(keys)


def _pack_v4(keys) -> bytes:
    count = len(keys)
    arr = array("Q", keys)
    if _LITTLE:
        arr.byteswap()
    raw = arr.tobytes()  # 8-byte big-endian records: 0 0 0 a b c d plen
    plens = raw[7::8]
    plen = plens[0]
    if plen <= 32 and plens == _PLEN_BYTE[plen] * count and max(keys) < (1 << 40):
        nb = (plen + 7) >> 3
        stride = 1 + nb
        out = bytearray(stride * count)
        out[0::stride] = plens
        for i in range(nb):
            out[1 + i::stride] = raw[3 + i::8]
        return bytes(out)
    return b"".join([_pack_one_v4(k) for k in keys])


def _pack_one_v4(key: int) -> bytes:
    plen = key & 0xFF
    if plen > 32:
        raise ValueError(f"IPv4 prefix length {plen}")
    nb = (plen + 7) >> 3
    return _PLEN_BYTE[plen] + ((key >> 8) >> (32 - 8 * nb)).to_bytes(nb, "big")


def _pack_v6(keys) -> bytes:
    k0 = keys[0]
    plen = k0 & 0xFF
    if plen > 128:
        raise ValueError(f"IPv6 prefix length {plen}")
    count = len(keys)
    try:
        raw = b"".join([k.to_bytes(17, "big") for k in keys])  # [a0..a15 plen]...
    except OverflowError:
        raise ValueError("IPv6 key wider than 136 bits") from None
    plens = raw[16::17]
    if plens == _PLEN_BYTE[plen] * count:
        if plen == 128:
            return b"\x80" + raw[:-1]
        nb = (plen + 7) >> 3
        stride = 1 + nb
        out = bytearray(stride * count)
        out[0::stride] = plens
        for i in range(nb):
            out[1 + i::stride] = raw[i::17]
        return bytes(out)
    parts = []
    for k in keys:
        p = k & 0xFF
        if p > 128:
            raise ValueError(f"IPv6 prefix length {p}")
        nb = (p + 7) >> 3
        parts.append(_PLEN_BYTE[p] + ((k >> 8) >> (128 - 8 * nb)).to_bytes(nb, "big"))
    return b"".join(parts)


def chunk_keys(afi: int, keys, room: int) -> list[tuple[int, int]]:
    """Split ``keys`` into [start, end) index ranges whose packed size fits ``room`` bytes."""
    count = len(keys)
    if not count:
        return []
    if room < 1 + (_WIDTH[afi] >> 3):
        raise ValueError(f"{room} bytes cannot hold a prefix")
    # uniform prefix length: fixed stride, plain arithmetic
    p0 = keys[0] & 0xFF
    stride = 1 + ((p0 + 7) >> 3)
    per = room // stride
    if afi == AFI.IPV4:
        arr = array("Q", keys)
        uniform = arr.tobytes()[(0 if _LITTLE else 7)::8] == _PLEN_BYTE[p0] * count if p0 < 256 else False
    else:
        uniform = all((k & 0xFF) == p0 for k in keys)
    if uniform:
        return [(i, min(i + per, count)) for i in range(0, count, per)]
    ranges = []
    start = 0
    used = 0
    for i, k in enumerate(keys):
        size = 1 + (((k & 0xFF) + 7) >> 3)
        if used + size > room:
            ranges.append((start, i))
            start, used = i, 0
        used += size
    ranges.append((start, count))
    return ranges


__all__ = ["key_to_str", "str_to_key", "make_key", "pack_nlri", "unpack_nlri", "prefix_size",
           "chunk_keys", "invalid_network"]
