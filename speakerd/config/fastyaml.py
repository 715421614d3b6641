"""A fast reader for the plain block YAML that generators and kubectl write.

PyYAML builds a Service document in ~100 µs even with libyaml; a million
Services would take minutes.  This reader handles only the common subset:
block mappings and sequences, plain/simply-quoted scalars, ``[a, b]`` flow
lists of plain scalars and ``{}``/``[]``.  On anything else (anchors, tags,
block scalars, flow mappings, escapes, comments after values, tabs...) it
returns None and the caller uses the full YAML loader for that document, so
results are always those of ``load.KubeLoader``.
"""
from __future__ import annotations

import re
from itertools import groupby
from typing import Any

_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_RESOLVERS: dict[str, list] | None = None


def _implicit(c: str) -> list:
    """The implicit-tag patterns the full loader tries for scalars starting with ``c``."""
    global _RESOLVERS
    if _RESOLVERS is None:
        from .load import KubeLoader  # load imports this module: resolve lazily
        _RESOLVERS = {ch: [rx for _tag, rx in lst] for ch, lst in KubeLoader.yaml_implicit_resolvers.items()}
    return _RESOLVERS.get(c, [])
_BOOLS = {"yes": True, "Yes": True, "YES": True, "true": True, "True": True, "TRUE": True, "on": True, "On": True,
          "ON": True, "no": False, "No": False, "NO": False, "false": False, "False": False, "FALSE": False,
          "off": False, "Off": False, "OFF": False}
_NULLS = {"", "~", "null", "Null", "NULL"}
_BAD_START = set("&*!|>%@`{?\"'[,#")
_KEY_NOT_STR = set("-+0123456789.~")
# what the full loader rejects (non-printable), reads as a line break (NEL, LS, PS, a lone CR)
# or drops (a byte order mark): a document holding any of these is left to it
_ODD_CHARS = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029]|\r(?!\n)")
_ODD_SKELETON = re.compile("[^\x01\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029]|\r(?!\n)")  # the same, but holes (\x01) are fine


class _Fallback(Exception):
    pass


def _scalar(text: str) -> Any:
    if text in _NULLS:
        return None
    c = text[0]
    if c == "'":
        if len(text) < 2 or text[-1] != "'" or "'" in text[1:-1]:
            raise _Fallback
        return text[1:-1]
    if c == '"':
        if len(text) < 2 or text[-1] != '"' or '"' in text[1:-1] or "\\" in text:
            raise _Fallback
        return text[1:-1]
    if c == "[":
        if text == "[]":
            return []
        if text[-1] != "]" or any(ch in text[1:-1] for ch in "[]{}'\"#&*!"):
            raise _Fallback
        items = [p.strip(" ") for p in text[1:-1].split(",")]
        if "" in items:
            raise _Fallback  # '[ ]', '[a,]' (a trailing comma ends the list), '[a,,b]' (an error)
        return [_scalar(p) for p in items]
    if text == "{}":
        return {}
    if c in _BAD_START or ": " in text or text.endswith(":") or text == "=" or text[:2] in ("- ", "-"):
        raise _Fallback  # '- x' / '-' start a nested sequence (or are an error); '=' has no constructor
    b = _BOOLS.get(text)
    if b is not None:
        return b
    if c in "-+0123456789.":
        if _INT.match(text):
            return int(text)
        for rx in _implicit(c):
            if rx.match(text):
                raise _Fallback  # floats, octal/hex ints, dates...: leave to the full loader
        # anything else (10.0.0.1, 2001:db8::1, 1.2.3) is a string for the full loader too
    return text


