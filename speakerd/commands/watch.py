"""Notice when the configuration on disk changes.

inotify first (``watchfiles``, via :class:`speakerd.sources.files.FileWatcher`): the
directories holding the configured paths are watched, so an editor's
rename-over and a Kubernetes ConfigMap update (which swaps a ``..data`` symlink
rather than writing files in place) are both seen; the callback fires once per
burst of changes.  Where inotify cannot be used (no watches left, a filesystem
without it), the (mtime, size, inode) of every file is polled every ``interval``
seconds instead and the callback fires after the files have been stable for one
interval (so a half-written file is not loaded).
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Callable

log = logging.getLogger("speakerd")


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

    def _changed(self) -> None:
        if self.poll():  # inotify also reports writes that leave the content's stat as it was
            self.on_change()

    async def run(self, interval: float) -> None:
        from ..sources.files import FileWatcher
        try:
            await FileWatcher(self.paths, self._changed).run()
            return
        except (OSError, RuntimeError) as exc:  # no inotify here: poll
            log.warning("cannot watch the config files with inotify (%s); polling every %gs", exc, interval)
        await self.run_polling(interval)

    async def run_polling(self, interval: float) -> None:
        pending = False
        while True:
            await asyncio.sleep(interval)
            if self.poll():
                pending = True  # wait one more interval for the writer to finish
                continue
            if pending:
                pending = False
                self.on_change()
