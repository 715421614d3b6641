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
from typing import Any, Iterator

import msgspec
import orjson
import yaml
import yaml_rs

from .model import ConfigIssue

EXTENSIONS = (".yaml", ".yml", ".json")
BOM = b"\xef\xbb\xbf"


class ParseError(ValueError):
    """A unit that is not valid YAML/JSON; the message says where."""


@dataclass(frozen=True, slots=True)
class Unit:
    """One document or one list item: its bytes and where they start (line, 1-based)."""
    data: bytes | memoryview  # a view into the file's bytes (read-only: hashable)
    line: int
    json: bool
    fill: tuple[tuple[str, Any], ...] = ()  # kind/apiVersion of a typed list, for items without them
    list_item: bool = False  # YAML list item text ("- ..."): parses to a one-element sequence

    @property
    def digest(self) -> int:
        return hash((self.data, self.fill))


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
# text they search starts with "\n".
_DOC_MARK = re.compile(rb"\n---(?=[ \t\r\n]|$)")
_DIRECTIVE = re.compile(rb"\n%")
_ITEMS = re.compile(rb"\nitems:[ \t]*(?:#[^\r\n]*)?\r?\n")
_KIND = re.compile(rb"\nkind:[ \t]*[\"']?([A-Za-z0-9]*List)[\"']?[ \t]*(?:#[^\r\n]*)?\r?(?=\n|$)")
_FIRST_LINE = re.compile(rb"\n( *)(?=[^ \r\n#])")
_APIV = re.compile(rb"\napiVersion:[ \t]*[\"']?([A-Za-z0-9./-]+)[\"']?[ \t]*(?:#[^\r\n]*)?\r?(?=\n|$)")


def _lines_before(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos)


def _list_units(data: bytes, lo: int, hi: int, base_line: int) -> list[Unit] | None:
    """The items of the block-style YAML List document ``data[lo:hi]`` as units (with the
    envelope's kind and apiVersion to fill), or None when it is not one (then it is one
    unit). Positions are absolute; the items' bytes are views of ``data``, not copies."""
    kind = _KIND.search(data, lo, hi)
    m = _ITEMS.search(data, lo, hi)
    if kind is None or m is None or len(_KIND.findall(data, lo, hi)) != 1:
        return None
    first = _FIRST_LINE.search(data, m.end() - 1, hi)
    if first is None:
        return []
    k = len(first.group(1))
    if data[first.end():first.end() + 1] != b"-":  # (first.start() is the "\n" before the first item)
        return None
    # the sequence ends at the first line indented k or less that is not an item ("- ...") or a comment
    stop = re.compile(rb"\n(?: {0,%d}(?:[^ \r\n#-]|-[^ \r\n])%s)" % (k, b"" if not k else b"| {0,%d}-" % (k - 1)))
    found = stop.search(data, first.start(), hi)
    end = found.start() + 1 if found is not None else hi
    item = re.compile(rb"\n %s-(?=[ \r\n])" % (b" " * (k - 1)) if k else rb"\n-(?=[ \r\n])")
    starts = [first.start() + 1] + [i.start() + 1 for i in item.finditer(data, first.end(), end)]
    rest = data[lo:m.start() + 1] + data[end:hi]
    if _ITEMS.search(rest) or kind.group(1) not in rest:  # another 'items:' at the top level: not ours to cut
        return None
    list_kind = kind.group(1).decode()
    fill: tuple[tuple[str, Any], ...] = ()
    if list_kind != "List":
        api = _APIV.search(rest)
        if api is None or len(_APIV.findall(rest)) != 1:
            return None
        fill = (("kind", list_kind[:-4]), ("apiVersion", api.group(1).decode()))
    units = []
    starts.append(end)
    view = memoryview(data)
    line = base_line + data.count(b"\n", lo, starts[0])  # the item's first line
    for a, b in zip(starts, starts[1:]):
        units.append(Unit(view[a:b], line, False, fill, True))
        line += data.count(b"\n", a, b)
    return units


class _JsonList(msgspec.Struct):
    kind: Any = None
    apiVersion: Any = None
    items: list[msgspec.Raw] | None = None


_json_list = msgspec.json.Decoder(_JsonList)
_raw = msgspec.json.Decoder(msgspec.Raw)
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")


def _json_units(data: bytes) -> Iterator[Unit]:
    """A JSON value, or a stream of them (what kubectl accepts); list items as units."""
    view = memoryview(data)
    pos = counted = 0
    line = 1
    n = len(data)
    while pos < n:
        while pos < n and data[pos] in b" \t\r\n":
            pos += 1
        if pos >= n:
            return
        try:
            _raw.decode(view[pos:])  # finds where the first value ends without building it
            end = n
        except msgspec.DecodeError as exc:
            m = _TRAILING.search(str(exc))
            if m is None:
                try:
                    orjson.loads(view[pos:])
                    raise ParseError(str(exc)) from None
                except orjson.JSONDecodeError as oexc:
                    raise ParseError(f"line {_lines_before(data, pos + oexc.pos) + 1}: {oexc.msg}") from None
            end = pos + int(m.group(1)) - 1  # msgspec counts the first trailing byte as read
        chunk = data[pos:end]
        line += data.count(b"\n", counted, pos)
        counted = pos
        env = None
        if b'"items"' in chunk:  # only then can it be a List (a cheap scan before a decode)
            try:
                env = _json_list.decode(chunk)
            except msgspec.ValidationError:
                env = None
        kind = env.kind if env is not None else None
        if env is not None and type(kind) is str and kind.endswith("List") and env.items is not None:
            fill: tuple[tuple[str, Any], ...] = ()
            if kind != "List":
                fill = (("kind", kind[:-4]), ("apiVersion", env.apiVersion))
            for raw in env.items:
                yield Unit(bytes(raw), line, True, fill)
        else:
            yield Unit(chunk, line, True)
        pos = end


def split_units(data: bytes, json: bool) -> list[Unit]:
    """Cut a file's bytes into units (raises ParseError for a JSON syntax error)."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    if json:
        return list(_json_units(data))
    data = b"\n" + data  # line 1 starts after this "\n"; so does every document
    if _DIRECTIVE.search(data):
        return [Unit(data, 0, False)]  # %YAML/%TAG directives: the file as written, whole
    marks = [m.start() for m in _DOC_MARK.finditer(data)]
    if not marks or marks[0] != 0:
        marks.insert(0, 0)
    # every document but the last ends before the "\n" of the next one's '---' line: so the
    # last ends before the file's final "\n" (its bytes stay the same when a document is added after it)
    marks.append(len(data) - 1 if data.endswith(b"\n") and len(data) > 1 else len(data))
    out: list[Unit] = []
    view = memoryview(data)
    line = 0  # of the leading "\n" of each document: its text starts on line + 1
    for a, b in zip(marks, marks[1:]):
        items = _list_units(data, a, b, line)
        if items is None:
            out.append(Unit(view[a:b], line + 1, False))
        else:
            out.extend(items)
        line += data.count(b"\n", a, b)
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
