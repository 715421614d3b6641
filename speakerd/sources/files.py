"""File mode: manifest files -> store events; a changed file = the diff of its objects.

:meth:`FileSource.read` reads every configured file (a directory: its ``*.yaml``,
``*.yml`` and ``*.json``, sorted, not recursive), cuts each into units (one per
document or List item, ``config.parse``) and keeps, per file, for each unit in file
order where it lies (offsets), the digest of its bytes and the identity of the objects
it held; and a checksum (XXH3-64) of each group of about 64 consecutive units' bytes (the first
and the last unit each a group of its own).  Nothing of a document is kept but that.

A file read again is compared group by group: from its start at the same offsets,
from its end at offsets moved by the change of the file's length.  When the changed
bytes lie between two unchanged units of the same List (or both top-level
documents), only that stretch is cut again (``config.parse.recut``) — the cost of
a change is one pass of XXH3 over the file (C, ~10 GB/s) plus the work on the
changed units, not a cut of the whole file.  Otherwise (the first or last unit
changed, a List's envelope, a duplicate object...) the whole file is cut again as
on the first read.  Either way only units whose bytes changed are parsed; objects of
units that are gone become DELETED events, objects of new units ADDED.

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
import errno
import fcntl
import heapq
import logging
import mmap
import os
import signal
import sys
import time
from array import array
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import xxhash

from ..config.common import Issues
from ..config.model import ConfigIssue, Source
from ..config.parse import BOM, EXTENSIONS, ParseError, Unit, cut, parse_unit, read_normalised, recut
from ..store import ADDED, DELETED, Event
from ..store.validate import identify
from .records import EMPTY, Heads, Idents, Info, Stub, UnitInfo, ident as _ident, stubs as _stubs

log = logging.getLogger("speakerd")

_intern = sys.intern
_sum = xxhash.xxh3_64_intdigest
GROUP = 64  # units per checksum group


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _drop_unread(obj: dict) -> dict:
    """A parsed object without what no consumer reads and kubectl-applied objects carry
    (managedFields, the last-applied copy of the object: about half of it), as the API
    watches drop them (``kube.diff.slim``): freed at once, not with the whole batch,
    they leave the long-lived objects less scattered (~300 B of RSS per Service at 10k)."""
    md = obj.get("metadata")
    if type(md) is dict:
        md.pop("managedFields", None)
        ann = md.get("annotations")
        if type(ann) is dict and ann.pop(LAST_APPLIED, None) is not None and not ann:
            del md["annotations"]
    return obj


RUN = 8192  # ints one sort call orders (~2 ms)


def _sorted_ids(hashes) -> array:
    """``hashes`` (ints) sorted into an array: runs of ``RUN`` sorted by one call each,
    merged by heapq.merge (Python, so the interpreter switches threads on the way): one sort
    of 100k hashes holds it for 40-60 ms, which the event loop's thread would wait."""
    hashes = list(hashes)
    if len(hashes) <= RUN:
        return array("q", sorted(hashes))
    runs = [sorted(hashes[i:i + RUN]) for i in range(0, len(hashes), RUN)]
    return array("q", heapq.merge(*runs))


def _holds(ids: array, h: int) -> bool:
    i = bisect_left(ids, h)
    return i < len(ids) and ids[i] == h


