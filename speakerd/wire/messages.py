"""BGP messages as frozen dataclasses, with their body codecs.

Each message class has ``encode_body(ctx)`` and a ``decode_body(body, ctx)``
classmethod; framing (the 19-byte header) lives in :mod:`.framing`, UPDATE
bodies in :mod:`.update`.  ``ctx`` is the :class:`~.capabilities.Negotiated`
state of the session.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar, Union

from .capabilities import Capability, FourOctetAS, Negotiated, decode_capabilities
from .constants import (AS_TRANS, BGP_VERSION, CeaseSubcode, ErrorCode, MessageType,
                        OpenSubcode, OptParamType, RouteRefreshSubcode, error_name)
from .errors import BGPError, OpenError, RouteRefreshError, bad_length


@dataclass(slots=True, frozen=True)
class Open:
    type: ClassVar[int] = MessageType.OPEN
    my_as: int  # the 2-octet field as on the wire (AS_TRANS for 4-octet ASNs)
    hold_time: int
    bgp_id: int
    capabilities: tuple[Capability, ...] = ()
    version: int = BGP_VERSION

    @classmethod
    def build(cls, asn: int, hold_time: int, bgp_id: int, capabilities=()) -> "Open":
        """An OPEN for ``asn``: AS_TRANS in My AS when it needs four octets.

        The 4-octet AS capability is added when missing (RFC 6793 requires it
        whenever AS_TRANS is used; speakerd always announces it).
        """
        caps = tuple(capabilities)
        if not any(isinstance(c, FourOctetAS) for c in caps):
            caps = caps + (FourOctetAS(asn),)
        my_as = asn if asn <= 0xFFFF else AS_TRANS
        return cls(my_as, hold_time, bgp_id, caps)

    @property
    def asn(self) -> int:
        """The speaker's real ASN: from the 4-octet AS capability when present."""
        for c in self.capabilities:
            if isinstance(c, FourOctetAS):
                return c.asn
        return self.my_as

    def encode_body(self, ctx: Negotiated | None = None) -> bytes:
        caps = b"".join(c.encode() for c in self.capabilities)
        params = b""
        if caps:
            if len(caps) > 255:
                # RFC 9072 extended optional parameters length
                params = struct.pack("!BH", OptParamType.CAPABILITIES, len(caps)) + caps
                return struct.pack("!BHHIBBH", self.version, self.my_as, self.hold_time, self.bgp_id,
                                   255, 255, len(params)) + params
            params = bytes((OptParamType.CAPABILITIES, len(caps))) + caps
        return struct.pack("!BHHIB", self.version, self.my_as, self.hold_time, self.bgp_id,
                           len(params)) + params

    @classmethod
    def decode_body(cls, body: bytes | memoryview, ctx: Negotiated | None = None) -> "Open":
        body = bytes(body)
        if len(body) < 10:
            raise bad_length(19 + len(body))
        version, my_as, hold, bgp_id, plen = struct.unpack_from("!BHHIB", body)
        if version != BGP_VERSION:
            # RFC 4271 §6.2: data = the largest locally supported version number.
            raise OpenError(subcode=OpenSubcode.UNSUPPORTED_VERSION_NUMBER,
                            data=struct.pack("!H", BGP_VERSION), reason=f"version {version}")
        off = 10
        extended = False
        if plen == 255 and len(body) >= 13 and body[10] == 255:
            # RFC 9072: non-ext type 255 marks the extended parameters length.
            extended = True
            (plen,) = struct.unpack_from("!H", body, 11)
            off = 13
        if off + plen != len(body):
            raise OpenError(subcode=OpenSubcode.UNSPECIFIC,
                            reason=f"optional parameters length {plen} does not match message")
        caps: list[Capability] = []
        end = off + plen
        while off < end:
            hdr = 3 if extended else 2
            if off + hdr > end:
                raise OpenError(subcode=OpenSubcode.UNSPECIFIC, reason="truncated optional parameter")
            ptype = body[off]
            length = struct.unpack_from("!H", body, off + 1)[0] if extended else body[off + 1]
            value = body[off + hdr: off + hdr + length]
            if len(value) != length:
                raise OpenError(subcode=OpenSubcode.UNSPECIFIC, reason="optional parameter overruns")
            if ptype != OptParamType.CAPABILITIES:
                raise OpenError(subcode=OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
                                reason=f"optional parameter type {ptype}")
            caps.extend(decode_capabilities(value))
            off += hdr + length
        return cls(my_as, hold, bgp_id, tuple(caps), version)


