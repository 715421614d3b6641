"""Drain without loss (RFC 8326): ``speakerctl drain`` / ``undrain`` and ``--drain-on-stop``.

A mixin of :class:`speakerd.speaker.Speaker`: it works on the speaker's peers, plan and
reload lock, and keeps the drain state in ``drain_state`` (None, "draining" or "drained").
"""
from __future__ import annotations

import asyncio
import logging
import time

from .policy.types import route_attrs
from .wire.constants import CeaseSubcode

log = logging.getLogger("speakerd")


class Drain:
    """speakerctl drain/undrain on :class:`speakerd.speaker.Speaker`."""

    async def drain(self, wait: float = 10.0, message: str = "node drained (speakerctl drain)") -> dict:
        """Take this node out of the peers' forwarding without losing a packet (RFC 8326).

        Every route is re-announced with GRACEFUL_SHUTDOWN 65535:0 and, on iBGP,
        LOCAL_PREF 0, so routers with the graceful-shutdown policy move the traffic to
        the other nodes' paths while ours still forward; after ``wait`` seconds every
        route is withdrawn and each session closed with Cease/Administrative Shutdown
        (6/2) carrying ``message``, graceful restart or not (the routes are gone, so a
        helper has nothing to keep).  The sessions stay down until :meth:`undrain`;
        sessions a reload starts meanwhile do not start.  :meth:`undrain` during the
        wait ends the drain with the routes re-announced unmarked.
        """
        started = time.monotonic()
        if self.drain_state is None:
            self.drain_state = "draining"
            self._undrained.clear()
            log.warning("drain: marking every route with GRACEFUL_SHUTDOWN for %.1f s, then withdrawing", wait)
            for rt in self.peers.values():
                rt.peer.set_graceful_shutdown(True)
        if self.drain_state == "draining":
            try:  # the operator's wait, cut short by undrain
                await asyncio.wait_for(self._undrained.wait(), max(wait, 0.0))
            except asyncio.TimeoutError:
                pass
        async with self._reload_lock:
            if self.drain_state != "draining":
                return self.drain_status(started)
            for rt in self.peers.values():
                rt.peer.set_routes({})  # withdraw, then the Cease on the same stream
            await asyncio.gather(*(rt.peer.stop(message, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN)
                                   for rt in self.peers.values()), return_exceptions=True)
            self.drain_state = "drained"
            log.warning("drain: every route withdrawn and every session closed (%s)", message)
        return self.drain_status(started)

    async def undrain(self) -> dict:
        """End a drain: the routes are announced unmarked again and drained sessions restart."""
        async with self._reload_lock:
            was, self.drain_state = self.drain_state, None
            self._undrained.set()
            for name, rt in self.peers.items():
                rt.peer.set_graceful_shutdown(False)
                if was == "drained":
                    rt.peer.set_routes(route_attrs(self.plan.routes.get(name, {})) if self.plan else {})
                    rt.peer.start()
            if was:
                log.warning("undrain: %s", "sessions restarting" if was == "drained" else "drain cancelled")
        return {**self.drain_status(), "was": was}

    def drain_status(self, started: float | None = None) -> dict:
        out = {"state": self.drain_state or "active",
               "peers": [{"peer": name, "state": rt.peer.state.label,
                          "graceful_shutdown": rt.peer.graceful_shutdown,
                          "prefixes_sent": len(rt.peer.advertised_routes)}
                         for name, rt in sorted(self.peers.items())]}
        if started is not None:
            out["seconds"] = round(time.monotonic() - started, 3)
        return out
