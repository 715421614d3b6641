"""Two PeerTransport objects over loopback (127.0.0.0/8 only): sessions, routes, MD5, rejects."""
from __future__ import annotations

import asyncio
import socket

import pytest

from speakerd.fsm import SessionSettings, State
from speakerd.fsm.actions import NotificationReceived
from speakerd.net.listener import Listener
from speakerd.net.peer import PeerTransport
from speakerd.policy.types import RouteAttrs
from speakerd.wire.nlri import str_to_key

A_IP, B_IP = "127.0.0.1", "127.0.0.2"
TIMEOUT = 10.0


class Watch:
    """on_event observer: await a condition re-checked on every event."""

    def __init__(self) -> None:
        self.events: list = []
        self.changed = asyncio.Event()

    def __call__(self, peer, event) -> None:
        self.events.append(event)
        self.changed.set()

    async def until(self, cond, timeout: float = TIMEOUT) -> None:
        async def loop():
            while not cond():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(loop(), timeout)


def settings(name, peer_ip, port, local_asn, peer_asn, rid, **kw) -> SessionSettings:
    kw.setdefault("connect_retry", 1.0)
    return SessionSettings(name=name, peer_address=peer_ip, peer_port=port, local_asn=local_asn,
                        peer_asn=peer_asn, router_id=rid, **kw)


class Lab:
    """A connects out from 127.0.0.1; B listens passively on 127.0.0.2."""

    def __init__(self, a_kw=None, b_kw=None, tap=None):
        self.a_kw, self.b_kw, self.tap = a_kw or {}, b_kw or {}, tap
        self.wa, self.wb = Watch(), Watch()

    async def __aenter__(self):
        self.listener = Listener(B_IP, 0)
        await self.listener.start()
        port = self.listener.bound_port
        self.a = PeerTransport(settings("b", B_IP, port, 65001, 65002, 0x01010101, source_address=A_IP, **self.a_kw),
                      on_event=self.wa, on_message=self.tap)
        self.b = PeerTransport(settings("a", A_IP, 179, 65002, 65001, 0x02020202, passive=True, **self.b_kw),
                      on_event=self.wb)
        self.listener.register(self.b)
        self.b.start()
        self.a.start()
        return self

    async def __aexit__(self, *exc):
        await self.a.stop("test over")
        await self.b.stop("test over")
        await self.listener.close()

    async def established(self):
        await self.wa.until(lambda: self.a.state == State.ESTABLISHED)
        await self.wb.until(lambda: self.b.state == State.ESTABLISHED)


def rib_keys(peer) -> set:
    return {(afi, k) for afi, t in peer.adj_rib_in.tables.items() for k in t}


ROUTES = {str_to_key("198.51.100.7/32"): RouteAttrs(communities=(0xFDE80064,)),
          str_to_key("2001:db8::7/128"): RouteAttrs()}


async def test_peers_establish_and_exchange_routes():
    async with Lab() as lab:
        lab.a.set_routes(ROUTES)
        await lab.established()
        await lab.wb.until(lambda: rib_keys(lab.b) == set(ROUTES) and lab.b.adj_rib_in.eor == {1, 2})
        attrs, _ = lab.b.adj_rib_in.get(*str_to_key("198.51.100.7/32"))
        assert attrs.next_hop == 0x7F000001 and attrs.as_path == ((2, (65001,)),)
        _, nh6 = lab.b.adj_rib_in.get(*str_to_key("2001:db8::7/128"))
        assert nh6 == bytes(10) + b"\xff\xff" + bytes((127, 0, 0, 1))  # IPv4-mapped next hop
        assert lab.a.local_address == A_IP and lab.a.remote_address == B_IP
        assert lab.b.negotiated.peer_id == 0x01010101
        assert [h.new for h in lab.a.history][-1] == State.ESTABLISHED
        assert lab.a.uptime is not None


async def test_set_routes_sends_only_the_difference():
    sent = []
    async with Lab(tap=lambda d, ts, raw: sent.append((d, raw[18]))) as lab:
        lab.a.set_routes(ROUTES)
        await lab.established()
        await lab.wb.until(lambda: rib_keys(lab.b) == set(ROUTES))
        n_updates = sum(1 for d, t in sent if d == "out" and t == 2)
        assert n_updates == 4  # one per family + two End-of-RIB
        new = dict(ROUTES)
        new[str_to_key("198.51.100.8/32")] = RouteAttrs()
        del new[str_to_key("2001:db8::7/128")]
        lab.a.set_routes(new)
        await lab.wb.until(lambda: rib_keys(lab.b) == set(new))
        assert sum(1 for d, t in sent if d == "out" and t == 2) - n_updates == 2  # 1 announce, 1 withdraw
        assert any(d == "in" for d, _ in sent)  # the tap sees received messages too


async def test_stop_sends_cease_with_message():
    async with Lab() as lab:
        await lab.established()
        await lab.a.stop("planned maintenance")
        await lab.wb.until(lambda: lab.b.last_notification_received is not None)
        n = lab.b.last_notification_received
        assert (n.code, n.subcode, n.shutdown_message) == (6, 2, "planned maintenance")
        assert lab.a.state == State.IDLE and lab.b.state == State.ACTIVE
        assert any(isinstance(e, NotificationReceived) for e in lab.wb.events)


