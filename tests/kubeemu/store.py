"""The emulator's object store: objects, a global resourceVersion counter, a bounded event history
and the watchers it fans events out to.

Every write is O(1) plus one serialisation of the written object and one append per interested
watcher; nothing scans all objects or all earlier requests. Lists serialise nothing: each object's
JSON bytes are kept from its last write and joined.

API semantics kept (as kube-apiserver has them):
- one resourceVersion counter for all kinds; an object's ``metadata.resourceVersion`` is the counter
  at its last write; a write that changes nothing bumps nothing and emits no event;
- a write carrying ``metadata.resourceVersion`` that is not the current one is 409 Conflict;
- the ``status`` subresource: writes to the object keep the stored status, writes to ``/status``
  keep everything else; ``metadata.generation`` grows when anything but metadata/status changes;
- DELETE of an object with finalizers sets ``deletionTimestamp``; it goes when the last is removed;
- watch from a resourceVersion replays the history after it; older than the history → 410 Gone;
  with a selector, an object that stops (starts) matching arrives as DELETED (ADDED).
"""
from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import time
import uuid
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable

import orjson

from .resources import ResourceInfo
from .selectors import Matcher

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            out["details"] = self.details
        return out


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


_stamp: list = [0, ""]  # the last second formatted, and its text


def _now() -> str:
    t = int(time.time())
    if t != _stamp[0]:
        _stamp[0], _stamp[1] = t, datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _stamp[1]


def _copy(obj):
    """A deep copy of a JSON value (an orjson round trip: several times faster than copy.deepcopy)."""
    return orjson.loads(orjson.dumps(obj))


@dataclass(slots=True)
class Entry:
    obj: dict
    raw: bytes          # orjson bytes of obj
    api_version: str    # apiVersion written into raw


@dataclass(slots=True)
class Event:
    rv: int
    storage: str
    namespace: str
    type: str           # ADDED / MODIFIED / DELETED
    entry: Entry
    prev: dict | None   # the object before (for selector transitions)


