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


async def test_a_file_open_for_writing_is_read_when_the_writer_is_done(tmp_path, monkeypatch):
    """``kubectl get ... > file`` writes in place, in pieces: a read while the writer still
    has the file open would take its cut-off end as every later Service deleted. The read
    leaves such a file as it was and the daemon reads it again shortly (inotify does not say
    when the writer closes it)."""
    import signal
    old = signal.signal(signal.SIGIO, signal.SIG_IGN)  # as speakerd run sets it
    monkeypatch.setattr(Speaker, "BUSY_RETRY", 0.01)
    try:
        (tmp_path / "m.yaml").write_text(HEAD)
        f = tmp_path / "s.yaml"
        f.write_text(services(20, 0))
        sp = Speaker([str(tmp_path)], "n")
        await sp.start()
        assert len(sp.store.services) == 20
        full = services(30, 1)
        w = open(f, "w")  # in place: truncated, then written in two pieces
        w.write(full[:len(full) // 3])
        w.flush()
        await sp.reload("inotify: modified")
        assert len(sp.store.services) == 20  # the cut-off file is not taken for the new one
        assert sp.source.busy == [str(f)]
        reloaded = asyncio.Event()
        real = sp.reload

        async def watched(reason="x"):
            r = await real(reason)
            if not sp.source.busy:
                reloaded.set()
            return r
        sp.reload = watched
        w.write(full[len(full) // 3:])
        w.close()  # no event for this: the retry reads it
        await asyncio.wait_for(reloaded.wait(), 10)
        assert len(sp.store.services) == 30
        await sp.stop()
    finally:
        signal.signal(signal.SIGIO, old)
