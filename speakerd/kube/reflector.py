"""List+watch one kind into a cache, emitting only real changes (client-go's Reflector, in asyncio).

    r = Reflector(client, SERVICES, on_event=store_feed, on_state=watch_metrics.update)
    task = r.start();  await r.synced.wait()   # after the first complete list
    ...; await r.stop()

- First a paginated list (``limit``/``continue``), reconciled against the cache page by page
  (:func:`reconcile_page`; each page transformed as it arrives, so its raw objects go at once):
  ADDED/MODIFIED/DELETED of raw dicts only for objects that really changed, emitted once the list
  is complete, a few hundred between two returns to the event loop. The cyclic garbage collector
  is paused while a list is read and handed on: at 100k objects its full passes over everything listed,
  not the decoding, were most of the list's CPU time, and held the loop for seconds.
- Then a watch from the list's resourceVersion with bookmarks; every event moves the
  resourceVersion on; a stream that ends (``timeoutSeconds``, 5–10 min as client-go picks) is
  resumed from it, without a list.
- ``410 Gone`` (an ERROR event or an expired ``continue``) → list again and reconcile.
- Connection errors and other API errors → exponential backoff with jitter (0.8 s doubling to
  30 s, +0–100 %), reset once a list or a watch works again. All the while the cache is kept and
  nothing is emitted: an unreachable API server never looks like objects deleted.
- ``on_state(reflector)`` is called on every state change (``listing``/``watching``/``backoff``/
  ``stopped``, ``up``) for logs and the ``speakerd_k8s_watch_up{kind}`` gauge
  (:class:`speakerd.kube.metrics.WatchMetrics`).
- ``transform`` (default :func:`slim`) is applied to every object before it is cached or emitted.
"""
from __future__ import annotations

import asyncio
import logging
import random
from typing import Awaitable, Callable

from .client import TRANSIENT, ApiError, KubeClient
from ..config.gcpause import gc_paused
from .diff import DELETED, Key, apply_event, deletions, key_of, reconcile_page, resource_version, slim
from .kinds import Kind
from .tasks import cancel_and_wait, ensure_running

log = logging.getLogger("speakerd.kube")

EventHandler = Callable[[str, dict], None]


class Backoff:
    """Exponential backoff with jitter (pure: the random source is passed in)."""

    def __init__(self, initial: float = 0.8, maximum: float = 30.0, factor: float = 2.0,
                 jitter: float = 1.0, rng: Callable[[], float] = random.random) -> None:
        self.initial, self.maximum, self.factor, self.jitter, self.rng = initial, maximum, factor, jitter, rng
        self.failures = 0

    def next(self) -> float:
        base = min(self.maximum, self.initial * self.factor ** self.failures)
        self.failures += 1
        return base * (1.0 + self.jitter * self.rng())

    def reset(self) -> None:
        self.failures = 0


