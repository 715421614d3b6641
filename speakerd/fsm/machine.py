"""The RFC 4271 §8 session machine, sans-IO.

One :class:`Session` per TCP connection to a peer (the pair of a main and a
collision candidate is :class:`.pair.SessionPair`).  Every input — ``start``,
``stop``, ``reset``, ``connection_made``, ``connection_failed``,
``data_received`` (each message an event), ``tick`` (each expired timer an
event) — becomes one :class:`.events.Event` and is dispatched through one
table, ``TRANSITIONS``: ``(state, event) -> handler``.  A pair missing from
the table is an FSM error: with a connection, the RFC 6608 NOTIFICATION
(5/1, 5/2, 5/3) and Idle; in Connect/Active the attempt is dropped and the
machine goes to Idle; Idle ignores it (RFC 4271 §8.2.2).

Inputs queue actions (bytes to send, connect, close, state changes; see
:mod:`.actions`) that the transport drains with :meth:`Session.pop_actions`;
:meth:`Session.next_deadline` is the next timer and :meth:`Session.tick`
fires what is due.  ``now`` is passed in; no clock is read and no socket
touched here.

Any exception raised while handling an input ends the session: a
:class:`BGPError` with its own NOTIFICATION, anything else with Cease/
Unspecific (6/0).  Both queue a :class:`.actions.MessageRejected` carrying
the message that caused it, for the transport to log.

ROUTE-REFRESH requests are coalesced: a request only marks its family, and
each marked family is answered once, after the whole read it arrived in has
been processed, or, while the transport reports that writes are blocked
(the peer is not reading), once writing resumes.  A refresh re-sends the
whole Adj-RIB-Out, so answering every request would let a peer turn one
64 KB read of 2,800 requests into thousands of UPDATEs, or make us buffer
without bound while it does not read.

Restart policy: after an error the machine passes through Idle and performs
AutomaticStart at once, landing in Active (listening) with the ConnectRetry
deadline set from the exponential backoff; at that deadline it connects out
(unless passive).  Only ``stop()`` and a lost collision leave it in Idle.
"""
from __future__ import annotations

import struct
from typing import Callable

from ..rib.adj_in import AdjRibIn
from ..rib.adj_out import AdjRibOut
from ..wire.capabilities import DEFAULT_CONTEXT, IPV4_UNICAST, Negotiated
from ..wire.constants import (TYPE_OFFSET, CeaseSubcode, ErrorCode, FsmSubcode, MessageType,
                              RouteRefreshSubtype, SAFI)
from ..wire.errors import BGPError
from ..wire.framing import Framer, encode, frame
from ..wire.messages import KEEPALIVE, Notification, Open, RouteRefresh, Update
from .actions import (ABORT, CLOSE, CONNECT, Cause, EndOfRib, MessageRejected,
                      NotificationReceived, NotificationSent, PrefixLimitExceeded, Received,
                      RoutesReceived, Send, State, StateChanged)
from .events import MESSAGE_EVENT, Event
from .open import check_open, open_message
from .settings import SessionSettings
from .timers import Backoff, send_hold_time

_KEEPALIVE_BYTES = encode(KEEPALIVE)
WITH_CONNECTION = frozenset((State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED))
_FSM_SUBCODE = {
    State.OPENSENT: FsmSubcode.UNEXPECTED_IN_OPENSENT,
    State.OPENCONFIRM: FsmSubcode.UNEXPECTED_IN_OPENCONFIRM,
    State.ESTABLISHED: FsmSubcode.UNEXPECTED_IN_ESTABLISHED,
}
STOP_CAUSE = {
    CeaseSubcode.ADMINISTRATIVE_SHUTDOWN: Cause.ADMIN_STOP,
    CeaseSubcode.PEER_DECONFIGURED: Cause.ADMIN_STOP,
    CeaseSubcode.ADMINISTRATIVE_RESET: Cause.ADMIN_RESET,
    CeaseSubcode.OTHER_CONFIGURATION_CHANGE: Cause.CONFIG_CHANGE,
    CeaseSubcode.BFD_DOWN: Cause.BFD_DOWN,
    CeaseSubcode.CONNECTION_COLLISION_RESOLUTION: Cause.COLLISION,
}
_PREFIX_LIMIT_DATA = struct.Struct("!HBI")  # RFC 4486 §4: AFI, SAFI, upper bound
_MAX_REJECTED_BYTES = 4096  # of a bad read kept for the log when no message could be framed


