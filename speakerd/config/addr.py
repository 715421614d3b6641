"""Address arithmetic on ints: parse/format IPs, CIDRs and ranges.

Addresses are (afi, int) with afi 1 = IPv4 (32 bits), 2 = IPv6 (128 bits),
as in the wire code.  Parsing uses ``socket.inet_pton`` (fast and strict);
no ``ipaddress`` objects are kept.
"""
from __future__ import annotations

import socket
import sys
from array import array
from functools import partial

AFI_V4 = 1
AFI_V6 = 2
BITS = {AFI_V4: 32, AFI_V6: 128}
FAMILY_AFI = {4: AFI_V4, 6: AFI_V6}
AFI_FAMILY = {AFI_V4: 4, AFI_V6: 6}

_from_bytes = int.from_bytes
_pton = socket.inet_pton
_ntop = socket.inet_ntop
_AF4 = socket.AF_INET
_AF6 = socket.AF_INET6


def parse_ip(text: str) -> tuple[int, int]:
    """'192.0.2.1' -> (1, int); '2001:db8::1' -> (2, int). ValueError if not an address."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not an IP address")
    try:
        if ":" in text:
            return AFI_V6, _from_bytes(_pton(_AF6, text), "big")
        return AFI_V4, _from_bytes(_pton(_AF4, text), "big")
    except (OSError, ValueError):  # ValueError: an embedded NUL
        raise ValueError(f"{text!r} is not an IP address") from None


def format_ip(afi: int, value: int) -> str:
    if afi == AFI_V4:
        return _ntop(_AF4, value.to_bytes(4, "big"))
    return _ntop(_AF6, value.to_bytes(16, "big"))


def canonical_ip(text: str) -> str:
    return format_ip(*parse_ip(text))


def parse_cidr(text: str) -> tuple[int, int, int]:
    """'192.0.2.0/24' -> (afi, network, length). Host bits must be clear."""
    addr, sep, plen = text.partition("/")
    afi, value = parse_ip(addr.strip())
    bits = BITS[afi]
    if not sep:
        return afi, value, bits
    if not plen.strip().isdigit() or not 0 <= int(plen) <= bits:
        raise ValueError(f"{text!r}: prefix length must be 0..{bits}")
    length = int(plen)
    host = (1 << (bits - length)) - 1
    if value & host:
        raise ValueError(f"{text!r} has host bits set (network is {format_ip(afi, value & ~host)}/{length})")
    return afi, value, length


def parse_pool_entry(text: str) -> tuple[int, int, int]:
    """A pool address entry: CIDR or 'first-last' range -> (afi, first, last)."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a CIDR or address range")
    text = text.strip()
    if "-" in text:
        a, _, b = text.partition("-")
        afi_a, first = parse_ip(a.strip())
        afi_b, last = parse_ip(b.strip())
        if afi_a != afi_b:
            raise ValueError(f"{text!r}: range mixes IPv4 and IPv6")
        if last < first:
            raise ValueError(f"{text!r}: range end is before its start")
        return afi_a, first, last
    afi, net, length = parse_cidr(text)
    return afi, net, net | ((1 << (BITS[afi] - length)) - 1)


def range_to_cidrs(afi: int, first: int, last: int) -> list[tuple[int, int, int]]:
    """Smallest list of CIDR blocks (afi, network, length) covering first..last."""
    bits = BITS[afi]
    out = []
    while first <= last:
        # largest block aligned at `first` that fits
        size = (first & -first).bit_length() - 1 if first else bits
        while size > 0 and first + (1 << size) - 1 > last:
            size -= 1
        out.append((afi, first, bits - size))
        first += 1 << size
    return out


def format_prefix(afi: int, value: int, length: int) -> str:
    return f"{format_ip(afi, value)}/{length}"


_pton4 = partial(socket.inet_pton, socket.AF_INET)


def parse_ips(texts: list[str]) -> tuple[list[int], list[int]]:
    """Many addresses at once -> (afis, values); ValueError on the first that is not an address.

    All-IPv4 lists (the common case) are converted in C: one inet_pton per
    text through map(), the packed bytes joined and read as big-endian 32-bit
    words by array."""
    if texts:
        try:
            packed = b"".join(map(_pton4, texts))
        except (OSError, TypeError):
            pass
        else:
            words = array("I")
            words.frombytes(packed)
            if sys.byteorder == "little":
                words.byteswap()
            return [AFI_V4] * len(texts), words.tolist()
    afis: list[int] = []
    values: list[int] = []
    for t in texts:
        afi, v = parse_ip(t)
        afis.append(afi)
        values.append(v)
    return afis, values
