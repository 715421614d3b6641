"""Assignment latency of `speakerd controller`: Service created -> status.loadBalancer.ingress written.

Two figures per N: the burst (N Services created at once, 64 creates in flight: what a
`kubectl apply` of many manifests or a restore does), and then steady state (100 more Services,
one at a time, each waiting for its address, in the cluster that now holds N).

The API emulator (tests/kubeemu) and `speakerd controller` run as separate processes on
loopback; this process creates N Services as `kubectl apply` would (bench/kubegen.py: the
last-applied annotation, labels, ports with nodePorts, clusterIPs, managedFields...) with
64 creates in flight, and watches Services.  Latency per Service = first watch event
carrying an ingress address - the moment its create was answered.  Also: API requests the
controller made per assignment (emulator request counters, minus this client's own), and
the create round trip alone as the baseline of the same run.

    python bench/controller.py 1000 [10000]
    python bench/controller.py --failover     # two replicas (15/10/2 s), the leader killed with SIGKILL
"""
from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.kubegen import service  # noqa: E402
from bench.lab_extra import free_port  # noqa: E402
import aiohttp  # noqa: E402

from speakerd.controller.loop import NAMESPACES  # noqa: E402
from speakerd.kube.config import load_client  # noqa: E402
from speakerd.kube.kinds import IPADDRESSPOOLS, LEASES, SERVICES  # noqa: E402
from speakerd.kube.reflector import Reflector  # noqa: E402


async def stats(url: str) -> dict:
    async with aiohttp.ClientSession() as s, s.get(url + "/_emulator/stats") as r:
        return await r.json()


