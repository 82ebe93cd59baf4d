"""How much of a window the totals stand on: meter-hours measured, estimated, missing.

A window's tonnes are only as good as the meter-hours behind them. Thirty days of
data in a year-to-date window are a ratio of 0.11 that means nothing unless the
answer also says that eleven months are missing; and a forecast must project from
what the covered hours emitted, not from zeros for the hours nobody measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from core.emissions.hours import HOUR, as_utc


def hour_floor(t: datetime) -> datetime:
    """Start of the UTC hour containing `t`."""
    return as_utc(t).replace(minute=0, second=0, microsecond=0)


def expected_meter_hours(commissioned: Iterable[datetime], start: datetime, end: datetime) -> int:
    """Meter-hours that should have data in [start, end): for each meter, the UTC hours
    starting there from the hour it was commissioned in."""
    total = 0
    for at in commissioned:
        lo = max(as_utc(start), hour_floor(at))
        if end > lo:
            total += math.ceil((as_utc(end) - lo) / HOUR)
    return total


@dataclass(frozen=True)
class Coverage:
    """Meter-hours of a window. Shares are of max(expected, measured + estimated), so
    a meter deactivated since (no longer expected, but with data) never pushes a
    share above 1; None when nothing is expected and nothing was measured."""

    expected_meter_hours: int
    measured_meter_hours: int
    estimated_meter_hours: int

    @property
    def covered_meter_hours(self) -> int:
        return self.measured_meter_hours + self.estimated_meter_hours

    @property
    def _base(self) -> int:
        return max(self.expected_meter_hours, self.covered_meter_hours)

    def _share(self, part: int) -> float | None:
        return part / self._base if self._base else None

    @property
    def measured_share(self) -> float | None:
        return self._share(self.measured_meter_hours)

    @property
    def estimated_share(self) -> float | None:
        return self._share(self.estimated_meter_hours)

    @property
    def missing_share(self) -> float | None:
        return self._share(self._base - self.covered_meter_hours)

    @property
    def covered_share(self) -> float | None:
        return self._share(self.covered_meter_hours)


def complete_coverage(
    commissioned: Iterable[datetime],
    start: datetime,
    end: datetime,
    now: datetime,
    measured_meter_hours: int,
    estimated_meter_hours: int,
) -> Coverage:
    """Coverage of the hours starting in [start, end) that are complete at `now`: the
    hour still running then is not expected yet, since its data is still arriving.
    `end` may fall inside an hour (a local day in a half-hour time zone): the hour
    starting before it still counts, as the totals count it."""
    stop = min(as_utc(end), hour_floor(now))
    return Coverage(
        expected_meter_hours=expected_meter_hours(commissioned, start, stop),
        measured_meter_hours=measured_meter_hours,
        estimated_meter_hours=estimated_meter_hours,
    )


def covered_rate_per_day(actual: float, days: float, coverage: Coverage) -> float | None:
    """The rate the covered meter-hours show, scaled to the whole window: what the
    window would have emitted had every expected meter-hour been measured like the
    covered ones. None when no meter-hour is covered (nothing to project from)."""
    share = coverage.covered_share
    if not share or days <= 0:
        return None
    return actual / (days * share)


def year_end_projection(
    ytd_actual: float,
    ytd_days: float,
    ytd_coverage: Coverage,
    rate_per_day: float,
    remaining_days: float,
) -> tuple[float, float]:
    """(year-end forecast, the part of it that fills the year-to-date gaps): the
    missing year-to-date meter-hours and the rest of the year both at `rate_per_day`."""
    gap_days = ytd_days * (ytd_coverage.missing_share or 0.0)
    filled = rate_per_day * gap_days
    return ytd_actual + filled + rate_per_day * max(remaining_days, 0.0), filled
