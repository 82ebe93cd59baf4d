"""The common case, fast: a meter's new readings all come after its watermark.

Recomputing whole hours would cost time proportional to the readings in the hour
(hundreds of thousands for a fast meter). Instead, from a certainly-kept anchor
a few readings before the first new one, compute the window's hourly amounts
without and with the new readings and apply the difference to the stored hours.
The anchor makes both computations agree with a full recomputation, so the
result is the same as recomputing everything (to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from core.emissions.counters import counter_intervals
from core.emissions.delta import delta_intervals
from core.emissions.hourly import hourly_consumption
from core.emissions.hours import HOUR
from core.emissions.plausibility import with_guard
from engine import repository as repo
from engine.reads import MeterReads
from engine.windows import END_OF_TIME, REACH, anchor_before
from engine.writes import BatchWrites


def _apply(
    reads: MeterReads,
    writes: BatchWrites,
    meter: repo.MeterSpec,
    old: dict[datetime, tuple[float, bool]],
    new: dict[datetime, tuple[float, bool]],
    rows_for: Callable[
        [dict[datetime, tuple[float, bool]], datetime, datetime], list[repo.HourRow]
    ],
) -> int | None:
    """Stored hours + (new - old); None when an hour would lose its estimated flag
    (the stored flag may come from outside the window: recompute in full then)."""
    if any(est and not new.get(h, (0.0, False))[1] for h, (_, est) in old.items()):
        return None
    hours = sorted(set(old) | set(new))
    if not hours:
        return 0
    h0, h1 = hours[0], hours[-1] + HOUR
    stored = reads.stored(h0, h1)
    merged: dict[datetime, tuple[float, bool]] = dict(stored)
    for hour in hours:
        base, base_est = stored.get(hour, (0.0, False))
        amount = base - old.get(hour, (0.0, False))[0] + new.get(hour, (0.0, False))[0]
        merged[hour] = (amount, base_est or new.get(hour, (0.0, False))[1])
    rows = rows_for(merged, h0, h1)
    writes.replace_hours(meter, h0, h1, rows)
    return len(hours)


def append_counter(
    reads: MeterReads,
    writes: BatchWrites,
    meter: repo.MeterSpec,
    watermark: datetime,
    first_new: datetime,
    rows_for: Callable[
        [dict[datetime, tuple[float, bool]], datetime, datetime], list[repo.HourRow]
    ],
) -> tuple[int, datetime] | None:
    replacements = reads.replacements
    if any(r.at > watermark for r in replacements):
        return None
    pre = reads.before(first_new, REACH)
    limit = pre[0].ts if pre else first_new
    anchor, _ = anchor_before(
        lambda n: reads.before(limit + timedelta(microseconds=1), n),
        limit,
        replacements,
    )
    if anchor is None:
        return None
    readings = reads.between(anchor.ts, END_OF_TIME)
    old_readings = [r for r in readings if r.ts <= watermark]
    inside = [r for r in replacements if r.at > anchor.ts]
    old_iv, _ = counter_intervals(old_readings, meter.rollover, meter.max_gap_s, inside)
    new_iv, events = counter_intervals(readings, meter.rollover, meter.max_gap_s, inside)
    old_iv, _ = with_guard(old_iv, [], meter.max_rate_per_h, reads.accepted)
    new_iv, events = with_guard(new_iv, events, meter.max_rate_per_h, reads.accepted)
    written = _apply(
        reads, writes, meter, hourly_consumption(old_iv), hourly_consumption(new_iv), rows_for
    )
    if written is None:
        return None
    writes.replace_events(meter.id, anchor.ts, END_OF_TIME, events)
    return written, readings[-1].ts


def append_delta(
    reads: MeterReads,
    writes: BatchWrites,
    meter: repo.MeterSpec,
    watermark: datetime,
    rows_for: Callable[
        [dict[datetime, tuple[float, bool]], datetime, datetime], list[repo.HourRow]
    ],
) -> tuple[int, datetime] | None:
    """Delta readings are independent: the new ones only add to their hours."""
    assert meter.interval_s is not None
    after = watermark + timedelta(microseconds=1)
    new = reads.between(after, END_OF_TIME)
    if not new:
        return 0, watermark
    amounts = hourly_consumption(delta_intervals(new, meter.interval_s))
    written = _apply(reads, writes, meter, {}, amounts, rows_for)
    assert written is not None
    return written, new[-1].ts
