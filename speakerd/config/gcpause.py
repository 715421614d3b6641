"""Pause the cyclic garbage collector around bulk object construction.

Loading 100k Services creates millions of dicts, lists and dataclasses that
all live on; every gen-0 collection walks the young ones and every gen-2
pass walks them all, which on its own took two thirds of config load time.
Nothing built here is cyclic garbage, so collection can wait until the end.

On the way out everything allocated meanwhile is moved to the oldest
generation without being walked (``gc.freeze()`` then ``gc.unfreeze()``:
two list splices).  Re-enabling the collector alone would leave those
millions of objects in generation 0, and the first allocation after it
would walk them all (0.3 s at 100k Services) only to promote them, and
generation 1 would walk them again later.  They stay collectable: the next
full collection sees them like any other long-lived object.

Pauses may overlap (the reflectors of several kinds list at once, each across
awaits, while a batch is applied): the collector stays off until the last one
ends, and is restored then only if it was on when the first began.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


_depth = 0  # pauses in progress
_restore = False  # whether the collector was on when the first of them began


@contextmanager
def gc_paused() -> Iterator[None]:
    global _depth, _restore
    if _depth == 0:
        _restore = gc.isenabled()
        gc.disable()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _restore:
            gc.freeze()  # every tracked object -> permanent generation (generation counts reset)
            gc.unfreeze()  # permanent -> oldest generation: promoted, not walked
            gc.enable()