@dataclass(slots=True, frozen=True)
class Keepalive:
    type: ClassVar[int] = MessageType.KEEPALIVE

    def encode_body(self, ctx: Negotiated | None = None) -> bytes:
        return b""

    @classmethod
    def decode_body(cls, body, ctx=None) -> "Keepalive":
        if len(body):
            raise bad_length(19 + len(body))
        return KEEPALIVE


KEEPALIVE = Keepalive()


@dataclass(slots=True, frozen=True)
class Notification:
    type: ClassVar[int] = MessageType.NOTIFICATION
    code: int
    subcode: int = 0
    data: bytes = b""

    @classmethod
    def cease(cls, subcode: int, message: str = "") -> "Notification":
        """A Cease, with an RFC 9003 shutdown communication for shutdown/reset."""
        data = b""
        if message and subcode in (CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET):
            raw = message.encode("utf-8")[:255]
            # never cut a UTF-8 sequence in half
            raw = raw.decode("utf-8", "ignore").encode("utf-8")
            data = bytes((len(raw),)) + raw
        return cls(ErrorCode.CEASE, subcode, data)

    @property
    def shutdown_message(self) -> str | None:
        """RFC 9003 shutdown communication, if this NOTIFICATION carries one."""
        if self.code != ErrorCode.CEASE or self.subcode not in (
                CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET):
            return None
        if not self.data:
            return None
        n = self.data[0]
        if n + 1 > len(self.data):
            return None
        return self.data[1:1 + n].decode("utf-8", "replace")

    @property
    def name(self) -> str:
        return error_name(self.code, self.subcode)

    def error(self) -> BGPError:
        return BGPError(self.code, self.subcode, self.data)

    def encode_body(self, ctx: Negotiated | None = None) -> bytes:
        return bytes((self.code, self.subcode)) + self.data

    @classmethod
    def decode_body(cls, body, ctx=None) -> "Notification":
        body = bytes(body)
        if len(body) < 2:
            raise bad_length(19 + len(body))
        return cls(body[0], body[1], body[2:])


@dataclass(slots=True, frozen=True)
class RouteRefresh:
    type: ClassVar[int] = MessageType.ROUTE_REFRESH
    afi: int
    safi: int
    subtype: int = 0  # RFC 7313: 0 normal, 1 BoRR, 2 EoRR

    def encode_body(self, ctx: Negotiated | None = None) -> bytes:
        return struct.pack("!HBB", self.afi, self.subtype, self.safi)

    @classmethod
    def decode_body(cls, body, ctx=None) -> "RouteRefresh":
        body = bytes(body)
        if len(body) != 4:
            # RFC 7313 §5: Invalid Message Length, data = the complete message
            raise RouteRefreshError(subcode=RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
                                    data=b"\xff" * 16 + struct.pack("!HB", 19 + len(body), MessageType.ROUTE_REFRESH) + body,
                                    reason=f"ROUTE-REFRESH body of {len(body)} bytes")
        afi, subtype, safi = struct.unpack("!HBB", body)
        return cls(afi, safi, subtype)


# Update lives in .update (it is the hot path); re-exported here for typing.
from .update import MpReach, MpUnreach, PathAttributes, Update  # noqa: E402

Message = Union[Open, Update, Notification, Keepalive, RouteRefresh]

MESSAGE_TYPES: dict[int, type] = {
    MessageType.OPEN: Open,
    MessageType.UPDATE: Update,
    MessageType.NOTIFICATION: Notification,
    MessageType.KEEPALIVE: Keepalive,
    MessageType.ROUTE_REFRESH: RouteRefresh,
}

__all__ = ["Open", "Update", "Notification", "Keepalive", "KEEPALIVE", "RouteRefresh",
           "PathAttributes", "MpReach", "MpUnreach", "Message", "MESSAGE_TYPES"]
