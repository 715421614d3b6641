"""The RFC 4271 §8 session machine, sans-IO.

One :class:`Session` per peer connection.  It takes inputs (``start``,
``stop``, ``connection_made``, ``connection_failed``, ``data_received``,
``handle_timer``, ``send_blocked``/``send_unblocked``, ``set_routes``) each
with the current time ``now`` passed in, and queues actions (bytes to send,
connect, close, state changes; see :mod:`.actions`) that the transport
drains with :meth:`Session.pop_actions`.  :meth:`Session.get_timer` is the
next deadline; the transport calls :meth:`Session.handle_timer` then.  No
clock is read and no socket touched here.

The structure follows OpenBGPD's ``bgp_fsm``: switch on the state, then on
the event; a message that is not expected in the current state is an FSM
error answered with the RFC 6608 NOTIFICATION (5/1, 5/2, 5/3).

ROUTE-REFRESH requests are coalesced: a request only marks its family, and
each marked family is answered once, after the whole read it arrived in has
been processed, or, while the transport reports that writes are blocked
(the peer is not reading), once writing resumes.  A refresh re-sends the
whole Adj-RIB-Out, so answering every request would let a peer turn one
64 KB read of 2,800 requests into thousands of UPDATEs (one event-loop
stall for every session of the daemon), or make us buffer without bound
while it does not read.

Restart policy: after an error the machine passes through Idle and performs
AutomaticStart at once, landing in Active (listening) with the ConnectRetry
deadline set from the exponential backoff; at that deadline it connects out
(unless passive).  Only ``stop()`` leaves it in Idle.  Collisions between two
connections to the same peer are resolved by the transport using
:func:`.collision.resolve_collision` (see that module).
"""
from __future__ import annotations

from ..rib.adj_in import AdjRibIn
from ..rib.adj_out import AdjRibOut
from ..wire.capabilities import DEFAULT_CONTEXT, Negotiated
from ..wire.constants import (CeaseSubcode, ErrorCode, FsmSubcode, MessageType,
                              RouteRefreshSubtype, SAFI)
from ..wire.errors import BGPError
from ..wire.framing import Framer, encode, frame
from ..wire.messages import KEEPALIVE, Notification, Open, RouteRefresh, Update
from .actions import (ABORT, CLOSE, CONNECT, Cause, EndOfRib, NotificationReceived,
                      NotificationSent, Received, RoutesReceived, Send, State, StateChanged)
from .config import SessionConfig, check_open
from .timers import Backoff, send_hold_time

_KEEPALIVE_BYTES = encode(KEEPALIVE)
_WITH_CONNECTION = (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED)
_FSM_SUBCODE = {
    State.OPENSENT: FsmSubcode.UNEXPECTED_IN_OPENSENT,
    State.OPENCONFIRM: FsmSubcode.UNEXPECTED_IN_OPENCONFIRM,
    State.ESTABLISHED: FsmSubcode.UNEXPECTED_IN_ESTABLISHED,
}
_STOP_CAUSE = {
    CeaseSubcode.ADMINISTRATIVE_SHUTDOWN: Cause.ADMIN_STOP,
    CeaseSubcode.PEER_DECONFIGURED: Cause.ADMIN_STOP,
    CeaseSubcode.ADMINISTRATIVE_RESET: Cause.ADMIN_RESET,
    CeaseSubcode.OTHER_CONFIGURATION_CHANGE: Cause.CONFIG_CHANGE,
    CeaseSubcode.BFD_DOWN: Cause.BFD_DOWN,
    CeaseSubcode.CONNECTION_COLLISION_RESOLUTION: Cause.COLLISION,
}


