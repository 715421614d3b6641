"""One real speakerd against a hostile peer, while a healthy peer looks on.

The daemon under test (DUT) has two sessions: ``healthy`` (a second speakerd
that exchanges routes with it) and ``hostile`` (this test's raw socket, see
:mod:`tests.robustness.daemons`).  Every case sends one kind of bad input on
the hostile session and asserts the exact NOTIFICATION the DUT wrote (code,
subcode, data, read off the raw socket) or the RFC 7606 treat-as-withdraw
outcome; after every case the ``healthy_unaffected`` fixture asserts that the
healthy session never left Established and that the routes both ways are
unchanged.  Timers that are minutes long (OpenSent hold, send hold) are
tested on the session machine with a fake clock (test_machine_limits.py,
which needs no daemon); at the daemon level the case checks that the stuck
peer costs the healthy session nothing.
"""
from __future__ import annotations

import socket
import struct

import pytest

from tests.robustness.daemons import (DUT, DUT_ASN, DUT_ID, HOSTILE, Daemon, RawPeer, free_port,
                                      header, write_configs)
from speakerd.wire.capabilities import (ExtendedMessage, FourOctetAS, Multiprotocol,
                                        RouteRefresh as RRCap)
from speakerd.wire.constants import MARKER, TYPE_OFFSET, MessageType
from speakerd.wire.framing import decode, encode
from speakerd.wire.messages import KEEPALIVE, Notification, Open, RouteRefresh

HOSTILE_ID = 0x0A4D0003
KEEPALIVE_BYTES = encode(KEEPALIVE)
CAPS = (Multiprotocol(1, 1), Multiprotocol(2, 1), RRCap(), FourOctetAS(DUT_ASN))


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    port = free_port()
    dut_cfg, healthy_cfg = write_configs(base, port)
    daemons = []
    try:
        dut = Daemon("dut", dut_cfg, base)
        daemons.append(dut)
        healthy = Daemon("healthy", healthy_cfg, base)
        daemons.append(healthy)
        dut.wait(lambda: dut.neighbor("healthy")["state"] == "Established" and len(dut.received("healthy")) == 2)
        healthy.wait(lambda: len(healthy.received("dut")) == 3)
        base_line = {
            "dut_rx": sorted(dut.received("healthy")),
            "healthy_rx": sorted(healthy.received("dut")),
            # both daemons start and connect to each other at once: a connection collision
            # at start may cost one flap before the cases begin; the cases must add none
            "dut_flaps": dut.neighbor("healthy")["flaps"],
            "healthy_flaps": healthy.neighbor("dut")["flaps"],
        }
        yield dut, healthy, port, base_line
    finally:
        for d in daemons:
            d.stop()


@pytest.fixture(autouse=True)
def healthy_unaffected(lab):
    """After each case: the healthy session did not flap and its routes are unchanged."""
    yield
    dut, healthy, _, base_line = lab
    n = dut.neighbor("healthy")
    assert n["state"] == "Established"
    assert n["flaps"] == base_line["dut_flaps"]
    assert sorted(dut.received("healthy")) == base_line["dut_rx"]
    h = healthy.neighbor("dut")
    assert h["state"] == "Established" and h["flaps"] == base_line["healthy_flaps"]
    assert sorted(healthy.received("dut")) == base_line["healthy_rx"]


