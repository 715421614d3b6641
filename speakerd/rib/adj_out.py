"""Adj-RIB-Out: the routes we want a peer to have, and what it was last sent.

The wanted routes are set as a whole (``dict[(afi, key)] -> RouteAttrs``,
what the planner produced for this peer); :meth:`AdjRibOut.diff` compares
them with what was last sent and returns packed UPDATEs (grouped by attribute
set) and withdrawals.  After a reconnect, :meth:`initial` sends everything
again followed by End-of-RIB for every negotiated family.

Per-session attributes (RFC 4271 §5.1):

* ORIGIN IGP; AS_PATH empty to iBGP, ``[local AS]`` to eBGP.
* LOCAL_PREF only to iBGP (``RouteAttrs.local_pref`` or 100); never to eBGP.
* NEXT_HOP: the configured next hop for the route's family if any, else the
  session's local address.  Across families: an IPv6 route over an IPv4
  session uses a global IPv6 address of the interface toward the peer (as
  FRR does; the transport finds it), and only when that interface has none
  the IPv4-mapped address ``::ffff:a.b.c.d``, which BIRD 2 treats as a
  withdraw (:func:`next_hop6_source` says which was used); an IPv4 route over
  an IPv6-only session is **not sent** unless an IPv4 next hop is configured
  or RFC 8950 extended next hop is negotiated (BGP unnumbered): then it goes
  in MP_REACH_NLRI with the IPv6 next hop.  Over a link-local session the
  IPv6 next hop is 32 bytes: the interface's global address (the link-local
  one when it has none, as FRR does) and the link-local address.
* Routes of a family the peer did not negotiate are not sent.
* EXTENDED_COMMUNITIES: the link-bandwidth community (draft-ietf-idr-link-bandwidth,
  :mod:`speakerd.policy.linkbw`) when the route has a ``weight``, with this session's
  local AS (AS_TRANS for a four-octet one).
* Graceful shutdown (RFC 8326, ``speakerctl drain``): while
  :attr:`AdjRibOut.graceful_shutdown` is set every route carries the
  GRACEFUL_SHUTDOWN community 65535:0 and, on iBGP, LOCAL_PREF 0, so the
  peers prefer any other path before the routes are withdrawn.
"""
from __future__ import annotations

import ipaddress
from operator import itemgetter

from ..policy.linkbw import endpoints_bandwidth
from ..policy.types import RouteAttrs
from ..wire.capabilities import Negotiated
from ..wire import builder
from ..wire.constants import AFI, SAFI, AsPathSegmentType, Origin, RouteRefreshSubtype
from ..wire.framing import encode
from ..wire.messages import RouteRefresh
from ..wire.update import PathAttributes

DEFAULT_LOCAL_PREF = 100
GRACEFUL_SHUTDOWN = 0xFFFF0000  # the well-known community 65535:0 (RFC 8326)
RouteKey = tuple[int, int]  # (afi, prefix key)


def _as_list(msgs) -> list[bytes]:
    if isinstance(msgs, (bytes, bytearray)):
        return [bytes(msgs)]
    return list(msgs)


# where the IPv6 next hop comes from (next_hop6_source)
NH6_CONFIGURED = "configured"
NH6_LOCAL = "local-address"  # the IPv6 session's own local address
NH6_INTERFACE = "interface"  # a global address of the interface toward the peer
NH6_MAPPED = "ipv4-mapped"  # ::ffff:a.b.c.d: no global IPv6 address on that interface
NH6_LINK_LOCAL = "link-local"  # a link-local session: global (or link-local) + link-local


def _local(local_address: str | None):
    local = ipaddress.ip_address(local_address) if local_address else None
    if isinstance(local, ipaddress.IPv6Address) and local.ipv4_mapped is not None:
        local = local.ipv4_mapped  # a dual-stack socket talking IPv4
    return local


def next_hop6_source(local_address: str | None, next_hop6: str | None,
                     interface_ipv6: str | None = None) -> str | None:
    """Which IPv6 next hop :func:`next_hops` picks (``NH6_*``), None when there is none."""
    local = _local(local_address)
    if next_hop6:
        return NH6_CONFIGURED
    if isinstance(local, ipaddress.IPv6Address):
        return NH6_LINK_LOCAL if local.is_link_local else NH6_LOCAL
    if isinstance(local, ipaddress.IPv4Address):
        return NH6_INTERFACE if interface_ipv6 else NH6_MAPPED
    return None