class Session:
    """One BGP session's state machine (see the module docstring)."""

    def __init__(self, cfg: SessionConfig, trace: bool = False) -> None:
        self.cfg = cfg
        self.trace = trace  # queue a Received action for every incoming message
        self.state = State.IDLE
        self.stopped = True  # Idle until start(); stop() sets it again
        self.negotiated: Negotiated | None = None
        self.remote_open: Open | None = None
        self.local_address: str | None = None
        self.outgoing = True  # who initiated the current connection
        self.adj_rib_in = AdjRibIn()
        self.adj_rib_out = AdjRibOut(cfg.local_asn, cfg.ibgp, cfg.next_hop4, cfg.next_hop6)
        self.backoff = Backoff(cfg.connect_retry, cfg.connect_retry_cap, cfg.rand)
        self.sent_counts = [0] * 6  # by message type (index 1..5)
        self.received_counts = [0] * 6
        self.last_notification_sent: Notification | None = None
        self.last_notification_received: Notification | None = None
        self.looped_updates = 0  # UPDATEs whose AS_PATH held our own AS (eBGP), not kept
        self.unnegotiated_updates = 0  # UPDATEs carrying a family that was not negotiated
        self._loop_checked = None
        self._loop_result = False
        self._framer = Framer()
        self._ctx: Negotiated = DEFAULT_CONTEXT
        self._actions: list = []
        self._keepalive = 0.0
        # deadlines (absolute times) or None
        self._connect_retry_at: float | None = None
        self._hold_at: float | None = None
        self._keepalive_at: float | None = None
        self._blocked_since: float | None = None
        self._refresh_pending: set[int] = set()  # families with a ROUTE-REFRESH to answer

    # ------------------------------------------------------------------ output
    def pop_actions(self) -> list:
        out, self._actions = self._actions, []
        return out

    def get_timer(self) -> float | None:
        ds = [d for d in (self._connect_retry_at, self._hold_at, self._keepalive_at,
                          self._send_hold_at()) if d is not None]
        return min(ds) if ds else None

    def _send_hold_at(self) -> float | None:
        if self._blocked_since is None or self.state not in _WITH_CONNECTION:
            return None
        hold = self.negotiated.hold_time if self.negotiated else self.cfg.hold_time
        return self._blocked_since + send_hold_time(hold, self.cfg.send_hold_time)

    # ------------------------------------------------------------------ inputs
    def start(self, now: float) -> None:
        """ManualStart (RFC 4271 event 1); ignored unless Idle."""
        if self.state != State.IDLE:
            return
        self.stopped = False
        self._automatic_start(now, Cause.ADMIN_START, immediate=True)

    def stop(self, now: float, message: str = "",
             subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, notify: bool = True) -> None:
        """ManualStop: Cease (6/2 + RFC 9003 message by default), then Idle for good.

        ``notify=False`` closes the connection without a NOTIFICATION: the
        graceful-restart stop (RFC 4724 §4: a helper keeps the routes of a peer
        whose TCP connection just closes, but flushes them on a Cease).
        """
        self.stopped = True
        if not notify and self.state in _WITH_CONNECTION:
            self._down(now, _STOP_CAUSE.get(subcode, Cause.ADMIN_STOP),
                       "closed without NOTIFICATION (graceful restart)")
            return
        self._cease(now, subcode, message)

    def reset(self, now: float, message: str = "",
              subcode: int = CeaseSubcode.ADMINISTRATIVE_RESET) -> None:
        """Drop the session with a Cease (6/4 by default) and start over."""
        self._cease(now, subcode, message)

    def collision_dump(self, now: float) -> None:
        """OpenCollisionDump: this connection lost the collision (Cease 6/7)."""
        self.stopped = True
        self._cease(now, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION, "")

    def connection_made(self, now: float, local_address: str | None = None,
                        outgoing: bool = True) -> bool:
        """TcpCRAcked / TcpConnectionConfirmed.  False: the transport must close it."""
        if self.state not in (State.CONNECT, State.ACTIVE):
            return False
        self.outgoing = outgoing
        self.local_address = local_address
        self._connect_retry_at = None
        self._framer = Framer()
        self._ctx = DEFAULT_CONTEXT
        self.negotiated = None
        self.remote_open = None
        self._blocked_since = None
        self._refresh_pending.clear()
        self.adj_rib_out.connected(local_address)
        self._send_msg(self.cfg.open_message(), MessageType.OPEN)
        self._hold_at = now + self.cfg.open_hold_time
        self._set_state(State.OPENSENT, Cause.TCP_ESTABLISHED)
        return True

    def accept(self, now: float, local_address: str | None = None) -> bool:
        """Run this machine on an incoming connection from Idle (a collision
        candidate the transport holds beside the main machine).  It stays
        ``stopped``: if it fails it does not restart; :meth:`adopt` makes it
        the peer's main machine."""
        if self.state == State.IDLE:
            self._set_state(State.ACTIVE, Cause.TCP_ESTABLISHED)
        return self.connection_made(now, local_address, outgoing=False)

    def adopt(self) -> None:
        """This machine won a collision and now restarts on failure."""
        self.stopped = False

    def connection_failed(self, now: float, detail: str = "") -> None:
        """TcpConnectionFails: the connect failed, or the peer closed/reset the connection."""
        if self.state == State.CONNECT:
            self._connect_retry_at = now + self.backoff.next_delay()
            self._set_state(State.ACTIVE, Cause.TCP_FAILED, detail)
        elif self.state in _WITH_CONNECTION:
            self._down(now, Cause.TCP_FAILED, detail)

    def send_blocked(self, now: float) -> None:
        """The transport cannot write (peer not reading): start the RFC 9687 Send Hold Timer."""
        if self._blocked_since is None and self.state in _WITH_CONNECTION:
            self._blocked_since = now

    def send_unblocked(self, now: float) -> None:
        self._blocked_since = None
        self._answer_refresh(now)

    def _answer_refresh(self, now: float) -> None:
        """Answer the pending ROUTE-REFRESH requests, one per family, unless writes are blocked."""
        if not self._refresh_pending or self._blocked_since is not None:
            return
        pending, self._refresh_pending = sorted(self._refresh_pending), set()
        if self.state == State.ESTABLISHED:
            for afi in pending:
                self._send_updates(now, self.adj_rib_out.refresh(afi, self._ctx))

    def set_routes(self, now: float, routes: dict) -> None:
        """Set the wanted Adj-RIB-Out; when Established, send the difference."""
        self.adj_rib_out.set_wanted(routes)
        if self.state == State.ESTABLISHED:
            self._send_updates(now, self.adj_rib_out.diff(self._ctx))

    def update_routes(self, now: float, delta: dict) -> None:
        """Change part of the wanted Adj-RIB-Out (``attrs``, or None to withdraw); when
        Established, send UPDATEs for those routes only."""
        if self.state == State.ESTABLISHED:
            self._send_updates(now, self.adj_rib_out.apply_delta(delta, self._ctx))
        else:
            self.adj_rib_out.update_wanted(delta)

    def request_refresh(self, now: float) -> bool:
        """Ask the peer to re-send its routes (ROUTE-REFRESH for every family)."""
        neg = self.negotiated
        if self.state != State.ESTABLISHED or neg is None or not neg.route_refresh:
            return False
        for afi, safi in sorted(neg.families):
            self._send_msg(RouteRefresh(afi, safi), MessageType.ROUTE_REFRESH)
        self._keepalive_at = now + self._keepalive if self._keepalive else None
        return True

    def handle_timer(self, now: float) -> None:
        """Fire every deadline that is due."""
        sh = self._send_hold_at()
        if sh is not None and sh <= now:
            self._error(now, BGPError(ErrorCode.SEND_HOLD_TIMER_EXPIRED, 0),
                        Cause.SEND_HOLD_TIMER_EXPIRED, abort=True)
        if self._hold_at is not None and self._hold_at <= now:
            self._error(now, BGPError(ErrorCode.HOLD_TIMER_EXPIRED, 0), Cause.HOLD_TIMER_EXPIRED)
        if self._keepalive_at is not None and self._keepalive_at <= now:
            self._send_keepalive(now)
        if self._connect_retry_at is not None and self._connect_retry_at <= now:
            self._connect_retry_expired(now)

    def data_received(self, data: bytes, now: float) -> None:
        """Bytes from the connection, in any chunking."""
        if self.state not in _WITH_CONNECTION:
            return
        try:
            frames = self._framer.feed(data)
        except BGPError as err:
            self._error(now, err)
            return
        if not frames:
            return
        rx = self.received_counts
        for mtype, body in frames:
            if self.state not in _WITH_CONNECTION:
                return
            rx[mtype] += 1
            if self.trace:
                self._actions.append(Received(frame(mtype, bytes(body)), mtype))
            try:
                if mtype == MessageType.UPDATE:
                    self._on_update(now, body)
                elif mtype == MessageType.KEEPALIVE:
                    self._on_keepalive(now)
                elif mtype == MessageType.NOTIFICATION:
                    self._on_notification(now, Notification.decode_body(body))
                elif mtype == MessageType.OPEN:
                    self._on_open(now, body)
                else:
                    self._on_route_refresh(now, body)
            except BGPError as err:
                self._error(now, err)
                return
        if self.state in (State.OPENCONFIRM, State.ESTABLISHED) and self.negotiated is not None:
            hold = self.negotiated.hold_time
            self._hold_at = now + hold if hold else None
        self._answer_refresh(now)

    # ---------------------------------------------------------------- messages
    def _unexpected(self, now: float, what: str) -> None:
        self._error(now, BGPError(ErrorCode.FSM, _FSM_SUBCODE[self.state], reason=what))

    def _on_open(self, now: float, body) -> None:
        if self.state != State.OPENSENT:
            self._unexpected(now, "OPEN")
            return
        msg = Open.decode_body(body)
        neg = check_open(self.cfg, msg)
        self.remote_open = msg
        self.negotiated = neg
        self._ctx = neg
        self._framer.max_len = neg.max_message_len
        self._keepalive = float(neg.keepalive_time) if neg.hold_time else 0.0
        self._send_msg(KEEPALIVE, MessageType.KEEPALIVE)
        self._keepalive_at = now + self._keepalive if self._keepalive else None
        self._hold_at = now + neg.hold_time if neg.hold_time else None
        self._set_state(State.OPENCONFIRM, Cause.OPEN_RECEIVED)

    def _on_keepalive(self, now: float) -> None:
        if self.state == State.OPENCONFIRM:
            self.backoff.reset()
            self._set_state(State.ESTABLISHED, Cause.KEEPALIVE_RECEIVED)
            self._send_updates(now, self.adj_rib_out.initial(self._ctx))
        elif self.state == State.OPENSENT:
            self._unexpected(now, "KEEPALIVE")

    def _on_update(self, now: float, body) -> None:
        if self.state != State.ESTABLISHED:
            self._unexpected(now, "UPDATE")
            return
        upd = Update.decode_body(body, self._ctx)
        fams = self._ctx.families
        mr, mu = upd.mp_reach, upd.mp_unreach
        if (mr is not None and (mr.afi, mr.safi) not in fams) or (mu is not None and (mu.afi, mu.safi) not in fams):
            # RFC 4760 §7 / RFC 4271: a family that was not negotiated is ignored, never installed
            if mr is not None and (mr.afi, mr.safi) not in fams:
                upd.mp_reach = None
            if mu is not None and (mu.afi, mu.safi) not in fams:
                upd.mp_unreach = None
            self.unnegotiated_updates += 1
            if not upd.nlri and not upd.withdrawn and upd.mp_reach is None and upd.mp_unreach is None:
                return  # nothing left: not an (IPv4) End-of-RIB either
        attrs = upd.attrs
        if attrs is not None and attrs.as_path and not self.cfg.ibgp and self._as_loop(attrs):
            # RFC 4271 §9.1.2: a route whose AS_PATH holds our own AS is not
            # usable; like FRR and BIRD, it is not kept (counted instead).
            self.looped_updates += 1
            upd.treat_as_withdraw = True
        eor = self.adj_rib_in.apply(upd)
        if eor is not None:
            self._actions.append(EndOfRib(eor))
        else:
            self._actions.append(RoutesReceived(self.adj_rib_in.counts()))

    def _as_loop(self, attrs) -> bool:
        # attribute sets are interned: one check per distinct set
        if attrs is self._loop_checked:
            return self._loop_result
        asn = self.cfg.local_asn
        looped = any(asn in asns for _, asns in attrs.as_path)
        self._loop_checked, self._loop_result = attrs, looped
        return looped

    def _on_route_refresh(self, now: float, body) -> None:
        if self.state != State.ESTABLISHED:
            self._unexpected(now, "ROUTE-REFRESH")
            return
        neg = self._ctx
        if not neg.route_refresh:
            return  # not negotiated: ignored (RFC 2918 §4)
        rr = RouteRefresh.decode_body(body)
        if (rr.afi, rr.safi) not in neg.families or rr.safi != SAFI.UNICAST:
            return  # a family not negotiated: ignored (RFC 2918 §4)
        if rr.subtype == RouteRefreshSubtype.NORMAL:
            self._refresh_pending.add(rr.afi)  # answered after this read (see the module docstring)
        elif neg.enhanced_route_refresh and rr.subtype == RouteRefreshSubtype.BORR:
            self.adj_rib_in.begin_refresh(rr.afi)
        elif neg.enhanced_route_refresh and rr.subtype == RouteRefreshSubtype.EORR:
            if self.adj_rib_in.end_refresh(rr.afi):
                self._actions.append(RoutesReceived(self.adj_rib_in.counts()))
        # other subtypes: ignored (RFC 7313 §5)

    def _on_notification(self, now: float, n: Notification) -> None:
        self.last_notification_received = n
        self._actions.append(NotificationReceived(n))
        self._actions.append(CLOSE)
        self._down(now, Cause.NOTIFICATION_RECEIVED, n.name, closed=True)

    # ------------------------------------------------------------------ timers
    def _send_keepalive(self, now: float) -> None:
        if self.state in (State.OPENCONFIRM, State.ESTABLISHED) and self._keepalive:
            self._actions.append(Send(_KEEPALIVE_BYTES, MessageType.KEEPALIVE))
            self.sent_counts[MessageType.KEEPALIVE] += 1
            self._keepalive_at = now + self._keepalive
        else:
            self._keepalive_at = None

    def _connect_retry_expired(self, now: float) -> None:
        self._connect_retry_at = None
        if self.state == State.ACTIVE:
            if self.cfg.passive:
                return
            self._connect_retry_at = now + self.cfg.connect_retry
            self._actions.append(CONNECT)
            self._set_state(State.CONNECT, Cause.CONNECT_RETRY)
        elif self.state == State.CONNECT:
            # the connect attempt took too long: abandon it and try again
            self._actions.append(CLOSE)
            self._actions.append(CONNECT)
            self._connect_retry_at = now + self.backoff.next_delay()

    # ----------------------------------------------------------------- helpers
    def _send_msg(self, msg, mtype: int) -> None:
        self._actions.append(Send(encode(msg, self._ctx), mtype))
        self.sent_counts[mtype] += 1

    def _send_updates(self, now: float, msgs: list[bytes]) -> None:
        if not msgs:
            return
        acts = self._actions
        for m in msgs:
            t = m[18]
            acts.append(Send(m, t))
            self.sent_counts[t] += 1
        if self._keepalive:
            self._keepalive_at = now + self._keepalive  # RFC 4271 §4.4: an UPDATE restarts it

    def _set_state(self, new: State, cause: Cause, detail: str = "") -> None:
        old = self.state
        self.state = new
        self._actions.append(StateChanged(old, new, cause, detail))

    def _cease(self, now: float, subcode: int, message: str) -> None:
        cause = _STOP_CAUSE.get(subcode, Cause.ADMIN_RESET)
        if self.state in _WITH_CONNECTION:
            self._error(now, Notification.cease(subcode, message).error(), cause)
        elif self.state == State.CONNECT:
            self._actions.append(CLOSE)
            self._down(now, cause, closed=True)
        elif self.state == State.ACTIVE:
            self._down(now, cause, closed=True)
        elif not self.stopped:
            self._automatic_start(now, cause, immediate=False)

    def _error(self, now: float, err: BGPError, cause: Cause = Cause.NOTIFICATION_SENT,
               abort: bool = False) -> None:
        """Send the NOTIFICATION for ``err``, close, go down."""
        n = err.notification()
        self.last_notification_sent = n
        self._actions.append(Send(encode(n, self._ctx), MessageType.NOTIFICATION))
        self.sent_counts[MessageType.NOTIFICATION] += 1
        self._actions.append(NotificationSent(n))
        self._actions.append(ABORT if abort else CLOSE)
        self._down(now, cause, n.name, closed=True)

    def _down(self, now: float, cause: Cause, detail: str = "", closed: bool = False) -> None:
        """Release the connection's state, go to Idle, then restart unless stopped."""
        if not closed:
            self._actions.append(CLOSE)
        self._hold_at = self._keepalive_at = self._connect_retry_at = None
        self._blocked_since = None
        self._refresh_pending.clear()
        self._keepalive = 0.0
        self.negotiated = None
        self._ctx = DEFAULT_CONTEXT
        self.adj_rib_in.clear()
        self.adj_rib_out.reset()
        if self.state != State.IDLE:
            self._set_state(State.IDLE, cause, detail)
        if not self.stopped:
            self._automatic_start(now, Cause.AUTOMATIC_START, immediate=False)

    def _automatic_start(self, now: float, cause: Cause, immediate: bool) -> None:
        if self.cfg.passive:
            self._set_state(State.ACTIVE, cause)
        elif immediate:
            self._connect_retry_at = now + self.cfg.connect_retry
            self._actions.append(CONNECT)
            self._set_state(State.CONNECT, cause)
        else:
            self._connect_retry_at = now + self.backoff.next_delay()
            self._set_state(State.ACTIVE, cause)

    # ---------------------------------------------------------------- queries
    @property
    def remote_id(self) -> int | None:
        return self.remote_open.bgp_id if self.remote_open else None
