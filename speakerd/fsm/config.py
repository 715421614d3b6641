"""What one session machine is configured with, and the OPEN it sends/accepts.

Decisions documented here:

* 2-octet peers are accepted: the 4-octet AS capability is always announced
  but not required.  A peer configured with an ASN above 65535 that does not
  announce it cannot prove its AS and gets Bad Peer AS (2/2).
* The one required capability is a common address family: when the peer's
  Multiprotocol capabilities share none with ours, the OPEN is refused with
  Unsupported Capability (2/7) whose data is our Multiprotocol capabilities
  (RFC 5492 §3).
* Hold times of 1 and 2 seconds are refused with Unacceptable Hold Time (2/6).
* BGP Identifier 0 is refused (2/3); so is our own identifier from an iBGP
  peer.  eBGP peers may share our identifier (RFC 6286).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from ..wire.capabilities import (IPV4_UNICAST, IPV6_UNICAST, Capability, EnhancedRouteRefresh,
                                 ExtendedMessage, Family, FourOctetAS, GracefulRestart,
                                 Multiprotocol, Negotiated, RouteRefresh)
from ..wire.constants import AS_TRANS, BGP_VERSION, OpenSubcode
from ..wire.errors import OpenError
from ..wire.messages import Open
from .timers import keepalive_interval, negotiated_hold

# RFC 4724 forwarding-state flag in the per-family byte
GR_FORWARDING = 0x80
# RFC 4724 Restart State flag in the capability's 4-bit flags field
GR_RESTART_STATE = 0x8


@dataclass(frozen=True, slots=True)
class SessionConfig:
    local_asn: int
    peer_asn: int
    router_id: int
    hold_time: int = 90
    keepalive_time: float | None = None
    connect_retry: float = 120.0  # ConnectRetry base of the backoff
    connect_retry_cap: float = 600.0
    passive: bool = False
    families: tuple[Family, ...] = (IPV4_UNICAST, IPV6_UNICAST)
    graceful_restart: bool = False
    restart_time: int = 120
    # RFC 4724 R bit: set in the OPENs of a freshly started process until the
    # session is first Established (like FRR during its startup period)
    restart_state: bool = False
    route_refresh: bool = True
    enhanced_route_refresh: bool = True
    extended_message: bool = True
    open_hold_time: float = 240.0  # RFC 4271 §8.2.2 "large value" in OpenSent
    send_hold_time: float | None = None  # None = RFC 9687 max(8 min, 2 x hold)
    next_hop4: str | None = None  # next hop for IPv4 routes (else the local address)
    next_hop6: str | None = None  # next hop for IPv6 routes (else the local address)
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    @property
    def ibgp(self) -> bool:
        return self.local_asn == self.peer_asn

    def capabilities(self) -> tuple[Capability, ...]:
        caps: list[Capability] = [Multiprotocol(afi, safi) for afi, safi in self.families]
        if self.route_refresh:
            caps.append(RouteRefresh())
            if self.enhanced_route_refresh:
                caps.append(EnhancedRouteRefresh())
        if self.extended_message:
            caps.append(ExtendedMessage())
        if self.graceful_restart:
            flags = GR_RESTART_STATE if self.restart_state else 0
            caps.append(GracefulRestart(flags, self.restart_time & 0xFFF,
                                        tuple((a, s, GR_FORWARDING) for a, s in self.families)))
        caps.append(FourOctetAS(self.local_asn))
        return tuple(caps)

    def open_message(self) -> Open:
        return Open.build(self.local_asn, self.hold_time, self.router_id, self.capabilities())


def check_open(cfg: SessionConfig, msg: Open) -> Negotiated:
    """Validate a received OPEN (RFC 4271 §6.2); return the negotiated context.

    Raises :class:`OpenError` carrying the exact NOTIFICATION to send.
    """
    if msg.version != BGP_VERSION:
        raise OpenError(subcode=OpenSubcode.UNSUPPORTED_VERSION_NUMBER,
                        data=BGP_VERSION.to_bytes(2, "big"), reason=f"version {msg.version}")
    has4 = any(isinstance(c, FourOctetAS) for c in msg.capabilities)
    asn = msg.asn
    if has4 and asn > 0xFFFF and msg.my_as != AS_TRANS:
        raise OpenError(subcode=OpenSubcode.BAD_PEER_AS,
                        reason=f"My AS {msg.my_as} should be AS_TRANS for AS {asn}")
    if asn != cfg.peer_asn:
        raise OpenError(subcode=OpenSubcode.BAD_PEER_AS,
                        reason=f"peer is AS {asn}, configured AS {cfg.peer_asn}")
    if msg.bgp_id == 0 or (cfg.ibgp and msg.bgp_id == cfg.router_id):
        raise OpenError(subcode=OpenSubcode.BAD_BGP_IDENTIFIER,
                        reason=f"BGP identifier {msg.bgp_id:#010x}")
    if msg.hold_time in (1, 2):
        raise OpenError(subcode=OpenSubcode.UNACCEPTABLE_HOLD_TIME, reason=f"hold time {msg.hold_time}")
    local = cfg.capabilities()
    hold = negotiated_hold(cfg.hold_time, msg.hold_time)
    neg = Negotiated.compute(local, msg.capabilities, hold_time=hold,
                              keepalive_time=int(keepalive_interval(hold, cfg.keepalive_time)), peer_asn=asn, peer_id=msg.bgp_id)
    if not neg.families:
        ours = b"".join(c.encode() for c in local if isinstance(c, Multiprotocol))
        raise OpenError(subcode=OpenSubcode.UNSUPPORTED_CAPABILITY, data=ours,
                        reason="no address family in common")
    return neg
