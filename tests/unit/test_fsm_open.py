"""OPEN checks: each mismatch answered with the exact NOTIFICATION bytes."""
from __future__ import annotations

import pytest

from test_fsm_harness import ID_A, ID_B, cfg

from speakerd.fsm import Session, State
from speakerd.fsm.actions import Send
from speakerd.wire.capabilities import ExtendedMessage, FourOctetAS, Multiprotocol, UnknownCapability
from speakerd.wire.constants import MessageType
from speakerd.wire.framing import encode, frame
from speakerd.wire.messages import Open


def notification_after(open_bytes: bytes, config=None) -> bytes:
    s = Session(config or cfg())
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.pop_actions()
    s.data_received(open_bytes, 1.0)
    sends = [a.data for a in s.pop_actions() if isinstance(a, Send) and a.mtype == MessageType.NOTIFICATION]
    assert len(sends) == 1 and s.state == State.ACTIVE
    return sends[0]


def notif(code: int, sub: int, data: bytes = b"") -> bytes:
    return frame(3, bytes((code, sub)) + data)


def test_unsupported_version_carries_our_version():
    body = bytearray(Open.build(65002, 90, ID_B, []).encode_body())
    body[0] = 3
    assert notification_after(frame(1, bytes(body))) == notif(2, 1, b"\x00\x04")


@pytest.mark.parametrize("opn", [
    Open.build(65003, 90, ID_B, []),  # wrong AS
    Open(23456, 90, ID_B, (FourOctetAS(65003),)),  # wrong AS in the capability
    Open(65002, 90, ID_B, (FourOctetAS(4200000000),)),  # 4-octet AS without AS_TRANS
])
def test_bad_peer_as(opn):
    assert notification_after(encode(opn)) == notif(2, 2)


def test_two_octet_peer_is_accepted():
    s = Session(cfg())
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.data_received(encode(Open(65002, 90, ID_B, ())), 1.0)
    assert s.state == State.OPENCONFIRM and not s.negotiated.four_octet_as


def test_peer_with_four_octet_asn_must_announce_it():
    config = cfg(peer_asn=4200000000)
    assert notification_after(encode(Open(23456, 90, ID_B, ())), config) == notif(2, 2)


@pytest.mark.parametrize("bgp_id,ibgp", [(0, False), (ID_A, True)])
def test_bad_bgp_identifier(bgp_id, ibgp):
    config = cfg(65001, 65001) if ibgp else cfg()
    asn = 65001 if ibgp else 65002
    assert notification_after(encode(Open.build(asn, 90, bgp_id, [])), config) == notif(2, 3)


def test_ebgp_peer_may_share_our_identifier():
    s = Session(cfg())
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.data_received(encode(Open.build(65002, 90, ID_A, [])), 1.0)
    assert s.state == State.OPENCONFIRM


@pytest.mark.parametrize("hold", [1, 2])
def test_unacceptable_hold_time(hold):
    assert notification_after(encode(Open.build(65002, hold, ID_B, []))) == notif(2, 6)


def test_no_common_family_is_unsupported_capability_with_our_families():
    opn = Open.build(65002, 90, ID_B, [Multiprotocol(1, 2)])  # IPv4 multicast only
    want = Multiprotocol(1, 1).encode() + Multiprotocol(2, 1).encode()
    assert notification_after(encode(opn)) == notif(2, 7, want)


def test_unknown_capabilities_are_ignored():
    s = Session(cfg())
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    s.data_received(encode(Open.build(65002, 90, ID_B, [UnknownCapability(99, b"x")])), 1.0)
    assert s.state == State.OPENCONFIRM


def test_unsupported_optional_parameter():
    body = Open(65002, 90, ID_B, ()).encode_body()
    body = body[:9] + b"\x04\x01\x02\x00\x00"  # one parameter of type 1 (authentication)
    assert notification_after(frame(1, body)) == notif(2, 4)


def test_hold_time_is_the_minimum_and_extended_messages_switch_the_framer():
    s = Session(cfg(hold_time=60))
    s.start(0.0)
    s.connection_made(0.0, "192.0.2.1")
    opn = Open.build(65002, 30, ID_B, [Multiprotocol(1, 1), Multiprotocol(2, 1),
                                       ExtendedMessage()])
    s.data_received(encode(opn), 1.0)
    assert s.negotiated.hold_time == 30 and s.negotiated.keepalive_time == 10
    assert s._framer.max_len == 65535
