"""Prometheus metrics for speakerd.

One :class:`Metrics` object per daemon.  It owns a private
``CollectorRegistry`` (never the global one, so tests and tools can make as
many as they like) and keeps per-peer numbers as plain ints; the registry
reads them only when scraped.  Every recording method is a dict lookup and an
int increment, cheap enough to call once per BGP message.

Names
-----
MetalLB's names, label names and types are kept so existing dashboards and
alerts keep working:

=========================================  =======  ===========================
metallb_bgp_session_up                     gauge    {peer, vrf}  1 established
metallb_bgp_updates_total                  counter  UPDATEs sent
metallb_bgp_updates_total_received         counter  UPDATEs received
metallb_bgp_announced_prefixes_total       gauge    prefixes advertised now
metallb_bgp_pending_prefixes_total         gauge    prefixes that should be
metallb_bgp_opens_sent / _received         counter
metallb_bgp_notifications_sent             counter
metallb_bgp_keepalives_sent / _received    counter
metallb_bgp_route_refresh_sent             counter
metallb_bgp_total_sent / _received         counter  all messages
metallb_bfd_session_up                     gauge    {peer, vrf}
metallb_bfd_control_packet_input / output  counter
metallb_bfd_session_up_events / _down_     counter
=========================================  =======  ===========================

``peer`` is ``"ip:port"`` for BGP (``"[v6]:port"`` for IPv6, see
:func:`peer_label`) and the bare IP for BFD, as in MetalLB; ``vrf`` is always
``"default"`` (speakerd has no VRFs; the label is there because MetalLB's
series carry it).  Like MetalLB (Go client) the counters without a ``_total``
suffix are exposed under exactly that name, which is why :meth:`Metrics.render`
writes the text format itself instead of using ``generate_latest`` (which
would append ``_total``) and why no ``_created`` series are emitted.

speakerd's own series (``speakerd_`` prefix): ``config_reloads_total{result}``,
``config_last_reload_success``, ``config_last_reload_success_timestamp_seconds``,
``session_flaps_total{peer,cause}``, ``session_state{peer,state}`` (one series
per FSM state, 1 for the current one), ``session_established_timestamp_seconds``,
``messages_total{peer,direction,type}``, ``updates_received_total{peer}``,
``notifications_received_total{peer}``, ``prefixes_received{peer,afi}``,
``bfd_session_state{peer,state}``, ``build_info{version}``,
``event_loop_lag_seconds`` (histogram) and ``event_loop_lag_max_seconds`` (registered by
:mod:`speakerd.looplag` in the daemons), plus the standard ``process_*`` series.

Daemon API
----------
``m = Metrics()``; then from the event loop::

    m.add_peer(peer)                          # series appear at 0 (optional)
    m.message(peer, "sent", MessageType.UPDATE)   # or m.sent(...)/m.received(...)
    m.session_state(peer, up=True, state="Established", now=time.time())
    m.flap(peer, "hold-timer-expired")
    m.prefixes(peer, announced=3, pending=3, received={"ipv4": 0})
    m.bfd_state(bfd_peer, up=True, state="Up")
    m.bfd_packet(bfd_peer, "received")
    m.reload(ok=True, now=time.time())
    m.remove_peer(peer)                       # all its series disappear
    server = await m.serve("0.0.0.0", 7473)   # asyncio HTTP, GET /metrics
    m.render() -> bytes                       # text exposition format 0.0.4

All methods must be called from one thread (the event loop); :meth:`serve`
renders on that same loop, so no locking is needed.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from . import __version__

log = logging.getLogger("speakerd.metrics")

DEFAULT_PORT = 7473
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
VRF = "default"

# BGP message type codes (wire.constants.MessageType) -> label text
_TYPE_NAMES = {1: "open", 2: "update", 3: "notification", 4: "keepalive", 5: "route_refresh"}
_NTYPES = 6  # index = message type code; 0 collects unknown types
_DIRECTIONS = {"sent": True, "send": True, "out": True, "tx": True,
               "received": False, "recv": False, "in": False, "rx": False}

FSM_STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")
BFD_STATES = ("AdminDown", "Down", "Init", "Up")


def peer_label(address: str, port: int | None = 179) -> str:
    """MetalLB-style peer label: ``ip:port``, ``[v6]:port``, or the bare IP when port is None."""
    if port is None:
        return address
    if ":" in address:
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def parse_listen(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``"ADDR:PORT"`` / ``"[v6]:PORT"`` / ``":PORT"`` / ``"ADDR"`` -> (host, port).

    An empty host means all addresses.  Raises ValueError on nonsense.
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"unterminated '[' in {text!r}")
        port = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"garbage after ']' in {text!r}")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if host:
        ipaddress.ip_address(host)  # raises ValueError
    p = int(port) if port else default_port
    if not 0 <= p <= 65535:
        raise ValueError(f"port {p} out of range")
    return host, p


@dataclass(slots=True)
class _Peer:
    sent: list[int] = field(default_factory=lambda: [0] * _NTYPES)
    received: list[int] = field(default_factory=lambda: [0] * _NTYPES)
    up: bool = False
    state: str = "Idle"
    established_at: float = 0.0
    announced: int = 0
    pending: int = 0
    received_prefixes: dict[str, int] = field(default_factory=dict)
    flaps: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Bfd:
    up: bool = False
    state: str = "Down"
    packets_in: int = 0
    packets_out: int = 0
    up_events: int = 0
    down_events: int = 0


def _family(name: str, doc: str, typ: str, samples: Iterable[tuple[dict, float]],
            sample_name: str | None = None) -> Metric:
    m = Metric(name, doc, typ)
    sname = sample_name or name
    for labels, value in samples:
        m.add_sample(sname, labels, value)
    return m


class _Collector:
    """Turns the Metrics state into metric families at scrape time."""

    def __init__(self, metrics: "Metrics"):
        self._m = metrics

    def collect(self) -> Iterator[Metric]:  # noqa: C901 - a flat list of families
        m = self._m
        peers = list(m._peers.items())
        bfds = list(m._bfd.items())

        def per_peer(fn):
            return [({"peer": p, "vrf": VRF}, fn(s)) for p, s in peers]

        g, c = "gauge", "counter"
        yield _family("metallb_bgp_session_up", "BGP session state (1 is up, 0 is down)", g,
                      per_peer(lambda s: 1 if s.up else 0))
        yield _family("metallb_bgp_updates_total", "Number of BGP UPDATE messages sent", c,
                      per_peer(lambda s: s.sent[2]))
        yield _family("metallb_bgp_updates_total_received", "Number of BGP UPDATE messages received", c,
                      per_peer(lambda s: s.received[2]))
        yield _family("metallb_bgp_announced_prefixes_total",
                      "Number of prefixes currently being advertised on the BGP session", g,
                      per_peer(lambda s: s.announced))
        yield _family("metallb_bgp_pending_prefixes_total",
                      "Number of prefixes that should be advertised on the BGP session", g,
                      per_peer(lambda s: s.pending))
        for code, what in ((1, "open"), (3, "notification"), (4, "keepalive"), (5, "route refresh")):
            base = {1: "opens", 3: "notifications", 4: "keepalives", 5: "route_refresh"}[code]
            yield _family(f"metallb_bgp_{base}_sent", f"Number of BGP {what} messages sent", c,
                          per_peer(lambda s, i=code: s.sent[i]))
            if code in (1, 4):  # MetalLB exports received counts for these only
                yield _family(f"metallb_bgp_{base}_received", f"Number of BGP {what} messages received", c,
                              per_peer(lambda s, i=code: s.received[i]))
        yield _family("metallb_bgp_total_sent", "Number of total BGP messages sent", c,
                      per_peer(lambda s: sum(s.sent)))
        yield _family("metallb_bgp_total_received", "Number of total BGP messages received", c,
                      per_peer(lambda s: sum(s.received)))

        def per_bfd(fn):
            return [({"peer": p, "vrf": VRF}, fn(b)) for p, b in bfds]

        yield _family("metallb_bfd_session_up", "BFD session state (1 is up, 0 is down)", g,
                      per_bfd(lambda b: 1 if b.up else 0))
        yield _family("metallb_bfd_control_packet_input", "Number of received BFD control packets", c,
                      per_bfd(lambda b: b.packets_in))
        yield _family("metallb_bfd_control_packet_output", "Number of sent BFD control packets", c,
                      per_bfd(lambda b: b.packets_out))
        yield _family("metallb_bfd_session_up_events", "Number of BFD session up events", c,
                      per_bfd(lambda b: b.up_events))
        yield _family("metallb_bfd_session_down_events", "Number of BFD session down events", c,
                      per_bfd(lambda b: b.down_events))

        # speakerd's own
        yield _family("speakerd_build_info", "speakerd version", g, [({"version": __version__}, 1)])
        yield _family("speakerd_config_reloads", "Configuration reloads by result", c,
                      [({"result": r}, n) for r, n in sorted(m._reloads.items())],
                      "speakerd_config_reloads_total")
        if m._last_reload_ok is not None:
            yield _family("speakerd_config_last_reload_success",
                          "Whether the last configuration reload succeeded (1) or was rejected (0)", g,
                          [({}, 1 if m._last_reload_ok else 0)])
        if m._last_reload_success_ts:
            yield _family("speakerd_config_last_reload_success_timestamp_seconds",
                          "Unix time of the last successful configuration load", g,
                          [({}, m._last_reload_success_ts)])
        yield _family("speakerd_config_invalid_objects",
                      "Objects (Services, EndpointSlices, Nodes) skipped because they do not validate; "
                      "every other object is planned", g, [({}, m._invalid_objects)])
        yield _family("speakerd_session_flaps", "BGP sessions leaving Established, by cause", c,
                      [({"peer": p, "cause": cause}, n) for p, s in peers for cause, n in sorted(s.flaps.items())],
                      "speakerd_session_flaps_total")
        yield _family("speakerd_session_state", "BGP FSM state (1 for the current state)", g,
                      [({"peer": p, "state": st}, 1 if s.state == st else 0) for p, s in peers for st in FSM_STATES])
        yield _family("speakerd_session_established_timestamp_seconds",
                      "Unix time the session last reached Established (absent when down)", g,
                      [({"peer": p}, s.established_at) for p, s in peers if s.up and s.established_at])
        msgs = []
        for p, s in peers:
            for direction, counts in (("sent", s.sent), ("received", s.received)):
                for code, n in enumerate(counts):
                    if n:
                        msgs.append(({"peer": p, "direction": direction,
                                      "type": _TYPE_NAMES.get(code, "unknown")}, n))
        yield _family("speakerd_messages", "BGP messages by peer, direction and type", c, msgs,
                      "speakerd_messages_total")
        yield _family("speakerd_updates_received", "BGP UPDATE messages received", c,
                      [({"peer": p}, s.received[2]) for p, s in peers], "speakerd_updates_received_total")
        yield _family("speakerd_notifications_received", "BGP NOTIFICATION messages received", c,
                      [({"peer": p}, s.received[3]) for p, s in peers], "speakerd_notifications_received_total")
        yield _family("speakerd_prefixes_received", "Prefixes in Adj-RIB-In by address family", g,
                      [({"peer": p, "afi": afi}, n) for p, s in peers for afi, n in sorted(s.received_prefixes.items())])
        yield _family("speakerd_bfd_session_state", "BFD session state (1 for the current state)", g,
                      [({"peer": p, "state": st}, 1 if b.state == st else 0) for p, b in bfds for st in BFD_STATES])


def _header_name(metric: Metric) -> str:
    # Families built with a *_total sample name (prometheus_client style) are
    # announced under that name; MetalLB's suffix-less counters under their own.
    if metric.type == "counter" and metric.samples and metric.samples[0].name == metric.name + "_total":
        return metric.name + "_total"
    return metric.name


def _escape_label(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_registry(registry: CollectorRegistry) -> bytes:
    """Prometheus text format 0.0.4 with sample names exactly as collected.

    Families without samples are omitted; ``_created`` samples are dropped.
    """
    out: list[str] = []
    for metric in registry.collect():
        samples = [s for s in metric.samples if not s.name.endswith("_created")]
        if not samples:
            continue
        name = _header_name(metric)
        typ = {"unknown": "untyped", "info": "gauge", "stateset": "gauge"}.get(metric.type, metric.type)
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {typ}\n")
        for s in samples:
            if s.labels:
                labels = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in sorted(s.labels.items()))
                out.append(f"{s.name}{{{labels}}} {floatToGoString(s.value)}\n")
            else:
                out.append(f"{s.name} {floatToGoString(s.value)}\n")
    return "".join(out).encode("utf-8")


class Metrics:
    """speakerd's metrics; see the module docstring for names and usage."""

    def __init__(self, process: bool = True):
        self.registry = CollectorRegistry(auto_describe=False)
        self._peers: dict[str, _Peer] = {}
        self._bfd: dict[str, _Bfd] = {}
        self._reloads: dict[str, int] = {"ok": 0, "error": 0}
        self._last_reload_ok: bool | None = None
        self._invalid_objects = 0
        self._last_reload_success_ts: float = 0.0
        self.registry.register(_Collector(self))
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)

    # --- BGP sessions -------------------------------------------------------
    def _peer(self, peer: str) -> _Peer:
        s = self._peers.get(peer)
        if s is None:
            s = self._peers[peer] = _Peer()
        return s

    def add_peer(self, peer: str) -> None:
        """Make the peer's series exist (at 0 / down) before anything happens."""
        self._peer(peer)

    def remove_peer(self, peer: str) -> None:
        """Drop every BGP series of a deconfigured peer (BFD: :meth:`remove_bfd`)."""
        self._peers.pop(peer, None)

    def peers(self) -> list[str]:
        return sorted(self._peers)

    def message(self, peer: str, direction: str, msg_type: int, count: int = 1) -> None:
        """Count ``count`` BGP messages of ``msg_type`` (wire code) ``sent``/``received``."""
        s = self._peer(peer)
        counts = s.sent if _DIRECTIONS[direction] else s.received
        counts[msg_type if 0 < msg_type < _NTYPES else 0] += count

    def sent(self, peer: str, msg_type: int, count: int = 1) -> None:
        s = self._peer(peer)
        s.sent[msg_type if 0 < msg_type < _NTYPES else 0] += count

    def received(self, peer: str, msg_type: int, count: int = 1) -> None:
        s = self._peer(peer)
        s.received[msg_type if 0 < msg_type < _NTYPES else 0] += count

    def session_state(self, peer: str, up: bool, state: str | None = None, now: float | None = None) -> None:
        """Record the session's FSM state; ``up`` means Established.

        Going down zeroes the announced-prefix gauge (nothing is advertised on
        a dead session), as MetalLB does.
        """
        s = self._peer(peer)
        if up and not s.up:
            s.established_at = time.time() if now is None else now
        if not up:
            s.announced = 0
            s.established_at = 0.0
        s.up = up
        s.state = state if state is not None else ("Established" if up else "Idle")

    def flap(self, peer: str, cause: str) -> None:
        """An Established session went down; ``cause`` is a short slug
        (``hold-timer-expired``, ``notification-received``, ``bfd-down``, ...)."""
        s = self._peer(peer)
        s.flaps[cause] = s.flaps.get(cause, 0) + 1

    def prefixes(self, peer: str, announced: int | None = None, pending: int | None = None,
                 received: dict[str, int] | None = None) -> None:
        """Set prefix gauges; ``received`` maps afi label (``ipv4``/``ipv6``) to Adj-RIB-In size."""
        s = self._peer(peer)
        if announced is not None:
            s.announced = announced
        if pending is not None:
            s.pending = pending
        if received is not None:
            s.received_prefixes.update(received)

    # --- BFD ------------------------------------------------------------------
    def _bfd_peer(self, peer: str) -> _Bfd:
        b = self._bfd.get(peer)
        if b is None:
            b = self._bfd[peer] = _Bfd()
        return b

    def bfd_state(self, peer: str, up: bool, state: str | None = None) -> None:
        """BFD session state for ``peer`` (bare IP); counts up/down transitions."""
        b = self._bfd_peer(peer)
        if up and not b.up:
            b.up_events += 1
        elif not up and b.up:
            b.down_events += 1
        b.up = up
        b.state = state if state is not None else ("Up" if up else "Down")

    def bfd_packet(self, peer: str, direction: str, count: int = 1) -> None:
        b = self._bfd_peer(peer)
        if _DIRECTIONS[direction]:
            b.packets_out += count
        else:
            b.packets_in += count

    def remove_bfd(self, peer: str) -> None:
        self._bfd.pop(peer, None)

    # --- config ---------------------------------------------------------------
    def invalid_objects(self, n: int) -> None:
        """How many single objects are currently skipped as invalid."""
        self._invalid_objects = n

    def reload(self, ok: bool, now: float | None = None) -> None:
        """A configuration load/reload finished (``ok`` False: rejected, old config kept)."""
        self._reloads["ok" if ok else "error"] += 1
        self._last_reload_ok = ok
        if ok:
            self._last_reload_success_ts = time.time() if now is None else now

    # --- exposition -------------------------------------------------------------
    def render(self) -> bytes:
        """The text exposition (what GET /metrics returns)."""
        return render_registry(self.registry)

    async def serve(self, host: str, port: int) -> asyncio.AbstractServer:
        """Serve ``GET /metrics`` over HTTP on the running loop; returns the server.

        Close it with ``server.close(); await server.wait_closed()``.  The
        bound port is ``server.sockets[0].getsockname()[1]`` (useful with 0).
        """
        return await asyncio.start_server(self._handle, host or None, port,
                                          reuse_address=True, limit=8192)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                    ConnectionError):
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split()
            method, target = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
            path = target.split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"method not allowed\n"
            elif path == "/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE, self.render()
            elif path == "/":
                status, ctype, body = "200 OK", "text/html", (
                    b"<html><head><title>speakerd</title></head><body>"
                    b"<a href=\"/metrics\">metrics</a></body></html>\n")
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            writer.write((f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                          f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1"))
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except ConnectionError:
            pass
        except Exception:  # a scrape must never take the daemon down
            log.exception("metrics request failed")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
