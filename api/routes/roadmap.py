"""Roadmap status (actual versus budget, year-end forecast) and the trajectory.

Both are site-wide aggregates of every enterprise's emissions, so tenant keys,
which may see only their own enterprise, are refused (403).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from sqlalchemy import Connection

from api.auth import Role
from api.deps import ERRORS, Caller, Conn, not_found, require_role
from api.params import SiteQ
from api.repository.totals import yearly_actuals
from api.schemas import (
    ForecastOut,
    RoadmapStatusOut,
    TrajectoryOut,
    TrajectoryPoint,
    WindowOut,
)
from api.scope import resolve
from core.reporting import SiteRoadmap, roadmap_status, site_roadmap, trajectory

router = APIRouter(prefix="/v1/roadmap", tags=["roadmap"], responses=ERRORS)


def _roadmap(conn: Connection, caller: Caller, site: str) -> SiteRoadmap:
    require_role(caller, Role.admin, Role.operator)
    resolve(conn, caller, site)
    roadmap = site_roadmap(conn, site)
    if roadmap is None:
        raise not_found(f"roadmap of site {site!r}")
    return roadmap


@router.get("/status", response_model=RoadmapStatusOut, summary="Actual versus budget")
def status(conn: Conn, caller: Caller, site: SiteQ) -> RoadmapStatusOut:
    """Today, month to date and year to date (calendar boundaries in the site's time
    zone, up to now) against the roadmap's budget, and the year-end forecast:
    year-to-date actual plus the trailing 30 days' covered run rate over the
    year-to-date gaps and the rest of the year, against the year's target. Each
    carries its coverage: the shares of meter-hours measured, estimated and
    missing. Ratios are null when the budget is 0."""
    roadmap = _roadmap(conn, caller, site)
    s = roadmap_status(conn, roadmap, datetime.now(UTC))
    return RoadmapStatusOut(
        site=s.site_id,
        timezone=s.timezone,
        now=s.now,
        today=WindowOut.model_validate(s.today),
        month_to_date=WindowOut.model_validate(s.month_to_date),
        year_to_date=WindowOut.model_validate(s.year_to_date),
        forecast=ForecastOut.model_validate(s.forecast),
    )


@router.get("/trajectory", response_model=TrajectoryOut, summary="Annual targets by year")
def get_trajectory(conn: Conn, caller: Caller, site: SiteQ) -> TrajectoryOut:
    """The roadmap line for plotting: each year's target from the baseline year to
    the last milestone (or the current year), with the actual tCO2e of years with data."""
    roadmap = _roadmap(conn, caller, site)
    actuals = yearly_actuals(conn, site, roadmap.timezone)
    now_year = datetime.now(UTC).astimezone(roadmap.tz).year
    return TrajectoryOut(
        site=site,
        timezone=roadmap.timezone,
        baseline_year=roadmap.baseline_year,
        baseline_tco2e=roadmap.baseline_tco2e,
        milestones=list(roadmap.milestones),
        points=[
            TrajectoryPoint(year=y, target_tco2e=t, actual_tco2e=actuals.get(y))
            for y, t in trajectory(roadmap, until=now_year)
        ],
    )
