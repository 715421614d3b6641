"""One BGP peer over asyncio: the thin transport around the session machine.

The protocol lives in :class:`speakerd.fsm.Session`; this module only moves
bytes and time in and actions out (the way uvicorn's ``h11_impl`` wraps h11
and aioquic's asyncio protocol wraps ``QuicConnection``):

* every input (bytes read, connection made/lost, write buffer full/drained,
  timer) is passed to the machine with ``now = loop.time()``;
* the machine's queued actions are carried out in order (write, connect,
  close, report);
* one timer per peer is re-armed from the machine's next deadline.

Collisions (RFC 4271 §6.8): an incoming connection that arrives while the
main machine has its own connection or connect attempt in flight (Connect,
OpenSent, OpenConfirm) is given a second machine (the candidate).  As soon as either knows the peer's BGP identifier,
:func:`speakerd.fsm.resolve_collision` picks the connection to keep; the
other machine sends Cease 6/7 and is dropped.  A main machine still in
Connect has no connection to compare, so the candidate wins once it has
the peer's OPEN (the connect attempt is abandoned).  While Established, a new
incoming connection is answered with Cease 6/7 and closed.

Nothing here blocks: a peer that never answers only costs its own connect
task and timer.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from ..fsm import Keep, Session, SessionConfig, State, resolve_collision
from ..fsm.actions import (Close, Connect, EndOfRib, NotificationReceived, NotificationSent,
                           Received, RoutesReceived, Send, StateChanged, Cause)
from ..wire.capabilities import IPV4_UNICAST, IPV6_UNICAST, Family, Negotiated
from ..wire.constants import BGP_PORT, CeaseSubcode
from ..wire.framing import encode
from ..wire.messages import Notification
from .sockopts import SockOptError, connecting_socket, peer_ttl, set_md5, set_ttl

log = logging.getLogger("speakerd.peer")

WRITE_HIGH_WATER = 256 * 1024
CLOSE_FLUSH_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class PeerSettings:
    name: str
    peer_address: str
    local_asn: int
    peer_asn: int
    router_id: int
    peer_port: int = BGP_PORT
    hold_time: int = 90
    keepalive_time: float | None = None
    connect_retry: float = 120.0
    source_address: str | None = None
    password: str | None = field(default=None, repr=False)
    vrf: str | None = None
    ebgp_multihop: bool = False
    gtsm: bool = False
    graceful_restart: bool = False
    restart_state: bool = False  # RFC 4724 R bit in the first session's OPEN
    passive: bool = False
    next_hop4: str | None = None
    next_hop6: str | None = None
    families: tuple[Family, ...] = (IPV4_UNICAST, IPV6_UNICAST)
    connect_retry_cap: float = 600.0
    send_hold_time: float | None = None  # None = RFC 9687 default

    @property
    def ibgp(self) -> bool:
        return self.local_asn == self.peer_asn

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            local_asn=self.local_asn, peer_asn=self.peer_asn, router_id=self.router_id,
            hold_time=self.hold_time, keepalive_time=self.keepalive_time,
            connect_retry=self.connect_retry, connect_retry_cap=self.connect_retry_cap,
            passive=self.passive, families=self.families, graceful_restart=self.graceful_restart,
            restart_state=self.restart_state and self.graceful_restart,
            send_hold_time=self.send_hold_time, next_hop4=self.next_hop4, next_hop6=self.next_hop6)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    time: float  # wall clock (time.time())
    old: State
    new: State
    cause: Cause
    detail: str = ""


class _Conn(asyncio.Protocol):
    """One TCP connection; forwards everything to its owner Peer."""

    def __init__(self, owner: "Peer | None" = None, on_made: Callable | None = None) -> None:
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

    def ports(self) -> tuple[int | None, int | None]:
        if self.transport is None:
            return None, None
        local = self.transport.get_extra_info("sockname")
        remote = self.transport.get_extra_info("peername")
        return (local[1] if local else None), (remote[1] if remote else None)


class _Link:
    """A machine and the connection it runs on."""
    __slots__ = ("machine", "conn", "connect_task")

    def __init__(self, machine: Session) -> None:
        self.machine = machine
        self.conn: _Conn | None = None
        self.connect_task: asyncio.Task | None = None


class Peer:
    """A BGP peer: ``start()``, ``await stop(message)``, ``set_routes(routes)``."""

    def __init__(self, settings: PeerSettings,
                 on_event: Callable[["Peer", object], None] | None = None,
                 on_message: Callable[[str, float, bytes], None] | None = None) -> None:
        self.settings = settings
        self.on_event = on_event
        self.on_message = on_message
        self._cfg = settings.session_config()
        self._link = _Link(self._new_machine())
        self._candidate: _Link | None = None
        self._routes: dict = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.history: collections.deque[HistoryEntry] = collections.deque(maxlen=100)
        self.sent_by_type = [0] * 6
        self._received_base = [0] * 6
        self.last_state_change = time.time()
        self.established_since: float | None = None
        self.last_notification_sent: Notification | None = None
        self.last_notification_received: Notification | None = None
        self.local_address: str | None = None
        self.remote_address: str | None = None
        self.local_port: int | None = None  # of the current connection (for captures)
        self.remote_port: int | None = None
        self.last_error: str = ""

    # ---------------------------------------------------------------- public
    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def state(self) -> State:
        return self._link.machine.state

    @property
    def negotiated(self) -> Negotiated | None:
        return self._link.machine.negotiated

    @property
    def adj_rib_in(self):
        return self._link.machine.adj_rib_in

    @property
    def adj_rib_out(self):
        return self._link.machine.adj_rib_out

    @property
    def wanted_routes(self) -> dict:
        """The routes last given to :meth:`set_routes` (read-only)."""
        return self._routes

    @property
    def ignored_updates(self) -> dict[str, int]:
        """UPDATEs not kept: looped (our AS in the path) and un-negotiated families."""
        m = self._link.machine
        return {"looped": m.looped_updates, "unnegotiated_family": m.unnegotiated_updates}

    @property
    def received_by_type(self) -> list[int]:
        return [a + b for a, b in zip(self._received_base, self._link.machine.received_counts)]

    @property
    def uptime(self) -> float | None:
        return time.time() - self.established_since if self.established_since else None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._link.machine.start(self._now())
        self._process()

    async def stop(self, message: str = "", subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
                   notify: bool = True) -> None:
        """Cease (6/2 with an RFC 9003 message), then wait until the connection is closed.

        ``notify=False``: close without a NOTIFICATION (graceful restart, see
        :meth:`speakerd.fsm.Session.stop`)."""
        links = [self._link] + ([self._candidate] if self._candidate else [])
        conns = [l.conn for l in links if l.conn is not None]
        now = self._now()
        for link in links:
            link.machine.stop(now, message, subcode, notify=notify)
        self._process()
        for link in links:
            if link.connect_task is not None:
                link.connect_task.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for c in conns:
            try:
                await asyncio.wait_for(asyncio.shield(c.closed), CLOSE_FLUSH_TIMEOUT)
            except asyncio.TimeoutError:
                if c.transport is not None:
                    c.transport.abort()

    def reset(self, reason: str = "", subcode: int = CeaseSubcode.ADMINISTRATIVE_RESET) -> None:
        """Drop the session (Cease 6/4 by default) and reconnect."""
        self._link.machine.reset(self._now(), reason, subcode)
        self._process()

    def set_routes(self, routes: dict) -> None:
        self._routes = dict(routes)
        now = self._now()
        self._link.machine.set_routes(now, routes)
        if self._candidate is not None:
            self._candidate.machine.set_routes(now, routes)
        self._process()

    def update_routes(self, delta: dict) -> None:
        """Change part of the wanted routes (``(afi, key) -> RouteAttrs``, None = withdraw)."""
        routes = self._routes
        for rk, ra in delta.items():
            if ra is None:
                routes.pop(rk, None)
            else:
                routes[rk] = ra
        now = self._now()
        self._link.machine.update_routes(now, delta)
        if self._candidate is not None:
            self._candidate.machine.update_routes(now, delta)
        self._process()

    def route_refresh_request(self) -> bool:
        ok = self._link.machine.request_refresh(self._now())
        self._process()
        return ok

    # -------------------------------------------------------- incoming (listener)
    def accept_connection(self, conn: _Conn) -> None:
        """A connection from this peer's address, accepted by a listener."""
        self._loop = asyncio.get_running_loop()
        now = self._now()
        conn.owner = self
        self._apply_ttl(conn)
        main = self._link
        st = main.machine.state
        if st == State.ACTIVE or (st == State.CONNECT and main.connect_task is None and main.conn is None):
            main.conn = conn
            main.machine.connection_made(now, conn.addresses()[0], outgoing=False)
            self._set_addresses(conn)
        elif st in (State.CONNECT, State.OPENSENT, State.OPENCONFIRM) and self._candidate is None:
            # our own connection (or attempt) is in flight: keep both until
            # the BGP identifiers decide (RFC 4271 §6.8)
            cand = _Link(self._new_machine())
            cand.conn = conn
            cand.machine.set_routes(now, self._routes)
            cand.machine.accept(now, conn.addresses()[0])
            self._candidate = cand
        else:
            # Idle (stopped), Established, or a second collision: refuse.
            if main.machine.state == State.ESTABLISHED:
                conn.transport.write(encode(Notification(6, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)))
            conn.owner = None
            conn.transport.close()
            return
        self._process()

    # ------------------------------------------------------------ callbacks
    def _link_of(self, conn: _Conn) -> _Link | None:
        if self._link.conn is conn:
            return self._link
        if self._candidate is not None and self._candidate.conn is conn:
            return self._candidate
        return None

    def _on_data(self, conn: _Conn, data: bytes) -> None:
        link = self._link_of(conn)
        if link is None:
            return
        link.machine.data_received(data, self._now())
        self._process()

    def _on_lost(self, conn: _Conn, exc) -> None:
        link = self._link_of(conn)
        if link is None:
            return
        link.conn = None
        link.machine.connection_failed(self._now(), str(exc) if exc else "connection closed by peer")
        self._process()

    def _on_blocked(self, conn: _Conn, blocked: bool) -> None:
        link = self._link_of(conn)
        if link is None:
            return
        if blocked:
            link.machine.send_blocked(self._now())
        else:
            link.machine.send_unblocked(self._now())
        self._process()

    def _on_timer(self) -> None:
        self._timer = None
        now = self._now()
        self._link.machine.handle_timer(now)
        if self._candidate is not None:
            self._candidate.machine.handle_timer(now)
        self._process()

    # ------------------------------------------------------------- actions
    def _process(self) -> None:
        for _ in range(4):  # a collision decision can queue more actions
            for link in (self._link, self._candidate):
                if link is not None:
                    self._run(link, link.machine.pop_actions())
            if not self._resolve_collision():
                break
        if self._candidate is not None and self._candidate.machine.state == State.IDLE:
            self._candidate = None
        self._arm()

    def _run(self, link: _Link, actions: list) -> None:
        main = link is self._link
        tap = self.on_message
        for act in actions:
            if type(act) is Send:
                conn = link.conn
                if conn is not None and conn.transport is not None and not conn.transport.is_closing():
                    conn.transport.write(act.data)
                    self.sent_by_type[act.mtype] += 1
                    if tap is not None:
                        tap("out", time.time(), act.data)
            elif type(act) is Received:
                if tap is not None:
                    tap("in", time.time(), act.data)
            elif type(act) is Close:
                if link.connect_task is not None:
                    link.connect_task.cancel()
                    link.connect_task = None
                conn, link.conn = link.conn, None
                if conn is not None and conn.transport is not None:
                    conn.owner = None
                    (conn.transport.abort if act.abort else conn.transport.close)()
            elif type(act) is Connect:
                link.connect_task = asyncio.get_running_loop().create_task(self._connect(link))
            elif not main:
                continue  # the candidate only reports once it is the main machine
            elif type(act) is StateChanged:
                self._state_changed(act)
            elif type(act) is NotificationSent:
                self.last_notification_sent = act.notification
                self._emit(act)
            elif type(act) is NotificationReceived:
                self.last_notification_received = act.notification
                self._emit(act)
            elif type(act) in (RoutesReceived, EndOfRib):
                self._emit(act)

    def _state_changed(self, act: StateChanged) -> None:
        now = time.time()
        self.last_state_change = now
        self.history.append(HistoryEntry(now, act.old, act.new, act.cause, act.detail))
        if act.new == State.ESTABLISHED:
            self.established_since = now
            if self._cfg.restart_state:
                # the restart is over once a session is up: later OPENs carry R=0
                self._cfg = dataclasses.replace(self._cfg, restart_state=False)
                self._link.machine.cfg = self._cfg
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

    def _resolve_collision(self) -> bool:
        cand = self._candidate
        if cand is None or cand.machine.state == State.IDLE:
            return False
        main = self._link
        if main.machine.state in (State.IDLE, State.ACTIVE):
            # the main connection went away: the candidate simply takes over
            self._promote(cand)
            return True
        remote_id = main.machine.remote_id or cand.machine.remote_id
        if remote_id is None:
            return False
        if main.machine.state == State.CONNECT:
            # our side is only a connect attempt: there is no second connection
            # to compare with (RFC 4271 §6.8), and the attempt may never complete
            keep_main = False
        else:
            keep = resolve_collision(self.settings.router_id, remote_id, self.settings.local_asn,
                                     self.settings.peer_asn)
            keep_main = (keep is Keep.OUTGOING) == main.machine.outgoing
        now = self._now()
        if keep_main:
            cand.machine.collision_dump(now)
            log.info("peer %s: connection collision, keeping the %s connection", self.name,
                     "outgoing" if main.machine.outgoing else "incoming")
        else:
            main.machine.collision_dump(now)
            self._run(main, main.machine.pop_actions())
            self._promote(cand)
            log.info("peer %s: connection collision, keeping the incoming connection", self.name)
        return True

    def _promote(self, cand: _Link) -> None:
        old = self._link.machine
        self._received_base = [a + b for a, b in zip(self._received_base, old.received_counts)]
        cand.machine.adopt()
        self._link = cand
        self._candidate = None
        if cand.conn is not None:
            self._set_addresses(cand.conn)
        self._state_changed(StateChanged(old.state, cand.machine.state, Cause.COLLISION,
                                         "kept the connection initiated by the peer"))

    def _arm(self) -> None:
        ds = [d for l in (self._link, self._candidate) if l is not None
              and (d := l.machine.get_timer()) is not None]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if ds and self._loop is not None:
            self._timer = self._loop.call_at(min(ds), self._on_timer)

    # ------------------------------------------------------------- connecting
    async def _connect(self, link: _Link) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        ttl, min_ttl = peer_ttl(s.ibgp, s.ebgp_multihop, s.gtsm)
        sock = None
        try:
            sock = connecting_socket(s.peer_address, password=s.password, device=s.vrf, ttl=ttl,
                                     min_ttl=min_ttl, source_address=s.source_address)
            await loop.sock_connect(sock, (s.peer_address, s.peer_port))
            conn = _Conn(self)
            await loop.create_connection(lambda: conn, sock=sock)
            sock = None
        except asyncio.CancelledError:
            if sock is not None:
                sock.close()
            raise
        except SockOptError as e:
            if sock is not None:
                sock.close()
            self.last_error = str(e)
            log.error("peer %s: %s", self.name, e)
            self._connect_failed(link, str(e))
            return
        except OSError as e:
            if sock is not None:
                sock.close()
            self._connect_failed(link, e.strerror or str(e))
            return
        link.connect_task = None
        if link.machine.state != State.CONNECT or link is not self._link:
            conn.owner = None
            conn.transport.close()
            return
        link.conn = conn
        self._set_addresses(conn)
        link.machine.connection_made(self._now(), conn.addresses()[0], outgoing=True)
        self._process()

    def _connect_failed(self, link: _Link, why: str) -> None:
        link.connect_task = None
        if link is self._link:
            link.machine.connection_failed(self._now(), why)
            self._process()

    # --------------------------------------------------------------- helpers
    def _new_machine(self) -> Session:
        return Session(self._cfg, trace=self.on_message is not None)

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

    def _set_addresses(self, conn: _Conn) -> None:
        self.local_address, self.remote_address = conn.addresses()
        self.local_port, self.remote_port = conn.ports()

    def __repr__(self) -> str:
        return f"<Peer {self.name} {self.settings.peer_address} {self.state.label}>"


__all__ = ["Peer", "PeerSettings", "HistoryEntry", "set_md5"]