def next_hops(local_address: str | None, next_hop4: str | None,
              next_hop6: str | None, interface_ipv6: str | None = None) -> tuple[int | None, bytes | None]:
    """(IPv4 next hop as int or None, IPv6 next hop as 16 bytes or None).

    ``interface_ipv6``: a global IPv6 address of the interface toward the peer,
    the IPv6 next hop over an IPv4 session (else the IPv4-mapped address)."""
    nh4: int | None = None
    nh6: bytes | None = None
    local = _local(local_address)
    if next_hop4:
        nh4 = int(ipaddress.IPv4Address(next_hop4))
    elif isinstance(local, ipaddress.IPv4Address):
        nh4 = int(local)
    if next_hop6:
        nh6 = ipaddress.IPv6Address(next_hop6).packed
    elif isinstance(local, ipaddress.IPv6Address) and local.is_link_local:
        glob = ipaddress.IPv6Address(interface_ipv6).packed if interface_ipv6 else local.packed
        nh6 = glob + local.packed
    elif isinstance(local, ipaddress.IPv6Address):
        nh6 = local.packed
    elif isinstance(local, ipaddress.IPv4Address) and interface_ipv6:
        nh6 = ipaddress.IPv6Address(interface_ipv6).packed
    elif isinstance(local, ipaddress.IPv4Address):
        nh6 = ipaddress.IPv6Address("::ffff:" + str(local)).packed
    return nh4, nh6


_afi_of = itemgetter(0)
_key_of = itemgetter(1)


def _single_value(d: dict):
    """The one object every value of ``d`` is (by identity), else None."""
    if d and len(set(map(id, d.values()))) == 1:
        return next(iter(d.values()))
    return None


def _by_afi(route_keys) -> dict[int, list[int]]:
    """``(afi, key)`` route keys -> afi -> prefix keys, in their order (one family: all in C)."""
    afis = set(map(_afi_of, route_keys))
    if len(afis) == 1:
        return {afis.pop(): list(map(_key_of, route_keys))}
    out: dict[int, list[int]] = {afi: [] for afi in afis}
    for afi, key in route_keys:
        out[afi].append(key)
    return out


def _grouped(routes) -> dict[tuple[int, PathAttributes], list[int]]:
    """``((afi, key), attrs)`` pairs -> (afi, attrs) -> prefix keys, for :meth:`AdjRibOut._pack`.

    Attribute sets are interned (one object per set and family, see
    :meth:`AdjRibOut.path_attributes`), so routes are grouped by the object's
    identity: hashing a PathAttributes is a Python call over all its fields,
    which once per route would cost more than encoding the UPDATEs.  Equal
    sets that are distinct objects still end in one group.
    """
    by_object: dict[tuple[int, int], list[int]] = {}  # (afi, id(attrs)) -> prefix keys
    objects: dict[int, PathAttributes] = {}
    for (afi, key), pa in routes:
        gk = (afi, id(pa))
        keys = by_object.get(gk)
        if keys is None:
            keys = by_object[gk] = []
            objects[id(pa)] = pa
        keys.append(key)
    out: dict[tuple[int, PathAttributes], list[int]] = {}
    for (afi, i), keys in by_object.items():  # one entry per attribute object: few
        group = out.get((afi, objects[i]))
        if group is None:
            out[(afi, objects[i])] = keys
        else:
            group.extend(keys)
    return out


