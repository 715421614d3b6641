"""One BFD session (RFC 5880, asynchronous mode), sans-IO.

The caller owns the clock and the socket.  Every entry point takes ``now``
(seconds, any monotonic origin) and queues actions: :class:`Transmit` (a
packet to send, already encoded) and :class:`StateChange`, drained with
:meth:`BfdSession.pop_actions`.  :meth:`BfdSession.next_deadline` says when
:meth:`BfdSession.tick` must be called next — the same three verbs as the
BGP session machine (:mod:`speakerd.fsm.machine`).  A random source returning
floats in [0, 1) is injected for TX jitter.

Timing rules implemented (RFC 5880 §6.8.2–§6.8.4, §6.8.7):

* TX interval = max(our active desired min TX, peer's required min RX),
  times a random 75–100 % (75–90 % when our detect multiplier is 1).
* While the session is not Up, desired min TX advertised and used is at
  least 1 s.
* Detection time = peer's detect multiplier × max(our required min RX,
  peer's desired min TX).
* Changing desired min TX or required min RX while Up starts a Poll
  Sequence (P set on every packet until a packet with F arrives).  A larger
  TX interval applies only after the Final (a smaller one at once); during
  the sequence the detection time uses the larger of the old and new
  required min RX.  A new change
  during a sequence waits for it to finish, then starts another.  Going Up
  is such a change (1 s → the configured rate).
* A received Poll is answered at once with a Final.
* A passive session sends nothing until it has a remote discriminator, and
  stops again when the detection time expires (remote discriminator zeroed).
* Nothing is sent periodically while the peer's required min RX is 0.
* Demand mode and echo are not implemented: D is never sent; a peer's D bit
  is ignored (the peer keeps receiving periodic packets, which is allowed).

BfdState changes carry a *reason*.  It equals the local diagnostic sent on the
wire except for one case: the peer signalling AdminDown moves the session to
Down with wire diagnostic 3 (neighbor signaled session down) and reason
``Diag.ADMIN_DOWN``, so that clients can tell a planned shutdown of the peer
from a failure (RFC 5882 §3.2).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .packet import ControlPacket, Diag, BfdState

SLOW_TX_US = 1_000_000  # RFC 5880 §6.8.3: desired min TX >= 1 s while not Up


@dataclass(frozen=True, slots=True)
class SessionParams:
    desired_min_tx_us: int = 300_000
    required_min_rx_us: int = 300_000
    detect_mult: int = 3
    passive: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.detect_mult <= 255:
            raise ValueError(f"detect multiplier {self.detect_mult} not in 1..255")
        if self.desired_min_tx_us <= 0 or self.required_min_rx_us < 0:
            raise ValueError("intervals must be positive")

    @classmethod
    def from_profile(cls, profile) -> "SessionParams":
        """From a speakerd.config.model.BFDProfile (intervals in ms)."""
        return cls(desired_min_tx_us=profile.transmit_interval_ms * 1000,
                   required_min_rx_us=profile.receive_interval_ms * 1000,
                   detect_mult=profile.detect_multiplier, passive=profile.passive_mode)


@dataclass(frozen=True, slots=True)
class StateChange:
    old: BfdState
    new: BfdState
    reason: Diag


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send one encoded control packet to the peer."""
    packet: bytes


Action = Transmit | StateChange


@dataclass(slots=True)
class Counters:
    rx_packets: int = 0
    tx_packets: int = 0
    rx_discarded: int = 0  # valid packets discarded because we are AdminDown
    up_transitions: int = 0
    down_transitions: int = 0
    polls_started: int = 0
    finals_sent: int = 0


