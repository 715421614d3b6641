"""File mode: manifest files -> store events; a changed file = the diff of its objects.

:meth:`FileSource.read` reads every configured file (a directory: its ``*.yaml``,
``*.yml`` and ``*.json``, sorted, not recursive), cuts each into units (one per
document or List item, ``config.parse``) and keeps, per file, the digest of each
unit's bytes with the identity of the objects it held.  Only units whose bytes
changed are parsed; objects of units that are gone become DELETED events, objects
of new units ADDED/MODIFIED.  Nothing of a document is kept but that digest and
(kind, apiVersion, namespace, name).

Objects of kinds speakerd does not use are dropped here, before any validation.
Events come in batches (:meth:`FileSource.batches`), parsed as they are asked for,
so only one batch of raw objects exists at a time.

``read`` does blocking I/O and parsing: the daemon runs it in a worker thread
(each unit is parsed by one short call, so the event loop gets the interpreter
back between units). :class:`FileWatcher` watches the files with inotify
(watchfiles) and calls back once per burst of changes.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..config.common import Issues
from ..config.model import ConfigIssue, Source
from ..config.parse import EXTENSIONS, ParseError, Unit, parse_unit, split_units
from ..store import ADDED, DELETED, Event
from ..store.validate import identify

log = logging.getLogger("speakerd")

_intern = sys.intern
Stub = tuple[str, str, str, str]  # (kind, apiVersion, namespace, name)


@dataclass(slots=True)
class _Unit:
    stubs: tuple[Stub, ...]
    issues: tuple[ConfigIssue, ...]
    dup: bool = False  # held an object already defined earlier in the file
    skipped: tuple[str, ...] = ()  # "Kind (apiVersion)" of objects of kinds speakerd does not use


@dataclass(slots=True)
class _File:
    units: dict[int, _Unit] = field(default_factory=dict)  # unit digest -> what it held
    issues: tuple[ConfigIssue, ...] = ()  # issues of the file itself (cannot read it)
    stat: tuple = ()  # (mtime_ns, size, inode, ctime_ns) when read: the same again = not read again


def expand_paths(paths: list[str]) -> tuple[list[str], list[ConfigIssue]]:
    files: list[str] = []
    issues: list[ConfigIssue] = []
    for p in paths:
        if os.path.isdir(p):
            try:
                listed = os.listdir(p)
            except OSError as e:  # e.g. a directory mounted for another user
                issues.append(ConfigIssue(p, "", "", f"cannot read the directory: {e.strerror}"))
                continue
            names = sorted(n for n in listed if n.endswith(EXTENSIONS) and os.path.isfile(os.path.join(p, n)))
            if not names:
                issues.append(ConfigIssue(p, "", "", "directory has no .yaml, .yml or .json files", "warning"))
            files.extend(os.path.join(p, n) for n in names)
        elif os.path.isfile(p):
            files.append(p)
        else:
            issues.append(ConfigIssue(p, "", "", "no such file or directory"))
    return files, issues


def _stub_event(stub: Stub, source: str) -> Event:
    kind, api, ns, name = stub
    meta = {"name": name, "namespace": ns} if ns else {"name": name}
    return Event(DELETED, {"kind": kind, "apiVersion": api, "metadata": meta}, source)


class FileSource:
    """Files -> events, remembering per file only unit digests and object identities."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = list(paths)
        self._files: dict[str, _File] = {}
        self.path_issues: tuple[ConfigIssue, ...] = ()
        self.units_parsed = 0  # units parsed by the last read (the rest were unchanged)

    @property
    def files(self) -> list[str]:
        """The files last read."""
        return list(self._files)

    def issues(self) -> list[ConfigIssue]:
        """Current read/parse/identity issues of every file."""
        out = list(self.path_issues)
        for path, f in self._files.items():
            out.extend(f.issues)
            skipped: dict[str, int] = {}
            for u in f.units.values():
                out.extend(u.issues)
                for k in u.skipped:
                    skipped[k] = skipped.get(k, 0) + 1
            for k, n in skipped.items():
                out.append(ConfigIssue(path, "", "", f"{n} object(s) of kind {k}: not used by speakerd; skipped", "info"))
        return out

    def read(self) -> list[Event]:
        """Every event taking the store from the files as last read to the files now."""
        return [e for batch in self.batches() for e in batch]

    def batches(self, limit: int = 2000) -> Iterator[list[Event]]:
        """The same events in batches of about ``limit``, parsed as they are asked for, so
        only one batch of raw objects exists at a time. Per file: its new objects, then the
        objects of its vanished units (an object edited in place is one ADDED, never a
        DELETED and an ADDED)."""
        files, path_issues = expand_paths(self.paths)
        self.path_issues = tuple(path_issues)
        self.units_parsed = 0
        gone_events: list[Event] = []
        for gone in self._files.keys() - set(files):
            for u in self._files.pop(gone).units.values():
                gone_events.extend(_stub_event(s, gone) for s in u.stubs)
        if gone_events:
            yield gone_events
        for path in files:
            yield from self._read_file(path, limit)

    def _read_file(self, path: str, limit: int) -> Iterator[list[Event]]:
        old = self._files.get(path) or _File()
        new = _File()
        try:
            st = os.stat(path)  # follows symlinks: a ConfigMap's ..data swap changes the target
            new.stat = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
            if old.stat and new.stat == old.stat and not old.issues:
                return  # not touched since it was read: nothing changed in it
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            new.units = old.units  # keep what it held: a file that cannot be read now changes nothing
            new.issues = (ConfigIssue(path, "", "", f"cannot read: {exc}"),)
            self._files[path] = new
            return
        json = path.endswith(".json")
        try:
            units = split_units(data, json)
        except ParseError as exc:
            new.units = old.units
            new.issues = (ConfigIssue(path, "", "", f"JSON syntax error: {exc}"),)
            self._files[path] = new
            return
        del data
        kept: set[tuple[str, str, str]] = set()
        batch: list[Event] = []
        for i, unit in enumerate(units):
            units[i] = None  # type: ignore[call-overload]  # its bytes go as soon as it is read
            digest = unit.digest
            known = old.units.get(digest)
            if known is not None and digest not in new.units:
                ids = [(s[0], s[2], s[3]) for s in known.stubs]
                if kept.isdisjoint(ids):
                    new.units[digest] = known
                    kept.update(ids)
                    continue
            got = self._parse(unit, path, batch, kept)
            # a unit that held a duplicate is parsed again next time (the first may be gone by then)
            new.units[digest if digest not in new.units and not got.dup else ("dup", digest, len(new.units))] = got
            if len(batch) >= limit:
                yield batch
                batch = []
        for digest, u in old.units.items():
            if digest not in new.units:
                batch.extend(_stub_event(s, path) for s in u.stubs if (s[0], s[2], s[3]) not in kept)
        self._files[path] = new
        if batch:
            yield batch

    def _parse(self, unit: Unit, path: str, out: list[Event], kept: set[tuple[str, str, str]]) -> _Unit:
        self.units_parsed += 1
        try:
            objs = parse_unit(unit)
        except ParseError as exc:
            return _Unit((), (ConfigIssue(path, "", "", f"{'JSON' if unit.json else 'YAML'} syntax error: {exc}"),))
        except UnicodeDecodeError as exc:
            return _Unit((), (ConfigIssue(path, "", "", f"cannot read: {exc}"),))
        issues = Issues()
        stubs: list[Stub] = []
        dup = False
        skipped: list[str] = []
        for obj in objs:
            before = len(issues.items)
            ident = identify(obj, path, issues)
            if ident is None:  # not used by speakerd, or malformed (an issue says so)
                if len(issues.items) == before and type(obj) is dict:
                    skipped.append(f"{obj.get('kind')} ({obj.get('apiVersion')})")
                continue
            kind, ns, name = ident
            if kind == "Service":
                ns = ns or "default"
            if (kind, ns, name) in kept:
                dup = True
                what = f"Service {ns}/{name}" if kind == "Service" else f"{kind} name {name!r}"
                issues.error(Source(path, kind, f"{ns}/{name}" if kind == "Service" else name, ns), "metadata.name",
                             f"duplicate {what} (first defined in {path})")
                continue
            kept.add((kind, ns, name))
            stubs.append((_intern(kind), _intern(obj["apiVersion"]), _intern(ns), name))
            out.append(Event(ADDED, obj, path))
        return _Unit(tuple(stubs), tuple(issues.items), dup, tuple(skipped))


