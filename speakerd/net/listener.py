"""Passive side: one listening socket per (address, port, device), shared by peers.

An incoming connection is matched on its source address.  One from an
address that is not a configured peer is closed at once (it never sees an
OPEN) and logged, at most once per address per ``LOG_INTERVAL``.  Otherwise
it is handed to :meth:`speakerd.net.peer.PeerTransport.accept_connection`, which
decides (collision rules) whether to keep it.

TCP-MD5 keys are installed on the listening socket for every registered peer
that has a password (the kernel checks the SYN against the listener's keys).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import Coroutine

from .peer import PeerTransport, _Conn
from .sockopts import listening_socket, set_md5

log = logging.getLogger("speakerd.listener")
LOG_INTERVAL = 60.0


def normalize(address: str) -> str:
    """Canonical text; IPv4-mapped IPv6 (from a dual-stack socket) becomes IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


class Listener:
    def __init__(self, host: str = "::", port: int = 179, device: str | None = None) -> None:
        self.host = host
        self.port = port
        self.device = device
        self.peers: dict[str, PeerTransport] = {}
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

    def register(self, peer: PeerTransport) -> None:
        if not peer.settings.peer_address:
            return  # an interface (unnumbered) peer: its address is learned, it is dialled out
        self.peers[normalize(peer.settings.peer_address)] = peer
        if self._sock is not None:
            self._install_key(peer)

    def unregister(self, peer: PeerTransport) -> None:
        if not peer.settings.peer_address:
            return
        key = normalize(peer.settings.peer_address)
        if self.peers.get(key) is peer:
            del self.peers[key]
            if self._sock is not None and peer.settings.password:
                set_md5(self._sock, peer.settings.peer_address, None)

    def _install_key(self, peer: PeerTransport) -> None:
        if peer.settings.password:
            set_md5(self._sock, peer.settings.peer_address, peer.settings.password)

    def _on_connection(self, conn: _Conn) -> None:
        _, remote = conn.addresses()
        addr = normalize(remote) if remote else "?"
        peer = self.peers.get(addr)
        if peer is None:
            self.rejected += 1
            conn.transport.abort()
            now = time.monotonic()
            if now - self._last_log.get(addr, -LOG_INTERVAL) >= LOG_INTERVAL:
                self._last_log[addr] = now
                if len(self._last_log) > 1024:
                    self._last_log.clear()
                log.warning("rejected BGP connection from %s: not a configured peer (%d rejected so far)",
                            addr, self.rejected)
            return
        peer.accept_connection(conn)
