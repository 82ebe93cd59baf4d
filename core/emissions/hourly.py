"""Hourly consumption and the factor valid for an hour (SPEC section 5).

CO2e of a meter-hour is its consumption times the factor valid at the start of the
hour; these helpers give both halves of that product (the scope it is reported in
belongs to its meter kind: `core.meter_kinds`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from core.emissions.counters import Interval
from core.emissions.hours import HOUR, as_utc, spread

# An empty hour no instant falls in, before the first interval is seen.
_NO_HOUR = datetime.min.replace(tzinfo=UTC)


def hourly_consumption(intervals: Iterable[Interval]) -> dict[datetime, tuple[float, bool]]:
    """Consumption per UTC hour start and whether it is estimated, in hour order.

    Every hour an interval overlaps appears, even when the interval's amount is 0: a
    meter that consumed nothing has hours of 0.0, which is data, whereas a missing hour
    means no data (an hour touched only at a single instant is not overlapped, except
    by a zero-length interval, which belongs to the hour containing it). An hour is
    estimated when any interval contributing to it is. Parts are summed with `fsum`, so
    the result does not depend on the order of the intervals.

    Most intervals (a reading a minute) lie inside one hour, which then receives the
    whole amount, exactly as `spread` would give it; consecutive ones usually share
    that hour, so it is found without `spread`'s general split, which recomputing a
    year of minute readings would otherwise call half a million times a meter.
    """
    parts: dict[datetime, list[float]] = {}
    estimated: set[datetime] = set()
    start = end = _NO_HOUR  # the hour of the last one-hour interval: [start, end)
    bucket: list[float] = []
    for interval in intervals:
        t0, t1, amount = interval.t0, interval.t1, interval.amount
        if t0.tzinfo is UTC and t1.tzinfo is UTC and t0 <= t1:
            if not start <= t0 < end:
                start = t0.replace(minute=0, second=0, microsecond=0)
                end = start + HOUR
                bucket = parts.setdefault(start, [])
            if t1 <= end:
                if not math.isfinite(amount):
                    raise ValueError(f"amount {amount!r} is not finite")
                bucket.append(amount)
                if interval.estimated:
                    estimated.add(start)
                continue
        for hour, part in spread(t0, t1, amount).items():  # across hours, or not UTC
            parts.setdefault(hour, []).append(part)
            if interval.estimated:
                estimated.add(hour)
    return {hour: (math.fsum(parts[hour]), hour in estimated) for hour in sorted(parts)}


def factor_at(
    values: Sequence[tuple[datetime, float, int]], hour: datetime
) -> tuple[float, int] | None:
    """(kgco2e_per_unit, value_id) of the factor value valid at `hour`, or None.

    The valid value is the one with the greatest valid_from at or before `hour` (pass
    the hour's start). Two values with the same valid_from are resolved in favour of
    the greater value_id, i.e. the one published last.
    """
    at = as_utc(hour)
    valid = [(as_utc(start), id_, kg) for start, kg, id_ in values if as_utc(start) <= at]
    if not valid:
        return None
    _, value_id, kg = max(valid)
    return kg, value_id
