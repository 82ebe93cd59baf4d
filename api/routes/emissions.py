"""Hourly emissions (the SPEC section 6 contract) and daily / monthly totals."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response

from api.deps import ERRORS, AppSettings, Caller, Conn
from api.params import End, EnterpriseQ, MeterQ, SiteQ, Start, local_range, utc_range
from api.repository import hourly as hourly_repo
from api.repository import inventory as inventory_repo
from api.repository import totals as totals_repo
from api.schemas import CoverageOut, HourlyOut, PeriodTotal, TotalsOut
from api.scope import resolve
from core.emissions.coverage import Coverage, expected_meter_hours, hour_floor
from core.meter_kinds import PRODUCTION_KINDS

router = APIRouter(prefix="/v1/emissions", tags=["emissions"], responses=ERRORS)

Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="Overrides the Accept header (text/csv or application/json)."),
]


def wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


@router.get(
    "/hourly",
    response_model=HourlyOut,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    summary="Hourly CO2e and consumption per kind of a site, enterprise or meter",
)
def hourly(
    request: Request,
    conn: Conn,
    caller: Caller,
    settings: AppSettings,
    site: SiteQ,
    start: Start,
    end: End,
    enterprise: EnterpriseQ = None,
    meter: MeterQ = None,
    format: Format = None,
) -> Response:
    """Every UTC hour in [start, end) with attributed consumption, in time order.

    Site and enterprise figures are the engine's totals (sub-meters excluded);
    a meter's are its own hours. Consumption is in the kind's canonical unit.
    `estimated` is true when a meter-hour of it spans a data gap. The range may
    span at most `EMISSIONS_API_MAX_HOURLY_DAYS` days (366 by default).
    With `Accept: text/csv`: one line per (hour, kind)."""
    a, b = utc_range(start, end, settings.api_max_hourly_days)
    scope = resolve(conn, caller, site, enterprise, meter)
    if wants_csv(request, format):
        return Response(hourly_repo.hourly_csv(conn, scope, a, b), media_type="text/csv")
    body = hourly_repo.hourly_json(conn, scope, a, b, request.app.state.hourly_cache)
    return Response(body, media_type="application/json")


def _totals(
    conn: Conn,
    caller: Caller,
    site: str,
    enterprise: str | None,
    start: date,
    end: date,
    period: Literal["day", "month"],
    max_days: int,
) -> TotalsOut:
    scope = resolve(conn, caller, site, enterprise)
    a, b = local_range(start, end, scope.timezone, max_days)
    commissioned = [
        m.commissioned_at
        for m in inventory_repo.meters_in_totals(conn, scope)
        if m.kind not in PRODUCTION_KINDS
    ]
    complete = hour_floor(datetime.now(UTC))
    items = []
    for row in totals_repo.period_totals(conn, scope, period, a, b):
        local = row["start"].astimezone(ZoneInfo(scope.timezone))
        nxt = _next_period(local, period)
        lo, hi = max(row["start"], a), min(nxt, b)
        covered = Coverage(
            expected_meter_hours=expected_meter_hours(commissioned, lo, min(hi, complete)),
            measured_meter_hours=int(row["measured_meter_hours"]),
            estimated_meter_hours=int(row["estimated_meter_hours"]),
        )
        items.append(
            PeriodTotal(
                period=local.strftime("%Y-%m-%d" if period == "day" else "%Y-%m"),
                start=max(row["start"], a),
                end=min(nxt, b),
                co2e_kg=row["co2e_kg"],
                avoided_co2e_kg=row["avoided_co2e_kg"],
                by_scope={"1": row["s1"], "2": row["s2"], "3": row["s3"]},
                estimated=row["estimated"],
                hours=row["hours"],
                coverage=CoverageOut.of(covered),
            )
        )
    return TotalsOut(
        site=site,
        enterprise=scope.enterprise_id,
        timezone=scope.timezone,
        period=period,
        items=items,
    )


def _next_period(local: datetime, period: str) -> datetime:
    """Start (UTC) of the local day or month after the one starting at `local`."""
    if period == "day":
        return datetime.combine(local.date() + timedelta(days=1), time(), local.tzinfo).astimezone(
            UTC
        )
    y, m = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(y, m, 1, tzinfo=local.tzinfo).astimezone(UTC)


LocalDay = Annotated[date, Query(description="Local date at the site, YYYY-MM-DD.")]


@router.get("/daily", response_model=TotalsOut, summary="Totals per local day at the site")
def daily(
    conn: Conn,
    caller: Caller,
    site: SiteQ,
    start: LocalDay,
    end: Annotated[date, Query(description="Local date, exclusive.")],
    enterprise: EnterpriseQ = None,
) -> TotalsOut:
    """CO2e per local day in [start, end) (at most 366 days), with the scope 1/2/3
    split and the avoided emissions of solar generation."""
    return _totals(conn, caller, site, enterprise, start, end, "day", 366)


@router.get("/monthly", response_model=TotalsOut, summary="Totals per local month at the site")
def monthly(
    conn: Conn,
    caller: Caller,
    site: SiteQ,
    start: LocalDay,
    end: Annotated[date, Query(description="Local date, exclusive.")],
    enterprise: EnterpriseQ = None,
) -> TotalsOut:
    """CO2e per local month of [start, end) (at most ten years), split by scope,
    with avoided emissions. A partial first or last month covers only the range."""
    return _totals(conn, caller, site, enterprise, start, end, "month", 3660)
