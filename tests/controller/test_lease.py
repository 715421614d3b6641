"""Leader election on a Lease against the emulator: one winner, expiry by local observation, release."""
from __future__ import annotations

import asyncio

from speakerd.controller.kubeapi import Api, Credentials
from speakerd.controller.lease import LeaderElector
from tests.kubeemu import Emulator

NS = "metallb-system"


async def _electors(url, n, **kw):
    apis = [Api(Credentials(url)) for _ in range(n)]
    return apis, [LeaderElector(a, NS, "l", f"c{i}", **kw) for i, a in enumerate(apis)]


async def test_one_winner_when_candidates_race():
    async with Emulator() as emu:
        apis, els = await _electors(emu.url, 4, lease=15, renew_deadline=10, retry=2)
        won = await asyncio.gather(*(e.try_acquire_or_renew() for e in els))
        assert sum(won) == 1  # the others got 409 (create or update with a stale resourceVersion)
        lease = await apis[0].request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/l")
        winner = els[won.index(True)]
        assert lease["spec"]["holderIdentity"] == winner.identity and lease["spec"]["leaseDurationSeconds"] == 15
        # a held, unexpired lease is not taken; the holder renews it
        assert not any(await asyncio.gather(*(e.try_acquire_or_renew() for e in els if e is not winner)))
        assert await winner.try_acquire_or_renew()
        for a in apis:
            await a.close()


async def test_expired_lease_is_taken_and_transitions_counted():
    async with Emulator() as emu:
        apis, (a, b) = await _electors(emu.url, 2, lease=0.3, renew_deadline=0.2, retry=0.05)
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()  # b observes the record now; it expires 0.3 s later
        task = asyncio.create_task(b.run())  # a stopped renewing (killed): b takes over once it expired
        await asyncio.wait_for(b.leading.wait(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        lease = await apis[0].request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/l")
        assert lease["spec"]["holderIdentity"] == "c1" and lease["spec"]["leaseTransitions"] == 1
        for x in apis:
            await x.close()


async def test_release_hands_over_at_once():
    async with Emulator() as emu:
        apis, (a, b) = await _electors(emu.url, 2, lease=60, renew_deadline=40, retry=1)
        task = asyncio.create_task(a.run())
        await a.leading.wait()
        assert not await b.try_acquire_or_renew()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await a.release()
        assert await b.try_acquire_or_renew()  # no 60 s wait: the holder gave it up
        for x in apis:
            await x.close()
