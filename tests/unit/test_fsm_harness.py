"""Back-to-back wiring of two session machines with a fake clock (no tests here).

Like aioquic's connection tests: ``now`` only moves when the test says so,
bytes are delivered at once, and every action each machine queues is
recorded so tests can assert on it.
"""
from __future__ import annotations

from speakerd.fsm import Session, SessionSettings, State
from speakerd.fsm.actions import Close, Connect, Send, StateChanged
from speakerd.wire.framing import decode_stream

ID_A = 0x0A000001  # 10.0.0.1
ID_B = 0x0A000002


def cfg(local_asn=65001, peer_asn=65002, router_id=ID_A, **kw) -> SessionSettings:
    kw.setdefault("connect_retry", 5.0)
    kw.setdefault("rand", lambda: 0.0)
    return SessionSettings(local_asn=local_asn, peer_asn=peer_asn, router_id=router_id, **kw)


class Pair:
    """A connects out, B listens (passive) unless told otherwise."""

    def __init__(self, cfg_a: SessionSettings | None = None, cfg_b: SessionSettings | None = None,
                 now: float = 1000.0) -> None:
        self.a = Session(cfg_a or cfg())
        self.b = Session(cfg_b or cfg(65002, 65001, ID_B, passive=True))
        self.now = now
        self.connected = False
        self.actions = {id(self.a): [], id(self.b): []}
        self.sent = {id(self.a): [], id(self.b): []}  # raw messages each side wrote
        self.refuse = False  # Connect attempts fail (peer not listening)

    def other(self, s: Session) -> Session:
        return self.b if s is self.a else self.a

    def start(self) -> "Pair":
        self.b.start(self.now)
        self.a.start(self.now)
        self.pump()
        return self

    def pump(self) -> None:
        for _ in range(10000):
            progressed = False
            for s in (self.a, self.b):
                acts = s.pop_actions()
                if not acts:
                    continue
                progressed = True
                self.actions[id(s)].extend(acts)
                for act in acts:
                    self._do(s, act)
            if not progressed:
                return
        raise AssertionError("machines never went quiet")

    def _do(self, s: Session, act) -> None:
        peer = self.other(s)
        if isinstance(act, Send):
            self.sent[id(s)].append(act.data)
            if self.connected:
                peer.data_received(act.data, self.now)
        elif isinstance(act, Connect):
            if self.refuse or self.connected or peer.state not in (State.ACTIVE, State.CONNECT):
                s.connection_failed(self.now, "refused")
                return
            self.connected = True
            s.connection_made(self.now, "192.0.2.1" if s is self.a else "192.0.2.2", outgoing=True)
            peer.connection_made(self.now, "192.0.2.2" if s is self.a else "192.0.2.1", outgoing=False)
        elif isinstance(act, Close):
            if self.connected:
                self.connected = False
                peer.connection_failed(self.now, "closed by peer")

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every deadline on the way in order."""
        end = self.now + seconds
        while True:
            ds = [(d, s) for s in (self.a, self.b) if (d := s.next_deadline()) is not None and d <= end]
            if not ds:
                break
            d, s = min(ds, key=lambda x: x[0])
            self.now = max(self.now, d)
            s.tick(self.now)
            self.pump()
        self.now = end

    def established(self) -> bool:
        return self.a.state == State.ESTABLISHED and self.b.state == State.ESTABLISHED

    def messages(self, s: Session, ctx=None):
        from speakerd.wire.capabilities import DEFAULT_CONTEXT
        return [m for raw in self.sent[id(s)] for m in decode_stream(raw, ctx or DEFAULT_CONTEXT)]

    def states(self, s: Session) -> list[tuple[State, State, object]]:
        return [(x.old, x.new, x.cause) for x in self.actions[id(s)] if isinstance(x, StateChanged)]
