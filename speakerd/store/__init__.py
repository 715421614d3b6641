"""The object store: sources' events in, validated objects and their changes out.

``Store().apply([Event("ADDED", obj, "file.yaml"), ...]) -> Changes``; see
:mod:`speakerd.store.store` for the rules and docs/design.md ("Object store").
"""
from __future__ import annotations

from .store import ADDED, DELETED, MODIFIED, Changes, Event, ServiceView, Store

__all__ = ["Store", "Event", "Changes", "ServiceView", "ADDED", "MODIFIED", "DELETED"]
