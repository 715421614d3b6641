"""The OPEN a session sends and the checks on the OPEN it receives.

Decisions documented here:

* 2-octet peers are accepted: the 4-octet AS capability is always announced
  but not required.  A peer configured with an ASN above 65535 that does not
  announce it cannot prove its AS and gets Bad Peer AS (2/2).
* The one required capability is a common address family: when the peer's
  Multiprotocol capabilities share none with ours, the OPEN is refused with
  Unsupported Capability (2/7) whose data is our Multiprotocol capabilities
  (RFC 5492 §3).
* With ``dynamicASN`` (MetalLB's BGPPeer) the peer's AS is not configured:
  ``internal`` accepts only our own AS, ``external`` any other; the wrong kind
  is Bad Peer AS (2/2), like a wrong fixed ``peerASN``.  The AS accepted is
  the session's ``Negotiated.peer_asn``.
* Hold times of 1 and 2 seconds are refused with Unacceptable Hold Time (2/6).
* BGP Identifier 0 is refused (2/3); so is our own identifier from an iBGP
  peer.  eBGP peers may share our identifier (RFC 6286).
"""
from __future__ import annotations

from ..wire.capabilities import (Capability, EnhancedRouteRefresh, ExtendedMessage, ExtendedNextHop,
                                 FourOctetAS, GracefulRestart, Multiprotocol, Negotiated, RouteRefresh)
from ..wire.constants import AFI, AS_TRANS, BGP_VERSION, SAFI, OpenSubcode
from ..wire.errors import OpenError
from ..wire.messages import Open
from .settings import SessionSettings
from .timers import keepalive_interval, negotiated_hold

# RFC 4724 forwarding-state flag in the per-family byte
GR_FORWARDING = 0x80
# RFC 4724 Restart State flag in the capability's 4-bit flags field
GR_RESTART_STATE = 0x8
GR_RESTART_TIME_MASK = 0xFFF  # the restart time is 12 bits


def local_capabilities(s: SessionSettings, restart_state: bool = False) -> tuple[Capability, ...]:
    caps: list[Capability] = [Multiprotocol(afi, safi) for afi, safi in s.families]
    if s.route_refresh:
        caps.append(RouteRefresh())
        if s.enhanced_route_refresh:
            caps.append(EnhancedRouteRefresh())
    if s.extended_message:
        caps.append(ExtendedMessage())
    if s.extended_next_hop:
        caps.append(ExtendedNextHop(((AFI.IPV4, SAFI.UNICAST, AFI.IPV6),)))
    if s.graceful_restart:
        flags = GR_RESTART_STATE if restart_state else 0
        caps.append(GracefulRestart(flags, s.restart_time & GR_RESTART_TIME_MASK,
                                    tuple((a, f, GR_FORWARDING) for a, f in s.families)))
    caps.append(FourOctetAS(s.local_asn))
    return tuple(caps)


def open_message(s: SessionSettings, restart_state: bool = False) -> Open:
    return Open.build(s.local_asn, s.hold_time, s.router_id, local_capabilities(s, restart_state))


def check_open(s: SessionSettings, msg: Open, restart_state: bool = False) -> Negotiated:
    """Validate a received OPEN (RFC 4271 §6.2); return the negotiated context.

    ``restart_state``: the R bit our own OPEN carried (kept in the context's
    local capabilities, which ``speakerctl show neighbor`` shows).

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
    if not s.accepts_asn(asn):
        if s.dynamic_asn is not None:
            why = (f"peer is AS {asn}, dynamicASN {s.dynamic_asn} needs "
                   f"{'our' if s.ibgp else 'an AS other than our'} AS {s.local_asn}")
        else:
            why = f"peer is AS {asn}, configured AS {s.peer_asn}"
        raise OpenError(subcode=OpenSubcode.BAD_PEER_AS, reason=why)
    if msg.bgp_id == 0 or (s.ibgp and msg.bgp_id == s.router_id):
        raise OpenError(subcode=OpenSubcode.BAD_BGP_IDENTIFIER,
                        reason=f"BGP identifier {msg.bgp_id:#010x}")
    if msg.hold_time in (1, 2):
        raise OpenError(subcode=OpenSubcode.UNACCEPTABLE_HOLD_TIME, reason=f"hold time {msg.hold_time}")
    local = local_capabilities(s, restart_state)
    hold = negotiated_hold(s.hold_time, msg.hold_time)
    neg = Negotiated.compute(local, msg.capabilities, hold_time=hold,
                             keepalive_time=int(keepalive_interval(hold, s.keepalive_time)),
                             peer_asn=asn, peer_id=msg.bgp_id)
    if not neg.families:
        ours = b"".join(c.encode() for c in local if isinstance(c, Multiprotocol))
        raise OpenError(subcode=OpenSubcode.UNSUPPORTED_CAPABILITY, data=ours,
                        reason="no address family in common")
    return neg
