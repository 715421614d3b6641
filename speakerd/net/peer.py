"""One BGP peer over asyncio: the thin transport around its session machines.

The protocol, the collision rule and the choice of the connection to keep
live in :class:`speakerd.fsm.SessionPair`; this module only moves bytes and
time in and carries actions out (the way uvicorn's ``h11_impl`` wraps h11
and aioquic's asyncio protocol wraps ``QuicConnection``):

* every input (bytes read, connection made/lost, write buffer full/drained,
  timer) is passed to the pair with ``now = loop.time()``;
* the pair's queued actions are carried out in order, each on the
  connection of the machine it belongs to (write, connect, close), and its
  reports are recorded (history, last NOTIFICATION) and passed on;
* one timer per peer follows the pair's next deadline (:mod:`.timer`).

Nothing here blocks: a peer that never answers only costs its own connect
task and timer.
"""
from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from typing import Callable

from ..fsm import Session, SessionPair, SessionSettings, State
from ..fsm.open import local_capabilities
from ..rib.adj_out import next_hop6_source, next_hops
from ..fsm.actions import (Cause, Close, CollisionResolved, Connect, EndOfRib, MessageRejected,
                           NotificationReceived, NotificationSent, PrefixLimitExceeded, Received,
                           RoutesReceived, Send, StateChanged)
from ..wire.capabilities import Negotiated
from ..wire.constants import CeaseSubcode
from ..wire.messages import Notification
from .ifaddr import discover_router, interface_global_ipv6, interface_ipv6_toward
from .ra import RouterAdvertiser
from .sockopts import SockOptError, connecting_socket, peer_ttl, set_ttl
from .timer import Deadline

log = logging.getLogger("speakerd.peer")

WRITE_HIGH_WATER = 256 * 1024
CLOSE_FLUSH_TIMEOUT = 5.0
LOGGED_MESSAGE_BYTES = 4096  # of a rejected message, as hex in the log line


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    time: float  # wall clock (time.time())
    old: State
    new: State
    cause: Cause
    detail: str = ""


class _Conn(asyncio.Protocol):
    """One TCP connection; forwards everything to its owner."""

    def __init__(self, owner: "PeerTransport | None" = None, on_made: Callable | None = None) -> None:
        self.owner = owner
        self.on_made = on_made  # listener hook: identifies the peer
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self.on_made is not None:
            self.on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.owner is not None:
            self.owner._on_data(self, data)

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.owner is not None:
            self.owner._on_lost(self, exc)

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner._on_blocked(self, True)

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner._on_blocked(self, False)

    def addresses(self) -> tuple[str | None, str | None]:
        if self.transport is None:
            return None, None
        local = self.transport.get_extra_info("sockname")
        remote = self.transport.get_extra_info("peername")
        return (local[0] if local else None), (remote[0] if remote else None)

    def remote_zoned(self) -> str | None:
        """The peer's address with its zone when the socket has a scope (link-local:
        ``fe80::1%eth0``, the interface the connection came in on)."""
        if self.transport is None:
            return None
        remote = self.transport.get_extra_info("peername")
        if not remote:
            return None
        host = remote[0]
        if len(remote) >= 4 and remote[3] and "%" not in host:
            try:
                host = f"{host}%{socket.if_indextoname(remote[3])}"
            except OSError:
                host = f"{host}%{remote[3]}"
        return host

    def ports(self) -> tuple[int | None, int | None]:
        if self.transport is None:
            return None, None
        local = self.transport.get_extra_info("sockname")
        remote = self.transport.get_extra_info("peername")
        return (local[1] if local else None), (remote[1] if remote else None)


class _Link:
    """The I/O of one machine: its connection and its connect attempt."""
    __slots__ = ("conn", "connect_task")

    def __init__(self) -> None:
        self.conn: _Conn | None = None
        self.connect_task: asyncio.Task | None = None


