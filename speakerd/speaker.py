"""The daemon: owns the peers, applies the plan, reloads without a flap.

:class:`Speaker` ties the pieces together.  On start it loads and validates
the configuration, plans the routes for this node, starts a session for every
peer selected for the node and sets each session's wanted routes.  On reload
(SIGHUP, a changed file, ``speakerctl reload``) the new configuration is
validated in full first; an invalid one is logged and changes nothing.  A
valid one is applied as a difference (:mod:`speakerd.reconcile`):

* peers removed from the config get Cease/Peer De-configured (6/3);
* peers whose own session parameters changed get Cease/Other Configuration
  Change (6/6) and a new session;
* every other session stays up and only receives the route difference;
* BFD profiles are added, changed (poll sequence) or removed without
  touching the BGP session.

Everything an operator may ask about (sessions, routes, history, BFD,
why a prefix is or is not advertised) is answered from here by
:mod:`speakerd.control`.
"""
from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import os
import socket
import time
import zlib
from dataclasses import dataclass, field

from . import heap
from .config import ConfigError
from .config.gcpause import freeze_heap, gc_paused
from .config.model import Config, Peer as PeerConfig
from .drain import Drain
from .fsm.actions import NotificationReceived, NotificationSent, StateChanged, State
from .fsm.settings import SessionSettings
from .net.listener import Listener
from .net.peer import PeerTransport
from .policy.fileannounce import FileAnnouncer
from .policy.linkbw import Damper
from .policy.planner import Planner
from .policy.types import Plan, route_attrs
from .sources.files import FileSource
from .store import Changes, Store
from .reconcile import peers_for_node, plan_peer_changes
from .reweigh import Reweigh
from .state import StateError, load_allocations, save_allocations
from .wire.constants import TYPE_OFFSET, CeaseSubcode

log = logging.getLogger("speakerd")

CAPTURE_RING = 2000  # messages kept per peer for `speakerctl capture`
ROUTE_EVENTS = 200_000  # prefixes whose last announce/withdraw time is remembered
# BFD states as metrics.BFD_STATES spells them (keyed by speakerd.bfd.packet.State value)
_BFD_STATE_NAMES = {0: "AdminDown", 1: "Down", 2: "Init", 3: "Up"}


@dataclass(slots=True)
class PeerRuntime:
    """A configured peer and everything the daemon keeps about it."""
    config: PeerConfig
    peer: PeerTransport
    ring: collections.deque = field(default_factory=lambda: collections.deque(maxlen=CAPTURE_RING))
    bfd_active: bool = False
    flaps: collections.Counter = field(default_factory=collections.Counter)


def derive_router_id(peers: list[PeerConfig], node: str) -> tuple[int, str]:
    """The BGP identifier when no routerID is configured, and how it was chosen.

    Like FRR and BIRD: an IPv4 address of this node — the source address of
    a peer when one is configured, else the address the kernel would use to
    reach the first IPv4 peer (a routing lookup on an unconnected UDP socket:
    no packet is sent).  With only IPv6 peers, a stable identifier derived
    from the node name (RFC 6286 allows any non-zero 32-bit value).
    """
    for p in peers:
        if p.router_id:
            return int(ipaddress.IPv4Address(p.router_id)), "configured"
    for p in peers:
        if p.source_address and ":" not in p.source_address:
            return int(ipaddress.IPv4Address(p.source_address)), "source address"
    for p in peers:
        if p.peer_address and ":" not in p.peer_address:  # "": an interface (unnumbered) peer
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    if p.vrf:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, p.vrf.encode())
                    s.connect((p.peer_address, p.peer_port))
                    addr = s.getsockname()[0]
                if addr != "0.0.0.0":
                    return int(ipaddress.IPv4Address(addr)), f"route to {p.peer_address}"
            except OSError:
                continue
    return (zlib.crc32(node.encode()) or 1), "hash of the node name"