class Hostile:
    """The hostile side of one case: connect, optionally establish."""

    def __init__(self, lab) -> None:
        self.dut, _, self.port, _ = lab
        self.peer: RawPeer | None = None

    def connect(self, rcvbuf: int = 0) -> bytes:
        """Connect from the hostile address; return the DUT's OPEN."""
        dut = self.dut
        dut.wait(lambda: dut.neighbor("hostile")["state"] in ("Active", "Connect", "Idle"))
        for _ in range(20):
            self.peer = RawPeer(HOSTILE, self.port, rcvbuf=rcvbuf)
            first = self.peer.recv_message()
            if first is not None and first[TYPE_OFFSET] == MessageType.OPEN:
                return first
            self.peer.close()  # the DUT was still releasing the previous connection
            dut.wait(lambda: dut.neighbor("hostile")["state"] in ("Active", "Connect"))
        raise AssertionError("the DUT never sent an OPEN to the hostile peer")

    def establish(self, open_msg: bytes | None = None, rcvbuf: int = 0) -> None:
        self.connect(rcvbuf)
        self.peer.send(open_msg or encode(Open(DUT_ASN, 9, HOSTILE_ID, CAPS)))
        ka, _ = self.peer.until(MessageType.KEEPALIVE)
        assert ka is not None
        self.peer.send(KEEPALIVE_BYTES)
        self.dut.wait(lambda: self.dut.neighbor("hostile")["state"] == "Established")

    def expect_notification(self, code: int, subcode: int, data: bytes = b"") -> Notification:
        msg, _ = self.peer.until(MessageType.NOTIFICATION)
        assert msg is not None, "the DUT closed without a NOTIFICATION"
        n = decode(msg)
        assert (n.code, n.subcode, n.data) == (code, subcode, data)
        assert self.peer.closed_by_peer()
        self.dut.wait(lambda: self.dut.neighbor("hostile")["state"] != "Established")
        return n

    def received(self) -> list[str]:
        return self.dut.received("hostile")

    def wait_received(self, prefix: str) -> None:
        self.dut.wait(lambda: prefix in self.received())

    def close(self) -> None:
        if self.peer is not None:
            self.peer.close()


@pytest.fixture
def hostile(lab):
    h = Hostile(lab)
    yield h
    h.close()


# ------------------------------------------------------------- wire helpers

def attr(flags: int, code: int, value: bytes) -> bytes:
    if flags & 0x10:
        return bytes((flags, code)) + struct.pack("!H", len(value)) + value
    return bytes((flags, code, len(value))) + value


ORIGIN = attr(0x40, 1, b"\x00")
AS_PATH = attr(0x40, 2, b"")  # iBGP: empty
NEXT_HOP = attr(0x40, 3, socket.inet_aton(HOSTILE))
LOCAL_PREF = attr(0x40, 5, struct.pack("!I", 100))
GOOD = ORIGIN + AS_PATH + NEXT_HOP + LOCAL_PREF