def parse_document(text: str, odd_chars: re.Pattern = _ODD_CHARS) -> Any:
    """The document's data, or raise _Fallback. `text` is one document without '---'."""
    root: Any = None
    # stack of (indent, container, is_seq); "pending" = key waiting for a nested block
    stack: list[list] = []
    pending: tuple[dict, str, int] | None = None
    if odd_chars.search(text):
        raise _Fallback
    for raw in text.split("\n"):
        line = raw.rstrip(" \r")  # only these: a trailing no-break space is part of a value
        if not line:
            continue
        stripped = line.lstrip(" ")
        if stripped[0] == "#":
            continue
        if "\t" in line or " #" in line or line[:3] in ("---", "..."):
            raise _Fallback  # '--- {a: b}': a document marker with content on its line
        indent = len(line) - len(stripped)
        is_item = stripped == "-" or stripped.startswith("- ")
        if pending is not None:
            parent, key, pind = pending
            pending = None
            if indent > pind or (is_item and indent == pind):
                container: Any = [] if is_item else {}
                parent[key] = container
                stack.append([indent, container, is_item])
            else:
                parent[key] = None
        while stack and (indent < stack[-1][0] or (indent == stack[-1][0] and stack[-1][2] and not is_item)):
            stack.pop()
        if not stack:
            if root is not None or indent != 0:
                raise _Fallback
            root = [] if is_item else {}
            stack.append([0, root, is_item])
        top = stack[-1]
        if indent != top[0]:
            raise _Fallback
        if is_item:
            if not top[2]:
                raise _Fallback
            rest = stripped[2:].lstrip(" ") if len(stripped) > 1 else ""
            if not rest:
                raise _Fallback
            item_indent = indent + (len(stripped) - len(rest))
            key, sep, value = _split_key(rest)
            if sep:
                m: dict = {}
                top[1].append(m)
                stack.append([item_indent, m, False])
                pending = _put(m, key, value, item_indent)
            else:
                top[1].append(_scalar(rest))
        else:
            if top[2]:
                raise _Fallback
            key, sep, value = _split_key(stripped)
            if not sep:
                raise _Fallback
            pending = _put(top[1], key, value, indent)
    if pending is not None:
        pending[0][pending[1]] = None
    return root


def _split_key(s: str) -> tuple[str, bool, str]:
    i = s.find(": ")
    if i < 0:
        if s.endswith(":"):
            return s[:-1], True, ""
        return s, False, ""
    return s[:i], True, s[i + 2:].strip(" ")


def _put(m: dict, key: str, value: str, indent: int):
    if not key or key[0] in _BAD_START or key in m or key[-1] == " " or key == "<<":
        raise _Fallback
    if (key in _SPECIAL or key[0] in _KEY_NOT_STR) and type(_scalar(key)) is not str:
        raise _Fallback  # 'on:', '1:', '~:' are keys True, 1, None for the full loader
    if value:
        m[key] = _scalar(value)
        return None
    return (m, key, indent)


def split_documents(text: str, exact: bool = True) -> list[str] | None:
    """Split on '---' lines; None when the stream has directives or document-end markers.

    ``exact=False`` (skeletons, only compared with each other) lets every part but the
    last lose its final newline; documents keep it: a block scalar's last line break
    (``t: |``) is part of its value."""
    if "\n..." in text or text.startswith(("%", "...")):
        return None
    lead = text.startswith("---")
    if text.count("\n---") + lead == text.count("\n---\n") + text.startswith("---\n"):
        # every '---' line is exactly '---': a plain split (5x faster than the regex)
        if lead:
            if text[4:].startswith("---"):
                return _SEP.split(text)
            parts = ["", *text[4:].split("\n---\n")]
        else:
            parts = text.split("\n---\n")
        if exact:
            last = parts.pop()
            parts = [p + "\n" for p in parts]
            parts.append(last)
            if lead:
                parts[0] = ""
        return parts
    return _SEP.split(text)


def fast_load_all(text: str, slow) -> list[Any]:
    """Documents of `text`; each one the fast reader cannot handle goes to `slow(doc_text)`."""
    return load_items(text, slow, runs=False)


# A big stream is read this many characters at a time (cut at '---' lines): the passes over
# the text, its skeleton and the value list then work on a few MB at a time instead of
# building lists of millions of strings at once.
CHUNK_CHARS = 4 << 20


def _chunks(text: str):
    """Pieces of `text` of about CHUNK_CHARS, each cut after a line that is exactly '---'.

    Every piece is a stream of whole documents: '---' at the start of a line always
    starts a document, and the caller has ruled out '...' and directives."""
    start = 0
    while True:
        cut = text.find("\n---\n", start + CHUNK_CHARS)
        if cut < 0:
            yield text[start:]
            return
        yield text[start:cut + 1]
        start = cut + 5