class PeerTransport:
    """A BGP peer: ``start()``, ``await stop(message)``, ``set_routes(routes)``."""

    def __init__(self, settings: SessionSettings,
                 on_event: Callable[["PeerTransport", object], None] | None = None,
                 on_message: Callable[[str, float, bytes], None] | None = None) -> None:
        self.settings = settings
        self.on_event = on_event
        self.on_message = on_message
        self.sessions = SessionPair(settings, trace=on_message is not None)
        self._links: dict[Session, _Link] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: Deadline | None = None
        self.history: collections.deque[HistoryEntry] = collections.deque(maxlen=100)
        self.sent_by_type = [0] * 6
        self.last_state_change = time.time()
        self.established_since: float | None = None
        self.last_notification_sent: Notification | None = None
        self.last_notification_received: Notification | None = None
        self.local_address: str | None = None
        self.remote_address: str | None = None
        self.local_port: int | None = None  # of the current connection (for captures)
        self.remote_port: int | None = None
        # the interface toward the peer whose global IPv6 address is the IPv6 next hop over
        # an IPv4 connection (None: not looked up, or no route to the peer)
        self.next_hop_interface: str | None = None
        # BGP unnumbered: the router's link-local address found on settings.interface
        self.discovered_address: str | None = None
        # and our router advertisements there, so the router learns our link-local address
        self.advertiser = RouterAdvertiser(settings.interface) if settings.interface else None
        self.last_error: str = ""
        self.graceful_shutdown = False  # RFC 8326: every route marked 65535:0 (speakerctl drain)

    # ---------------------------------------------------------------- public
    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def state(self) -> State:
        return self.sessions.main.state

    @property
    def negotiated(self) -> Negotiated | None:
        return self.sessions.main.negotiated

    @property
    def adj_rib_in(self):
        return self.sessions.main.adj_rib_in

    @property
    def adj_rib_out(self):
        return self.sessions.main.adj_rib_out

    @property
    def wanted_routes(self) -> dict:
        """The routes last given to :meth:`set_routes` (read-only)."""
        return self.sessions.routes

    @property
    def advertised_routes(self) -> dict:
        """The routes the peer was sent and not withdrawn (read-only)."""
        return self.sessions.main.adj_rib_out.sent

    def next_hops(self) -> tuple[int | None, bytes | None]:
        """The (IPv4, IPv6) next hops the current connection announces routes with."""
        m = self.sessions.main
        return next_hops(m.local_address, self.settings.next_hop4, self.settings.next_hop6,
                         m.interface_ipv6)

    def next_hop6_source(self) -> str | None:
        """Where the IPv6 next hop comes from (``rib.adj_out.NH6_*``)."""
        m = self.sessions.main
        return next_hop6_source(m.local_address, self.settings.next_hop6, m.interface_ipv6)

    def local_capabilities(self) -> tuple:
        """The capabilities our OPEN carries (or will carry) on this session."""
        return local_capabilities(self.settings, self.sessions.main.restart_state)

    @property
    def ignored_updates(self) -> dict[str, int]:
        """UPDATEs not kept: looped (our AS in the path) and un-negotiated families."""
        m = self.sessions.main
        return {"looped": m.looped_updates, "unnegotiated_family": m.unnegotiated_updates}

    @property
    def prefix_limit_hits(self) -> int:
        """Sessions ended because the peer sent more than ``max_prefixes`` of a family."""
        return self.sessions.main.prefix_limit_hits

    @property
    def received_by_type(self) -> list[int]:
        return self.sessions.received_counts

    @property
    def uptime(self) -> float | None:
        return time.time() - self.established_since if self.established_since else None

    def start(self) -> None:
        self._bind_loop()
        if self.advertiser is not None:
            self.advertiser.start()
        self.sessions.start(self._now())
        self._process()

    async def stop(self, message: str = "", subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
                   notify: bool = True) -> None:
        """Cease (6/2 with an RFC 9003 message), then wait until the connection is closed.

        ``notify=False``: close without a NOTIFICATION (graceful restart, see
        :meth:`speakerd.fsm.Session.stop`)."""
        conns = [l.conn for l in self._links.values() if l.conn is not None]
        self.sessions.stop(self._now(), message, subcode, notify=notify)
        self._process()
        for link in self._links.values():
            if link.connect_task is not None:
                link.connect_task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        if self.advertiser is not None:
            self.advertiser.stop()
        for c in conns:
            try:
                await asyncio.wait_for(asyncio.shield(c.closed), CLOSE_FLUSH_TIMEOUT)
            except asyncio.TimeoutError:
                if c.transport is not None:
                    c.transport.abort()

    def reset(self, reason: str = "", subcode: int = CeaseSubcode.ADMINISTRATIVE_RESET) -> None:
        """Drop the session (Cease 6/4 by default) and reconnect."""
        self.sessions.reset(self._now(), reason, subcode)
        self._process()

    def set_routes(self, routes: dict) -> None:
        self.sessions.set_routes(self._now(), routes)
        self._process()

    def update_routes(self, delta: dict) -> None:
        """Change part of the wanted routes (``(afi, key) -> RouteAttrs``, None = withdraw)."""
        self.sessions.update_routes(self._now(), delta)
        self._process()

    def set_graceful_shutdown(self, on: bool) -> None:
        """Re-announce every route with (or without) GRACEFUL_SHUTDOWN 65535:0 and, on iBGP,
        LOCAL_PREF 0 (RFC 8326); later announcements and reconnects keep the mark."""
        self.graceful_shutdown = on
        changed = False
        for m in self.sessions.machines():
            changed |= m.adj_rib_out.set_graceful_shutdown(on)
        if changed:  # the same wanted routes, new attributes: every route is re-announced
            self.sessions.set_routes(self._now(), self.sessions.routes)
            self._process()

    # -------------------------------------------------------- incoming (listener)
    def interface_router(self) -> str | None:
        """BGP unnumbered: the router's link-local address on ``settings.interface`` as
        learned so far (its router advertisements, else the kernel's RA-learned routes)."""
        iface = self.settings.interface
        if not iface:
            return None
        return (self.advertiser.router if self.advertiser else None) or discover_router(iface)

    def accept_connection(self, conn: _Conn) -> None:
        """A connection from this peer's address (for an unnumbered peer: from a link-local
        address on its interface), accepted by a listener."""
        self._bind_loop()
        self._apply_ttl(conn)
        machine, reply = self.sessions.incoming(self._now(), conn.addresses()[0],
                                                self._interface_ipv6(conn))
        if machine is not None:  # a collision candidate announces what the main machine does
            machine.adj_rib_out.set_graceful_shutdown(self.graceful_shutdown)
        if machine is None:
            if reply:
                conn.transport.write(reply)
            conn.owner = None
            conn.transport.close()
            self._process()
            return
        conn.owner = self
        self._link(machine).conn = conn
        if machine is self.sessions.main:
            self._set_addresses(conn)
        self._process()

    # ------------------------------------------------------------ callbacks
    def _machine_of(self, conn: _Conn) -> Session | None:
        for m, link in self._links.items():
            if link.conn is conn:
                return m
        return None

    def _on_data(self, conn: _Conn, data: bytes) -> None:
        m = self._machine_of(conn)
        if m is not None:
            self.sessions.data_received(m, data, self._now())
            self._process()

    def _on_lost(self, conn: _Conn, exc) -> None:
        m = self._machine_of(conn)
        if m is None:
            return
        self._links[m].conn = None
        self.sessions.connection_failed(m, self._now(), str(exc) if exc else "connection closed by peer")
        self._process()

    def _on_blocked(self, conn: _Conn, blocked: bool) -> None:
        m = self._machine_of(conn)
        if m is not None:
            self.sessions.send_blocked(m, self._now(), blocked)
            self._process()

    def _on_timer(self) -> None:
        self.sessions.tick(self._now())
        self._process()

    # ------------------------------------------------------------- actions
    def _process(self) -> None:
        main = self.sessions.main
        for machine, act in self.sessions.pop_actions():
            self._do(machine, act, machine is main)
        live = set(self.sessions.machines())
        for m in [m for m, l in self._links.items() if m not in live and l.conn is None
                  and l.connect_task is None]:
            del self._links[m]
        if self._timer is not None:
            self._timer.set(self.sessions.next_deadline())

    def _do(self, machine: Session, act, main: bool) -> None:
        kind = type(act)
        if kind is Send:
            conn = self._link(machine).conn
            if conn is not None and conn.transport is not None and not conn.transport.is_closing():
                conn.transport.write(act.data)
                self.sent_by_type[act.mtype] += 1
                if self.on_message is not None:
                    self.on_message("out", time.time(), act.data)
        elif kind is Received:
            if self.on_message is not None:
                self.on_message("in", time.time(), act.data)
        elif kind is Close:
            link = self._link(machine)
            if link.connect_task is not None:
                link.connect_task.cancel()
                link.connect_task = None
            conn, link.conn = link.conn, None
            if conn is not None and conn.transport is not None:
                conn.owner = None
                (conn.transport.abort if act.abort else conn.transport.close)()
        elif kind is Connect:
            link = self._link(machine)
            link.connect_task = asyncio.get_running_loop().create_task(self._connect(machine, link))
        elif kind is MessageRejected:
            shown = act.message[:LOGGED_MESSAGE_BYTES].hex()
            more = f" (first {LOGGED_MESSAGE_BYTES} of {len(act.message)} bytes)" \
                if len(act.message) > LOGGED_MESSAGE_BYTES else ""
            log.warning("peer %s: %s; sending %s; message%s: %s", self.name, act.error,
                        act.notification.name, more, shown or "-",
                        extra={"peer": self.name, "message_type": act.mtype})
        elif kind is StateChanged:
            self._state_changed(machine, act)
        elif kind is NotificationSent:
            self.last_notification_sent = act.notification
            self._emit(act)
        elif kind is NotificationReceived:
            self.last_notification_received = act.notification
            self._emit(act)
        elif kind is PrefixLimitExceeded:
            log.warning("peer %s: %d prefixes of AFI %d/SAFI %d received, more than the maximum %d: "
                        "ending the session (Cease 6/1)", self.name, act.received, act.afi, act.safi,
                        act.limit, extra={"peer": self.name, "limit": act.limit})
        elif kind is CollisionResolved:
            log.info("peer %s: connection collision, keeping the %s connection", self.name,
                     "outgoing" if act.kept_outgoing else "incoming")
        elif kind in (RoutesReceived, EndOfRib):
            self._emit(act)

    def _state_changed(self, machine: Session, act: StateChanged) -> None:
        now = time.time()
        self.last_state_change = now
        self.history.append(HistoryEntry(now, act.old, act.new, act.cause, act.detail))
        link = self._links.get(machine)
        if act.cause is Cause.COLLISION and link is not None and link.conn is not None:
            self._set_addresses(link.conn)  # the peer's connection replaced ours
        if act.new == State.ESTABLISHED:
            self.established_since = now
        elif act.old == State.ESTABLISHED:
            self.established_since = None
        log.info("peer %s: %s -> %s (%s%s)", self.name, act.old.label, act.new.label,
                 act.cause.name.lower().replace("_", " "), f": {act.detail}" if act.detail else "",
                 extra={"peer": self.name, "from_state": act.old.label, "to_state": act.new.label,
                        "cause": act.cause.name.lower()})
        self._emit(act)

    def _emit(self, event) -> None:
        if self.on_event is not None:
            try:
                self.on_event(self, event)
            except Exception:  # an observer must not break the session
                log.exception("peer %s: on_event observer failed", self.name)

    # ------------------------------------------------------------- connecting
    async def _connect(self, machine: Session, link: _Link) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        ttl, min_ttl = peer_ttl(s.ibgp, s.ebgp_multihop, s.gtsm)
        sock = None
        address = s.peer_address
        if s.interface:  # unnumbered: the router's link-local address, learned from its RAs
            router = (self.advertiser.router if self.advertiser else None) or discover_router(s.interface)
            if router is None:
                link.connect_task = None
                self.sessions.connection_failed(
                    machine, self._now(), f"no router link-local address on {s.interface} yet "
                    "(no router advertisement received)")
                self._process()
                return
            address = self.discovered_address = f"{router}%{s.interface}"
        try:
            sock = connecting_socket(address, password=s.password, device=s.vrf, ttl=ttl,
                                     min_ttl=min_ttl, source_address=s.source_address)
            await loop.sock_connect(sock, (address, s.peer_port))
            conn = _Conn(self)
            await loop.create_connection(lambda: conn, sock=sock)
            sock = None
        except asyncio.CancelledError:
            if sock is not None:
                sock.close()
            raise
        except (SockOptError, OSError) as e:
            if sock is not None:
                sock.close()
            why = str(e) if isinstance(e, SockOptError) else (e.strerror or str(e))
            if isinstance(e, SockOptError):
                self.last_error = why
                log.error("peer %s: %s", self.name, e)
            link.connect_task = None
            self.sessions.connection_failed(machine, self._now(), why)
            self._process()
            return
        link.connect_task = None
        link.conn = conn
        if not self.sessions.connection_made(machine, self._now(), conn.addresses()[0],
                                             self._interface_ipv6(conn)):
            link.conn = None
            conn.owner = None
            conn.transport.close()
        else:
            self._set_addresses(conn)
        self._process()

    # --------------------------------------------------------------- helpers
    def _link(self, machine: Session) -> _Link:
        link = self._links.get(machine)
        if link is None:
            link = self._links[machine] = _Link()
        return link

    def _bind_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._timer = Deadline(self._loop, self._on_timer)

    def _now(self) -> float:
        loop = self._loop or asyncio.get_running_loop()
        return loop.time()

    def _apply_ttl(self, conn: _Conn) -> None:
        sock = conn.transport.get_extra_info("socket") if conn.transport else None
        if sock is None:
            return
        s = self.settings
        ttl, min_ttl = peer_ttl(s.ibgp, s.ebgp_multihop, s.gtsm)
        try:
            set_ttl(sock, ttl, min_ttl)
        except OSError as e:
            log.warning("peer %s: cannot set TTL on incoming connection: %s", self.name, e)

    def _interface_ipv6(self, conn: _Conn) -> str | None:
        """Over an IPv4 connection without a configured IPv6 next hop: a global IPv6
        address of the interface toward the peer (the bound device, else the route's)."""
        if self.settings.next_hop6:
            return None
        local, remote = (a[7:] if a and a.startswith("::ffff:") else a for a in conn.addresses())
        if not remote or not local:
            return None
        if ":" in remote:  # a link-local session: the interface's global address leads the next hop
            addr, _, zone = remote.partition("%")
            zone = zone or self.settings.interface
            if not zone or not ipaddress.IPv6Address(addr).is_link_local:
                return None
            self.next_hop_interface = zone
            return interface_global_ipv6(zone)
        self.next_hop_interface, addr = interface_ipv6_toward(remote, self.settings.vrf, local)
        if addr is None:
            log.info("peer %s: no global IPv6 address on %s: IPv6 routes go out with the next hop "
                     "::ffff:%s", self.name, self.next_hop_interface or "the interface toward it",
                     conn.addresses()[0], extra={"peer": self.name})
        return addr

    def _set_addresses(self, conn: _Conn) -> None:
        """The main connection's addresses; for an unnumbered peer the router is whoever holds
        it (a collision candidate that may still lose does not count)."""
        self.local_address, self.remote_address = conn.addresses()
        self.local_port, self.remote_port = conn.ports()
        if self.settings.interface and self.remote_address:
            self.discovered_address = f"{self.remote_address.partition('%')[0]}%{self.settings.interface}"

    def __repr__(self) -> str:
        return f"<PeerTransport {self.name} {self.settings.peer_address} {self.state.label}>"


__all__ = ["PeerTransport", "HistoryEntry"]
