"""speakerd.metrics: names/labels/types as MetalLB's, values, HTTP serving."""
from __future__ import annotations

import asyncio
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from speakerd.metrics import Metrics, parse_listen, peer_label
from speakerd.wire.constants import MessageType

P = "192.0.2.1:179"
P6 = "[2001:db8::1]:179"


def families(m: Metrics) -> dict:
    return {f.name: f for f in text_string_to_metric_families(m.render().decode())}


def raw_samples(m: Metrics) -> dict[tuple[str, frozenset], float]:
    """Sample lines exactly as a Prometheus server reads them (no name munging)."""
    out = {}
    for line in m.render().decode().splitlines():
        if not line or line.startswith("#"):
            continue
        mo = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        assert mo, line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', mo.group(2) or ""))
        out[(mo.group(1), labels)] = float(mo.group(3))
    return out


def value(m, name, **labels):
    return raw_samples(m).get((name, frozenset(labels.items())))


def test_metallb_names_labels_and_types():
    m = Metrics(process=False)
    m.add_peer(P)
    fams = families(m)
    # prometheus_client's parser strips "_total" from counter family names
    expected = {
        "metallb_bgp_session_up": "gauge",
        "metallb_bgp_updates": "counter",  # metallb_bgp_updates_total
        "metallb_bgp_announced_prefixes_total": "gauge",
        "metallb_bgp_pending_prefixes_total": "gauge",
        "metallb_bgp_opens_sent": "counter",
        "metallb_bgp_opens_received": "counter",
        "metallb_bgp_notifications_sent": "counter",
        "metallb_bgp_keepalives_sent": "counter",
        "metallb_bgp_keepalives_received": "counter",
        "metallb_bgp_route_refresh_sent": "counter",
        "metallb_bgp_updates_total_received": "counter",
    }
    for name, typ in expected.items():
        assert fams[name].type == typ, name
        assert all(s.labels == {"peer": P, "vrf": "default"} for s in fams[name].samples), name
    text = m.render().decode()
    # exact series names as MetalLB (Go) exposes them: no _total appended, no _created
    assert "# TYPE metallb_bgp_opens_sent counter\n" in text
    assert "# TYPE metallb_bgp_updates_total counter\n" in text
    assert 'metallb_bgp_keepalives_sent{peer="192.0.2.1:179",vrf="default"} 0.0' in text
    assert "_created" not in text
    assert "metallb_bgp_opens_sent_total" not in text


def test_message_counters():
    m = Metrics(process=False)
    for _ in range(3):
        m.message(P, "sent", MessageType.KEEPALIVE)
    m.message(P, "received", MessageType.KEEPALIVE, count=2)
    m.sent(P, MessageType.UPDATE, 5)
    m.received(P, MessageType.UPDATE)
    m.message(P, "sent", MessageType.OPEN)
    m.message(P, "received", MessageType.OPEN)
    m.message(P, "sent", MessageType.NOTIFICATION)
    m.message(P, "received", MessageType.NOTIFICATION)
    m.message(P, "sent", MessageType.ROUTE_REFRESH)
    m.message(P, "received", 99)  # unknown type: counted in totals only
    lab = {"peer": P, "vrf": "default"}
    assert value(m, "metallb_bgp_keepalives_sent", **lab) == 3
    assert value(m, "metallb_bgp_keepalives_received", **lab) == 2
    assert value(m, "metallb_bgp_updates_total", **lab) == 5
    assert value(m, "metallb_bgp_updates_total_received", **lab) == 1
    assert value(m, "metallb_bgp_opens_sent", **lab) == 1
    assert value(m, "metallb_bgp_opens_received", **lab) == 1
    assert value(m, "metallb_bgp_notifications_sent", **lab) == 1
    assert value(m, "metallb_bgp_route_refresh_sent", **lab) == 1
    assert value(m, "metallb_bgp_total_sent", **lab) == 3 + 5 + 1 + 1 + 1
    assert value(m, "metallb_bgp_total_received", **lab) == 2 + 1 + 1 + 1 + 1
    assert value(m, "speakerd_updates_received_total", peer=P) == 1
    assert value(m, "speakerd_notifications_received_total", peer=P) == 1
    assert value(m, "speakerd_messages_total", peer=P, direction="sent", type="keepalive") == 3
    assert value(m, "speakerd_messages_total", peer=P, direction="received", type="unknown") == 1
    with pytest.raises(KeyError):
        m.message(P, "sideways", MessageType.UPDATE)


def test_session_state_prefixes_and_flaps():
    m = Metrics(process=False)
    m.session_state(P, up=False, state="Connect")
    lab = {"peer": P, "vrf": "default"}
    assert value(m, "metallb_bgp_session_up", **lab) == 0
    assert value(m, "speakerd_session_state", peer=P, state="Connect") == 1
    assert value(m, "speakerd_session_state", peer=P, state="Established") == 0
    assert value(m, "speakerd_session_established_timestamp_seconds", peer=P) is None

    m.session_state(P, up=True, now=1700000000.0)
    m.prefixes(P, announced=3, pending=4, received={"ipv4": 10, "ipv6": 2})
    assert value(m, "metallb_bgp_session_up", **lab) == 1
    assert value(m, "speakerd_session_state", peer=P, state="Established") == 1
    assert value(m, "speakerd_session_established_timestamp_seconds", peer=P) == 1700000000.0
    assert value(m, "metallb_bgp_announced_prefixes_total", **lab) == 3
    assert value(m, "metallb_bgp_pending_prefixes_total", **lab) == 4
    assert value(m, "speakerd_prefixes_received", peer=P, afi="ipv4") == 10
    assert value(m, "speakerd_prefixes_received", peer=P, afi="ipv6") == 2

    m.session_state(P, up=False, state="Idle")
    m.flap(P, "hold-timer-expired")
    m.flap(P, "hold-timer-expired")
    m.flap(P, "bfd-down")
    assert value(m, "metallb_bgp_session_up", **lab) == 0
    assert value(m, "metallb_bgp_announced_prefixes_total", **lab) == 0  # nothing advertised when down
    assert value(m, "metallb_bgp_pending_prefixes_total", **lab) == 4
    assert value(m, "speakerd_session_flaps_total", peer=P, cause="hold-timer-expired") == 2
    assert value(m, "speakerd_session_flaps_total", peer=P, cause="bfd-down") == 1


