"""Interface addresses for next-hop selection, read from /proc (no netlink, no sockets).

An IPv6 route sent over an IPv4 session needs an IPv6 next hop.  Like FRR,
speakerd uses a global IPv6 address of the interface toward the peer; only
when that interface has none does the next hop fall back to the IPv4-mapped
``::ffff:a.b.c.d`` (which BIRD 2 treats as a withdraw).  The interface toward
the peer is the bound device (``vrf``) when there is one, else the interface
holding the connection's local IPv4 address (as FRR picks it), else the
interface of the longest IPv4 route to the peer in ``/proc/net/route``.

The parsers take the file text so they are tested without a namespace; only
:func:`interface_ipv6_toward` reads the files.
"""
from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
import sys

ROUTE_FILE = "/proc/net/route"
IF_INET6_FILE = "/proc/net/if_inet6"

_SCOPE_GLOBAL = 0x00
_SCOPE_LINK = 0x20
# ifa_flags that make an address unusable as a next hop
_IFA_F_DADFAILED = 0x08
_IFA_F_DEPRECATED = 0x20
_IFA_F_TENTATIVE = 0x40
_UNUSABLE = _IFA_F_DADFAILED | _IFA_F_TENTATIVE


def parse_route_table(text: str) -> list[tuple[int, int, str]]:
    """/proc/net/route → [(network int, prefix length, interface)] of the up routes."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            # the kernel prints each __be32 as a host-order integer
            dest = int.from_bytes(int(f[1], 16).to_bytes(4, sys.byteorder), "big")
            mask = int.from_bytes(int(f[7], 16).to_bytes(4, sys.byteorder), "big")
            flags = int(f[3], 16)
        except ValueError:
            continue
        if not flags & 0x1:  # RTF_UP
            continue
        out.append((dest, bin(mask).count("1"), f[0]))
    return out


def interface_toward(peer: str, routes: list[tuple[int, int, str]]) -> str | None:
    """The interface of the longest route matching the IPv4 address ``peer``."""
    addr = int(ipaddress.IPv4Address(peer))
    best: tuple[int, str] | None = None
    for net, plen, dev in routes:
        mask = ((1 << plen) - 1) << (32 - plen) if plen else 0
        if addr & mask == net & mask and (best is None or plen > best[0]):
            best = (plen, dev)
    return best[1] if best else None


def parse_if_inet6(text: str) -> list[tuple[str, str, int, int]]:
    """/proc/net/if_inet6 → [(interface, address text, scope, flags)] in file order."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) != 6 or len(f[0]) != 32:
            continue
        try:
            addr = str(ipaddress.IPv6Address(bytes.fromhex(f[0])))
            scope, flags = int(f[3], 16), int(f[4], 16)
        except ValueError:
            continue
        out.append((f[5], addr, scope, flags))
    return out


def global_ipv6(interface: str, addrs: list[tuple[str, str, int, int]]) -> str | None:
    """A usable global IPv6 address of ``interface``: not tentative or failed, preferred
    (not deprecated) ones first."""
    usable = [(bool(flags & _IFA_F_DEPRECATED), a) for dev, a, scope, flags in addrs
              if dev == interface and scope == _SCOPE_GLOBAL and not flags & _UNUSABLE]
    return min(usable, key=lambda x: x[0])[1] if usable else None


def link_local_ipv6(interface: str, addrs: list[tuple[str, str, int, int]]) -> str | None:
    """The link-local address of ``interface`` (for unnumbered peering), if usable."""
    return next((a for dev, a, scope, flags in addrs
                 if dev == interface and scope == _SCOPE_LINK and not flags & _UNUSABLE), None)


IPV6_ROUTE_FILE = "/proc/net/ipv6_route"


def parse_ipv6_routes(text: str) -> list[tuple[str, int, str, str]]:
    """/proc/net/ipv6_route → [(destination, prefix length, next hop, interface)]."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) != 10:
            continue
        try:
            dest = str(ipaddress.IPv6Address(bytes.fromhex(f[0])))
            nh = str(ipaddress.IPv6Address(bytes.fromhex(f[4])))
            plen = int(f[1], 16)
        except ValueError:
            continue
        out.append((dest, plen, nh, f[9]))
    return out


def router_link_local(interface: str, routes: list[tuple[str, int, str, str]]) -> str | None:
    """The link-local address of the router on ``interface`` (BGP unnumbered), as the
    kernel learned it from the router's advertisements: the next hop of the default route
    (or, failing that, of any route) via a link-local address on that interface."""
    vias = [(plen != 0, nh) for dest, plen, nh, dev in routes
            if dev == interface and ipaddress.IPv6Address(nh).is_link_local]
    return min(vias)[1] if vias else None


def discover_router(interface: str) -> str | None:
    """The router's link-local address on ``interface`` (see :func:`router_link_local`)."""
    return router_link_local(interface, parse_ipv6_routes(_read(IPV6_ROUTE_FILE)))


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


_SIOCGIFADDR = 0x8915


def interface_of_ipv4(address: str) -> str | None:
    """The interface whose (primary) IPv4 address is ``address`` (SIOCGIFADDR per interface)."""
    want = ipaddress.IPv4Address(address).packed
    try:
        names = [name for _, name in socket.if_nameindex()]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for name in names:
                try:
                    res = fcntl.ioctl(s.fileno(), _SIOCGIFADDR,
                                      struct.pack("256s", name.encode()[:15]))
                except OSError:  # no IPv4 address on it
                    continue
                if res[20:24] == want:  # ifr_name[16], sockaddr_in: family, port, address
                    return name
    except OSError:
        return None
    return None


def loopback_interface(peer: str, local: str | None) -> str | None:
    """``lo`` for a session inside 127.0.0.0/8: those routes live in the kernel's local
    table, which /proc/net/route does not show (the default route's interface would be
    taken for them)."""
    if ipaddress.IPv4Address(peer).is_loopback or (local and ipaddress.IPv4Address(local).is_loopback):
        return "lo"
    return None


def interface_global_ipv6(interface: str) -> str | None:
    """A usable global IPv6 address of ``interface`` (see :func:`global_ipv6`)."""
    return global_ipv6(interface, parse_if_inet6(_read(IF_INET6_FILE)))


def interface_ipv6_toward(peer: str, device: str | None = None,
                          local: str | None = None) -> tuple[str | None, str | None]:
    """(interface toward the IPv4 address ``peer``, its global IPv6 address or None).

    ``device``: the bound device; ``local``: the connection's local IPv4 address."""
    dev = (device or (interface_of_ipv4(local) if local else None)
           or loopback_interface(peer, local)
           or interface_toward(peer, parse_route_table(_read(ROUTE_FILE))))
    if dev is None:
        return None, None
    return dev, global_ipv6(dev, parse_if_inet6(_read(IF_INET6_FILE)))


__all__ = ["parse_route_table", "interface_toward", "parse_if_inet6", "global_ipv6",
           "link_local_ipv6", "interface_of_ipv4", "loopback_interface", "interface_ipv6_toward", "parse_ipv6_routes",
           "router_link_local", "discover_router", "interface_global_ipv6"]
