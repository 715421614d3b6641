"""OPEN + capabilities, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH."""
import struct

import pytest

from speakerd.wire import capabilities as caps
from speakerd.wire.capabilities import Negotiated, decode_capabilities
from speakerd.wire.constants import (AS_TRANS, SUBCODES, CeaseSubcode, ErrorCode, error_name)
from speakerd.wire.errors import BGPError, OpenError, RouteRefreshError
from speakerd.wire.framing import decode, encode
from speakerd.wire.messages import KEEPALIVE, Keepalive, Notification, Open, RouteRefresh

ALL_CAPS = [
    caps.Multiprotocol(1, 1), caps.Multiprotocol(2, 1), caps.RouteRefresh(), caps.RouteRefreshCisco(),
    caps.EnhancedRouteRefresh(), caps.ExtendedMessage(), caps.FourOctetAS(4200000001),
    caps.GracefulRestart(0x8 | 0x4, 300, ((1, 1, 0x80), (2, 1, 0x00))),
    caps.AddPath(((1, 1, 1), (2, 1, 3))), caps.FQDN("node-1", "example.org"),
    caps.UnknownCapability(200, b"\x01\x02\x03"),
]


@pytest.mark.parametrize("cap", ALL_CAPS, ids=lambda c: type(c).__name__)
def test_capability_round_trip(cap):
    raw = cap.encode()
    assert decode_capabilities(raw) == [cap]
    assert decode_capabilities(raw)[0].encode() == raw


def test_open_round_trip_with_every_capability():
    o = Open.build(4200000001, 90, 0x0A000001, ALL_CAPS)
    assert o.my_as == AS_TRANS
    assert o.asn == 4200000001
    d = decode(encode(o))
    assert d == o
    assert encode(d) == encode(o)


def test_open_adds_four_octet_capability():
    o = Open.build(65001, 3, 1)
    assert o.my_as == 65001 and o.capabilities == (caps.FourOctetAS(65001),)


def test_unknown_capability_kept_raw():
    (c,) = decode_capabilities(b"\xc8\x02ab")
    assert c == caps.UnknownCapability(200, b"ab") and c.code == 200


def test_graceful_restart_flags():
    gr = caps.GracefulRestart.decode_value(bytes.fromhex("c078 0001 0180 0002 0100"))
    assert gr.restart_flags == 0xC and gr.restarting and gr.restart_time == 0x78
    assert gr.families == ((1, 1, 0x80), (2, 1, 0))


def test_add_path_negotiation():
    local = [caps.AddPath(((1, 1, 3), (2, 1, 1)))]
    remote = [caps.AddPath(((1, 1, 2), (2, 1, 2)))]
    n = Negotiated.compute(local, remote)
    assert n.add_path_receive == {(1, 1), (2, 1)} and n.add_path_send == frozenset()
    with pytest.raises(OpenError):
        caps.AddPath.decode_value(b"\x00\x01\x01\x04")


def test_fqdn():
    c = caps.FQDN.decode_value(b"\x04leaf\x00")
    assert (c.hostname, c.domain) == ("leaf", "")
    with pytest.raises(OpenError):
        caps.FQDN.decode_value(b"\x09ab")


def test_negotiated_four_octet_and_extended():
    n = Negotiated.compute([caps.FourOctetAS(1), caps.ExtendedMessage()],
                           [caps.FourOctetAS(2), caps.ExtendedMessage()])
    assert n.four_octet_as and n.max_message_len == 65535
    n = Negotiated.compute([caps.FourOctetAS(1)], [])
    assert not n.four_octet_as and n.max_message_len == 4096


def test_open_bad_version():
    body = bytearray(Open.build(65001, 90, 1).encode_body())
    body[0] = 3
    with pytest.raises(OpenError) as ei:
        Open.decode_body(bytes(body))
    assert (ei.value.code, ei.value.subcode, ei.value.data) == (2, 1, b"\x00\x04")


def test_open_unsupported_optional_parameter():
    body = struct.pack("!BHHIB", 4, 1, 90, 1, 3) + b"\x01\x01\x00"
    with pytest.raises(OpenError) as ei:
        Open.decode_body(body)
    assert ei.value.subcode == 4


def test_open_extended_optional_parameters():
    many = tuple(caps.UnknownCapability(200, bytes(60)) for _ in range(6))
    o = Open.build(65001, 90, 1, many)
    assert decode(encode(o)) == o


def test_keepalive():
    assert encode(KEEPALIVE) == b"\xff" * 16 + b"\x00\x13\x04"
    with pytest.raises(BGPError):
        Keepalive.decode_body(b"\0")


def test_every_error_code_and_subcode_is_named():
    for code in ErrorCode:
        assert "Unknown" not in error_name(code, 0)
        for sub in SUBCODES.get(code, ()):
            name = error_name(code, sub)
            assert "subcode" not in name and name.lower().startswith(ErrorCode(code).name.replace("_", " ").lower())
    assert error_name(6, 2) == "Cease/Administrative Shutdown"
    # the RFCs' capitals
    assert error_name(2, 2) == "OPEN Message/Bad Peer AS"
    assert error_name(3, 11) == "UPDATE Message/Malformed AS Path"
    assert error_name(6, 10) == "Cease/BFD Down"
    assert error_name(5, 1) == "FSM/Unexpected In OpenSent"
    assert error_name(99, 1).startswith("Unknown")


def test_notification_round_trip_and_shutdown_communication():
    n = Notification.cease(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "maintenance ✓")
    d = decode(encode(n))
    assert d == n and d.shutdown_message == "maintenance ✓"
    assert d.data[0] == len("maintenance ✓".encode())
    long = Notification.cease(CeaseSubcode.ADMINISTRATIVE_RESET, "é" * 200)
    assert long.data[0] <= 255 and long.shutdown_message == "é" * 127  # not cut mid-character
    assert Notification.cease(CeaseSubcode.PEER_DECONFIGURED, "x").data == b""
    assert Notification(6, 2, b"\x10ab").shutdown_message is None  # length overruns
    assert Notification(3, 1).error() == BGPError(3, 1)


def test_route_refresh_subtypes():
    for sub in (0, 1, 2):
        rr = RouteRefresh(2, 1, sub)
        assert decode(encode(rr)) == rr
    assert encode(RouteRefresh(1, 1, 1))[19:] == b"\x00\x01\x01\x01"


def test_route_refresh_bad_length():
    with pytest.raises(RouteRefreshError) as ei:
        RouteRefresh.decode_body(b"\x00\x01\x00\x01\x00")
    assert (ei.value.code, ei.value.subcode) == (7, 1)
    assert ei.value.data == b"\xff" * 16 + b"\x00\x18\x05" + b"\x00\x01\x00\x01\x00"
