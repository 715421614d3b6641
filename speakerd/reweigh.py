"""Endpoint-weighted ECMP at the daemon's edge: weight-only re-announcements, damped.

A mixin of :class:`speakerd.speaker.Speaker`.  The planner gives each route the weight of
this node's ready local endpoints (:mod:`speakerd.policy.linkbw`); a re-plan whose only
change to a route is its weight goes through the pure :class:`~speakerd.policy.linkbw.Damper`
(at most one re-announcement per prefix and peer per ``REWEIGH_INTERVAL``), whose timer is
one ``loop.call_at`` handle here.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING

from .policy.types import route_attrs

if TYPE_CHECKING:
    from .speaker import PeerRuntime


class Reweigh:
    """The damper's wiring on :class:`speakerd.speaker.Speaker` (``damper``, ``_damper_timer``)."""

    REWEIGH_INTERVAL = 1.0  # seconds between two weight-only re-announcements of one prefix to a peer

    def _damp(self, name: str, rt: PeerRuntime, delta: dict) -> dict:
        """The part of a re-plan's delta to send now: a route whose endpoint weight alone
        changed goes through :attr:`damper` (at most one such re-announcement per prefix and
        peer per :attr:`REWEIGH_INTERVAL`; a held one goes out from :meth:`_release_damped`
        with the weight planned by then); announcements, withdrawals and other changes go at
        once (and start the interval).  Nothing to do while no advertisement opts in."""
        if not self.planner.weighting and self.damper.next_deadline() is None:
            return delta
        now = asyncio.get_running_loop().time()
        wanted = rt.peer.wanted_routes
        damper = self.damper
        out = {}
        for rk, ra in delta.items():
            key = (name, rk)
            old = wanted.get(rk)
            if ra is None:
                damper.forget(key)
            elif old is not None and old.weight != ra.weight and dataclasses.replace(ra, weight=old.weight) == old:
                if not damper.offer(now, key, ra):
                    continue  # held: the timer sends the newest weight
            else:
                damper.sent(now, key)
            out[rk] = ra
        self._arm_damper()
        return out

    def _arm_damper(self) -> None:
        deadline = self.damper.next_deadline()
        timer = self._damper_timer
        if deadline is None or self._stopping:
            return
        if timer is not None and not timer.cancelled() and timer.when() <= deadline:
            return
        if timer is not None:
            timer.cancel()
        self._damper_timer = asyncio.get_running_loop().call_at(deadline, self._release_damped)

    def _release_damped(self, now: float | None = None) -> int:
        """The held weight changes whose interval ended: each peer gets the route as planned
        now (a later re-plan or reload may have changed it again). Returns the routes sent."""
        if self._damper_timer is not None:
            self._damper_timer.cancel()  # called early (a test, or this very handle): one timer at most
            self._damper_timer = None
        if now is None:
            now = asyncio.get_running_loop().time()
        by_peer: dict[str, dict] = {}
        for name, rk in self.damper.due(now):
            by_peer.setdefault(name, {})[rk] = None
        sent = 0
        plan = self.plan
        for name, keys in by_peer.items():
            rt = self.peers.get(name)
            if rt is None or plan is None:
                continue
            table = route_attrs(plan.routes.get(name, {}))
            wanted = rt.peer.wanted_routes
            delta = {rk: table.get(rk) for rk in keys if table.get(rk) != wanted.get(rk)}
            if delta:
                sent += self._note_delta(delta, time.time())
                rt.peer.update_routes(delta)
        self.damper.prune(now)
        self._arm_damper()
        return sent