@dataclass(slots=True)
class _File:
    issues: tuple[ConfigIssue, ...] = ()  # issues of the file itself (cannot read it)
    stat: tuple = ()  # (mtime_ns, size, inode, ctime_ns) when read: the same again = not read again
    size: int = 0  # of the normalised bytes
    # per unit, in file order: where it starts (from its group's first unit), its length, ...
    rel: array = field(default_factory=lambda: array("q"))
    lens: array = field(default_factory=lambda: array("q"))
    digests: array = field(default_factory=lambda: array("q"))  # ... the digest of its bytes
    infos: list = field(default_factory=list)  # ... what it held (records.Heads.pack: a name or a UnitInfo)
    heads: array = field(default_factory=lambda: array("I"))  # ... and for a name, its Heads index
    seqs: list = field(default_factory=list)  # ... the List it is an item of (config.parse.Seq) or None
    group_units: array = field(default_factory=lambda: array("q"))  # first unit of each group
    group_offs: array = field(default_factory=lambda: array("q"))  # where that unit starts
    group_sums: array = field(default_factory=lambda: array("Q"))  # XXH3-64 of each group's bytes
    ids: array = field(default_factory=lambda: array("q"))  # hash of each (kind, namespace, name) held, sorted
    dup: bool = False  # some object is defined twice: always cut whole (the first one wins)
    unit_issues: tuple[ConfigIssue, ...] | None = ()  # of its units (None: to be collected again)
    bom: int = 0  # the length of the byte-order mark the file starts with (left out of the text)

    def group_span(self, g: int) -> tuple[int, int]:
        """The bytes group ``g`` covers: from its first unit (0: the start) to the next group's."""
        go = self.group_offs
        return (0 if g == 0 else go[g]), (go[g + 1] if g + 1 < len(go) else self.size)

    def start(self, i: int) -> int:
        return self.group_offs[bisect_right(self.group_units, i) - 1] + self.rel[i]

    def regroup(self, data, starts: array) -> None:
        """Every group and its checksum, from the units' offsets ``starts``."""
        n = len(self.infos)
        bounds = [0] + list(range(1, n - 1, GROUP)) + ([n - 1] if n > 1 else []) if n else []
        self.group_units = array("q", bounds)
        self.group_offs = array("q", [starts[u] for u in bounds])
        rel = self.rel = array("q", starts)
        for g, u in enumerate(bounds):
            off = starts[u]
            for i in range(u, bounds[g + 1] if g + 1 < len(bounds) else n):
                rel[i] -= off
        self.group_sums = array("Q")
        view = memoryview(data)
        for g in range(len(bounds)):
            lo, hi = self.group_span(g)
            self.group_sums.append(_sum(view[lo:hi]))


MAP_AT_LEAST = 4 << 20  # bytes: a smaller file is read with pread (mapping it costs more than it saves)


