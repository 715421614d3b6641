"""Services as the compact rows the address allocator reads.

``rows_of(config.services)`` gives ``key -> (namespace, name, ips, pool,
dual_stack, families, origin)``; the row fields are named by the constants below.
Built on demand (only when some Service has no address of its own).
"""
from __future__ import annotations

from collections.abc import Mapping

# row fields
NS, NAME, IPS, POOL, DUAL, FAMILIES, FILE = range(7)
Row = tuple  # (namespace, name, ips, pool, dual_stack, families, origin)


def rows_of(services: Mapping) -> dict[str, Row]:
    """The rows of a ``key -> Service`` mapping."""
    return {k: (s.namespace, s.name, s.ips, s.pool, s.dual_stack, s.families, s.origin) for k, s in services.items()}
