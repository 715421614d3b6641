"""The one timer idiom of the transports: one asyncio timer per sans-IO machine.

A machine says when it next needs time (``next_deadline()``, an absolute
``loop.time()`` value or None); the transport calls :meth:`Deadline.set`
with it after every input, and the callback (which calls the machine's
``tick(now)``) runs at that time.  An unchanged deadline keeps its timer;
a changed one replaces it.  Used by :mod:`.peer` (BGP) and :mod:`.bfd`.
"""
from __future__ import annotations

import asyncio
from typing import Callable


class Deadline:
    __slots__ = ("_loop", "_callback", "_handle", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._when: float | None = None

    @property
    def when(self) -> float | None:
        return self._when

    def set(self, when: float | None) -> None:
        """Run the callback at ``when`` (loop time); None: not at all."""
        if when == self._when and (when is None or self._handle is not None):
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = when
        if when is not None:
            self._handle = self._loop.call_at(when, self._fire)

    def cancel(self) -> None:
        self.set(None)

    def _fire(self) -> None:
        self._handle = None
        self._when = None
        self._callback()
