"""Daily and monthly totals in the site's time zone, with the scope split and the
avoided emissions of solar; and calendar-year actuals for the roadmap line."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from api.scope import Scope
from core.meter_kinds import PRODUCTION_KINDS


def _table(scope: Scope) -> tuple[str, str]:
    if scope.enterprise_id is not None:
        return "enterprise_hourly", "enterprise_id = :id"
    return "site_hourly", "site_id = :id"


def period_totals(
    conn: Connection, scope: Scope, period: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per local day or month of [start, end): CO2e, avoided, per scope, estimated,
    and the meter-hours measured and estimated (coverage)."""
    table, owner = _table(scope)
    unit = "day" if period == "day" else "month"
    rows = conn.execute(
        text(
            "SELECT date_trunc(:unit, hour, :tz) AS start, "  # noqa: S608 - our identifiers
            "sum(co2e_kg) AS co2e_kg, sum(avoided_co2e_kg) AS avoided_co2e_kg, "
            "coalesce(sum(co2e_kg) FILTER (WHERE scope = 1), 0) AS s1, "
            "coalesce(sum(co2e_kg) FILTER (WHERE scope = 2), 0) AS s2, "
            "coalesce(sum(co2e_kg) FILTER (WHERE scope = 3), 0) AS s3, "
            "bool_or(estimated_meter_hours > 0) AS estimated, count(DISTINCT hour) AS hours, "
            "coalesce(sum(meter_hours - estimated_meter_hours) "
            "FILTER (WHERE kind <> ALL(:output_kinds)), 0) AS measured_meter_hours, "
            "coalesce(sum(estimated_meter_hours) "
            "FILTER (WHERE kind <> ALL(:output_kinds)), 0) AS estimated_meter_hours "
            f"FROM {table} WHERE {owner} AND hour >= :a AND hour < :b GROUP BY 1 ORDER BY 1"
        ),
        {
            "unit": unit,
            "tz": scope.timezone,
            "id": scope.enterprise_id or scope.site_id,
            "a": start,
            "b": end,
            "output_kinds": sorted(PRODUCTION_KINDS),
        },
    )
    return [dict(r._mapping) for r in rows]


def yearly_actuals(conn: Connection, site_id: str, tz: str) -> dict[int, float]:
    """tCO2e per calendar year at the site (years with data only)."""
    rows = conn.execute(
        text(
            "SELECT extract(year FROM hour AT TIME ZONE :tz)::int AS year, sum(co2e_kg) AS kg "
            "FROM site_hourly WHERE site_id = :s GROUP BY 1"
        ),
        {"tz": tz, "s": site_id},
    )
    return {int(r.year): float(r.kg) / 1000.0 for r in rows}
