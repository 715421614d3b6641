"""Interface addresses from /proc text: the IPv6 next hop toward an IPv4 peer."""
from __future__ import annotations

import sys

from speakerd.net.ifaddr import (global_ipv6, interface_toward, link_local_ipv6, parse_if_inet6,
                                 parse_route_table)


def hexbe(addr: str) -> str:
    """An IPv4 address as /proc/net/route prints it (host-order integer)."""
    b = bytes(int(x) for x in addr.split("."))
    return f"{int.from_bytes(b, sys.byteorder):08X}"


ROUTES = "\n".join([
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
    f"eth0\t{hexbe('0.0.0.0')}\t{hexbe('192.0.2.1')}\t0003\t0\t0\t0\t{hexbe('0.0.0.0')}\t0\t0\t0",
    f"eth0\t{hexbe('192.0.2.0')}\t00000000\t0001\t0\t0\t0\t{hexbe('255.255.255.0')}\t0\t0\t0",
    f"veth1\t{hexbe('10.1.0.0')}\t00000000\t0001\t0\t0\t0\t{hexbe('255.255.0.0')}\t0\t0\t0",
    f"veth2\t{hexbe('10.1.2.0')}\t00000000\t0001\t0\t0\t0\t{hexbe('255.255.255.0')}\t0\t0\t0",
    f"down0\t{hexbe('10.9.0.0')}\t00000000\t0000\t0\t0\t0\t{hexbe('255.255.0.0')}\t0\t0\t0",
])

INET6 = "\n".join([
    "fe800000000000000000000000000001 03 40 20 80    veth2",
    "20010db8000000000000000000000099 03 40 00 c0    veth2",  # tentative (DAD running)
    "20010db8000000000000000000000002 03 40 00 a0    veth2",  # deprecated
    "20010db8000000000000000000000003 03 40 00 80    veth2",
    "fe800000000000000000000000000005 04 40 20 80    veth1",
    "00000000000000000000000000000001 01 80 10 80       lo",
])


def test_longest_route_gives_the_interface():
    routes = parse_route_table(ROUTES)
    assert interface_toward("10.1.2.7", routes) == "veth2"
    assert interface_toward("10.1.3.7", routes) == "veth1"
    assert interface_toward("198.51.100.1", routes) == "eth0"  # the default route
    assert interface_toward("10.9.0.1", routes) == "eth0"  # down0's route is not up
    assert "down0" not in {d for _, _, d in routes}


def test_no_route_no_interface():
    assert interface_toward("10.1.2.7", parse_route_table(ROUTES.splitlines()[0])) is None


def test_global_address_preferred_over_deprecated_never_tentative():
    addrs = parse_if_inet6(INET6)
    assert global_ipv6("veth2", addrs) == "2001:db8::3"
    assert global_ipv6("veth1", addrs) is None  # link-local only: the caller falls back to ::ffff:
    assert link_local_ipv6("veth1", addrs) == "fe80::5"
    only_deprecated = [a for a in addrs if a[1] != "2001:db8::3"]
    assert global_ipv6("veth2", only_deprecated) == "2001:db8::2"


IPV6_ROUTES = "\n".join([
    "fd005d00000000010000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001    v1-p",
    "20010db8000000000000000000000000 30 00000000000000000000000000000000 00 "
    "fe800000000000000000000000000009 00000400 00000001 00000000 00000003    v1-p",
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fe800000000000000000000000000007 00000400 00000001 00000000 00450003    v1-p",
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fe800000000000000000000000000008 00000400 00000001 00000000 00450003    v2-x",
])


def test_router_link_local_prefers_the_ra_default_route_on_that_interface():
    from speakerd.net.ifaddr import parse_ipv6_routes, router_link_local
    routes = parse_ipv6_routes(IPV6_ROUTES)
    assert router_link_local("v1-p", routes) == "fe80::7"
    assert router_link_local("v2-x", routes) == "fe80::8"
    assert router_link_local("v3-y", routes) is None
    assert router_link_local("v1-p", [r for r in routes if r[2] != "fe80::7"]) == "fe80::9"


def test_router_advertisement_is_not_a_default_router():
    from speakerd.net.ra import router_advertisement
    ra = router_advertisement(bytes.fromhex("020000000001"))
    assert ra[0] == 134 and ra[1] == 0 and ra[6:8] == b"\0\0"  # router lifetime 0
    assert ra[16:] == bytes((1, 1)) + bytes.fromhex("020000000001")  # source link-layer address
    assert len(router_advertisement(None)) == 16


def test_only_link_local_router_advertisements_name_a_router():
    import struct
    from speakerd.net.ra import advertising_router, only_router_advertisements, router_advertisement
    ra = router_advertisement(None)
    assert advertising_router(ra, "fe80::7%v1-p") == "fe80::7"
    assert advertising_router(ra, "2001:db8::7") is None  # RFC 4861: RAs come from link-local
    assert advertising_router(bytes((135,)) + ra[1:], "fe80::7") is None  # a neighbour solicitation
    words = struct.unpack("=8I", only_router_advertisements())
    passed = [t for t in range(256) if not words[t >> 5] & (1 << (t & 31))]
    assert passed == [134]


def test_a_loopback_session_is_on_lo_not_the_default_route():
    # /proc/net/route has no local table: 127.0.0.0/8 would match only the default route
    from speakerd.net.ifaddr import loopback_interface
    assert loopback_interface("127.107.4.2", "127.107.4.1") == "lo"
    assert loopback_interface("192.0.2.9", None) is None
    assert interface_toward("127.107.4.2", [(0, 0, "eth0")]) == "eth0"  # what the lookup alone gives
