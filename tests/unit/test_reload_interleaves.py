"""A large reload hands the event loop back between batches: other tasks (keepalive and
BFD timers, the control socket) run while thousands of Services are read and planned."""
from __future__ import annotations

import asyncio

from speakerd.speaker import Speaker

HEAD = ("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a, namespace: m}\n"
        "spec: {addresses: [10.0.0.0/16]}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\n"
        "metadata: {name: ad, namespace: m}\n")


def services(n: int, third: int) -> str:
    return "".join(f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: d}}\n"
                   f"spec: {{type: LoadBalancer}}\nstatus: {{loadBalancer: {{ingress: [{{ip: 10.0.{i >> 8}.{i & 255}}}]}}}}\n"
                   f"  # {third}\n" for i in range(n))


async def test_reload_of_thousands_of_services_lets_other_tasks_run(tmp_path):
    (tmp_path / "m.yaml").write_text(HEAD)
    f = tmp_path / "s.yaml"
    f.write_text(services(10, 0))
    sp = Speaker([str(tmp_path)], "n")
    await sp.start()
    n = 4000
    f.write_text(services(n, 1))
    ticks = 0
    done = False

    async def ticker():
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.get_running_loop().create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    res = await sp.reload("test")
    done = True
    await t
    assert res["ok"] and len(sp.store.services) == n
    batches = n // sp.INGEST_BATCH
    assert ticks - before >= batches  # the ticker ran between (at least) every two batches
    await sp.stop()
