"""The plausibility guard: consumption no meter can have used is not priced.

A counter that restarts (a simulator run without its state, a device reset to a
factory value) reads as a reset, and a reset counts the whole new register value
as consumed: 55 such resets once added 2,727 tCO2e in two hours. Each meter may
declare the most it can use per hour (`max_rate_per_h`, in its unit), or one is
derived from its own history; an interval above it becomes an `implausible`
data-quality event, its consumption is kept out of the totals and its hours are
marked estimated, until an admin accepts it (then it counts as read) or records a
replacement (then the interval is restated from the replacement's values).

Pure functions over `core.emissions.counters` intervals: the engine applies
`guard_intervals` right after `counter_intervals` (engine/refresh.py,
engine/append.py) with the meter's `max_rate_per_h` and the interval ends in
`accepted_intervals` (`emissions engine accept-interval`). `derived_max_rate` is
for meters without a declared limit; the engine does not apply it yet.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from core.emissions.counters import Interval, QualityEvent
from core.emissions.hours import as_utc

HOUR_S = 3600.0
# A derived limit needs this much history, and allows this multiple of its p99 rate.
MIN_HISTORY_INTERVALS = 168
DERIVED_FACTOR = 5.0


def interval_rate_per_h(interval: Interval) -> float:
    """Consumption per hour over the interval; an instantaneous one is infinitely fast
    unless it consumed nothing."""
    seconds = (interval.t1 - interval.t0).total_seconds()
    if seconds <= 0:
        return 0.0 if interval.amount == 0 else math.inf
    return interval.amount / (seconds / HOUR_S)


def guard_intervals(
    intervals: Sequence[Interval],
    max_rate_per_h: float | None,
    accepted: Collection[datetime] = (),
) -> tuple[list[Interval], list[QualityEvent]]:
    """Intervals with every implausible one emptied and marked estimated, and one
    `implausible` event (at the interval's end) per interval kept out.

    `accepted` holds the ends of intervals an admin accepted: they count as read.
    Without a limit nothing changes."""
    if max_rate_per_h is None:
        return list(intervals), []
    if not max_rate_per_h > 0:
        raise ValueError(f"max_rate_per_h must be positive, got {max_rate_per_h!r}")
    accepted_utc = {as_utc(t) for t in accepted}
    kept: list[Interval] = []
    events: list[QualityEvent] = []
    for interval in intervals:
        rate = interval_rate_per_h(interval)
        if rate <= max_rate_per_h or as_utc(interval.t1) in accepted_utc:
            kept.append(interval)
            continue
        kept.append(interval._replace(amount=0.0, estimated=True))
        detail = {
            "consumption": interval.amount,
            "rate_per_h": rate,
            "max_rate_per_h": max_rate_per_h,
            "hours": (interval.t1 - interval.t0) / timedelta(hours=1),
        }
        events.append(QualityEvent(as_utc(interval.t1), "implausible", detail))
    return kept, events


def derived_max_rate(
    history: Sequence[Interval],
    *,
    factor: float = DERIVED_FACTOR,
    min_intervals: int = MIN_HISTORY_INTERVALS,
) -> float | None:
    """A limit from the meter's own plausible history: `factor` x its 99th-percentile
    hourly rate. None with too little history (no guard rather than a wrong one)."""
    rates = sorted(interval_rate_per_h(i) for i in history if not i.estimated and i.t1 > i.t0)
    if len(rates) < min_intervals:
        return None
    p99 = rates[min(len(rates) - 1, math.ceil(0.99 * len(rates)) - 1)]
    return factor * p99 if p99 > 0 else None


def with_guard(
    intervals: list[Interval],
    events: list[QualityEvent],
    max_rate_per_h: float | None,
    accepted: Collection[datetime],
) -> tuple[list[Interval], list[QualityEvent]]:
    """`counter_intervals`' result with the guard applied: what the engine's general
    and append paths both store, so the two can never disagree."""
    if max_rate_per_h is None:
        return intervals, events
    kept, implausible = guard_intervals(intervals, max_rate_per_h, accepted)
    return kept, sorted([*events, *implausible], key=lambda e: e.ts)
