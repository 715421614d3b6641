"""Per-peer socket options: TCP-MD5, SO_BINDTODEVICE, TTL/GTSM, source bind.

Everything here is a thin wrapper over ``setsockopt`` with the structure
layouts the Linux kernel expects; a failure names the peer setting that
caused it (:class:`SockOptError`) instead of surfacing a bare errno.

* TCP_MD5SIG (RFC 2385): ``struct tcp_md5sig`` is a ``sockaddr_storage``
  (128 bytes) holding the peer address, then flags (u8), prefix length (u8),
  key length (u16), 4 bytes of padding and an 80-byte key.  The key is set on
  the connecting socket *and* on the listening socket (the kernel checks
  segments of incoming connections against the listener's keys).  On an IPv6
  dual-stack listener an IPv4 peer's key is keyed by its IPv4-mapped address.
* SO_BINDTODEVICE: a missing device (ENODEV) is a :class:`SockOptError` for
  that peer, never a crash.
* TTL: eBGP 1 unless multihop, iBGP and multihop 255 (IP_TTL or
  IPV6_UNICAST_HOPS); GTSM (RFC 5082) sends 255 and drops anything below
  IP_MINTTL / IPV6_MINHOPCOUNT 255.  On the passive side TTL and minimum TTL
  are set on the accepted socket (the listener is shared by peers with
  different rules), so the TCP handshake itself is not TTL-filtered.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
import struct

TCP_MD5SIG = 14
TCP_MD5SIG_MAXKEYLEN = 80
IP_MINTTL = 21
IPV6_MINHOPCOUNT = 73
_SS_SIZE = 128


class SockOptError(OSError):
    """A per-peer socket option could not be applied; the message names it."""


def _sockaddr(family: int, address: str) -> bytes:
    """A ``sockaddr_storage`` for ``address`` as seen by a socket of ``family``."""
    ip = ipaddress.ip_address(address)
    if family == socket.AF_INET6 and ip.version == 4:
        ip = ipaddress.IPv6Address("::ffff:" + str(ip))
    if ip.version == 4:
        raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + ip.packed
    else:
        raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 0, 0) + ip.packed + struct.pack("=I", 0)
    return raw.ljust(_SS_SIZE, b"\0")


def md5sig_struct(family: int, address: str, key: str | bytes | None) -> bytes:
    """The ``struct tcp_md5sig`` bytes; an empty/None key removes the key."""
    k = key.encode() if isinstance(key, str) else (key or b"")
    if len(k) > TCP_MD5SIG_MAXKEYLEN:
        raise SockOptError(errno.EINVAL, f"TCP-MD5 password longer than {TCP_MD5SIG_MAXKEYLEN} bytes")
    return _sockaddr(family, address) + struct.pack("=BBHI", 0, 0, len(k), 0) + k.ljust(TCP_MD5SIG_MAXKEYLEN, b"\0")


def set_md5(sock: socket.socket, address: str, key: str | bytes | None) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig_struct(sock.family, address, key))
    except OSError as e:
        if e.errno == errno.ENOENT and not key:
            return  # removing a key that was never set
        if isinstance(e, SockOptError):
            raise
        raise SockOptError(e.errno, f"cannot set TCP-MD5 password for {address}: {e.strerror}") from None


def bind_device(sock: socket.socket, device: str) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
    except OSError as e:
        if e.errno == errno.ENODEV:
            raise SockOptError(e.errno, f"vrf/device {device!r} does not exist") from None
        raise SockOptError(e.errno, f"cannot bind to device {device!r}: {e.strerror}") from None


def set_ttl(sock: socket.socket, ttl: int, min_ttl: int | None = None) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        if min_ttl:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, min_ttl)
        # IPv4-mapped peers on a dual-stack socket: the kernel sends with the
        # IPv4 TTL and checks their segments against IP_MINTTL only
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            if min_ttl:
                sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, min_ttl)
        except OSError:
            pass
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        if min_ttl:
            sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, min_ttl)


def peer_ttl(ibgp: bool, ebgp_multihop: bool, gtsm: bool) -> tuple[int, int | None]:
    """(TTL to send with, minimum TTL to accept or None)."""
    if gtsm:
        return 255, 255
    if ibgp or ebgp_multihop:
        return 255, None
    return 1, None


def family_of(address: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def connecting_socket(peer_address: str, *, password: str | None = None, device: str | None = None,
                      ttl: int = 1, min_ttl: int | None = None,
                      source_address: str | None = None) -> socket.socket:
    """A non-blocking TCP socket with every per-peer option set, ready to connect."""
    sock = socket.socket(family_of(peer_address), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if device:
            bind_device(sock, device)
        if password:
            set_md5(sock, peer_address, password)
        set_ttl(sock, ttl, min_ttl)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source_address:
            try:
                sock.bind((source_address, 0))
            except OSError as e:
                raise SockOptError(e.errno, f"cannot bind source address {source_address}: {e.strerror}") from None
        return sock
    except BaseException:
        sock.close()
        raise


def listening_socket(host: str, port: int, device: str | None = None, backlog: int = 64) -> socket.socket:
    """A non-blocking listening socket; ``"::"`` is dual-stack."""
    fam = family_of(host)
    sock = socket.socket(fam, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if device:
            bind_device(sock, device)
        sock.bind((host, port))
        sock.listen(backlog)
        return sock
    except BaseException:
        sock.close()
        raise
