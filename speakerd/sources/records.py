"""What the file source remembers of a unit (a document or List item), and the identity
sets it builds while reading a file.

Both exist once per object of every file read, so both are kept small: the usual unit,
holding exactly one object, is a :data:`Stub`; a set of identities while a file is read
is an :class:`Idents` (names per (kind, namespace), no tuple per object).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Union

from ..config.model import ConfigIssue

Stub = tuple[str, str, str, str]  # (kind, apiVersion, namespace, name)


@dataclass(slots=True)
class UnitInfo:
    """A unit that is not one object: none, several, or with issues."""
    stubs: tuple[Stub, ...]
    issues: tuple[ConfigIssue, ...]
    dup: bool = False  # held an object already defined earlier in the file
    skipped: tuple[str, ...] = ()  # "Kind (apiVersion)" of objects of kinds speakerd does not use


EMPTY = UnitInfo((), ())
# What a unit held: a Stub for the usual unit of exactly one object, else a UnitInfo.
Info = Union[Stub, UnitInfo]


def stubs(info: Info) -> tuple[Stub, ...]:
    return (info,) if type(info) is tuple else info.stubs  # type: ignore[return-value]


def ident(stub: Stub) -> int:
    """The hash of a stub's (kind, namespace, name), as :meth:`Idents.hashes` gives it."""
    return hash((stub[0], stub[2], stub[3]))


class Idents:
    """A set of (kind, namespace, name), kept as the names of each (kind, namespace).

    A set of tuples cost a 64 B tuple per object while a file was read; freed together
    after the read, those tuples left holes among the objects kept from it (~60 B of RSS
    per Service). The names are the objects' own strings: nothing per object is made."""

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], set[str]] = {}

    def has(self, kind: str, ns: str, name: str) -> bool:
        names = self._names.get((kind, ns))
        return names is not None and name in names

    def add(self, kind: str, ns: str, name: str) -> None:
        names = self._names.get((kind, ns))
        if names is None:
            names = self._names[(kind, ns)] = set()
        names.add(name)

    def has_stub(self, stub: Stub) -> bool:
        return self.has(stub[0], stub[2], stub[3])

    def add_stub(self, stub: Stub) -> None:
        self.add(stub[0], stub[2], stub[3])

    def hashes(self) -> Iterator[int]:
        for (kind, ns), names in self._names.items():
            for name in names:
                yield hash((kind, ns, name))


class Heads:
    """The (kind, apiVersion, namespace) of the objects read, each kept once.

    A file remembers a unit of one object as the object's name (its own string, which the
    store's object shares) and the index of its head here, not as a Stub: a 4-tuple per
    Service was 80 B, the name and an index in an array are 4."""

    __slots__ = ("_heads", "_index")

    def __init__(self) -> None:
        self._heads: list[tuple[str, str, str]] = []
        self._index: dict[tuple[str, str, str], int] = {}

    def pack(self, info: Info) -> tuple[str | UnitInfo, int]:
        """What a file keeps of a unit: (name, head index) of a Stub, (info, 0) of a UnitInfo."""
        if type(info) is not tuple:
            return info, 0  # type: ignore[return-value]
        head = info[:3]
        i = self._index.get(head)  # type: ignore[arg-type]
        if i is None:
            i = self._index[head] = len(self._heads)  # type: ignore[index]
            self._heads.append(head)  # type: ignore[arg-type]
        return info[3], i

    def unpack(self, kept: str | UnitInfo, head: int) -> Info:
        return self._heads[head] + (kept,) if type(kept) is str else kept  # type: ignore[return-value]
