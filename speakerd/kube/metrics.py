"""Watch state per kind as Prometheus series, fed by :class:`Reflector`'s ``on_state`` hook.

    wm = WatchMetrics(); wm.register(metrics.registry)
    Reflector(client, SERVICES, on_state=wm.update)

Series: ``speakerd_k8s_watch_up{kind}`` (1 while listing succeeded and the watch is open),
``speakerd_k8s_watch_relists_total{kind}`` (lists after the first: 410 Gone), and
``speakerd_k8s_watch_events_total{kind}`` (changes emitted to consumers).
"""
from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class WatchMetrics:
    def __init__(self) -> None:
        self._kinds: dict[str, object] = {}

    def update(self, reflector) -> None:
        self._kinds[reflector.kind.label] = reflector

    def states(self) -> dict[str, dict]:
        """``{kind: {"up", "state", "resourceVersion", "objects", "relists", "error"}}`` for status output."""
        return {k: {"up": r.up, "state": r.state, "resourceVersion": r.resource_version,
                    "objects": len(r.cache), "relists": r.relists, "error": r.last_error}
                for k, r in sorted(self._kinds.items())}

    def collect(self):
        up = GaugeMetricFamily("speakerd_k8s_watch_up", "1 while the list+watch of this kind is up", labels=["kind"])
        relists = CounterMetricFamily("speakerd_k8s_watch_relists", "lists after the first (410 Gone)",
                                      labels=["kind"])
        events = CounterMetricFamily("speakerd_k8s_watch_events", "changes emitted to consumers", labels=["kind"])
        for k, r in sorted(self._kinds.items()):
            up.add_metric([k], 1.0 if r.up else 0.0)
            relists.add_metric([k], r.relists)
            events.add_metric([k], r.events)
        yield up
        yield relists
        yield events

    def register(self, registry) -> None:
        registry.register(self)