class Session:
    """One BGP session's state machine (see the module docstring)."""

    def __init__(self, settings: SessionSettings, trace: bool = False,
                 restart_state: bool | None = None, one_shot: bool = False) -> None:
        self.settings = settings
        self.trace = trace  # queue a Received action for every incoming message
        self.state = State.IDLE
        self.stopped = True  # Idle until start(); stop() sets it again
        self.one_shot = one_shot  # a collision candidate: never restarts until adopted
        # RFC 4724 R bit in our OPENs: until a session of this peer is Established
        self.restart_state = settings.restart_state if restart_state is None else restart_state
        self.negotiated: Negotiated | None = None
        self.remote_open: Open | None = None
        self.local_address: str | None = None
        # the global IPv6 address of the interface toward the peer (found by the transport):
        # the next hop of IPv6 routes over an IPv4 connection
        self.interface_ipv6: str | None = None
        self.outgoing = True  # who initiated the current connection
        self.adj_rib_in = AdjRibIn()
        self.adj_rib_out = AdjRibOut(settings.local_asn, settings.ibgp, settings.next_hop4,
                                     settings.next_hop6)
        self.backoff = Backoff(settings.connect_retry, settings.connect_retry_cap, settings.rand)
        self.sent_counts = [0] * 6  # by message type (index 1..5)
        self.received_counts = [0] * 6
        self.last_notification_sent: Notification | None = None
        self.last_notification_received: Notification | None = None
        self.looped_updates = 0  # UPDATEs whose AS_PATH held our own AS (eBGP), not kept
        self.unnegotiated_updates = 0  # UPDATEs carrying a family that was not negotiated
        self.prefix_limit_hits = 0  # sessions ended with Cease 6/1 (max_prefixes exceeded)
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

    def next_deadline(self) -> float | None:
        ds = [d for d in (self._connect_retry_at, self._hold_at, self._keepalive_at,
                          self._send_hold_at()) if d is not None]
        return min(ds) if ds else None

    def _send_hold_at(self) -> float | None:
        if self._blocked_since is None or self.state not in WITH_CONNECTION:
            return None
        hold = self.negotiated.hold_time if self.negotiated else self.settings.hold_time
        return self._blocked_since + send_hold_time(hold, self.settings.send_hold_time)

    # ------------------------------------------------------------------ inputs
    def handle(self, event: Event, now: float, arg=None):
        """Dispatch one event through :data:`TRANSITIONS` (every input ends here).

        An exception raised by the handler ends the session (see the module
        docstring); the handler's return value is returned.
        """
        handler = TRANSITIONS.get((self.state, event), _fsm_error)
        try:
            return handler(self, now, event, arg)
        except BGPError as err:
            self._reject(now, err, event, arg)
        except Exception as exc:  # a bug or an input the codec did not foresee
            err = BGPError(ErrorCode.CEASE, CeaseSubcode.UNSPECIFIC,
                           reason=f"{type(exc).__name__}: {exc}")
            self._reject(now, err, event, arg)
        return None

    def start(self, now: float, passive: bool = False) -> None:
        """ManualStart (event 1), or with ``passive`` event 4: only wait for the peer."""
        self.handle(Event.MANUAL_START_PASSIVE if passive else Event.MANUAL_START, now)

    def stop(self, now: float, message: str = "",
             subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, notify: bool = True) -> None:
        """ManualStop: Cease (6/2 + RFC 9003 message by default), then Idle for good.

        ``notify=False`` closes the connection without a NOTIFICATION: the
        graceful-restart stop (RFC 4724 §4: a helper keeps the routes of a peer
        whose TCP connection just closes, but flushes them on a Cease).
        """
        self.handle(Event.MANUAL_STOP, now, (subcode, message, notify))

    def reset(self, now: float, message: str = "",
              subcode: int = CeaseSubcode.ADMINISTRATIVE_RESET) -> None:
        """AutomaticStop: drop the session with a Cease (6/4 by default) and start over."""
        self.handle(Event.AUTOMATIC_STOP, now, (subcode, message, True))

    def collision_dump(self, now: float) -> None:
        """OpenCollisionDump: this connection lost the collision (Cease 6/7), stay down."""
        self.handle(Event.OPEN_COLLISION_DUMP, now)

    def connection_made(self, now: float, local_address: str | None = None,
                        outgoing: bool = True, interface_ipv6: str | None = None) -> bool:
        """TcpConnectionConfirmed.  False: refused, the transport must close it.

        ``interface_ipv6``: a global IPv6 address of the interface the
        connection runs on (the IPv6 next hop over an IPv4 connection)."""
        return bool(self.handle(Event.TCP_CONNECTION_CONFIRMED, now,
                                (local_address, outgoing, interface_ipv6)))

    def connection_failed(self, now: float, detail: str = "") -> None:
        """TcpConnectionFails: the connect failed, or the peer closed/reset the connection."""
        self.handle(Event.TCP_CONNECTION_FAILS, now, detail)

    def adopt(self) -> None:
        """A one-shot machine (a collision candidate) won and now restarts on failure."""
        self.one_shot = False
        self.stopped = self.state == State.IDLE

    def tick(self, now: float) -> None:
        """Fire every deadline that is due, each as its event."""
        sh = self._send_hold_at()
        if sh is not None and sh <= now:
            self.handle(Event.SEND_HOLD_TIMER_EXPIRES, now)
        if self._hold_at is not None and self._hold_at <= now:
            self.handle(Event.HOLD_TIMER_EXPIRES, now)
        if self._keepalive_at is not None and self._keepalive_at <= now:
            self.handle(Event.KEEPALIVE_TIMER_EXPIRES, now)
        if self._connect_retry_at is not None and self._connect_retry_at <= now:
            self.handle(Event.CONNECT_RETRY_TIMER_EXPIRES, now)

    def data_received(self, data: bytes, now: float) -> None:
        """Bytes from the connection, in any chunking: each whole message is an event."""
        if self.state not in WITH_CONNECTION:
            return
        try:
            frames = self._framer.feed(data)
        except BGPError as err:
            self._reject(now, err, None, bytes(data[:_MAX_REJECTED_BYTES]))
            return
        if not frames:
            return
        rx = self.received_counts
        handle = self.handle
        for mtype, body in frames:
            if self.state not in WITH_CONNECTION:
                return
            rx[mtype] += 1
            if self.trace:
                self._actions.append(Received(frame(mtype, bytes(body)), mtype))
            handle(MESSAGE_EVENT[mtype], now, body)
        if self.state in (State.OPENCONFIRM, State.ESTABLISHED) and self.negotiated is not None:
            hold = self.negotiated.hold_time
            self._hold_at = now + hold if hold else None
        self._answer_refresh(now)

    # Not events: they change what is sent, never the state.
    def send_blocked(self, now: float) -> None:
        """The transport cannot write (peer not reading): start the RFC 9687 Send Hold Timer."""
        if self._blocked_since is None and self.state in WITH_CONNECTION:
            self._blocked_since = now

    def send_unblocked(self, now: float) -> None:
        self._blocked_since = None
        self._answer_refresh(now)

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

    def _answer_refresh(self, now: float) -> None:
        """Answer the pending ROUTE-REFRESH requests, one per family, unless writes are blocked."""
        if not self._refresh_pending or self._blocked_since is not None:
            return
        pending, self._refresh_pending = sorted(self._refresh_pending), set()
        if self.state == State.ESTABLISHED:
            for afi in pending:
                self._send_updates(now, self.adj_rib_out.refresh(afi, self._ctx))

    # --------------------------------------------------------------- handlers
    # Each takes (now, event, arg); see TRANSITIONS below for where each applies.
    def _ignore(self, now: float, event: Event, arg) -> None:
        return None

    def _refuse(self, now: float, event: Event, arg) -> bool:
        """A second connection for a machine that has one (or is stopped): refuse it."""
        return False

    def _start(self, now: float, event: Event, arg) -> None:
        self.stopped = self.one_shot
        passive = event is Event.MANUAL_START_PASSIVE
        self._automatic_start(now, Cause.ADMIN_START, immediate=True, passive=passive)

    def _stop_idle(self, now: float, event: Event, arg) -> None:
        self.stopped = True

    def _stop_without_connection(self, now: float, event: Event, arg) -> None:
        """Stop/reset/collision dump in Connect or Active: abandon the attempt."""
        subcode = _stop_subcode(event, arg)
        if event is not Event.AUTOMATIC_STOP:
            self.stopped = True
        if self.state == State.CONNECT:
            self._actions.append(CLOSE)
        self._down(now, STOP_CAUSE.get(subcode, Cause.ADMIN_RESET), closed=True)

    def _stop_with_connection(self, now: float, event: Event, arg) -> None:
        """ManualStop, AutomaticStop or OpenCollisionDump with a connection: Cease, Idle."""
        subcode = _stop_subcode(event, arg)
        message = arg[1] if arg else ""
        if event is not Event.AUTOMATIC_STOP:
            self.stopped = True
        cause = STOP_CAUSE.get(subcode, Cause.ADMIN_RESET)
        if arg and not arg[2]:
            self._down(now, cause, "closed without NOTIFICATION (graceful restart)")
            return
        self._error(now, Notification.cease(subcode, message).error(), cause)

    def _connected(self, now: float, event: Event, arg) -> bool:
        local_address, outgoing = arg[0], arg[1]
        interface_ipv6 = arg[2] if len(arg) > 2 else None
        self.outgoing = outgoing
        self.local_address = local_address
        self.interface_ipv6 = interface_ipv6
        self._connect_retry_at = None
        self._framer = Framer()
        self._ctx = DEFAULT_CONTEXT
        self.negotiated = None
        self.remote_open = None
        self._blocked_since = None
        self._refresh_pending.clear()
        self.adj_rib_out.connected(local_address, interface_ipv6)
        self._send_msg(open_message(self.settings, self.restart_state), MessageType.OPEN)
        self._hold_at = now + self.settings.open_hold_time
        self._set_state(State.OPENSENT, Cause.TCP_ESTABLISHED)
        return True

    def _connect_failed(self, now: float, event: Event, arg) -> None:
        self._connect_retry_at = now + self.backoff.next_delay()
        self._set_state(State.ACTIVE, Cause.TCP_FAILED, arg or "")

    def _connection_lost(self, now: float, event: Event, arg) -> None:
        self._down(now, Cause.TCP_FAILED, arg or "")

    def _retry_from_active(self, now: float, event: Event, arg) -> None:
        self._connect_retry_at = None
        if self.settings.passive:
            return
        self._connect_retry_at = now + self.settings.connect_retry
        self._actions.append(CONNECT)
        self._set_state(State.CONNECT, Cause.CONNECT_RETRY)

    def _retry_from_connect(self, now: float, event: Event, arg) -> None:
        """The connect attempt took too long: abandon it and try again."""
        self._actions.append(CLOSE)
        self._actions.append(CONNECT)
        self._connect_retry_at = now + self.backoff.next_delay()

    def _hold_expired(self, now: float, event: Event, arg) -> None:
        self._error(now, BGPError(ErrorCode.HOLD_TIMER_EXPIRED, 0), Cause.HOLD_TIMER_EXPIRED)

    def _send_hold_expired(self, now: float, event: Event, arg) -> None:
        self._error(now, BGPError(ErrorCode.SEND_HOLD_TIMER_EXPIRED, 0),
                    Cause.SEND_HOLD_TIMER_EXPIRED, abort=True)

    def _send_keepalive(self, now: float, event: Event, arg) -> None:
        if self._keepalive:
            self._actions.append(Send(_KEEPALIVE_BYTES, MessageType.KEEPALIVE))
            self.sent_counts[MessageType.KEEPALIVE] += 1
            self._keepalive_at = now + self._keepalive
        else:
            self._keepalive_at = None

    def _on_open(self, now: float, event: Event, body) -> None:
        msg = Open.decode_body(body)
        neg = check_open(self.settings, msg, self.restart_state)
        self.remote_open = msg
        self.negotiated = neg
        self._ctx = neg
        self._framer.max_len = neg.max_message_len
        self.adj_rib_out.extended_next_hop = IPV4_UNICAST in neg.extended_next_hop  # RFC 8950
        self._keepalive = float(neg.keepalive_time) if neg.hold_time else 0.0
        self._send_msg(KEEPALIVE, MessageType.KEEPALIVE)
        self._keepalive_at = now + self._keepalive if self._keepalive else None
        self._hold_at = now + neg.hold_time if neg.hold_time else None
        self._set_state(State.OPENCONFIRM, Cause.OPEN_RECEIVED)

    def _established(self, now: float, event: Event, arg) -> None:
        self.backoff.reset()
        self.restart_state = False  # the restart is over once a session is up: R=0 from now
        self._set_state(State.ESTABLISHED, Cause.KEEPALIVE_RECEIVED)
        self._send_updates(now, self.adj_rib_out.initial(self._ctx))

    def _on_update(self, now: float, event: Event, body) -> None:
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
        if attrs is not None and attrs.as_path and not self.settings.ibgp and self._as_loop(attrs):
            # RFC 4271 §9.1.2: a route whose AS_PATH holds our own AS is not
            # usable; like FRR and BIRD, it is not kept (counted instead).
            self.looped_updates += 1
            upd.treat_as_withdraw = True
        eor = self.adj_rib_in.apply(upd)
        if eor is not None:
            self._actions.append(EndOfRib(eor))
            return
        counts = self.adj_rib_in.counts()
        limit = self.settings.max_prefixes
        if limit is not None:
            for afi, n in counts.items():
                if n > limit:
                    self._prefix_limit_exceeded(now, afi, limit, n)
                    return
        self._actions.append(RoutesReceived(counts))

    def _prefix_limit_exceeded(self, now: float, afi: int, limit: int, received: int) -> None:
        """RFC 4486 §4: Cease 6/1 with AFI, SAFI and the upper bound; then ConnectRetry.

        The next attempt waits the ConnectRetry interval, not the one-second
        idle hold after an Established session: a peer that keeps sending too
        much flaps once per connectTime, not every second.
        """
        self.prefix_limit_hits += 1
        self.backoff.after_session = False
        self._actions.append(PrefixLimitExceeded(afi, SAFI.UNICAST, limit, received))
        data = _PREFIX_LIMIT_DATA.pack(afi, SAFI.UNICAST, limit)
        self._error(now, BGPError(ErrorCode.CEASE, CeaseSubcode.MAX_PREFIXES_REACHED, data,
                                  reason=f"{received} prefixes of AFI {afi}, maximum {limit}"),
                    Cause.MAX_PREFIXES)

    def _as_loop(self, attrs) -> bool:
        # attribute sets are interned: one check per distinct set
        if attrs is self._loop_checked:
            return self._loop_result
        asn = self.settings.local_asn
        looped = any(asn in asns for _, asns in attrs.as_path)
        self._loop_checked, self._loop_result = attrs, looped
        return looped

    def _on_route_refresh(self, now: float, event: Event, body) -> None:
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

    def _on_notification(self, now: float, event: Event, body) -> None:
        n = Notification.decode_body(body)
        self.last_notification_received = n
        self._actions.append(NotificationReceived(n))
        self._actions.append(CLOSE)
        self._down(now, Cause.NOTIFICATION_RECEIVED, n.name, closed=True)

    def _unexpected(self, now: float, event: Event, arg) -> None:
        """The default: an event the current state does not allow (RFC 6608)."""
        if self.state in WITH_CONNECTION:
            self._error(now, BGPError(ErrorCode.FSM, _FSM_SUBCODE[self.state],
                                      reason=f"{event.label} in {self.state.label}"))
        elif self.state in (State.CONNECT, State.ACTIVE):
            if self.state == State.CONNECT:
                self._actions.append(CLOSE)
            self._down(now, Cause.FSM_ERROR, f"{event.label} in {self.state.label}", closed=True)
        # Idle: ignored (RFC 4271 §8.2.2)

    # ----------------------------------------------------------------- helpers
    def _reject(self, now: float, err: BGPError, event: Event | None, arg) -> None:
        """Handling an input raised ``err``: log the message (via the action), end the session."""
        if event is not None and event in _MESSAGE_EVENTS:
            mtype = MESSAGE_EVENT.index(event)
            raw = frame(mtype, bytes(arg))
        else:
            mtype = None
            raw = bytes(arg) if isinstance(arg, (bytes, bytearray, memoryview)) else b""
        self._actions.append(MessageRejected(mtype, raw, err.notification(), err.describe()))
        if self.state in WITH_CONNECTION:
            self._error(now, err)
        elif self.state != State.IDLE:
            if self.state == State.CONNECT:
                self._actions.append(CLOSE)
            self._down(now, Cause.FSM_ERROR, err.describe(), closed=True)

    def _send_msg(self, msg, mtype: int) -> None:
        self._actions.append(Send(encode(msg, self._ctx), mtype))
        self.sent_counts[mtype] += 1

    def _send_updates(self, now: float, msgs: list[bytes]) -> None:
        if not msgs:
            return
        acts = self._actions
        counts = self.sent_counts
        for m in msgs:
            t = m[TYPE_OFFSET]
            acts.append(Send(m, t))
            counts[t] += 1
        if self._keepalive:
            self._keepalive_at = now + self._keepalive  # RFC 4271 §4.4: an UPDATE restarts it

    def _set_state(self, new: State, cause: Cause, detail: str = "") -> None:
        old = self.state
        self.state = new
        self._actions.append(StateChanged(old, new, cause, detail))

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
        self.remote_open = None
        self._ctx = DEFAULT_CONTEXT
        self.adj_rib_in.clear()
        self.adj_rib_out.reset()
        if self.state != State.IDLE:
            self._set_state(State.IDLE, cause, detail)
        if not self.stopped:
            self._automatic_start(now, Cause.AUTOMATIC_START, immediate=False)

    def _automatic_start(self, now: float, cause: Cause, immediate: bool,
                         passive: bool = False) -> None:
        if passive or self.settings.passive:
            self._set_state(State.ACTIVE, cause)
        elif immediate:
            self._connect_retry_at = now + self.settings.connect_retry
            self._actions.append(CONNECT)
            self._set_state(State.CONNECT, cause)
        else:
            self._connect_retry_at = now + self.backoff.next_delay()
            self._set_state(State.ACTIVE, cause)

    # ---------------------------------------------------------------- queries
    @property
    def remote_id(self) -> int | None:
        return self.remote_open.bgp_id if self.remote_open else None


