"""The Services of a Config as compact rows; a :class:`Service` is made only when asked for.

There can be a million Services.  Each is kept as one tuple
``(namespace, name, ips, pool, dual_stack, families, file)`` keyed by
``"namespace/name"``; ``config.services[key]`` (and iteration over values or
items) builds the frozen :class:`~speakerd.config.model.Service` with its
:class:`~speakerd.config.model.Source` on the spot.  The planner reads the
rows directly.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Iterator

from .model import Service, Source

# row fields
NS, NAME, IPS, POOL, DUAL, FAMILIES, FILE = range(7)
Row = tuple  # (namespace, name, ips, pool, dual_stack, families, file)


def make_service(key: str, row: Row) -> Service:
    return Service(namespace=row[NS], name=row[NAME], ips=row[IPS], pool=row[POOL], dual_stack=row[DUAL],
                   families=row[FAMILIES], source=Source(row[FILE], "Service", key, row[NS]))


def row_of(svc: Service) -> Row:
    return (svc.namespace, svc.name, svc.ips, svc.pool, svc.dual_stack, svc.families,
            svc.source.file if svc.source is not None else "")


class ServiceTable(Mapping):
    """``key -> Service`` over rows; read-only."""

    __slots__ = ("_rows",)

    def __init__(self, rows: dict[str, Row] | None = None) -> None:
        self._rows: dict[str, Row] = rows if rows is not None else {}

    @property
    def rows(self) -> dict[str, Row]:
        return self._rows

    def __getitem__(self, key: str) -> Service:
        return make_service(key, self._rows[key])

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"ServiceTable({len(self._rows)} services)"


def rows_of(services: Mapping) -> dict[str, Row]:
    """The rows behind any ``key -> Service`` mapping (a ServiceTable's own, else built)."""
    if isinstance(services, ServiceTable):
        return services.rows
    return {k: row_of(s) for k, s in services.items()}