async def test_md5_matching_keys_establish():
    async with Lab({"password": "s3cret"}, {"password": "s3cret"}) as lab:
        await lab.established()


async def test_md5_mismatching_keys_do_not_establish():
    async with Lab({"password": "s3cret"}, {"password": "other"}) as lab:
        with pytest.raises(asyncio.TimeoutError):
            await lab.wa.until(lambda: lab.a.state in (State.OPENSENT, State.ESTABLISHED), timeout=2.5)
        assert lab.b.state == State.ACTIVE


async def test_unconfigured_address_is_closed_without_open():
    async with Lab() as lab:
        await lab.established()
        loop = asyncio.get_running_loop()
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind(("127.0.0.3", 0))
            await loop.sock_connect(s, (B_IP, lab.listener.bound_port))
            try:
                data = await asyncio.wait_for(loop.sock_recv(s, 4096), TIMEOUT)
            except ConnectionResetError:
                data = b""
            assert data == b""
        finally:
            s.close()
        assert lab.listener.rejected == 1
        assert lab.b.state == State.ESTABLISHED


async def test_incoming_while_established_is_refused():
    async with Lab() as lab:
        await lab.established()
        loop = asyncio.get_running_loop()
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((A_IP, 0))
            await loop.sock_connect(s, (B_IP, lab.listener.bound_port))
            data = await asyncio.wait_for(loop.sock_recv(s, 4096), TIMEOUT)
            assert data[18:21] == bytes((3, 6, 7))  # NOTIFICATION Cease/Collision Resolution
        finally:
            s.close()
        assert lab.b.state == State.ESTABLISHED


async def test_silent_peer_does_not_block_another():
    # a TCP listener that accepts and never speaks BGP
    silent = socket.socket()
    silent.bind(("127.0.0.4", 0))
    silent.listen(1)
    w = Watch()
    stuck = PeerTransport(settings("silent", "127.0.0.4", silent.getsockname()[1], 65001, 65004, 0x01010101,
                          source_address=A_IP), on_event=w)
    try:
        stuck.start()
        await w.until(lambda: stuck.state == State.OPENSENT)
        async with Lab() as lab:
            await lab.established()
        assert stuck.state == State.OPENSENT
    finally:
        await stuck.stop()
        silent.close()


async def test_reset_reconnects():
    async with Lab() as lab:
        await lab.established()
        lab.a.reset("config changed")
        await lab.wb.until(lambda: lab.b.last_notification_received is not None)
        assert lab.b.last_notification_received.subcode == 4
        await lab.established()


async def test_ipv6_session_over_loopback_sends_ipv4_routes_only_with_next_hop4():
    listener = Listener("::1", 0)
    await listener.start()
    wa, wb = Watch(), Watch()
    a = PeerTransport(settings("b", "::1", listener.bound_port, 65001, 65002, 1, next_hop4="192.0.2.9"), on_event=wa)
    b = PeerTransport(settings("a", "::1", 179, 65002, 65001, 2, passive=True), on_event=wb)
    listener.register(b)
    try:
        a.set_routes(ROUTES)
        b.start()
        a.start()
        await wb.until(lambda: rib_keys(b) == set(ROUTES) and b.adj_rib_in.eor == {1, 2})
        attrs, _ = b.adj_rib_in.get(*str_to_key("198.51.100.7/32"))
        assert attrs.next_hop == 0xC0000209
        _, nh6 = b.adj_rib_in.get(*str_to_key("2001:db8::7/128"))
        assert nh6 == bytes(15) + b"\x01"
    finally:
        await a.stop()
        await b.stop()
        await listener.close()


async def test_incoming_connection_wins_over_a_connect_attempt_still_in_flight():
    # B has the higher BGP identifier and its own connect attempt is stuck
    # (SYNs dropped on the way).  There is no second BGP connection to compare
    # with (RFC 4271 §6.8 compares connections in OpenSent/OpenConfirm), so A's
    # incoming connection must be kept, not dumped with Cease 6/7 in favour of
    # an attempt that may never complete.
    listener = Listener(B_IP, 0)
    await listener.start()
    wa, wb = Watch(), Watch()
    a = PeerTransport(settings("b", B_IP, listener.bound_port, 65001, 65002, 0x01010101, source_address=A_IP),
             on_event=wa)
    b = PeerTransport(settings("a", A_IP, 179, 65002, 65001, 0x02020202, connect_retry=30.0), on_event=wb)

    async def connect_never_completes(machine, link):
        await asyncio.Event().wait()

    b._connect = connect_never_completes
    listener.register(b)
    try:
        b.start()
        assert b.state == State.CONNECT
        a.start()
        await wa.until(lambda: a.state == State.ESTABLISHED or a.last_notification_received is not None)
        assert a.last_notification_received is None
        await wb.until(lambda: b.state == State.ESTABLISHED)
    finally:
        await a.stop()
        await b.stop()
        await listener.close()
