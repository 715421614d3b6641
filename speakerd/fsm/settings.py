"""What one BGP session is configured with: the one settings type.

:class:`SessionSettings` is built once per peer from the validated
configuration (:meth:`SessionSettings.from_peer`) and read by every layer
that runs the session: the session machine (ASNs, timers, families, the
OPEN it sends, see :mod:`.open`), the collision rule (identifiers) and the
transport (address, port, MD5 password, VRF, TTL security).  Nothing copies
it into a second settings type.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from ..wire.capabilities import IPV4_UNICAST, IPV6_UNICAST, Family
from ..wire.constants import BGP_PORT

# Received prefixes per family before the session is ended with Cease 6/1
# (RFC 4486).  Generous: a full IPv4 Internet table (about 1M routes) fits
# twice; a speaker for service IPs normally receives a handful.
DEFAULT_MAX_PREFIXES = 2_000_000


# Peer.families (4, 6) -> the multiprotocol family offered in the OPEN
_FAMILY_OF = {4: IPV4_UNICAST, 6: IPV6_UNICAST}

# BGPPeer spec.dynamicASN: the peer's AS is learned from its OPEN, of this kind
DYNAMIC_INTERNAL = "internal"  # must equal our local AS (iBGP)
DYNAMIC_EXTERNAL = "external"  # must differ from our local AS (eBGP)


@dataclass(frozen=True, slots=True)
class SessionSettings:
    local_asn: int
    peer_asn: int  # 0 with dynamic_asn: learned from the OPEN (Negotiated.peer_asn)
    router_id: int
    name: str = ""
    peer_address: str = ""
    peer_port: int = BGP_PORT
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
    max_prefixes: int | None = DEFAULT_MAX_PREFIXES  # per family; None: no limit
    dynamic_asn: str | None = None  # DYNAMIC_INTERNAL | DYNAMIC_EXTERNAL; None: peer_asn is fixed
    # BGP unnumbered: peer with the router's IPv6 link-local address on this interface
    # (peer_address is then found by the transport), IPv4 routes with an IPv6 next hop
    interface: str | None = None
    extended_next_hop: bool = False  # announce RFC 8950 for IPv4 unicast with IPv6 next hops
    # transport
    source_address: str | None = None
    password: str | None = field(default=None, repr=False)
    vrf: str | None = None
    ebgp_multihop: bool = False
    gtsm: bool = False
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    @property
    def ibgp(self) -> bool:
        """iBGP or eBGP is known before the OPEN: a dynamic peer's kind fixes it."""
        if self.dynamic_asn is not None:
            return self.dynamic_asn == DYNAMIC_INTERNAL
        return self.local_asn == self.peer_asn

    def accepts_asn(self, asn: int) -> bool:
        """Whether a peer announcing ``asn`` in its OPEN is the configured peer."""
        if self.dynamic_asn == DYNAMIC_INTERNAL:
            return asn == self.local_asn
        if self.dynamic_asn == DYNAMIC_EXTERNAL:
            return asn != self.local_asn
        return asn == self.peer_asn

    @classmethod
    def from_peer(cls, peer, router_id: int, restarting: bool = False) -> "SessionSettings":
        """From a validated ``speakerd.config.model.Peer`` (MetalLB's BGPPeer).

        ``restarting``: the process just started, so the first OPEN carries the
        RFC 4724 Restart State bit (only sent when graceful restart is on).
        """
        return cls(
            name=peer.name, peer_address=peer.peer_address, peer_port=peer.peer_port,
            # spec.localASN replaces myASN toward this peer (OPEN, AS_PATH): FRR's
            # "local-as N no-prepend replace-as" as MetalLB configures it
            local_asn=peer.session_asn, peer_asn=peer.peer_asn, router_id=router_id,
            hold_time=peer.hold_time,
            keepalive_time=peer.keepalive_time if peer.hold_time else None,
            connect_retry=float(peer.connect_retry), source_address=peer.source_address,
            password=peer.password, vrf=peer.vrf, ebgp_multihop=peer.ebgp_multihop,
            graceful_restart=peer.graceful_restart,
            restart_state=restarting and peer.graceful_restart,
            dynamic_asn=peer.dynamic_asn,
            interface=peer.interface,
            # no IPv4 next hop on a link-local session: IPv4 routes over it need RFC 8950
            extended_next_hop=4 in peer.families and (peer.interface is not None or "%" in peer.peer_address),
            max_prefixes=peer.max_prefixes or DEFAULT_MAX_PREFIXES,
            # only the peer address's family unless dualStackAddressFamily (or unnumbered): MetalLB v0.15+
            families=tuple(_FAMILY_OF[f] for f in peer.families))
