"""The pure planner: which prefixes go to which peer, with which attributes, and why."""
from __future__ import annotations

from .allocate import PoolIndex, allocate
from .planner import merge_attrs, node_labels, plan
from .types import Plan, PlannedRoute, Reason, RouteAttrs

__all__ = ["plan", "allocate", "PoolIndex", "node_labels", "merge_attrs", "Plan", "PlannedRoute", "Reason", "RouteAttrs"]
