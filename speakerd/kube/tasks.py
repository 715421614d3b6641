"""The background task a reflector, an elector or a writer runs: started once, stopped by
cancelling it and waiting until it has ended."""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine


def ensure_running(task: asyncio.Task | None, run: Callable[[], Coroutine]) -> asyncio.Task:
    """``task`` if it is still running, else a new task of ``run()``."""
    if task is None or task.done():
        return asyncio.ensure_future(run())
    return task


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
