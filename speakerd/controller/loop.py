"""The controller: Services, IPAddressPools and Namespaces in (list+watch), assignments out.

Every replica keeps the three collections; only the Lease holder decides and writes.  On
becoming leader it lists the Services afresh and converges each -- those with addresses in
their status first, so the status is the state and nothing is renumbered -- then follows
watch events.  Per Service it writes, only when they differ from the object:
``status.loadBalancer.ingress`` (``/status``, with the resourceVersion it decided on, so a
changed object is re-read, not overwritten), the ``metallb.io/ip-allocated-from-pool``
annotation, and one Event per allocation and per failure.  IPAddressPool status
(assigned/available IPv4/IPv6) follows the allocations.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable


from ..kube.client import TRANSIENT, ApiError, KubeClient
from ..kube.kinds import IPADDRESSPOOLS, SERVICES, Kind
from ..kube.leader import ElectionConfig, LeaderElector
from ..kube.reflector import Reflector
from ..kube.writers import EventRecorder
from ..rbac import Access
from .allocator import Allocator, Decision, Event
from .objects import ALLOCATED_FROM, namespace_labels, pools_from_objects, service_from_object

log = logging.getLogger("speakerd.controller")

COMPONENT = "speakerd-controller"

# the API access the controller's calls use (see speakerd.rbac; deploy/controller.yaml grants exactly this)
ACCESS = (
    Access("", "services", ("list", "watch", "patch"), "cluster"),  # reflect; the allocated-from-pool annotation
    Access("", "services/status", ("patch",), "cluster"),  # status.loadBalancer.ingress
    Access("", "events", ("create", "patch"), "cluster"),  # on the Services, in their namespaces (patch: count)
    Access("", "namespaces", ("list", "watch"), "cluster"),  # serviceAllocation.namespaceSelectors
    Access("metallb.io", "ipaddresspools", ("list", "watch")),
    Access("metallb.io", "ipaddresspools/status", ("patch",)),
    Access("coordination.k8s.io", "leases", ("get", "create", "update")),  # leader election
)


NAMESPACES = Kind("", "v1", "namespaces", "Namespace", namespaced=False)


def obj_key(obj: dict) -> str:
    md = obj.get("metadata") or {}
    return f"{md.get('namespace')}/{md.get('name')}" if md.get("namespace") else md.get("name", "")


class NotLeader(Exception):
    """The Lease was lost between deciding and writing: the write is not made."""


def _ingress(obj: dict) -> list[str]:
    lb = (obj.get("status") or {}).get("loadBalancer") or {}
    return [e.get("ip") for e in lb.get("ingress") or () if isinstance(e, dict) and e.get("ip")]


def _rebuild_order(obj: dict) -> tuple:
    """Services that carry addresses first (they keep them), then oldest first, then by key."""
    md = obj.get("metadata") or {}
    return (not _ingress(obj), md.get("creationTimestamp") or "", obj_key(obj))


class Controller:
    def __init__(self, client: KubeClient, *, namespace: str, identity: str | None = None,
                 lease_name: str = "speakerd-controller", lb_class: str | None = None,
                 election: ElectionConfig = ElectionConfig(), workers: int = 16) -> None:
        self.client, self.namespace, self.lb_class = client, namespace, lb_class
        self.elector = LeaderElector(client, namespace, lease_name, identity=identity, config=election,
                                     on_started_leading=self._started, on_stopped_leading=self._stopped)
        self.identity = self.elector.identity
        self.leading = asyncio.Event()  # set while this replica leads
        self.lost = asyncio.Event()  # set when leading ends
        self.services = Reflector(client, SERVICES, on_event=self._on_service)
        self.pools = Reflector(client, IPADDRESSPOOLS, namespace=namespace, on_event=self._on_config)
        self.namespaces = Reflector(client, NAMESPACES, on_event=self._on_config)
        self.allocator: Allocator | None = None
        self._config_seen: tuple = ()
        self._stale: dict[str, set[str]] = {}  # per Service: resourceVersions older than our last write
        self.workers = workers
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._inflight: set[str] = set()
        self._again: set[str] = set()
        self._failed: set[str] = set()
        self._pool_status: dict[str, dict] = {}
        self._pools_dirty = asyncio.Event()
        self._idle = asyncio.Event()  # set when nothing is queued or being written
        self.written: Counter[str] = Counter()  # API writes made: annotation, status, event, pool-status
        self.on_written: Callable[[str, tuple[str, ...]], None] | None = None  # hook: key, ingress written
        self.release_on_exit = True
        self.recorder: EventRecorder | None = None  # the leader's (Events are written by it, queued)

    # ---- leadership (callbacks of the elector; the work itself runs in run())

    @property
    def is_leader(self) -> bool:
        return self.elector.leading

    def _started(self) -> None:
        self.lost.clear()
        self.leading.set()

    def _stopped(self) -> None:
        self.leading.clear()
        self.lost.set()

    def _service(self, key: str) -> dict | None:
        ns, _, name = key.partition("/")
        return self.services.get(ns, name)

    def _service_keys(self) -> list[str]:
        """Every Service, those with addresses first (they keep them), then oldest, then by key."""
        objs = sorted(self.services.cache.values(), key=_rebuild_order)
        return [obj_key(o) for o in objs]

    # ---- events from the reflectors (every replica)

    def _on_service(self, etype: str, obj: dict) -> None:
        if not self.is_leader or self.allocator is None:
            return
        key = obj_key(obj)
        if etype == "DELETED":
            self._stale.pop(key, None)
            if self.allocator.delete(key):
                self._retry_failed()
            self._failed.discard(key)
            return
        if (obj.get("metadata") or {}).get("resourceVersion") in self._stale.get(key, ()):
            return  # a version before our own write: the one with it is on its way
        self._stale.pop(key, None)
        self._enqueue(key)

    def _on_config(self, etype: str, obj: dict) -> None:
        if self.is_leader and self.allocator is not None and self._config_key() != self._config_seen:
            self._apply_config()
            for key in self._service_keys():
                self._enqueue(key)

    def _config_key(self) -> tuple:
        """What allocating depends on: pool specs and Namespace labels (not the pool status we write)."""
        return (tuple(sorted((k, repr(o.get("spec"))) for k, o in self.pools.cache.items())),
                tuple(sorted((k, repr((o.get("metadata") or {}).get("labels"))) for k, o in self.namespaces.cache.items())))

    def _apply_config(self) -> None:
        self._config_seen = self._config_key()
        pools, problems = pools_from_objects(list(self.pools.cache.values()))
        for p in problems:
            log.error("%s", p)
        namespaces = dict(namespace_labels(o) for o in self.namespaces.cache.values())
        if self.allocator is None:
            self.allocator = Allocator(pools, namespaces, lb_class=self.lb_class)
        else:
            self.allocator.set_pools(pools, namespaces)
        self._pools_dirty.set()

    def _enqueue(self, key: str) -> None:
        self._idle.clear()
        if key in self._inflight:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def _retry_failed(self) -> None:
        failed, self._failed = self._failed, set()
        for key in sorted(failed):
            self._enqueue(key)

    # ---- leading

    async def run(self) -> None:
        """Reflect always; lead when elected; stop leading when the Lease is lost."""
        for r in (self.services, self.pools, self.namespaces):
            r.start()
        self.elector.start()
        term: list[asyncio.Task] = []
        try:
            while True:
                await self.leading.wait()
                term = [asyncio.create_task(self._lead(), name="lead"), asyncio.create_task(self.lost.wait())]
                await asyncio.wait(term, return_when=asyncio.FIRST_COMPLETED)
                for t in term:
                    t.cancel()
                await asyncio.gather(*term, return_exceptions=True)
                self._stop_leading()
        finally:
            for t in term:  # the leader's workers too: no write after run() ends
                t.cancel()
            await asyncio.gather(*term, return_exceptions=True)
            # then the Lease: given up (the other replica leads at once) unless the exit is to look
            # like a crash (release_on_exit False: tests of a killed leader)
            await self.elector.stop(release=self.release_on_exit)
            for r in (self.services, self.pools, self.namespaces):
                await r.stop()

    @property
    def writes(self) -> int:
        return sum(self.written.values())

    def _stop_leading(self) -> None:
        self.allocator = None
        self.recorder = None
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queued.clear()
        self._again.clear()
        self._failed.clear()
        self._pool_status.clear()
        self._stale.clear()

    async def _lead(self) -> None:
        # a fresh list of each (what the previous leader wrote last, not what a watch brought so far)
        for r in (self.pools, self.namespaces, self.services):
            await r.stop()
            r.synced.clear()
            r.start()
            await r.synced.wait()
        self.allocator = None
        self._apply_config()
        log.info("%s leads: %d Services, %d IPAddressPools", self.identity, len(self.services.cache),
                 len(self.allocator.pools) if self.allocator else 0)
        for key in self._service_keys():
            self._enqueue(key)
        self.recorder = EventRecorder(self.client, COMPONENT, self.identity)  # one per term: nothing queued carries over
        workers = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        workers.append(asyncio.create_task(self._pool_status_writer()))
        workers.append(self.recorder.start())
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._inflight.add(key)
            try:
                await self._converge(key)
            except NotLeader:
                return
            except ApiError as exc:
                if exc.status == 409:  # changed since read: the watch brings the new version
                    self._again.add(key)
                elif exc.status != 404:  # (404: deleted meanwhile)
                    log.warning("service %s: %s", key, exc)
                    self._again.add(key)
                    await asyncio.sleep(1.0)  # the API server refuses: do not spin
            except TRANSIENT as exc:
                log.warning("service %s: %s; retrying", key, exc)
                self._again.add(key)
                await asyncio.sleep(1.0)  # API server unreachable: retry, not spin
            except Exception:  # a Service this code cannot handle must not stop the others
                log.exception("service %s: cannot converge", key)
            finally:
                self._inflight.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self._enqueue(key)
                if not self._queued and not self._inflight:
                    self._idle.set()

    async def _converge(self, key: str) -> None:
        obj = self._service(key)
        alloc = self.allocator
        if obj is None or alloc is None or obj["metadata"].get("resourceVersion") in self._stale.get(key, ()):
            return
        decision = alloc.converge(service_from_object(obj))
        if decision.freed:
            self._retry_failed()
        if not decision.ok:
            self._failed.add(key)
        self._pools_dirty.set()
        if decision.manage:
            await self._write(obj, decision)
        for ev in decision.events:
            self._event(obj, ev)

    async def _write(self, obj: dict, d: Decision) -> None:
        """Annotation, then status, each only when it differs; the versions our writes supersede are
        remembered so that their watch events (and a cache still holding them) do not trigger a
        second decision on stale data."""
        md = obj["metadata"]
        ns, name = md.get("namespace"), md["name"]
        key = obj_key(obj)
        ann = md.get("annotations") or {}
        write_ann = ann.get(ALLOCATED_FROM) != d.pool and (d.pool is not None or ALLOCATED_FROM in ann)
        write_status = _ingress(obj) != list(d.ips)
        if not (write_ann or write_status):
            return
        superseded = self._stale[key] = {md["resourceVersion"]}
        rv = md["resourceVersion"]
        if write_ann:
            self._check_leader()
            updated = await self.client.patch(SERVICES, ns, name, {"metadata": {
                "resourceVersion": rv, "annotations": {ALLOCATED_FROM: d.pool}}})
            self.written["annotation"] += 1
            rv = (updated.get("metadata") or {}).get("resourceVersion", rv)
        if write_status:
            if write_ann:
                superseded.add(rv)
            self._check_leader()
            status = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in d.ips]} if d.ips else {}}
            await self.client.patch(SERVICES, ns, name, {"metadata": {"resourceVersion": rv}, "status": status},
                                    subresource="status")
            self.written["status"] += 1
            if self.on_written is not None:
                self.on_written(key, d.ips)

    def _check_leader(self) -> None:
        if not self.is_leader:
            raise NotLeader()

    def _event(self, obj: dict, ev: Event) -> None:
        """Recorded as client-go's recorder does (speakerd.kube.writers): a repeat of the same Event
        (an AllocationFailed on every retry) raises its count instead of making another."""
        self._check_leader()
        if self.recorder is not None:
            self.recorder.event({"kind": "Service", "apiVersion": "v1", **obj}, ev.type, ev.reason, ev.message)

    async def _pool_status_writer(self) -> None:
        """IPAddressPool status after each burst of changes (one write per pool whose counters moved)."""
        while True:
            await self._pools_dirty.wait()
            await self._idle.wait()  # after the burst, not per Service
            self._pools_dirty.clear()
            alloc = self.allocator
            if alloc is None:
                continue
            for name in sorted(alloc.pools):
                status = alloc.counters(name).status()
                obj = self.pools.get(self.namespace, name)
                if obj is None or self._pool_status.get(name) == status or obj.get("status") == status:
                    self._pool_status[name] = status
                    continue
                if not self.is_leader:
                    return
                try:
                    await self.client.patch(IPADDRESSPOOLS, self.namespace, name, {"status": status}, subresource="status")
                    self.written["pool-status"] += 1
                    self._pool_status[name] = status
                except ApiError as exc:
                    log.warning("IPAddressPool %s status: %s", name, exc)