class AdjRibOut:
    __slots__ = ("local_asn", "ibgp", "next_hop4", "next_hop6", "wanted", "sent",
                 "graceful_shutdown", "extended_next_hop", "_nh4", "_nh6", "_attr_cache")

    def __init__(self, local_asn: int, ibgp: bool, next_hop4: str | None = None,
                 next_hop6: str | None = None) -> None:
        self.local_asn = local_asn
        self.ibgp = ibgp
        self.next_hop4 = next_hop4
        self.next_hop6 = next_hop6
        self.wanted: dict[RouteKey, RouteAttrs] = {}
        self.sent: dict[RouteKey, PathAttributes] = {}
        self.graceful_shutdown = False
        self.extended_next_hop = False  # RFC 8950 for IPv4 routes (set once the OPENs agree)
        self._nh4: int | None = None
        self._nh6: bytes | None = None
        self._attr_cache: dict[tuple[int, RouteAttrs], PathAttributes] = {}

    # -- inputs -----------------------------------------------------------
    def set_wanted(self, routes: dict[RouteKey, RouteAttrs]) -> None:
        self.wanted = dict(routes)

    def update_wanted(self, delta: dict[RouteKey, RouteAttrs | None]) -> None:
        """Apply a change of the wanted routes: ``attrs`` to (re)announce, None to withdraw."""
        wanted = self.wanted
        for rk, ra in delta.items():
            if ra is None:
                wanted.pop(rk, None)
            else:
                wanted[rk] = ra

    def connected(self, local_address: str | None, interface_ipv6: str | None = None) -> None:
        """A new connection: learn the local address (and the interface's global IPv6
        address, see :func:`next_hops`), forget what was sent."""
        self._nh4, self._nh6 = next_hops(local_address, self.next_hop4, self.next_hop6,
                                         interface_ipv6)
        self.extended_next_hop = False
        self._attr_cache.clear()
        self.sent = {}

    def reset(self) -> None:
        self.sent = {}

    def set_graceful_shutdown(self, on: bool) -> bool:
        """Mark every route with GRACEFUL_SHUTDOWN (and LOCAL_PREF 0 on iBGP), or stop.
        True if that changed anything; the next :meth:`diff` re-announces every route."""
        if on == self.graceful_shutdown:
            return False
        self.graceful_shutdown = on
        self._attr_cache.clear()
        return True

    # -- attribute translation ---------------------------------------------
    def path_attributes(self, afi: int, ra: RouteAttrs) -> PathAttributes | None:
        """This session's attributes for a route, or None when it cannot be sent."""
        ck = (afi, ra)
        pa = self._attr_cache.get(ck)
        if pa is not None:
            return pa
        if afi == AFI.IPV4 and self._nh4 is None and not (self.extended_next_hop and self._nh6):
            return None
        if afi == AFI.IPV6 and self._nh6 is None:
            return None
        local_pref = None
        if self.ibgp:
            local_pref = ra.local_pref if ra.local_pref is not None else DEFAULT_LOCAL_PREF
        communities = set(ra.communities)
        if self.graceful_shutdown:
            communities.add(GRACEFUL_SHUTDOWN)
            if self.ibgp:
                local_pref = 0
        pa = PathAttributes(
            origin=Origin.IGP,
            as_path=() if self.ibgp else ((AsPathSegmentType.AS_SEQUENCE, (self.local_asn,)),),
            next_hop=self._nh4 if afi == AFI.IPV4 else None,
            local_pref=local_pref,
            communities=tuple(sorted(communities)),
            large_communities=tuple(sorted(set(ra.large_communities))),
            extended_communities=() if ra.weight is None else (endpoints_bandwidth(self.local_asn, ra.weight),),
        )
        self._attr_cache[ck] = pa
        return pa

    def target(self, ctx: Negotiated) -> dict[RouteKey, PathAttributes]:
        """What the peer should have: route key -> this session's attributes."""
        return self._target(ctx)[0]

    def _target(self, ctx: Negotiated) -> tuple[dict[RouteKey, PathAttributes],
                                                 dict[tuple[int, PathAttributes], list[int]] | None,
                                                 tuple[int, PathAttributes] | None]:
        """(the target, its prefix keys grouped by (afi, attribute set), None for the groups
        and (afi, attribute set) instead when every route has one family and one set).

        The planner shares one RouteAttrs object among many routes: each
        (afi, object) is translated once and then looked up by identity, so no
        RouteAttrs is hashed (a Python call) per route; grouping in the same
        pass takes each of the planner's keys once (they lie all over the heap
        it parsed: every pass over them costs a cache miss per route)."""
        fams = {afi for afi, safi in ctx.families if safi == SAFI.UNICAST}
        wanted = self.wanted
        if wanted and len(set(map(id, wanted.values()))) == 1:
            afis = set(map(_afi_of, wanted))
            if len(afis) == 1:  # the common case: one set, one family; built in C
                afi = afis.pop()
                pa = self.path_attributes(afi, next(iter(wanted.values()))) if afi in fams else None
                return (dict.fromkeys(wanted, pa), None, (afi, pa)) if pa is not None else ({}, {}, None)
        out: dict[RouteKey, PathAttributes] = {}
        by_object: dict[tuple[int, int], tuple[PathAttributes | None, list[int]]] = {}  # (afi, id(RouteAttrs))
        for rk, ra in wanted.items():
            ck = (rk[0], id(ra))
            try:
                pa, keys = by_object[ck]
            except KeyError:
                pa = self.path_attributes(rk[0], ra) if rk[0] in fams else None
                pa, keys = by_object[ck] = (pa, [])
            if pa is not None:
                out[rk] = pa
                keys.append(rk[1])
        groups: dict[tuple[int, PathAttributes], list[int]] = {}
        for (afi, _), (pa, keys) in by_object.items():  # one entry per RouteAttrs object: few
            if pa is not None:
                if (afi, pa) in groups:  # equal attributes from distinct objects: one group
                    groups[(afi, pa)].extend(keys)
                else:
                    groups[(afi, pa)] = keys
        return out, groups, None

    # -- outputs (framed messages) ------------------------------------------
    def diff(self, ctx: Negotiated) -> list[bytes]:
        """UPDATEs taking the peer from what it was sent to what is wanted."""
        target, groups, single = self._target(ctx)
        sent = self.sent
        gone = sent.keys() - target.keys()  # set difference in C: work in proportion to the change
        withdraw = _by_afi(gone) if gone else {}
        if not sent:  # everything, in the wanted order (cheap to sort)
            announce = {single: list(map(_key_of, target))} if single is not None else groups
        elif (one := single[1] if single is not None else _single_value(target)) is not None \
                and _single_value(sent) is one:
            # the same one attribute set on both sides: only the new keys
            new = target.keys() - sent.keys()
            if not new:
                announce = {}
            elif single is not None:  # one family: every key touched once, in C
                announce = {single: list(map(_key_of, new))}
            else:
                announce = {(afi, one): keys for afi, keys in _by_afi(new).items()}
        else:
            was = sent.get
            announce = _grouped(route for route in target.items()
                                if (old := was(route[0])) is None or (old is not route[1] and old != route[1]))
        self.sent = target
        return self._pack(withdraw, announce, ctx)

    def apply_delta(self, delta: dict[RouteKey, RouteAttrs | None], ctx: Negotiated) -> list[bytes]:
        """Apply a change of the wanted routes and return the UPDATEs for those routes only
        (work in proportion to the change, not to the table)."""
        self.update_wanted(delta)
        fams = {afi for afi, safi in ctx.families if safi == SAFI.UNICAST}
        sent = self.sent
        withdraw: dict[int, list[int]] = {}
        changed: list[tuple[RouteKey, PathAttributes]] = []
        for rk, ra in delta.items():
            pa = self.path_attributes(rk[0], ra) if ra is not None and rk[0] in fams else None
            if pa is None:
                if sent.pop(rk, None) is not None:
                    withdraw.setdefault(rk[0], []).append(rk[1])
                continue
            old = sent.get(rk)
            if old is None or (old is not pa and old != pa):
                sent[rk] = pa
                changed.append((rk, pa))
        return self._pack(withdraw, _grouped(changed), ctx)

    def initial(self, ctx: Negotiated) -> list[bytes]:
        """Everything, then End-of-RIB for every negotiated family."""
        self.sent = {}
        msgs = self.diff(ctx)
        for afi in sorted(afi for afi, safi in ctx.families if safi == SAFI.UNICAST):
            msgs.append(builder.end_of_rib(afi))
        return msgs

    def refresh(self, afi: int, ctx: Negotiated) -> list[bytes]:
        """Re-send the whole Adj-RIB-Out of one family (a ROUTE-REFRESH answer).

        With enhanced route refresh (RFC 7313) the routes are framed by BoRR
        and EoRR so the peer can drop what we no longer send.
        """
        msgs = self._pack({}, _grouped(route for route in self.sent.items() if route[0][0] == afi), ctx)
        if ctx.enhanced_route_refresh:
            borr = encode(RouteRefresh(afi, SAFI.UNICAST, RouteRefreshSubtype.BORR), ctx)
            eorr = encode(RouteRefresh(afi, SAFI.UNICAST, RouteRefreshSubtype.EORR), ctx)
            msgs = [borr, *msgs, eorr]
        return msgs

    def _pack(self, withdraw: dict[int, list[int]],
              announce: dict[tuple[int, PathAttributes], list[int]], ctx: Negotiated) -> list[bytes]:
        if not withdraw and not announce:
            return []
        b = builder
        msgs: list[bytes] = []
        for afi, keys in sorted(withdraw.items()):
            keys.sort()
            msgs.extend(_as_list(b.build_withdrawals(afi, keys, ctx)))
        for (afi, pa), keys in announce.items():
            keys.sort()
            nh6 = self._nh6 if afi == AFI.IPV6 or pa.next_hop is None else None  # RFC 8950
            msgs.extend(_as_list(b.build_updates(afi, keys, pa, ctx, nh6)))
        return msgs

    def counts(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for afi, _ in self.sent:
            out[afi] = out.get(afi, 0) + 1
        return out
