"""The cluster's API load on the emulator alone: N nodes' watches and status writes at R changes/s.

What bench/cluster.py's churn asks of the API emulator (tests/kubeemu), without namespaces, FRR or
speakerd, so that the emulator's own capacity is measured. The emulator runs as its own process; a
second process plays:

- N nodes, each watching Services and EndpointSlices (``labelSelector=kubernetes.io/service-name``,
  as speakerd does) and parsing every line, and writing what a speaker writes when a Cluster-policy
  Service appears or goes (a ServiceBGPStatus create + ``/status`` patch and a ``nodeAssigned``
  Event; a delete when it goes), each node with its own keep-alive connections;
- a controller patching each new Service's ``/status`` with an address;
- the churn of tests/cluster/scenarios.churn: 30 % creates (Service + EndpointSlice), 20 % deletes,
  50 % endpoint moves (EndpointSlice merge patches), at R changes/s for S seconds.

Printed: changes offered and answered per second, how long after the last change every node's watch
had seen it, the emulator's CPU (% of a core, from /proc), requests per change, and the load process's
own CPU (if that is near 100 % the figure is the load generator's limit, not the emulator's).

    python bench/cluster_api.py [--nodes 20] [--rate 50] [--seconds 20] [--base 100]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster import objects  # noqa: E402  (the kubectl-shaped Services and EndpointSlices)
from tests.cluster.harness import cpu_seconds  # noqa: E402
from bench.lab_extra import free_port  # noqa: E402

SVC = "/api/v1/namespaces/default/services"
EPS = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
STATUS = "/apis/metallb.io/v1beta1/namespaces/metallb-system/servicebgpstatuses"
EVENTS = "/api/v1/namespaces/default/events"


def body(obj: dict) -> dict:
    md = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "uid", "creationTimestamp",
                                                                 "generation")}
    return {k: v for k, v in {**obj, "metadata": md}.items() if k != "status"}


class Node:
    """One simulated speaker: two watches, and the writes a speaker makes for each Service it announces."""

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url
        self.session = aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=None))
        self.last_rv: dict[str, int] = {}  # kind -> highest resourceVersion its watch delivered
        self.lines = 0
        self.requests = 0
        self.tasks: list[asyncio.Task] = []
        self.writes: asyncio.Queue = asyncio.Queue()

    async def watch(self, path: str, rv: int, params: dict) -> None:
        q = {"watch": "1", "resourceVersion": str(rv), "allowWatchBookmarks": "true", **params}
        async with self.session.get(path.replace("/namespaces/default", ""), params=q) as r:
            async for line in r.content:
                ev = orjson.loads(line)
                self.lines += 1
                if ev["type"] == "BOOKMARK":
                    continue
                obj = ev["object"]
                kind = obj.get("kind", "")
                self.last_rv[kind] = max(self.last_rv.get(kind, 0), int(obj["metadata"]["resourceVersion"]))
                if obj.get("kind") == "Service" and ev["type"] in ("ADDED", "DELETED"):
                    self.writes.put_nowait((ev["type"], obj["metadata"]["name"]))

    async def writer(self) -> None:
        while True:
            etype, svc = await self.writes.get()
            name = f"{svc}-{self.name}"
            if etype == "ADDED":
                st = {"apiVersion": "metallb.io/v1beta1", "kind": "ServiceBGPStatus",
                      "metadata": {"name": name, "namespace": "metallb-system",
                                   "labels": {"metallb.io/node": self.name, "metallb.io/service-name": svc,
                                              "metallb.io/service-namespace": "default"}}}
                await self.request("POST", STATUS, st)
                await self.request("PATCH", f"{STATUS}/{name}/status",
                                   {"status": {"node": self.name, "serviceName": svc, "serviceNamespace": "default",
                                               "peers": ["tor1", "tor2"]}}, "application/merge-patch+json")
                ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{svc}.{self.name}", "namespace": "default"},
                      "involvedObject": {"kind": "Service", "namespace": "default", "name": svc},
                      "reason": "nodeAssigned", "message": f'announcing from node "{self.name}" with protocol "bgp"',
                      "type": "Normal", "count": 1, "source": {"component": "speakerd", "host": self.name}}
                await self.request("POST", EVENTS, ev)
            else:
                await self.request("DELETE", f"{STATUS}/{name}")

    async def request(self, method: str, path: str, data=None, ctype: str = "application/json") -> None:
        self.requests += 1
        async with self.session.request(method, path, data=None if data is None else orjson.dumps(data),
                                        headers={"Content-Type": ctype}) as r:
            await r.read()
            if r.status >= 500:
                raise RuntimeError(f"{method} {path}: {r.status}")

    def start(self, rv: int) -> None:
        self.tasks = [asyncio.ensure_future(self.watch(SVC, rv, {})),
                      asyncio.ensure_future(self.watch(EPS, rv, {"labelSelector": "kubernetes.io/service-name"})),
                      asyncio.ensure_future(self.writer())]

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.session.close()


async def run(args, url: str, emu_pid: int) -> dict:
    rng = random.Random(7)
    api = aiohttp.ClientSession(url)
    node_names = [f"n{k}" for k in range(1, args.nodes + 1)]
    svcs: dict[str, tuple[str, tuple[str, ...]]] = {}
    requests = 0
    written: dict[str, int] = {}  # kind -> resourceVersion of the driver's last write of it

    async def call(method: str, path: str, data=None, ctype: str = "application/json") -> dict:
        nonlocal requests
        requests += 1
        async with api.request(method, path, data=None if data is None else orjson.dumps(data),
                               headers={"Content-Type": ctype}) as r:
            out = await r.read()
            if r.status >= 300 and r.status != 404:
                raise RuntimeError(f"{method} {path}: {r.status} {out[:200]!r}")
            doc = orjson.loads(out) if out else {}
            if r.status < 300 and doc.get("kind") in ("Service", "EndpointSlice"):
                rv = int(doc["metadata"]["resourceVersion"])
                written[doc["kind"]] = max(written.get(doc["kind"], 0), rv)
            return doc

    async def create(i: int, policy: str, nodes: tuple[str, ...]) -> None:
        name = f"ch{i}"
        svcs[name] = (policy, nodes)
        await call("POST", SVC, body(objects.service(name, None, policy=policy, index=i)))
        await call("POST", EPS, body(objects.endpoint_slice(name, nodes, index=i)))
        ip = objects.local_ip(i % 250) if policy == "Local" else objects.cluster_ip(i % 250)
        await call("PATCH", f"{SVC}/{name}/status", {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}},
                   "application/merge-patch+json")

    for i in range(args.base):
        await create(i, "Local" if i % 4 == 0 else "Cluster", tuple(rng.sample(node_names, 2)))
    stats = orjson.loads(await (await api.get("/_emulator/stats")).read())
    rv0 = stats["resourceVersion"]
    nodes = [Node(n, url) for n in node_names]
    for nd in nodes:
        nd.start(rv0)
    while True:
        st = orjson.loads(await (await api.get("/_emulator/stats")).read())
        if st["watchers"] >= 2 * len(nodes):
            break
        await asyncio.sleep(0.05)
    cpu_e0, cpu_l0 = cpu_seconds(emu_pid), time.process_time()
    req0 = sum(nd.requests for nd in nodes) + requests
    t0 = time.monotonic()
    next_index, changes, inflight = args.base, 0, set()
    while (now := time.monotonic()) - t0 < args.seconds:
        due = int((now - t0) * args.rate)
        while changes < due:
            kind = rng.random()
            if kind < 0.3 or len(svcs) < args.base // 2:
                coro = create(next_index, rng.choice(("Cluster", "Local")), tuple(rng.sample(node_names, 2)))
                next_index += 1
            elif kind < 0.5:
                name = rng.choice(list(svcs))
                del svcs[name]

                async def delete(name=name) -> None:
                    await call("DELETE", f"{SVC}/{name}")
                    await call("DELETE", f"{EPS}/{name}-ep")
                coro = delete()
            else:
                name = rng.choice(list(svcs))
                policy, _ = svcs[name]
                moved = tuple(rng.sample(node_names, 2))
                svcs[name] = (policy, moved)
                eps = objects.endpoint_slice(name, moved, index=int(name[2:]))["endpoints"]
                coro = call("PATCH", f"{EPS}/{name}-ep", {"endpoints": eps}, "application/merge-patch+json")
            t = asyncio.ensure_future(coro)
            inflight.add(t)
            t.add_done_callback(inflight.discard)
            changes += 1
        await asyncio.sleep(0.005)  # pacing the load generator
    errors = [e for e in await asyncio.gather(*inflight, return_exceptions=True) if isinstance(e, Exception)]
    t_answered = time.monotonic()
    # every node's watches delivered the churn's last Service and EndpointSlice write
    deadline = time.monotonic() + 120

    def behind() -> bool:
        return any(nd.last_rv.get(k, 0) < rv for nd in nodes for k, rv in written.items())
    while behind() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    t_seen = time.monotonic()
    while any(not nd.writes.empty() for nd in nodes) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    cpu_e, cpu_l = cpu_seconds(emu_pid) - cpu_e0, time.process_time() - cpu_l0
    wall = t_answered - t0
    reqs = sum(nd.requests for nd in nodes) + requests - req0
    for nd in nodes:
        await nd.close()
    await api.close()
    return {"nodes": args.nodes, "offered_per_s": args.rate, "changes": changes, "answered_per_s": changes / wall,
            "last_seen_after_s": t_seen - t_answered, "emulator_cpu_pct": 100 * cpu_e / (t_seen - t0),
            "emulator_cpu_ms_per_change": 1000 * cpu_e / changes, "requests_per_change": reqs / changes,
            "watch_lines": sum(nd.lines for nd in nodes), "load_cpu_pct": 100 * cpu_l / (t_seen - t0),
            "errors": len(errors), "load_average": os.getloadavg()[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--base", type=int, default=100)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--profile", type=Path, help="py-spy (on PATH) samples of the emulator, raw format, to this file")
    args = ap.parse_args()
    port = free_port()
    emu = subprocess.Popen([sys.executable, "-m", "tests.kubeemu", "--listen", f"127.0.0.1:{port}"], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        assert emu.stdout is not None
        emu.stdout.readline()  # "kubeemu listening on ..."
        if args.profile:
            spy = subprocess.Popen(["py-spy", "record", "-p", str(emu.pid), "-d", str(int(args.seconds + 10)),
                                    "-r", "100", "-f", "raw", "-o", str(args.profile)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = asyncio.run(run(args, f"http://127.0.0.1:{port}", emu.pid))
    finally:
        emu.terminate()
        emu.wait(10)
    print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items()), flush=True)
    if args.json:
        args.json.write_text(orjson.dumps(out).decode())
    return 0 if not out["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
