"""Delta meters: each reading is the consumption of the interval it closes (SPEC section 5).

A gateway reporting every `interval_s` seconds sends what was consumed since its last
report, so a reading (t, v) is v spread uniformly over (t - interval_s, t]. Nothing is
inferred from neighbouring readings, so such intervals are never estimated and a late
reading only touches its own hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from core.emissions.counters import Interval, Reading, sorted_readings


def delta_intervals(readings: Sequence[Reading], interval_s: int) -> list[Interval]:
    """One interval (t - interval_s, t] with amount v per reading, in time order, UTC."""
    if interval_s <= 0:
        raise ValueError(f"interval_s must be positive, got {interval_s!r}")
    length = timedelta(seconds=interval_s)
    return [Interval(r.ts - length, r.ts, r.value, False) for r in sorted_readings(readings)]
