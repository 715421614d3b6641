"""Manifest bytes -> Kubernetes objects (plain dicts), one *unit* at a time.

A file is cut into units before anything is parsed: each YAML document
(``---`` lines) is a unit, and so is each item of a ``kind: List`` or typed
list (``ServiceList``...), YAML or JSON.  A unit is parsed on its own by a
maintained parser — yaml-rs (Rust) for YAML, orjson for JSON, msgspec to
find the items of a JSON list without building them — so

* a file of 100k Services never exists as one 100k-object tree (memory stays
  bounded by one unit, plus what the validators keep);
* each unit has a digest of its bytes: a changed file re-parses only the
  units whose bytes changed (``speakerd.sources.files``);
* a syntax error in one document loses that document, not the file.

YAML rules (those Kubernetes applies to manifests, sigs.k8s.io/yaml over
go-yaml v2), tested in tests/unit/test_config_parse.py:

* ``true``/``false`` (any case form) are booleans; so are the YAML 1.1 words
  ``yes/no/on/off/y/n`` when unquoted, and ``0755`` is octal 493 — a unit
  holding such a plain scalar is read by the YAML 1.1 loader (PyYAML with
  Kubernetes' resolver: no base-60 numbers, so ``64500:100`` stays a string);
  every other unit by yaml-rs, which gives the same values for everything
  else (kubectl output quotes all such strings, so it never takes this path);
* timestamps stay strings (``creationTimestamp``), as in the JSON the API
  server serves;
* a duplicate key in a mapping is an error (kubectl apply refuses it too);
* anchors and aliases work within a document;
* a document that is only comments, or empty, is no object.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
import orjson
import yaml
from xxhash import xxh3_64_intdigest

from .. import heap
from .model import ConfigIssue

heap.tune_parser_allocator()  # before yaml-rs starts its allocator
import yaml_rs  # noqa: E402

EXTENSIONS = (".yaml", ".yml", ".json")
BOM = b"\xef\xbb\xbf"


class ParseError(ValueError):
    """A unit that is not valid YAML/JSON; the message says where."""


@dataclass(frozen=True, slots=True, eq=False)
class Seq:
    """The items of one List, as cut: what cutting a stretch of its items again needs."""
    json: bool
    fill: tuple[tuple[str, Any], ...] = ()  # kind/apiVersion of a typed list, for items without them
    item: re.Pattern | None = None  # YAML: an item's first line (from the "\n" before it)
    stop: re.Pattern | None = None  # YAML: the first line after the sequence
    indent: int = 0  # YAML: the items' indentation


class Unit(NamedTuple):  # a tuple: one is made per document or item of every file read
    """One document or one list item: a read-only view of its bytes in the (normalised)
    file, where it starts there, and the List it is an item of (None: a document or a
    top-level JSON value)."""
    data: memoryview
    start: int
    json: bool
    seq: Seq | None = None
    origin: int = 0  # where the buffer ``data`` is a view of starts in the text (a window of it: recut)

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    @property
    def fill(self) -> tuple[tuple[str, Any], ...]:
        return self.seq.fill if self.seq is not None else ()

    @property
    def list_item(self) -> bool:  # YAML list item text ("- ..."): parses to a one-element sequence
        return self.seq is not None and not self.json

    @property
    def line(self) -> int:
        """The line (1-based) the unit starts on; counted only when a message needs it
        (0: not known, the unit was cut from a window of the text)."""
        base = self.data.obj
        if self.origin:
            return 0
        if self.json:
            return base.count(b"\n", 0, self.start) + 1
        # YAML text is normalised to start with "\n": line k starts after the k-th "\n";
        # a document's bytes start with the "\n" before its first line
        return base.count(b"\n", 0, self.start) + (base[self.start:self.start + 1] == b"\n")

    @property
    def digest(self) -> int:
        return hash((xxh3_64_intdigest(self.data), self.fill))


# --- YAML 1.1 scalars Kubernetes reads differently from YAML 1.2 ---------------------------

_WORD11 = rb"(?:[yYnN]|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|[-+]?0[0-7_]+)[ \t]*(?:[,\]}#\r\n]|$)"
# one pattern per way a plain scalar can start, each with a literal prefix the regex engine scans for fast
_YAML11 = tuple(re.compile(re.escape(p) + _WORD11) for p in (b": ", b"- ", b", ", b"[", b"{", b"\t"))


def _has_yaml11_scalar(data: bytes) -> bool:
    return any(r.search(data) for r in _YAML11)

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KubeLoader(_Base):  # type: ignore[misc, valid-type]
    """YAML 1.1 as go-yaml v2 resolves it: no base-60 numbers, y/n are booleans, no timestamps."""


KubeLoader.yaml_implicit_resolvers = {ch: [(t, r) for t, r in rs if t != "tag:yaml.org,2002:timestamp"]
                                      for ch, rs in _Base.yaml_implicit_resolvers.items()}
_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_BOOL = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
for _ch in list("-+0123456789.yYnNtTfFoO"):
    _lst = [(t, r) for t, r in KubeLoader.yaml_implicit_resolvers.get(_ch, [])
            if t not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
    if _ch in "-+0123456789":
        _lst.append(("tag:yaml.org,2002:int", _INT))
    if _ch in "-+0123456789.":
        _lst.append(("tag:yaml.org,2002:float", _FLOAT))
    if _ch in "yYnNtTfFoO":
        _lst.append(("tag:yaml.org,2002:bool", _BOOL))
    KubeLoader.yaml_implicit_resolvers[_ch] = _lst

_BOOLS = {"y": True, "yes": True, "true": True, "on": True, "n": False, "no": False, "false": False, "off": False}


def _kube_bool(loader, node):
    return _BOOLS[loader.construct_scalar(node).lower()]


def _kube_int(loader, node):
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    if text.startswith(("0b", "0x", "0o")):
        return sign * int(text, 0)
    if len(text) > 1 and text.startswith("0"):
        return sign * int(text, 8)
    return sign * int(text)


def _no_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate mapping key: {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


KubeLoader.add_constructor("tag:yaml.org,2002:bool", _kube_bool)
KubeLoader.add_constructor("tag:yaml.org,2002:int", _kube_int)
KubeLoader.construct_mapping = _no_duplicates  # type: ignore[method-assign]


def _yaml11(text: str) -> list[Any]:
    try:
        return [d for d in yaml.load_all(text, Loader=KubeLoader)]
    except yaml.YAMLError as exc:
        raise ParseError(" ".join(str(exc).split())) from None


def parse_yaml(data: bytes) -> list[Any]:
    """Every document of YAML text (None for an empty one)."""
    text = data.decode("utf-8")
    if _has_yaml11_scalar(data):
        return _yaml11(text)
    try:
        out = yaml_rs.loads(text, parse_datetime=False)
    except yaml_rs.YAMLDecodeError as exc:
        raise ParseError(" ".join(str(exc).split())) from None
    if type(out) is list and _several_documents(data):
        return out
    return [out]


def _several_documents(data: bytes) -> bool:
    """Whether text (which starts with "\\n") holds more than one document; a unit never does,
    a whole file read as one (it has %-directives) may."""
    marks = [m.start() for m in _DOC_MARK.finditer(data)]
    if not marks:
        return False
    before = [ln for ln in data[:marks[0]].splitlines() if ln.strip() and not ln.lstrip().startswith((b"#", b"%"))]
    return len(marks) >= 2 or bool(before)


# --- cutting a file into units --------------------------------------------------------------

# Line-start patterns begin with "\n" (a literal prefix the regex engine finds fast); every
# YAML text they search starts with "\n" (see normalise).
_DOC_MARK = re.compile(rb"\n---(?=[ \t\r\n]|$)")
_DIRECTIVE = re.compile(rb"\n%")
_ITEMS = re.compile(rb"\nitems:[ \t]*(?:#[^\r\n]*)?\r?\n")
_KIND = re.compile(rb"\nkind:[ \t]*[\"']?([A-Za-z0-9]*List)[\"']?[ \t]*(?:#[^\r\n]*)?\r?(?=\n|$)")
_FIRST_LINE = re.compile(rb"\n( *)(?=[^ \r\n#])")
_APIV = re.compile(rb"\napiVersion:[ \t]*[\"']?([A-Za-z0-9./-]+)[\"']?[ \t]*(?:#[^\r\n]*)?\r?(?=\n|$)")
_WS = re.compile(rb"[ \t\r\n]*")

# One regular-expression call holds the interpreter for as long as it scans: a search over a
# whole 250 MB List would keep the event loop's thread (keepalives, BFD) waiting for hundreds
# of ms while a worker thread cuts a file. The patterns above are *line patterns*: a match
# starts at a "\n" and looks at nothing past the next "\n" (a lookahead "\n|$" at most), so
# a long range is searched in windows of about SCAN bytes that each end just after a "\n";
# a match starting at that last "\n" is left to the next window, which starts there. A
# range of at most SCAN bytes is one call, as before.
SCAN = 1 << 20


def _windows(data, lo: int, hi: int):
    """(start, end) of each window of ``data[lo:hi]``; the next starts at the previous end - 1."""
    a = lo
    while True:
        if hi - a <= SCAN:
            yield a, hi
            return
        nl = data.find(b"\n", a + SCAN, hi)
        if nl < 0 or nl + 1 >= hi:
            yield a, hi
            return
        yield a, nl + 1
        a = nl


def _search(pattern: re.Pattern, data, lo: int, hi: int):
    """``pattern.search(data, lo, hi)`` for a line pattern, window by window."""
    for a, e in _windows(data, lo, hi):
        m = pattern.search(data, a, e)
        if m is not None and (e == hi or m.start() < e - 1):
            return m
    return None


def _starts(pattern: re.Pattern, data, lo: int, hi: int) -> list[int]:
    """Where each match of ``pattern.finditer(data, lo, hi)`` starts, window by window, for a
    line pattern that matches no "\n" but its first (so no match reaches into the next
    window: only one starting at a window's last "\n" is left to the next)."""
    out: list[int] = []
    for a, e in _windows(data, lo, hi):
        got = [m.start() for m in pattern.finditer(data, a, e)]
        if e != hi and got and got[-1] >= e - 1:
            got.pop()
        out += got
    return out
_COMMA = re.compile(rb"[ \t\r\n]*,[ \t\r\n]*")


def _lines_before(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos)


def normalise(data: bytes | bytearray, json: bool) -> bytes | bytearray:
    """A file's bytes as the cutter reads them: without a BOM; YAML with a "\n" in front
    (line 1 starts after it; so does every document)."""
    if json:
        return data[len(BOM):] if data.startswith(BOM) else data
    if data.startswith(BOM):
        data = data[len(BOM):]
    return b"\n" + data


READ_CHUNK = 1 << 20


def read_normalised(fh, size: int, json: bool) -> bytearray:
    """The normalised bytes of an open file (of about ``size`` bytes), read a MiB at a time:
    ``bytearray(size)`` would zero a 250 MB buffer in one call that holds the interpreter
    for ~160 ms (the event loop's thread waits that long while a worker thread reads), and
    each read releases it while the kernel copies."""
    buf = bytearray() if json else bytearray(b"\n")
    first = True
    while True:
        chunk = fh.read(READ_CHUNK)
        if not chunk:
            break
        if first and chunk.startswith(BOM):
            chunk = chunk[len(BOM):]
        first = False
        buf += chunk
    return buf


def _yaml_seq(data, lo: int, hi: int) -> tuple[Seq, int, int, int] | None:
    """The block-style YAML List document ``data[lo:hi]``: (its Seq, where the item lines
    start, where the sequence ends, the first item's start), or None when it is not one."""
    kind = _search(_KIND, data, lo, hi)
    m = _search(_ITEMS, data, lo, hi)
    if kind is None or m is None or len(_starts(_KIND, data, lo, hi)) != 1:
        return None
    first = _search(_FIRST_LINE, data, m.end() - 1, hi)
    if first is None:
        return Seq(False), hi, hi, hi  # "items:" and nothing after it: no items
    k = len(first.group(1))
    if data[first.end():first.end() + 1] != b"-":  # (first.start() is the "\n" before the first item)
        return None
    # the sequence ends at the first line indented k or less that is not an item ("- ...") or a comment
    stop = re.compile(rb"\n(?: {0,%d}(?:[^ \r\n#-]|-[^ \r\n])%s)" % (k, b"" if not k else b"| {0,%d}-" % (k - 1)))
    found = _search(stop, data, first.start(), hi)
    end = found.start() + 1 if found is not None else hi
    item = re.compile(rb"\n %s-(?=[ \r\n])" % (b" " * (k - 1)) if k else rb"\n-(?=[ \r\n])")
    rest = bytes(data[lo:m.start() + 1]) + bytes(data[end:hi])
    if _ITEMS.search(rest) or kind.group(1) not in rest:  # another 'items:' at the top level: not ours to cut
        return None
    list_kind = kind.group(1).decode()
    fill: tuple[tuple[str, Any], ...] = ()
    if list_kind != "List":
        api = _APIV.search(rest)
        if api is None or len(_APIV.findall(rest)) != 1:
            return None
        fill = (("kind", list_kind[:-4]), ("apiVersion", api.group(1).decode()))
    return Seq(False, fill, item, stop, k), first.start(), end, first.start() + 1


def _yaml_items(data, view: memoryview, seq: Seq, a: int, end: int, out: list[Unit]) -> None:
    """The items of ``seq`` from the one starting at ``a`` to the sequence's end ``end``."""
    starts = [a] + [i + 1 for i in _starts(seq.item, data, a, end)]  # type: ignore[arg-type]
    starts.append(end)
    for x, y in zip(starts, starts[1:]):
        out.append(Unit(view[x:y], x, False, seq))


def _yaml_docs(data, view: memoryview, a: int, b: int, out: list[Unit]) -> None:
    """The units of the documents in ``data[a:b]`` (``a`` is the start of one: 0 or its
    '---' line's "\n"); every document but the last ends at the next one's '---' line."""
    marks = _starts(_DOC_MARK, data, a + 1, b)
    marks.insert(0, a)
    marks.append(b)
    for x, y in zip(marks, marks[1:]):
        found = _yaml_seq(data, x, y)
        if found is None:
            out.append(Unit(view[x:y], x, False))
            continue
        seq, _, end, first = found
        if first < end:
            _yaml_items(data, view, seq, first, end, out)


_raw = msgspec.json.Decoder(msgspec.Raw)
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_KEY = re.compile(rb'"(?:[^"\\]|\\.)*"[ \t\r\n]*:[ \t\r\n]*')


def _json_value_end(data, view: memoryview, pos: int, hi: int) -> int:
    """Where the JSON value starting at ``pos`` (not whitespace) ends; ParseError if none does."""
    try:
        _raw.decode(view[pos:hi])
        end = hi
    except msgspec.DecodeError as exc:
        m = _TRAILING.search(str(exc))
        if m is None:
            try:
                orjson.loads(view[pos:hi])
                raise ParseError(str(exc)) from None
            except orjson.JSONDecodeError as oexc:
                raise ParseError(f"line {_lines_before(data, pos + oexc.pos) + 1}: {oexc.msg}") from None
        end = pos + int(m.group(1)) - 1  # the first trailing byte (msgspec counts from 1)
    while end > pos and data[end - 1] in b" \t\r\n":
        end -= 1
    return end


def _json_array(data, view: memoryview, a: int, hi: int) -> tuple[list[tuple[int, int]], int]:
    """The (start, end) of each value of the JSON array starting at ``a``, and where the array
    ends. Value by value (msgspec finds where each ends without building it): one call per
    item, never one call over a whole List, so the event loop's thread gets the interpreter
    between two items while a worker thread cuts a large file (one call over a 480 MB List
    held it for 400 ms; item by item is also faster, ~750 vs ~850 ms). ParseError if it is
    not a well-formed array."""
    pos = _WS.match(data, a + 1, hi).end()
    spans: list[tuple[int, int]] = []
    if pos < hi and data[pos] == 0x5D:  # "]"
        return spans, pos + 1
    while True:
        end = _json_value_end(data, view, pos, hi)
        spans.append((pos, end))
        sep = _COMMA.match(data, end, hi)
        if sep is not None:
            pos = sep.end()
            continue
        pos = _WS.match(data, end, hi).end()
        if pos < hi and data[pos] == 0x5D:
            return spans, pos + 1
        raise ParseError(f"line {_lines_before(data, pos) + 1}: expected ',' or ']' in an array")


def _json_list_at(data, view: memoryview, lo: int, hi: int) -> tuple[tuple[Any, Any, list[tuple[int, int]]] | None, int]:
    """(kind, apiVersion, the spans of the ``items`` array's values) of the JSON object starting
    at ``lo`` (before ``hi``), found member by member (the last of a key counts, as when the
    object is decoded), or None if its kind is no List or it has no items array; and where
    the object ends (-1: not found, the object is not well-formed)."""
    pos = _WS.match(data, lo + 1, hi).end()
    found: dict[str, Any] = {}
    while pos < hi and data[pos] != 0x7D:  # "}"
        key = _KEY.match(data, pos, hi)
        if key is None:
            return None, -1
        vstart = key.end()
        try:
            name = orjson.loads(view[pos:key.end()].tobytes().rstrip(b" \t\r\n:"))
        except orjson.JSONDecodeError as exc:  # e.g. a raw line break inside the key
            raise ParseError(f"line {_lines_before(data, pos) + 1}: {exc.msg}") from None
        if name == "items" and vstart < hi and data[vstart] == 0x5B:  # "["
            spans, vend = _json_array(data, view, vstart, hi)
            found[name] = spans
        else:
            vend = _json_value_end(data, view, vstart, hi)
            if name == "items":
                found[name] = None  # not an array: no List
        if name in ("kind", "apiVersion"):
            found[name] = orjson.loads(view[vstart:vend])
        sep = _COMMA.match(data, vend, hi)
        pos = sep.end() if sep is not None else _WS.match(data, vend, hi).end()
    if pos >= hi:
        return None, -1
    kind, items = found.get("kind"), found.get("items")
    if type(kind) is not str or not kind.endswith("List") or items is None:
        return None, pos + 1
    return (kind, found.get("apiVersion"), items), pos + 1


def _json_list_items(view: memoryview, seq: Seq, spans: list[tuple[int, int]], out: list[Unit]) -> None:
    """Each item of a JSON List (its value spans, :func:`_json_array`) as a unit."""
    for a, b in spans:
        out.append(Unit(view[a:b], a, True, seq))


def _json_units(data, view: memoryview, lo: int, hi: int, out: list[Unit]) -> None:
    """The JSON values in ``data[lo:hi]`` (a stream of them is what kubectl accepts); the
    items of a List as units."""
    pos = lo
    while True:
        pos = _WS.match(data, pos, hi).end()
        if pos >= hi:
            return
        found, end = None, -1
        if data[pos] == 0x7B and data.find(b'"items"', pos, pos + 256) >= 0:
            # an object naming "items" first (kubectl prints apiVersion, items, kind): walked at
            # once, so the List's bytes are scanned once less; its end is found on the way
            try:
                found, end = _json_list_at(data, view, pos, hi)
            except ParseError:
                end = -1
        if end < 0:
            end = _json_value_end(data, view, pos, hi)
            # only an object with "items" can be a List (a cheap scan before walking its members)
            if data[pos] == 0x7B and data.find(b'"items"', pos, end) >= 0:
                found, _ = _json_list_at(data, view, pos, end)
        if found is None:
            out.append(Unit(view[pos:end], pos, True))
        else:
            kind, api, arr = found
            fill: tuple[tuple[str, Any], ...] = ()
            if kind != "List":
                fill = (("kind", kind[:-4]), ("apiVersion", api))
            _json_list_items(view, Seq(True, fill), arr, out)
        pos = end


def cut(data, json: bool) -> list[Unit]:
    """Cut normalised bytes (:func:`normalise`) into units (ParseError: a JSON syntax error)."""
    view = memoryview(data).toreadonly()
    out: list[Unit] = []
    if json:
        _json_units(data, view, 0, len(data), out)
        return out
    if _search(_DIRECTIVE, data, 0, len(data)):
        return [Unit(view, 0, False)]  # %YAML/%TAG directives: the file as written, whole
    # every document but the last ends before the "\n" of the next one's '---' line: so the
    # last ends before the file's final "\n" (its bytes stay the same when a document is added after it)
    end = len(data) - 1 if data.endswith(b"\n") and len(data) > 1 else len(data)
    _yaml_docs(data, view, 0, end, out)
    return out


def split_units(data: bytes, json: bool) -> list[Unit]:
    """Cut a file's bytes into units (raises ParseError for a JSON syntax error)."""
    return cut(normalise(data, json), json)


def recut(data, json: bool, seq: Seq | None, a: int, b: int, last: bool = False,
          origin: int = 0) -> list[Unit] | None:
    """The units of ``data[a:b]``, a stretch of a file that :func:`cut` would cut exactly
    there: the bytes before ``a`` and from ``b`` on are those of a file cut before, ``a``
    is where a unit of it ended and ``b`` where one began, both items of ``seq`` or both
    top-level (``seq`` None). None when the stretch does not stand on its own (its text
    ends the List, starts a document, holds a directive...): then only cutting the whole
    file says what it is. The units are those :func:`cut` gives for the same stretch.
    ``last``: the stretch runs to the end of the text (``b``: where :func:`cut` ends it).
    ``data`` may be a window of the text: its first byte at ``origin``, from before ``a``
    to a few bytes past ``b`` (or the end); positions in and out are of the whole text."""
    units = _recut(data, json, seq, a - origin, b - origin, last)
    if units is None or not origin:
        return units
    return [Unit(u.data, u.start + origin, u.json, u.seq, origin) for u in units]


def _recut(data, json: bool, seq: Seq | None, a: int, b: int, last: bool) -> list[Unit] | None:
    view = memoryview(data).toreadonly()
    out: list[Unit] = []
    if a == b and (seq is None or not json):
        if seq is None and json and not last and not (data[a - 1] in b'}]"' or data[b] in b'{["'):
            return None  # two values meeting (1 and 2 make 12)
        return out
    if json:
        if seq is None:  # whole top-level values, whitespace between
            if not (data[a - 1] in b'}]" \t\r\n' or data[a] in b'{[" \t\r\n'):
                return None  # a value glued to the one before (1 and 2 make 12)
            if not last and not (data[b] in b'{["' or data[b - 1] in b'}]" \t\r\n'):
                return None
            try:
                _json_units(data, view, a, b, out)
            except ParseError:
                return None
            return out
        pos = a  # items of one array: "," before each, and one before b
        while True:
            sep = _COMMA.match(data, pos, b)
            if sep is None:
                return None
            pos = sep.end()
            if pos == b:
                return out
            try:
                end = _json_value_end(data, view, pos, b)
            except ParseError:
                return None
            if end == b:
                return None
            out.append(Unit(view[pos:end], pos, True, seq))
            pos = end
    if _DIRECTIVE.search(data, a, b):
        return None
    if seq is None:  # whole documents: a starts the first one's '---' line
        if not _DOC_MARK.match(data, a, b + 5):
            return None
        marks = [m.start() for m in _DOC_MARK.finditer(data, a + 1, b + 5) if m.start() < b]
        if marks and marks[-1] >= b:
            return None
        _yaml_docs(data, view, a, b, out)
        return out
    # items of one sequence: a line starting at a-1 is an item's first line; no line in
    # between ends the sequence (which also rules out '---', '%', 'kind:', 'items:' lines)
    if not seq.item.match(data, a - 1, b + seq.indent + 2):  # type: ignore[union-attr]
        return None
    if not seq.item.match(data, b - 1, b + seq.indent + 2):  # type: ignore[union-attr]
        return None  # the "\n" before the next item is the stretch's: still an item's first line?
    found = seq.stop.search(data, a - 1, b + seq.indent + 2)  # type: ignore[union-attr]
    if found is not None and found.start() < b - 1:
        return None
    starts = [i.start() + 1 for i in seq.item.finditer(data, a - 1, b + seq.indent + 2)  # type: ignore[union-attr]
              if i.start() < b - 1]
    starts.append(b)
    for x, y in zip(starts, starts[1:]):
        out.append(Unit(view[x:y], x, False, seq))
    return out


def parse_unit(unit: Unit) -> list[Any]:
    """The objects of one unit; a List document found whole is expanded. Raises ParseError."""
    data = bytes(unit.data)
    if unit.json:
        try:
            docs = [orjson.loads(data)]
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"line {unit.line + _lines_before(data, exc.pos)}: {exc.msg}") from None
    else:
        try:
            docs = parse_yaml(data)
        except ParseError as exc:
            raise ParseError(f"document at line {unit.line}: {exc}") from None
        if unit.list_item:
            docs = docs[0] if docs and type(docs[0]) is list else docs
    out: list[Any] = []
    for d in docs:
        if d is None:
            continue
        items = list_items(d)
        if items is None:
            out.append(d)
        else:
            out.extend(items)
    if unit.fill:
        fill = dict(unit.fill)
        out = [{**fill, **o} if type(o) is dict else o for o in out]
    return out


