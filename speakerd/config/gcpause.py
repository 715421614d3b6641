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
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def gc_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.freeze()  # every tracked object -> permanent generation (generation counts reset)
            gc.unfreeze()  # permanent -> oldest generation: promoted, not walked
            gc.enable()
