"""Throughput of the API emulator (tests/kubeemu): writes/s in-process and over HTTP, and how fast
watchers receive them. The cluster harness and the controller benchmarks lean on it, so it must
not be the bottleneck.

    python bench/kube_emulator.py [--objects 10000] [--writes 20000] [--http-writes 3000] [--watchers 4]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.kube_clients import service  # noqa: E402  (the same kubectl-shaped Services)
from tests.kubeemu import Emulator  # noqa: E402


async def read_watch(session, url, rv, n, done: asyncio.Future):
    got = 0
    async with session.get(f"{url}/api/v1/services?watch=1&resourceVersion={rv}",
                           timeout=aiohttp.ClientTimeout(total=None)) as r:
        async for line in r.content:
            orjson.loads(line)
            got += 1
            if got >= n:
                break
    return got


async def main(args) -> None:
    import random
    rng = random.Random(3)
    async with Emulator() as emu:
        info = emu.resource("v1", "services")
        t0, c0 = time.perf_counter(), cpu()
        for i in range(args.objects):
            obj = service(i, rng)
            obj["metadata"].pop("resourceVersion")
            emu.store.create(info, obj["metadata"]["namespace"], obj)
        t_create, c_create = time.perf_counter() - t0, cpu() - c0
        keys = list(emu.store.objects[info.storage])
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; rates per wall second "
              f"and per CPU second of this process")
        print(f"{args.objects} kubectl-shaped Services created in-process: {args.objects / t_create:,.0f} creates/s, "
              f"{args.objects / c_create:,.0f} per CPU s")

        async with aiohttp.ClientSession() as s:
            rv = emu.store.rv
            watchers = [asyncio.ensure_future(read_watch(s, emu.url, rv, args.writes, None)) for _ in range(args.watchers)]
            while sum(len(w) for w in emu.store.watchers.values()) < args.watchers:
                await asyncio.sleep(0.01)
            t0, c0 = time.perf_counter(), cpu()
            for i in range(args.writes):
                ns, name = keys[i % len(keys)]
                emu.store.patch(info, ns, name, {"metadata": {"labels": {"rev": str(i)}}}, "application/merge-patch+json")
                if i % 500 == 499:
                    await asyncio.sleep(0)
            t_write, c_write = time.perf_counter() - t0, cpu() - c0
            await asyncio.gather(*watchers)
            t_all, c_all = time.perf_counter() - t0, cpu() - c0
            print(f"{args.writes} in-process patches with {args.watchers} watchers: {args.writes / t_write:,.0f} writes/s "
                  f"({args.writes / c_write:,.0f} per CPU s); all delivered over HTTP to every watcher in {t_all:.2f} s, "
                  f"{c_all:.2f} CPU s incl. the watch clients ({args.writes * args.watchers / t_all:,.0f} events/s)")

            t0 = time.perf_counter()
            lst = await (await s.get(f"{emu.url}/api/v1/services")).read()
            t_list = time.perf_counter() - t0
            print(f"list of {args.objects} over HTTP: {t_list:.2f} s, {len(lst) / 1e6:.0f} MB "
                  f"(orjson.loads of it: {timeit(lambda: orjson.loads(lst)):.2f} s)")

            sem = asyncio.Semaphore(8)

            async def one(i):
                ns, name = keys[i % len(keys)]
                async with sem:
                    async with s.patch(f"{emu.url}/api/v1/namespaces/{ns}/services/{name}",
                                       data=orjson.dumps({"metadata": {"labels": {"h": str(i)}}}),
                                       headers={"Content-Type": "application/merge-patch+json"}) as r:
                        await r.read()
                        assert r.status == 200

            t0, c0 = time.perf_counter(), cpu()
            await asyncio.gather(*(one(i) for i in range(args.http_writes)))
            t_http, c_http = time.perf_counter() - t0, cpu() - c0
            print(f"{args.http_writes} PATCH requests over HTTP (8 in flight, client in the same process): "
                  f"{args.http_writes / t_http:,.0f} requests/s ({args.http_writes / c_http:,.0f} per CPU s, client included)")


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timeit(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--writes", type=int, default=20_000)
    p.add_argument("--http-writes", type=int, default=3000)
    p.add_argument("--watchers", type=int, default=4)
    asyncio.run(main(p.parse_args()))