def load_items(text: str, slow, runs: bool = True) -> list[Any]:
    """Like :func:`fast_load_all`, but (``runs``) RUN_MIN or more consecutive documents of
    one shape come as one :class:`Run` instead of one data item each."""
    if text[:1] == "\ufeff":
        text = text[1:]  # a byte order mark starts the stream, not the first key
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")  # a CRLF line break is a line break ('---\r' would not split)
    if "\n..." in text or text.startswith(("%", "...")) or "\ufeff" in text:
        return [d for d in slow(text) if d is not None]  # what split_documents refuses
    if len(text) > CHUNK_CHARS:
        return [d for chunk in _chunks(text) for d in _load_text(chunk, slow, runs)]
    return _load_text(text, slow, runs)


def _load_text(text: str, slow, runs: bool) -> list[Any]:
    if text.count("\n---") >= 16:
        shaped = _shaped_load(text, slow, runs)
        if shaped is not None:
            return shaped
    out: list[Any] = []
    for part in split_documents(text) or ():
        _parse_one(part, slow, out)
    return out


# ---------------------------------------------------------------- shape cache

# ": value" at the end of a line (the first ": " of the line, as _split_key splits)
_VALUE = re.compile(r"(?m): +(\S[^\n]*?)[ \r]*$")
# the same when no line ends in a space or CR: greedy, and one split gives values and skeleton
_VALUE_PLAIN = re.compile(r"(?m): +(\S[^\n]*)$")
_SEP = re.compile(r"(?m)^---[ \t]*$\n?")
_HOLE = "\x01"
_BAD = object()
_MAX_SHAPES = 256


class _Shape:
    """A document with its ``key: value`` values taken out; build() puts values back.

    ``tree`` is the document with each value replaced by its hole marker
    (``"\\x01<i>"``, see :func:`hole`): readers of a :class:`Run` find where a
    field's values are without building the documents."""
    __slots__ = ("holes", "build", "tree")

    def __init__(self, holes: int, build, tree: Any = None) -> None:
        self.holes, self.build, self.tree = holes, build, tree


def hole(node: Any) -> int | None:
    """The hole index of a shape tree node that is a value, None for anything else."""
    if type(node) is str and node[:1] == _HOLE:
        return int(node[1:])
    return None


class Run:
    """``count`` consecutive documents of one shape, not built: their values, flat.

    Document j's values are ``values[j * holes:(j + 1) * holes]``, so the values of
    hole i of every document are the slice ``values[i::holes]`` (see :meth:`column`).
    ``values`` are the texts; ``conv`` maps the few that are not plain strings
    (numbers, booleans, nulls, quoted) to what they mean, applied on reading.
    """
    __slots__ = ("shape", "values", "count", "conv")

    def __init__(self, shape: _Shape, values: list, count: int, conv: dict | None = None) -> None:
        self.shape, self.values, self.count, self.conv = shape, values, count, conv

    def column(self, i: int) -> list:
        col = self.values[i::self.shape.holes]
        conv = self.conv
        if conv and not conv.keys().isdisjoint(col):
            col = list(map(conv.get, col, col))
        return col

    def documents(self) -> list[Any]:
        n, build, v, conv = self.shape.holes, self.shape.build, self.values, self.conv
        if conv:
            v = list(map(conv.get, v, v))
        return [build(v[j:j + n]) for j in range(0, n * self.count, n)]

    def __repr__(self) -> str:
        return f"Run({self.count} documents, {self.shape.holes} values each)"


# a run is worth its bookkeeping from this many documents of one shape in a row
RUN_MIN = 32


def _codegen(node: Any, holes: dict[str, int]) -> str:
    if isinstance(node, dict):
        return "{" + ", ".join(f"{k!r}: {_codegen(v, holes)}" for k, v in node.items()) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(_codegen(v, holes) for v in node) + "]"
    if isinstance(node, str) and node in holes:
        return f"v[{holes[node]}]"
    return repr(node)


def _make_shape(skeleton: str) -> "_Shape | None":
    """Parse the skeleton once with numbered holes; None when the fast reader can't."""
    n = skeleton.count(_HOLE)
    numbered = skeleton.split(_HOLE)
    text = "".join(p + (f"{_HOLE}{i}" if i < n else "") for i, p in enumerate(numbered))
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.split("\n")):
        return _Shape(n, None)
    try:
        tree = parse_document(text, _ODD_SKELETON)
    except (_Fallback, IndexError):
        return None
    holes = {f"{_HOLE}{i}": i for i in range(n)}
    return _Shape(n, eval("lambda v: " + _codegen(tree, holes)), tree)  # noqa: S307 - built from repr() only


