"""gc_paused: no collection inside, objects promoted (not walked) on exit, cycles still collectable."""
import gc
import weakref

from speakerd.config.gcpause import gc_paused


class _Node:
    pass


def test_collector_off_inside_and_restored():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_stays_off_when_it_was_off():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_objects_leave_generation_zero_and_cycles_are_still_collected():
    with gc_paused():
        keep = [{"i": i} for i in range(5000)]
        a = _Node()
        a.self = a  # a cycle made while paused
        ref = weakref.ref(a)
        del a
    assert gc.get_count()[0] < 100  # the 5,000 dicts were promoted, not left to the next gen-0 pass
    assert gc.get_freeze_count() == 0  # nothing stays frozen
    assert ref() is not None
    gc.collect()
    assert ref() is None  # the cycle is collected by a full collection
    assert len(keep) == 5000


def test_restored_on_exception():
    try:
        with gc_paused():
            raise ValueError
    except ValueError:
        pass
    assert gc.isenabled()


def test_overlapping_pauses_keep_it_off_until_the_last_ends():
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # ends before the one begun after it (two tasks across awaits)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_bulk_stays_frozen_where_no_collection_walks_it():
    from speakerd.config import gcpause
    gc.collect()
    gc.unfreeze()
    try:
        with gc_paused():
            keep = [[i] for i in range(gcpause.BULK + 1000)]  # lists: always tracked
        assert gc.get_freeze_count() >= len(keep)  # frozen, not promoted
        a = _Node()
        a.self = a  # a cycle made after it: collected as ever
        ref = weakref.ref(a)
        del a
        gc.collect()
        assert ref() is None
    finally:
        gc.unfreeze()


def test_freeze_heap_collects_first_then_freezes():
    from speakerd.config.gcpause import freeze_heap
    gc.unfreeze()
    a = _Node()
    a.self = a
    ref = weakref.ref(a)
    del a  # garbage before the freeze: not frozen, collected by it
    try:
        freeze_heap()
        assert ref() is None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
