"""BFD over UDP (RFC 5881 single-hop, RFC 5883 multihop) for the daemon.

One :class:`BfdManager` per daemon owns every BFD socket and drives the
sans-IO :class:`speakerd.bfd.BfdSession` objects with one timer per session
following the session's next deadline (:class:`speakerd.net.timer.Deadline`,
the same idiom as the BGP transport).

Sockets
-------
* Receive: one socket per (family, single-hop/multihop, VRF device), bound to
  the wildcard address on port 3784 (single-hop) or 4784 (multihop), with
  SO_BINDTODEVICE when the peer has a VRF.  Datagrams are read with
  ``recvmsg`` and IP_RECVTTL / IPV6_RECVHOPLIMIT ancillary data.  Single-hop
  packets whose TTL/hop limit is not 255 are dropped (RFC 5881 §5); multihop
  packets whose TTL is below the profile's minimumTtl are dropped (RFC 5883).
* Transmit: one socket per session, bound to the local address (if given)
  and a source port in 49152–65535 unique to the session, TTL/hop limit 255,
  traffic class CS6, SO_BINDTODEVICE to the VRF when set.
* Demultiplexing: by Your Discriminator when non-zero (and the source must be
  that session's peer), otherwise by (source address, VRF device, hop mode).

Coupling with BGP (the daemon implements this with the ``on_state`` callback)
--------------------------------------------------------------------------
``on_state(state, diag)`` is called when a session enters Up and when it
leaves Up, with the new :class:`BfdState` and the reason (:class:`Diag`);
Down/Init changes of a session that is not Up are only logged:

* ``BfdState.DOWN`` with any reason except ``Diag.ADMIN_DOWN``
  (e.g. ``CONTROL_DETECTION_EXPIRED`` = diag 1, ``NEIGHBOR_SIGNALED_DOWN`` =
  diag 3): the forwarding path failed.  Tear the BGP session down at once:
  NOTIFICATION Cease, subcode 10 "BFD Down" (RFC 9384), log the reason and
  count it.  Reconnect as usual (BGP does not wait for BFD to come back).
* ``BfdState.DOWN`` with reason ``Diag.ADMIN_DOWN``: the peer administratively
  disabled BFD (RFC 5882 §3.2).  Do NOT touch the BGP session.
* ``BfdState.UP``: informational (log, metrics).
* ``BfdState.ADMIN_DOWN`` never reaches the callback (local admin-down is
  ``remove``, which is silent).

Sessions are keyed by (VRF device, peer address).

On config reload: removing the BFDProfile from a BGPPeer → ``remove(peer, vrf)``
(sends AdminDown to the peer, whose BGP therefore stays up); the BGP session
is not reset.  Changing the profile's values → ``update_profile`` (Poll
Sequence, the session stays Up).  A callback never fires for a removed
session.

Run ``python -m speakerd.net.bfd --peer ADDR ...`` for a standalone session
that prints state changes as JSON lines (used by the interop test and the
detection benchmark).
"""
from __future__ import annotations

import asyncio
import errno
import logging
import random
import socket
import struct
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from ..bfd.packet import (MULTI_HOP_PORT, SINGLE_HOP_PORT, SINGLE_HOP_TTL, SOURCE_PORT_MAX,
                          SOURCE_PORT_MIN, BfdDropped, Diag, DropReason, BfdState, decode)
from ..bfd.session import BfdSession, SessionParams, StateChange, Transmit
from .timer import Deadline

log = logging.getLogger("speakerd.bfd")

# Linux values the socket module does not export.
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
TOS_CS6 = 0xC0
_ANC_SIZE = socket.CMSG_SPACE(4) * 2 + socket.CMSG_SPACE(20)
_INT = struct.Struct("=i")

OnState = Callable[[BfdState, Diag], None]


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _in_vrf(vrf: str | None) -> str:
    return f" in VRF {vrf}" if vrf else ""


def _addr_key(family: int, address: str) -> bytes:
    return socket.inet_pton(family, address.split("%", 1)[0])


