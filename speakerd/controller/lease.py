"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

Every ``retry`` seconds a candidate reads the Lease; it takes it when nobody holds it or when
the record has not changed for ``lease`` seconds *as observed locally* (no clock comparison
between nodes), writing with the resourceVersion it read so that of two candidates only one
wins (the other gets 409 Conflict).  The leader renews every ``retry`` seconds and stops
leading when it could not renew for ``renew_deadline`` seconds -- before any other candidate
may take over (``lease`` > ``renew_deadline``).  Defaults 15/10/2 s are client-go's.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from .kubeapi import Api, ApiError

log = logging.getLogger("speakerd.controller.lease")


def micro_time() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, api: Api, namespace: str, name: str, identity: str, *,
                 lease: float = 15.0, renew_deadline: float = 10.0, retry: float = 2.0) -> None:
        if not lease > renew_deadline > retry > 0:
            raise ValueError("need lease > renew deadline > retry > 0")
        self.api, self.namespace, self.name, self.identity = api, namespace, name, identity
        self.lease, self.renew_deadline, self.retry = lease, renew_deadline, retry
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self.leading = asyncio.Event()  # set while leading
        self.lost = asyncio.Event()  # set when leadership ends (cleared on the next win)
        self._observed: dict | None = None
        self._observed_at = 0.0
        self.transitions_seen = 0

    @property
    def is_leader(self) -> bool:
        return self.leading.is_set()

    def _spec(self, current: dict | None, now_text: str) -> dict:
        spec = dict((current or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now_text
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if current else 0)
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=int(self.lease), renewTime=now_text)
        return spec

    async def try_acquire_or_renew(self) -> bool:
        loop = asyncio.get_running_loop()
        now_text = micro_time()
        try:
            current = await self.api.request("GET", self.path)
        except ApiError as exc:
            if exc.status != 404:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec(None, now_text)}
            try:
                await self.api.request("POST", f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases", body)
            except ApiError as exc2:
                if exc2.status == 409:
                    return False
                raise
            self._observed, self._observed_at = body["spec"], loop.time()
            return True
        spec = current.get("spec") or {}
        if spec != self._observed:
            self._observed, self._observed_at = spec, loop.time()
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or self.lease)
        if holder and holder != self.identity and loop.time() < self._observed_at + duration:
            return False  # held by another and not expired
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {**current["metadata"]}, "spec": self._spec(current, now_text)}
        try:
            updated = await self.api.request("PUT", self.path, body)
        except ApiError as exc:
            if exc.status == 409:
                return False  # another candidate wrote first
            raise
        self._observed, self._observed_at = updated.get("spec") or body["spec"], loop.time()
        return True

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except (ApiError, OSError, asyncio.TimeoutError) as exc:
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        except Exception as exc:  # aiohttp client errors
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            return False

    async def run(self) -> None:
        """Campaign forever: acquire, lead while renewing, and campaign again after losing."""
        loop = asyncio.get_running_loop()
        while True:
            while not await self._attempt():
                await asyncio.sleep(self.retry)
            log.info("lease %s/%s: %s is the leader", self.namespace, self.name, self.identity)
            self.lost.clear()
            self.leading.set()
            last_renew = loop.time()
            while True:
                await asyncio.sleep(self.retry)
                if await self._attempt():
                    last_renew = loop.time()
                elif loop.time() - last_renew >= self.renew_deadline:
                    break
            log.warning("lease %s/%s: %s could not renew for %.0f s; no longer the leader",
                        self.namespace, self.name, self.identity, self.renew_deadline)
            self.leading.clear()
            self.lost.set()

    async def release(self) -> None:
        """Give the Lease up on a clean stop so another candidate takes over at once (client-go's
        ReleaseOnCancel): holder emptied, duration 1 s."""
        if not self.is_leader:
            return
        self.leading.clear()
        self.lost.set()
        try:
            current = await self.api.request("GET", self.path)
            if (current.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = {**current["spec"], "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": micro_time()}
            await self.api.request("PUT", self.path, {**current, "spec": spec})
        except Exception as exc:  # best effort on the way out
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, exc)
