"""RFC 8950 extended next hop: IPv4 routes with an IPv6 next hop over a link-local session."""
from __future__ import annotations

import ipaddress

import pytest

from test_fsm_harness import ID_B, cfg

from speakerd.fsm import Session, State
from speakerd.fsm.actions import Send
from speakerd.policy.types import RouteAttrs
from speakerd.wire.capabilities import (ExtendedNextHop, FourOctetAS, Multiprotocol, Negotiated,
                                        decode_capabilities)
from speakerd.wire.constants import MessageType
from speakerd.wire.framing import Framer, encode
from speakerd.wire.messages import KEEPALIVE, Open, Update
from speakerd.wire.nlri import str_to_key

LL = "fe80::1"
ENHE = ExtendedNextHop(((1, 1, 2),))


def test_capability_bytes_and_round_trip():
    assert ENHE.encode() == bytes((5, 6, 0, 1, 0, 1, 0, 2))
    assert decode_capabilities(ENHE.encode()) == [ENHE]


def test_negotiated_only_when_both_announce_it():
    assert Negotiated.compute([ENHE], [ENHE]).extended_next_hop == {(1, 1)}
    assert Negotiated.compute([ENHE], []).extended_next_hop == frozenset()
    assert Negotiated.compute([ENHE], [ExtendedNextHop(((1, 1, 1),))]).extended_next_hop == frozenset()


def established(peer_caps, local=LL, iface=None):
    s = Session(cfg(extended_next_hop=True))
    s.start(0.0)
    s.connection_made(0.0, local, interface_ipv6=iface)
    sent_open = [a.data for a in s.pop_actions() if isinstance(a, Send) and a.mtype == MessageType.OPEN][0]
    (_, body), = Framer().feed(sent_open)
    assert ENHE in Open.decode_body(body).capabilities  # we offer it
    s.data_received(encode(Open.build(65002, 90, ID_B, [Multiprotocol(1, 1), Multiprotocol(2, 1),
                                                        FourOctetAS(65002), *peer_caps])), 1.0)
    s.data_received(encode(KEEPALIVE), 1.0)
    assert s.state == State.ESTABLISHED
    s.pop_actions()
    s.set_routes(2.0, {str_to_key("203.0.113.10/32"): RouteAttrs()})
    ups = [a.data for a in s.pop_actions() if isinstance(a, Send) and a.mtype == MessageType.UPDATE]
    return [Update.decode_body(b, s.negotiated) for m in ups for _, b in Framer().feed(m)]


@pytest.mark.parametrize("iface,glob", [(None, LL), ("2001:db8::1", "2001:db8::1")])
def test_ipv4_route_goes_in_mp_reach_with_global_and_link_local(iface, glob):
    (upd,) = established([ENHE], iface=iface)
    assert not upd.nlri and upd.attrs.next_hop is None  # no IPv4 NEXT_HOP attribute
    mr = upd.mp_reach
    assert (mr.afi, mr.safi) == (1, 1)
    assert mr.next_hop == ipaddress.IPv6Address(glob).packed + ipaddress.IPv6Address(LL).packed
    assert [k for k in mr.nlri] == [str_to_key("203.0.113.10/32")[1]]


def test_without_the_peers_capability_no_ipv4_route_is_sent():
    assert established([]) == []
