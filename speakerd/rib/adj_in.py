"""Adj-RIB-In: what one peer sent us, per address family.

IPv4 unicast: ``dict[prefix key, PathAttributes]`` — the decoder interns
attribute sets, so a million prefixes share a handful of attribute objects
and the only per-prefix cost is the int key and one dict slot.

Multiprotocol families (IPv6 unicast) carry their next hop in MP_REACH_NLRI,
not in :class:`PathAttributes`, so their tables map a key to an interned
``(PathAttributes, next_hop bytes)`` pair: one tuple per distinct attribute
set and next hop, shared by every prefix that has them.

An UPDATE is applied with ``dict.update(dict.fromkeys(keys, value))``;
RFC 7606 treat-as-withdraw removes the UPDATE's NLRI instead.
"""
from __future__ import annotations

from ..wire.constants import AFI
from ..wire.update import PathAttributes, Update

_EMPTY = PathAttributes()
# Interned (attributes, next hop) pairs kept for sharing.  Entries are never
# removed one by one (a withdrawal does not know whether other prefixes still
# use the pair), so the table is dropped when it grows past this: prefixes
# keep the tuples they hold, new ones are interned afresh.  Without it a peer
# that keeps changing next hop or attributes grows it without bound.
PATHS_LIMIT = 65536


class AdjRibIn:
    __slots__ = ("tables", "eor", "_paths", "_refreshed")

    def __init__(self) -> None:
        self.tables: dict[int, dict] = {AFI.IPV4: {}, AFI.IPV6: {}}
        self.eor: set[int] = set()  # AFIs whose End-of-RIB arrived
        self._paths: dict[tuple, tuple] = {}  # interned (attrs, next hop) for MP families
        # AFI -> keys announced since BoRR (RFC 7313); at EoRR every other key is stale.
        # Kept as the refreshed keys, not the stale ones, so a BoRR costs O(1)
        # however many routes the peer has (a BoRR flood must not stall us).
        self._refreshed: dict[int, set[int]] = {}

    def apply(self, upd: Update) -> int | None:
        """Apply one decoded UPDATE; return the AFI if it was an End-of-RIB marker."""
        tables = self.tables
        t4 = tables[AFI.IPV4]
        refreshed = self._refreshed
        attrs = upd.attrs
        mr = upd.mp_reach
        mu = upd.mp_unreach
        if upd.withdrawn:
            pop = t4.pop
            for k in upd.withdrawn:
                pop(k, None)
        if mu is not None and mu.withdrawn:
            pop = tables.setdefault(mu.afi, {}).pop
            for k in mu.withdrawn:
                pop(k, None)
        if upd.treat_as_withdraw:
            for k in upd.nlri:
                t4.pop(k, None)
            if mr is not None:
                t = tables.setdefault(mr.afi, {})
                for k in mr.nlri:
                    t.pop(k, None)
            return None
        if upd.nlri:
            t4.update(dict.fromkeys(upd.nlri, attrs))
            if refreshed:
                s = refreshed.get(AFI.IPV4)
                if s is not None:
                    s.update(upd.nlri)
        if mr is not None and mr.nlri:
            ident = (attrs, mr.next_hop)
            paths = self._paths
            value = paths.get(ident)
            if value is None:
                if len(paths) >= PATHS_LIMIT:
                    paths.clear()
                value = paths[ident] = ident
            tables.setdefault(mr.afi, {}).update(dict.fromkeys(mr.nlri, value))
            if refreshed:
                s = refreshed.get(mr.afi)
                if s is not None:
                    s.update(mr.nlri)
        # End-of-RIB (RFC 4724 §2): an empty UPDATE for IPv4 unicast; an
        # UPDATE holding only an empty MP_UNREACH_NLRI for other families.
        if upd.nlri or upd.withdrawn or mr is not None:
            return None
        if attrs is not None and attrs != _EMPTY:
            return None
        if mu is None:
            afi = AFI.IPV4
        elif not mu.withdrawn:
            afi = mu.afi
        else:
            return None
        self.eor.add(afi)
        return afi

    def begin_refresh(self, afi: int) -> None:
        """RFC 7313 BoRR: every current route of ``afi`` is stale until re-sent."""
        self._refreshed[afi] = set()

    def end_refresh(self, afi: int) -> int:
        """RFC 7313 EoRR: drop the routes not re-sent since BoRR; return how many."""
        refreshed = self._refreshed.pop(afi, None)
        if refreshed is None:
            return 0
        t = self.tables.get(afi, {})
        stale = t.keys() - refreshed
        for k in stale:
            del t[k]
        return len(stale)

    def clear(self) -> None:
        for t in self.tables.values():
            t.clear()
        self.eor.clear()
        self._paths.clear()
        self._refreshed.clear()

    def counts(self) -> dict[int, int]:
        return {afi: len(t) for afi, t in self.tables.items()}

    def __len__(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def get(self, afi: int, key: int) -> tuple[PathAttributes, bytes | None] | None:
        """Uniform lookup: (attributes, MP next hop or None for IPv4)."""
        v = self.tables.get(afi, {}).get(key)
        if v is None:
            return None
        if isinstance(v, tuple):
            return v
        return v, None