def test_remove_peer_drops_all_its_series():
    m = Metrics(process=False)
    m.session_state(P, up=True)
    m.flap(P, "x")
    m.prefixes(P, received={"ipv4": 1})
    m.session_state(P6, up=True)
    m.remove_peer(P)
    text = m.render().decode()
    assert P not in text
    assert P6 in text
    assert m.peers() == [P6]


def test_bfd():
    m = Metrics(process=False)
    ip = "192.0.2.1"
    m.bfd_state(ip, up=False, state="Init")
    m.bfd_state(ip, up=True)
    m.bfd_state(ip, up=False)
    m.bfd_state(ip, up=False)  # not a new down event
    m.bfd_state(ip, up=True)
    m.bfd_packet(ip, "sent", 7)
    m.bfd_packet(ip, "received")
    lab = {"peer": ip, "vrf": "default"}
    assert value(m, "metallb_bfd_session_up", **lab) == 1
    assert value(m, "metallb_bfd_session_up_events", **lab) == 2
    assert value(m, "metallb_bfd_session_down_events", **lab) == 1
    assert value(m, "metallb_bfd_control_packet_output", **lab) == 7
    assert value(m, "metallb_bfd_control_packet_input", **lab) == 1
    assert value(m, "speakerd_bfd_session_state", peer=ip, state="Up") == 1
    assert value(m, "speakerd_bfd_session_state", peer=ip, state="Down") == 0
    m.remove_bfd(ip)
    assert ip not in m.render().decode()


def test_reload():
    m = Metrics(process=False)
    assert value(m, "speakerd_config_last_reload_success") is None
    m.reload(ok=True, now=1000.0)
    m.reload(ok=False, now=2000.0)
    assert value(m, "speakerd_config_reloads_total", result="ok") == 1
    assert value(m, "speakerd_config_reloads_total", result="error") == 1
    assert value(m, "speakerd_config_last_reload_success") == 0
    assert value(m, "speakerd_config_last_reload_success_timestamp_seconds") == 1000.0
    m.reload(ok=True, now=3000.0)
    assert value(m, "speakerd_config_last_reload_success") == 1
    fams = families(m)
    assert fams["speakerd_config_reloads"].type == "counter"


def test_registries_are_independent_and_process_metrics():
    a, b = Metrics(), Metrics()
    a.session_state(P, up=True)
    assert P not in b.render().decode()
    fams = families(a)
    assert "process_cpu_seconds" in fams or "process_resident_memory_bytes" in fams or \
        not __import__("os").path.exists("/proc/self/stat")
    assert fams["speakerd_build_info"].samples[0].value == 1


def test_label_escaping():
    m = Metrics(process=False)
    m.flap(P, 'we"ird\\cause\n')
    fams = families(m)
    causes = [s.labels["cause"] for s in fams["speakerd_session_flaps"].samples]
    assert causes == ['we"ird\\cause\n']


def test_peer_label_and_parse_listen():
    assert peer_label("192.0.2.1") == "192.0.2.1:179"
    assert peer_label("2001:db8::1", 1790) == "[2001:db8::1]:1790"
    assert peer_label("2001:db8::1", None) == "2001:db8::1"
    assert parse_listen("127.0.0.1:7473") == ("127.0.0.1", 7473)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen(":7000") == ("", 7000)
    assert parse_listen("::1") == ("::1", 7473)
    assert parse_listen("[::]") == ("::", 7473)
    for bad in ("host.example:80", "127.0.0.1:99999", "[::1", "1.2.3.4:x"):
        with pytest.raises(ValueError):
            parse_listen(bad)


async def _http(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    writer.write_eof()  # half-close: the server sees the end of a truncated request
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    await writer.wait_closed()
    return data


async def test_http_serving_on_loopback():
    m = Metrics(process=False)
    m.session_state(P, up=True)
    server = await m.serve("127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        resp = await _http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        head, _, body = resp.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"Content-Type: text/plain; version=0.0.4" in head
        assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) == len(body)
        fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert fams["metallb_bgp_session_up"].samples[0].value == 1

        resp = await _http(port, b"GET /nope HTTP/1.1\r\n\r\n")
        assert resp.startswith(b"HTTP/1.1 404 ")
        resp = await _http(port, b"POST /metrics HTTP/1.1\r\n\r\n")
        assert resp.startswith(b"HTTP/1.1 405 ")
        resp = await _http(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert resp.startswith(b"HTTP/1.1 200 ") and resp.endswith(b"\r\n\r\n")
        # a client that closes mid-request does not break the server
        resp = await _http(port, b"GET /met")
        assert resp == b""
        resp = await _http(port, b"GET /metrics HTTP/1.0\r\n\r\n")
        assert resp.startswith(b"HTTP/1.1 200 ")
    finally:
        server.close()
        await server.wait_closed()