@dataclass(slots=True)
class _RxSocket:
    sock: socket.socket
    family: int
    multihop: bool
    vrf: str | None
    users: int = 0


@dataclass(slots=True)
class _Entry:
    peer: str
    local: str | None
    family: int
    peer_key: bytes
    multihop: bool
    vrf: str | None
    min_ttl: int
    session: BfdSession
    tx: socket.socket
    dest: tuple
    on_state: OnState
    rx_key: tuple
    timer: Deadline | None = None
    created: float = 0.0
    last_change: float = 0.0
    tx_errors: int = 0
    drops: Counter = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class BfdPeerInfo:
    """One row of ``speakerctl show bfd peers``."""
    peer: str
    local: str | None
    multihop: bool
    vrf: str | None
    state: str
    local_diag: int
    remote_diag: int
    local_discr: int
    remote_discr: int
    remote_state: str
    tx_interval_ms: float  # negotiated, before jitter
    rx_interval_ms: float  # negotiated interval the peer sends at
    detect_mult: int
    remote_detect_mult: int
    detect_time_ms: float
    uptime_s: float | None  # None when not Up
    since_change_s: float
    polling: bool
    rx_packets: int
    tx_packets: int
    tx_errors: int
    dropped: int
    up_transitions: int
    down_transitions: int

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__slots__}


