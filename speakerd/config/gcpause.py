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

A pause that built a bulk of objects (``BULK`` or more tracked objects: a large
file read again whole, a re-list) leaves them frozen instead: in the permanent
generation, which no collection walks. Otherwise every full collection that
CPython starts as the heap grows by a quarter walks them all with the event loop
held (240-380 ms at 100k Services here: longer than a BFD detection time of
3 x 100 ms). :func:`freeze_heap` does the same for everything alive once the
first load is done. The price: a reference cycle among frozen objects that
becomes garbage later is never collected. What bulk loads build (the store's
objects, the planner's tables, units and their records) holds no cycles, and is
freed by reference counting when replaced; what else is alive at that moment
(the loop, its tasks, the sessions) lives as long as the daemon.

Pauses may overlap (the reflectors of several kinds list at once, each across
awaits, while a batch is applied): the collector stays off until the last one
ends, and is restored then only if it was on when the first began.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


BULK = 100_000  # tracked objects one pause built that make it a bulk load

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
            bulk = gc.get_count()[0] >= BULK  # counted since the last collection: none ran inside
            gc.freeze()  # every tracked object -> permanent generation (generation counts reset)
            if not bulk:
                gc.unfreeze()  # permanent -> oldest generation: promoted, not walked
            gc.enable()


def freeze_heap() -> None:
    """Once the first load is done, before any session or timer waits on the loop: one full
    collection (garbage is not frozen), then every object alive is moved where no later
    collection walks it (``gc.freeze``)."""
    gc.collect()
    gc.freeze()
