"""The IPv6 next hop over an IPv4 session: the interface's global address, else ::ffff:IPv4."""
from __future__ import annotations

import ipaddress

import pytest

from test_fsm_harness import ID_B, cfg

from speakerd.fsm import Session, State
from speakerd.fsm.actions import Send
from speakerd.policy.types import RouteAttrs
from speakerd.rib.adj_out import (NH6_CONFIGURED, NH6_INTERFACE, NH6_LOCAL, NH6_MAPPED, next_hop6_source,
                                  next_hops)
from speakerd.wire.capabilities import FourOctetAS, Multiprotocol
from speakerd.wire.constants import MessageType
from speakerd.wire.framing import Framer, encode
from speakerd.wire.messages import KEEPALIVE, Open, Update
from speakerd.wire.nlri import str_to_key


def v6(a: str) -> bytes:
    return ipaddress.IPv6Address(a).packed


@pytest.mark.parametrize("local,nh6,iface,want,source", [
    ("192.0.2.1", None, "2001:db8::1", "2001:db8::1", NH6_INTERFACE),
    ("192.0.2.1", None, None, "::ffff:192.0.2.1", NH6_MAPPED),
    ("::ffff:192.0.2.1", None, "2001:db8::1", "2001:db8::1", NH6_INTERFACE),  # dual-stack socket
    ("192.0.2.1", "2001:db8::9", "2001:db8::1", "2001:db8::9", NH6_CONFIGURED),
    ("2001:db8::5", None, "2001:db8::1", "2001:db8::5", NH6_LOCAL),  # an IPv6 session: its own address
])
def test_ipv6_next_hop_choice(local, nh6, iface, want, source):
    assert next_hops(local, None, nh6, iface)[1] == v6(want)
    assert next_hop6_source(local, nh6, iface) == source


def test_ipv4_next_hop_unchanged_by_the_interface_address():
    assert next_hops("192.0.2.1", None, None, "2001:db8::1")[0] == int(ipaddress.IPv4Address("192.0.2.1"))


@pytest.mark.parametrize("iface,want", [("2001:db8:1::2", "2001:db8:1::2"), (None, "::ffff:192.0.2.1")])
def test_session_sends_ipv6_routes_with_the_interface_address(iface, want):
    s = Session(cfg())
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1", interface_ipv6=iface)
    s.data_received(encode(Open.build(65002, 90, ID_B, [Multiprotocol(1, 1), Multiprotocol(2, 1),
                                                        FourOctetAS(65002)])), 1.0)
    s.data_received(encode(KEEPALIVE), 1.0)
    assert s.state == State.ESTABLISHED
    s.pop_actions()
    s.set_routes(2.0, {str_to_key("2001:db8:5d::10/128"): RouteAttrs()})
    ups = [a.data for a in s.pop_actions() if isinstance(a, Send) and a.mtype == MessageType.UPDATE]
    (_, body), = Framer().feed(ups[0])
    upd = Update.decode_body(body, s.negotiated)
    assert upd.mp_reach.next_hop == v6(want)