class Speaker(Drain, Reweigh):
    def __init__(self, paths: list[str], node: str, *, state_path: str | None = None,
                 metrics=None, tracer=None, redactor=None) -> None:
        self.paths = list(paths)
        self.node = node
        self.state_path = state_path
        self.metrics = metrics
        self.tracer = tracer
        self.redactor = redactor
        self.config: Config | None = None
        self.plan: Plan | None = None
        self._announce_keys: set[str] = set()  # Services whose verdict flipped in the last read
        self._init_feed()
        # endpoint-weighted ECMP: a route whose weight alone changes is re-announced to a peer at
        # most once per second; the damper is pure, its timer is this loop's call_at handle
        self.damper = Damper(self.REWEIGH_INTERVAL)
        self._damper_timer: asyncio.TimerHandle | None = None
        self.object_errors: list = []  # current errors of single objects (reported and skipped)
        self.router_id = 0
        self.router_id_source = ""
        self.peers: dict[str, PeerRuntime] = {}
        self.listeners: dict[tuple, Listener] = {}
        self.bfd = None  # BfdManager, created on first use
        self.started_at = time.time()
        self.last_reload: dict = {}
        self.route_events: dict[tuple[int, int], tuple[float, str]] = {}
        self.capture_subscribers: dict[str, list[asyncio.Queue]] = collections.defaultdict(list)
        self._reload_lock = asyncio.Lock()
        self._busy_retry: asyncio.TimerHandle | None = None
        self._retries: set[asyncio.Task] = set()
        self._stopping = False
        self._saved_allocations: dict = {}
        self.stopped = asyncio.Event()
        self.drain_state: str | None = None  # None, "draining" or "drained" (speakerctl drain)
        self._undrained = asyncio.Event()
        self._release_task: asyncio.Task | None = None  # heap.release after a large initial send

    def _init_feed(self) -> None:
        """Where objects come from and how they reach the planner: the files (file mode).
        :class:`speakerd.kubespeaker.KubeSpeaker` has its own (the API server, announce rules
        applied inside its store)."""
        self.source = FileSource(self.paths, hold_open=True)
        # no uids: only Kubernetes mode's status objects and events name a Service by its uid
        self.store = Store(uids=False)
        # file mode's announce rules on the files' EndpointSlices and this node's Node: the
        # planner routes only what this node announces, and allocates over every Service
        self.announcer = FileAnnouncer(self.store, self.node)
        self.planner = Planner(self.node, self.announcer.withheld)
        self.planner.endpoints = self.announcer.announcer.endpoints  # endpoint-weighted ECMP

    # ------------------------------------------------------------------ life
    async def start(self) -> None:
        """Load the config (raises ConfigError), then start every session."""
        changes = await self._ingest()
        if self.store.metallb_errors:
            raise ConfigError(list(self.store.metallb_errors))
        self._report_objects(changes)
        # the initial plan is made from the whole store: the read's change set (a tuple per
        # Service) goes first, and its blocks are taken by the plan's instead of left as holes
        del changes
        freeze_heap()  # before any session or timer waits on the loop (see config.gcpause)
        await self._apply(self.store.config(), initial=True)
        await self._release_memory(start=True)
        self.last_reload = {"time": time.time(), "ok": True, "errors": [str(i) for i in self.object_errors]}

    async def stop(self, message: str = "speakerd is shutting down", drain: float | None = None) -> None:
        """Cease/Administrative Shutdown with ``message`` to every peer, except
        graceful-restart sessions, which are closed without a NOTIFICATION.
        ``drain`` (seconds, ``--drain-on-stop``): :meth:`drain` first.

        Graceful restart (RFC 4724) and stopping: a helper keeps a peer's routes
        as stale when the TCP connection closes, but a Cease NOTIFICATION makes
        it flush them (RFC 4724 §4).  RFC 8538 (the N bit) would allow a
        non-Hard-Reset Cease instead, but a helper that treats Administrative
        Shutdown as a Hard Reset (FRR's ``bgp hard-administrative-reset``, on
        by default) still flushes.  So when ``enableGracefulRestart`` is set and
        the peer negotiated graceful restart, stopping closes the connection
        without a NOTIFICATION: the peer keeps forwarding to the service IPs
        for up to the restart time (120 s) while speakerd restarts; a speakerd
        that does not come back is cleaned up by the peer when that time runs
        out.  After the restart the OPEN carries the R bit and F=1 per family
        (the node's dataplane kept forwarding), the routes are re-announced
        from the same state file and End-of-RIB tells the peer to drop what
        was not re-announced.
        """
        if drain is not None and self.drain_state != "drained" and not self._stopping:
            await self.drain(drain, message)

        graceful_bfd: set[tuple[str | None, str]] = set()

        async def stop_one(rt: PeerRuntime) -> None:
            neg = rt.peer.negotiated
            graceful = bool(rt.config.graceful_restart and neg is not None and neg.graceful_restart)
            if graceful:
                graceful_bfd.add((rt.config.vrf, rt.config.peer_address))
                log.info("peer %s: graceful restart negotiated: closing without NOTIFICATION, "
                         "the peer keeps our routes as stale", rt.config.name)
            await rt.peer.stop(message, notify=not graceful)
        # A reload in progress finishes first (it may be starting sessions), and
        # none starts afterwards: nothing is left running once stop returns.
        self._stopping = True
        if self._damper_timer is not None:
            self._damper_timer.cancel()
            self._damper_timer = None
        if self._busy_retry is not None:
            self._busy_retry.cancel()
            self._busy_retry = None
        async with self._reload_lock:
            await asyncio.gather(*(stop_one(rt) for rt in self.peers.values()), return_exceptions=True)
            for listener in self.listeners.values():
                await listener.close()
            self.listeners.clear()
            if self.bfd is not None:
                self.bfd.close(quiet=graceful_bfd)
            close = getattr(getattr(self, "source", None), "close", None)
            if close is not None:
                close()  # the config files held open
            self.stopped.set()

    async def reload(self, reason: str = "reload requested") -> dict:
        """Validate, then apply the difference. Returns what happened."""
        async with self._reload_lock:
            if self._stopping:
                log.info("reload (%s) ignored: speakerd is stopping", reason)
                return {"ok": False, "errors": ["speakerd is stopping"]}
            changes = await self._ingest()
            if getattr(self.source, "busy", None):
                self._read_again_soon()
            errors = [str(i) for i in self.store.metallb_errors]  # still refused, even if unchanged since
            if changes.metallb_rejected:
                for line in errors:
                    log.error("config rejected, keeping the running config: %s", line)
            if changes.metallb:
                summary = await self._apply(self.store.config(), initial=False)
            else:
                summary = await self._services_changed(changes)
            self._report_objects(changes)
            await self._release_memory()
            if errors:
                if self.metrics:
                    self.metrics.reload(False)
                self.last_reload = {"time": time.time(), "ok": False, "errors": errors}
                return {"ok": False, "errors": errors, **summary}
            if self.metrics:
                self.metrics.reload(True)
            self.last_reload = {"time": time.time(), "ok": True, "errors": [], **summary}
            log.info("config reloaded (%s): %s", reason, summary)
            return {"ok": True, "errors": [], **summary}

    BUSY_RETRY = 0.1  # s: a config file some writer had open is read again this much later

    def _read_again_soon(self) -> None:
        """The last read left files alone that a writer had open (sources.files): read again
        shortly, whether or not inotify reports more (it does not report the writer's close)."""
        if self._busy_retry is not None or self._stopping:
            return
        log.debug("open for writing, read again in %d ms: %s", self.BUSY_RETRY * 1000, ", ".join(self.source.busy))
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._busy_retry = None
            task = loop.create_task(self.reload("a config file was still being written"))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        self._busy_retry = loop.call_later(self.BUSY_RETRY, fire)

    # ------------------------------------------------------------- applying
    INGEST_BATCH = 500  # events read and applied between two returns to the event loop

    async def _ingest(self) -> Changes:
        """Read the files in a worker thread, one batch of events at a time (only changed
        units are parsed; one batch of raw objects exists at a time), and apply each batch
        to the store on the event loop, which runs between batches."""
        batches = self.source.batches(self.INGEST_BATCH)
        changes = Changes()
        with gc_paused():  # nothing built while reading is cyclic garbage (see config.gcpause)
            while True:
                batch = await asyncio.to_thread(next, batches, None)
                if batch is None:
                    break
                changes.merge(self.store.apply(batch, settle=False))
                del batch
            changes.merge(self.store.settle())  # the MetalLB objects of this read, as one config
        if not changes.metallb and self.config is None:
            changes.merge(self.store.apply(()))  # the first read: an empty MetalLB config is one too
        keys, relabelled = self.announcer.apply(changes)
        self._announce_keys.update(keys)
        if relabelled and not changes.metallb_rejected:
            changes.metallb = True  # this node's labels select peers and advertisements: re-plan them
        return changes

    async def _release_memory(self, start: bool = False) -> None:
        """Once the objects of a large read are stored and planned (and always after the
        start-up, whose imports leave freed memory too), hand the heap memory freed by
        parsing and planning back to the kernel (``heap.release``, in a worker thread)."""
        if start or getattr(self.source, "units_parsed", 0) >= heap.TRIM_AFTER:
            await asyncio.to_thread(heap.release)

    def _release_memory_soon(self) -> None:
        """:func:`heap.release` once the loop is done with the initial UPDATEs of a session that
        just reached Established (their transient objects, ~75 B per route, are freed by then)."""
        if self._release_task is None or self._release_task.done():
            self._release_task = asyncio.get_running_loop().create_task(asyncio.to_thread(heap.release))

    def _report_objects(self, changes: Changes) -> None:
        """Log the errors of single objects (each skipped, every other one planned) once."""
        errors = [i for i in self._source_issues() if i.severity == "error"]
        errors += [i for items in self.store.issues.values() for i in items if i.severity == "error"]
        seen = {str(i) for i in self.object_errors}
        for issue in errors:
            if str(issue) not in seen:
                log.error("config: %s; skipped", issue)
        self.object_errors = errors
        if self.metrics and hasattr(self.metrics, "invalid_objects"):
            self.metrics.invalid_objects(len(errors))

    def _source_issues(self) -> list:
        """Problems of the sources themselves (unreadable files, syntax errors)."""
        return self.source.issues()

    async def _services_changed(self, changes: Changes) -> dict:
        """Only Services changed: re-plan those, in batches, and hand each session its delta."""
        config = self.store.config()
        self.config = config
        reweighed = changes.reweighed if self.planner.weighting else set()
        keys = list(changes.services.keys() | self._announce_keys | reweighed)
        self._announce_keys = set()
        now = time.time()
        changed = 0
        for i in range(0, len(keys), self.INGEST_BATCH):
            deltas = self.planner.services_changed(config, keys[i:i + self.INGEST_BATCH])
            for name, delta in deltas.items():
                rt = self.peers.get(name)
                if rt is not None and delta:
                    delta = self._damp(name, rt, delta)
                    changed += self._note_delta(delta, now)
                    if delta:
                        rt.peer.update_routes(delta)
            if len(keys) > self.INGEST_BATCH:
                await asyncio.sleep(0)
        self.plan = self.planner.plan()
        if self.plan.allocations != self._saved_allocations:
            self._save_allocations(self.plan.allocations)
        return {"added": [], "removed": [], "reset": [], "kept": sorted(self.peers), "route_changes": changed}

    def _note_delta(self, delta: dict, now: float) -> int:
        if len(self.route_events) > ROUTE_EVENTS:
            self.route_events.clear()
        for rk, ra in delta.items():
            self.route_events[rk] = (now, "withdraw" if ra is None else "announce")
        return len(delta)

    async def _apply(self, config: Config, initial: bool) -> dict:
        old = self.config
        for w in config.warnings:
            log.warning("config: %s", w)
        if self.redactor is not None:
            for p in config.peers.values():
                if p.password:
                    self.redactor.add(p.password)
        allocations = self._load_allocations() if initial else (self.plan.allocations if self.plan else {})
        self._announce_keys.clear()  # a rebuild re-plans every Service
        with gc_paused():
            deltas = self.planner.rebuild(config, allocations)
        new_plan = self.planner.plan()
        for note in new_plan.notes:
            log.warning("plan: %s", note)
        selected = peers_for_node(config, self.node)
        changes = plan_peer_changes(old, config, self.node,
                                    derive_router_id(list(selected.values()), self.node),
                                    (self.router_id, self.router_id_source), initial)
        reset = list(changes.reset)
        self.router_id, self.router_id_source = changes.router_id, changes.router_id_source
        self.config, self.plan = config, new_plan
        if new_plan.allocations != allocations:
            self._save_allocations(new_plan.allocations)
        self._saved_allocations = dict(new_plan.allocations)

        for name in changes.remove:
            rt = self.peers.pop(name)
            self._forget_bfd(rt)
            self._unregister(rt)
            await rt.peer.stop("peer removed from the configuration", CeaseSubcode.PEER_DECONFIGURED)
            if self.metrics:
                self.metrics.remove_peer(self._label(rt.config))
        retired: dict[str, PeerRuntime] = {}
        for name in reset:
            rt = retired[name] = self.peers.pop(name)
            self._forget_bfd(rt)
            self._unregister(rt)
            await rt.peer.stop("session parameters changed", CeaseSubcode.OTHER_CONFIGURATION_CHANGE)
        fresh = set(changes.start)
        for name in changes.start:
            await self._add_peer(selected[name], initial=initial)
        labels = {self._label(rt.config) for rt in self.peers.values()} if self.metrics else set()
        for name, old_rt in retired.items():
            if self.metrics and self._label(old_rt.config) not in labels:
                # a new peerAddress or peerPort: the old address's series go, as on removal
                self.metrics.remove_peer(self._label(old_rt.config))
            # the operator's view of a peer survives its session being rebuilt (an
            # Established session that was stopped counted its flap, cause config_change)
            new_rt = self.peers[name]
            new_rt.flaps.update(old_rt.flaps)
            hist = new_rt.peer.history
            carried = list(old_rt.peer.history) + list(hist)
            hist.clear()
            hist.extend(carried[-hist.maxlen:] if hist.maxlen else carried)
            ring = list(old_rt.ring) + list(new_rt.ring)
            new_rt.ring.clear()
            new_rt.ring.extend(ring)  # maxlen keeps the newest
        for name in changes.keep:
            rt = self.peers[name]
            rt.config = selected[name]
            if name in changes.bfd_changed:
                self._sync_bfd(rt)
        # routes last: every session (old and new) gets its wanted routes
        now = time.time()
        changed = 0
        for name, rt in self.peers.items():
            if name in fresh or initial:
                routes = route_attrs(new_plan.routes.get(name, {}))
                changed += self._note_route_changes(rt, routes, now)
                rt.peer.set_routes(routes)
            else:  # a kept session: only the change of its routes
                delta = deltas.get(name, {})
                if delta:
                    changed += self._note_delta(delta, now)
                    rt.peer.update_routes(delta)
        return {"added": list(changes.added), "removed": list(changes.remove), "reset": reset,
                "kept": list(changes.keep), "route_changes": changed}

    def _note_route_changes(self, rt: PeerRuntime, routes: dict, now: float) -> int:
        before = rt.peer.wanted_routes
        changed = 0
        if len(self.route_events) > ROUTE_EVENTS:
            self.route_events.clear()
        if not before:  # a new session: every route is an announcement (the keys taken once, in C)
            self.route_events.update(dict.fromkeys(routes, (now, "announce")))
            return len(routes)
        added = routes.keys() - before.keys()  # one C-level update each (1M routes on start)
        self.route_events.update(dict.fromkeys(added, (now, "announce")))
        removed = before.keys() - routes.keys()
        self.route_events.update(dict.fromkeys(removed, (now, "withdraw")))
        changed += len(added) + len(removed)
        if routes is before or not before or not routes:
            return changed
        if len(set(map(id, routes.values()))) == 1 == len(set(map(id, before.values()))) and \
                next(iter(routes.values())) == next(iter(before.values())):
            return changed  # one attribute set on both sides (the common case): nothing updated
        for k in routes.keys() & before.keys():
            now_attrs, was = routes[k], before[k]
            if now_attrs is not was and now_attrs != was:  # shared objects: no __eq__ call per route
                self.route_events[k] = (now, "update")
                changed += 1
        return changed

    async def _add_peer(self, pc: PeerConfig, initial: bool = False) -> None:
        # a session opened right after the process started announces R=1 (RFC 4724)
        settings = SessionSettings.from_peer(pc, self.router_id, restarting=initial)
        rt: PeerRuntime

        def on_event(peer: PeerTransport, event) -> None:
            self._on_peer_event(rt, event)

        def on_message(direction: str, ts: float, raw: bytes) -> None:
            self._on_peer_message(rt, direction, ts, raw)

        peer = PeerTransport(settings, on_event=on_event, on_message=on_message)
        rt = PeerRuntime(pc, peer)
        self.peers[pc.name] = rt
        if self.metrics:
            self.metrics.add_peer(self._label(pc))
        await self._register(rt)
        if self.drain_state is not None:  # drained: announced marked, or not started at all
            peer.set_graceful_shutdown(True)
            if self.drain_state == "drained":
                return
        peer.start()
        if pc.bfd_profile:
            self._sync_bfd(rt)

    # ------------------------------------------------------------ listeners
    @staticmethod
    def _listen_key(pc: PeerConfig) -> tuple:
        host = pc.source_address or ("::" if not pc.source_address else pc.source_address)
        return (host, pc.peer_port, pc.vrf)

    async def _register(self, rt: PeerRuntime) -> None:
        key = self._listen_key(rt.config)
        listener = self.listeners.get(key)
        if listener is None:
            listener = Listener(*key)
            listener.register(rt.peer)
            try:
                await listener.start()
            except OSError as e:
                log.error("peer %s: cannot listen on [%s]:%d%s: %s; only connecting out",
                          rt.config.name, key[0], key[1], f" dev {key[2]}" if key[2] else "", e)
                return
            self.listeners[key] = listener
        else:
            listener.register(rt.peer)

    def _unregister(self, rt: PeerRuntime) -> None:
        key = self._listen_key(rt.config)
        listener = self.listeners.get(key)
        if listener is not None:
            listener.unregister(rt.peer)
            if listener.empty:
                del self.listeners[key]
                asyncio.get_running_loop().create_task(listener.close())

    # ------------------------------------------------------------------ BFD
    def _sync_bfd(self, rt: PeerRuntime) -> None:
        """Start, update or stop BFD for ``rt`` to match its profile."""
        pc = rt.config
        profile = self.config.bfd_profiles.get(pc.bfd_profile) if pc.bfd_profile else None
        if profile is None:
            self._forget_bfd(rt)
            return
        if self.bfd is None:
            from .net.bfd import BfdManager
            self.bfd = BfdManager()
        if rt.bfd_active:
            self.bfd.update_profile(pc.peer_address, profile, pc.vrf)
            return

        def on_state(state, diag) -> None:
            self._on_bfd_state(rt, state, diag)

        try:
            self.bfd.add(pc.peer_address, pc.source_address, profile, pc.ebgp_multihop, pc.vrf, on_state)
        except (OSError, ValueError) as e:  # ValueError: another peer has BFD to this address and VRF
            log.error("peer %s: cannot start BFD: %s", pc.name, e)
            return
        rt.bfd_active = True

    def _forget_bfd(self, rt: PeerRuntime) -> None:
        if rt.bfd_active and self.bfd is not None:
            self.bfd.remove(rt.config.peer_address, rt.config.vrf)
            if self.metrics:
                self.metrics.remove_bfd(rt.config.peer_address)
        rt.bfd_active = False

    def _on_bfd_state(self, rt: PeerRuntime, state, diag) -> None:
        """BFD entered or left Up (see speakerd.net.bfd for the rule).

        The flap itself is counted once, by :meth:`_on_peer_event`, when the
        session leaves Established with cause ``bfd_down``; a reset from
        OpenSent/OpenConfirm is not a flap.
        """
        from .bfd.packet import BfdState, Diag
        if self.metrics:  # BFD series are labelled with the bare peer IP, as in MetalLB
            self.metrics.bfd_state(rt.config.peer_address, state == BfdState.UP, _BFD_STATE_NAMES[state])
        log.info("peer %s: BFD %s (%s)", rt.config.name, state.name.lower(), diag.name.lower())
        if state == BfdState.DOWN and diag != Diag.ADMIN_DOWN:
            if rt.peer.state in (State.ESTABLISHED, State.OPENSENT, State.OPENCONFIRM):
                log.warning("peer %s: BFD down (%s): closing the BGP session", rt.config.name,
                            diag.name.lower())
                rt.peer.reset(f"BFD down: {diag.name.lower()}", CeaseSubcode.BFD_DOWN)

    # --------------------------------------------------------------- events
    @staticmethod
    def _label(pc: PeerConfig) -> str:
        from .metrics import peer_label
        return peer_label(pc.peer_address, pc.peer_port)

    def _on_peer_event(self, rt: PeerRuntime, event) -> None:
        m = self.metrics
        label = self._label(rt.config)
        if isinstance(event, StateChanged):
            if m:
                m.session_state(label, event.new == State.ESTABLISHED, event.new.label)
            if event.old == State.ESTABLISHED:
                cause = event.cause.name.lower()
                rt.flaps[cause] += 1
                if m:
                    m.flap(label, cause)
            if event.new == State.ESTABLISHED and rt.config.bfd_profile and not rt.bfd_active:
                self._sync_bfd(rt)
            if event.new == State.ESTABLISHED and len(rt.peer.wanted_routes) >= heap.TRIM_AFTER:
                self._release_memory_soon()  # after the whole table's UPDATEs are packed
        elif isinstance(event, NotificationSent):
            n = event.notification
            log.warning("peer %s: NOTIFICATION sent: %s", rt.config.name, n.name)
        elif isinstance(event, NotificationReceived):
            n = event.notification
            msg = n.shutdown_message
            log.warning("peer %s: NOTIFICATION received: %s%s", rt.config.name, n.name,
                        f' "{msg}"' if msg else "")

    def _on_peer_message(self, rt: PeerRuntime, direction: str, ts: float, raw: bytes) -> None:
        rt.ring.append((ts, direction, raw))
        for q in self.capture_subscribers.get(rt.config.name, ()):
            try:
                q.put_nowait((ts, direction, raw))
            except asyncio.QueueFull:
                pass
        mtype = raw[TYPE_OFFSET] if len(raw) > TYPE_OFFSET else 0
        if self.metrics:
            self.metrics.message(self._label(rt.config), "sent" if direction == "out" else "received", mtype)
        tr = self.tracer
        if tr and tr.enabled(rt.config.name, rt.config.peer_address):
            from .wire.framing import decode
            from .wire.capabilities import DEFAULT_CONTEXT
            ctx = rt.peer.negotiated or DEFAULT_CONTEXT
            try:
                msg = decode(raw, ctx)
            except Exception as e:  # a trace must never break the session
                msg = f"undecodable message ({e})"
            tr.message(rt.config.name, "sent" if direction == "out" else "received", msg)

    # ----------------------------------------------------------- state file
    def _load_allocations(self) -> dict:
        if not self.state_path:
            return {}
        try:
            return load_allocations(self.state_path)
        except StateError as e:
            log.error("%s; starting with no previous allocations", e)
            return {}

    def _save_allocations(self, allocations: dict) -> None:
        if not self.state_path:
            return
        try:
            save_allocations(allocations, self.state_path)
        except OSError as e:
            log.error("cannot write the state file %s: %s", self.state_path, e)
