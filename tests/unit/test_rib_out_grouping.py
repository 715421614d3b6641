"""Adj-RIB-Out with several attribute sets: routes are grouped into UPDATEs by attribute
set (looked up by object identity, never hashed per route), and every path — a full
diff, a delta, a ROUTE-REFRESH answer — leaves the peer holding exactly the wanted table."""
from __future__ import annotations

import random

from speakerd.policy.types import RouteAttrs
from speakerd.rib import AdjRibIn, AdjRibOut
from speakerd.wire.capabilities import DEFAULT_CONTEXT, Negotiated
from speakerd.wire.framing import decode

CTX = Negotiated(four_octet_as=True, families=DEFAULT_CONTEXT.families, route_refresh=True)
V6 = 0x20010DB8 << 96


def v4(i: int) -> tuple[int, int]:
    return (1, (0x0A000000 + i) << 8 | 32)


def v6(i: int) -> tuple[int, int]:
    return (2, (V6 + i) << 8 | 128)


def session() -> tuple[AdjRibOut, AdjRibIn]:
    out = AdjRibOut(65001, ibgp=True)
    out.connected("192.0.2.1")
    return out, AdjRibIn()


def deliver(rib: AdjRibIn, msgs: list[bytes]) -> list:
    ups = [decode(m, CTX) for m in msgs]
    for u in ups:
        rib.apply(u)
    return ups


def assert_holds(rib: AdjRibIn, wanted: dict) -> None:
    assert len(rib) == len(wanted)
    for (afi, key), ra in wanted.items():
        held = rib.get(afi, key)
        assert held is not None, (afi, key)
        assert held[0].communities == tuple(sorted(ra.communities))
        assert held[0].local_pref == (ra.local_pref if ra.local_pref is not None else 100)


def announced(ups) -> int:
    return sum(len(u.nlri) + (len(u.mp_reach.nlri) if u.mp_reach else 0) for u in ups)


def test_equal_attribute_sets_from_distinct_objects_share_updates():
    # the planner may build one RouteAttrs per advertisement or per route: equal
    # values are one attribute set on the wire, however many objects carry them
    out, rib = session()
    wanted = {v4(i): RouteAttrs(communities=(100,), local_pref=150) for i in range(300)}
    wanted.update({v4(1000 + i): RouteAttrs(communities=(200,)) for i in range(300)})
    out.set_wanted(wanted)
    ups = deliver(rib, out.diff(CTX))
    assert len([u for u in ups if u.nlri]) == 2
    assert_holds(rib, wanted)


def test_only_routes_whose_attributes_changed_are_sent_again():
    out, rib = session()
    a, b, c = RouteAttrs(communities=(1,)), RouteAttrs(communities=(2,)), RouteAttrs(local_pref=300)
    wanted = {**{v4(i): a for i in range(200)}, **{v6(i): b for i in range(200)}}
    out.set_wanted(wanted)
    deliver(rib, out.diff(CTX))
    changed = dict(wanted)
    for i in range(0, 200, 10):
        changed[v4(i)] = c
        changed[v6(i)] = RouteAttrs(communities=(2,))  # a new object with the same value: not a change
    out.set_wanted(changed)
    ups = deliver(rib, out.diff(CTX))
    assert announced(ups) == 20
    assert not any(u.withdrawn or u.mp_unreach for u in ups)
    assert_holds(rib, changed)


def test_a_rebuilt_attribute_cache_alone_sends_nothing():
    # equal attributes as different objects on both sides compare by value
    out, rib = session()
    wanted = {**{v4(i): RouteAttrs(communities=(i % 3,)) for i in range(90)}, v6(1): RouteAttrs()}
    out.set_wanted(wanted)
    deliver(rib, out.diff(CTX))
    out._attr_cache.clear()
    assert out.diff(CTX) == []


def test_random_tables_diff_delta_and_refresh_keep_the_peer_in_step():
    rng = random.Random(18)
    pool = [RouteAttrs(communities=(n,), local_pref=lp) for n in (1, 2, 3) for lp in (None, 120)]
    universe = [v4(i) for i in range(400)] + [v6(i) for i in range(400)]
    out, rib = session()
    wanted: dict = {}
    for step in range(30):
        if step % 3 == 0:  # a whole new table
            wanted = {rk: rng.choice(pool) for rk in rng.sample(universe, rng.randrange(1, 600))}
            out.set_wanted(wanted)
            msgs = out.diff(CTX)
        elif step % 3 == 1:  # a delta: some withdrawn, some (re)announced
            delta = {rk: (None if rng.random() < 0.4 else rng.choice(pool))
                     for rk in rng.sample(universe, rng.randrange(1, 80))}
            for rk, ra in delta.items():
                if ra is None:
                    wanted.pop(rk, None)
                else:
                    wanted[rk] = ra
            msgs = out.apply_delta(delta, CTX)
        else:  # ROUTE-REFRESH of one family: everything of it again, nothing else
            afi = rng.choice((1, 2))
            msgs = out.refresh(afi, CTX)
            assert announced([decode(m, CTX) for m in msgs]) == sum(1 for rk in wanted if rk[0] == afi)
        deliver(rib, msgs)
        assert_holds(rib, wanted)
        assert out.sent.keys() == wanted.keys()
