"""Socket options: struct layouts, device binding errors, TTL choice."""
from __future__ import annotations

import asyncio
import errno
import socket
import struct

import pytest

from speakerd.fsm import SessionSettings, State
from speakerd.net.listener import Listener, normalize
from speakerd.net.peer import PeerTransport
from speakerd.net.sockopts import (SockOptError, bind_device, connecting_socket, md5sig_struct,
                                   peer_ttl, set_md5)

from test_net_peer import A_IP, B_IP, Watch, settings


def test_md5sig_struct_layout_ipv4_and_ipv6():
    raw = md5sig_struct(socket.AF_INET, "192.0.2.1", "key")
    assert len(raw) == 128 + 8 + 80
    assert struct.unpack_from("=H", raw)[0] == socket.AF_INET
    assert raw[4:8] == bytes((192, 0, 2, 1))
    assert struct.unpack_from("=BBH", raw, 128) == (0, 0, 3)
    assert raw[136:139] == b"key" and raw[139:216] == bytes(77)
    raw6 = md5sig_struct(socket.AF_INET6, "2001:db8::1", "k")
    assert struct.unpack_from("=H", raw6)[0] == socket.AF_INET6
    assert raw6[8:24] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    # an IPv4 peer on a dual-stack socket is keyed by its mapped address
    mapped = md5sig_struct(socket.AF_INET6, "192.0.2.1", "k")
    assert mapped[8:24] == socket.inet_pton(socket.AF_INET6, "::ffff:192.0.2.1")


def test_md5_key_too_long_is_rejected():
    with pytest.raises(SockOptError):
        md5sig_struct(socket.AF_INET, "192.0.2.1", "x" * 81)


def _tcp_ext(counter: str) -> int:
    """One TcpExt counter of this network namespace (/proc/net/netstat)."""
    with open("/proc/net/netstat") as f:
        rows = [line.split() for line in f if line.startswith("TcpExt:")]
    names, values = rows[0], rows[1]
    return int(values[names.index(counter)])


def _wait_for(cond, timeout: float = 5.0) -> bool:
    """Poll a condition (kernel counters have no event to wait on)."""
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_md5_key_set_and_removed_on_a_listening_socket():
    """A key set for 127.0.0.9 makes the kernel drop that address's unsigned SYNs;
    removing it lets the same client in; a keyed client gets in while it is set."""
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        srv.setblocking(False)
        port = srv.getsockname()[1]
        set_md5(srv, "127.0.0.9", "secret")
        set_md5(srv, "127.0.0.10", None)  # removing a key never set is fine

        # a client with the same key connects
        with socket.socket() as c:
            c.bind(("127.0.0.9", 0))
            set_md5(c, "127.0.0.1", "secret")
            c.settimeout(5)
            c.connect(("127.0.0.1", port))
        assert _wait_for(lambda: _accept(srv))

        # an unsigned client from that address is dropped by the kernel
        before = _tcp_ext("TCPMD5NotFound")
        with socket.socket() as c:
            c.bind(("127.0.0.9", 0))
            c.setblocking(False)
            assert c.connect_ex(("127.0.0.1", port)) in (errno.EINPROGRESS, errno.EAGAIN)
            assert _wait_for(lambda: _tcp_ext("TCPMD5NotFound") > before)
            assert not _accept(srv)

        # key removed: the unsigned client is let in
        set_md5(srv, "127.0.0.9", None)
        with socket.socket() as c:
            c.bind(("127.0.0.9", 0))
            c.settimeout(5)
            c.connect(("127.0.0.1", port))
        assert _wait_for(lambda: _accept(srv))


def _accept(srv: socket.socket) -> bool:
    try:
        conn, _ = srv.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_missing_device_is_a_clear_error():
    with socket.socket() as s:
        with pytest.raises(SockOptError, match="does-not-exist0"):
            bind_device(s, "does-not-exist0")
        bind_device(s, "lo")


