"""Adj-RIB-Out when every route shares one attribute set (the planner's common table).

The shared-attributes path must send exactly what the general path sends: a
peer's table after each diff equals the wanted routes, across adds, removals,
an attribute change and a second family."""
from __future__ import annotations

import random

from speakerd.policy.types import RouteAttrs
from speakerd.rib import AdjRibIn, AdjRibOut
from speakerd.wire.capabilities import DEFAULT_CONTEXT
from speakerd.wire.framing import decode


def keys(n, base=0x0A000000, afi=1, plen=32):
    return [(afi, (base + i) << 8 | plen) for i in range(n)]


def test_shared_attrs_diffs_track_the_wanted_table():
    rng = random.Random(7)
    a, b = RouteAttrs(communities=(1,)), RouteAttrs(local_pref=200)
    out = AdjRibOut(65001, ibgp=True)
    out.connected("192.0.2.1")
    rib = AdjRibIn()
    universe = keys(300)
    wanted: dict = {}
    steps = [a] * 6 + [b] * 2 + [a]
    for step, attrs in enumerate(steps):
        chosen = rng.sample(universe, rng.randrange(100, 300))
        wanted = dict.fromkeys(chosen, attrs)
        if step == 4:
            wanted[(2, (0x20010DB8 << 96 | 1) << 8 | 128)] = attrs  # a second family: general path
        out.set_wanted(wanted)
        msgs = out.initial(DEFAULT_CONTEXT) if step == 0 else out.diff(DEFAULT_CONTEXT)
        for m in msgs:
            rib.apply(decode(m))
        assert set(out.sent) == set(wanted)
        for rk in universe:
            held = rib.get(*rk)
            assert (held is not None) == (rk in wanted)
            if held is not None:
                assert held[0].local_pref == (attrs.local_pref or 100)
                assert held[0].communities == attrs.communities
        assert len(rib) == len(wanted)


def test_unchanged_shared_table_sends_nothing():
    attrs = RouteAttrs()
    out = AdjRibOut(65001, ibgp=False)
    out.connected("192.0.2.1")
    wanted = dict.fromkeys(keys(1000), attrs)
    out.set_wanted(wanted)
    assert out.initial(DEFAULT_CONTEXT)
    out.set_wanted(dict(wanted))
    assert out.diff(DEFAULT_CONTEXT) == []
    wanted[(1, 0x0B000001 << 8 | 32)] = attrs
    del wanted[keys(1)[0]]
    out.set_wanted(wanted)
    msgs = [decode(m) for m in out.diff(DEFAULT_CONTEXT)]
    assert len(msgs) == 2  # one withdrawal, one announcement
