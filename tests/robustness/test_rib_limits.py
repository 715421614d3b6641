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
