"""Which peer an incoming connection is for (``Listener.match``): by address, a link-local one
with its zone, and for a BGP unnumbered peer (spec.interface) any link-local source on that
interface that is its router — as FRR's ``neighbor IF interface`` accepts as well as dials."""
from __future__ import annotations

import pytest

from speakerd.fsm import SessionSettings
from speakerd.net.listener import Listener
from speakerd.net.peer import PeerTransport


def transport(**kw) -> PeerTransport:
    return PeerTransport(SessionSettings(local_asn=64500, peer_asn=64501, router_id=1, **kw))


@pytest.fixture
def peers(monkeypatch):
    # no RA-learned kernel routes in the unit environment: only what the advertiser heard
    monkeypatch.setattr("speakerd.net.peer.discover_router", lambda iface: None)
    lst = Listener("::", 0)
    by_addr = transport(name="v4", peer_address="192.0.2.1")
    zoned_a = transport(name="zoned-a", peer_address="fe80::1%eth1")
    zoned_b = transport(name="zoned-b", peer_address="fe80::1%eth2")
    unnumbered = transport(name="tor", interface="eth3")
    for p in (by_addr, zoned_a, zoned_b, unnumbered):
        lst.register(p)
    return lst, by_addr, zoned_a, zoned_b, unnumbered


def test_by_address_and_by_zone(peers):
    lst, by_addr, zoned_a, zoned_b, _ = peers
    assert lst.match("::ffff:192.0.2.1") == (by_addr, "")
    # one link-local address on two interfaces: two peers, told apart by the zone
    assert lst.match("fe80::1%eth1") == (zoned_a, "")
    assert lst.match("fe80::1%eth2") == (zoned_b, "")
    assert lst.match("fe80::1%eth9") == (None, "not a configured peer")
    assert lst.match("192.0.2.9") == (None, "not a configured peer")


def test_unnumbered_peer_accepts_its_router_on_its_interface(peers):
    lst, *_, tor = peers
    # nothing learned yet: the link-local neighbour on that interface is the router (noted)
    assert lst.match("fe80::abcd%eth3") == (tor, "no router learned on eth3 yet: taking the neighbour "
                                                  "that connected for it")
    # learned from its router advertisements: only that address
    tor.advertiser.router = "fe80::abcd"
    assert lst.match("FE80:0:0::ABCD%eth3") == (tor, "")
    assert lst.match("fe80::beef%eth3") == (None, "not the router learned on eth3 (fe80::abcd)")
    # a global address, or a link-local one on another interface, is not the unnumbered peer
    assert lst.match("2001:db8::abcd") == (None, "not a configured peer")
    assert lst.match("fe80::abcd%eth4") == (None, "not a configured peer")


def test_unnumbered_peer_uses_the_listener_until_unregistered(peers):
    lst, by_addr, zoned_a, zoned_b, tor = peers
    for p in (by_addr, zoned_a, zoned_b):
        lst.unregister(p)
    assert not lst.empty  # the unnumbered peer still listens on it
    lst.unregister(tor)
    assert lst.empty
    assert lst.match("fe80::abcd%eth3") == (None, "not a configured peer")


def test_unnumbered_peer_with_a_session_up_takes_no_other_neighbour(peers, monkeypatch):
    """No router learned (no RA, no RA-learned route) but a session is up with fe80::abcd: a
    second link-local host on that link is not let into the collision rules in its place."""
    from speakerd.fsm.actions import State
    lst, *_, tor = peers
    tor.remote_address = "fe80::abcd%eth3"
    monkeypatch.setattr(PeerTransport, "state", property(lambda self: State.ESTABLISHED))
    assert lst.match("fe80::abcd%eth3") == (tor, "")
    assert lst.match("fe80::beef%eth3") == (None, "not the router of the session up on eth3 (fe80::abcd)")
    # once the session is down, the neighbour that connects is taken again
    monkeypatch.setattr(PeerTransport, "state", property(lambda self: State.ACTIVE))
    peer, note = lst.match("fe80::beef%eth3")
    assert peer is tor and "no router learned on eth3" in note


class _FakeConn:
    def __init__(self, remote: str) -> None:
        self.remote = remote
        self.aborted = False
        outer = self

        class _T:
            def abort(self) -> None:
                outer.aborted = True
        self.transport = _T()

    def remote_zoned(self) -> str:
        return self.remote


def test_an_unverified_neighbour_taken_for_the_router_is_logged_once(peers, monkeypatch, caplog):
    lst, *_, tor = peers
    taken = []
    monkeypatch.setattr(tor, "accept_connection", taken.append)
    caplog.set_level("WARNING", logger="speakerd.listener")
    for _ in range(3):
        lst._on_connection(_FakeConn("fe80::abcd%eth3"))
    assert len(taken) == 3
    logged = [r.getMessage() for r in caplog.records if "fe80::abcd%eth3" in r.getMessage()]
    assert len(logged) == 1, logged
    assert "peer tor" in logged[0] and "no router learned on eth3" in logged[0]
    # a verified router is not worth a warning
    tor.advertiser.router = "fe80::abcd"
    caplog.clear()
    lst._on_connection(_FakeConn("fe80::abcd%eth3"))
    assert len(taken) == 4 and not caplog.records
