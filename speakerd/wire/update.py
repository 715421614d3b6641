"""UPDATE messages: the hot path.

Prefixes are ints, never ``ipaddress`` objects: a prefix *key* is
``(address << 8) | prefix_length`` where ``address`` is the full-width
network address (32 bits for IPv4, 128 for IPv6) with host bits cleared.
See :mod:`.nlri` for packing and unpacking.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .constants import MessageType


@dataclass(slots=True, frozen=True)
class PathAttributes:
    """One attribute set, shared (interned) by every prefix that carries it.

    MP_REACH_NLRI / MP_UNREACH_NLRI are not here: they are NLRI, and live on
    :class:`Update`.
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


@dataclass(slots=True, frozen=True)
class MpReach:
    afi: int
    safi: int
    next_hop: bytes  # raw: 16 bytes (global) or 32 (global + link-local) for IPv6
    nlri: list[int] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class MpUnreach:
    afi: int
    safi: int
    withdrawn: list[int] = field(default_factory=list)


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

    def encode_body(self, ctx=None) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode_body(cls, body, ctx=None) -> "Update":
        raise NotImplementedError