def list_items(data: Any) -> list | None:
    """The items of a ``kind: List`` document or of a typed list (``ServiceList``: items
    without kind and apiVersion, which are the list's); None for any other document."""
    if type(data) is not dict:
        return None
    kind, items = data.get("kind"), data.get("items")
    if type(kind) is not str or not kind.endswith("List") or not isinstance(items, list):
        return None
    if kind == "List":
        return items
    fill = {"kind": kind[:-4], "apiVersion": data.get("apiVersion")}
    return [{**fill, **it} if type(it) is dict and not it.keys() >= fill.keys() else it for it in items]


def parse_bytes(data: bytes, name: str) -> tuple[list[Any], list[ConfigIssue]]:
    """Every object of a file's bytes (Lists expanded), plus one issue per unit that failed."""
    issues: list[ConfigIssue] = []
    out: list[Any] = []
    json = name.endswith(".json")
    try:
        units = split_units(data, json)
    except ParseError as exc:
        return [], [ConfigIssue(name, "", "", f"{'JSON' if json else 'YAML'} syntax error: {exc}")]
    except UnicodeDecodeError as exc:
        return [], [ConfigIssue(name, "", "", f"cannot read: {exc}")]
    for u in units:
        try:
            out.extend(parse_unit(u))
        except ParseError as exc:
            issues.append(ConfigIssue(name, "", "", f"{'JSON' if json else 'YAML'} syntax error: {exc}"))
        except UnicodeDecodeError as exc:
            issues.append(ConfigIssue(name, "", "", f"cannot read: {exc}"))
    return out, issues