@dataclass(eq=False)
class Watcher:
    """One open watch stream: ``pending`` holds ready-to-send JSON lines, taken all at once by the
    stream's writer (one socket write per wake-up, however many events came meanwhile); ``closed``
    ends the stream once they are sent."""
    info: ResourceInfo
    namespace: str | None
    matcher: Matcher | None
    bookmarks: bool
    max_queue: int = 200_000
    pending: list[bytes] = field(default_factory=list)
    closed: bool = False
    sent_rv: int = 0
    _waiter: asyncio.Future | None = None

    def _line(self, etype: str, entry: Entry) -> bytes:
        raw = entry.raw
        if entry.api_version != self.info.api_version:
            raw = convert(entry, self.info)
        return b'{"type":"' + etype.encode() + b'","object":' + raw + b"}\n"

    def offer(self, ev: Event) -> None:
        if self.closed or (self.namespace is not None and ev.namespace != self.namespace):
            return
        etype = ev.type
        if self.matcher is not None:
            now = self.matcher(ev.entry.obj)
            before = ev.prev is not None and self.matcher(ev.prev)
            if etype == "MODIFIED":
                if now and not before:
                    etype = "ADDED"
                elif before and not now:
                    etype = "DELETED"
                elif not now:
                    return
            elif not now:
                return
        self.push(self._line(etype, ev.entry), ev.rv)

    def push(self, line: bytes | None, rv: int = 0) -> None:
        if self.closed:
            return
        if line is None or len(self.pending) >= self.max_queue:
            self.closed = True          # a consumer too slow is cut off, as the API server does
        else:
            self.sent_rv = max(self.sent_rv, rv)
            self.pending.append(line)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def take(self) -> bytes:
        """Every line pending, joined (empty when none)."""
        lines, self.pending = self.pending, []
        return b"".join(lines)

    @property
    def ended(self) -> bool:
        """Closed and everything sent."""
        return self.closed and not self.pending

    async def wait(self, timeout: float) -> None:
        """Until a line is pending or the stream is closed, at most ``timeout`` seconds. A timer and a
        future per wait (``asyncio.wait_for`` would start a task for every line on Python 3.11)."""
        if self.pending or self.closed:
            return
        loop = asyncio.get_running_loop()
        self._waiter = fut = loop.create_future()
        timer = loop.call_later(timeout, _wake, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._waiter = None


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


def convert(entry: Entry, info: ResourceInfo) -> bytes:
    """The object as another version of its kind (apiVersion only; the schemas here are compatible)."""
    obj = dict(entry.obj)
    obj["apiVersion"] = info.api_version
    return orjson.dumps(obj)


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def json_patch(target: dict, ops: list) -> dict:
    """RFC 6902 JSON patch (add, remove, replace, test, copy, move)."""
    doc = copy.deepcopy(target)

    def parent(parts):
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur

    def get(parts):
        cur = doc
        for p in parts:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur

    def remove(parts):
        par = parent(parts)
        if isinstance(par, list):
            return par.pop(int(parts[-1]))
        return par.pop(parts[-1])

    def add(parts, value):
        par = parent(parts)
        if isinstance(par, list):
            idx = len(par) if parts[-1] == "-" else int(parts[-1])
            par.insert(idx, value)
        else:
            par[parts[-1]] = value

    try:
        for op in ops:
            parts = _pointer(op["path"])
            kind = op["op"]
            if kind == "add":
                add(parts, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(parts)
            elif kind == "replace":
                remove(parts)
                add(parts, copy.deepcopy(op["value"]))
            elif kind == "test":
                if get(parts) != op["value"]:
                    raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
            elif kind in ("move", "copy"):
                src = _pointer(op["from"])
                value = remove(src) if kind == "move" else copy.deepcopy(get(src))
                add(parts, value)
            else:
                raise ApiError(400, "BadRequest", f"unknown json patch op {kind!r}")
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise ApiError(422, "Invalid", f"json patch failed: {exc!r}") from None
    return doc


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Store:
    def __init__(self, history: int = 10_000, rv_start: int = 0, clock: Callable[[], str] = _now) -> None:
        self.rv = rv_start
        self.compacted_rv = rv_start   # events at or below this are no longer in history
        self.history: deque[Event] = deque(maxlen=history)
        self.objects: dict[str, dict[Key, Entry]] = {}
        self.watchers: dict[str, set[Watcher]] = {}
        self.requests: Counter[str] = Counter()
        self.writes = 0
        self._clock = clock
        self._snapshots: OrderedDict[str, tuple[int, list[tuple[Key, Entry]]]] = OrderedDict()
        self._snap_ids = itertools.count(1)

    # -- reads -----------------------------------------------------------------------------------

    def get(self, info: ResourceInfo, ns: str, name: str) -> Entry:
        entry = self.objects.get(info.storage, {}).get((ns, name))
        if entry is None:
            raise ApiError(404, "NotFound", f'{info.plural}{"." + info.group if info.group else ""} "{name}" not found',
                           {"name": name, "group": info.group, "kind": info.plural})
        return entry

    def list(self, info: ResourceInfo, ns: str | None, matcher: Matcher | None,
             limit: int = 0, cont: str | None = None) -> tuple[int, list[Entry], str | None, int]:
        """(resourceVersion, entries, continue token, remaining count)."""
        if cont:
            try:
                snap_id, offset = base64.urlsafe_b64decode(cont.encode()).decode().split(":")
                rv, items = self._snapshots[snap_id]
                offset = int(offset)
            except (KeyError, ValueError):
                raise gone("The provided continue parameter is too old to display a consistent "
                           "list result. You can start a new list without the continue parameter.") from None
        else:
            bucket = self.objects.get(info.storage, {})
            if ns is None:
                keys = sorted(bucket)
            else:
                keys = sorted(k for k in bucket if k[0] == ns)
            items = [(k, bucket[k]) for k in keys]
            if matcher is not None:
                items = [(k, e) for k, e in items if matcher(e.obj)]
            rv, offset, snap_id = self.rv, 0, None
        if limit <= 0 or offset + limit >= len(items):
            return rv, [e for _, e in items[offset:]], None, 0
        if snap_id is None:
            snap_id = str(next(self._snap_ids))
            self._snapshots[snap_id] = (rv, items)
            while len(self._snapshots) > 32:
                self._snapshots.popitem(last=False)
        end = offset + limit
        token = base64.urlsafe_b64encode(f"{snap_id}:{end}".encode()).decode()
        return rv, [e for _, e in items[offset:end]], token, len(items) - end

    # -- watches ---------------------------------------------------------------------------------

    def watch(self, info: ResourceInfo, ns: str | None, matcher: Matcher | None,
              resource_version: str | None, bookmarks: bool) -> Watcher:
        w = Watcher(info, ns, matcher, bookmarks)
        if not resource_version or resource_version == "0":
            bucket = self.objects.get(info.storage, {})
            for (ons, _), entry in bucket.items():
                if ns is not None and ons != ns:
                    continue
                if matcher is None or matcher(entry.obj):
                    w.push(w._line("ADDED", entry), self.rv)
        else:
            try:
                since = int(resource_version)
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid resource version {resource_version!r}") from None
            if since < self.compacted_rv or since > self.rv:
                # Too old: compacted away. Newer than this server has: an API server restarted
                # empty; both are answered so that a client lists again.
                w.push(orjson.dumps({"type": "ERROR", "object": gone(
                    f"too old resource version: {since} ({self.compacted_rv})").status()}) + b"\n")
                w.push(None)
                return w
            replay = []
            for ev in reversed(self.history):
                if ev.rv <= since:
                    break
                if ev.storage == info.storage:
                    replay.append(ev)
            for ev in reversed(replay):
                w.offer(ev)
        self.watchers.setdefault(info.storage, set()).add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        self.watchers.get(w.info.storage, set()).discard(w)

    def bookmark(self) -> int:
        """Send a BOOKMARK at the current resourceVersion to every watcher that asked for them."""
        n = 0
        for ws in self.watchers.values():
            for w in ws:
                if w.bookmarks and not w.closed:
                    line = orjson.dumps({"type": "BOOKMARK", "object": {
                        "kind": w.info.kind, "apiVersion": w.info.api_version,
                        "metadata": {"resourceVersion": str(self.rv),
                                     "annotations": {"k8s.io/initial-events-end": "true"}}}}) + b"\n"
                    w.push(line, self.rv)
                    n += 1
        return n

    def close_watches(self) -> int:
        n = 0
        for ws in self.watchers.values():
            for w in list(ws):
                w.push(None)
                n += 1
            ws.clear()
        return n

    def compact(self) -> None:
        """Forget all history: every watch resumed from an older version gets 410."""
        self.history.clear()
        self.compacted_rv = self.rv

    # -- writes ----------------------------------------------------------------------------------

    def _emit(self, info: ResourceInfo, ns: str, etype: str, entry: Entry, prev: dict | None) -> None:
        if len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        ev = Event(self.rv, info.storage, ns, etype, entry, prev)
        self.history.append(ev)
        self.writes += 1
        for w in self.watchers.get(info.storage, ()):
            w.offer(ev)

    def _store(self, info: ResourceInfo, key: Key, obj: dict) -> Entry:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        entry = Entry(obj, orjson.dumps(obj), obj.get("apiVersion", info.api_version))
        self.objects.setdefault(info.storage, {})[key] = entry
        return entry

    def load(self, info: ResourceInfo, obj: dict) -> Entry:
        """Put an object in place as it is (its resourceVersion kept; no event): for state files."""
        md = obj["metadata"]
        key = (md.get("namespace", "") if info.namespaced else "", md["name"])
        rv = int(md.get("resourceVersion") or 0)
        self.rv = max(self.rv, rv)
        entry = Entry(obj, orjson.dumps(obj), obj.get("apiVersion", info.api_version))
        self.objects.setdefault(info.storage, {})[key] = entry
        self.compacted_rv = self.rv
        return entry

    def create(self, info: ResourceInfo, ns: str, obj: dict) -> Entry:
        self.requests["create"] += 1
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "body must be an object")
        obj = _copy(obj)
        md = obj.setdefault("metadata", {})
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise ApiError(422, "Invalid", "metadata.name: Required value: name or generateName is required")
        if info.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match "
                                                  "the namespace sent on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
            ns = ""
        key = (ns, md["name"])
        if key in self.objects.get(info.storage, {}):
            raise ApiError(409, "AlreadyExists", f'{info.plural} "{md["name"]}" already exists',
                           {"name": md["name"], "group": info.group, "kind": info.plural})
        obj["apiVersion"] = info.api_version
        obj["kind"] = info.kind
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = self._clock()
        md["generation"] = 1
        md.pop("resourceVersion", None)
        md.pop("deletionTimestamp", None)
        if info.has_status:
            obj.pop("status", None)
        entry = self._store(info, key, obj)
        self._emit(info, ns, "ADDED", entry, None)
        return entry

    def _check_rv(self, body: dict, current: Entry) -> None:
        want = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if want and want != current.obj["metadata"]["resourceVersion"]:
            name = current.obj["metadata"]["name"]
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {current.obj.get("kind", "")} '
                                            f'"{name}": the object has been modified; please apply your '
                                            f'changes to the latest version and try again')

    def _commit(self, info: ResourceInfo, ns: str, current: Entry, new: dict, subresource: str | None) -> Entry:
        """Store ``new`` in place of ``current`` keeping the parts this write may not change."""
        old = current.obj
        if subresource == "status":
            merged = _copy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        else:
            new = _copy(new)
            if info.has_status:
                if "status" in old:
                    new["status"] = _copy(old["status"])
                else:
                    new.pop("status", None)
        md = new.setdefault("metadata", {})
        omd = old["metadata"]
        for fixed in ("name", "uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if fixed in omd:
                md[fixed] = omd[fixed]
            else:
                md.pop(fixed, None)
        if info.namespaced:
            md["namespace"] = ns
        new["apiVersion"] = old.get("apiVersion", info.api_version)
        new["kind"] = info.kind
        md["resourceVersion"] = omd["resourceVersion"]
        if new == old:
            return current
        if _spec_part(new) != _spec_part(old):
            md["generation"] = int(omd.get("generation", 1)) + 1
        key = (ns, omd["name"])
        if md.get("deletionTimestamp") and not md.get("finalizers"):
            return self._remove(info, ns, key, new)
        entry = self._store(info, key, new)
        self._emit(info, ns, "MODIFIED", entry, old)
        return entry

    def replace(self, info: ResourceInfo, ns: str, name: str, body: dict, subresource: str | None = None) -> Entry:
        self.requests["update"] += 1
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "body must be an object")
        current = self.get(info, ns, name)
        bname = (body.get("metadata") or {}).get("name")
        if bname and bname != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        self._check_rv(body, current)
        return self._commit(info, ns, current, body, subresource)

    def patch(self, info: ResourceInfo, ns: str, name: str, body, content_type: str,
              subresource: str | None = None) -> Entry:
        self.requests["patch"] += 1
        current = self.get(info, ns, name)
        if "json-patch" in content_type:
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest", "json patch body must be a list")
            new = json_patch(current.obj, body)
            self._check_rv(new, current)
        else:
            # merge-patch, strategic-merge-patch and apply are all applied as RFC 7386 merges
            # (lists replaced whole): enough for the objects speakerd writes.
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "patch body must be an object")
            self._check_rv(body, current)
            new = merge_patch(current.obj, body)
        return self._commit(info, ns, current, new, subresource)

    def delete(self, info: ResourceInfo, ns: str, name: str, body: dict | None = None) -> Entry:
        self.requests["delete"] += 1
        current = self.get(info, ns, name)
        pre = (body or {}).get("preconditions") or {}
        if pre.get("resourceVersion") and pre["resourceVersion"] != current.obj["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "precondition failed: resourceVersion does not match")
        if pre.get("uid") and pre["uid"] != current.obj["metadata"].get("uid"):
            raise ApiError(409, "Conflict", "precondition failed: uid does not match")
        key = (ns, name)
        if current.obj["metadata"].get("finalizers"):
            if current.obj["metadata"].get("deletionTimestamp"):
                return current
            new = _copy(current.obj)
            new["metadata"]["deletionTimestamp"] = self._clock()
            entry = self._store(info, key, new)
            self._emit(info, ns, "MODIFIED", entry, current.obj)
            return entry
        return self._remove(info, ns, key, current.obj)

    def _remove(self, info: ResourceInfo, ns: str, key: Key, last: dict) -> Entry:
        self.objects[info.storage].pop(key, None)
        self.rv += 1
        obj = _copy(last)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        entry = Entry(obj, orjson.dumps(obj), obj.get("apiVersion", info.api_version))
        self._emit(info, ns, "DELETED", entry, last)
        return entry

    # -- state files -----------------------------------------------------------------------------

    def dump(self) -> bytes:
        items = [{"storage": s, "object": e.obj} for s, b in self.objects.items() for e in b.values()]
        return orjson.dumps({"resourceVersion": self.rv, "objects": items})

    def restore(self, data: bytes, lookup: Callable[[str], ResourceInfo | None]) -> int:
        doc = orjson.loads(data)
        n = 0
        for item in doc.get("objects", []):
            info = lookup(item["storage"])
            if info is not None:
                self.load(info, item["object"])
                n += 1
        self.rv = max(self.rv, int(doc.get("resourceVersion", 0)))
        self.compacted_rv = self.rv
        return n


def entries_json(entries: Iterable[Entry], info: ResourceInfo) -> list[bytes]:
    return [e.raw if e.api_version == info.api_version else convert(e, info) for e in entries]
