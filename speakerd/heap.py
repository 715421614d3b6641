"""Handing the heap memory freed by a large read back to the kernel.

glibc keeps the pages of freed blocks until asked (a document's large strings, the
tables of dicts and sets built while reading and planning are malloc'd): after the
daemon has read and planned many objects, ``malloc_trim(0)`` returns them. Measured
with bench/service_memory.py (10k kubectl-shaped Services, YAML List): ~100 B of RSS per
Service when called after the plan rather than after the read alone. Nothing where the
C library has no malloc_trim.
"""
from __future__ import annotations

import os
from typing import Any

TRIM_AFTER = 1000  # units parsed by one read: then the memory is handed back

_malloc_trim: Any = None


def release() -> None:
    """malloc_trim(0); ctypes lets go of the GIL meanwhile (callable from a worker thread)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


# yaml-rs carries its own allocator (mimalloc v3), with per-thread heaps that return freed
# pages only a second after the last free and only while that thread keeps allocating: the
# daemon parses in a worker thread that then sleeps, so what parsing freed stayed resident
# (~190 B per Service after reading 10k kubectl-shaped Services, bench/service_memory.py).
# Purged at once and committed on demand, it is handed back; parse time did not change.
MIMALLOC_OPTIONS = {"MIMALLOC_PURGE_DELAY": "0", "MIMALLOC_ARENA_EAGER_COMMIT": "0"}


def tune_parser_allocator() -> None:
    """Set :data:`MIMALLOC_OPTIONS` (unless the environment sets them) before yaml-rs is
    loaded: mimalloc reads them once, when the library starts."""
    for k, v in MIMALLOC_OPTIONS.items():
        os.environ.setdefault(k, v)