def test_ttl_rules():
    assert peer_ttl(ibgp=False, ebgp_multihop=False, gtsm=False) == (1, None)
    assert peer_ttl(ibgp=False, ebgp_multihop=True, gtsm=False) == (255, None)
    assert peer_ttl(ibgp=True, ebgp_multihop=False, gtsm=False) == (255, None)
    assert peer_ttl(ibgp=False, ebgp_multihop=False, gtsm=True) == (255, 255)
    s = connecting_socket("127.0.0.1", ttl=1, source_address="127.0.0.1")
    try:
        assert s.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 1
        assert s.getsockname()[0] == "127.0.0.1"
    finally:
        s.close()


def test_normalize_mapped_addresses():
    assert normalize("::ffff:127.0.0.1") == "127.0.0.1"
    assert normalize("2001:DB8::1") == "2001:db8::1"
    # a link-local address keeps its zone (one address on two links is two peers), as a name
    assert normalize("FE80::1%eth0") == "fe80::1%eth0"
    assert normalize("fe80::1%1") == f"fe80::1%{socket.if_indextoname(1)}"
    assert normalize("2001:db8::1%eth0") == "2001:db8::1"  # a zone means nothing on a global address


def test_password_is_never_in_repr():
    s = settings("x", "127.0.0.1", 179, 1, 2, 1, password="hunter2")
    assert "hunter2" not in repr(s)


async def test_missing_vrf_device_fails_that_peer_only():
    w = Watch()
    p = PeerTransport(settings("x", "127.0.0.5", 1790, 65001, 65002, 1, vrf="does-not-exist0"), on_event=w)
    try:
        p.start()
        await w.until(lambda: p.state == State.ACTIVE)
        assert "does-not-exist0" in p.last_error
    finally:
        await p.stop()


async def test_simultaneous_open_ends_with_one_session():
    la, lb = Listener(A_IP, 0), Listener(B_IP, 0)
    await la.start()
    await lb.start()
    wa, wb = Watch(), Watch()
    a = PeerTransport(settings("b", B_IP, lb.bound_port, 65001, 65002, 0x01010101, source_address=A_IP), on_event=wa)
    b = PeerTransport(settings("a", A_IP, la.bound_port, 65002, 65001, 0x02020202, source_address=B_IP), on_event=wb)
    la.register(a)
    lb.register(b)
    try:
        a.start()
        b.start()
        await wa.until(lambda: a.state == State.ESTABLISHED)
        await wb.until(lambda: b.state == State.ESTABLISHED)
        # both ends of the one surviving connection
        assert (a.local_address, a.remote_address) == (b.remote_address, b.local_address)
    finally:
        await a.stop()
        await b.stop()
        await la.close()
        await lb.close()


def test_gtsm_on_a_dual_stack_socket_also_filters_ipv4_mapped_peers():
    # An IPv4 peer accepted by the default "::" listener arrives on an AF_INET6
    # socket, but the kernel checks its segments against IP_MINTTL, not
    # IPV6_MINHOPCOUNT: both must be set or GTSM is silently off for IPv4.
    from speakerd.net.sockopts import IP_MINTTL, IPV6_MINHOPCOUNT, listening_socket, set_ttl
    lsock = listening_socket("::", 0)
    client = socket.create_connection(("127.0.0.1", lsock.getsockname()[1]))
    lsock.setblocking(True)
    accepted, _ = lsock.accept()
    try:
        assert accepted.family == socket.AF_INET6
        set_ttl(accepted, 255, 255)
        assert accepted.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 255
        assert accepted.getsockopt(socket.IPPROTO_IP, IP_MINTTL) == 255
        assert accepted.getsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT) == 255
    finally:
        for s in (accepted, client, lsock):
            s.close()


async def test_a_closed_listener_frees_its_port_at_once():
    # On reload the last peer of a listener is removed and the listener closed
    # in a task (speaker._unregister) just before the re-added peer opens a new
    # listener on the same address and port: the port must be free by then.
    first = Listener(B_IP, 0)
    await first.start()
    port = first.bound_port
    closing = asyncio.get_running_loop().create_task(first.close())
    second = Listener(B_IP, port)
    try:
        await second.start()
        assert second.bound_port == port
    finally:
        await closing
        await second.close()
