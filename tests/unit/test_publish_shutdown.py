"""Stopping the speaker: what the publisher has queued (Events, status writes) is given a
bounded time to be written before its task is cancelled, as client-go's broadcaster hands
on what it queued when it shuts down."""
from __future__ import annotations

import asyncio

from test_publish import FakeApi, NODE, NS

from speakerd.publish import events as ev
from speakerd.publish.writer import StatusPublisher


async def test_finish_writes_what_is_queued_before_the_task_goes():
    api = FakeApi()
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    task = asyncio.create_task(pub.run())
    try:
        pub.record(ev.invalid(ev.ObjectRef("Service", "default", "a"), "bad"))
        pub.set_service("default/web", ["p1"])
        assert await pub.finish(30.0) is True
        assert sorted(e["involvedObject"]["name"] for e in api.of("events")) == ["a", "web"]
        assert api.of("servicebgpstatuses")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_finish_gives_up_when_the_api_server_does_not_take_them():
    api = FakeApi()
    api.fail["list"] = 503  # the status kinds cannot even be listed: nothing can be written
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    task = asyncio.create_task(pub.run())
    try:
        pub.set_service("default/web", ["p1"])
        assert await pub.finish(0.0) is False
        assert pub.pending() > 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

