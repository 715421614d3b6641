"""Kubernetes mode: the API server's objects -> store events, by list+watch.

One reflector per :data:`speakerd.kubewatch.WATCHES` entry (this node's
namespace for the MetalLB kinds and Secrets, cluster-wide for Services and
EndpointSlices, this node's own Node). Each reflector lists, then watches from
the list's resourceVersion; a 410 Gone re-lists and reports only the
difference (an unchanged object is no event, so nothing is withdrawn and
re-announced); a lost connection retries with backoff from the last version.
While the API server is unreachable nothing is reported: the store, and so
the routes, stay as they were.

Events go to ``on_events(batch)`` in batches: whatever arrived while the
previous batch was being applied is the next one, so a burst costs one
planning pass, not one per object. :attr:`KubeSource.synced` is set when every
reflector has finished its first list and that state was handed over — the
daemon plans nothing before it, so a start never announces a half-listed
cluster.

List items come without ``kind``/``apiVersion``; they are filled in from the
watch, as the store identifies objects by them.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from ..controller.kubeapi import Api, ApiError, Reflector
from ..kubewatch import WATCHES, Watch
from ..store import Event

log = logging.getLogger("speakerd.kube")

STATES = ("listing", "watching", "retrying")


class KubeSource:
    def __init__(self, api: Api, namespace: str, node: str,
                 on_events: Callable[[list[Event]], Awaitable[None] | None],
                 watches: tuple[Watch, ...] = WATCHES) -> None:
        self.api, self.namespace, self.node = api, namespace, node
        self.on_events = on_events
        self.watches = watches
        self.synced = asyncio.Event()
        self.state: dict[str, str] = {w.kind: "listing" for w in watches}  # kind -> listing/watching/retrying
        self.since: dict[str, float] = {w.kind: time.time() for w in watches}
        self.versions: dict[str, str] = {}  # kind -> the API version served and watched
        self.events_in = 0
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._reflectors: dict[str, Reflector] = {}
        self._all_created = asyncio.Event()

    def _set_state(self, kind: str, state: str, why: str = "") -> None:
        if self.state.get(kind) != state:
            self.state[kind] = state
            self.since[kind] = time.time()
            (log.warning if state == "retrying" else log.info)(
                "watch %s: %s%s", kind, state, f" ({why})" if why else "")

    async def _version(self, w: Watch) -> str:
        """The first of the watch's versions the API server serves (BGPPeer: v1beta2, else v1beta1)."""
        for version in w.versions[:-1]:
            try:
                await self.api.request("GET", w.path(version, self.namespace), params={"limit": "1"})
                return version
            except ApiError as exc:
                if exc.status != 404:
                    raise
        return w.versions[-1]

    def _handler(self, w: Watch, version: str):
        api_version = f"{w.group}/{version}" if w.group else version

        def on_event(etype: str, obj: dict) -> None:
            obj.setdefault("kind", w.kind)
            obj.setdefault("apiVersion", api_version)
            self._pending.append(Event(etype, obj, "api"))
            self.events_in += 1
            self._wake.set()
        return on_event

    async def _run_one(self, w: Watch) -> None:
        backoff = 0.2
        while True:
            try:
                version = await self._version(w)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - unreachable API server: keep trying
                self._set_state(w.kind, "retrying", str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        self.versions[w.kind] = version
        params = w.params(self.node)
        path = w.path(version, self.namespace) + (f"?{urlencode(params)}" if params else "")
        r = Reflector(self.api, path, self._handler(w, version), name=w.kind)
        self._reflectors[w.kind] = r
        if len(self._reflectors) == len(self.watches):
            self._all_created.set()
        mark = asyncio.create_task(self._mark_watching(w.kind, r))
        try:
            await r.run()
        finally:
            mark.cancel()

    async def _mark_watching(self, kind: str, r: Reflector) -> None:
        await r.synced.wait()
        self._set_state(kind, "watching")

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._run_one(w), name=f"watch-{w.kind}") for w in self.watches]
        try:
            await self._first_sync()
            while True:
                await self._wake.wait()
                await self._flush()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _first_sync(self) -> None:
        await self._all_created.wait()
        await asyncio.gather(*(r.synced.wait() for r in self._reflectors.values()))
        await self._flush()
        self.synced.set()
        log.info("initial list of every watched kind done (%d objects)", self.events_in)

    async def _flush(self) -> None:
        self._wake.clear()
        batch, self._pending = self._pending, []
        if batch:
            r = self.on_events(batch)
            if asyncio.iscoroutine(r):
                await r


__all__ = ["KubeSource", "STATES"]
