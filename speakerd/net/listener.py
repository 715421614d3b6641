"""Passive side: one listening socket per (address, port, device), shared by peers.

An incoming connection is matched on its source address; a link-local one
with its zone (the interface the kernel reports as its scope), so one
link-local address on two interfaces is two peers.  A link-local source that is
no configured address but arrives on the interface of a BGP unnumbered peer
(``spec.interface``) is that peer's router, as FRR's ``neighbor IF interface``
both dials and accepts: it is accepted when it is the router learned on that
interface (its router advertisements), or, when none is learned, the router of
the session already up with it; with neither (on the point-to-point link of
unnumbered peering the only neighbour) the neighbour that connects is taken for
the router, and that is logged (a warning, at most once per address per
``LOG_INTERVAL``): a shared segment's other hosts are not told apart.  A connection
from any other address is closed at once (it never sees an OPEN) and logged, at
most once per address per ``LOG_INTERVAL``.  Otherwise it is handed to
:meth:`speakerd.net.peer.PeerTransport.accept_connection`, which decides
(collision rules) whether to keep it.

TCP-MD5 keys are installed on the listening socket for every registered peer
that has a password (the kernel checks the SYN against the listener's keys).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from typing import Coroutine

from ..fsm.actions import State
from .peer import PeerTransport, _Conn
from .sockopts import listening_socket, set_md5

log = logging.getLogger("speakerd.listener")
LOG_INTERVAL = 60.0
_CONNECTED = (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED)  # a connection with the peer is up


def normalize(address: str) -> str:
    """Canonical text; IPv4-mapped IPv6 (from a dual-stack socket) becomes IPv4; a
    link-local address keeps its zone as an interface name (``fe80::1%eth0``), any
    other address loses it."""
    host, _, zone = address.partition("%")
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if zone and ip.is_link_local:
            return f"{ip}%{_zone_name(zone)}"
    return str(ip)


def _zone_name(zone: str) -> str:
    """An interface name for a zone given as a name or as a numeric scope id."""
    if zone.isdigit():
        try:
            return socket.if_indextoname(int(zone))
        except OSError:
            return zone
    return zone


class Listener:
    def __init__(self, host: str = "::", port: int = 179, device: str | None = None) -> None:
        self.host = host
        self.port = port
        self.device = device
        self.peers: dict[str, PeerTransport] = {}  # by normalize(peer address)
        self.interfaces: dict[str, PeerTransport] = {}  # BGP unnumbered peers by interface name
        self.rejected = 0  # connections from unconfigured addresses
        self._server: asyncio.AbstractServer | None = None
        self._sock = None
        self._last_log: dict[str, float] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._sock = listening_socket(self.host, self.port, self.device)
        for peer in self.peers.values():
            self._install_key(peer)
        self._server = await loop.create_server(lambda: _Conn(on_made=self._on_connection), sock=self._sock)

    def close(self) -> Coroutine[None, None, None]:
        """Stop listening now (the port is free when this returns); await the
        result to wait for the server to finish closing.

        Not a coroutine function on purpose: ``create_task(listener.close())``
        followed at once by a new listener on the same port (a reload that
        re-adds the only peer) must not find the old socket still bound."""
        server, self._server = self._server, None
        if server is None:
            return asyncio.sleep(0)
        server.close()
        return server.wait_closed()

    @property
    def bound_port(self) -> int:
        return self._sock.getsockname()[1] if self._sock is not None else self.port

    @property
    def empty(self) -> bool:
        """No peer, by address or by interface, uses this listener."""
        return not self.peers and not self.interfaces

    def register(self, peer: PeerTransport) -> None:
        if peer.settings.interface and not peer.settings.peer_address:
            self.interfaces[peer.settings.interface] = peer  # its router's address is learned
            return
        self.peers[normalize(peer.settings.peer_address)] = peer
        if self._sock is not None:
            self._install_key(peer)

    def unregister(self, peer: PeerTransport) -> None:
        if peer.settings.interface and not peer.settings.peer_address:
            if self.interfaces.get(peer.settings.interface) is peer:
                del self.interfaces[peer.settings.interface]
            return
        key = normalize(peer.settings.peer_address)
        if self.peers.get(key) is peer:
            del self.peers[key]
            if self._sock is not None and peer.settings.password:
                set_md5(self._sock, peer.settings.peer_address, None)

    def _install_key(self, peer: PeerTransport) -> None:
        if peer.settings.password:
            set_md5(self._sock, peer.settings.peer_address, peer.settings.password)

    def match(self, remote: str) -> tuple[PeerTransport | None, str]:
        """The peer a connection from ``remote`` (the socket's peer address, zoned when
        link-local) is for, or None and why not; with a peer, a note when it was taken on
        trust (an unnumbered peer's router not learned yet), else ""."""
        addr = normalize(remote)
        peer = self.peers.get(addr)
        if peer is not None:
            return peer, ""
        host, _, zone = addr.partition("%")
        peer = self.interfaces.get(zone) if zone else None
        if peer is None:
            return None, "not a configured peer"
        router = peer.interface_router()
        if router is not None:
            if ipaddress.ip_address(router) != ipaddress.ip_address(host):
                return None, f"not the router learned on {zone} ({router})"
            return peer, ""
        current = peer.remote_address if peer.state in _CONNECTED else None
        if current:
            current = current.partition("%")[0]
            if ipaddress.ip_address(current) != ipaddress.ip_address(host):
                return None, f"not the router of the session up on {zone} ({current})"
            return peer, ""
        return peer, f"no router learned on {zone} yet: taking the neighbour that connected for it"

    def _on_connection(self, conn: _Conn) -> None:
        remote = conn.remote_zoned()
        peer, why = self.match(remote) if remote else (None, "no peer address")
        if peer is None:
            addr = remote or "?"
            self.rejected += 1
            conn.transport.abort()
            if self._may_log(addr):
                log.warning("rejected BGP connection from %s: %s (%d rejected so far)",
                            addr, why, self.rejected)
            return
        if why and self._may_log(remote):  # an unnumbered peer's router taken unverified
            log.warning("BGP connection from %s accepted for peer %s: %s", remote, peer.name, why)
        peer.accept_connection(conn)

    def _may_log(self, addr: str) -> bool:
        """At most one line per address per LOG_INTERVAL."""
        now = time.monotonic()
        if now - self._last_log.get(addr, -LOG_INTERVAL) < LOG_INTERVAL:
            return False
        self._last_log[addr] = now
        if len(self._last_log) > 1024:
            self._last_log.clear()
        return True
