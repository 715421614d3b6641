"""OPEN capabilities (RFC 5492) and their negotiation.

Each capability is a small frozen dataclass with ``encode_value()`` and a
``decode_value(data)`` classmethod; :data:`CAPABILITY_TYPES` maps a code to its
class.  Unknown capabilities are kept as :class:`UnknownCapability` with their
raw bytes.

:class:`Negotiated` is what the rest of the codec takes as context: it keeps
what we announced, what the peer sent and what is in effect apart (the way
OpenBGPD's ``capa_neg_calc`` does).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from .constants import AFI, SAFI, CapabilityCode, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, OpenSubcode
from .errors import OpenError

Family = tuple[int, int]  # (afi, safi)
IPV4_UNICAST: Family = (AFI.IPV4, SAFI.UNICAST)
IPV6_UNICAST: Family = (AFI.IPV6, SAFI.UNICAST)


def _malformed(code: int, why: str) -> OpenError:
    # RFC 5492 gives no subcode for a malformed capability value; like FRR and
    # BIRD we answer OPEN Message Error / Unspecific, with the capability as data.
    return OpenError(subcode=OpenSubcode.UNSPECIFIC, reason=f"malformed capability {code}: {why}")


@dataclass(slots=True, frozen=True)
class Capability:
    code: ClassVar[int] = -1

    def encode_value(self) -> bytes:
        return b""

    @classmethod
    def decode_value(cls, data: bytes) -> "Capability":
        if data:
            raise _malformed(cls.code, f"expected empty value, got {len(data)} bytes")
        return cls()

    def encode(self) -> bytes:
        value = self.encode_value()
        if len(value) > 255:
            raise ValueError(f"capability {self.code} value too long")
        return bytes((self.code, len(value))) + value


@dataclass(slots=True, frozen=True)
class Multiprotocol(Capability):
    code: ClassVar[int] = CapabilityCode.MULTIPROTOCOL
    afi: int = AFI.IPV4
    safi: int = SAFI.UNICAST

    def encode_value(self) -> bytes:
        return struct.pack("!HBB", self.afi, 0, self.safi)

    @classmethod
    def decode_value(cls, data: bytes) -> "Multiprotocol":
        if len(data) != 4:
            raise _malformed(cls.code, f"length {len(data)} != 4")
        afi, _, safi = struct.unpack("!HBB", data)
        return cls(afi, safi)

    @property
    def family(self) -> Family:
        return (self.afi, self.safi)


@dataclass(slots=True, frozen=True)
class RouteRefresh(Capability):
    code: ClassVar[int] = CapabilityCode.ROUTE_REFRESH


@dataclass(slots=True, frozen=True)
class RouteRefreshCisco(Capability):
    code: ClassVar[int] = CapabilityCode.ROUTE_REFRESH_CISCO


@dataclass(slots=True, frozen=True)
class EnhancedRouteRefresh(Capability):
    code: ClassVar[int] = CapabilityCode.ENHANCED_ROUTE_REFRESH


@dataclass(slots=True, frozen=True)
class ExtendedMessage(Capability):
    code: ClassVar[int] = CapabilityCode.EXTENDED_MESSAGE


@dataclass(slots=True, frozen=True)
class FourOctetAS(Capability):
    code: ClassVar[int] = CapabilityCode.FOUR_OCTET_AS
    asn: int = 0

    def encode_value(self) -> bytes:
        return struct.pack("!I", self.asn)

    @classmethod
    def decode_value(cls, data: bytes) -> "FourOctetAS":
        if len(data) != 4:
            raise _malformed(cls.code, f"length {len(data)} != 4")
        return cls(struct.unpack("!I", data)[0])


@dataclass(slots=True, frozen=True)
class GracefulRestart(Capability):
    """RFC 4724.  ``families`` holds (afi, safi, flags); flag 0x80 = forwarding state preserved."""
    code: ClassVar[int] = CapabilityCode.GRACEFUL_RESTART
    restart_flags: int = 0  # 4 bits: 0x8 = R (restarting), 0x4 = N (notification, RFC 8538)
    restart_time: int = 120  # 12 bits, seconds
    families: tuple[tuple[int, int, int], ...] = ()

    def encode_value(self) -> bytes:
        head = struct.pack("!H", ((self.restart_flags & 0xF) << 12) | (self.restart_time & 0xFFF))
        return head + b"".join(struct.pack("!HBB", a, s, f) for a, s, f in self.families)

    @classmethod
    def decode_value(cls, data: bytes) -> "GracefulRestart":
        if len(data) < 2 or (len(data) - 2) % 4:
            raise _malformed(cls.code, f"length {len(data)}")
        (word,) = struct.unpack_from("!H", data)
        fams = tuple(struct.unpack_from("!HBB", data, off) for off in range(2, len(data), 4))
        return cls(word >> 12, word & 0xFFF, fams)

    @property
    def restarting(self) -> bool:
        return bool(self.restart_flags & 0x8)


@dataclass(slots=True, frozen=True)
class AddPath(Capability):
    """RFC 7911: entries of (afi, safi, send_receive) with 1=receive, 2=send, 3=both."""
    code: ClassVar[int] = CapabilityCode.ADD_PATH
    entries: tuple[tuple[int, int, int], ...] = ()

    def encode_value(self) -> bytes:
        return b"".join(struct.pack("!HBB", a, s, sr) for a, s, sr in self.entries)

    @classmethod
    def decode_value(cls, data: bytes) -> "AddPath":
        if len(data) % 4:
            raise _malformed(cls.code, f"length {len(data)} not a multiple of 4")
        entries = tuple(struct.unpack_from("!HBB", data, off) for off in range(0, len(data), 4))
        for _, _, sr in entries:
            if sr not in (1, 2, 3):
                raise _malformed(cls.code, f"send/receive value {sr}")
        return cls(entries)


@dataclass(slots=True, frozen=True)
class ExtendedNextHop(Capability):
    """RFC 8950: NLRI of (afi, safi) may carry a next hop of family nh_afi (IPv4 routes
    with an IPv6 next hop: (1, 1, 2)).  Each entry is AFI (2), SAFI (2), next-hop AFI (2)."""
    code: ClassVar[int] = CapabilityCode.EXTENDED_NEXT_HOP
    entries: tuple[tuple[int, int, int], ...] = ()

    def encode_value(self) -> bytes:
        return b"".join(struct.pack("!HHH", a, s, nh) for a, s, nh in self.entries)

    @classmethod
    def decode_value(cls, data: bytes) -> "ExtendedNextHop":
        if len(data) % 6:
            raise _malformed(cls.code, f"length {len(data)} not a multiple of 6")
        return cls(tuple(struct.unpack_from("!HHH", data, off) for off in range(0, len(data), 6)))


@dataclass(slots=True, frozen=True)
class FQDN(Capability):
    """Hostname capability (draft-walton-bgp-hostname-capability), sent by FRR."""
    code: ClassVar[int] = CapabilityCode.FQDN
    hostname: str = ""
    domain: str = ""

    def encode_value(self) -> bytes:
        h = self.hostname.encode()[:255]
        d = self.domain.encode()[:255]
        return bytes((len(h),)) + h + bytes((len(d),)) + d

    @classmethod
    def decode_value(cls, data: bytes) -> "FQDN":
        if not data:
            raise _malformed(cls.code, "empty")
        hl = data[0]
        if 1 + hl > len(data):
            raise _malformed(cls.code, "hostname overruns")
        host = data[1:1 + hl]
        rest = data[1 + hl:]
        dom = b""
        if rest:
            dl = rest[0]
            if 1 + dl > len(rest):
                raise _malformed(cls.code, "domain overruns")
            dom = rest[1:1 + dl]
        return cls(host.decode("utf-8", "replace"), dom.decode("utf-8", "replace"))


@dataclass(slots=True, frozen=True)
class UnknownCapability(Capability):
    """A capability this codec does not interpret; kept byte for byte."""
    cap_code: int = 0
    value: bytes = b""

    def encode(self) -> bytes:
        return bytes((self.cap_code, len(self.value))) + self.value

    @property
    def code(self) -> int:  # type: ignore[override]
        return self.cap_code


CAPABILITY_TYPES: dict[int, type[Capability]] = {
    cls.code: cls
    for cls in (Multiprotocol, RouteRefresh, RouteRefreshCisco, EnhancedRouteRefresh,
                ExtendedMessage, FourOctetAS, GracefulRestart, AddPath, FQDN, ExtendedNextHop)
}


def decode_capabilities(data: bytes | memoryview) -> list[Capability]:
    """Decode the value of one Capabilities optional parameter (a run of TLVs)."""
    data = bytes(data)
    caps: list[Capability] = []
    off = 0
    while off < len(data):
        if off + 2 > len(data):
            raise _malformed(-1, "truncated capability header")
        code, length = data[off], data[off + 1]
        value = data[off + 2: off + 2 + length]
        if len(value) != length:
            raise _malformed(code, "value overruns the parameter")
        cls = CAPABILITY_TYPES.get(code)
        caps.append(cls.decode_value(value) if cls else UnknownCapability(code, value))
        off += 2 + length
    return caps


@dataclass(slots=True, frozen=True)
class Negotiated:
    """The capabilities in effect on one session, and both sides' raw offers.

    This is the context the UPDATE codec takes: AS number width, maximum
    message size, families, add-path directions.
    """
    local: tuple[Capability, ...] = ()
    remote: tuple[Capability, ...] = ()
    four_octet_as: bool = False
    families: frozenset[Family] = frozenset({IPV4_UNICAST})
    route_refresh: bool = False
    enhanced_route_refresh: bool = False
    extended_message: bool = False
    graceful_restart: GracefulRestart | None = None  # the peer's, when both sides announced it
    add_path_receive: frozenset[Family] = frozenset()  # we receive path ids for these
    add_path_send: frozenset[Family] = frozenset()
    # RFC 8950: families whose routes may be sent with an IPv6 next hop (both sides announced it)
    extended_next_hop: frozenset[Family] = frozenset()
    hold_time: int = 0
    keepalive_time: int = 0
    peer_asn: int = 0
    peer_id: int = 0
    peer_hostname: str = ""

    @property
    def max_message_len(self) -> int:
        return MAX_EXTENDED_MESSAGE_LEN if self.extended_message else MAX_MESSAGE_LEN

    @classmethod
    def compute(cls, local: tuple[Capability, ...] | list[Capability],
                remote: tuple[Capability, ...] | list[Capability], **extra) -> "Negotiated":
        local, remote = tuple(local), tuple(remote)

        def has(caps, kind):
            return any(isinstance(c, kind) for c in caps)

        lmp = {c.family for c in local if isinstance(c, Multiprotocol)}
        rmp = {c.family for c in remote if isinstance(c, Multiprotocol)}
        # RFC 4760: a side that sends no MP capability is speaking IPv4 unicast only.
        lmp = lmp or {IPV4_UNICAST}
        rmp = rmp or {IPV4_UNICAST}
        gr = next((c for c in remote if isinstance(c, GracefulRestart)), None)
        if not has(local, GracefulRestart):
            gr = None
        lap = {(a, s): sr for c in local if isinstance(c, AddPath) for a, s, sr in c.entries}
        rap = {(a, s): sr for c in remote if isinstance(c, AddPath) for a, s, sr in c.entries}
        ap_rx = frozenset(f for f, sr in lap.items() if sr & 1 and rap.get(f, 0) & 2)
        ap_tx = frozenset(f for f, sr in lap.items() if sr & 2 and rap.get(f, 0) & 1)
        fqdn = next((c for c in remote if isinstance(c, FQDN)), None)
        lnh = {e for c in local if isinstance(c, ExtendedNextHop) for e in c.entries}
        rnh = {e for c in remote if isinstance(c, ExtendedNextHop) for e in c.entries}
        enhe = frozenset((a, s) for a, s, nh in lnh & rnh if nh == AFI.IPV6)
        return cls(
            local=local, remote=remote,
            four_octet_as=has(local, FourOctetAS) and has(remote, FourOctetAS),
            families=frozenset(lmp & rmp),
            route_refresh=has(local, (RouteRefresh, RouteRefreshCisco)) and has(remote, (RouteRefresh, RouteRefreshCisco)),
            enhanced_route_refresh=has(local, EnhancedRouteRefresh) and has(remote, EnhancedRouteRefresh),
            extended_message=has(local, ExtendedMessage) and has(remote, ExtendedMessage),
            graceful_restart=gr,
            add_path_receive=ap_rx, add_path_send=ap_tx, extended_next_hop=enhe,
            peer_hostname=fqdn.hostname if fqdn else "",
            **extra,
        )


# Context used before an OPEN has been exchanged, and by tools that decode
# captures without having seen the OPENs: 4-octet AS (every modern speaker),
# standard message size, IPv4+IPv6.
DEFAULT_CONTEXT = Negotiated(four_octet_as=True, families=frozenset({IPV4_UNICAST, IPV6_UNICAST}))