def stop(p: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited after 30 s (a loaded machine is slow to stop)."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


async def run(n: int) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emu = subprocess.Popen([sys.executable, "-m", "tests.kubeemu", "--listen", f"127.0.0.1:{port}",
                            "--history", str(max(10_000, 4 * n))], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert b"listening" in emu.stdout.readline()
    kubeconfig = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    kubeconfig.write(f"apiVersion: v1\nkind: Config\ncurrent-context: e\nclusters: [{{name: e, cluster: {{server: '{url}'}}}}]\n"
                     "contexts: [{name: e, context: {cluster: e, user: u}}]\nusers: [{name: u, user: {}}]\n")
    kubeconfig.close()
    api = await load_client(kubeconfig.name)
    ctl = None
    try:
        await api.create(NAMESPACES, None, {"metadata": {"name": "metallb-system"}})
        for ns in ("default", "payments", "checkout", "search", "media", "edge", "data", "auth", "ops", "web"):
            await api.create(NAMESPACES, None, {"metadata": {"name": ns}})
        await api.create(IPADDRESSPOOLS, "metallb-system",
                         {"metadata": {"name": "bench"}, "spec": {"addresses": ["198.18.0.0/15"]}})
        ctl = subprocess.Popen([sys.executable, "-m", "speakerd.cli", "controller", "--kubeconfig", kubeconfig.name,
                                "--namespace", "metallb-system", "--identity", "bench", "--log-level", "warning"])
        while True:  # the controller holds the Lease (poll of the setup, not of the measurement)
            try:
                if (await api.get(LEASES, "metallb-system", "speakerd-controller"))["spec"]["holderIdentity"] == "bench":
                    break
            except Exception:
                pass
            await asyncio.sleep(0.1)
        created: dict[str, float] = {}
        assigned: dict[str, float] = {}
        done = asyncio.Event()
        waiters: dict[str, asyncio.Future] = {}

        def on_event(etype, obj):
            md = obj["metadata"]
            key = f"{md['namespace']}/{md['name']}"
            if key not in assigned and ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                assigned[key] = time.perf_counter()
                if len(assigned) == n:
                    done.set()
                w = waiters.pop(key, None)
                if w is not None:
                    w.set_result(None)

        watch = Reflector(api, SERVICES, on_event=on_event)
        wt = watch.start()
        await watch.synced.wait()
        before = await stats(url)
        rng = random.Random(1)
        objs = [service(i, rng) for i in range(n)]
        for o in objs:
            o["metadata"] = {k: v for k, v in o["metadata"].items() if k not in ("uid", "resourceVersion", "creationTimestamp",
                                                                                  "managedFields")}
            o.pop("status")
        rtt: list[float] = []
        sem = asyncio.Semaphore(64)
        t0 = time.perf_counter()

        async def create(o):
            async with sem:
                md = o["metadata"]
                s = time.perf_counter()
                await api.create(SERVICES, md["namespace"], o)
                e = time.perf_counter()
                created[f"{md['namespace']}/{md['name']}"] = e
                rtt.append(e - s)

        await asyncio.gather(*(create(o) for o in objs))
        await asyncio.wait_for(done.wait(), 600)
        total = time.perf_counter() - t0
        after = await stats(url)
        cpu_ctl, cpu_emu = cpu_seconds(ctl.pid), cpu_seconds(emu.pid)
        lat = [assigned[k] - created[k] for k in created]
        steady: list[float] = []
        for i in range(100):  # one at a time in the full cluster
            o = service(n + i, rng)
            o["metadata"] = {k: v for k, v in o["metadata"].items() if k not in ("uid", "resourceVersion", "creationTimestamp",
                                                                                  "managedFields")}
            o.pop("status")
            md = o["metadata"]
            key = f"{md['namespace']}/{md['name']}"
            waiters[key] = asyncio.get_running_loop().create_future()
            await api.create(SERVICES, md["namespace"], o)
            t = time.perf_counter()
            await asyncio.wait_for(waiters[key], 60)
            steady.append(assigned[key] - t)
        wt.cancel()
        d = {k: after["requests"].get(k, 0) - before["requests"].get(k, 0) for k in set(after["requests"]) | set(before["requests"])}
        ctl_requests = sum(d.values()) - n  # minus this client's creates (stats calls are not counted)
        ctl_writes = d.get("patch", 0) + d.get("create", 0) - n
        return {"n": n, "total_s": total, "p50_ms": 1e3 * statistics.median(lat), "p99_ms": 1e3 * pct(lat, 99),
                "max_ms": 1e3 * max(lat), "create_rtt_p99_ms": 1e3 * pct(rtt, 99),
                "steady_p50_ms": 1e3 * statistics.median(steady), "steady_p99_ms": 1e3 * pct(steady, 99),
                "cpu_controller_s": cpu_ctl, "cpu_emulator_s": cpu_emu,
                "controller_requests_per_assignment": ctl_requests / n, "writes_per_assignment": ctl_writes / n,
                "requests": d}
    finally:
        await api.close()
        for p in (ctl, emu):
            if p is not None:
                stop(p)
        os.unlink(kubeconfig.name)


async def failover(n: int = 100) -> dict:
    """Two replicas with the default timings; SIGKILL the leader; time until the other holds the Lease
    and until a Service created right after the kill has an address; whether any address changed."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emu = subprocess.Popen([sys.executable, "-m", "tests.kubeemu", "--listen", f"127.0.0.1:{port}"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert b"listening" in emu.stdout.readline()
    kubeconfig = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    kubeconfig.write(f"apiVersion: v1\nkind: Config\ncurrent-context: e\nclusters: [{{name: e, cluster: {{server: '{url}'}}}}]\n"
                     "contexts: [{name: e, context: {cluster: e, user: u}}]\nusers: [{name: u, user: {}}]\n")
    kubeconfig.close()
    api = await load_client(kubeconfig.name)
    ctls: dict[str, subprocess.Popen] = {}
    try:
        await api.create(NAMESPACES, None, {"metadata": {"name": "metallb-system"}})
        await api.create(IPADDRESSPOOLS, "metallb-system",
                         {"metadata": {"name": "bench"}, "spec": {"addresses": ["198.18.0.0/15"]}})
        for ident in ("one", "two"):
            ctls[ident] = subprocess.Popen([sys.executable, "-m", "speakerd.cli", "controller", "--kubeconfig",
                                            kubeconfig.name, "--namespace", "metallb-system", "--identity", ident,
                                            "--log-level", "warning"])
        holder: dict[str, str] = {}
        changed = asyncio.Event()

        def on_lease(etype, obj):
            h = (obj.get("spec") or {}).get("holderIdentity") or ""
            if h and h != holder.get("now"):
                holder["now"] = h
                holder["t"] = time.perf_counter()
                changed.set()

        leases = Reflector(api, LEASES, namespace="metallb-system", on_event=on_lease)
        lt = leases.start()
        await asyncio.wait_for(changed.wait(), 60)
        first = holder["now"]
        assigned: dict[str, tuple] = {}
        waiters: dict[str, asyncio.Future] = {}

        def on_svc(etype, obj):
            ing = tuple(e["ip"] for e in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ())
            key = obj["metadata"]["name"]
            if ing:
                assigned[key] = ing
                w = waiters.pop(key, None)
                if w is not None and not w.done():
                    w.set_result(time.perf_counter())

        svcs = Reflector(api, SERVICES, on_event=on_svc)
        st = svcs.start()
        await svcs.synced.wait()
        rng = random.Random(2)
        for i in range(n):
            o = service(i, rng)
            o["metadata"] = {k: v for k, v in o["metadata"].items() if k in ("name", "namespace", "labels", "annotations")}
            o.pop("status")
            waiters[o["metadata"]["name"]] = asyncio.get_running_loop().create_future()
            await api.create(SERVICES, o["metadata"]["namespace"], o)
        await asyncio.wait_for(asyncio.gather(*list(waiters.values())), 120)
        before = dict(assigned)
        changed.clear()
        ctls[first].kill()  # SIGKILL: no release of the Lease
        t_kill = time.perf_counter()
        o = service(n, rng)
        o["metadata"] = {k: v for k, v in o["metadata"].items() if k in ("name", "namespace", "labels", "annotations")}
        o.pop("status")
        name = o["metadata"]["name"]
        waiters[name] = asyncio.get_running_loop().create_future()
        await api.create(SERVICES, o["metadata"]["namespace"], o)
        t_assigned = await asyncio.wait_for(waiters[name], 120)
        await asyncio.wait_for(changed.wait(), 60)
        moved = [k for k, v in before.items() if assigned.get(k) != v]
        lt.cancel()
        st.cancel()
        return {"takeover_s": holder["t"] - t_kill, "first_assignment_s": t_assigned - t_kill, "moved": len(moved),
                "services": n, "new_leader": holder["now"], "old_leader": first}
    finally:
        await api.close()
        for p in [*ctls.values(), emu]:
            stop(p)
        os.unlink(kubeconfig.name)


def main() -> None:
    if sys.argv[1:] == ["--failover"]:
        r = asyncio.run(failover())
        print(f"failover (lease 15 s, renew 10 s, retry 2 s): leader {r['old_leader']} killed; {r['new_leader']} holds "
              f"the Lease after {r['takeover_s']:.1f} s; a Service created right after the kill has its address after "
              f"{r['first_assignment_s']:.1f} s; addresses changed among the {r['services']} assigned before: {r['moved']}",
              flush=True)
        return
    for n in [int(a) for a in sys.argv[1:]] or [1000]:
        r = asyncio.run(run(n))
        print(f"{r['n']} Services: all assigned in {r['total_s']:.2f} s; latency created->status p50 {r['p50_ms']:.0f} ms "
              f"p99 {r['p99_ms']:.0f} ms max {r['max_ms']:.0f} ms (create round trip p99 {r['create_rtt_p99_ms']:.1f} ms); "
              f"controller API requests per assignment {r['controller_requests_per_assignment']:.2f} "
              f"(writes {r['writes_per_assignment']:.2f}); CPU during the burst: controller {r['cpu_controller_s']:.1f} s, "
              f"emulator {r['cpu_emulator_s']:.1f} s; then one at a time in the full cluster: p50 {r['steady_p50_ms']:.1f} ms "
              f"p99 {r['steady_p99_ms']:.1f} ms; emulator requests {r['requests']}", flush=True)


if __name__ == "__main__":
    main()
