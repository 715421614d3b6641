"""Adj-RIB-In: applying decoded UPDATEs."""
from __future__ import annotations

from speakerd.rib import AdjRibIn
from speakerd.wire import builder
from speakerd.wire.capabilities import DEFAULT_CONTEXT
from speakerd.wire.framing import decode
from speakerd.wire.nlri import str_to_key
from speakerd.wire.update import MpReach, PathAttributes, Update

A1 = PathAttributes(origin=0, as_path=((2, (65002,)),), next_hop=0xC0000201)
A2 = PathAttributes(origin=0, as_path=((2, (65002, 65003)),), next_hop=0xC0000201)
NH6 = bytes.fromhex("20010db8" + "00" * 11 + "01")


def k(text: str) -> int:
    return str_to_key(text)[1]


def updates(afi, keys, attrs, nh6=None):
    return [decode(m, DEFAULT_CONTEXT) for m in builder.build_updates(afi, keys, attrs, DEFAULT_CONTEXT, nh6)]


def test_announce_withdraw_and_replace_share_attribute_objects():
    rib = AdjRibIn()
    keys = [(0xC6336400 + (i << 8)) << 8 | 24 for i in range(200)]
    for u in updates(1, keys, A1):
        assert rib.apply(u) is None
    t = rib.tables[1]
    assert len(t) == 200
    assert len({id(v) for v in t.values()}) == 1  # one interned attribute set
    for u in updates(1, keys[:50], A2):
        rib.apply(u)
    assert sum(v == A2 for v in t.values()) == 50
    for m in builder.build_withdrawals(1, keys[:10]):
        rib.apply(decode(m))
    assert len(t) == 190 and keys[0] not in t
    assert rib.counts() == {1: 190, 2: 0}


def test_ipv6_routes_keep_their_next_hop():
    rib = AdjRibIn()
    key = k("2001:db8:1::/48")
    for u in updates(2, [key], A1, NH6):
        rib.apply(u)
    attrs, nh = rib.get(2, key)
    assert nh == NH6 and attrs.as_path == A1.as_path
    for m in builder.build_withdrawals(2, [key]):
        rib.apply(decode(m))
    assert rib.get(2, key) is None


def test_end_of_rib_markers_are_noted():
    rib = AdjRibIn()
    assert rib.apply(decode(builder.end_of_rib(1))) == 1
    assert rib.apply(decode(builder.end_of_rib(2))) == 2
    assert rib.eor == {1, 2}


def test_treat_as_withdraw_removes_the_nlri():
    rib = AdjRibIn()
    key = k("198.51.100.0/24")
    rib.apply(Update(attrs=A1, nlri=[key]))
    assert rib.apply(Update(attrs=A1, nlri=[key], treat_as_withdraw=True)) is None
    assert key not in rib.tables[1]
    key6 = k("2001:db8::/32")
    rib.apply(Update(attrs=A1, mp_reach=MpReach(2, 1, NH6, [key6])))
    rib.apply(Update(attrs=A1, mp_reach=MpReach(2, 1, NH6, [key6]), treat_as_withdraw=True))
    assert len(rib) == 0


def test_enhanced_refresh_drops_routes_not_resent():
    rib = AdjRibIn()
    a, b = k("198.51.100.0/24"), k("203.0.113.0/24")
    rib.apply(Update(attrs=A1, nlri=[a, b]))
    rib.begin_refresh(1)
    rib.apply(Update(attrs=A2, nlri=[a]))
    assert rib.end_refresh(1) == 1
    assert rib.tables[1] == {a: A2}


def test_clear_forgets_everything():
    rib = AdjRibIn()
    rib.apply(Update(attrs=A1, nlri=[k("198.51.100.0/24")]))
    rib.apply(decode(builder.end_of_rib(1)))
    rib.clear()
    assert len(rib) == 0 and rib.eor == set()