class BfdSession:
    __slots__ = ("local_discr", "params", "state", "local_diag", "remote_discr", "remote_state",
                 "remote_diag", "remote_min_rx_us", "remote_desired_tx_us", "remote_mult",
                 "remote_demand", "up_since", "counters", "_rand", "_adv_tx", "_adv_rx",
                 "_act_tx", "_act_rx", "_polling", "_next_tx", "_detect_at", "_actions")

    def __init__(self, local_discr: int, params: SessionParams, now: float,
                 rand: Callable[[], float]) -> None:
        if not 0 < local_discr < 1 << 32:
            raise ValueError("local discriminator must be a non-zero 32-bit value")
        self.local_discr = local_discr
        self.params = params
        self.state = BfdState.DOWN
        self.local_diag: Diag = Diag.NONE
        self.remote_discr = 0
        self.remote_state = BfdState.DOWN
        self.remote_diag: int = 0
        self.remote_min_rx_us = 1  # RFC 5880 §6.8.1 initial value
        self.remote_desired_tx_us = 0
        self.remote_mult = 0
        self.remote_demand = False
        self.up_since: float | None = None
        self.counters = Counters()
        self._rand = rand
        tx, rx = self._target()
        self._adv_tx = self._act_tx = tx  # advertised in packets / in effect for timing
        self._adv_rx = self._act_rx = rx
        self._polling = False
        self._next_tx: float | None = now  # first packet right away (unless passive)
        self._detect_at: float | None = None
        self._actions: list = []

    # ---- derived values -------------------------------------------------

    @property
    def polling(self) -> bool:
        return self._polling

    @property
    def tx_interval_us(self) -> int:
        """Negotiated TX interval before jitter.

        During a Poll Sequence a faster rate applies at once, a slower one only
        after the Final (the peer's detection time still assumes the old one).
        """
        tx = min(self._act_tx, self._adv_tx) if self._polling else self._act_tx
        return max(tx, self.remote_min_rx_us)

    @property
    def rx_interval_us(self) -> int:
        """Negotiated interval at which we expect the peer's packets."""
        rx = max(self._act_rx, self._adv_rx) if self._polling else self._act_rx
        return max(rx, self.remote_desired_tx_us)

    @property
    def detect_time_us(self) -> int:
        return self.remote_mult * self.rx_interval_us

    def pop_actions(self) -> list:
        """The queued :class:`Transmit` and :class:`StateChange` actions, in order."""
        out, self._actions = self._actions, []
        return out

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self._detect_at, self._next_tx if self._may_transmit() else None)
                     if d is not None]
        return min(deadlines) if deadlines else None

    # ---- inputs ---------------------------------------------------------

    def receive(self, pkt: ControlPacket, now: float) -> None:
        """A packet that passed decode() and demultiplexing (RFC 5880 §6.8.6)."""
        if self.state is BfdState.ADMIN_DOWN:
            self.counters.rx_discarded += 1
            return
        self.counters.rx_packets += 1
        if pkt.final and self._polling:
            self._polling = False
            self._act_tx, self._act_rx = self._adv_tx, self._adv_rx
        self.remote_discr = pkt.my_discr
        self.remote_state = pkt.state
        self.remote_diag = int(pkt.diag)
        self.remote_demand = pkt.demand
        self.remote_mult = pkt.detect_mult
        self.remote_min_rx_us = pkt.required_min_rx_us
        self.remote_desired_tx_us = pkt.desired_min_tx_us

        events: list[StateChange] = []
        st, rs = self.state, pkt.state
        if rs is BfdState.ADMIN_DOWN:
            if st is not BfdState.DOWN:
                self._set_state(BfdState.DOWN, Diag.NEIGHBOR_SIGNALED_DOWN, now, events, Diag.ADMIN_DOWN)
        elif st is BfdState.DOWN:
            if rs is BfdState.DOWN:
                self._set_state(BfdState.INIT, Diag.NONE, now, events)
            elif rs is BfdState.INIT:
                self._set_state(BfdState.UP, Diag.NONE, now, events)
        elif st is BfdState.INIT:
            if rs in (BfdState.INIT, BfdState.UP):
                self._set_state(BfdState.UP, Diag.NONE, now, events)
        elif rs is BfdState.DOWN:  # we are Up
            self._set_state(BfdState.DOWN, Diag.NEIGHBOR_SIGNALED_DOWN, now, events)

        poll_started = self._sync()
        self._detect_at = now + self.detect_time_us / 1e6
        packets: list[bytes] = []
        if pkt.poll or events or poll_started:
            packets.append(self._send(now, final=pkt.poll))
        else:
            self._clamp_tx(now)
        self._queue(packets, events)

    def tick(self, now: float) -> None:
        """Run expired timers: detection first, then periodic transmission."""
        events: list[StateChange] = []
        if self._detect_at is not None and now >= self._detect_at:
            self._detect_at = None
            if self.state in (BfdState.INIT, BfdState.UP):
                self._set_state(BfdState.DOWN, Diag.CONTROL_DETECTION_EXPIRED, now, events)
            self.remote_discr = 0
            self.remote_state = BfdState.DOWN
            self.remote_min_rx_us = 1
            self.remote_desired_tx_us = 0
            self._sync()
        packets: tuple[bytes, ...] = ()
        if events and self._may_transmit():
            packets = (self._send(now),)
        elif self._next_tx is not None and now >= self._next_tx and self._may_transmit():
            packets = (self._send(now),)
        self._queue(packets, events)

    def admin_down(self, now: float) -> None:
        """Local AdminDown: tell the peer (one packet now, then periodically)."""
        if self.state is BfdState.ADMIN_DOWN:
            return
        events: list[StateChange] = []
        self._set_state(BfdState.ADMIN_DOWN, Diag.ADMIN_DOWN, now, events)
        self._detect_at = None
        self._sync()
        packets = (self._send(now),) if self._may_transmit() else ()
        self._queue(packets, events)

    def admin_up(self, now: float) -> None:
        if self.state is not BfdState.ADMIN_DOWN:
            return
        events: list[StateChange] = []
        self._set_state(BfdState.DOWN, Diag.NONE, now, events)
        self._sync()
        packets = (self._send(now),) if self._may_transmit() else ()
        self._queue(packets, events)

    def set_params(self, params: SessionParams, now: float) -> None:
        """New profile values; starts a Poll Sequence when Up and intervals change."""
        self.params = params
        if self._sync() and self._may_transmit():
            self._queue((self._send(now),), ())
            return
        self._clamp_tx(now)

    # ---- internals ------------------------------------------------------

    def _queue(self, packets, events) -> None:
        acts = self._actions
        acts.extend(Transmit(p) for p in packets)
        acts.extend(events)

    def _target(self) -> tuple[int, int]:
        tx = self.params.desired_min_tx_us
        if self.state is not BfdState.UP:
            tx = max(tx, SLOW_TX_US)
        return tx, self.params.required_min_rx_us

    def _sync(self) -> bool:
        """Bring advertised intervals to the target; True if a Poll Sequence started."""
        target = self._target()
        if target == (self._adv_tx, self._adv_rx):
            return False
        if self.state is not BfdState.UP:
            self._adv_tx, self._adv_rx = self._act_tx, self._act_rx = target
            self._polling = False
            return False
        if self._polling:
            return False  # resynchronised when the Final arrives
        self._adv_tx, self._adv_rx = target
        self._polling = True
        self.counters.polls_started += 1
        return True

    def _may_transmit(self) -> bool:
        if self.params.passive and self.remote_discr == 0:
            return False
        return self.remote_min_rx_us != 0

    def _set_state(self, new: BfdState, diag: Diag, now: float, events: list[StateChange],
                   reason: Diag | None = None) -> None:
        old = self.state
        self.state = new
        self.local_diag = diag
        if new is BfdState.UP:
            self.up_since = now
            self.counters.up_transitions += 1
        elif old is BfdState.UP:
            self.up_since = None
            self.counters.down_transitions += 1
        events.append(StateChange(old, new, diag if reason is None else reason))

    def _jittered(self) -> float:
        # 75-100 % of the interval; at most 90 % with a multiplier of 1 (§6.8.7)
        if self.params.detect_mult == 1:
            factor = 0.9 - 0.15 * self._rand()
        else:
            factor = 1.0 - 0.25 * self._rand()
        return self.tx_interval_us * factor / 1e6

    def _clamp_tx(self, now: float) -> None:
        """Never wait longer than the current interval (it may just have shrunk)."""
        limit = now + self.tx_interval_us / 1e6
        if self._next_tx is None or self._next_tx > limit:
            self._next_tx = now + self._jittered()

    def _send(self, now: float, final: bool = False) -> bytes:
        self._next_tx = now + self._jittered()
        self.counters.tx_packets += 1
        if final:
            self.counters.finals_sent += 1
        return ControlPacket(
            state=self.state, diag=self.local_diag, my_discr=self.local_discr,
            your_discr=self.remote_discr, desired_min_tx_us=self._adv_tx,
            required_min_rx_us=self._adv_rx, detect_mult=self.params.detect_mult,
            poll=self._polling and not final, final=final).encode()
