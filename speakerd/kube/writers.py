"""Writes: status subresource patches, Kubernetes Events, and create-or-patch of namespaced CRs.

- :func:`patch_status` — merge patch of ``/status`` (no precondition: last writer wins, for state a
  single owner publishes, e.g. a node's own BGPSessionState).
- :func:`update_status` — read, ``mutate(object) -> status``, write ``/status`` carrying the read
  resourceVersion; a 409 Conflict re-reads and retries (optimistic concurrency, for status several
  writers may race on, e.g. a Service's ``status.loadBalancer``). Nothing is written when the status
  is already what ``mutate`` returns.
- :func:`ensure` — create an object or merge-patch it into the wanted shape (labels, annotations,
  spec); :func:`ensure_with_status` also sets its status subresource; :func:`delete_if_exists`.
- :class:`EventRecorder` — core/v1 Events as client-go's recorder writes them: an identical event
  (same object, type, reason, message, source) increments ``count`` and moves ``lastTimestamp``
  instead of adding an object; more than 10 different messages for the same object/reason within
  10 minutes are combined ("(combined from similar events): ..."); a token bucket per object
  (burst 25, one per 5 minutes) drops floods. ``event()`` never blocks: writes go through a queue.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from datetime import datetime, timezone
from typing import Callable

from .client import TRANSIENT, ApiError, KubeClient
from .kinds import CORE_EVENTS, Kind
from .tasks import cancel_and_wait, ensure_running

log = logging.getLogger("speakerd.kube.writers")


def merge_diff(old, new):
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (``None`` deletes a key)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out = {}
    for k, v in new.items():
        if k not in old:
            out[k] = v
        elif old[k] != v:
            out[k] = merge_diff(old[k], v)
    for k in old:
        if k not in new:
            out[k] = None
    return out


async def patch_status(client: KubeClient, kind: Kind, namespace: str | None, name: str, status: dict) -> dict:
    return await client.patch(kind, namespace, name, {"status": status}, subresource="status")


async def update_status(client: KubeClient, kind: Kind, namespace: str | None, name: str,
                        mutate: Callable[[dict], dict | None], attempts: int = 5) -> dict | None:
    """Optimistic-concurrency status write; the written object, or None when nothing was to change."""
    for attempt in range(attempts):
        obj = await client.get(kind, namespace, name)
        want = mutate(obj)
        old = obj.get("status") or {}
        if want is None or want == old:
            return None
        body = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                "status": merge_diff(old, want)}
        try:
            return await client.patch(kind, namespace, name, body, subresource="status")
        except ApiError as exc:
            if not exc.conflict or attempt == attempts - 1:
                raise
            log.debug("%s %s/%s status: conflict, retrying", kind.kind, namespace, name)
    return None


async def ensure(client: KubeClient, kind: Kind, namespace: str | None, name: str, body: dict) -> dict:
    """Create ``body`` or merge-patch the existing object to it (keys absent from ``body`` are kept)."""
    body = {**body, "apiVersion": kind.api_version, "kind": kind.kind,
            "metadata": {**(body.get("metadata") or {}), "name": name,
                         **({"namespace": namespace} if kind.namespaced else {})}}
    main = {k: v for k, v in body.items() if k != "status"}
    try:
        return await client.patch(kind, namespace, name, main)
    except ApiError as exc:
        if not exc.not_found:
            raise
    try:
        return await client.create(kind, namespace, main)
    except ApiError as exc:
        if not exc.already_exists:
            raise
        return await client.patch(kind, namespace, name, main)


async def ensure_with_status(client: KubeClient, kind: Kind, namespace: str | None, name: str,
                             body: dict, status: dict) -> dict:
    obj = await ensure(client, kind, namespace, name, body)
    if (obj.get("status") or {}) == status:
        return obj
    return await client.patch(kind, namespace, name, {"status": merge_diff(obj.get("status") or {}, status)},
                              subresource="status")


async def delete_if_exists(client: KubeClient, kind: Kind, namespace: str | None, name: str) -> bool:
    try:
        await client.delete(kind, namespace, name)
        return True
    except ApiError as exc:
        if exc.not_found:
            return False
        raise


def _ts(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens, self.at = burst, now


class EventRecorder:
    """The one Event writer: the controller's and the speaker's (:mod:`speakerd.publish`) Events.

    ``client`` is anything with ``create(kind, namespace, body)`` and ``patch(kind, namespace,
    name, patch)`` (a :class:`KubeClient`, or the publisher's object client); a failed call's
    exception carries the HTTP status in ``.status`` (:class:`ApiError` does). Either ``start()``
    the recorder's own writer task, or let an owner drain it (``queued()``, ``write_next()``)
    between its other writes, as the publisher does under its rate limit.
    """

    AGGREGATE_AFTER = 10          # distinct messages before they are combined (client-go)
    AGGREGATE_WINDOW = 600.0
    BURST, REFILL = 25.0, 1.0 / 300.0
    CACHE = 4096

    def __init__(self, client, component: str, host: str = "", *,
                 wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 monotonic: Callable[[], float] = time.monotonic, max_queue: int = 10_000) -> None:
        self.client, self.component, self.host = client, component, host
        self._wall, self._mono = wall, monotonic
        self._seen: OrderedDict[tuple, dict] = OrderedDict()     # dedup key -> {name, ns, count, first}
        self._similar: OrderedDict[tuple, tuple[float, set]] = OrderedDict()
        self._buckets: OrderedDict[tuple, _Bucket] = OrderedDict()
        self._queue: asyncio.Queue = asyncio.Queue(max_queue)
        self._task: asyncio.Task | None = None
        self.dropped = 0              # not written: queue full, flood limit, or the write failed
        self.written = 0

    # -- producer side (sync, never blocks) ------------------------------------------------------

    def event(self, obj: dict, type_: str, reason: str, message: str) -> bool:
        """Record an Event about ``obj`` (an object dict as read from the API); False when dropped."""
        md = obj.get("metadata") or {}
        ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
               "namespace": md.get("namespace", ""), "name": md.get("name", ""), "uid": md.get("uid", "")}
        if md.get("resourceVersion"):
            ref["resourceVersion"] = md["resourceVersion"]
        return self.record(ref, type_, reason, message)

    def record(self, ref: dict, type_: str, reason: str, message: str) -> bool:
        """Record an Event about the object ``ref`` names (an ``involvedObject``: kind, apiVersion,
        name, and namespace/uid/resourceVersion where it has them); False when dropped."""
        ref = {k: v for k, v in ref.items() if v}  # a cluster-scoped object has no namespace
        obj_key = (ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""), ref.get("uid", ""))
        now = self._mono()
        if not self._allow(obj_key, now):
            self.dropped += 1
            return False
        message, combined = self._aggregate(obj_key, type_, reason, message, now)
        key = (*obj_key, type_, reason, None if combined else message)
        try:
            self._queue.put_nowait((key, ref, type_, reason, message[:1024]))
            return True
        except asyncio.QueueFull:
            self.dropped += 1
            return False

    def _allow(self, key: tuple, now: float) -> bool:
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(self.BURST, now)
            if len(self._buckets) > self.CACHE:
                self._buckets.popitem(last=False)
        b.tokens = min(self.BURST, b.tokens + (now - b.at) * self.REFILL)
        b.at = now
        if b.tokens < 1.0:
            return False
        b.tokens -= 1.0
        return True

    def _aggregate(self, obj_key: tuple, type_: str, reason: str, message: str, now: float) -> tuple[str, bool]:
        akey = (*obj_key, type_, reason)
        start, messages = self._similar.get(akey, (now, set()))
        if now - start > self.AGGREGATE_WINDOW:
            start, messages = now, set()
        if len(messages) <= self.AGGREGATE_AFTER:
            messages.add(message)
        self._similar[akey] = (start, messages)
        self._similar.move_to_end(akey)
        if len(self._similar) > self.CACHE:
            self._similar.popitem(last=False)
        if len(messages) > self.AGGREGATE_AFTER:
            # from now on one Event per object/reason, its count and message updated
            return "(combined from similar events): " + message, True
        return message, False

    # -- the writer task -------------------------------------------------------------------------

    def start(self) -> asyncio.Task:
        self._task = ensure_running(self._task, self._run)
        return self._task

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def flush(self) -> None:
        """Wait until every recorded event was written (or given up)."""
        await self._queue.join()

    def queued(self) -> int:
        """Events recorded and not yet written."""
        return self._queue.qsize()

    async def write_next(self) -> None:
        """Write the oldest queued Event (for an owner that drains the queue itself)."""
        item = self._queue.get_nowait()
        try:
            await self._write_one(item)
        finally:
            self._queue.task_done()

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._write_one(item)
            finally:
                self._queue.task_done()

    async def _write_one(self, item: tuple) -> None:
        """Best effort: a few retries while the API server is unreachable, then given up."""
        for attempt in range(3):
            try:
                await self._write(*item)
                self.written += 1
                return
            except TRANSIENT as exc:
                log.debug("event write failed (%s), retry %d", type(exc).__name__, attempt)
                if attempt < 2:
                    await asyncio.sleep(0.5 * 2 ** attempt)
            except Exception as exc:  # noqa: BLE001 - an Event is never worth stopping for
                log.warning("event %s on %s %s/%s not written: %s", item[3], item[1].get("kind", ""),
                            item[1].get("namespace", ""), item[1].get("name", ""), exc)
                break
        self.dropped += 1

    async def _write(self, key: tuple, ref: dict, type_: str, reason: str, message: str) -> None:
        ns = ref.get("namespace") or "default"
        now = _ts(self._wall())
        seen = self._seen.get(key)
        if seen is not None:
            try:
                await self.client.patch(CORE_EVENTS, seen["namespace"], seen["name"],
                                        {"count": seen["count"] + 1, "lastTimestamp": now, "message": message})
                seen["count"] += 1
                self._seen.move_to_end(key)
                return
            except Exception as exc:
                if getattr(exc, "status", None) != 404:
                    raise
                self._seen.pop(key, None)          # expired (event TTL): write a new one
        name = f"{ref.get('name', 'event')}.{time.time_ns():x}"
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": ref, "reason": reason, "message": message, "type": type_,
                "source": {"component": self.component, **({"host": self.host} if self.host else {})},
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "reportingComponent": self.component, "reportingInstance": self.host}
        await self.client.create(CORE_EVENTS, ns, body)
        self._seen[key] = {"name": name, "namespace": ns, "count": 1}
        if len(self._seen) > self.CACHE:
            self._seen.popitem(last=False)
