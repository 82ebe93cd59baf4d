"""Roadmap status from the stored totals (SPEC section 5): actual versus budget for
calendar windows in the site's time zone, and the year-end forecast.

The arithmetic of targets and budgets lives in `core.emissions.roadmap`; this module
adds the SQL (actuals from the `site_hourly` / `enterprise_hourly` rollups) and the
window boundaries. An hour belongs to a window when its start lies in [start, end),
so "today so far" includes the current, still growing hour. Budgets of partial
windows are pro rata to time. Net-zero years have a budget of 0: ratios are then
None, never a division by zero.

Every window and the forecast carry their coverage (core.emissions.coverage): the
share of the window's complete meter-hours measured, estimated and missing. The
forecast projects the covered run rate over the year-to-date gaps and the rest of
the year, so missing months are not read as months without emissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from core.emissions.coverage import (
    Coverage,
    complete_coverage,
    covered_rate_per_day,
    hour_floor,
    year_end_projection,
)
from core.emissions.hours import as_utc
from core.emissions.roadmap import annual_target_tco2e, window_budget_tco2e, year_start
from core.meter_kinds import PRODUCTION_KINDS

RUN_RATE_WINDOW = timedelta(days=30)
_DAY_S = 86_400.0


@dataclass(frozen=True)
class SiteRoadmap:
    site_id: str
    timezone: str
    baseline_year: int
    baseline_tco2e: float
    milestones: tuple[tuple[int, float], ...]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def target_tco2e(self, year: int) -> float:
        """The calendar year's target (linear between milestones)."""
        return annual_target_tco2e(self.baseline_year, self.baseline_tco2e, self.milestones, year)


def _ratio(actual: float, budget: float) -> float | None:
    return actual / budget if budget > 0 else None


@dataclass(frozen=True)
class WindowStatus:
    window: str
    start: datetime
    end: datetime
    actual_tco2e: float
    budget_tco2e: float
    coverage: Coverage

    @property
    def ratio(self) -> float | None:
        """actual / budget; None when the budget is 0 (a net-zero year)."""
        return _ratio(self.actual_tco2e, self.budget_tco2e)


@dataclass(frozen=True)
class Forecast:
    year: int
    ytd_actual_tco2e: float
    run_rate_tco2e_per_day: float
    forecast_tco2e: float
    target_tco2e: float
    ytd_coverage: Coverage
    run_rate_coverage: Coverage
    # The part of forecast_tco2e that fills year-to-date meter-hours with no data.
    gap_fill_tco2e: float

    @property
    def ratio(self) -> float | None:
        """forecast / target; None when the target is 0 (a net-zero year)."""
        return _ratio(self.forecast_tco2e, self.target_tco2e)


@dataclass(frozen=True)
class RoadmapStatus:
    site_id: str
    timezone: str
    now: datetime
    today: WindowStatus
    month_to_date: WindowStatus
    year_to_date: WindowStatus
    forecast: Forecast


def site_roadmap(conn: Connection, site_id: str) -> SiteRoadmap | None:
    """The site's roadmap, or None when the site is unknown or has none."""
    row = conn.execute(
        text(
            "SELECT s.timezone, r.baseline_year, r.baseline_tco2e FROM roadmaps r "
            "JOIN sites s ON s.id = r.site_id WHERE r.site_id = :s"
        ),
        {"s": site_id},
    ).first()
    if row is None:
        return None
    milestones = conn.execute(
        text("SELECT year, reduction_pct FROM roadmap_milestones WHERE site_id = :s ORDER BY year"),
        {"s": site_id},
    )
    return SiteRoadmap(
        site_id=site_id,
        timezone=str(row.timezone),
        baseline_year=int(row.baseline_year),
        baseline_tco2e=float(row.baseline_tco2e),
        milestones=tuple((int(m.year), float(m.reduction_pct)) for m in milestones),
    )