# values that can only be strings: a letter-led word without YAML indicators (bools and nulls
# are looked up apart), or dotted digits with two dots or more (an IPv4 address, a version)
_PLAIN = re.compile(r"[A-Za-z/][-A-Za-z0-9_./]*\Z|[0-9]+\.[0-9]+(?:\.[0-9]+)+\Z")


# a line of distinct values joined by newlines that _PLAIN does not match (values never hold "\n")
_NOT_PLAIN = re.compile(r"(?m)^(?![A-Za-z/][-A-Za-z0-9_./]*$|[0-9]+\.[0-9]+(?:\.[0-9]+)+$).+$")
_SPECIAL = frozenset(_BOOLS.keys() | _NULLS)


def _odd_values(values: list[str]) -> dict[str, Any]:
    """What each distinct value that is not a plain string means (_BAD where only a slower
    path may decide); values missing from the result are themselves.

    Plain words and dotted numbers (almost every value) are found by one regex
    pass over the distinct values joined, so Python code runs only for the others."""
    distinct = set(values)
    odd = set(_NOT_PLAIN.findall("\n".join(distinct)))
    odd.update(distinct & _SPECIAL)
    out: dict[str, Any] = {}
    for s in odd:
        if s[0] in "[{" or _ODD_CHARS.search(s):
            out[s] = _BAD  # mutable results must not be shared between documents
            continue
        try:
            out[s] = _scalar(s)
        except (_Fallback, IndexError):
            out[s] = _BAD
    return out


def _shaped_load(text: str, slow, runs: bool = False) -> list[Any] | None:
    """Documents sharing a shape are built by one generated function each; None = not applicable.

    Only the skeleton is split into documents; the text itself only when some
    document needs the plain reader (same '---' lines, so the same boundaries).
    """
    if _HOLE in text or "\t" in text or " #" in text:
        return None
    if " \n" in text or "\r" in text or text.endswith(" "):
        values = _VALUE.findall(text)
        skeleton = _VALUE.sub(": " + _HOLE, text)
    else:
        pieces = _VALUE_PLAIN.split(text)  # [text, value, text, value, ..., text]
        values = pieces[1::2]
        skeleton = (": " + _HOLE).join(pieces[0::2])
        del pieces
    skeletons = split_documents(skeleton, exact=False)
    del skeleton
    if skeletons is None:
        return None
    parts: list[str] | None = None
    conv = _odd_values(values)
    bad = {s for s, v in conv.items() if v is _BAD}
    shapes: dict[str, _Shape | None] = {}
    out: list[Any] = []
    pos = 0
    i = 0
    for skel, same in groupby(skeletons):  # consecutive documents of one skeleton
        k = len(list(same))
        shape = shapes.get(skel, _BAD)
        if shape is _BAD:
            shape = _make_shape(skel) if len(shapes) < _MAX_SHAPES else None
            shapes[skel] = shape
        n = skel.count(_HOLE)
        end = pos + n * k
        if shape is not None and shape.build is None:
            pos, i = end, i + k
            continue  # empty or comments only
        vals = values[pos:end]
        if runs and shape is not None and k >= RUN_MIN and n and (not bad or bad.isdisjoint(vals)):
            out.append(Run(shape, vals, k, conv or None))
            pos, i = end, i + k
            continue
        if conv:
            vals = list(map(conv.get, vals, vals))
        for j in range(k):
            v = vals[j * n:(j + 1) * n]
            if shape is None or _BAD in v:
                if parts is None:
                    parts = split_documents(text)
                    if parts is None or len(parts) != len(skeletons):
                        return None
                _parse_one(parts[i + j], slow, out)
            else:
                out.append(shape.build(v))
        pos, i = end, i + k
    return out


def _parse_one(part: str, slow, out: list) -> None:
    if not part.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in part.split("\n")):
        return
    try:
        out.append(parse_document(part))
    except (_Fallback, IndexError):
        out.extend(d for d in slow(part) if d is not None)
