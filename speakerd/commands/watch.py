"""Notice when the configuration on disk changes.

Polls the (mtime, size, inode) of every config file and directory entry every
few seconds — cheap, and it also sees Kubernetes ConfigMap updates, which
swap a ``..data`` symlink rather than writing files in place.  The callback
fires once per change, after the files have been stable for one interval
(so a half-written file is not loaded).
"""
from __future__ import annotations

import asyncio
import os
from typing import Callable


def snapshot(paths: list[str]) -> tuple:
    seen = []
    for path in paths:
        targets = [path]
        if os.path.isdir(path):
            try:
                targets = sorted(os.path.join(path, n) for n in os.listdir(path))
            except OSError:
                targets = []
        for t in targets:
            try:
                st = os.stat(t)  # follows symlinks: a ConfigMap swap changes the target
                seen.append((t, st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                seen.append((t, None, None, None))
    return tuple(seen)


class ConfigWatcher:
    def __init__(self, paths: list[str], on_change: Callable[[], object]) -> None:
        self.paths = list(paths)
        self.on_change = on_change
        self.current = snapshot(self.paths)

    def poll(self) -> bool:
        """True when the files changed since the last poll that reported a change."""
        now = snapshot(self.paths)
        if now != self.current:
            self.current = now
            return True
        return False

    async def run(self, interval: float) -> None:
        pending = False
        while True:
            await asyncio.sleep(interval)
            if self.poll():
                pending = True  # wait one more interval for the writer to finish
                continue
            if pending:
                pending = False
                self.on_change()
