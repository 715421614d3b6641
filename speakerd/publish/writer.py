"""The asyncio edge that keeps this node's status objects and Events in the cluster.

The speaker tells the publisher what is true now (``set_service``,
``set_sessions``, ``record``); the publisher's task writes the difference:

- coalescing: a change marks one object dirty; when its turn comes the
  object's *current* wanted state is written, so a Service that flaps ten
  times before its turn costs one write (or none, when it ends as it was);
  a change while its object's write is in flight marks it again;
- rate-limited: a token bucket (``qps``, ``burst``) shared by every write;
- incremental: per object, against what this publisher last saw or wrote —
  no list per change; one list per kind at start (label selector
  ``<node label>=<node>``) adopts the objects a previous Pod left and deletes
  the ones nothing wants any more;
- failure-tolerant: a write that fails stays dirty and is retried with
  backoff; 409 on create becomes a patch, 404 on patch becomes a create,
  404 on delete is done. A kind whose list fails (CRD not installed) is
  retried until it works; nothing else waits for it.

Events are best effort and go through :class:`speakerd.kube.writers.EventRecorder`
(the controller's recorder too: client-go's dedup, aggregation and flood limit;
a bounded queue, what does not fit is dropped and counted); this publisher
drains its queue between the status writes, under the same rate limit.

The client is anything with the :class:`ObjectClient` methods; errors it
raises carry the HTTP status in ``.status``.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from ..kube.writers import EventRecorder
from ..rbac import Access
from .events import COMPONENT, EventSpec, transitions, announced, withdrawn
from .status import (
    BGP_SESSION_STATE, EVENT, SERVICE_BGP_STATUS, Desired, Kind, Observed, Owner, SessionInfo,
    desired_service_status, desired_session_states, node_selector, write_for,
)

log = logging.getLogger("speakerd.publish")

# What the calls below need (tests/unit/test_publish.py records the calls and compares).
ACCESS = (
    Access(SERVICE_BGP_STATUS.group, SERVICE_BGP_STATUS.plural, ("create", "delete", "list", "patch")),
    Access(SERVICE_BGP_STATUS.group, f"{SERVICE_BGP_STATUS.plural}/status", ("patch",)),
    Access(BGP_SESSION_STATE.group, BGP_SESSION_STATE.plural, ("create", "delete", "list", "patch")),
    Access(BGP_SESSION_STATE.group, f"{BGP_SESSION_STATE.plural}/status", ("patch",)),
    Access(EVENT.group, EVENT.plural, ("create", "patch"), "cluster"),  # Events go to each Service's namespace
)


class ObjectClient(Protocol):
    async def list(self, kind: Kind, namespace: str, label_selector: str) -> list[dict]: ...

    async def create(self, kind: Kind, namespace: str, body: dict) -> dict: ...

    async def patch(self, kind: Kind, namespace: str, name: str, patch: dict,
                    subresource: str | None = None) -> dict: ...  # JSON merge patch

    async def delete(self, kind: Kind, namespace: str, name: str) -> None: ...


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


class TokenBucket:
    """``qps`` tokens a second, at most ``burst`` saved; ``delay()`` is how long until one is free."""

    def __init__(self, qps: float, burst: int, clock: Callable[[], float]) -> None:
        self.qps, self.burst, self._clock = qps, burst, clock
        self._tokens = float(burst)
        self._at = clock()

    def delay(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.qps)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.qps


_KINDS = (BGP_SESSION_STATE, SERVICE_BGP_STATUS)


class StatusPublisher:
    def __init__(self, client: ObjectClient, namespace: str, node: str, *, owner: Owner | None = None,
                 qps: float = 20.0, burst: int = 40, event_queue: int = 10_000,
                 events: EventRecorder | None = None) -> None:
        self.client, self.namespace, self.node, self.owner = client, namespace, node, owner
        self.events = events or EventRecorder(client, COMPONENT, node, max_queue=event_queue)
        self._bucket = TokenBucket(qps, burst, time.monotonic)
        # wanted and seen state, per kind, by object name
        self._want: dict[Kind, dict[str, Desired]] = {k: {} for k in _KINDS}
        self._seen: dict[Kind, dict[str, Observed]] = {k: {} for k in _KINDS}
        self._dirty: dict[Kind, dict[str, None]] = {k: {} for k in _KINDS}  # ordered set
        self._listed: set[Kind] = set()
        self._service_names: dict[str, str] = {}  # service key -> ServiceBGPStatus name
        self._announcing: dict[str, bool] = {}
        self.writes = collections.Counter()  # (kind, action) -> count, what went to the API server
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._failures = 0

    # --- what is true now (called from the speaker, synchronous) -----------------------------

    def set_service(self, key: str, peers: Iterable[str], uid: str = "", why_not: str = "") -> None:
        """Service `key` goes from this node to `peers` (empty: not announced here, because `why_not`)."""
        want = desired_service_status(self.node, key, peers)
        kind = SERVICE_BGP_STATUS
        old_name = self._service_names.get(key)
        if want is None:
            if old_name is not None:
                del self._service_names[key]
                self._want[kind].pop(old_name, None)
                self._mark(kind, old_name)
        else:
            self._service_names[key] = want.name
            if self._want[kind].get(want.name) != want:
                self._want[kind][want.name] = want
                self._mark(kind, want.name)
        self._announce_change(key, want is not None, uid, why_not)

    def forget_service(self, key: str, why: str = "serviceDeleted") -> None:
        """The Service is gone: its status object goes; no Event (there is no object to attach it to)."""
        self._announcing.pop(key, None)
        name = self._service_names.pop(key, None)
        if name is not None:
            self._want[SERVICE_BGP_STATUS].pop(name, None)
            self._mark(SERVICE_BGP_STATUS, name)

    def set_sessions(self, sessions: Iterable[SessionInfo]) -> None:
        """Every session of this node, as it is now (the whole set: missing ones are deleted)."""
        kind = BGP_SESSION_STATE
        new = desired_session_states(self.node, sessions)
        old = self._want[kind]
        for name in old.keys() - new.keys():
            self._mark(kind, name)
        for name, d in new.items():
            if old.get(name) != d:
                self._mark(kind, name)
        self._want[kind] = new

    @property
    def events_dropped(self) -> int:
        return self.events.dropped

    def record(self, spec: EventSpec) -> None:
        if self.events.record(spec.obj.reference(), spec.type, spec.reason, spec.message):
            self._poke()

    def _announce_change(self, key: str, on: bool, uid: str, why_not: str) -> None:
        started, stopped = transitions({key: self._announcing.get(key, False)}, {key: on})
        self._announcing[key] = on
        for k in started:
            self.record(announced(k, self.node, uid))
        for k in stopped:
            self.record(withdrawn(k, self.node, why_not or "no peer to announce to", uid))

    def _mark(self, kind: Kind, name: str) -> None:
        self._dirty[kind][name] = None
        self._poke()

    def _poke(self) -> None:
        self._idle.clear()
        self._wake.set()

    # --- the task ---------------------------------------------------------------------------

    def pending(self) -> int:
        return sum(map(len, self._dirty.values())) + self.events.queued() + len(set(_KINDS) - self._listed)

    async def flushed(self) -> None:
        """Until everything wanted so far is written (or given up, for Events)."""
        while self.pending():
            self._idle.clear()
            await self._idle.wait()

    async def finish(self, timeout: float) -> bool:
        """Stopping: wait up to ``timeout`` seconds for what is queued (Events, status writes)
        to be written while :meth:`run` goes on; True when nothing is left."""
        try:
            await asyncio.wait_for(self.flushed(), timeout)
        except asyncio.TimeoutError:
            return not self.pending()
        return True

    async def run(self) -> None:
        backoff = 0.5
        while True:
            progressed = False
            failed = False
            for kind in _KINDS:
                if kind not in self._listed:
                    ok = await self._list(kind)
                    progressed |= ok
                    failed |= not ok
            for kind in _KINDS:
                if kind not in self._listed:
                    continue
                dirty = self._dirty[kind]
                while dirty:
                    name = next(iter(dirty))
                    await self._throttle()
                    # unmarked before the write: a change while it is on its way marks it again
                    dirty.pop(name, None)
                    if await self._write(kind, name):
                        progressed = True
                    else:
                        dirty[name] = None
                        failed = True
                        break
            while self.events.queued():
                await self._throttle()
                await self.events.write_next()
                progressed = True
            if not self.pending():
                self._idle.set()
                backoff = 0.5
                self._wake.clear()
                await self._wake.wait()
            elif failed:
                # something could not be written: retry after a pause that grows, woken early by news
                self._idle.set()  # let flushed() callers re-check; pending() stays non-zero
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), backoff)
                except asyncio.TimeoutError:
                    pass
                backoff = min(backoff * 2, 30.0)
            elif not progressed:
                await asyncio.sleep(0)

    async def _throttle(self) -> None:
        delay = self._bucket.delay()
        while delay > 0:
            await asyncio.sleep(delay)
            delay = self._bucket.delay()

    async def _list(self, kind: Kind) -> bool:
        try:
            items = await self.client.list(kind, self.namespace, node_selector(kind, self.node))
        except Exception as exc:  # noqa: BLE001 - any failure: retry later, the rest goes on
            log.warning("cannot list %s in %s (retrying): %s", kind.plural, self.namespace, exc)
            return False
        self.writes[(kind.plural, "list")] += 1
        seen = self._seen[kind]
        for obj in items:
            o = Observed.of(obj)
            seen[o.name] = o
            self._dirty[kind][o.name] = None  # check each against what is wanted
        for name in self._want[kind]:
            self._dirty[kind][name] = None
        self._listed.add(kind)
        return True

    async def _write(self, kind: Kind, name: str) -> bool:
        want = self._want[kind].get(name)
        op = write_for(kind, name, self._seen[kind].get(name), want, self.owner)
        if op is None:
            return True
        try:
            if op.action == "delete":
                try:
                    await self.client.delete(kind, self.namespace, name)
                    self.writes[(kind.plural, "delete")] += 1
                except Exception as exc:
                    if status_of(exc) != 404:
                        raise
                self._seen[kind].pop(name, None)
            elif op.action == "create":
                await self._create(kind, op.desired)
            else:
                await self._patch(kind, op.desired)
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot %s %s %s/%s (retrying): %s", op.action, kind.kind, self.namespace, name, exc)
            return False
        return True

    async def _create(self, kind: Kind, d: Desired) -> None:
        try:
            await self.client.create(kind, self.namespace, d.body(self.namespace, self.owner))
            self.writes[(kind.plural, "create")] += 1
        except Exception as exc:
            if status_of(exc) != 409:
                raise
            await self._patch(kind, d)  # someone else's version of it: labels and owner too
            return
        # the API server ignores status on create when /status is a subresource
        await self._patch(kind, d, labels=False)

    async def _patch(self, kind: Kind, d: Desired, labels: bool = True) -> None:
        have = self._seen[kind].get(d.name)
        try:
            if labels and (have is None or have.metadata_differs(d, self.owner)):
                meta: dict = {"labels": dict(d.labels)}
                if self.owner is not None:
                    meta["ownerReferences"] = [self.owner.reference()]
                await self.client.patch(kind, self.namespace, d.name, {"metadata": meta})
                self.writes[(kind.plural, "patch")] += 1
            await self.client.patch(kind, self.namespace, d.name, {"status": d.status_dict()}, "status")
            self.writes[(kind.plural, "patch-status")] += 1
        except Exception as exc:
            if status_of(exc) != 404:
                raise
            self._seen[kind].pop(d.name, None)
            await self._create(kind, d)
            return
        self._seen[kind][d.name] = Observed.written(d, self.owner)


__all__ = ["StatusPublisher", "ObjectClient", "TokenBucket", "status_of", "ACCESS"]