class FileWatcher:
    """inotify on the configured paths (their directories, so editors' rename-over and
    ConfigMap ``..data`` symlink swaps are seen); ``on_change()`` once per burst."""

    def __init__(self, paths: list[str], on_change: Callable[[], Any], debounce_ms: int = 50) -> None:
        self.paths = list(paths)
        self.on_change = on_change
        self.debounce_ms = debounce_ms
        self._stop = asyncio.Event()

    def _targets(self) -> list[str]:
        out = set()
        for p in self.paths:
            ap = os.path.abspath(p)
            out.add(ap if os.path.isdir(ap) else os.path.dirname(ap))
        return sorted(out)

    def _wanted(self, path: str) -> bool:
        for p in self.paths:
            ap = os.path.abspath(p)
            if os.path.isdir(ap):
                if os.path.dirname(path) == ap or os.path.basename(path).startswith(".."):
                    return True
            elif path == ap or os.path.dirname(path) == os.path.dirname(ap) and os.path.basename(path).startswith(".."):
                return True
        return False

    async def run(self) -> None:
        from watchfiles import awatch
        async for changes in awatch(*self._targets(), stop_event=self._stop, debounce=self.debounce_ms,
                                    step=10, recursive=False, rust_timeout=0):
            if any(self._wanted(p) for _, p in changes):
                self.on_change()

    def stop(self) -> None:
        self._stop.set()