class Reflector:
    def __init__(self, client: KubeClient, kind: Kind, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 on_event: EventHandler | None = None,
                 on_state: Callable[["Reflector"], None] | None = None,
                 transform: Callable[[dict], dict] | None = slim, page_size: int = 500,
                 watch_timeout: tuple[int, int] = (300, 600), backoff: Backoff | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: Callable[[], float] = random.random) -> None:
        self.client, self.kind, self.namespace = client, kind, namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self.on_event, self.on_state, self.transform = on_event, on_state, transform
        self.page_size, self.watch_timeout = page_size, watch_timeout
        self.backoff = backoff or Backoff(rng=rng)
        self._sleep, self._rng = sleep, rng
        self.cache: dict[Key, dict] = {}
        self.resource_version = ""
        self.synced = asyncio.Event()
        self.state = "stopped"
        self.up = False
        self.lists = 0          # completed lists (the first one included)
        self.relists = 0        # lists after the first: 410 Gone, expired continue
        self.events = 0         # events emitted
        self.last_error = ""
        self._task: asyncio.Task | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task:
        self._task = ensure_running(self._task, self.run)
        return self._task

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self._set_state("stopped", False)

    def get(self, namespace: str | None, name: str) -> dict | None:
        return self.cache.get((namespace or "", name))

    # -- the loop --------------------------------------------------------------------------------

    def _set_state(self, state: str, up: bool | None = None) -> None:
        up = self.up if up is None else up
        if state == self.state and up == self.up:
            return
        if up != self.up:
            if up:
                log.info("k8s watch %s: up at resourceVersion %s", self.kind.label, self.resource_version)
            else:
                log.warning("k8s watch %s: down (%s)", self.kind.label, self.last_error or state)
        self.state, self.up = state, up
        if self.on_state is not None:
            self.on_state(self)

    def _emit(self, etype: str, obj: dict) -> None:
        self.events += 1
        if self.on_event is not None:
            try:
                self.on_event(etype, obj)
            except Exception:
                # a consumer's bug must not stop the watch of every other object
                log.exception("k8s %s: handler failed on %s %s", self.kind.label, etype,
                              (obj.get("metadata") or {}).get("name"))

    async def run(self) -> None:
        need_list = True
        try:
            while True:
                try:
                    if need_list:
                        self._set_state("listing")
                        await self._list()
                        need_list = False
                        self.backoff.reset()
                        self._set_state("watching", True)
                    need_list = await self._watch()
                except ApiError as exc:
                    if exc.gone:
                        need_list = True
                        continue
                    await self._fail(exc)
                except TRANSIENT as exc:
                    await self._fail(exc)
                except Exception as exc:   # a garbled stream, a surprise from the server: retry
                    log.exception("k8s %s: unexpected error", self.kind.label)
                    await self._fail(exc)
        finally:
            self._set_state("stopped", False)

    async def _fail(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        delay = self.backoff.next()
        self._set_state("backoff", False)
        log.warning("k8s %s: %s; retrying in %.1f s (cache of %d kept)", self.kind.label,
                    self.last_error, delay, len(self.cache))
        await self._sleep(delay)

    EMIT_CHUNK = 500  # list events handed on between two returns to the event loop

    async def _list(self) -> None:
        fresh: dict[Key, dict] = {}
        events: list[tuple[str, dict]] = []
        cont: str | None = None
        rv = ""
        with gc_paused():  # nothing a list builds is cyclic garbage (see speakerd.config.gcpause)
            while True:
                page = await self.client.list(self.kind, self.namespace, label_selector=self.label_selector,
                                              field_selector=self.field_selector, limit=self.page_size,
                                              continue_=cont)
                meta = page.get("metadata") or {}
                if not rv:
                    rv = meta.get("resourceVersion") or ""
                items = page.get("items") or ()
                del page
                # a list fills in neither kind nor apiVersion per item; consumers get them as a watch has them
                for obj in items:
                    obj.setdefault("kind", self.kind.kind)
                    obj.setdefault("apiVersion", self.kind.api_version)
                events += reconcile_page(self.cache, fresh, items, self.transform)
                del items
                cont = meta.get("continue")
                if not cont:
                    break
            events += deletions(self.cache, fresh)
            before, self.cache = self.cache, fresh
            self.resource_version = rv
            if self.lists:
                self.relists += 1
                log.info("k8s %s: listed again at resourceVersion %s: %d changes", self.kind.label, rv, len(events))
            self.lists += 1
            done = 0
            try:
                for done, (etype, obj) in enumerate(events, 1):
                    self._emit(etype, obj)
                    if done % self.EMIT_CHUNK == 0:
                        await asyncio.sleep(0)
            except BaseException:
                # stopped between two chunks: the cache must not hold what was never handed on,
                # or the next list (compared against it) would never hand it on either
                self._take_back(before, events[done:])
                raise
        self.synced.set()

    def _take_back(self, before: dict[Key, dict], events: list[tuple[str, dict]]) -> None:
        """Undo in the cache the list events not handed on: each object as it was ``before``."""
        cache = self.cache
        for etype, obj in events:
            k = key_of(obj)
            old = obj if etype == DELETED else before.get(k)
            if old is None:
                cache.pop(k, None)
            else:
                cache[k] = old

    async def _watch(self) -> bool:
        """Watch until the stream ends; True when the cache must be listed again (410 Gone)."""
        lo, hi = self.watch_timeout
        timeout = int(lo + (hi - lo) * self._rng())

        def opened() -> None:
            self.backoff.reset()
            self.last_error = ""
            self._set_state("watching", True)

        async for ev in self.client.watch(self.kind, self.namespace, resource_version=self.resource_version,
                                          label_selector=self.label_selector, field_selector=self.field_selector,
                                          timeout_seconds=timeout, bookmarks=True, idle_timeout=timeout + 60,
                                          on_open=opened):
            etype = ev.get("type")
            obj = ev.get("object") or {}
            if etype == "ERROR":
                if obj.get("code") == 410:
                    log.info("k8s %s: resourceVersion %s is gone (%s); listing again", self.kind.label,
                             self.resource_version, obj.get("message", ""))
                    return True
                raise ApiError(int(obj.get("code") or 500), obj)
            rv = resource_version(obj)
            if etype == "BOOKMARK":
                if rv:
                    self.resource_version = rv
                continue
            if etype not in ("ADDED", "MODIFIED", DELETED):
                continue
            if self.transform is not None:
                obj = self.transform(obj)
            if rv:
                self.resource_version = rv
            out = apply_event(self.cache, etype, obj)
            if out is not None:
                self._emit(*out)
        return False