_SITE_SUM = text(
    "SELECT coalesce(sum(co2e_kg), 0) FROM site_hourly "
    "WHERE site_id = :s AND hour >= :a AND hour < :b"
)
_ENTERPRISE_SUM = text(
    "SELECT coalesce(sum(co2e_kg), 0) FROM enterprise_hourly "
    "WHERE enterprise_id = :e AND site_id = :s AND hour >= :a AND hour < :b"
)


def actual_tco2e(
    conn: Connection,
    site_id: str,
    start: datetime,
    end: datetime,
    *,
    enterprise_id: str | None = None,
) -> float:
    """tCO2e of the hours starting in [start, end): the site's totals, or one
    enterprise's (sub-meters excluded, as in the rollups)."""
    params = {"s": site_id, "e": enterprise_id, "a": as_utc(start), "b": as_utc(end)}
    statement = _SITE_SUM if enterprise_id is None else _ENTERPRISE_SUM
    return float(conn.execute(statement, params).scalar_one()) / 1000.0


_SITE_COVERED = text(
    "SELECT coalesce(sum(meter_hours - estimated_meter_hours), 0), "
    "coalesce(sum(estimated_meter_hours), 0) FROM site_hourly "
    "WHERE site_id = :s AND hour >= :a AND hour < :b AND kind <> ALL(:output_kinds)"
)
_ENTERPRISE_COVERED = text(
    "SELECT coalesce(sum(meter_hours - estimated_meter_hours), 0), "
    "coalesce(sum(estimated_meter_hours), 0) FROM enterprise_hourly "
    "WHERE enterprise_id = :e AND site_id = :s AND hour >= :a AND hour < :b "
    "AND kind <> ALL(:output_kinds)"
)
# What the totals count: active main meters (sub-meters measure part of a parent);
# production output carries no CO2e, so it is no part of the emissions' coverage.
_COMMISSIONED = text(
    "SELECT commissioned_at FROM meters WHERE site_id = :s AND active AND parent_id IS NULL "
    "AND kind <> ALL(:output_kinds) "
    "AND (CAST(:e AS text) IS NULL OR enterprise_id = :e)"
)


def coverage(
    conn: Connection,
    site_id: str,
    start: datetime,
    end: datetime,
    *,
    enterprise_id: str | None = None,
) -> Coverage:
    """Meter-hours of the complete UTC hours in [start, end): the hour still running
    at `end` is left out, since its data is still arriving."""
    params = {
        "s": site_id,
        "e": enterprise_id,
        "a": as_utc(start),
        "b": hour_floor(end),
        "output_kinds": sorted(PRODUCTION_KINDS),
    }
    statement = _SITE_COVERED if enterprise_id is None else _ENTERPRISE_COVERED
    measured, estimated = conn.execute(statement, params).one()
    commissioned = counted_commissioning(conn, site_id, enterprise_id=enterprise_id)
    return complete_coverage(commissioned, start, end, end, int(measured), int(estimated))


def counted_commissioning(
    conn: Connection, site_id: str, *, enterprise_id: str | None = None
) -> list[datetime]:
    """When each meter whose hours a coverage expects was commissioned: the one
    answer to "which meters should have data", for the roadmap and the API's totals."""
    params = {"s": site_id, "e": enterprise_id, "output_kinds": sorted(PRODUCTION_KINDS)}
    return list(conn.execute(_COMMISSIONED, params).scalars())


def budget_tco2e(roadmap: SiteRoadmap, start: datetime, end: datetime) -> float:
    """Budget of [start, end) with calendar years in the site's time zone."""
    return window_budget_tco2e(
        start,
        end,
        roadmap.baseline_year,
        roadmap.baseline_tco2e,
        roadmap.milestones,
        tz=roadmap.tz,
    )


