"""RFC 4271 §9.1.2: routes whose AS_PATH holds our own AS are not kept (eBGP)."""
from __future__ import annotations

from speakerd.fsm.actions import Send
from speakerd.wire.builder import build_updates
from speakerd.wire.capabilities import DEFAULT_CONTEXT
from speakerd.wire.constants import AFI, AsPathSegmentType
from speakerd.wire.nlri import str_to_key
from speakerd.wire.update import PathAttributes

from test_fsm_harness import ID_B, Pair, cfg


def _update(as_path: tuple[int, ...], prefix: str) -> bytes:
    attrs = PathAttributes(origin=0, as_path=((AsPathSegmentType.AS_SEQUENCE, as_path),), next_hop=0xC0000201)
    afi, key = str_to_key(prefix)
    (msg,) = build_updates(afi, [key], attrs, DEFAULT_CONTEXT)
    return msg


def _established(cfg_a=None, cfg_b=None) -> Pair:
    p = Pair(cfg_a, cfg_b).start()
    assert p.established()
    return p


def test_ebgp_route_with_own_as_is_not_kept():
    p = _established()
    # B (AS 65002) sends A (AS 65001) one route that already passed through 65001, one that did not
    p.a.data_received(_update((65002, 65001), "198.51.100.1/32"), p.now)
    p.a.data_received(_update((65002, 65010), "198.51.100.2/32"), p.now)
    table = p.a.adj_rib_in.tables[AFI.IPV4]
    assert str_to_key("198.51.100.2/32")[1] in table
    assert str_to_key("198.51.100.1/32")[1] not in table
    assert p.a.looped_updates == 1
    # and the session stays up: a loop is not an error
    assert p.established()
    assert not any(isinstance(a, Send) and a.data[18] == 3 for a in p.a.pop_actions())


def test_looped_update_withdraws_a_route_held_before():
    p = _established()
    p.a.data_received(_update((65002,), "198.51.100.3/32"), p.now)
    key = str_to_key("198.51.100.3/32")[1]
    assert key in p.a.adj_rib_in.tables[AFI.IPV4]
    # the same prefix again, now looped: the earlier path is replaced by nothing (implicit withdraw)
    p.a.data_received(_update((65002, 65001), "198.51.100.3/32"), p.now)
    assert key not in p.a.adj_rib_in.tables[AFI.IPV4]


def test_ibgp_keeps_own_as_in_path():
    p = _established(cfg(65001, 65001), cfg(65001, 65001, ID_B, passive=True))
    p.a.data_received(_update((65001, 65010), "198.51.100.4/32"), p.now)
    assert str_to_key("198.51.100.4/32")[1] in p.a.adj_rib_in.tables[AFI.IPV4]
    assert p.a.looped_updates == 0


def test_family_not_negotiated_is_ignored():
    """An IPv6 MP_REACH on a session that negotiated IPv4 only is not installed."""
    from speakerd.wire.capabilities import IPV4_UNICAST
    p = _established(cfg(families=(IPV4_UNICAST,)), cfg(65002, 65001, ID_B, passive=True))
    assert (2, 1) not in p.a.negotiated.families
    attrs = PathAttributes(origin=0, as_path=((AsPathSegmentType.AS_SEQUENCE, (65002,)),))
    afi, key = str_to_key("2001:db8::/32")
    (msg,) = build_updates(afi, [key], attrs, DEFAULT_CONTEXT, next_hop6=bytes(15) + b"\1")
    p.a.data_received(msg, p.now)
    assert not p.a.adj_rib_in.tables.get(AFI.IPV6)
    assert p.a.unnegotiated_updates == 1
    assert p.established()


def test_end_of_rib_of_a_family_not_negotiated_is_not_an_ipv4_end_of_rib():
    """An IPv6 End-of-RIB (empty MP_UNREACH) on an IPv4-only session is ignored,
    not left as an empty UPDATE (which is the IPv4 End-of-RIB marker)."""
    from speakerd.fsm.actions import EndOfRib, RoutesReceived
    from speakerd.wire.builder import end_of_rib
    from speakerd.wire.capabilities import IPV4_UNICAST
    p = _established(cfg(families=(IPV4_UNICAST,)), cfg(65002, 65001, ID_B, passive=True))
    p.a.pop_actions()
    p.a.adj_rib_in.eor.clear()
    p.a.data_received(end_of_rib(AFI.IPV6), p.now)
    acts = p.a.pop_actions()
    assert not [a for a in acts if isinstance(a, (EndOfRib, RoutesReceived))]
    assert p.a.adj_rib_in.eor == set()
    assert p.a.unnegotiated_updates == 1
    assert p.established()
