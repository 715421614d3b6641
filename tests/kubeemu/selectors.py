"""Label and field selectors as the API server parses them (the subset clients send).

Label: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``, comma = AND.
Field: ``path=v``, ``path==v``, ``path!=v`` on the dotted paths the kind supports (``metadata.name``,
``metadata.namespace`` always; ``spec.type`` for Services, ``involvedObject.name`` for Events...),
comma = AND; any other path is rejected as kube-apiserver rejects it.
"""
from __future__ import annotations

import re
from typing import Callable

Matcher = Callable[[dict], bool]


class SelectorError(ValueError):
    pass


def _split_top(expr: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


_SET = re.compile(r"^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ = re.compile(r"^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=()]*)$")
_KEY = re.compile(r"^(!?)\s*([^\s!=(),]+)$")


def _label_term(term: str) -> Callable[[dict], bool]:
    m = _SET.match(term)
    if m:
        key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in vals
        return lambda labels: labels.get(key) not in vals
    m = _EQ.match(term)
    if m:
        key, op, val = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != val
        return lambda labels: labels.get(key) == val
    m = _KEY.match(term)
    if m:
        neg, key = m.groups()
        if neg:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: {term!r}")


def label_matcher(expr: str | None) -> Matcher | None:
    if not expr:
        return None
    terms = [_label_term(t) for t in _split_top(expr)]

    def match(obj: dict) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(t(labels) for t in terms)

    return match


def _lookup(obj: dict, path: tuple[str, ...]) -> str:
    cur: object = obj
    for p in path:
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_matcher(expr: str | None, supported: Callable[[str], bool] | None = None) -> Matcher | None:
    """``supported(path)``: whether the kind allows selecting on ``path`` (else SelectorError)."""
    if not expr:
        return None
    terms = []
    for term in _split_top(expr):
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", term)
        if not m:
            raise SelectorError(f"invalid field selector: {term!r}")
        if supported is not None and not supported(m.group(1)):
            raise SelectorError(f'field label not supported: {m.group(1)}')
        path, op, val = tuple(m.group(1).split(".")), m.group(2), m.group(3)
        terms.append((path, op == "!=", val))

    def match(obj: dict) -> bool:
        for path, neg, val in terms:
            if (_lookup(obj, path) == val) == neg:
                return False
        return True

    return match


def combine(*matchers: Matcher | None) -> Matcher | None:
    ms = [m for m in matchers if m is not None]
    if not ms:
        return None
    if len(ms) == 1:
        return ms[0]
    return lambda obj: all(m(obj) for m in ms)
