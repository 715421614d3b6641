"""Pure functions of the reflector: object keys, "same object?" and the re-list reconcile.

``reconcile(cache, fresh)`` is what a reflector does after a re-list (410 Gone, or a restart of the
API server): it compares the objects it holds with the fresh list and returns only the real
changes, so that nothing downstream withdraws and re-announces what did not change. An object
whose only difference is its ``resourceVersion`` (or ``managedFields``) is unchanged: an API
server restarted empty and re-populated gives every object a new version and nothing else.
"""
from __future__ import annotations

from typing import Callable, Iterable

Key = tuple[str, str]  # (namespace or "", name)

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"

_VOLATILE = ("resourceVersion", "managedFields")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def key_of(obj: dict) -> Key:
    md = obj.get("metadata") or {}
    return (md.get("namespace") or "", md.get("name") or "")


def resource_version(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion") or ""


def same(a: dict, b: dict) -> bool:
    """True when ``a`` and ``b`` differ at most in resourceVersion and managedFields."""
    if a is b:
        return True
    if resource_version(a) and resource_version(a) == resource_version(b):
        return True
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    if {k: v for k, v in a.items() if k != "metadata"} != {k: v for k, v in b.items() if k != "metadata"}:
        return False
    return {k: v for k, v in ma.items() if k not in _VOLATILE} == {k: v for k, v in mb.items() if k not in _VOLATILE}


def slim(obj: dict) -> dict:
    """The default transform: drop what no consumer reads and every object carries (managedFields,
    the last-applied-configuration copy of the object): about half of a kubectl-applied object."""
    md = obj.get("metadata")
    if not isinstance(md, dict):
        return obj
    if "managedFields" in md or LAST_APPLIED in (md.get("annotations") or {}):
        md = {k: v for k, v in md.items() if k != "managedFields"}
        ann = md.get("annotations")
        if ann and LAST_APPLIED in ann:
            ann = {k: v for k, v in ann.items() if k != LAST_APPLIED}
            if ann:
                md["annotations"] = ann
            else:
                md.pop("annotations")
        obj = {**obj, "metadata": md}
    return obj


def reconcile(cache: dict[Key, dict], fresh: Iterable[dict],
              transform: Callable[[dict], dict] | None = None) -> tuple[dict[Key, dict], list[tuple[str, dict]]]:
    """The new cache after a list, and the events that turn ``cache`` into it.

    ADDED for keys only in ``fresh``, MODIFIED for keys in both whose objects are not :func:`same`
    (the fresh object), DELETED for keys only in ``cache`` (the last known object). Objects that
    are the same produce no event (the new cache holds the fresh one, with its new version).
    ``cache`` is not changed. Order: ADDED/MODIFIED in list order, then DELETED in cache order.
    """
    new: dict[Key, dict] = {}
    events = reconcile_page(cache, new, fresh, transform)
    events += deletions(cache, new)
    return new, events


def reconcile_page(cache: dict[Key, dict], new: dict[Key, dict], page: Iterable[dict],
                   transform: Callable[[dict], dict] | None = None) -> list[tuple[str, dict]]:
    """:func:`reconcile` one page at a time: the page's objects (transformed) go into ``new``; the
    ADDED/MODIFIED events they make against ``cache`` are returned. After the last page,
    :func:`deletions` gives the rest. A page's raw objects can go as soon as it is done."""
    events: list[tuple[str, dict]] = []
    for obj in page:
        if transform is not None:
            obj = transform(obj)
        k = key_of(obj)
        new[k] = obj
        old = cache.get(k)
        if old is None:
            events.append((ADDED, obj))
        elif not same(old, obj):
            events.append((MODIFIED, obj))
    return events


def deletions(cache: dict[Key, dict], new: dict[Key, dict]) -> list[tuple[str, dict]]:
    """DELETED for every object of ``cache`` that the list (``new``) no longer has, in cache order."""
    return [(DELETED, old) for k, old in cache.items() if k not in new]


def apply_event(cache: dict[Key, dict], etype: str, obj: dict) -> tuple[str, dict] | None:
    """Apply one watch event to ``cache`` (in place); the event to emit, or None when nothing changed.

    A MODIFIED of an unknown key is emitted as ADDED, an ADDED of a known key as MODIFIED (or
    nothing when the same), a DELETED of an unknown key is nothing: what a consumer sees is always
    consistent with what it saw before, whatever the stream replays.
    """
    k = key_of(obj)
    old = cache.get(k)
    if etype == DELETED:
        if old is None:
            return None
        del cache[k]
        return (DELETED, obj)
    cache[k] = obj
    if old is None:
        return (ADDED, obj)
    if same(old, obj):
        return None
    return (MODIFIED, obj)
