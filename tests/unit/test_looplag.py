"""The event-loop lag probe: what it records and what /metrics shows."""
from __future__ import annotations

import asyncio

from speakerd.looplag import LagStats, LoopLagProbe
from speakerd.metrics import Metrics


def test_stats_keep_the_largest_lag_and_count_the_ones_worth_a_log_line():
    s = LagStats(warn=0.1)
    assert [s.observe(x) for x in (0.002, 0.35, 0.05, 0.101)] == [False, True, False, True]
    assert s.samples == 4 and s.max == 0.35 and s.over_warn == 2


async def test_probe_samples_on_the_loop_and_exports_the_histogram():
    m = Metrics(process=False)
    probe = LoopLagProbe(interval=0.001, registry=m.registry)
    probe.start()
    try:
        while probe.stats.samples < 3:  # the probe's own timer ran three times
            await asyncio.sleep(0.001)
    finally:
        probe.stop()
    text = m.render().decode()
    assert "speakerd_event_loop_lag_seconds_bucket" in text
    count = [line for line in text.splitlines() if line.startswith("speakerd_event_loop_lag_seconds_count")]
    assert count == [f"speakerd_event_loop_lag_seconds_count {float(probe.stats.samples)}"]
    peak = [line for line in text.splitlines() if line.startswith("speakerd_event_loop_lag_max_seconds ")]
    assert len(peak) == 1 and float(peak[0].split()[1]) == probe.stats.max
