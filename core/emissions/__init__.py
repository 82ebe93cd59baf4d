"""Pure emissions arithmetic (SPEC section 5): no I/O, no database, no logging.

The engine and the API feed stored readings, factors and roadmaps in and get numbers
out, so every rule operators and auditors rely on is testable on its own and a full
recomputation is always possible from raw data.
"""

from __future__ import annotations

from core.emissions.counters import (
    Interval,
    QualityEvent,
    QualityKind,
    Reading,
    Replacement,
    certainly_kept,
    counter_intervals,
    register_segments,
)
from core.emissions.delta import delta_intervals
from core.emissions.hourly import factor_at, hourly_consumption
from core.emissions.hours import as_utc, ceil_hour, floor_hour, spread
from core.emissions.roadmap import annual_target_tco2e, reduction_pct, window_budget_tco2e

__all__ = [
    "Interval",
    "QualityEvent",
    "QualityKind",
    "Reading",
    "Replacement",
    "annual_target_tco2e",
    "as_utc",
    "ceil_hour",
    "certainly_kept",
    "counter_intervals",
    "delta_intervals",
    "factor_at",
    "floor_hour",
    "hourly_consumption",
    "reduction_pct",
    "register_segments",
    "spread",
    "window_budget_tco2e",
]