def _stop_subcode(event: Event, arg) -> int:
    if event is Event.OPEN_COLLISION_DUMP:
        return CeaseSubcode.CONNECTION_COLLISION_RESOLUTION
    return arg[0]


_MESSAGE_EVENTS = frozenset(e for e in MESSAGE_EVENT if e is not None)
_fsm_error = Session._unexpected

S, E = State, Event
_STOPS = (E.MANUAL_STOP, E.AUTOMATIC_STOP, E.OPEN_COLLISION_DUMP)
_STARTS = (E.MANUAL_START, E.MANUAL_START_PASSIVE)


def _table() -> dict[tuple[State, Event], Callable]:
    m = Session
    t: dict[tuple[State, Event], Callable] = {}
    # Idle: only a start leaves it; everything else is ignored (§8.2.2)
    for e in Event:
        t[S.IDLE, e] = m._ignore
    for e in _STARTS:
        t[S.IDLE, e] = m._start
    t[S.IDLE, E.MANUAL_STOP] = t[S.IDLE, E.OPEN_COLLISION_DUMP] = m._stop_idle
    t[S.IDLE, E.TCP_CONNECTION_CONFIRMED] = m._refuse
    for st in S:
        if st is S.IDLE:
            continue
        for e in _STARTS:
            t[st, e] = m._ignore
        for e in _STOPS:
            t[st, e] = m._stop_with_connection if st in WITH_CONNECTION else m._stop_without_connection
    # Connect: our connect attempt is in flight
    t[S.CONNECT, E.TCP_CONNECTION_CONFIRMED] = m._connected
    t[S.CONNECT, E.TCP_CONNECTION_FAILS] = m._connect_failed
    t[S.CONNECT, E.CONNECT_RETRY_TIMER_EXPIRES] = m._retry_from_connect
    # Active: listening; connect out when the ConnectRetry timer expires
    t[S.ACTIVE, E.TCP_CONNECTION_CONFIRMED] = m._connected
    t[S.ACTIVE, E.TCP_CONNECTION_FAILS] = m._ignore  # a late failure of an abandoned attempt
    t[S.ACTIVE, E.CONNECT_RETRY_TIMER_EXPIRES] = m._retry_from_active
    # with a connection: one connection per machine, timers, NOTIFICATION, loss
    for st in WITH_CONNECTION:
        t[st, E.TCP_CONNECTION_CONFIRMED] = m._refuse
        t[st, E.TCP_CONNECTION_FAILS] = m._connection_lost
        t[st, E.HOLD_TIMER_EXPIRES] = m._hold_expired
        t[st, E.SEND_HOLD_TIMER_EXPIRES] = m._send_hold_expired
        t[st, E.NOTIF_MSG] = m._on_notification
    t[S.OPENSENT, E.BGP_OPEN] = m._on_open
    t[S.OPENCONFIRM, E.KEEPALIVE_MSG] = m._established
    t[S.OPENCONFIRM, E.KEEPALIVE_TIMER_EXPIRES] = m._send_keepalive
    t[S.ESTABLISHED, E.KEEPALIVE_TIMER_EXPIRES] = m._send_keepalive
    t[S.ESTABLISHED, E.KEEPALIVE_MSG] = m._ignore  # the hold timer restarts after every read
    t[S.ESTABLISHED, E.UPDATE_MSG] = m._on_update
    t[S.ESTABLISHED, E.ROUTE_REFRESH_MSG] = m._on_route_refresh
    return t


#: The whole machine: every (state, event) pair not listed is :meth:`Session._unexpected`.
TRANSITIONS: dict[tuple[State, Event], Callable] = _table()
del S, E