class BfdManager:
    """All BFD sessions of one daemon. Create and use inside a running loop."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop | None = None,
                 rand: Callable[[], float] = random.random,
                 single_hop_port: int = SINGLE_HOP_PORT, multi_hop_port: int = MULTI_HOP_PORT,
                 peer_single_hop_port: int | None = None,
                 peer_multi_hop_port: int | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._rand = rand
        self._sysrand = random.SystemRandom()
        # Listening ports are parameters so that two managers can talk over
        # loopback in one namespace (tests); 0 = kernel-chosen.
        self._listen = {False: single_hop_port, True: multi_hop_port}
        self._dest_port = {False: peer_single_hop_port or single_hop_port,
                           True: peer_multi_hop_port or multi_hop_port}
        self._rx: dict[tuple, _RxSocket] = {}
        self._by_peer: dict[tuple[str | None, str], _Entry] = {}  # (VRF device, peer address)
        self._by_discr: dict[int, _Entry] = {}
        self._by_addr: dict[tuple, _Entry] = {}
        self._draining: set[socket.socket] = set()
        self.drops: Counter = Counter()  # DropReason -> count, for packets with no session

    # ---- public API -----------------------------------------------------

    def add(self, peer_address: str, local_address: str | None, profile, multihop: bool,
            vrf: str | None, on_state: OnState) -> None:
        """Start a session with ``profile`` (a config.model.BFDProfile).

        Sessions are keyed by (VRF device, peer address): one router address
        in two VRFs has two sessions.  Raises OSError when a socket cannot be
        opened (e.g. port 3784 taken by another BFD daemon in the namespace, or
        an unknown VRF device) and ValueError for a duplicate (VRF, peer);
        nothing is left behind in either case.
        """
        if (vrf, peer_address) in self._by_peer:
            raise ValueError(f"BFD session for {peer_address}{_in_vrf(vrf)} already exists")
        family = _family(peer_address)
        peer_key = _addr_key(family, peer_address)
        rx_key = (family, multihop, vrf)
        tx = self._open_tx(family, local_address, vrf)
        try:
            rx = self._rx.get(rx_key) or self._open_rx(family, multihop, vrf)
        except OSError:
            tx.close()
            raise
        scope = socket.if_nametoindex(vrf) if (vrf and family == socket.AF_INET6) else 0
        port = self._dest_port[multihop]
        dest = (peer_address, port) if family == socket.AF_INET else (peer_address, port, 0, scope)
        now = self._loop.time()
        discr = self._new_discr()
        entry = _Entry(peer=peer_address, local=local_address, family=family, peer_key=peer_key,
                       multihop=multihop, vrf=vrf, min_ttl=profile.minimum_ttl,
                       session=BfdSession(discr, SessionParams.from_profile(profile), now, self._rand),
                       tx=tx, dest=dest, on_state=on_state, rx_key=rx_key, created=now,
                       last_change=now)
        entry.timer = Deadline(self._loop, lambda: self._fire(entry))
        rx.users += 1
        self._by_peer[(vrf, peer_address)] = entry
        self._by_discr[discr] = entry
        self._by_addr[(peer_key, vrf, multihop)] = entry
        log.info("bfd %s: session added (discr %d, %s)", peer_address, discr,
                 "multihop" if multihop else "single-hop")
        self._drain(entry)

    def remove(self, peer_address: str, vrf: str | None = None) -> None:
        """Stop the session: AdminDown to the peer, then forget it (no callback)."""
        entry = self._by_peer.pop((vrf, peer_address), None)
        if entry is None:
            return
        del self._by_discr[entry.session.local_discr]
        del self._by_addr[(entry.peer_key, entry.vrf, entry.multihop)]
        if entry.timer:
            entry.timer.cancel()
        interval = entry.session.tx_interval_us / 1e6
        entry.session.admin_down(self._loop.time())
        for act in entry.session.pop_actions():
            if type(act) is not Transmit:
                continue  # a removed session reports nothing
            raw = act.packet
            self._send(entry, raw)
            # Two more copies at the negotiated rate, so one lost datagram
            # does not turn a planned shutdown into a detected failure.
            for i in (1, 2):
                self._loop.call_later(i * interval, self._send, entry, raw)
        self._draining.add(entry.tx)
        self._loop.call_later(2 * interval + 0.001, self._close_tx, entry.tx)
        self._release_rx(entry.rx_key)
        log.info("bfd %s: session removed", peer_address)

    def update_profile(self, peer_address: str, profile, vrf: str | None = None) -> None:
        """New profile values for an existing session (Poll Sequence when Up)."""
        entry = self._by_peer[(vrf, peer_address)]
        entry.min_ttl = profile.minimum_ttl
        entry.session.set_params(SessionParams.from_profile(profile), self._loop.time())
        self._drain(entry)

    def sessions(self) -> list[BfdPeerInfo]:
        now = self._loop.time()
        rows = []
        for e in self._by_peer.values():
            s = e.session
            rows.append(BfdPeerInfo(
                peer=e.peer, local=e.local, multihop=e.multihop, vrf=e.vrf,
                state=s.state.name.lower(), local_diag=int(s.local_diag), remote_diag=s.remote_diag,
                local_discr=s.local_discr, remote_discr=s.remote_discr,
                remote_state=s.remote_state.name.lower(),
                tx_interval_ms=s.tx_interval_us / 1000, rx_interval_ms=s.rx_interval_us / 1000,
                detect_mult=s.params.detect_mult, remote_detect_mult=s.remote_mult,
                detect_time_ms=s.detect_time_us / 1000,
                uptime_s=None if s.up_since is None else now - s.up_since,
                since_change_s=now - e.last_change, polling=s.polling,
                rx_packets=s.counters.rx_packets, tx_packets=s.counters.tx_packets,
                tx_errors=e.tx_errors, dropped=sum(e.drops.values()),
                up_transitions=s.counters.up_transitions,
                down_transitions=s.counters.down_transitions))
        return rows

    def state(self, peer_address: str, vrf: str | None = None) -> BfdState | None:
        entry = self._by_peer.get((vrf, peer_address))
        return entry.session.state if entry else None

    def close(self, quiet: frozenset[tuple[str | None, str]] | set = frozenset()) -> None:
        """Send one AdminDown per session and close every socket now.

        Sessions keyed ``(vrf, peer address)`` in ``quiet`` get no AdminDown: their BGP
        session was closed for a graceful restart, and a router that hears AdminDown
        first (FRR: Cease/BFD Down) flushes the routes it should keep as stale."""
        now = self._loop.time()
        for key, entry in list(self._by_peer.items()):
            if entry.timer:
                entry.timer.cancel()
            if key not in quiet:
                entry.session.admin_down(now)
                for act in entry.session.pop_actions():
                    if type(act) is Transmit:
                        self._send(entry, act.packet)
            entry.tx.close()
        self._by_peer.clear()
        self._by_discr.clear()
        self._by_addr.clear()
        for sock in self._draining:
            sock.close()
        self._draining.clear()
        for rx in self._rx.values():
            self._loop.remove_reader(rx.sock.fileno())
            rx.sock.close()
        self._rx.clear()

    def listen_port(self, family: int, multihop: bool, vrf: str | None = None) -> int | None:
        rx = self._rx.get((family, multihop, vrf))
        return rx.sock.getsockname()[1] if rx else None

    # ---- sockets --------------------------------------------------------

    def _open_rx(self, family: int, multihop: bool, vrf: str | None) -> _RxSocket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if vrf:
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, vrf.encode())
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
                sock.bind(("::", self._listen[multihop]))
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
                sock.bind(("0.0.0.0", self._listen[multihop]))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        rx = _RxSocket(sock, family, multihop, vrf)
        self._rx[(family, multihop, vrf)] = rx
        self._loop.add_reader(sock.fileno(), self._on_readable, rx)
        return rx

    def _release_rx(self, key: tuple) -> None:
        rx = self._rx.get(key)
        if rx is None:
            return
        rx.users -= 1
        if rx.users <= 0:
            self._loop.remove_reader(rx.sock.fileno())
            rx.sock.close()
            del self._rx[key]

    def _open_tx(self, family: int, local: str | None, vrf: str | None) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if vrf:
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, vrf.encode())
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, SINGLE_HOP_TTL)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, TOS_CS6)
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, SINGLE_HOP_TTL)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, TOS_CS6)
            sock.setblocking(False)
            any_addr = "::" if family == socket.AF_INET6 else "0.0.0.0"
            span = SOURCE_PORT_MAX - SOURCE_PORT_MIN + 1
            start = self._sysrand.randrange(span)
            for i in range(span):
                port = SOURCE_PORT_MIN + (start + i) % span
                try:
                    sock.bind((local or any_addr, port))
                    break
                except OSError as e:
                    if e.errno != errno.EADDRINUSE:
                        raise
            else:
                raise OSError(errno.EADDRINUSE, "no free BFD source port")
        except OSError:
            sock.close()
            raise
        return sock

    def _close_tx(self, sock: socket.socket) -> None:
        if sock in self._draining:
            self._draining.discard(sock)
            sock.close()

    def _send(self, entry: _Entry, raw: bytes) -> None:
        if entry.tx.fileno() < 0:
            return
        try:
            entry.tx.sendto(raw, entry.dest)
        except OSError as e:  # ENETUNREACH, EHOSTUNREACH, ENOBUFS...: BFD will notice
            entry.tx_errors += 1
            log.debug("bfd %s: send failed: %s", entry.peer, e)

    # ---- receive path ---------------------------------------------------

    def _on_readable(self, rx: _RxSocket) -> None:
        for _ in range(256):
            try:
                data, anc, _flags, addr = rx.sock.recvmsg(256, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # ICMP errors surface here on some kernels
                log.debug("bfd recvmsg: %s", e)
                return
            ttl = -1
            for level, ctype, cdata in anc:
                if (level == socket.IPPROTO_IP and ctype == socket.IP_TTL) or \
                        (level == socket.IPPROTO_IPV6 and ctype == IPV6_HOPLIMIT):
                    ttl = _INT.unpack_from(cdata.ljust(4, b"\0"))[0]
            self._handle(rx, data, addr[0], ttl)

    def _handle(self, rx: _RxSocket, data: bytes, src: str, ttl: int) -> None:
        try:
            pkt = decode(data)
        except BfdDropped as e:
            self.drops[e.reason] += 1
            return
        src_key = _addr_key(rx.family, src)
        if pkt.your_discr:
            entry = self._by_discr.get(pkt.your_discr)
            if entry is None:
                self.drops[DropReason.UNKNOWN_SESSION] += 1
                return
            if entry.peer_key != src_key or entry.multihop != rx.multihop or entry.vrf != rx.vrf:
                self.drops[DropReason.WRONG_SOURCE] += 1
                return
        else:
            entry = self._by_addr.get((src_key, rx.vrf, rx.multihop))
            if entry is None:
                self.drops[DropReason.UNKNOWN_SESSION] += 1
                return
        if (ttl < entry.min_ttl) if rx.multihop else (ttl != SINGLE_HOP_TTL):
            entry.drops[DropReason.BAD_TTL] += 1
            self.drops[DropReason.BAD_TTL] += 1
            return
        entry.session.receive(pkt, self._loop.time())
        self._drain(entry)

    # ---- timers and outputs ---------------------------------------------

    def _fire(self, entry: _Entry) -> None:
        if self._by_peer.get((entry.vrf, entry.peer)) is entry:
            entry.session.tick(self._loop.time())
            self._drain(entry)

    def _drain(self, entry: _Entry) -> None:
        for act in entry.session.pop_actions():
            if type(act) is Transmit:
                self._send(entry, act.packet)
                continue
            ev: StateChange = act
            entry.last_change = self._loop.time()
            log.info("bfd %s: %s -> %s (%s)", entry.peer, ev.old.name, ev.new.name, ev.reason.name)
            if ev.new is not BfdState.UP and ev.old is not BfdState.UP:
                continue  # Down <-> Init churn is not the client's business
            try:
                entry.on_state(ev.new, ev.reason)
            except Exception:  # a broken callback must not stop BFD
                log.exception("bfd %s: on_state callback failed", entry.peer)
        entry.timer.set(entry.session.next_deadline())

    def _new_discr(self) -> int:
        while True:
            d = self._sysrand.randrange(1, 1 << 32)
            if d not in self._by_discr:
                return d


# ---- standalone session: JSON lines on stdout ---------------------------------

def _main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import time

    from ..config.model import BFDProfile

    ap = argparse.ArgumentParser(prog="python -m speakerd.net.bfd",
                                 description="one BFD session; state changes as JSON lines")
    ap.add_argument("--peer", required=True)
    ap.add_argument("--local")
    ap.add_argument("--rx", type=int, default=300, help="receive interval, ms")
    ap.add_argument("--tx", type=int, default=300, help="transmit interval, ms")
    ap.add_argument("--mult", type=int, default=3)
    ap.add_argument("--passive", action="store_true")
    ap.add_argument("--multihop", action="store_true")
    ap.add_argument("--min-ttl", type=int, default=254)
    ap.add_argument("--vrf")
    args = ap.parse_args(argv)

    def emit(obj: dict) -> None:
        obj["t"] = time.monotonic()
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def profile(tx: int, rx: int, mult: int) -> BFDProfile:
        return BFDProfile(name="cli", receive_interval_ms=rx, transmit_interval_ms=tx,
                          detect_multiplier=mult, passive_mode=args.passive,
                          minimum_ttl=args.min_ttl)

    async def run() -> None:
        mgr = BfdManager()
        done = asyncio.Event()

        def on_state(state: BfdState, diag: Diag) -> None:
            emit({"event": "state", "peer": args.peer, "state": state.name.lower(),
                  "diag": int(diag), "diag_name": getattr(diag, "name", str(diag)).lower()})

        def on_stdin() -> None:
            # commands: show | profile TX RX MULT | remove | quit
            line = sys.stdin.readline()
            words = line.split()
            if not line or words[:1] == ["quit"]:
                done.set()
            elif words[:1] == ["show"]:
                emit({"event": "sessions", "sessions": [r.as_dict() for r in mgr.sessions()]})
            elif words[:1] == ["profile"] and len(words) == 4:
                mgr.update_profile(args.peer, profile(*map(int, words[1:])), args.vrf)
                emit({"event": "ok", "cmd": "profile"})
            elif words[:1] == ["remove"]:
                mgr.remove(args.peer, args.vrf)
                emit({"event": "ok", "cmd": "remove"})

        mgr.add(args.peer, args.local, profile(args.tx, args.rx, args.mult), args.multihop,
                args.vrf, on_state)
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), on_stdin)
        emit({"event": "ready", "peer": args.peer})
        await done.wait()
        mgr.close()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(_main())