def v4(prefix: str) -> bytes:
    addr, plen = prefix.split("/")
    plen = int(plen)
    return bytes((plen,)) + socket.inet_aton(addr)[:(plen + 7) // 8]


def update(attrs: bytes = b"", nlri: bytes = b"", withdrawn: bytes = b"") -> bytes:
    body = struct.pack("!H", len(withdrawn)) + withdrawn + struct.pack("!H", len(attrs)) + attrs + nlri
    return header(19 + len(body), MessageType.UPDATE) + body


def announce(h: Hostile, prefix: str, attrs: bytes = GOOD) -> None:
    h.peer.send(update(attrs, v4(prefix)))
    h.wait_received(prefix)


# -------------------------------------------------------- header errors (§6.1)

def test_bad_marker(hostile):
    hostile.establish()
    hostile.peer.send(header(19, MessageType.KEEPALIVE, marker=b"\x00" * 16))
    hostile.expect_notification(1, 1)


@pytest.mark.parametrize("length", [18, 0])
def test_length_below_19(hostile, length):
    hostile.establish()
    hostile.peer.send(header(length, MessageType.KEEPALIVE))
    hostile.expect_notification(1, 2, struct.pack("!H", length))


def test_length_above_4096(hostile):
    """Extended messages were not negotiated (the hostile OPEN does not offer them)."""
    hostile.establish()
    hostile.peer.send(header(4097, MessageType.UPDATE) + bytes(4078))
    hostile.expect_notification(1, 2, struct.pack("!H", 4097))


@pytest.mark.parametrize("mtype,length", [(MessageType.OPEN, 28), (MessageType.UPDATE, 22),
                                          (MessageType.NOTIFICATION, 20), (MessageType.ROUTE_REFRESH, 22)])
def test_length_too_short_for_the_type(hostile, mtype, length):
    hostile.establish()
    hostile.peer.send(header(length, mtype) + bytes(length - 19))
    hostile.expect_notification(1, 2, struct.pack("!H", length))


def test_unknown_message_type(hostile):
    hostile.establish()
    hostile.peer.send(header(19, 9))
    hostile.expect_notification(1, 3, b"\x09")


def test_keepalive_with_a_body(hostile):
    hostile.establish()
    hostile.peer.send(header(20, MessageType.KEEPALIVE) + b"\x00")
    hostile.expect_notification(1, 2, struct.pack("!H", 20))


# ------------------------------------------------------------ OPEN errors (§6.2)

def test_open_version_3(hostile):
    hostile.connect()
    hostile.peer.send(encode(Open(DUT_ASN, 9, HOSTILE_ID, CAPS, version=3)))
    hostile.expect_notification(2, 1, b"\x00\x04")  # data: the version we support


def test_open_bad_peer_as(hostile):
    hostile.connect()
    hostile.peer.send(encode(Open.build(64999, 9, HOSTILE_ID, CAPS[:3])))
    hostile.expect_notification(2, 2)


def test_open_hold_time_1(hostile):
    hostile.connect()
    hostile.peer.send(encode(Open(DUT_ASN, 1, HOSTILE_ID, CAPS)))
    hostile.expect_notification(2, 6)


def test_open_zero_bgp_identifier(hostile):
    hostile.connect()
    hostile.peer.send(encode(Open(DUT_ASN, 9, 0, CAPS)))
    hostile.expect_notification(2, 3)


def test_open_own_bgp_identifier_ibgp(hostile):
    hostile.connect()
    hostile.peer.send(encode(Open(DUT_ASN, 9, DUT_ID, CAPS)))
    hostile.expect_notification(2, 3)


def test_open_malformed_capability(hostile):
    """A 4-octet AS capability two bytes long."""
    caps = bytes((65, 2, 0xFC, 0x00))
    body = struct.pack("!BHHIB", 4, DUT_ASN, 9, HOSTILE_ID, 2 + len(caps)) + bytes((2, len(caps))) + caps
    hostile.connect()
    hostile.peer.send(header(19 + len(body), MessageType.OPEN) + body)
    hostile.expect_notification(2, 0)


# ------------------------------------------------- UPDATE errors (RFC 7606)

def _withdraw_case(hostile, bad_attrs: bytes) -> None:
    """A prefix installed, then re-announced by a bad UPDATE together with a
    new one: both must be gone, the session up; a later good UPDATE proves the
    bad one was processed."""
    hostile.establish()
    announce(hostile, "10.1.0.0/24")
    notes = hostile.dut.neighbor("hostile")["messages"]["sent"].get("notification", 0)
    hostile.peer.send(update(bad_attrs, v4("10.1.0.0/24") + v4("10.2.0.0/24")))
    announce(hostile, "10.9.0.0/24")
    got = hostile.received()
    assert "10.1.0.0/24" not in got and "10.2.0.0/24" not in got
    n = hostile.dut.neighbor("hostile")
    assert n["state"] == "Established"
    assert n["messages"]["sent"].get("notification", 0) == notes


def test_attribute_length_overruns_the_attribute_list(hostile):
    """RFC 7606 §4: treat-as-withdraw, the total length is trusted."""
    _withdraw_case(hostile, GOOD + bytes((0x80, 4, 10)) + b"\x00\x00\x00\x05")


def test_total_attribute_length_overruns_the_message(hostile):
    """The NLRI cannot be located: Malformed Attribute List (3/1), reset."""
    hostile.establish()
    body = struct.pack("!HH", 0, len(GOOD) + 20) + GOOD
    hostile.peer.send(header(19 + len(body), MessageType.UPDATE) + body)
    hostile.expect_notification(3, 1)


@pytest.mark.parametrize("missing", ["ORIGIN", "AS_PATH", "NEXT_HOP"])
def test_missing_well_known_attribute(hostile, missing):
    attrs = {"ORIGIN": ORIGIN, "AS_PATH": AS_PATH, "NEXT_HOP": NEXT_HOP}
    del attrs[missing]
    _withdraw_case(hostile, b"".join(attrs.values()) + LOCAL_PREF)


def test_duplicate_attribute_keeps_the_first(hostile):
    """RFC 7606 §3(g): all but the first occurrence are discarded; the route stays."""
    hostile.establish()
    med = lambda v: attr(0x80, 4, struct.pack("!I", v))  # noqa: E731
    announce(hostile, "10.3.0.0/24", GOOD + med(5) + med(7))
    rows = hostile.dut.ctl("routes", family="ipv4", direction="received", peer="hostile")["routes"]
    row = next(r for r in rows if r["prefix"] == "10.3.0.0/24")
    assert row["med"] == 5


def test_bad_attribute_flags(hostile):
    """ORIGIN marked optional: Attribute Flags Error, handled as ORIGIN malformed (§3(c), §7.1)."""
    _withdraw_case(hostile, attr(0xC0, 1, b"\x00") + AS_PATH + NEXT_HOP + LOCAL_PREF)


def test_malformed_as_path(hostile):
    """A segment claiming three ASNs but carrying two (§7.2): treat-as-withdraw."""
    path = attr(0x40, 2, bytes((2, 3)) + struct.pack("!II", 64512, 64513))
    _withdraw_case(hostile, ORIGIN + path + NEXT_HOP + LOCAL_PREF)


def test_nlri_prefix_length_33(hostile):
    """RFC 7606 §5.3: NLRI that cannot be parsed resets the session (3/10)."""
    hostile.establish()
    hostile.peer.send(update(GOOD, b"\x21" + bytes(5)))
    hostile.expect_notification(3, 10)


def test_ipv6_prefix_length_129(hostile):
    mp = attr(0x90, 14, struct.pack("!HBB", 2, 1, 16) + bytes(15) + b"\x01" + b"\x00" + b"\x81" + bytes(17))
    hostile.establish()
    hostile.peer.send(update(mp + ORIGIN + AS_PATH + LOCAL_PREF))
    hostile.expect_notification(3, 10)


def test_truncated_nlri(hostile):
    hostile.establish()
    hostile.peer.send(update(GOOD, v4("10.4.0.0/24") + b"\x18\x0a\x05"))
    hostile.expect_notification(3, 10)


# ------------------------------------------------- FSM errors (RFC 6608)

def test_open_while_established(hostile):
    hostile.establish()
    hostile.peer.send(encode(Open(DUT_ASN, 9, HOSTILE_ID, CAPS)))
    hostile.expect_notification(5, 3)


def test_update_in_openconfirm(hostile):
    hostile.connect()
    hostile.peer.send(encode(Open(DUT_ASN, 9, HOSTILE_ID, CAPS)))
    ka, _ = hostile.peer.until(MessageType.KEEPALIVE)
    assert ka is not None
    hostile.peer.send(update(GOOD, v4("10.6.0.0/24")))
    hostile.expect_notification(5, 2)


def test_keepalive_in_opensent(hostile):
    hostile.connect()
    hostile.peer.send(KEEPALIVE_BYTES)
    hostile.expect_notification(5, 1)


def test_second_connection_while_established(hostile, lab):
    """RFC 4271 §6.8: the established session wins; the new connection gets Cease 6/7."""
    hostile.establish()
    second = RawPeer(HOSTILE, lab[2])
    try:
        msg, _ = second.until(MessageType.NOTIFICATION)
        assert msg is not None and decode(msg) == Notification(6, 7)
        assert second.closed_by_peer()
    finally:
        second.close()
    hostile.peer.send(KEEPALIVE_BYTES)
    assert hostile.dut.neighbor("hostile")["state"] == "Established"


def test_silent_after_established_hold_timer(hostile):
    """Hold time 3 offered: three seconds without a message -> Hold Timer Expired (4/0)."""
    hostile.establish(encode(Open(DUT_ASN, 3, HOSTILE_ID, CAPS)))
    hostile.expect_notification(4, 0)


# ----------------------------------------------------------------- floods

def test_keepalive_flood(hostile):
    """50,000 KEEPALIVEs in one burst: all counted, the session stays up."""
    hostile.establish()
    before = hostile.dut.neighbor("hostile")["messages"]["received"].get("keepalive", 0)
    hostile.peer.send(KEEPALIVE_BYTES * 50_000)
    hostile.dut.wait(lambda: hostile.dut.neighbor("hostile")["messages"]["received"].get("keepalive", 0)
                     >= before + 50_000)
    assert hostile.dut.neighbor("hostile")["state"] == "Established"


def test_update_flood(hostile):
    """5,000 UPDATEs of one /32 each in one burst: all installed, the session stays up."""
    hostile.establish()
    msgs = b"".join(update(GOOD, bytes((32, 10, 5, i >> 8, i & 0xFF))) for i in range(5000))
    hostile.peer.send(msgs)
    hostile.dut.wait(lambda: hostile.dut.neighbor("hostile")["prefixes"]["received"] == 5000)
    assert hostile.dut.neighbor("hostile")["state"] == "Established"


# ------------------------------------------------------- stuck peers (timers)

def test_peer_never_sends_open(hostile):
    """The DUT waits in OpenSent (its hold is 240 s: the expiry is tested on
    the machine, test_machine_limits.py); meanwhile the healthy session keeps
    going (checked by the fixture) and the DUT answers queries."""
    hostile.connect()
    for _ in range(50):  # the DUT answers every query and the session stays in OpenSent
        assert hostile.dut.neighbor("hostile")["state"] == "OpenSent"


def test_peer_stops_reading(hostile):
    """A peer that never reads (4 KB receive buffer) and sends 200,000
    ROUTE-REFRESH requests, each answered with the whole Adj-RIB-Out: the
    DUT's writes block (14 MB of answers would be due), the session stays
    up (the 8-minute Send Hold Timer is tested on the machine, test_machine_limits.py), the
    healthy session is unaffected, and the DUT does not queue one answer per
    request: while blocked, requests are coalesced and answered when writing
    resumes."""
    hostile.establish(rcvbuf=4096)
    dut = hostile.dut
    before = dut.neighbor("hostile")["messages"]
    rr = encode(RouteRefresh(1, 1, 0))
    for _ in range(10):
        hostile.peer.send(rr * 20_000)
    dut.wait(lambda: dut.neighbor("hostile")["messages"]["received"].get("route_refresh", 0)
             >= before["received"].get("route_refresh", 0) + 200_000, timeout=30)
    after = dut.neighbor("hostile")["messages"]
    written = after["sent"]["update"] - before["sent"]["update"]
    assert written < 100_000, f"{written} UPDATEs written for 200,000 requests to a peer that does not read"
    assert dut.neighbor("hostile")["state"] == "Established"


# ------------------------------------------------- unconfigured addresses

def test_thousands_of_connections_from_unconfigured_addresses(lab):
    """2,000 connections from 127.0.5.1-250: each is closed without a byte
    (no OPEN); the DUT keeps answering and the healthy session is untouched."""
    dut, _, port, _ = lab
    for i in range(2000):
        s = socket.socket()
        s.settimeout(5.0)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.bind((f"127.0.5.{1 + i % 250}", 0))
            s.connect((DUT, port))
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            assert data == b"", f"connection {i} got {data[:19].hex()}"
        finally:
            s.close()
        if i % 500 == 0:
            assert dut.ctl("summary")["peers"]
    assert dut.ctl("health") is not None
