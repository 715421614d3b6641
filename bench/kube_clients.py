"""Which async Kubernetes client for speakerd: memory and CPU of an initial list of N Services and of
a watch at R changes/s, against the emulator (tests/kubeemu) in its own process over real HTTP.

    python bench/kube_clients.py [--services 100000] [--rate 500] [--changes 5000] [--only NAME...]

Each client runs in its own process (so RSS is its own): it lists all Services and keeps what the
list returned (as a cache would), then watches from the list's resourceVersion while the emulator
changes Services at R/s until all changes arrived. Services are shaped as ``kubectl get svc -o json``
returns them (last-applied-configuration annotation, labels, managedFields, uid, clusterIPs, ports
with nodePorts, selector, status.loadBalancer.ingress). ``bare`` is the floor: the same bytes fetched
with aiohttp and decoded with orjson, nothing else.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ["bare", "kubernetes_asyncio", "kubernetes_asyncio_raw", "lightkube", "kr8s", "kr8s_raw", "speakerd.kube"]
NAMESPACES = ("default", "payments", "checkout", "search", "media", "edge", "data", "auth", "ops", "web")
APPS = ("api", "frontend", "cache", "gateway", "ingest", "worker", "metrics", "proxy", "db", "queue")


def service(i: int, rng: random.Random) -> dict:
    ns, app = NAMESPACES[i % len(NAMESPACES)], APPS[rng.randrange(len(APPS))]
    name = f"{app}-{i}"
    port = rng.choice((80, 443, 8080, 8443, 9090))
    ip = f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
    cluster_ip = f"10.{96 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": name,
              "app.kubernetes.io/part-of": ns, "tier": rng.choice(("fe", "be", "data"))}
    applied = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"annotations": {"metallb.io/address-pool": "default"}, "labels": labels,
                            "name": name, "namespace": ns},
               "spec": {"ports": [{"name": "http", "port": port, "protocol": "TCP", "targetPort": port}],
                        "selector": {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": name},
                        "type": "LoadBalancer"}}
    ts = "2026-11-%02dT%02d:%02d:%02dZ" % (1 + i % 28, i % 24, i % 60, (i * 7) % 60)
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied) + "\n",
                            "metallb.io/address-pool": "default",
                            "metallb.io/ip-allocated-from-pool": "default"},
            "creationTimestamp": ts, "labels": labels, "name": name, "namespace": ns,
            "resourceVersion": str(i + 1), "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "managedFields": [
                {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kubectl-client-side-apply",
                 "operation": "Update", "time": ts,
                 "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {},
                                                               "f:metallb.io/address-pool": {}},
                                             "f:labels": {".": {}, **{f"f:{k}": {} for k in labels}}},
                              "f:spec": {"f:allocateLoadBalancerNodePorts": {}, "f:externalTrafficPolicy": {},
                                         "f:internalTrafficPolicy": {}, "f:ports": {".": {}, f'k:{{"port":{port},"protocol":"TCP"}}': {
                                             ".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
                                         "f:selector": {}, "f:sessionAffinity": {}, "f:type": {}}}},
                {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "controller", "operation": "Update",
                 "subresource": "status", "time": ts,
                 "fieldsV1": {"f:status": {"f:loadBalancer": {"f:ingress": {}}}}}],
        },
        "spec": {
            "allocateLoadBalancerNodePorts": True, "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
            "externalTrafficPolicy": rng.choice(("Cluster", "Local")), "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "http", "nodePort": 30000 + (i % 2768), "port": port, "protocol": "TCP",
                       "targetPort": port}],
            "selector": applied["spec"]["selector"], "sessionAffinity": "None", "type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}},
    }


def write_state(path: Path, n: int) -> int:
    rng = random.Random(12)
    with path.open("wb") as f:
        f.write(b'{"resourceVersion":%d,"objects":[' % n)
        for i in range(n):
            if i:
                f.write(b",")
            f.write(json.dumps({"storage": "/services", "object": service(i, rng)}, separators=(",", ":")).encode())
        f.write(b"]}")
    return path.stat().st_size


# -- the child: one client -------------------------------------------------------------------------

def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def child(name: str, url: str, kubeconfig: str, changes: int) -> dict:
    import orjson  # noqa: F401  (imported by every variant's process alike)
    if name == "bare":
        import aiohttp
        import orjson
        session = aiohttp.ClientSession()

        async def do_list():
            async with session.get(url + "/api/v1/services") as r:
                doc = orjson.loads(await r.read())
            return doc, doc["metadata"]["resourceVersion"], len(doc["items"])

        async def do_watch(rv, n):
            got = 0
            async with session.get(url + f"/api/v1/services?watch=true&resourceVersion={rv}",
                                   timeout=aiohttp.ClientTimeout(total=None)) as r:
                async for line in r.content:
                    orjson.loads(line)
                    got += 1
                    if got >= n:
                        return got
    elif name.startswith("kubernetes_asyncio"):
        from kubernetes_asyncio import client, config, watch
        import orjson
        await config.load_kube_config(config_file=kubeconfig)
        api = client.ApiClient()
        v1 = client.CoreV1Api(api)
        raw = name.endswith("_raw")

        async def do_list():
            if raw:
                resp = await v1.list_service_for_all_namespaces(_preload_content=False)
                doc = orjson.loads(await resp.read())
                return doc, doc["metadata"]["resourceVersion"], len(doc["items"])
            lst = await v1.list_service_for_all_namespaces()
            return lst, lst.metadata.resource_version, len(lst.items)

        async def do_watch(rv, n):
            got = 0
            if raw:
                resp = await v1.list_service_for_all_namespaces(watch=True, resource_version=rv,
                                                                _preload_content=False, _request_timeout=0)
                async for line in resp.content:
                    orjson.loads(line)
                    got += 1
                    if got >= n:
                        return got
            w = watch.Watch()
            async for _ev in w.stream(v1.list_service_for_all_namespaces, resource_version=rv):
                got += 1
                if got >= n:
                    return got
    elif name == "lightkube":
        import httpx2
        from lightkube import AsyncClient
        from lightkube.config.kubeconfig import KubeConfig
        from lightkube.resources.core_v1 import Service
        # the default 10 s read timeout is shorter than a 100k list takes to arrive here
        lk = AsyncClient(KubeConfig.from_file(kubeconfig), timeout=httpx2.Timeout(600.0))

        async def do_list():
            it = lk.list(Service, namespace="*")
            items = [s async for s in it]
            return items, it.resourceVersion, len(items)

        async def do_watch(rv, n):
            got = 0
            async for _op, _obj in lk.watch(Service, namespace="*", resource_version=rv):
                got += 1
                if got >= n:
                    return got
    elif name.startswith("kr8s"):
        import kr8s
        import kr8s.asyncio
        api = await kr8s.asyncio.api(kubeconfig=kubeconfig)
        api.timeout = 600
        raw = name.endswith("_raw")

        async def do_list():
            items = [s async for s in api.get("services", namespace=kr8s.ALL, raw=raw)]
            # kr8s gives no list resourceVersion: the newest item's is the best a caller has
            rv = max(int((s if raw else s.raw)["metadata"]["resourceVersion"]) for s in items)
            return items, str(rv), len(items)

        async def do_watch(rv, n):
            got = 0
            async for _ev, _obj in api.watch("services", namespace=kr8s.ALL, since=rv):
                got += 1
                if got >= n:
                    return got
    elif name == "speakerd.kube":
        # what speakerd runs: kubernetes_asyncio raw, paginated list (500), slimmed dict cache
        from speakerd.kube import kinds
        from speakerd.kube.config import load_client
        from speakerd.kube.reflector import Reflector
        kc = await load_client(kubeconfig)
        counter = {"n": 0}
        arrived = asyncio.Event()
        target = {"n": None}

        def on_event(_t, _o):
            counter["n"] += 1
            if target["n"] is not None and counter["n"] >= target["n"]:
                arrived.set()

        refl = Reflector(kc, kinds.SERVICES, on_event=on_event)

        async def do_list():
            refl.start()
            await refl.synced.wait()
            return refl.cache, refl.resource_version, len(refl.cache)

        async def do_watch(rv, n):
            target["n"] = counter["n"] + n
            if counter["n"] >= target["n"]:
                arrived.set()
            await arrived.wait()
            return counter["n"] - (target["n"] - n)
    else:
        raise SystemExit(f"unknown client {name}")

    out: dict = {"client": name}
    base_rss, c0, t0 = rss_kib(), cpu_s(), time.perf_counter()
    keep, rv, count = await do_list()
    out.update(list_s=time.perf_counter() - t0, list_cpu_s=cpu_s() - c0, items=count,
               base_rss_mib=base_rss / 1024, list_rss_mib=(rss_kib() - base_rss) / 1024,
               peak_rss_mib=rss_kib("VmHWM") / 1024)
    print("READY", flush=True)
    c1, t1, r1 = cpu_s(), time.perf_counter(), rss_kib()
    got = await asyncio.wait_for(do_watch(rv, changes), timeout=max(120, changes / 50))
    wall = time.perf_counter() - t1
    out.update(watch_events=got, watch_s=wall, watch_cpu_pct=100 * (cpu_s() - c1) / wall,
               watch_rss_growth_mib=(rss_kib() - r1) / 1024)
    del keep
    return out


# -- the parent --------------------------------------------------------------------------------------

def run_one(name: str, url: str, kubeconfig: str, rate: float, changes: int) -> dict:
    import urllib.request
    proc = subprocess.Popen([sys.executable, __file__, "--child", name, "--url", url, "--kubeconfig", kubeconfig,
                             "--changes", str(changes)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if line.strip() != "READY":
            proc.wait(timeout=60)
            return {"client": name, "error": (line + proc.stderr.read()).strip().splitlines()[-1:]}
        urllib.request.urlopen(urllib.request.Request(
            f"{url}/_emulator/churn?rate={rate}&count={changes}", method="POST"), timeout=30).read()
        out, err = proc.communicate(timeout=max(300, 3 * changes / rate))
        if proc.returncode != 0:
            return {"client": name, "error": err.strip().splitlines()[-1:]}
        return json.loads(out.strip().splitlines()[-1])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--changes", type=int, default=5000)
    p.add_argument("--only", nargs="*", default=CLIENTS)
    p.add_argument("--child"), p.add_argument("--url"), p.add_argument("--kubeconfig")
    args = p.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.url, args.kubeconfig, args.changes))))
        return 0
    with tempfile.TemporaryDirectory(prefix="kube-clients-") as tmp:
        state = Path(tmp) / "state.json"
        size = write_state(state, args.services)
        emu = subprocess.Popen([sys.executable, "-m", "tests.kubeemu", "--listen", "127.0.0.1:0", "--state", str(state),
                                "--bookmark-interval", "0", "--history", str(max(10_000, 2 * args.changes))],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            url = emu.stdout.readline().split()[-1]
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "emu",
                "clusters": [{"name": "emu", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {"token": "bench"}}],
                "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "u"}}]}))
            print(f"{args.services} Services, {size / 1e6:.0f} MB as JSON; watch: {args.changes} changes at "
                  f"{args.rate:.0f}/s; emulator {url}")
            hdr = (f"{'client':24} {'list s':>7} {'list CPU s':>10} {'list RSS MiB':>12} {'peak RSS MiB':>12} "
                   f"{'watch CPU %':>11} {'watch RSS +MiB':>14}")
            print(hdr)
            print("-" * len(hdr))
            for name in args.only:
                r = run_one(name, url, str(kubeconfig), args.rate, args.changes)
                if "error" in r:
                    print(f"{name:24} FAILED: {r['error']}")
                    continue
                print(f"{name:24} {r['list_s']:7.2f} {r['list_cpu_s']:10.2f} {r['list_rss_mib']:12.0f} "
                      f"{r['peak_rss_mib']:12.0f} {r['watch_cpu_pct']:11.1f} {r['watch_rss_growth_mib']:14.1f}"
                      + ("" if r["items"] == args.services and r["watch_events"] == args.changes
                         else f"  (items {r['items']}, events {r['watch_events']})"), flush=True)
        finally:
            emu.terminate()
            emu.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
