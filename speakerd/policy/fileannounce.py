"""File mode's announce rules: the store's changes -> which Services to re-plan, and why not.

The rules are :mod:`speakerd.policy.announce`'s (MetalLB's speaker), run on the
EndpointSlices and this node's Node found in the files.  Two things differ from
Kubernetes mode, and both are deliberate:

- A Service with no EndpointSlice in the files is announced (``check_endpoints=None``):
  files written without endpoint data (a systemd node fed hand-written manifests)
  keep the routes they always had.  Once a slice names the Service, MetalLB's rules
  apply to it exactly: ``externalTrafficPolicy: Local`` needs a ready or serving
  endpoint on this node, any Service one somewhere.
- The planner is not given a filtered Service table (as Kubernetes mode is): the
  addresses of Services without their own come from the manifests alone
  (:mod:`speakerd.policy.allocate`) and must be the same on every node, so the
  allocator sees every Service and only the routes follow this node's verdicts
  (:attr:`FileAnnouncer.withheld` is the planner's ``withheld``).

Pure: store changes in, keys out.
"""
from __future__ import annotations

from collections.abc import Mapping

from ..config.gcpause import gc_paused
from ..store import Changes
from .announce import AnnounceOptions, Announcer, Verdict
from .planner import Planner
from .types import Plan


class FileAnnouncer:
    """The announce rules kept up to date by a file-mode store's :class:`Changes`."""

    __slots__ = ("node", "announcer")

    def __init__(self, store, node: str, options: AnnounceOptions | None = None) -> None:
        self.node = node
        if options is None:
            options = AnnounceOptions(lb_class=store.lb_class, check_endpoints=None)
        self.announcer = Announcer(node, store.services, options)

    @property
    def withheld(self) -> Mapping[str, Verdict]:
        """Service key -> why this node does not announce it (live)."""
        return self.announcer.withheld

    def verdict(self, key: str) -> Verdict:
        return self.announcer.verdict(key)

    def apply(self, ch: Changes) -> tuple[set[str], bool]:
        """-> (the Services to re-plan, whether this node's labels changed).

        The Services to re-plan are those the store changed (their address, or
        another's allocation, may move) and those whose verdict flipped; a change
        of this node's labels selects other peers and advertisements: the caller
        rebuilds the plan."""
        slices = {k: v for k, v in ch.endpoint_slices.items() if v[0] is not None or v[1] is not None}
        flipped = self.announcer.apply_keys(ch.services, slices, ch.nodes)
        keys = set(ch.services)
        keys.update(flipped)
        ch.reweighed = set(self.announcer.reweighed)  # endpoint weights: re-planned when they count
        mine = ch.nodes.get(self.node)
        relabelled = False
        if mine is not None:
            old, new = mine
            relabelled = (old.labels if old else None) != (new.labels if new else None)
        return keys, relabelled


def plan_store(store, node: str, allocations: dict | None = None) -> tuple[Plan, dict[str, Verdict]]:
    """From scratch, for `speakerd plan`: the plan of a file-mode store for `node` and, per
    Service not announced from this node, why (the daemon's path, in one step)."""
    with gc_paused():
        return _plan_store(store, node, allocations)


def _plan_store(store, node: str, allocations: dict | None) -> tuple[Plan, dict[str, Verdict]]:
    fa = FileAnnouncer(store, node)
    fa.apply(Changes(services={k: (None, s) for k, s in store.services.items()},
                     endpoint_slices={k: (None, s) for k, s in store.endpoint_slices.items()},
                     nodes={k: (None, n) for k, n in store.nodes.items()}))
    planner = Planner(node, fa.withheld)
    planner.endpoints = fa.announcer.endpoints
    planner.rebuild(store.config(), allocations or {})
    return planner.plan(), dict(fa.withheld)


__all__ = ["FileAnnouncer", "plan_store"]
