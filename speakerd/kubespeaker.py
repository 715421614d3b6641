"""``speakerd run --kubernetes``: the speaker fed by the API server instead of files.

The same store, planner and sessions as file mode (:class:`speakerd.speaker.Speaker`);
what differs:

- events come from :class:`speakerd.sources.kube.KubeSource` (list+watch), in
  batches, each applied as soon as it arrives (no re-read of anything);
- between the store and the planner sit the announce rules
  (:class:`speakerd.policy.announce.Announcer`): the planner sees only the
  Services this node announces, so a Service whose last local endpoint went
  away is withdrawn from this node by the planner's own difference;
- this node's Node labels select peers and advertisements: a label change
  re-plans them (file mode reads the node's labels from its files);
- an invalid MetalLB configuration at start is logged and waited out (no
  peers until a valid one arrives), as MetalLB's speaker does; later ones
  keep the running configuration;
- what it does is published back (:mod:`speakerd.publish`): BGPSessionState
  per session, ServiceBGPStatus per announced Service, Events when it starts
  or stops announcing a Service and on invalid objects.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time

from .config.gcpause import freeze_heap, gc_paused
from .fsm.actions import StateChanged
from .policy.announce import AnnounceOptions, AnnouncingStore
from .policy.planner import Planner
from .publish.events import invalid_from_issue
from .publish.speaker_state import peers_of_service, sessions_of
from .publish.status import Owner
from .publish.writer import StatusPublisher
from .speaker import Speaker
from .store import Changes, Event, Store

log = logging.getLogger("speakerd")


class KubeSpeaker(Speaker):
    """A Speaker whose objects come in batches from the API server."""

    # watch events are whole API objects (kubectl-shaped, 40-90 us each to validate): a
    # smaller batch than file mode's keeps one batch well under BFD's 100 ms interval
    INGEST_BATCH = 250

    def __init__(self, node: str, *, namespace: str, lb_class: str | None = None,
                 ignore_exclude_lb: bool = False, **kw) -> None:
        self.namespace = namespace
        self._options = AnnounceOptions(lb_class=lb_class, ignore_exclude_lb=ignore_exclude_lb,
                                        require_ingress=True)
        super().__init__([], node, **kw)
        self._pending: list[Event] = []
        self.publisher: StatusPublisher | None = None
        self.status_changed = asyncio.Event()
        self.sessions_changed = True  # for the publisher: a session or its BFD changed state
        self.batches = 0
        # for the publisher: Services whose announcement may have changed since it last looked
        self.dirty: set[str] = set()
        self.all_dirty = True
        self.announced: dict[str, set[str]] = {}  # service key -> peers, as last published

    def _init_feed(self) -> None:
        """No files: the source's batches go into a store that applies the announce rules, and the
        planner sees only what this node announces (so it withholds nothing itself)."""
        self.store = AnnouncingStore(Store(lb_class=self._options.lb_class), self.node, self._options)
        self.planner = Planner(self.node)
        self.planner.endpoints = self.store.announcer.endpoints  # endpoint-weighted ECMP

    def _source_issues(self) -> list:
        return []  # the API server hands over objects, not files: nothing to fail before the store

    # --- the source's batches ------------------------------------------------------------------
    def feed(self, events: list[Event]) -> None:
        self._pending.extend(events)

    async def _ingest(self) -> Changes:
        events, self._pending = self._pending, []
        changes = Changes()
        for i in range(0, max(len(events), 1), self.INGEST_BATCH):
            with gc_paused():  # a full collection walks every cached object: not inside a batch
                changes.merge(self.store.apply(events[i:i + self.INGEST_BATCH], settle=False))
            if len(events) > self.INGEST_BATCH:
                await asyncio.sleep(0)
        changes.merge(self.store.settle())  # this batch's MetalLB objects, as one config
        return changes

    async def start(self) -> None:
        """Apply what the first list gave; an invalid MetalLB configuration is waited out."""
        changes = await self._ingest()
        # The first list built the cluster's state with the collector paused (config.gcpause):
        # CPython still counts its long-lived objects as they were before it, so the first few
        # hundred thousand objects that survive afterwards would set off a full pass over all
        # of it (seconds at 100k Services), and so would every growth by a quarter later. Run
        # one pass now, before any session or timer waits on the loop, and freeze what lives.
        freeze_heap()
        for issue in self.store.metallb_errors:
            log.error("config rejected (no BGP peers until it is fixed): %s", issue)
        await self._apply(self.store.config(), initial=True)
        self._report_objects(changes)
        self.last_reload = {"time": time.time(), "ok": not self.store.metallb_errors,
                            "errors": [str(i) for i in self.store.errors()]}
        self.status_changed.set()

    async def apply_batch(self, events: list[Event]) -> dict:
        """One batch of API events, applied like a reload (validated, then only the difference)."""
        async with self._reload_lock:
            if self._stopping:
                return {"ok": False}
            self._pending.extend(events)
            changes = await self._ingest()
            if changes.metallb_rejected:
                for issue in self.store.metallb_errors:
                    log.error("config rejected, keeping the running config: %s", issue)
            if changes.metallb:
                summary = await self._apply(self.store.config(), initial=False)
                log.info("configuration applied: %s", summary)
                self.all_dirty = True
                self.sessions_changed = True  # peers may have been added or removed
            elif changes.services or (changes.reweighed and self.planner.weighting):
                summary = await self._services_changed(changes)
                self.dirty.update(changes.services)
            else:
                summary = {}
            self._report_objects(changes)
            self.batches += 1
            self.last_reload = {"time": time.time(), "ok": not changes.metallb_rejected,
                                "errors": [str(i) for i in self.store.errors()]}
            self.status_changed.set()
            return summary

    def _report_objects(self, changes: Changes) -> None:
        before = {str(i) for i in self.object_errors} | getattr(self, "_metallb_reported", set())
        super()._report_objects(changes)
        now = list(self.object_errors) + list(self.store.metallb_errors)
        self._metallb_reported = {str(i) for i in self.store.metallb_errors}
        if self.publisher is not None:
            for issue in now:
                if str(issue) not in before:
                    spec = invalid_from_issue(issue, self.namespace)
                    if spec is not None:
                        self.publisher.record(spec)

    # --- session state for the publisher -------------------------------------------------------
    def _on_peer_event(self, rt, event) -> None:
        super()._on_peer_event(rt, event)
        if isinstance(event, StateChanged):  # not the routes a peer sends (every UPDATE is one)
            self.sessions_changed = True
            self.status_changed.set()

    def _on_bfd_state(self, rt, state, diag) -> None:
        super()._on_bfd_state(rt, state, diag)
        self.sessions_changed = True
        self.status_changed.set()


async def publish_loop(speaker: KubeSpeaker, publisher: StatusPublisher) -> None:
    """Keep the publisher in step: the sessions when one changed state; the peers of each Service whose
    announcement may have changed (those of the last batches; all after a re-plan of the peers)."""
    while True:
        await speaker.status_changed.wait()
        speaker.status_changed.clear()
        if speaker.sessions_changed:  # a batch of Service changes alone leaves the sessions as they were
            speaker.sessions_changed = False
            publisher.set_sessions(sessions_of(speaker))
        if speaker.all_dirty:
            keys = set(speaker.announced) | set(speaker.store.services)
        else:
            keys = speaker.dirty
        speaker.dirty, speaker.all_dirty = set(), False
        planned = speaker.config.services if speaker.config is not None else {}
        services = speaker.store.services
        ann = speaker.store.announcer
        for n, key in enumerate(keys, 1):
            if n % speaker.INGEST_BATCH == 0:
                await asyncio.sleep(0)  # a re-plan of every Service: timers and sessions run between batches
                planned = speaker.config.services if speaker.config is not None else {}
                services, ann = speaker.store.services, speaker.store.announcer
            svc = planned.get(key)
            peers = peers_of_service(speaker.planner, svc) if svc is not None else set()
            before = speaker.announced.get(key)
            if peers:
                speaker.announced[key] = peers
            else:
                speaker.announced.pop(key, None)
            if key not in services:  # deleted: its status object goes, no Event on a gone object
                if before is not None:
                    publisher.forget_service(key)
                continue
            if before == (peers or None):
                continue
            v = ann.verdict(key)
            why = str(v) if not v.announce else "no route of it goes to any peer of this node"
            publisher.set_service(key, peers, services[key].uid, why)


SHUTDOWN_WRITES = 2.0  # seconds the publisher has, on SIGTERM, to write what it queued (Events, status)


def pod_owner() -> Owner | None:
    name, uid = os.environ.get("POD_NAME"), os.environ.get("POD_UID")
    return Owner(name, uid) if name and uid else None


async def serve(args) -> int:
    """The daemon in Kubernetes mode (the counterpart of ``commands.run._run``)."""
    from . import logs
    from .commands.run import update_prefix_gauges
    from .control.server import ControlServer
    from .kube import load_client
    from .kube.config import pod_namespace
    from .kube.metrics import WatchMetrics
    from .metrics import Metrics, parse_listen
    from .publish.kubeclient import KubeObjectClient
    from .sources.kube import KubeSource

    speaker: KubeSpeaker | None = None

    class DaemonMetrics(Metrics):
        def render(self) -> bytes:
            if speaker is not None:
                update_prefix_gauges(speaker, self)
            return super().render()

    namespace = args.namespace or pod_namespace()
    client = await load_client(args.kubeconfig)
    metrics = DaemonMetrics()
    watch_metrics = WatchMetrics()
    watch_metrics.register(metrics.registry)
    speaker = KubeSpeaker(args.node, namespace=namespace, lb_class=args.lb_class,
                          ignore_exclude_lb=args.ignore_exclude_lb, state_path=args.state,
                          metrics=metrics, tracer=logs.Tracer(args.trace), redactor=logs.redact)
    publisher = StatusPublisher(KubeObjectClient(client), namespace, args.node, owner=pod_owner())
    speaker.publisher = publisher
    first: list[Event] = []
    started = asyncio.Event()

    async def on_events(batch: list[Event]) -> None:
        if not started.is_set():
            first.extend(batch)
            return
        await speaker.apply_batch(batch)

    source = KubeSource(client, namespace, args.node, on_events, on_state=watch_metrics.update)
    loop = asyncio.get_running_loop()
    from .looplag import LoopLagProbe
    lag_probe = LoopLagProbe(registry=metrics.registry)
    lag_probe.start(loop)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    tasks = [loop.create_task(source.run(), name="kube-source")]
    control = ControlServer(speaker, args.socket)
    await control.start()  # answers health while the first list runs
    metrics_server = None
    if args.metrics:
        host, port = parse_listen(args.metrics)
        metrics_server = await metrics.serve(host, port)
        log.info("metrics on %s:%d", host or "*", port)
    log.info("speakerd: node %s, listing %s (namespace %s) ...", args.node, client.host, namespace)
    waiter = loop.create_task(source.synced.wait())
    done, _ = await asyncio.wait({waiter, loop.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        speaker.feed(first)
        first.clear()
        await speaker.start()
        started.set()
        tasks += [loop.create_task(publisher.run(), name="publisher"),
                  loop.create_task(publish_loop(speaker, publisher), name="publish-loop")]
        log.info("speakerd running: node %s, router id %s (%s), %d peer(s), %d Service(s) announced, "
                 "control socket %s", args.node, socket.inet_ntoa(speaker.router_id.to_bytes(4, "big")),
                 speaker.router_id_source, len(speaker.peers), len(speaker.store.config().services), args.socket)
        await stop.wait()
    log.info("stopping: closing every session")
    if started.is_set() and not await publisher.finish(SHUTDOWN_WRITES):
        log.warning("stopping with %d status writes and Events not written (API server too slow or away)",
                    publisher.pending())
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await speaker.stop("speakerd is shutting down", drain=getattr(args, "drain_on_stop", None))
    lag_probe.stop()
    await control.close()
    if metrics_server is not None:
        metrics_server.close()
        await metrics_server.wait_closed()
    await client.close()
    return 0


__all__ = ["KubeSpeaker", "publish_loop", "serve"]
