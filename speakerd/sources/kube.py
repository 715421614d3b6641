"""Kubernetes mode: the API server's objects -> store events, by list+watch.

One :class:`speakerd.kube.Reflector` per :data:`speakerd.kubewatch.WATCHES`
entry (this node's namespace for the MetalLB kinds and Secrets, cluster-wide
for Services and EndpointSlices, this node's own Node). A reflector lists,
then watches from the list's resourceVersion; a 410 Gone re-lists and reports
only the difference (an unchanged object is no event, so nothing is withdrawn
and re-announced); a lost connection retries with backoff from the last
version, keeping its cache. While the API server is unreachable nothing is
reported: the store, and so the routes, stay as they were.

Events go to ``on_events(batch)`` in batches: whatever arrived while the
previous batch was being applied, or within ``coalesce`` seconds (default
20 ms) of the first event after a quiet time, is the next one, so a burst
costs one planning pass (and one UPDATE per peer), not one per object; a
steady stream of single changes is applied a few at a time. The window is
the latency added to a change (FRR's own update-group coalescing is longer).
Batches also start at least ``min_interval`` seconds (default 50 ms) apart:
under a steady stream of changes (tens per second across a cluster) each
batch then holds several, and the fixed cost of one — a planning pass, one
UPDATE per peer, the status objects' pass — is paid at most 20 times a
second; a change after a quiet time still waits only ``coalesce``.
:attr:`KubeSource.synced` is set once every
reflector finished its first list and that state was handed over — nothing
is planned from a half-listed cluster.

A re-list that finds *none* of a kind's objects (an API server restored or
restarted empty, then re-populated) does not delete them at once: the
deletions are held for ``empty_relist_grace`` seconds (default 60) and
dropped for every object that comes back meanwhile, so the store — and the
sessions and routes — never see the gap. Deletions seen by the watch, or by a
re-list that still finds other objects of the kind, go through at once.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..kube import ApiError, Kind, KubeClient, Reflector
from ..kubewatch import WATCHES, Watch
from ..store import Event

log = logging.getLogger("speakerd.kube")


def kind_of(w: Watch, version: str) -> Kind:
    return Kind(w.group, version, w.plural, w.kind, namespaced=w.namespaced)


class KubeSource:
    def __init__(self, client: KubeClient, namespace: str, node: str,
                 on_events: Callable[[list[Event]], Awaitable[None] | None], *,
                 watches: tuple[Watch, ...] = WATCHES, on_state: Callable[[Reflector], None] | None = None,
                 empty_relist_grace: float = 60.0, coalesce: float = 0.02,
                 min_interval: float = 0.05) -> None:
        self.client, self.namespace, self.node = client, namespace, node
        self.on_events = on_events
        self.watches = watches
        self.on_state = on_state  # e.g. speakerd.kube.metrics.WatchMetrics.update
        self.synced = asyncio.Event()
        self.reflectors: dict[str, Reflector] = {}  # by object kind ("Service", ...)
        self.events_in = 0
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self.empty_relist_grace = empty_relist_grace
        self.coalesce = coalesce
        self.min_interval = min_interval
        self.held: dict[tuple[str, str, str], Event] = {}  # (kind, namespace, name) -> a held deletion
        self._held_logged: set[str] = set()

    async def _version(self, w: Watch) -> str:
        """The first of the watch's versions the API server serves (BGPPeer: v1beta2, else v1beta1)."""
        for version in w.versions[:-1]:
            k = kind_of(w, version)
            while True:
                try:
                    await self.client.list(k, self.namespace if w.namespaced else None, limit=1)
                    return version
                except ApiError as exc:
                    if exc.not_found:
                        log.info("%s %s is not served; using the next version", w.kind, k.api_version)
                        break
                    log.warning("cannot list %s (%s); retrying", k.label, exc)
                except (OSError, asyncio.TimeoutError) as exc:
                    log.warning("cannot reach the API server for %s (%s); retrying", k.label, exc)
                await asyncio.sleep(1.0)
        return w.versions[-1]

    def _handler_for(self, w: Watch, ref: list):
        def on_event(etype: str, obj: dict) -> None:
            md = obj.get("metadata") or {}
            key = (w.kind, md.get("namespace") or "", md.get("name") or "")
            r = ref[0] if ref else None
            if (etype == "DELETED" and r is not None and r.state == "listing" and r.lists > 0
                    and not r.cache and self.empty_relist_grace > 0):
                self._hold(w.kind, key, Event(etype, obj, "api"))
                return
            if self.held.pop(key, None) is not None and etype == "ADDED":
                etype = "MODIFIED"  # it came back: the deletion never happened
            self._pending.append(Event(etype, obj, "api"))
            self.events_in += 1
            self._wake.set()
        return on_event

    def _hold(self, kind: str, key: tuple[str, str, str], ev: Event) -> None:
        if kind not in self._held_logged:
            self._held_logged.add(kind)
            log.warning("k8s %s: listed again and found none of the objects it had: holding their deletion "
                        "%.0f s (an API server restored empty?)", kind, self.empty_relist_grace)
            asyncio.get_running_loop().call_later(self.empty_relist_grace, self._release, kind)
        self.held[key] = ev

    def _release(self, kind: str) -> None:
        """The grace is over: the objects of `kind` that did not come back are deleted now."""
        self._held_logged.discard(kind)
        gone = [k for k in self.held if k[0] == kind]
        if gone:
            log.warning("k8s %s: %d object(s) did not come back; deleting them", kind, len(gone))
        for k in gone:
            self._pending.append(self.held.pop(k))
            self.events_in += 1
        self._wake.set()

    async def _reflector(self, w: Watch) -> Reflector:
        version = await self._version(w)
        params = w.params(self.node)
        ref: list = []
        r = Reflector(self.client, kind_of(w, version), namespace=self.namespace if w.namespaced else None,
                      label_selector=params.get("labelSelector"), field_selector=params.get("fieldSelector"),
                      on_event=self._handler_for(w, ref), on_state=self.on_state)
        ref.append(r)
        return r

    async def run(self) -> None:
        try:
            for w, r in zip(self.watches, await asyncio.gather(*(self._reflector(w) for w in self.watches))):
                self.reflectors[w.kind] = r
                r.start()
            await asyncio.gather(*(r.synced.wait() for r in self.reflectors.values()))
            await self._flush()
            self.synced.set()
            log.info("initial list of every watched kind done (%d objects)", self.events_in)
            loop = asyncio.get_running_loop()
            last = loop.time() - self.min_interval  # the first change is not held back
            while True:
                await self._wake.wait()
                if self.coalesce > 0:  # let the rest of a burst (or the next changes) join this batch
                    await asyncio.sleep(self.coalesce)
                gap = last + self.min_interval - loop.time()
                if gap > 0:  # the previous batch started less than min_interval ago
                    await asyncio.sleep(gap)
                last = loop.time()
                await self._flush()
        finally:
            await asyncio.gather(*(r.stop() for r in self.reflectors.values()), return_exceptions=True)

    async def _flush(self) -> None:
        self._wake.clear()
        batch, self._pending = self._pending, []
        if batch:
            r = self.on_events(batch)
            if asyncio.iscoroutine(r):
                await r

    def states(self) -> dict[str, dict]:
        """Per watched kind: state, up, resourceVersion, objects, relists (for logs and speakerctl)."""
        return {k: {"state": r.state, "up": r.up, "resourceVersion": r.resource_version,
                    "objects": len(r.cache), "relists": r.relists, "error": r.last_error}
                for k, r in self.reflectors.items()}


__all__ = ["KubeSource", "kind_of"]
