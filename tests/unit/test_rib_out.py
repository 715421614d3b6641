"""Adj-RIB-Out: per-session attributes, next hops, diffs."""
from __future__ import annotations

import ipaddress

import pytest

from speakerd.policy.types import RouteAttrs
from speakerd.rib import AdjRibIn, AdjRibOut
from speakerd.rib.adj_out import next_hops
from speakerd.wire.capabilities import DEFAULT_CONTEXT, IPV4_UNICAST, Negotiated
from speakerd.wire.framing import decode
from speakerd.wire.messages import RouteRefresh
from speakerd.wire.nlri import str_to_key

BOTH = DEFAULT_CONTEXT
V4ONLY = Negotiated(four_octet_as=True, families=frozenset({IPV4_UNICAST}), route_refresh=True)


def r(text: str) -> tuple[int, int]:
    return str_to_key(text)


def receive(msgs) -> AdjRibIn:
    rib = AdjRibIn()
    for m in msgs:
        rib.apply(decode(m))
    return rib


def test_ebgp_attributes_no_local_pref_and_local_as_path():
    out = AdjRibOut(65001, ibgp=False)
    out.connected("192.0.2.1")
    out.set_wanted({r("198.51.100.10/32"): RouteAttrs(communities=(0xFDE80064, 0xFDE80001), local_pref=300)})
    rib = receive(out.initial(BOTH))
    attrs, _ = rib.get(*r("198.51.100.10/32"))
    assert attrs.as_path == ((2, (65001,)),)
    assert attrs.local_pref is None
    assert attrs.origin == 0
    assert attrs.next_hop == int(ipaddress.IPv4Address("192.0.2.1"))
    assert attrs.communities == (0xFDE80001, 0xFDE80064)
    assert rib.eor == {1, 2}


def test_ibgp_local_pref_default_and_explicit_and_empty_as_path():
    out = AdjRibOut(65001, ibgp=True)
    out.connected("192.0.2.1")
    out.set_wanted({r("198.51.100.10/32"): RouteAttrs(), r("198.51.100.11/32"): RouteAttrs(local_pref=50,
                    large_communities=((65001, 1, 2),))})
    rib = receive(out.initial(BOTH))
    a10, _ = rib.get(*r("198.51.100.10/32"))
    a11, _ = rib.get(*r("198.51.100.11/32"))
    assert a10.local_pref == 100 and a10.as_path in ((), None)
    assert a11.local_pref == 50 and a11.large_communities == ((65001, 1, 2),)


def test_diff_sends_only_changes():
    out = AdjRibOut(65001, ibgp=False)
    out.connected("192.0.2.1")
    keys = {r(f"198.51.100.{i}/32"): RouteAttrs() for i in range(10)}
    out.set_wanted(keys)
    out.initial(BOTH)
    assert out.diff(BOTH) == []
    changed = dict(keys)
    del changed[r("198.51.100.0/32")]
    changed[r("198.51.100.1/32")] = RouteAttrs(communities=(1,))
    changed[r("2001:db8::1/128")] = RouteAttrs()
    out.set_wanted(changed)
    msgs = [decode(m) for m in out.diff(BOTH)]
    withdrawn = [k for u in msgs for k in u.withdrawn]
    announced4 = [k for u in msgs for k in u.nlri]
    announced6 = [k for u in msgs if u.mp_reach for k in u.mp_reach.nlri]
    assert withdrawn == [r("198.51.100.0/32")[1]]
    assert announced4 == [r("198.51.100.1/32")[1]]
    assert announced6 == [r("2001:db8::1/128")[1]]


def test_ipv6_routes_need_ipv6_negotiated():
    out = AdjRibOut(65001, ibgp=False)
    out.connected("192.0.2.1")
    out.set_wanted({r("2001:db8::1/128"): RouteAttrs(), r("198.51.100.1/32"): RouteAttrs()})
    msgs = [decode(m) for m in out.initial(V4ONLY)]
    assert all(u.mp_reach is None for u in msgs)
    assert out.counts() == {1: 1}


def test_next_hop_rules_across_families():
    # IPv4 session: IPv6 routes use the IPv4-mapped address
    nh4, nh6 = next_hops("192.0.2.1", None, None)
    assert nh4 == 0xC0000201 and nh6 == ipaddress.IPv6Address("::ffff:192.0.2.1").packed
    # IPv6-only session: no IPv4 next hop unless configured
    nh4, nh6 = next_hops("2001:db8::1", None, None)
    assert nh4 is None and nh6 == ipaddress.IPv6Address("2001:db8::1").packed
    nh4, _ = next_hops("2001:db8::1", "192.0.2.9", None)
    assert nh4 == 0xC0000209
    # a dual-stack socket reports IPv4 as mapped: treated as IPv4
    nh4, _ = next_hops("::ffff:192.0.2.1", None, None)
    assert nh4 == 0xC0000201
    # configured IPv6 next hop wins
    _, nh6 = next_hops("192.0.2.1", None, "2001:db8::9")
    assert nh6 == ipaddress.IPv6Address("2001:db8::9").packed


def test_ipv4_routes_not_sent_over_ipv6_only_session_without_next_hop():
    out = AdjRibOut(65001, ibgp=False)
    out.connected("2001:db8::1")
    out.set_wanted({r("198.51.100.1/32"): RouteAttrs(), r("2001:db8:5::/64"): RouteAttrs()})
    out.initial(BOTH)
    assert out.counts() == {2: 1}


def test_ipv6_route_over_ipv4_session_carries_mapped_next_hop():
    out = AdjRibOut(65001, ibgp=False)
    out.connected("192.0.2.1")
    out.set_wanted({r("2001:db8:5::/64"): RouteAttrs()})
    rib = receive(out.initial(BOTH))
    _, nh = rib.get(*r("2001:db8:5::/64"))
    assert nh == ipaddress.IPv6Address("::ffff:192.0.2.1").packed


@pytest.mark.parametrize("enhanced", [True, False])
def test_refresh_resends_one_family(enhanced):
    ctx = Negotiated(four_octet_as=True, families=BOTH.families, route_refresh=True,
                     enhanced_route_refresh=enhanced)
    out = AdjRibOut(65001, ibgp=False)
    out.connected("192.0.2.1")
    out.set_wanted({r("198.51.100.1/32"): RouteAttrs(), r("2001:db8::/64"): RouteAttrs()})
    out.initial(ctx)
    msgs = [decode(m, ctx) for m in out.refresh(1, ctx)]
    if enhanced:
        assert msgs[0] == RouteRefresh(1, 1, 1) and msgs[-1] == RouteRefresh(1, 1, 2)
        msgs = msgs[1:-1]
    assert [k for u in msgs for k in u.nlri] == [r("198.51.100.1/32")[1]]
    assert all(u.mp_reach is None for u in msgs)


def test_reconnect_sends_everything_again():
    out = AdjRibOut(65001, ibgp=False)
    out.connected("192.0.2.1")
    out.set_wanted({r("198.51.100.1/32"): RouteAttrs()})
    first = out.initial(BOTH)
    out.connected("192.0.2.1")
    assert out.initial(BOTH) == first


def test_many_routes_pack_into_few_messages():
    out = AdjRibOut(65001, ibgp=False)
    out.connected("192.0.2.1")
    out.set_wanted({(1, ((0x0A000000 + i) << 8) | 32): RouteAttrs() for i in range(5000)})
    msgs = out.diff(BOTH)
    assert len(msgs) < 30
    assert sum(len(decode(m).nlri) for m in msgs) == 5000