def window_status(
    conn: Connection,
    roadmap: SiteRoadmap,
    window: str,
    start: datetime,
    end: datetime,
    *,
    enterprise_id: str | None = None,
) -> WindowStatus:
    return WindowStatus(
        window=window,
        start=as_utc(start),
        end=as_utc(end),
        actual_tco2e=actual_tco2e(conn, roadmap.site_id, start, end, enterprise_id=enterprise_id),
        budget_tco2e=budget_tco2e(roadmap, start, end),
        coverage=coverage(conn, roadmap.site_id, start, end, enterprise_id=enterprise_id),
    )


def _local_starts(roadmap: SiteRoadmap, now: datetime) -> tuple[datetime, datetime, datetime]:
    """Start (UTC) of the local day, month and year containing `now`."""
    local = as_utc(now).astimezone(roadmap.tz)
    day = datetime(local.year, local.month, local.day, tzinfo=roadmap.tz)
    month = datetime(local.year, local.month, 1, tzinfo=roadmap.tz)
    return as_utc(day), as_utc(month), year_start(local.year, roadmap.tz)


def year_end_forecast(conn: Connection, roadmap: SiteRoadmap, now: datetime) -> Forecast:
    """Year-to-date actual, plus the covered run rate of the trailing 30 days (of the
    year to date, when those 30 days have no data) over the year-to-date gaps and
    the rest of the site's calendar year, against that year's target."""
    now = as_utc(now)
    year = now.astimezone(roadmap.tz).year
    begins, ends = year_start(year, roadmap.tz), year_start(year + 1, roadmap.tz)
    ytd = actual_tco2e(conn, roadmap.site_id, begins, now)
    ytd_coverage = coverage(conn, roadmap.site_id, begins, now)
    # The last 30 days of complete hours: the running hour is still arriving.
    recent_end = hour_floor(now)
    recent_start = recent_end - RUN_RATE_WINDOW
    recent = actual_tco2e(conn, roadmap.site_id, recent_start, recent_end)
    recent_coverage = coverage(conn, roadmap.site_id, recent_start, recent_end)
    complete_days = RUN_RATE_WINDOW.total_seconds() / _DAY_S
    ytd_days = max((hour_floor(now) - begins).total_seconds(), 0.0) / _DAY_S
    run_rate = covered_rate_per_day(recent, complete_days, recent_coverage)
    if run_rate is None:
        run_rate = covered_rate_per_day(ytd, ytd_days, ytd_coverage) or 0.0
    remaining_days = max((ends - now).total_seconds(), 0.0) / _DAY_S
    forecast, filled = year_end_projection(ytd, ytd_days, ytd_coverage, run_rate, remaining_days)
    return Forecast(
        year=year,
        ytd_actual_tco2e=ytd,
        run_rate_tco2e_per_day=run_rate,
        forecast_tco2e=forecast,
        target_tco2e=roadmap.target_tco2e(year),
        ytd_coverage=ytd_coverage,
        run_rate_coverage=recent_coverage,
        gap_fill_tco2e=filled,
    )


def roadmap_status(conn: Connection, roadmap: SiteRoadmap, now: datetime) -> RoadmapStatus:
    """Today, month to date and year to date (calendar boundaries in the site's time
    zone, each ending at `now`) and the year-end forecast."""
    now = as_utc(now)
    day, month, year = _local_starts(roadmap, now)
    return RoadmapStatus(
        site_id=roadmap.site_id,
        timezone=roadmap.timezone,
        now=now,
        today=window_status(conn, roadmap, "today", day, now),
        month_to_date=window_status(conn, roadmap, "month_to_date", month, now),
        year_to_date=window_status(conn, roadmap, "year_to_date", year, now),
        forecast=year_end_forecast(conn, roadmap, now),
    )


def trajectory(roadmap: SiteRoadmap, until: int | None = None) -> list[tuple[int, float]]:
    """(year, target tCO2e) for every year from the baseline to the last milestone
    (or `until`, when later): the roadmap line for plotting."""
    last = max([roadmap.baseline_year, *(y for y, _ in roadmap.milestones)])
    if until is not None:
        last = max(last, until)
    return [(y, roadmap.target_tco2e(y)) for y in range(roadmap.baseline_year, last + 1)]
