"""The API emulator for controller tests: a cluster with pools, a controller, and watch-driven waits."""
from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile

import aiohttp
import orjson

from speakerd.controller.loop import NAMESPACES, Controller
from speakerd.kube.client import KubeClient
from speakerd.kube.config import load_client
from speakerd.kube.kinds import IPADDRESSPOOLS, SERVICES, Kind
from speakerd.kube.leader import ElectionConfig
from speakerd.kube.reflector import Reflector
from tests.kubeemu import Emulator

from .objs import namespace

NS = "metallb-system"
FAST = ElectionConfig(lease_duration=1.0, renew_deadline=0.6, retry_period=0.1)  # client-go's 15/10/2 s, scaled down
TIMEOUT = 30.0


def kubeconfig(url: str, path: str) -> str:
    with open(path, "wb") as fh:
        fh.write(orjson.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "emu",
            "clusters": [{"name": "emu", "cluster": {"server": url}}],
            "users": [{"name": "u", "user": {"token": "test-token"}}],
            "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "u", "namespace": "default"}}]}))
    return path


async def client_for(url: str, cls: type[KubeClient] = KubeClient) -> KubeClient:
    with tempfile.TemporaryDirectory() as d:
        client = await load_client(kubeconfig(url, os.path.join(d, "kubeconfig")))
    return client if cls is KubeClient else cls(client.api)


async def stats(emu) -> dict:
    async with aiohttp.ClientSession() as s, s.get(emu.url + "/_emulator/stats") as r:
        return await r.json()


def key_of(obj: dict) -> str:
    md = obj["metadata"]
    return f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"]


class Watcher:
    """A test-side view of one collection (``cache``: "ns/name" -> object), woken by watch events."""

    def __init__(self, client: KubeClient, kind: Kind, namespace: str | None = None) -> None:
        self.cond = asyncio.Condition()
        self.cache: dict[str, dict] = {}
        self.r = Reflector(client, kind, namespace=namespace, on_event=self._on, transform=None)
        self.r.start()

    def _on(self, etype, obj):
        if etype == "DELETED":
            self.cache.pop(key_of(obj), None)
        else:
            self.cache[key_of(obj)] = obj
        asyncio.ensure_future(self._notify())

    async def _notify(self):
        async with self.cond:
            self.cond.notify_all()

    async def until(self, pred, what: str):
        async def wait():
            async with self.cond:
                await self.cond.wait_for(lambda: pred(self.cache))
        try:
            await asyncio.wait_for(wait(), TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def close(self):
        await self.r.stop()


def ingress(obj) -> tuple[str, ...]:
    return tuple(e["ip"] for e in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ())


def strip(obj: dict) -> dict:
    """An object as a client sends it (no uid/resourceVersion/status)."""
    md = {k: v for k, v in obj["metadata"].items() if k not in ("uid", "resourceVersion", "creationTimestamp")}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": md}


def events_for(cache, name: str):
    return sorted((e["type"], e["reason"], e["message"]) for e in cache.values() if e["involvedObject"]["name"] == name)


@contextlib.asynccontextmanager
async def cluster(*pools_, namespaces=()):
    """An emulator with the controller's namespace, Namespaces and IPAddressPools; yields
    (emulator, client, Services watcher, Events watcher)."""
    from speakerd.kube.kinds import CORE_EVENTS
    async with Emulator() as emu:
        kube = await client_for(emu.url)
        await kube.create(NAMESPACES, None, namespace(NS))
        for n in namespaces:
            await kube.create(NAMESPACES, None, n)
        for p in pools_:
            await kube.create(IPADDRESSPOOLS, NS, strip(p))
        services = Watcher(kube, SERVICES)
        events = Watcher(kube, CORE_EVENTS)
        try:
            yield emu, kube, services, events
        finally:
            await services.close()
            await events.close()
            await kube.close()


async def create(kube: KubeClient, obj: dict, status=()):
    md = obj["metadata"]
    created = await kube.create(SERVICES, md["namespace"], strip(obj))
    if status:
        await kube.patch(SERVICES, md["namespace"], md["name"],
                         {"status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in status]}}}, subresource="status")
    return created


@contextlib.asynccontextmanager
async def controller(url: str, **kw):
    """A running Controller; on exit it stops (giving the Lease up unless release_on_exit was cleared)."""
    client = await client_for(url)
    # client-go's timings unless a test needs a quick failover (FAST): a loaded machine must not
    # make a busy leader lose its Lease
    c = Controller(client, namespace=NS, election=kw.pop("election", ElectionConfig()), **kw)
    task = asyncio.create_task(c.run())
    try:
        yield c, task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
