"""Roadmap targets and budgets (SPEC section 5).

A roadmap is a baseline (year, tCO2e) and milestones (year, reduction %). The target
of a year interpolates the reduction linearly between milestones; the budget of a
window is its share of each calendar year's target, pro rata to time, so "today
versus budget" and "year to date" are computed the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from itertools import pairwise

from core.emissions.hours import as_utc, microseconds


def roadmap_points(
    baseline_year: int, milestones: Sequence[tuple[int, float]]
) -> list[tuple[int, float]]:
    """(year, reduction %) knots: 0 % at the baseline year, then the milestones in order."""
    points = [(baseline_year, 0.0), *sorted((y, float(pct)) for y, pct in milestones)]
    for (year, _), (next_year, _) in pairwise(points):
        if next_year <= year:
            raise ValueError(
                f"milestone years must be distinct and after the baseline {baseline_year}"
            )
    return points


def reduction_pct(baseline_year: int, milestones: Sequence[tuple[int, float]], year: int) -> float:
    """Reduction % against the baseline targeted for `year`.

    0 % up to the baseline year, linear between knots, the last milestone's % after it.
    """
    points = roadmap_points(baseline_year, milestones)
    if year <= points[0][0]:
        return 0.0
    for (y0, p0), (y1, p1) in pairwise(points):
        if year <= y1:
            return p0 + (p1 - p0) * (year - y0) / (y1 - y0)
    return points[-1][1]


def annual_target_tco2e(
    baseline_year: int,
    baseline_tco2e: float,
    milestones: Sequence[tuple[int, float]],
    year: int,
) -> float:
    """Emissions target of calendar `year` in tCO2e; the baseline value before the baseline."""
    return baseline_tco2e * (100.0 - reduction_pct(baseline_year, milestones, year)) / 100.0


def year_start(year: int, tz: tzinfo) -> datetime:
    """Instant (UTC) at which calendar `year` starts in `tz`."""
    return as_utc(datetime(year, 1, 1, tzinfo=tz))


def window_budget_tco2e(
    start: datetime,
    end: datetime,
    baseline_year: int,
    baseline_tco2e: float,
    milestones: Sequence[tuple[int, float]],
    *,
    tz: tzinfo = UTC,
) -> float:
    """Budget of [start, end) in tCO2e: per hour, the year's target / hours in that year.

    Computed per calendar-year segment as target x overlap / year length (exact
    microseconds), which equals the hourly sum for hour-aligned windows and counts a
    partial hour pro rata (so "today so far" has a budget). Leap years have 8784 hours.
    Calendar years begin at midnight in `tz` (the site's time zone; UTC by default).
    An empty or reversed window has budget 0.
    """
    lo, hi = as_utc(start), as_utc(end)
    total = 0.0
    year = lo.astimezone(tz).year
    while lo < hi:
        begins, ends = year_start(year, tz), year_start(year + 1, tz)
        covered = microseconds(min(hi, ends) - max(lo, begins))
        if covered > 0:
            target = annual_target_tco2e(baseline_year, baseline_tco2e, milestones, year)
            total += target * covered / microseconds(ends - begins)
        lo, year = max(lo, ends), year + 1
    return total
