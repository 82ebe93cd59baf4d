"""Hourly consumption, the factor valid for an hour, and reporting scopes (SPEC section 5).

CO2e of a meter-hour is its consumption times the factor valid at the start of the
hour; these helpers give both halves of that product and the scope it is reported in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from core.emissions.counters import Interval
from core.emissions.hours import as_utc, spread

SCOPES: Final[dict[str, int]] = {
    "natural_gas": 1,
    "diesel": 1,
    "lpg": 1,
    "electricity": 2,
    "solar": 2,
    "water": 3,
    "wastewater": 3,
    # Production output carries no CO2e and belongs to no scope.
    "production": 0,
    "production_pcs": 0,
}


def hourly_consumption(intervals: Iterable[Interval]) -> dict[datetime, tuple[float, bool]]:
    """Consumption per UTC hour start and whether it is estimated, in hour order.

    Every hour an interval overlaps appears, even when the interval's amount is 0: a
    meter that consumed nothing has hours of 0.0, which is data, whereas a missing hour
    means no data (an hour touched only at a single instant is not overlapped, except
    by a zero-length interval, which belongs to the hour containing it). An hour is
    estimated when any interval contributing to it is. Parts are summed with `fsum`, so
    the result does not depend on the order of the intervals.
    """
    parts: dict[datetime, list[float]] = {}
    estimated: dict[datetime, bool] = {}
    for interval in intervals:
        for hour, part in spread(interval.t0, interval.t1, interval.amount).items():
            parts.setdefault(hour, []).append(part)
            estimated[hour] = estimated.get(hour, False) or interval.estimated
    return {hour: (math.fsum(parts[hour]), estimated[hour]) for hour in sorted(parts)}


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


def scope_of(kind: str) -> int:
    """GHG Protocol scope a meter kind reports in.

    Fuels burnt on site are scope 1, grid electricity scope 2 (location-based), water
    and wastewater scope 3. Solar is listed under scope 2 because its generation is
    reported as avoided scope 2 emissions (generation x grid factor); its own CO2e is 0.
    """
    try:
        return SCOPES[kind]
    except KeyError:
        raise ValueError(f"unknown meter kind {kind!r}") from None
