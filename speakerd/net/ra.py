"""Router advertisements for BGP unnumbered: how the router learns our link-local address.

An unnumbered peer (BGPPeer ``spec.interface``) has no configured address on
either side.  Each side learns the other's IPv6 link-local address from its
router advertisements, as FRR does (zebra passes the source address of an RA
to bgpd, which then accepts and opens the session).  speakerd does the same
on the same raw socket: it sends RAs so the router learns our address and
records the link-local source of the router's RAs (:attr:`RouterAdvertiser.router`).
That works whatever the kernel does with RAs (a node with IPv6 forwarding on
and ``accept_ra`` 1 ignores them); the kernel's RA-learned routes
(:func:`.ifaddr.discover_router`) are the fallback before the first RA arrives.

The RAs say "not a default router" (router lifetime 0) and carry no prefix:
hosts on the link change nothing because of them.  They go to all-nodes
(ff02::1) with hop limit 255 (RFC 4861 §6.1.2 checks it), every
``interval`` seconds and once at start; the kernel fills in the checksum.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct

log = logging.getLogger("speakerd.ra")

ND_ROUTER_ADVERT = 134
ICMP6_FILTER = 1  # <netinet/icmp6.h>, level IPPROTO_ICMPV6: a set bit blocks that type
ALL_NODES = "ff02::1"
DEFAULT_INTERVAL = 10.0  # seconds, FRR's RA interval on BGP unnumbered interfaces


def router_advertisement(mac: bytes | None) -> bytes:
    """An RA with router lifetime 0 and, when known, the source link-layer address option."""
    # type, code, checksum (kernel), cur hop limit, flags, router lifetime, reachable, retrans
    msg = struct.pack("!BBHBBHII", ND_ROUTER_ADVERT, 0, 0, 0, 0, 0, 0, 0)
    if mac and len(mac) == 6:
        msg += bytes((1, 1)) + mac  # option 1: source link-layer address, 8 bytes
    return msg


def only_router_advertisements() -> bytes:
    """The ICMP6_FILTER value passing only router advertisements."""
    words = [0xFFFFFFFF] * 8
    words[ND_ROUTER_ADVERT >> 5] &= ~(1 << (ND_ROUTER_ADVERT & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)


def advertising_router(data: bytes, source: str) -> str | None:
    """The router's link-local address if ``data`` from ``source`` is a router advertisement
    a BGP peer can be found by (RFC 4861 §6.1.2: from a link-local address)."""
    if len(data) < 16 or data[0] != ND_ROUTER_ADVERT or data[1] != 0:
        return None
    addr = source.split("%", 1)[0]
    try:
        return addr if ipaddress.IPv6Address(addr).is_link_local else None
    except ValueError:
        return None


def interface_mac(interface: str) -> bytes | None:
    try:
        with open(f"/sys/class/net/{interface}/address", encoding="ascii") as f:
            text = f.read().strip()
        return bytes.fromhex(text.replace(":", ""))
    except (OSError, ValueError):
        return None


class RouterAdvertiser:
    """Sends RAs on one interface while started (see the module docstring)."""

    def __init__(self, interface: str, interval: float = DEFAULT_INTERVAL) -> None:
        self.interface = interface
        self.interval = interval
        self.sent = 0
        self.router: str | None = None  # the link-local source of the last RA received
        self.last_error = ""
        self._sock: socket.socket | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._sock is not None:
            return
        try:
            index = socket.if_nametoindex(self.interface)
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        except OSError as e:
            self.last_error = f"cannot send router advertisements on {self.interface}: {e}"
            log.error("%s", self.last_error)
            return
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)  # not our own
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, only_router_advertisements())
        except OSError as e:
            sock.close()
            self.last_error = f"cannot send router advertisements on {self.interface}: {e}"
            log.error("%s", self.last_error)
            return
        self._sock, self._index = sock, index
        asyncio.get_running_loop().add_reader(sock.fileno(), self._receive)
        self._send()

    def _receive(self) -> None:
        while self._sock is not None:
            try:
                data, addr = self._sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("router advertisements on %s: %s", self.interface, e)
                return
            router = advertising_router(data, addr[0])
            if router is not None and router != self.router:
                log.info("router advertisement on %s from %s", self.interface, router)
                self.router = router

    def _send(self) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto(router_advertisement(interface_mac(self.interface)),
                              (ALL_NODES, 0, 0, self._index))
            self.sent += 1
            self.last_error = ""
        except OSError as e:  # the interface is down or has no link-local address yet
            if not self.last_error:
                log.warning("router advertisement on %s failed: %s", self.interface, e)
            self.last_error = str(e)
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._send)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            except RuntimeError:  # no running loop (interpreter shutdown)
                pass
            self._sock.close()
            self._sock = None


__all__ = ["RouterAdvertiser", "router_advertisement", "advertising_router"]