def map_under_lease(fd: int, size: int) -> mmap.mmap | None:
    """The open file ``fd`` of ``size`` bytes mapped read-only, under a read lease; None when
    that cannot be had safely. Summing a mapped file costs no copy into a buffer: a pass over
    500 MB of page cache takes ~25 ms instead of ~75-100 ms with pread. A mapped file cut
    short by a writer kills the process (SIGBUS) — the lease is what makes it safe: while we
    hold it, any other open for writing and any truncate waits until we give it back (it
    cannot be had at all while someone has the file open for writing). Only when the process
    ignores SIGIO (the lease-break signal; ``speakerd run`` does): otherwise a writer's open
    would kill it."""
    if size < MAP_AT_LEAST or signal.getsignal(signal.SIGIO) is not signal.SIG_IGN:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError:  # open for writing somewhere, not our file, a filesystem without leases
        return None
    try:
        if os.fstat(fd).st_size == size:  # cut short before the lease: read with pread
            return mmap.mmap(fd, size, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        pass
    release_lease(fd)
    return None


def open_for_writing(fd: int) -> bool | None:
    """Whether some process has the file ``fd`` (open here read-only) open for writing: a read
    lease cannot be had then. None when that cannot be known (SIGIO not ignored, not our file
    without CAP_LEASE, a filesystem without leases)."""
    if signal.getsignal(signal.SIGIO) is not signal.SIG_IGN:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return True if exc.errno == errno.EAGAIN else None
    release_lease(fd)
    return False


def release_lease(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    except OSError:
        pass


class _Reader:
    """Stretches of an open file, in the cutter's coordinates (``config.parse.normalise``:
    YAML with a "\\n" in front, no BOM): summed from a map of the file under a read lease
    (:func:`map_under_lease`) or read with pread into one buffer used again and again;
    either way comparing a file of 100k Services costs no copy of it in memory.
    :meth:`close` gives the map and the lease back."""

    CHUNK = 1 << 20

    def __init__(self, fd: int, file_size: int, json: bool, bom: int, buf: bytearray) -> None:
        self.fd, self.json, self.buf = fd, json, buf
        self.lead = 0 if json else 1
        head = os.pread(fd, 3, 0)
        self.bom = len(BOM) if head == BOM else 0
        self.skip = self.bom - self.lead  # file offset = position + skip
        self.size = file_size - self.bom + self.lead
        self.map = map_under_lease(fd, file_size)
        self.mapped = memoryview(self.map) if self.map is not None else None

    def close(self) -> None:
        if self.map is not None:
            self.mapped.release()  # type: ignore[union-attr]
            self.map.close()
            self.map = self.mapped = None
            release_lease(self.fd)

    def sum(self, lo: int, hi: int) -> int:
        """XXH3-64 of the text's bytes lo..hi."""
        if self.mapped is not None:
            if lo >= self.lead:
                return _sum(self.mapped[lo + self.skip:hi + self.skip])
            h = xxhash.xxh3_64(b"\n")
            h.update(self.mapped[self.bom:hi + self.skip])
            return h.intdigest()
        view = memoryview(self.buf)
        pos, end = lo + self.skip, hi + self.skip
        h = None
        if lo < self.lead:
            h = xxhash.xxh3_64(b"\n")
            pos += 1
        while pos < end:
            got = os.preadv(self.fd, [view[:min(end - pos, len(view))]], pos)
            if got <= 0:
                raise OSError(f"file shorter than its stat ({pos} of {end} bytes)")
            pos += got
            if h is None and pos >= end:
                return _sum(view[:got])
            if h is None:
                h = xxhash.xxh3_64()
            h.update(view[:got])
        return h.intdigest() if h is not None else _sum(b"")

    def read(self, lo: int, hi: int) -> bytes:
        head = b"\n" if lo < self.lead else b""
        lo = max(lo, self.lead)
        out = head + os.pread(self.fd, hi - lo, lo + self.skip)
        if len(out) != hi - lo + len(head):
            raise OSError("file shorter than its stat")
        return out

    def last_byte(self) -> int:
        return self.read(self.size - 1, self.size)[0]


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
    """Files -> events, remembering per file only unit offsets, digests and object identities."""

    def __init__(self, paths: list[str], hold_open: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``hold_open``: keep each large file open from one read to the next (:meth:`_hold`;
        the daemon does, for as long as it runs)."""
        self.paths = list(paths)
        self.hold_open = hold_open
        self._held: dict[str, Any] = {}  # path -> the version last read, open
        self._closer = None
        self._files: dict[str, _File] = {}
        self.path_issues: tuple[ConfigIssue, ...] = ()
        self.units_parsed = 0  # units parsed by the last read (the rest were unchanged)
        self.recuts = 0  # files of the last read cut again only where they changed
        self._buffer: bytearray | None = None  # for reading a changed file's stretches
        self.busy: list[str] = []  # files the last read left as they were: a writer has them open
        self._busy_since: dict[str, float] = {}  # path -> when a read first found it so (monotonic)
        self._clock = clock
        self._heads = Heads()  # (kind, apiVersion, namespace) of the units' objects

    def _info(self, f: _File, i: int) -> Info:
        """What unit ``i`` of ``f`` held."""
        return self._heads.unpack(f.infos[i], f.heads[i])

    @property
    def files(self) -> list[str]:
        """The files last read."""
        return list(self._files)

    def issues(self) -> list[ConfigIssue]:
        """Current read/parse/identity issues of every file."""
        out = list(self.path_issues)
        for path, f in self._files.items():
            out.extend(f.issues)
            if f.unit_issues is None:
                f.unit_issues = self._unit_issues(path, f)
            out.extend(f.unit_issues)
        return out

    @staticmethod
    def _unit_issues(path: str, f: _File) -> tuple[ConfigIssue, ...]:
        out: list[ConfigIssue] = []
        skipped: dict[str, int] = {}
        for u in f.infos:
            if type(u) is str:
                continue
            out.extend(u.issues)
            for k in u.skipped:
                skipped[k] = skipped.get(k, 0) + 1
        for k, n in skipped.items():
            out.append(ConfigIssue(path, "", "", f"{n} object(s) of kind {k}: not used by speakerd; skipped", "info"))
        return tuple(out)

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
        self.recuts = 0
        self.busy = []
        gone_events: list[Event] = []
        for gone in self._held.keys() - set(files):
            self._close_later(self._held.pop(gone))
        for gone in self._files.keys() - set(files):
            f = self._files.pop(gone)
            for i in range(len(f.infos)):
                gone_events.extend(_stub_event(s, gone) for s in _stubs(self._info(f, i)))
        if gone_events:
            yield gone_events
        for path in files:
            yield from self._read_file(path, limit)

    def _read_file(self, path: str, limit: int) -> Iterator[list[Event]]:
        old = self._files.get(path) or _File()
        json = path.endswith(".json")
        events = None
        fh = None
        try:
            fh = open(path, "rb")
            st = os.fstat(fh.fileno())  # the file opened: a ConfigMap's ..data swap changes the target
            stat = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
            if old.stat and stat == old.stat and not old.issues:
                return  # not touched since it was read: nothing changed in it
            if old.stat and self._being_written(path, fh.fileno()):
                return  # keep what it held until the writer is done (see _being_written)
            if old.group_units and not old.dup and not old.issues:
                if self._buffer is None:
                    self._buffer = bytearray(_Reader.CHUNK)
                rd = _Reader(fh.fileno(), st.st_size, json, old.bom, self._buffer)
                try:
                    events = self._recut(path, old, rd)
                finally:
                    rd.close()
            if events is None:
                fh.seek(0)
                data = read_normalised(fh, st.st_size, json)
            if self.hold_open and st.st_size >= MAP_AT_LEAST:
                self._hold(path, fh)
                fh = None
        except OSError as exc:
            # keep what it held: a file that cannot be read now changes nothing
            self._files[path] = replace(old, issues=(ConfigIssue(path, "", "", f"cannot read: {exc}"),),
                                        unit_issues=None)
            return
        finally:
            if fh is not None:
                fh.close()
        if events is not None:
            old.stat = stat
            self.recuts += 1
            for i in range(0, len(events), limit):
                yield events[i:i + limit]
            return
        yield from self._read_whole(path, old, data, json, stat, limit)

    def _hold(self, path: str, fh) -> None:
        """Keep the version of ``path`` just read open; the one held before is closed by
        another thread. While a file is open here, a writer's rename over it does not drop
        its pages (250-500 MB at 100k Services: ~120 ms of the writer's kernel time, after
        the new name is visible, competing with this read for the page cache); they are
        dropped when it is closed, after the read, off the event loop's thread."""
        old = self._held.pop(path, None)
        self._held[path] = fh
        if old is not None:
            self._close_later(old)

    def _close_later(self, fh) -> None:
        if self._closer is None:
            from concurrent.futures import ThreadPoolExecutor
            self._closer = ThreadPoolExecutor(1, thread_name_prefix="speakerd-close")
        self._closer.submit(fh.close)

    def close(self) -> None:
        """Close the files held open (see :meth:`_hold`)."""
        for fh in self._held.values():
            fh.close()
        self._held.clear()
        if self._closer is not None:
            self._closer.shutdown(wait=True)
            self._closer = None

    BUSY_FOR = 30.0  # s a file is left alone while a writer has it open

    def _being_written(self, path: str, fd: int) -> bool:
        """A file read before that some process has open for writing (``kubectl get ... >
        file`` writes it in place, in pieces, as the API server answers): read now, its cut-off
        end would withdraw every Service in it until the next write. It is left as it was and
        named in ``busy`` (the daemon reads again shortly) — for up to ``BUSY_FOR`` seconds
        (each piece written sets off another read meanwhile); then it is read anyway (a
        process that keeps it open for good)."""
        if not open_for_writing(fd):
            self._busy_since.pop(path, None)
            return False
        now = self._clock()
        since = self._busy_since.setdefault(path, now)
        if now - since > self.BUSY_FOR:
            log.warning("%s: still open for writing after %.0f s; reading it anyway", path, now - since)
            self._busy_since.pop(path, None)
            return False
        self.busy.append(path)
        return True

    def _read_whole(self, path: str, old: _File, data, json: bool, stat: tuple, limit: int) -> Iterator[list[Event]]:
        """Cut the whole file; parse the units whose bytes are not those of an old one."""
        bom = stat[1] - len(data) + (0 if json else 1)  # the length of a BOM left out
        try:
            units = cut(data, json)
        except ParseError as exc:
            self._files[path] = replace(old, issues=(ConfigIssue(path, "", "", f"JSON syntax error: {exc}"),),
                                        unit_issues=None)
            return
        known: dict[int, int] = {}  # digest -> the old unit
        for j, (d, info) in enumerate(zip(old.digests, old.infos)):
            if type(info) is str or not info.dup:
                known.setdefault(d, j)
        new = _File(stat=stat, size=len(data), unit_issues=None, bom=bom)
        starts, lens, digests, infos, heads, seqs = array("q"), new.lens, new.digests, new.infos, new.heads, new.seqs
        pack = self._heads.pack
        kept = Idents()
        reused: set[int] = set()  # the old units taken over
        batch: list[Event] = []
        for i, unit in enumerate(units):
            units[i] = None  # type: ignore[call-overload]  # its bytes go as soon as it is read
            digest = unit.digest
            j = known.pop(digest, None)
            got = None
            if j is not None:
                got = self._info(old, j)
                held = _stubs(got)
                if not any(map(kept.has_stub, held)):
                    for s in held:
                        kept.add_stub(s)
                    reused.add(j)
                else:
                    got = None
            if got is None:
                got = self._parse(unit, path, batch, kept)
                if type(got) is not tuple and got.dup:
                    new.dup = True  # a unit that held a duplicate is parsed again next time
            starts.append(unit.start)
            lens.append(len(unit.data))
            digests.append(digest)
            value, head = pack(got)
            infos.append(value)
            heads.append(head)
            seqs.append(unit.seq)
            if len(batch) >= limit:
                yield batch
                batch = []
        for j in range(len(old.infos)):
            if j not in reused:
                batch.extend(_stub_event(s, path) for s in _stubs(self._info(old, j)) if not kept.has_stub(s))
        new.ids = _sorted_ids(kept.hashes())
        new.regroup(data, starts)
        self._files[path] = new
        if batch:
            yield batch

    def _recut(self, path: str, f: _File, rd: "_Reader") -> list[Event] | None:
        """The events of a file whose changed bytes lie between two unchanged units of the
        same List (or two top-level documents): only that stretch is read, cut and its new
        units parsed; ``f`` is updated. None when the whole file has to be cut again."""
        if rd.bom != f.bom:
            return None
        size, nsize = f.size, rd.size
        delta = nsize - size
        gu, gs, ng = f.group_units, f.group_sums, len(f.group_units)
        g1 = 0  # the first group whose bytes changed
        while g1 < ng:
            lo, hi = f.group_span(g1)
            if hi > nsize or rd.sum(lo, hi) != gs[g1]:
                break
            g1 += 1
        if g1 == ng and delta == 0:
            return []  # the same bytes
        if g1 == 0:
            return None  # the first unit, or what is before it, changed
        g2 = ng  # the first group of the unchanged end
        while g2 - 1 > g1:
            lo, hi = f.group_span(g2 - 1)
            if lo + delta < 0 or rd.sum(lo + delta, hi + delta) != gs[g2 - 1]:
                break
            g2 -= 1
        n = len(f.infos)
        p = gu[g1] if g1 < ng else n  # units p..q-1 are in the changed stretch
        q = gu[g2] if g2 < ng else n
        json = rd.json
        if q < n:
            seq = f.seqs[q]
            b = f.start(q) + delta
        else:  # to the end: only top-level documents may follow there
            seq = None
            b = nsize - 1 if not json and nsize > 1 and rd.last_byte() == 10 else nsize
        if f.seqs[p - 1] is not seq:
            return None
        a = f.start(p - 1) + f.lens[p - 1]
        if b < a:
            return None
        origin = max(a - 1, 0)
        window = rd.read(origin, min(b + (seq.indent if seq is not None else 0) + 8, nsize))
        units = recut(window, json, seq, a, b, q == n, origin)
        if units is None:
            return None
        # what the stretch held before; which of its units came back unchanged
        old_infos = [self._info(f, i) for i in range(p, q)]
        known: dict[int, int] = {}  # digest -> index in old_infos
        for j, d in enumerate(f.digests[p:q]):
            known.setdefault(d, j)
        gone_ids = {_ident(s) for u in old_infos for s in _stubs(u)}
        kept = Idents()
        reused: set[int] = set()
        events: list[Event] = []
        infos: list[Info] = []
        digests = array("q")
        for unit in units:
            digest = unit.digest
            j = known.pop(digest, None)
            if j is not None:
                got = old_infos[j]
                held = _stubs(got)
                if any(map(kept.has_stub, held)):
                    return None
                for s in held:
                    kept.add_stub(s)
                reused.add(j)
            else:
                try:
                    got = self._parse(unit, path, events, kept, strict=True)
                except (ParseError, UnicodeDecodeError):
                    return None  # its message names a line: counted by a whole read
                if type(got) is not tuple and got.dup:
                    return None
            if any(_holds(f.ids, h) and h not in gone_ids for h in map(_ident, _stubs(got))):
                return None  # an object also defined elsewhere in the file: the first one wins
            infos.append(got)
            digests.append(digest)
        for j, u in enumerate(old_infos):
            if j not in reused:
                events.extend(_stub_event(s, path) for s in _stubs(u) if not kept.has_stub(s))
        # the file's records with the stretch replaced; the groups before and after it kept,
        # group g1-1 (its end may have moved) and the stretch's new units summed again
        m = len(units)
        shift = m - (q - p)
        head = g1 - 1
        bounds = [gu[head]] + list(range(p, p + m, GROUP)) if head else [0] + list(range(1, p + m, GROUP))
        if q == n and p + m > 1 and bounds[-1] != p + m - 1:
            bounds.append(p + m - 1)  # the last unit is a group of its own
        offs = [f.group_offs[head]] + [units[u - p].start for u in bounds[1:]]
        # the stretch's units from their groups' first units
        rel = array("q", [u.start - offs[bisect_right(bounds, p + j) - 1] for j, u in enumerate(units)])
        group_units = gu[:head] + array("q", bounds) + array("q", [u + shift for u in gu[g2:]])
        group_offs = f.group_offs[:head] + array("q", offs) + array("q", [o + delta for o in f.group_offs[g2:]])
        sums = array("Q")
        for g in range(head, head + len(bounds)):
            lo = 0 if g == 0 else group_offs[g]
            hi = group_offs[g + 1] if g + 1 < len(group_offs) else nsize
            sums.append(rd.sum(lo, hi))
        if any(type(u) is not tuple and (u.issues or u.skipped) for u in (*old_infos, *infos)):
            f.unit_issues = None
        # in place: a stretch of as many units as before costs no copy of the file's 100k records
        f.rel[p:q] = rel
        f.lens[p:q] = array("q", [len(u.data) for u in units])
        f.digests[p:q] = digests
        packed = [self._heads.pack(u) for u in infos]
        f.infos[p:q] = [v for v, _ in packed]
        f.heads[p:q] = array("I", [h for _, h in packed])
        f.seqs[p:q] = [u.seq for u in units]
        ids = f.ids
        kept_ids = set(kept.hashes())
        for h in gone_ids - kept_ids:
            i = bisect_left(ids, h)
            if i < len(ids) and ids[i] == h:
                del ids[i]
        for h in kept_ids - gone_ids:
            insort(ids, h)
        f.size = nsize
        f.group_units, f.group_offs = group_units, group_offs
        f.group_sums = gs[:head] + sums + gs[g2:]
        return events

    def _parse(self, unit: Unit, path: str, out: list[Event], kept: Idents, strict: bool = False) -> Info:
        """What ``unit`` holds; its objects' ADDED events go to ``out``. ``strict``: a unit
        that does not parse raises (instead of becoming an issue)."""
        self.units_parsed += 1
        try:
            objs = parse_unit(unit)
        except ParseError as exc:
            if strict:
                raise
            return UnitInfo((), (ConfigIssue(path, "", "", f"{'JSON' if unit.json else 'YAML'} syntax error: {exc}"),))
        except UnicodeDecodeError as exc:
            if strict:
                raise
            return UnitInfo((), (ConfigIssue(path, "", "", f"cannot read: {exc}"),))
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
            if kept.has(kind, ns, name):
                dup = True
                what = f"Service {ns}/{name}" if kind == "Service" else f"{kind} name {name!r}"
                issues.error(Source(path, kind, f"{ns}/{name}" if kind == "Service" else name, ns), "metadata.name",
                             f"duplicate {what} (first defined in {path})")
                continue
            kept.add(kind, ns, name)
            stubs.append((_intern(kind), _intern(obj["apiVersion"]), _intern(ns), name))
            out.append(Event(ADDED, _drop_unread(obj), path))
        if len(stubs) == 1 and not issues.items and not dup and not skipped:
            return stubs[0]
        if not stubs and not issues.items and not dup and not skipped:
            return EMPTY
        return UnitInfo(tuple(stubs), tuple(issues.items), dup, tuple(skipped))

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
