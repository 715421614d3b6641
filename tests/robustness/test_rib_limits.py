"""Adj-RIB-In state a peer can make grow: only the routes it currently announces."""
from __future__ import annotations

from speakerd.rib import adj_in
from speakerd.rib.adj_in import AdjRibIn
from speakerd.wire.update import MpReach, PathAttributes, Update

KEY = (0x20010DB8 << 96 << 8) | 64


def test_interned_paths_stay_bounded_under_next_hop_churn(monkeypatch):
    """One IPv6 prefix re-announced with 5,000 different next hops: the
    interning table used to keep every (attributes, next hop) pair ever seen
    (100,000 re-announcements: 100,000 pairs for one route)."""
    monkeypatch.setattr(adj_in, "PATHS_LIMIT", 1000)
    r = AdjRibIn()
    a = PathAttributes(origin=0, as_path=())
    for i in range(5000):
        nh = ((0x20010DB8 << 96) | i).to_bytes(16, "big")
        r.apply(Update(attrs=a, mp_reach=MpReach(2, 1, nh, [KEY])))
    assert len(r) == 1
    assert len(r._paths) <= 1000
    assert r.get(2, KEY) == (a, ((0x20010DB8 << 96) | 4999).to_bytes(16, "big"))


def test_sharing_survives_a_table_drop(monkeypatch):
    monkeypatch.setattr(adj_in, "PATHS_LIMIT", 2)
    r = AdjRibIn()
    a = PathAttributes(origin=0, as_path=())
    nh = [bytes(15) + bytes((i,)) for i in range(3)]
    r.apply(Update(attrs=a, mp_reach=MpReach(2, 1, nh[0], [KEY, KEY + 256])))
    r.apply(Update(attrs=a, mp_reach=MpReach(2, 1, nh[1], [KEY + 512])))
    r.apply(Update(attrs=a, mp_reach=MpReach(2, 1, nh[2], [KEY + 768])))  # drops the table
    t = r.tables[2]
    assert t[KEY] is t[KEY + 256]  # existing prefixes still share one tuple
    assert r.get(2, KEY + 768) == (a, nh[2]) and len(r._paths) == 1


class _CountingDict(dict):
    """A route table that counts full scans."""
    scans = 0

    def __iter__(self):
        type(self).scans += 1
        return super().__iter__()

    def keys(self):
        type(self).scans += 1
        return super().keys()


def _v4_update(keys, attrs=PathAttributes(origin=0, as_path=(), next_hop=1)):
    return Update(attrs=attrs, nlri=list(keys))


def test_borr_flood_does_not_scan_the_table():
    """RFC 7313 BoRR used to copy every key of the family: 2,800 BoRRs in one
    read against 100,000 routes stalled the daemon for 10 s.  Now a BoRR is
    O(1); only the EoRR sweeps."""
    r = AdjRibIn()
    t = _CountingDict()
    r.tables[1] = t
    r.apply(_v4_update(((0x0A000000 + i) << 8) | 32 for i in range(1000)))
    _CountingDict.scans = 0
    for _ in range(2800):
        r.begin_refresh(1)
    assert _CountingDict.scans == 0
    assert r.end_refresh(1) == 1000  # nothing re-sent since the last BoRR: all stale
    assert len(r) == 0


def test_enhanced_refresh_keeps_resent_and_new_routes():
    r = AdjRibIn()
    k = [((0x0A000000 + i) << 8) | 32 for i in range(4)]
    r.apply(_v4_update(k[:3]))
    r.begin_refresh(1)
    r.apply(_v4_update([k[0]]))  # re-sent
    r.apply(Update(withdrawn=[k[1]]))  # withdrawn during the refresh
    r.apply(_v4_update([k[3]]))  # new
    r.begin_refresh(2)  # another family's refresh does not interfere
    assert r.end_refresh(1) == 1  # k[2] was not re-sent
    assert sorted(r.tables[1]) == [k[0], k[3]]
    assert r.end_refresh(1) == 0  # EoRR without BoRR: nothing to sweep
